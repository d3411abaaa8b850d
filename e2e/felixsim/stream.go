package felixsim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"

	"github.com/gogo/protobuf/jsonpb"
	"github.com/projectcalico/calico/felix/proto"
)

// Item is one line of a stream: a ToDataplane message, or a step marker (Msg == nil).
type Item struct {
	// Step is the name of the step this item starts (markers) or belongs to (messages); "" before the
	// first marker (Felix's initial snapshot).
	Step string
	Msg  *proto.ToDataplane
	Line int
}

// Stream is a replayable Felix stream: ToDataplane messages in order, with step markers.
//
// File format (JSONL): one ToDataplane per line in proto3 JSON (gogo jsonpb, as in felix-streams/*.jsonl);
// a line {"step":"<name>"} is a marker that starts a step and is never sent. Blank lines and lines starting
// with '#' are skipped. If "<name>.summary.txt" exists beside "<name>.jsonl", its "---- <step>" headings are
// merged in as markers before the sequence numbers listed under them.
type Stream struct {
	Items []Item
}

// Messages returns the messages only.
func (s *Stream) Messages() []*proto.ToDataplane {
	var out []*proto.ToDataplane
	for _, it := range s.Items {
		if it.Msg != nil {
			out = append(out, it.Msg)
		}
	}
	return out
}

// Steps returns the step names in order (markers only).
func (s *Stream) Steps() []string {
	var out []string
	for _, it := range s.Items {
		if it.Msg == nil {
			out = append(out, it.Step)
		}
	}
	return out
}

// Through returns the messages up to and including step (all messages of that step), or an error if the
// stream has no such step. Through("") returns the messages before the first marker.
func (s *Stream) Through(step string) ([]*proto.ToDataplane, error) {
	var out []*proto.ToDataplane
	found := step == ""
	for i, it := range s.Items {
		if it.Msg == nil {
			if found {
				return out, nil
			}
			if it.Step == step {
				found = true
			}
			continue
		}
		out = append(out, s.Items[i].Msg)
	}
	if !found {
		return nil, fmt.Errorf("no step %q", step)
	}
	return out, nil
}

var stepLine = regexp.MustCompile(`^\{\s*"step"\s*:`)

// ParseStream reads a JSONL stream. summary, if non-nil, is the capture's .summary.txt.
func ParseStream(r io.Reader, summary io.Reader) (*Stream, error) {
	var stepsBySeq map[uint64][]string
	if summary != nil {
		var err error
		if stepsBySeq, err = parseSummary(summary); err != nil {
			return nil, err
		}
	}
	s := &Stream{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	step := ""
	n := 0
	um := jsonpb.Unmarshaler{AllowUnknownFields: false}
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if stepLine.Match(line) {
			var m struct {
				Step string `json:"step"`
			}
			if err := json.Unmarshal(line, &m); err != nil {
				return nil, fmt.Errorf("line %d: step marker: %w", n, err)
			}
			step = m.Step
			s.Items = append(s.Items, Item{Step: step, Line: n})
			continue
		}
		msg := &proto.ToDataplane{}
		if err := um.Unmarshal(bytes.NewReader(line), msg); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		for _, st := range stepsBySeq[msg.SequenceNumber] {
			step = st
			s.Items = append(s.Items, Item{Step: st, Line: n})
		}
		delete(stepsBySeq, msg.SequenceNumber)
		s.Items = append(s.Items, Item{Step: step, Msg: msg, Line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading stream: %w", err)
	}
	// Steps listed after the last message (e.g. "---- end") or without messages at the end.
	if trailing, ok := stepsBySeq[^uint64(0)]; ok {
		for _, st := range trailing {
			s.Items = append(s.Items, Item{Step: st, Line: n})
		}
	}
	return s, nil
}

var summarySeq = regexp.MustCompile(`^\s*(\d+)\s+\S`)

// parseSummary maps a sequence number to the step headings that precede it. Headings after the last
// sequence number are keyed by MaxUint64.
func parseSummary(r io.Reader) (map[uint64][]string, error) {
	out := map[uint64][]string{}
	var pending []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	sessions := 0
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "===="):
			sessions++
			if sessions > 1 {
				return nil, errors.New("summary has several Felix sessions; split the stream per session")
			}
		case strings.HasPrefix(line, "----"):
			pending = append(pending, strings.TrimSpace(strings.TrimPrefix(line, "----")))
		default:
			m := summarySeq.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			seq, err := strconv.ParseUint(m[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("summary: %q: %w", line, err)
			}
			if len(pending) > 0 {
				out[seq] = append(out[seq], pending...)
				pending = nil
			}
		}
	}
	if len(pending) > 0 {
		out[^uint64(0)] = pending
	}
	return out, sc.Err()
}

// LoadStream reads a JSONL stream file, merging "<base>.summary.txt" step headings if that file exists.
func LoadStream(path string) (*Stream, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var summary io.Reader
	if base, ok := strings.CutSuffix(path, ".jsonl"); ok {
		if sf, err := os.Open(base + ".summary.txt"); err == nil {
			defer sf.Close()
			summary = sf
		}
	}
	s, err := ParseStream(f, summary)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// CapturePath returns the path of a file in the repository's testdata/felix-streams (the real Felix
// captures), located relative to this source file so tests in any package can use it.
func CapturePath(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "felix-streams", name)
}
