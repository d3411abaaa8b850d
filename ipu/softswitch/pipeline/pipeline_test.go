package pipeline

import (
	"fmt"
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
	s.Each(pe, func(e *tables.Entry) bool { total += s.DirectCounter(pe, e.Handle).Packets; return true })
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

// The conntrack key of an ICMP flow carries the ICMP type: the query type in ct_orig, its reply type in
// ct_reply (as Linux keys ICMP by type, code and identifier), so that only replies hit the reply entry: a
// query of the same type the other way, with the same identifier, is a new flow (denied here: pod-a's
// ingress denies everything).
func TestICMPConntrackKeysCarryTheQueryAndReplyType(t *testing.T) {
	cases := []struct {
		name              string
		v6                bool
		query, reply      uint8
		origTab, replyTab p4src.TableName
	}{
		{"echo", false, p4src.ICMPEchoRequest, p4src.ICMPEchoReply, p4src.TableCTOrigV4, p4src.TableCTReplyV4},
		{"timestamp", false, p4src.ICMPTimestamp, p4src.ICMPTimestampReply, p4src.TableCTOrigV4, p4src.TableCTReplyV4},
		{"information", false, p4src.ICMPInfoRequest, p4src.ICMPInfoReply, p4src.TableCTOrigV4, p4src.TableCTReplyV4},
		{"address mask", false, p4src.ICMPAddress, p4src.ICMPAddressReply, p4src.TableCTOrigV4, p4src.TableCTReplyV4},
		{"ICMPv6 echo", true, p4src.ICMP6EchoRequest, p4src.ICMP6EchoReply, p4src.TableCTOrigV6, p4src.TableCTReplyV6},
		{"ICMPv6 node information", true, p4src.ICMP6NiQuery, p4src.ICMP6NiReply, p4src.TableCTOrigV6, p4src.TableCTReplyV6},
	}
	msg := func(v6, fromA bool, typ uint8) []byte {
		src, dst, mac := "10.65.0.2", "10.65.0.3", "0a:58:0a:41:00:02"
		if !fromA {
			src, dst, mac = dst, src, "0a:58:0a:41:00:03"
		}
		l3 := fmt.Sprintf("ipv4(src=%s, dst=%s) / icmp(type=%d, id=4242, seq=1)", src, dst, typ)
		if v6 {
			s6, d6 := "fd00:65::2", "fd00:65::3"
			if !fromA {
				s6, d6 = d6, s6
			}
			l3 = fmt.Sprintf("ipv6(src=%s, dst=%s) / icmpv6(type=%d, id=4242, seq=1)", s6, d6, typ)
		}
		return mustPacket("eth(dst=ee:ee:ee:ee:ee:ee, src=" + mac + ") / " + l3 + " / payload(len=12)")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, st, _ := node(t, 1)
			w, _ := p.NewWorker(0)
			if res := w.Process(msg(c.v6, true, c.query), portPodA); !res.Forwarded() {
				t.Fatalf("pod-a's query: %+v", res)
			}
			// The learned keys end with the ICMP type: the query's in ct_orig, the reply's in ct_reply.
			s := st.Load()
			for tab, want := range map[p4src.TableName]uint8{c.origTab: c.query, c.replyTab: c.reply} {
				n := 0
				s.Each(s.TableByName(string(tab)), func(e *tables.Entry) bool {
					n++
					if got := e.Key[len(e.Key)-1]; got != want {
						t.Errorf("%s entry key ends with ICMP type %d, want %d", tab, got, want)
					}
					return true
				})
				if n != 1 {
					t.Errorf("%s holds %d entries, want 1", tab, n)
				}
			}
			if res := w.Process(msg(c.v6, false, c.query), portPodB); res.Forwarded() || res.DropReason != p4src.DropPolicyDeny {
				t.Errorf("pod-b's query with the same identifier: %+v, want a new flow denied by policy", res)
			}
			if res := w.Process(msg(c.v6, false, c.reply), portPodB); !res.Forwarded() || res.Port != portPodA {
				t.Errorf("pod-b's reply: %+v, want established to pod-a", res)
			}
		})
	}
}
