package framing_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/calico-p4/calico-p4/driver/framing"
)

func TestRoundTripPreservesFramesInOrder(t *testing.T) {
	payloads := [][]byte{{}, []byte("a"), bytes.Repeat([]byte{0xab}, 70000), []byte("last")}
	var buf bytes.Buffer
	w := framing.NewWriter(&buf)
	for _, p := range payloads {
		if err := w.WriteFrame(p); err != nil {
			t.Fatal(err)
		}
	}
	r := framing.NewReader(&buf)
	for i, want := range payloads {
		got, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d: got %d bytes, want %d", i, len(got), len(want))
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("after the last frame: got %v, want io.EOF", err)
	}
	if r.Frames() != uint64(len(payloads)) {
		t.Errorf("Frames() = %d", r.Frames())
	}
}

func TestHeaderIsLittleEndianUint64(t *testing.T) {
	var buf bytes.Buffer
	if err := framing.NewWriter(&buf).WriteFrame([]byte("xyz")); err != nil {
		t.Fatal(err)
	}
	want := []byte{3, 0, 0, 0, 0, 0, 0, 0, 'x', 'y', 'z'}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("got % x, want % x", buf.Bytes(), want)
	}
}

func header(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }

func TestBadStreamsAreClassified(t *testing.T) {
	tests := []struct {
		name   string
		stream []byte
		reason string
		text   string
	}{
		{"empty stream is a clean end", nil, "eof", "EOF"},
		{"header cut short", []byte{1, 0, 0}, "truncated", "inside the 8-byte length header"},
		{"payload cut short", append(header(10), "abc"...), "truncated", "after 3 of 10 payload bytes"},
		{"length over 64 MiB", header(64<<20 + 1), "oversized", "67108865 > 67108864"},
		{"garbage length (text)", []byte("GET / HTTP/1.1\r\n"), "oversized", "over the limit"},
		{"all ones", bytes.Repeat([]byte{0xff}, 16), "oversized", "over the limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := framing.NewReader(bytes.NewReader(tc.stream)).ReadFrame()
			if got := framing.Reason(err); got != tc.reason {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.reason)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not mention %q", err, tc.text)
			}
		})
	}
}

func TestExactlyTheLimitIsAccepted(t *testing.T) {
	r := framing.NewReaderLimit(bytes.NewReader(append(header(4), "abcd"...)), 4)
	if _, err := r.ReadFrame(); err != nil {
		t.Fatalf("limit-sized frame: %v", err)
	}
	r = framing.NewReaderLimit(bytes.NewReader(append(header(5), "abcde"...)), 4)
	if _, err := r.ReadFrame(); !errors.Is(err, framing.ErrOversized) {
		t.Fatalf("limit+1: %v", err)
	}
	if err := framing.NewWriter(io.Discard).WriteFrame(make([]byte, framing.MaxFrameSize+1)); !errors.Is(err, framing.ErrOversized) {
		t.Fatalf("writer over limit: %v", err)
	}
}

func TestReadErrorsAreIO(t *testing.T) {
	_, err := framing.NewReader(failingReader{}).ReadFrame()
	if framing.Reason(err) != "io" {
		t.Fatalf("got %v", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestSplit(t *testing.T) {
	buf := framing.Append(framing.Append(nil, []byte("one")), []byte("two"))
	p, rest, err := framing.Split(buf, framing.MaxFrameSize)
	if err != nil || string(p) != "one" {
		t.Fatalf("first: %q %v", p, err)
	}
	p, rest, err = framing.Split(rest, framing.MaxFrameSize)
	if err != nil || string(p) != "two" || len(rest) != 0 {
		t.Fatalf("second: %q %q %v", p, rest, err)
	}
	if _, _, err := framing.Split(buf[:5], framing.MaxFrameSize); !errors.Is(err, framing.ErrTruncated) {
		t.Fatalf("short: %v", err)
	}
}

// FuzzReadFrame: the reader never panics, never returns more than the limit, and every frame it returns
// re-encodes to exactly the bytes it consumed.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{})
	f.Add(framing.Append(nil, []byte("hello")))
	f.Add(append(framing.Append(nil, []byte{1, 2}), 0xff, 0xff))
	f.Add(header(1 << 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1 << 16
		r := framing.NewReaderLimit(bytes.NewReader(data), limit)
		var reencoded []byte
		for {
			p, err := r.ReadFrame()
			if err != nil {
				if framing.Reason(err) == "io" {
					t.Fatalf("unexpected error class: %v", err)
				}
				break
			}
			if len(p) > limit {
				t.Fatalf("frame of %d bytes over the limit", len(p))
			}
			reencoded = framing.Append(reencoded, p)
			sp, _, serr := framing.Split(data[len(reencoded)-len(p)-framing.HeaderSize:], limit)
			if serr != nil || !bytes.Equal(sp, p) {
				t.Fatalf("Split disagrees with ReadFrame: %v", serr)
			}
		}
		if !bytes.Equal(reencoded, data[:len(reencoded)]) {
			t.Fatal("re-encoded frames differ from the input prefix")
		}
	})
}
