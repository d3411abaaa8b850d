package pipeline

import (
	"bytes"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/vectors"
)

func vectorDir(t *testing.T) string { return vectorDirTB(t) }

func vectorDirTB(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "p4src", "testdata")
}

// TestBehaviourVectors runs every case of p4src/testdata/*.vec against the pipeline: each case on a
// fresh store holding the file's setup, writes and packets in order, every expectation checked
// (output port and bytes, drop reason and drop_counter, tables and actions applied).
func TestBehaviourVectors(t *testing.T) {
	spec, err := vectors.NewSpec()
	if err != nil {
		t.Fatal(err)
	}
	files, err := spec.ParseDir(vectorDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no vector files")
	}
	total := 0
	for _, f := range files {
		f := f
		t.Run(filepath.Base(f.Path), func(t *testing.T) {
			for _, c := range f.Cases {
				c := c
				total++
				t.Run(c.Name, func(t *testing.T) { runCase(t, f, c) })
			}
		})
	}
	t.Logf("%d vector files, %d cases", len(files), total)
}

func runCase(t *testing.T, f *vectors.File, c *vectors.Case) {
	p, st := newTestPipeline(t, 1)
	w, err := p.NewWorker(0)
	if err != nil {
		t.Fatal(err)
	}
	apply := func(ops []vectors.Op) {
		for _, op := range ops {
			if op.Write != nil {
				errs, err := st.Write([]*p4v1.Update{{Type: op.Write.Type, Entity: op.Write.Entity}}, p4v1.WriteRequest_CONTINUE_ON_ERROR)
				if err == nil && errs[0] != nil {
					err = errs[0]
				}
				if err != nil {
					t.Fatalf("%s: %s: %v", op.Pos, op.Write.Text, err)
				}
				continue
			}
			runPacket(t, p, w, op)
		}
	}
	apply(f.Setup)
	apply(c.Ops)
}

func runPacket(t *testing.T, p *Pipeline, w *Worker, op vectors.Op) {
	t.Helper()
	pk := op.Packet
	state := p.store.Load()
	dropIdx := state.CounterIndex(string(p4src.CounterDropCounter))
	before := make([]uint64, p4src.DropReasons)
	for i := range before {
		before[i] = state.Counter(dropIdx, i).Packets
	}
	tr := &Trace{InPort: pk.Port, Input: pk.Data}
	w.Record(tr)
	res := w.Process(pk.Data, pk.Port)
	w.Record(nil)
	res.Data = bytes.Clone(res.Data)
	tr.Result = res
	fail := func(e vectors.Expectation, format string, args ...any) {
		t.Errorf("%s: packet %s\n%s: expect %s: %s\ntrace:\n%s", op.Pos, pk.Text, e.Pos, e.Text, fmt.Sprintf(format, args...), tr)
	}
	after := p.store.Load()
	for _, e := range pk.Expect {
		switch e.Kind {
		case vectors.ExpectOutput:
			if !res.Forwarded() {
				fail(e, "dropped (%s)", DropReasonName(res.DropReason))
				continue
			}
			if res.Port != e.Port {
				fail(e, "sent to port %#x, want %#x (%s)", res.Port, e.Port, e.PortName)
			}
			if !bytes.Equal(res.Data, e.Data) {
				fail(e, "output differs:\n got  %x\n      %s\n want %x\n      %s", res.Data, Describe(res.Data), e.Data, Describe(e.Data))
			}
		case vectors.ExpectDrop:
			if res.Forwarded() {
				fail(e, "forwarded to port %#x: %s", res.Port, Describe(res.Data))
				continue
			}
			if res.DropReason != e.Reason {
				fail(e, "dropped with %s, want %s", DropReasonName(res.DropReason), e.ReasonName)
			}
			if got := after.Counter(dropIdx, int(e.Reason)).Packets - before[e.Reason]; got != 1 {
				fail(e, "drop_counter[%s] counted %d packets, want 1", e.ReasonName, got)
			}
		case vectors.ExpectApplied:
			if !tr.Applied(e.Table, e.Action) {
				fail(e, "table %s did not run %s", e.Table, e.Action)
			}
		}
	}
}
