package pipeline

import (
	"strings"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/vectors"
)

// node loads node.inc (the vectors' common topology) into a fresh pipeline.
func node(t testing.TB, workers int) (*Pipeline, *tables.Store, *vectors.File) {
	t.Helper()
	spec, err := vectors.NewSpec()
	if err != nil {
		t.Fatal(err)
	}
	f, err := spec.ParseFile(vectorDirTB(t) + "/conntrack.vec")
	if err != nil {
		t.Fatal(err)
	}
	p, st := newTestPipeline(t, workers)
	var ups []*p4v1.Update
	for _, op := range f.Setup {
		if op.Write != nil {
			ups = append(ups, &p4v1.Update{Type: op.Write.Type, Entity: op.Write.Entity})
		}
	}
	write(t, st, ups)
	return p, st, f
}

func pkt(t testing.TB, desc string) []byte {
	t.Helper()
	b, err := vectors.ParsePacket(desc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	portPodA = 0x101
	portPodB = 0x102
)

var (
	synAtoB    = "eth(dst=ee:ee:ee:ee:ee:ee, src=0a:58:0a:41:00:02) / ipv4(src=10.65.0.2, dst=10.65.0.3) / tcp(sport=40000, dport=80, flags=S)"
	synackBtoA = "eth(dst=ee:ee:ee:ee:ee:ee, src=0a:58:0a:41:00:03) / ipv4(src=10.65.0.3, dst=10.65.0.2) / tcp(sport=80, dport=40000, flags=SA)"
)

func TestTraceHasNoSideEffects(t *testing.T) {
	p, st, _ := node(t, 1)
	w, _ := p.NewWorker(0)
	syn := pkt(t, synAtoB)

	tr, err := p.Trace(syn, portPodA)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Result.Fate != p4src.FateDrop && tr.Result.Port != portPodB {
		t.Fatalf("trace verdict %+v", tr.Result)
	}
	out := tr.String()
	for _, want := range []string{"port_endpoint {port=0x101}: hit -> set_endpoint", "learn ct_orig_v4", "dry run: not added", "verdict: forward to port 0x102"} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
	// Nothing learned, nothing counted: pod-b's reply is still a new flow denied by... the node's
	// policy allows it, so check the learner table and the counters directly.
	s := st.Load()
	if n := s.TableByName(string(p4src.TableCTOrigV4)).Len(); n != 0 {
		t.Errorf("trace learned %d ct_orig_v4 entries", n)
	}
	pe := s.TableByName(string(p4src.TablePortEndpoint))
	var total uint64
	pe.Each(func(e *tables.Entry) bool { total += s.DirectCounter(pe, e.Handle).Packets; return true })
	if total != 0 {
		t.Errorf("trace counted %d packets on port_endpoint", total)
	}

	// The same packet for real learns and counts.
	res := w.Process(syn, portPodA)
	if !res.Forwarded() || res.Port != portPodB {
		t.Fatalf("real run: %+v", res)
	}
	s = st.Load()
	if n := s.TableByName(string(p4src.TableCTOrigV4)).Len(); n != 1 {
		t.Errorf("real run learned %d ct_orig_v4 entries, want 1", n)
	}
	// And the reply now traces as established.
	tr, err = p.Trace(pkt(t, synackBtoA), portPodB)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Applied(string(p4src.TableCTReplyV4), string(p4src.ActionCTReplyHitV4)) {
		t.Errorf("reply not established in trace:\n%s", tr)
	}
}

func TestAForeignPipelineConfigDropsEverything(t *testing.T) {
	st := tables.NewStore(tables.Options{Workers: 1})
	info, _ := p4src.P4Info()
	// Widen one action parameter: the layout the pipeline was written for no longer holds.
	for _, a := range info.Actions {
		if a.Preamble.Name == string(p4src.ActionSetEndpoint) {
			a.Params[1].Bitwidth = 16
		}
	}
	if err := st.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, &p4v1.ForwardingPipelineConfig{P4Info: info}); err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "set_endpoint") {
		t.Fatalf("Err() = %v for a foreign config", err)
	}
	w, _ := p.NewWorker(0)
	if res := w.Process(pkt(t, synAtoB), portPodA); res.Forwarded() || res.DropReason != p4src.DropNone {
		t.Fatalf("foreign config: %+v", res)
	}
	if s := p.Stats(); s.Unbound != 1 {
		t.Fatalf("unbound = %d", s.Unbound)
	}
}

func TestNoPipelineConfigDrops(t *testing.T) {
	p, err := New(Options{Store: tables.NewStore(tables.Options{Workers: 1})})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := p.NewWorker(0)
	if res := w.Process(pkt(t, synAtoB), portPodA); res.Forwarded() {
		t.Fatalf("forwarded without a config: %+v", res)
	}
}

func TestWorkerIDsAreBoundedByTheStore(t *testing.T) {
	p, _ := newTestPipeline(t, 2)
	if _, err := p.NewWorker(2); err == nil {
		t.Fatal("worker 2 of 2 accepted")
	}
	if _, err := p.NewWorker(1); err != nil {
		t.Fatal(err)
	}
}

func TestEstablishedAndNewFlowsDoNotAllocate(t *testing.T) {
	p, _, _ := node(t, 1)
	w, _ := p.NewWorker(0)
	syn := pkt(t, synAtoB)
	ack := pkt(t, "eth(dst=ee:ee:ee:ee:ee:ee, src=0a:58:0a:41:00:02) / ipv4(src=10.65.0.2, dst=10.65.0.3) / tcp(sport=40000, dport=80, flags=A) / payload(len=1000)")
	if res := w.Process(syn, portPodA); !res.Forwarded() {
		t.Fatalf("syn: %+v", res)
	}
	if n := testing.AllocsPerRun(200, func() { w.Process(ack, portPodA) }); n != 0 {
		t.Errorf("established packet: %v allocations", n)
	}
	// A denied new flow walks the policy without learning.
	denied := pkt(t, "eth(dst=ee:ee:ee:ee:ee:ee, src=0a:58:0a:41:00:02) / ipv4(src=10.65.0.2, dst=10.65.0.9) / tcp(sport=40000, dport=80, flags=S)")
	if n := testing.AllocsPerRun(200, func() { w.Process(denied, portPodA) }); n != 0 {
		t.Errorf("unroutable packet: %v allocations", n)
	}
}

// The pipeline marks exactly the program's add_on_miss tables as learners (the manager leaves the same list
// unmanaged), so a learner table added to k8s.p4 cannot be forgotten here.
func TestLearnerTablesAreTheProgramsAddOnMissTables(t *testing.T) {
	var got []p4src.TableName
	for _, r := range learnerTables {
		got = append(got, tableNames[r])
	}
	if strings.Join(toStrings(got), ",") != strings.Join(toStrings(p4src.LearnerTables), ",") {
		t.Fatalf("pipeline learners %v, k8s.p4 add_on_miss tables %v", got, p4src.LearnerTables)
	}
}

func toStrings(names []p4src.TableName) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = string(n)
	}
	return out
}
