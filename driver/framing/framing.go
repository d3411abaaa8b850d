package framing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// HeaderSize is the size of the length prefix.
const HeaderSize = 8

// MaxFrameSize is the largest payload accepted (Felix itself has no limit; a larger length is taken as a
// corrupt stream).
const MaxFrameSize = 64 << 20

var (
	// ErrOversized: the length prefix exceeds the limit.
	ErrOversized = errors.New("frame length over the limit")
	// ErrTruncated: the stream ended inside a header or a payload.
	ErrTruncated = errors.New("truncated frame")
)

// Reason classifies a framing error for logs and the `reason` metric label: "eof" (clean end of stream),
// "oversized", "truncated" or "io".
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, io.EOF):
		return "eof"
	case errors.Is(err, ErrOversized):
		return "oversized"
	case errors.Is(err, ErrTruncated):
		return "truncated"
	}
	return "io"
}

// Reader reads frames from a byte stream. Not safe for concurrent use.
type Reader struct {
	r   io.Reader
	max uint64
	hdr [HeaderSize]byte
	n   uint64 // frames read
}

// NewReader returns a Reader with limit MaxFrameSize.
func NewReader(r io.Reader) *Reader { return NewReaderLimit(r, MaxFrameSize) }

// NewReaderLimit returns a Reader with a custom payload limit.
func NewReaderLimit(r io.Reader, max uint64) *Reader { return &Reader{r: r, max: max} }

// ReadFrame returns the next frame's payload. At a clean end of stream (between frames) it returns io.EOF.
// Errors wrap ErrOversized, ErrTruncated or the underlying read error; after an error the stream is out of
// step and must not be read further.
func (r *Reader) ReadFrame() ([]byte, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		switch {
		case errors.Is(err, io.EOF):
			return nil, io.EOF
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, fmt.Errorf("frame %d: %w: stream ended inside the %d-byte length header", r.n, ErrTruncated, HeaderSize)
		}
		return nil, fmt.Errorf("frame %d: reading length: %w", r.n, err)
	}
	size := binary.LittleEndian.Uint64(r.hdr[:])
	if size > r.max {
		return nil, fmt.Errorf("frame %d: %w: length %d > %d bytes", r.n, ErrOversized, size, r.max)
	}
	// Grow as data arrives, so that a corrupt length does not allocate the limit up front.
	var buf bytes.Buffer
	if size <= 64<<10 {
		buf.Grow(int(size))
	}
	got, err := io.CopyN(&buf, r.r, int64(size))
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("frame %d: %w: stream ended after %d of %d payload bytes", r.n, ErrTruncated, got, size)
		}
		return nil, fmt.Errorf("frame %d: reading %d-byte payload: %w", r.n, size, err)
	}
	r.n++
	return buf.Bytes(), nil
}

// Frames is the number of frames read so far.
func (r *Reader) Frames() uint64 { return r.n }

// Writer writes frames. Safe for concurrent use: each frame is written whole.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	max uint64
}

// NewWriter returns a Writer with limit MaxFrameSize.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w, max: MaxFrameSize} }

// WriteFrame writes one frame (length prefix and payload in a single Write).
func (w *Writer) WriteFrame(payload []byte) error {
	if uint64(len(payload)) > w.max {
		return fmt.Errorf("%w: length %d > %d bytes", ErrOversized, len(payload), w.max)
	}
	buf := Append(make([]byte, 0, HeaderSize+len(payload)), payload)
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.w.Write(buf); err != nil {
		return fmt.Errorf("writing %d-byte frame: %w", len(payload), err)
	}
	return nil
}

// Append appends one frame (header + payload) to dst.
func Append(dst, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(len(payload)))
	return append(dst, payload...)
}

// Split parses the first frame of buf: its payload and the bytes after it. A buf that holds no complete
// frame returns ErrTruncated (more bytes may complete it); a length over max returns ErrOversized.
func Split(buf []byte, max uint64) (payload, rest []byte, err error) {
	if len(buf) < HeaderSize {
		return nil, buf, fmt.Errorf("%w: %d of %d header bytes", ErrTruncated, len(buf), HeaderSize)
	}
	size := binary.LittleEndian.Uint64(buf)
	if size > max {
		return nil, buf, fmt.Errorf("%w: length %d > %d bytes", ErrOversized, size, max)
	}
	if uint64(len(buf)-HeaderSize) < size {
		return nil, buf, fmt.Errorf("%w: %d of %d payload bytes", ErrTruncated, len(buf)-HeaderSize, size)
	}
	end := HeaderSize + int(size)
	return buf[HeaderSize:end:end], buf[end:], nil
}
