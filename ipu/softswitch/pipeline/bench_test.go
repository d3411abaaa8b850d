package pipeline

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// The benchmark node: 250 local workloads (10.65.0.2 + i, port 0x1000 + i, endpoint 1000 + i), 10k
// remote /26 routes over VXLAN to 100 nodes, 1000 policies (one step, an IP set of 100 members and
// two rules each: 100k IP-set members, 60k IPv4 and 40k IPv6), each workload's ingress and egress list running three of those
// policies (which never match the benchmark flow) then an allow-all profile.
const (
	benchEndpoints = 250
	benchRoutes    = 10000
	benchPolicies  = 1000
	benchSetSize   = 100
)

func u(v uint64, bits int) []byte { return p4src.MustEncodeUint(v, bits) }
func a4(a netip.Addr) []byte      { b := a.As4(); return b[:] }
func addrN(base string, n int) netip.Addr {
	b := netip.MustParseAddr(base).As4()
	v := binary.BigEndian.Uint32(b[:]) + uint32(n)
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func benchPort(i int) uint32     { return 0x1000 + uint32(i) }
func benchAddr(i int) netip.Addr { return addrN("10.65.0.2", i) }

func benchEntries() []entry.Entry {
	var es []entry.Entry
	add := func(e entry.Entry) { es = append(es, e) }
	P := entry.P
	act := entry.Act
	tbl := func(t p4src.TableName, prio int32, a entry.Action, m ...entry.Match) {
		add(entry.Table(string(t), prio, a, m...))
	}
	flags := uint64(p4src.EPFlagSourceCheck | p4src.EPFlagPolicy)
	for i := 0; i < benchEndpoints; i++ {
		ep := uint64(1000 + i)
		list := uint64(1 + i)
		tbl(p4src.TablePortEndpoint, 0, act(string(p4src.ActionSetEndpoint), P("endpoint_id", u(ep, 32)), P("kind", u(uint64(p4src.EPKindWorkload), 8)),
			P("flags", u(flags, 8)), P("peer_port", u(0, 32))), entry.Exact("port", u(uint64(benchPort(i)), 32)))
		tbl(p4src.TableSourceGuardV4, 0, act(string(p4src.ActionSourceAllowed)), entry.Exact("endpoint_id", u(ep, 32)), entry.LPM("src_addr", a4(benchAddr(i)), 32))
		nh := uint64(10000 + i)
		tbl(p4src.TableNexthop, 0, act(string(p4src.ActionNHLocal), P("port", u(uint64(benchPort(i)), 32)), P("dst_mac", u(0x0a580a410000+uint64(i), 48)),
			P("endpoint_id", u(ep, 32)), P("flags", u(flags, 8))), entry.Exact("nexthop_id", u(nh, 32)))
		tbl(p4src.TableRouteV4, 0, act(string(p4src.ActionSetNexthop), P("nexthop_id", u(nh, 32)), P("flags", u(0, 8))), entry.LPM("dst_addr", a4(benchAddr(i)), 32))
		for _, stage := range []uint8{p4src.StageWorkloadEgress, p4src.StageWorkloadIngress} {
			tbl(p4src.TableEndpointPolicy, 0, act(string(p4src.ActionSetPolicyList), P("list_id", u(list, 32))),
				entry.Exact("endpoint_id", u(ep, 32)), entry.Exact("stage", u(uint64(stage), 8)))
		}
		for pos := 0; pos < 3; pos++ {
			pol := (3*i + pos) % benchPolicies
			tbl(p4src.TablePolicyList, 0, act(string(p4src.ActionRunPolicy), P("first_step", u(uint64(100000+pol), 32)), P("next_tier_pos", u(3, 16))),
				entry.Exact("list_id", u(list, 32)), entry.Exact("position", u(uint64(pos), 16)))
		}
		tbl(p4src.TablePolicyList, 0, act(string(p4src.ActionRunPolicy), P("first_step", u(1, 32)), P("next_tier_pos", u(4, 16))),
			entry.Exact("list_id", u(list, 32)), entry.Exact("position", u(3, 16)))
		tbl(p4src.TablePolicyList, 0, act(string(p4src.ActionListEnd), P("verdict", u(uint64(p4src.VerdictDeny), 8))),
			entry.Exact("list_id", u(list, 32)), entry.Exact("position", u(4, 16)))
	}
	// The profile: allow everything (rule 1).
	tbl(p4src.TablePolicyStep, 0, act(string(p4src.ActionRunStep), P("lookup", u(0, 8)), P("set_id", u(0, 32)), P("miss_step", u(0, 32))), entry.Exact("step_id", u(1, 32)))
	tbl(p4src.TablePolicyRule, 100, act(string(p4src.ActionRuleAllow), P("rule_id", u(1, 32))), entry.Exact("step_id", u(1, 32)))
	tbl(p4src.TablePolicyRuleStats, 0, act(string(p4src.ActionCountRule)), entry.Exact("rule_id", u(1, 32)))
	// 1000 policies: allow TCP to port 1000+p from set p, deny UDP from set p.
	for p := 0; p < benchPolicies; p++ {
		step := uint64(100000 + p)
		set := uint64(1 + p)
		tbl(p4src.TablePolicyStep, 0, act(string(p4src.ActionRunStep), P("lookup", u(uint64(p4src.LookupNetSrc), 8)), P("set_id", u(set, 32)), P("miss_step", u(0, 32))),
			entry.Exact("step_id", u(step, 32)))
		tbl(p4src.TablePolicyRule, 20, act(string(p4src.ActionRuleAllow), P("rule_id", u(200000+uint64(2*p), 32))), entry.Exact("step_id", u(step, 32)),
			entry.Optional("set_hit", u(1, 1)), entry.Ternary("protocol", u(6, 8), u(0xff, 8)), entry.Range("dst_port", u(uint64(1000+p), 16), u(uint64(1000+p), 16)))
		tbl(p4src.TablePolicyRule, 10, act(string(p4src.ActionRuleDeny), P("rule_id", u(200001+uint64(2*p), 32))), entry.Exact("step_id", u(step, 32)),
			entry.Optional("set_hit", u(1, 1)), entry.Ternary("protocol", u(17, 8), u(0xff, 8)))
		tbl(p4src.TablePolicyRuleStats, 0, act(string(p4src.ActionCountRule)), entry.Exact("rule_id", u(200000+uint64(2*p), 32)))
		tbl(p4src.TablePolicyRuleStats, 0, act(string(p4src.ActionCountRule)), entry.Exact("rule_id", u(200001+uint64(2*p), 32)))
		// 60 IPv4 and 40 IPv6 members per set (60k IPv4 and 40k IPv6 members in all).
		for m := 0; m < benchSetSize; m++ {
			if m >= 60 {
				a := netip.AddrFrom16([16]byte{0xfd, 0, 0xc8, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(p >> 8), byte(p), 0, byte(m)})
				tbl(p4src.TableIPSetNetV6, 0, act(string(p4src.ActionIPSetHit)), entry.Exact("set_id", u(set, 32)), entry.LPM("addr", a.AsSlice(), 128))
				continue
			}
			a := addrN("10.200.0.0", p*benchSetSize+m)
			if m == 0 {
				a = benchAddr(p % benchEndpoints) // the sets contain local pods too: the step's lookup hits
			}
			tbl(p4src.TableIPSetNetV4, 0, act(string(p4src.ActionIPSetHit)), entry.Exact("set_id", u(set, 32)), entry.LPM("addr", a4(a), 32))
		}
	}
	// 10k remote pod blocks over VXLAN to 100 nodes.
	for n := 0; n < 100; n++ {
		tbl(p4src.TableNexthop, 0, act(string(p4src.ActionNHVXLANV4), P("port", u(0x120, 32)), P("dst_mac", u(0x020000000100+uint64(n), 48)),
			P("src_mac", u(0x020000000011, 48)), P("outer_src_addr", a4(netip.MustParseAddr("192.168.1.11"))), P("outer_dst_addr", a4(addrN("192.168.2.0", n))),
			P("vni", u(4096, 24)), P("udp_port", u(4789, 16)), P("inner_dst_mac", u(0x660000000100+uint64(n), 48)), P("inner_src_mac", u(0x660000000001, 48)),
			P("endpoint_id", u(120, 32)), P("flags", u(0, 8))), entry.Exact("nexthop_id", u(uint64(20000+n), 32)))
	}
	for r := 0; r < benchRoutes; r++ {
		tbl(p4src.TableRouteV4, 0, act(string(p4src.ActionSetNexthop), P("nexthop_id", u(uint64(20000+r%100), 32)), P("flags", u(0, 8))),
			entry.LPM("dst_addr", a4(addrN("10.128.0.0", r*64)), 26))
	}
	return es
}

type noIDs struct{}

func (noIDs) MemberID(string, string) (uint32, bool) { return 0, false }
func (noIDs) GroupID(string, string) (uint32, bool)  { return 0, false }

// benchPipeline builds the benchmark node; now is the store clock (nanoseconds), advanced by the caller.
func benchPipeline(b *testing.B, now *atomic.Int64) (*Pipeline, *tables.Store) {
	b.Helper()
	info, err := p4src.P4Info()
	if err != nil {
		b.Fatal(err)
	}
	in, err := p4rt.NewInfo(info)
	if err != nil {
		b.Fatal(err)
	}
	st := tables.NewStore(tables.Options{Workers: 1, Now: now.Load})
	if err := st.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, &p4v1.ForwardingPipelineConfig{P4Info: info}); err != nil {
		b.Fatal(err)
	}
	var ups []*p4v1.Update
	for _, e := range benchEntries() {
		ent, err := in.Encode(e, noIDs{})
		if err != nil {
			b.Fatalf("%v: %v", e, err)
		}
		ups = append(ups, &p4v1.Update{Type: p4v1.Update_INSERT, Entity: ent})
	}
	write(b, st, ups)
	p, err := New(Options{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	return p, st
}

// tcpPacket builds an Ethernet/IPv4/TCP packet from local pod i to local pod j.
func tcpPacket(i, j int, sport uint16, flags string, payload int) []byte {
	return mustPacket(fmt.Sprintf("eth(dst=ee:ee:ee:ee:ee:ee, src=0a:58:0a:41:00:%02x) / ipv4(src=%s, dst=%s) / tcp(sport=%d, dport=80, flags=%s) / payload(len=%d)",
		i%256, benchAddr(i), benchAddr(j), sport, flags, payload))
}

func benchRun(b *testing.B, p *Pipeline, w *Worker, pk []byte, port uint32) {
	runtime.GC() // the setup's garbage is not the pipeline's
	b.ReportAllocs()
	b.SetBytes(int64(len(pk)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := w.Process(pk, port); !res.Forwarded() {
			b.Fatalf("dropped: %s", DropReasonName(res.DropReason))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpps")
}

// BenchmarkPipelineEstablished: a pod-to-pod TCP segment of an established flow (conntrack hit, no
// policy), 64 and 1500 bytes, on the full benchmark node.
func BenchmarkPipelineEstablished(b *testing.B) {
	var now atomic.Int64
	now.Store(1)
	p, _ := benchPipeline(b, &now)
	w, _ := p.NewWorker(0)
	if res := w.Process(tcpPacket(0, 1, 40000, "S", 0), benchPort(0)); !res.Forwarded() {
		b.Fatalf("syn dropped: %s", DropReasonName(res.DropReason))
	}
	for _, size := range []int{10, 1446} {
		pk := tcpPacket(0, 1, 40000, "A", size)
		b.Run(fmt.Sprintf("%dB", len(pk)), func(b *testing.B) { benchRun(b, p, w, pk, benchPort(0)) })
	}
}

// BenchmarkPipelineNewFlow: the first packet of a new pod-to-pod flow: conntrack miss, service miss,
// routing, the source's egress list and the destination's ingress list (three non-matching policies
// with an IP-set lookup each, then the profile) over several passes, then learning both conntrack
// entries. Each iteration is a new flow (source port and source pod vary); learned entries are
// expired outside the timer.
func BenchmarkPipelineNewFlow(b *testing.B) {
	var now atomic.Int64
	now.Store(1)
	p, st := benchPipeline(b, &now)
	w, _ := p.NewWorker(0)
	const flows = 50000
	pks := make([][]byte, 0, flows)
	for f := 0; f < flows; f++ {
		pks = append(pks, tcpPacket(f%benchEndpoints, (f+1)%benchEndpoints, uint16(10000+f/benchEndpoints), "S", 10))
	}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	passes := 0
	for i := 0; i < b.N; i++ {
		k := i % flows
		if k == 0 && i > 0 {
			b.StopTimer()
			now.Add(int64(time.Hour))
			st.Sweep()
			b.StartTimer()
		}
		res := w.Process(pks[k], benchPort(k%benchEndpoints))
		if !res.Forwarded() {
			b.Fatalf("dropped: %s", DropReasonName(res.DropReason))
		}
		passes += res.Passes
	}
	b.StopTimer()
	b.ReportMetric(float64(passes)/float64(b.N), "passes/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpps")
}

// BenchmarkPipelineNewFlowWalk: the same walk without learning (the flow is denied at the end of the
// destination's list), so the policy program's cost is seen alone.
func BenchmarkPipelineNewFlowWalk(b *testing.B) {
	var now atomic.Int64
	now.Store(1)
	p, st := benchPipeline(b, &now)
	// Deny at the destination's profile: pod 1's ingress list ends in a deny instead of the profile.
	info, _ := p4rt.NewInfo(p4src.MustP4Info())
	e := entry.Table(string(p4src.TablePolicyList), 0, entry.Act(string(p4src.ActionListEnd), entry.P("verdict", u(uint64(p4src.VerdictDeny), 8))),
		entry.Exact("list_id", u(2, 32)), entry.Exact("position", u(3, 16)))
	ent, err := info.Encode(e, noIDs{})
	if err != nil {
		b.Fatal(err)
	}
	write(b, st, []*p4v1.Update{{Type: p4v1.Update_MODIFY, Entity: ent}})
	w, _ := p.NewWorker(0)
	pk := tcpPacket(0, 1, 40000, "S", 10)
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	passes := 0
	for i := 0; i < b.N; i++ {
		res := w.Process(pk, benchPort(0))
		if res.Forwarded() || res.DropReason != p4src.DropPolicyDeny {
			b.Fatalf("not denied: %+v", res)
		}
		passes += res.Passes
	}
	b.StopTimer()
	b.ReportMetric(float64(passes)/float64(b.N), "passes/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpps")
}

// longWalk gives pod 0's egress and pod 1's ingress lists of the issue-7 shape — 5 and 10 policies of 11
// steps, each step an IP-set lookup (sets of 100 members) whose rule does not match, then the allow-all
// profile — so that a new flow from pod 0 to pod 1 walks all 165 steps: the worst case of the translator's
// scale model (p4src/README.md, "Passes"). With deny, pod 1's list ends in a deny instead of the profile.
func longWalk(b *testing.B, st *tables.Store, deny bool) {
	b.Helper()
	info, _ := p4rt.NewInfo(p4src.MustP4Info())
	var es []entry.Entry
	P, act := entry.P, entry.Act
	tbl := func(t p4src.TableName, prio int32, a entry.Action, m ...entry.Match) {
		es = append(es, entry.Table(string(t), prio, a, m...))
	}
	const steps = 11
	first := func(q int) uint64 { return uint64(500000 + q*100) }
	for q := 0; q < 15; q++ {
		for k := 0; k < steps; k++ {
			step := first(q) + uint64(k)
			miss := step + 1
			if k == steps-1 {
				miss = 0
			}
			tbl(p4src.TablePolicyStep, 0, act(string(p4src.ActionRunStep), P("lookup", u(uint64(p4src.LookupNetSrc), 8)),
				P("set_id", u(uint64(1+(q*steps+k)%benchPolicies), 32)), P("miss_step", u(miss, 32))), entry.Exact("step_id", u(step, 32)))
			tbl(p4src.TablePolicyRule, 20, act(string(p4src.ActionRuleAllow), P("rule_id", u(1, 32))), entry.Exact("step_id", u(step, 32)),
				entry.Optional("set_hit", u(1, 1)), entry.Ternary("protocol", u(6, 8), u(0xff, 8)), entry.Range("dst_port", u(1, 16), u(1, 16)))
		}
	}
	list := func(id uint64, pols []int, end entry.Action) {
		n := uint64(len(pols))
		for pos, q := range pols {
			tbl(p4src.TablePolicyList, 0, act(string(p4src.ActionRunPolicy), P("first_step", u(first(q), 32)), P("next_tier_pos", u(n, 16))),
				entry.Exact("list_id", u(id, 32)), entry.Exact("position", u(uint64(pos), 16)))
		}
		tbl(p4src.TablePolicyList, 0, end, entry.Exact("list_id", u(id, 32)), entry.Exact("position", u(n, 16)))
	}
	profile := act(string(p4src.ActionRunPolicy), P("first_step", u(1, 32)), P("next_tier_pos", u(16, 16)))
	list(9000, []int{0, 1, 2, 3, 4}, profile)
	dstEnd := profile
	if deny {
		dstEnd = act(string(p4src.ActionListEnd), P("verdict", u(uint64(p4src.VerdictDeny), 8)))
	}
	list(9001, []int{5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, dstEnd)
	var ups []*p4v1.Update
	for _, e := range es {
		ent, err := info.Encode(e, noIDs{})
		if err != nil {
			b.Fatal(err)
		}
		ups = append(ups, &p4v1.Update{Type: p4v1.Update_INSERT, Entity: ent})
	}
	for _, pe := range []struct {
		ep    uint64
		stage uint8
		list  uint64
	}{{1000, p4src.StageWorkloadEgress, 9000}, {1001, p4src.StageWorkloadIngress, 9001}} {
		ent, err := info.Encode(entry.Table(string(p4src.TableEndpointPolicy), 0, act(string(p4src.ActionSetPolicyList), P("list_id", u(pe.list, 32))),
			entry.Exact("endpoint_id", u(pe.ep, 32)), entry.Exact("stage", u(uint64(pe.stage), 8))), noIDs{})
		if err != nil {
			b.Fatal(err)
		}
		ups = append(ups, &p4v1.Update{Type: p4v1.Update_MODIFY, Entity: ent})
	}
	write(b, st, ups)
}

// BenchmarkPipelineNewFlowLongWalk: the first packet of a new flow whose lists have the issue-7 scale's
// worst shape (165 steps, see longWalk): allowed by the profile at the end, then learned. Each iteration
// is a new flow (source port varies); learned entries are expired outside the timer.
func BenchmarkPipelineNewFlowLongWalk(b *testing.B) {
	var now atomic.Int64
	now.Store(1)
	p, st := benchPipeline(b, &now)
	longWalk(b, st, false)
	w, _ := p.NewWorker(0)
	const flows = 50000
	pks := make([][]byte, 0, flows)
	for f := 0; f < flows; f++ {
		pks = append(pks, tcpPacket(0, 1, uint16(10000+f), "S", 10))
	}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	passes := 0
	for i := 0; i < b.N; i++ {
		k := i % flows
		if k == 0 && i > 0 {
			b.StopTimer()
			now.Add(int64(time.Hour))
			st.Sweep()
			b.StartTimer()
		}
		res := w.Process(pks[k], benchPort(0))
		if !res.Forwarded() {
			b.Fatalf("dropped: %s after %d passes", DropReasonName(res.DropReason), res.Passes)
		}
		passes += res.Passes
	}
	b.StopTimer()
	b.ReportMetric(float64(passes)/float64(b.N), "passes/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e3, "kflows/s")
}

// BenchmarkPipelineNewFlowLongWalkDenied: the same walk without learning (pod 1's list ends in a deny).
func BenchmarkPipelineNewFlowLongWalkDenied(b *testing.B) {
	var now atomic.Int64
	now.Store(1)
	p, st := benchPipeline(b, &now)
	longWalk(b, st, true)
	w, _ := p.NewWorker(0)
	pk := tcpPacket(0, 1, 40000, "S", 10)
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	passes := 0
	for i := 0; i < b.N; i++ {
		res := w.Process(pk, benchPort(0))
		if res.Forwarded() || res.DropReason != p4src.DropPolicyDeny {
			b.Fatalf("not denied by policy: %+v", res)
		}
		passes += res.Passes
	}
	b.StopTimer()
	b.ReportMetric(float64(passes)/float64(b.N), "passes/op")
}
