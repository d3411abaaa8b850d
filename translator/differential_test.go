package translator

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/ipu/softswitch/pipeline"
	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
	"github.com/calico-p4/calico-p4/p4src/vectors"
	"github.com/calico-p4/calico-p4/translator/internal/gen"
	"github.com/calico-p4/calico-p4/translator/oracle"
)

type noIDs struct{}

func (noIDs) MemberID(string, string) (uint32, bool) { return 0, false }
func (noIDs) GroupID(string, string) (uint32, bool)  { return 0, false }

// softswitch loads an entry set (action-profile members, groups, then table entries, the order the
// programmer writes them in) into a fresh store running k8s.p4 and returns the pipeline over it.
func softswitch(t testing.TB, set *entry.Set, now *atomic.Int64) (*pipeline.Pipeline, *tables.Store) {
	t.Helper()
	info, err := p4src.P4Info()
	if err != nil {
		t.Fatal(err)
	}
	st := tables.NewStore(tables.Options{Workers: 1, Now: now.Load})
	if err := st.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT,
		&p4v1.ForwardingPipelineConfig{P4Info: info}); err != nil {
		t.Fatal(err)
	}
	ids := seqIDs{}
	var ups []*p4v1.Update
	for _, kind := range []entry.Kind{entry.KindMember, entry.KindGroup, entry.KindTable} {
		for _, e := range set.Sorted() {
			if e.Kind != kind {
				continue
			}
			ent, err := p4info(t).Encode(e, ids)
			if err != nil {
				t.Fatalf("%v: %v", e, err)
			}
			ups = append(ups, &p4v1.Update{Type: p4v1.Update_INSERT, Entity: ent})
		}
	}
	errs, err := st.Write(ups, p4v1.WriteRequest_CONTINUE_ON_ERROR)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("the softswitch refused %v: %v", ups[i], e)
		}
	}
	p, err := pipeline.New(pipeline.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return p, st
}

// frameWith builds a frame with the given TCP flags; outer, when set, is the VXLAN encapsulation
// ("eth(…) / ipv4(…) / udp(…) / vxlan(…)") the inner frame is carried in.
func frameWith(p oracle.Packet, srcMAC, tcpFlags, outer string) []byte {
	ip := fmt.Sprintf("ipv4(src=%s, dst=%s", p.Src, p.Dst)
	if p.Src.Is6() {
		ip = fmt.Sprintf("ipv6(src=%s, dst=%s", p.Src, p.Dst)
	}
	var l4 string
	switch p.Proto {
	case oracle.ProtoTCP:
		ip += ")"
		l4 = fmt.Sprintf("tcp(sport=%d, dport=%d, flags=%s)", p.SrcPort, p.DstPort, tcpFlags)
	case oracle.ProtoUDP:
		ip += ")"
		l4 = fmt.Sprintf("udp(sport=%d, dport=%d) / payload(len=8)", p.SrcPort, p.DstPort)
		if p.DstPort == 4789 {
			// Parsed as VXLAN: carry a whole inner frame.
			l4 = fmt.Sprintf("udp(sport=%d, dport=%d) / vxlan(vni=1) / eth(dst=02:00:00:00:00:02, src=02:00:00:00:00:03) / "+
				"ipv4(src=192.0.2.1, dst=192.0.2.2) / udp(sport=1, dport=2) / payload(len=8)", p.SrcPort, p.DstPort)
		}
	case 4:
		ip += ")"
		l4 = "ipv4(src=192.0.2.1, dst=192.0.2.2) / udp(sport=1, dport=2) / payload(len=8)"
	case oracle.ProtoSCTP:
		ip += ")"
		l4 = fmt.Sprintf("sctp(sport=%d, dport=%d) / payload(len=8)", p.SrcPort, p.DstPort)
	case oracle.ProtoICMP:
		ip += ")"
		l4 = fmt.Sprintf("icmp(type=%d, code=%d, id=7, seq=1)", p.ICMPType, p.ICMPCode)
	case oracle.ProtoICMPv6:
		ip += ")"
		l4 = fmt.Sprintf("icmpv6(type=%d, code=%d, id=7, seq=1)", p.ICMPType, p.ICMPCode)
	default:
		if p.Src.Is6() {
			ip += fmt.Sprintf(", nh=%d)", p.Proto)
		} else {
			ip += fmt.Sprintf(", proto=%d)", p.Proto)
		}
		l4 = "payload(len=8)"
	}
	desc := fmt.Sprintf("eth(dst=ee:ee:ee:ee:ee:ee, src=%s) / %s / %s", srcMAC, ip, l4)
	if outer != "" {
		desc = outer + " / " + desc
	}
	b, err := vectors.ParsePacket(desc)
	if err != nil {
		panic(fmt.Sprintf("%s: %v", desc, err))
	}
	return b
}

// pipelinePacket adapts a random packet to what a packet test can send as a new flow: no ICMP errors
// (they need a quoted header and are "related") and no neighbour discovery (answered or dropped as
// link-local before policy).
func pipelinePacket(p oracle.Packet) oracle.Packet {
	switch {
	case p.Proto == oracle.ProtoICMP && (p.ICMPType == 3 || p.ICMPType == 11 || p.ICMPType == 12):
		p.ICMPType = 8
	case p.Proto == oracle.ProtoICMPv6 && (p.ICMPType <= 4 || (p.ICMPType >= 133 && p.ICMPType <= 137)):
		p.ICMPType = 128
	}
	return p
}

// diffIngress is where a generated packet enters the node: the oracle's view and the pipeline's port,
// the source MAC, and (VXLAN from another node) the outer headers.
type diffIngress struct {
	in    oracle.Ingress
	port  uint32
	mac   string
	outer string
}

// diffIngresses lists where packets enter for state s: its workloads (and, with gone, the generated
// workloads it does not have: their packets must meet no port), the host, the uplink and, last, VXLAN
// from another node when s has an overlay.
func diffIngresses(s *model.State, gone bool) []diffIngress {
	var ins []diffIngress
	for k, ep := range s.WorkloadEndpoints.All() {
		kk := k
		p, _ := testPorts.PortID(ep.InterfaceName)
		mac := "0a:58:00:00:00:01"
		if len(ep.MAC) == 6 {
			mac = ep.MAC.String()
		}
		ins = append(ins, diffIngress{oracle.Ingress{Workload: &kk}, p, mac, ""})
	}
	if gone {
		for i, w := range gen.Workloads {
			id := gen.WorkloadID(i)
			k := model.WorkloadEndpointKey{OrchestratorID: id.OrchestratorId, WorkloadID: id.WorkloadId, EndpointID: id.EndpointId}
			if _, ok := s.WorkloadEndpoints.Get(k); ok {
				continue
			}
			if slices.ContainsFunc(ins, func(x diffIngress) bool { p, _ := testPorts.PortID(w.Iface); return x.port == p }) {
				continue // another endpoint has its interface
			}
			p, _ := testPorts.PortID(w.Iface)
			ins = append(ins, diffIngress{oracle.Ingress{Workload: &k}, p, w.MAC, ""})
		}
	}
	hp, _ := testPorts.PortID(genNode().Node.HostInterface)
	up, _ := testPorts.PortID(genNode().Node.UplinkInterface)
	ins = append(ins, diffIngress{oracle.Ingress{Host: true}, hp, "02:00:00:00:00:01", ""},
		diffIngress{oracle.Ingress{Iface: gen.Uplink}, up, "02:00:00:00:01:01", ""})
	if outer := vxlanOuter(s); outer != "" {
		ins = append(ins, diffIngress{oracle.Ingress{Iface: "vxlan.calico"}, up, "66:00:00:00:00:02", outer})
	}
	return ins
}

// diffRig is one softswitch store running k8s.p4 with the pipeline over it, and the counts of a
// differential test.
type diffRig struct {
	t     *testing.T
	pl    *pipeline.Pipeline
	w     *pipeline.Worker
	st    *tables.Store
	now   *atomic.Int64
	stats map[string]int
	n     int
	fails int
}

func newDiffRig(t *testing.T, set *entry.Set, stats map[string]int) *diffRig {
	d := &diffRig{t: t, now: new(atomic.Int64), stats: stats}
	d.now.Store(1)
	d.pl, d.st = softswitch(t, set, d.now)
	w, err := d.pl.NewWorker(0)
	if err != nil {
		t.Fatal(err)
	}
	d.w = w
	return d
}

// update writes the differences between two entry sets into the store as one atomic write (what the
// programmer does for the embedded target).
func (d *diffRig) update(from, to *entry.Set) {
	t := d.t
	t.Helper()
	delta := entry.Diff(from, to)
	var ups []*p4v1.Update
	add := func(typ p4v1.Update_Type, es []entry.Entry) {
		for _, e := range es {
			ent, err := p4info(t).Encode(e, noIDs{})
			if err != nil {
				t.Fatalf("%v: %v", e, err)
			}
			ups = append(ups, &p4v1.Update{Type: typ, Entity: ent})
		}
	}
	add(p4v1.Update_DELETE, delta.Delete)
	add(p4v1.Update_MODIFY, delta.Modify)
	add(p4v1.Update_INSERT, delta.Insert)
	if len(ups) == 0 {
		return
	}
	errs, err := d.st.Write(ups, p4v1.WriteRequest_DATAPLANE_ATOMIC)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if e != nil && status.Code(e) != codes.Aborted {
			t.Fatalf("the softswitch refused %v: %v", ups[i], e)
		}
	}
}

// check sends count random new-flow packets (and the replies of those allowed) through the pipeline and
// compares each outcome with the oracle's verdict for state s. what names the state in failures (it must
// say how to reproduce it).
func (d *diffRig) check(what string, g *gen.Gen, s *model.State, ins []diffIngress, count int) {
	t, stats := d.t, d.stats
	on := oracleNode()
	for j := 0; j < count && d.fails < 5; j++ {
		in := ins[g.R.IntN(len(ins))]
		if g.R.IntN(4) == 0 {
			in = ins[len(ins)-1] // more from outside: host endpoints' untracked, pre-DNAT and forward checks
			if in.outer != "" && g.R.IntN(2) == 0 {
				in = ins[len(ins)-2]
			}
		}
		p := pipelinePacket(g.Packet())
		if in.outer != "" && !p.Src.Is4() {
			continue // the generated VTEPs carry IPv4 only
		}
		if in.in.Workload == nil && (p.Proto == 4 || (p.Proto == oracle.ProtoUDP && p.DstPort == 4789)) {
			// Tunnel packets from outside are terminated when they come from a known node: the
			// oracle does not model the kernel's tunnel devices.
			p.Proto, p.DstPort = oracle.ProtoTCP, 80
		}
		if in.in.Host && g.R.IntN(4) > 0 {
			p.Src = nodeAddr(p.Dst) // mostly the host's own traffic (traffic it forwards is tested too)
		}
		if in.in.Workload != nil && g.R.IntN(4) > 0 {
			if ep, ok := s.WorkloadEndpoints.Get(*in.in.Workload); ok {
				for _, nn := range append(append([]netip.Prefix(nil), ep.IPv4Nets...), ep.IPv6Nets...) {
					if nn.Addr().Is4() == p.Dst.Is4() {
						p.Src = nn.Addr()
					}
				}
			}
		}
		want, to := oracle.Evaluate(s, on, in.in, p)
		if in.outer != "" {
			stats["of which VXLAN from another node"]++
		}
		switch {
		case want.Untracked:
			stats["of which allowed by untracked policy"]++
		case want.Accepted:
			stats["of which allowed by pre-DNAT policy"]++
		}
		if in.in.Host {
			if oracle.HostOwns(s, on, p.Src) {
				stats["of which the host's own traffic"]++
			} else {
				stats["of which forwarded by the host"]++
			}
		}
		// Forget what earlier packets taught conntrack: each packet is a new flow.
		d.now.Add(int64(1e15))
		d.st.Sweep()
		got := d.w.Process(frameWith(p, in.mac, "S", in.outer), in.port)
		d.n++
		allowed := got.Forwarded()
		switch {
		case got.DropReason == p4src.DropPassBudget:
			stats["pass budget"]++ // a walk longer than PASS_BUDGET (reported by the translator)
			continue
		case allowed == want.Allowed:
			// A list naming a policy or profile the model does not have runs into a missing step: the
			// walk fails closed with DROP_POLICY_PROGRAM (translator/policy.go; change sequences reach it).
			missing := got.DropReason == p4src.DropPolicyProgram && strings.Contains(want.Why, " missing")
			if !allowed && got.DropReason != p4src.DropPolicyDeny && got.DropReason != p4src.DropSpoofedSource &&
				got.DropReason != p4src.DropNoRoute && got.DropReason != p4src.DropUnknownPort && !missing {
				d.fails++
				t.Errorf("%s: %s → %s, %+v: dropped for reason %d; the oracle denies it (%s)",
					what, in.in, to, p, got.DropReason, want.Why)
			}
			stats["agree"]++
			if allowed {
				// The reply, from where the packet went: established for both (unless untracked).
				d.checkReply(what, s, on, p, want, to, ins)
			}
			continue
		case got.DropReason == p4src.DropNoRoute:
			stats["no usable next hop"]++ // underlay reachability: not modelled by the oracle
			continue
		}
		d.fails++
		tr, _ := d.pl.Trace(frameWith(p, in.mac, "S", in.outer), in.port)
		t.Errorf("%s: %s → %s, packet %+v: oracle allowed=%v (%s), softswitch forwarded=%v (drop reason %d)\n%s",
			what, in.in, to, p, want.Allowed, want.Why, allowed, got.DropReason, indent(fmt.Sprint(tr)))
	}
}

// TestDifferentialAgainstTheSoftswitch: random models (policies with every rule field, tiers with pass,
// profiles, IP sets, named ports, host endpoints, v4/v6) and random packets: the softswitch pipeline
// running the translator's entries forwards exactly the packets the oracle says Felix allows, and drops
// the others for a policy reason. Seeds are logged.
func TestDifferentialAgainstTheSoftswitch(t *testing.T) {
	seed := firstSeed(t)
	stats := map[string]int{}
	n, fails := 0, 0
	for i := 0; i < *flagModels && fails < 5; i++ {
		g := gen.New(seed + uint64(i))
		s := stateOf(t, g.Model())
		tr := New(testPorts, genNode())
		res := tr.Apply(s, model.Changes{Resync: true})
		d := newDiffRig(t, res.Entries, stats)
		d.fails = fails
		d.check(fmt.Sprintf("seed %d", seed+uint64(i)), g, s, diffIngresses(s, false), 60)
		n, fails = n+d.n, d.fails
	}
	t.Logf("%d packets: %v", n, stats)
}

// TestDifferentialUnderChangeSequences: random models, then random change sequences (policies, profiles,
// IP sets and their deltas, workload and host endpoints, routes, VTEPs, pools, encapsulation) translated
// incrementally (Apply with each batch's changes, as the manager does) and written into one softswitch
// store as the differences, one atomic write per batch: after every batch, the pipeline forwards exactly
// the packets the oracle allows for the state reached, and packets from workloads removed meet no port.
// Change sequences reach states fresh models never have (a host endpoint replaced, an IP set removed while
// a rule names it, an endpoint naming a removed policy, routes and VTEPs changed under live endpoints).
// Seeds are logged; -models (a tenth of it are sequences) and -changes size the run.
func TestDifferentialUnderChangeSequences(t *testing.T) {
	seed := seedRange(t, 10)
	models := max(1, *flagModels/10)
	stats := map[string]int{}
	n, fails, batches := 0, 0, 0
	for i := 0; i < models && fails < 5; i++ {
		g := gen.New(seed + uint64(i))
		live := model.NewState()
		applyMsgs(t, live, g.Model()...)
		tr := New(testPorts, genNode())
		res := tr.Apply(live.Clone(), live.TakeChanges())
		d := newDiffRig(t, res.Entries, stats)
		d.fails = fails
		d.check(fmt.Sprintf("seed %d (change sequence), the model", seed+uint64(i)), g, live, diffIngresses(live, true), 40)
		installed := res.Entries.Clone()
		for j := 0; j < *flagChanges && d.fails < 5; j++ {
			applyMsgs(t, live, g.Change(setMembers(live))...)
			changes := live.TakeChanges()
			res = tr.Apply(live.Clone(), changes)
			d.update(installed, res.Entries)
			installed = res.Entries.Clone()
			batches++
			what := fmt.Sprintf("seed %d (change sequence), after change %d (%s)", seed+uint64(i), j, changes)
			if outsideFelix(live) {
				stats["states with a rule naming a missing IP set (fail-safe)"]++
			}
			d.check(what, g, live, diffIngresses(live, true), 40)
		}
		n, fails = n+d.n, d.fails
	}
	t.Logf("%d models, %d change batches, %d packets: %v", models, batches, n, stats)
}

// outsideFelix reports whether a policy or profile of s has a rule naming an IP set s does not have (or
// of the wrong type): a state Felix never sends, which the translator renders fail-safe.
func outsideFelix(s *model.State) bool {
	rules := func(in, out []model.Rule) bool {
		for _, r := range append(slices.Clone(in), out...) {
			if len(oracle.DanglingSets(s, &r)) > 0 {
				return true
			}
		}
		return false
	}
	for _, p := range s.Policies.All() {
		if rules(p.InboundRules, p.OutboundRules) {
			return true
		}
	}
	for _, p := range s.Profiles.All() {
		if rules(p.InboundRules, p.OutboundRules) {
			return true
		}
	}
	return false
}

func indent(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 60 {
		lines = append(lines[:60], "...")
	}
	return "    " + strings.Join(lines, "\n    ")
}

// checkReply sends the reply of an allowed flow and checks it passes as established traffic.
func (d *diffRig) checkReply(what string, s *model.State, on oracle.Node, p oracle.Packet, first oracle.Verdict,
	to oracle.Destination, ins []diffIngress) {
	t, stats := d.t, d.stats
	t.Helper()
	if first.Untracked || (p.Proto == oracle.ProtoICMP && p.ICMPType != 8) || (p.Proto == oracle.ProtoICMPv6 && p.ICMPType != 128) {
		return // untracked: conntrack knows nothing; ICMP other than echo: no reply to track
	}
	if to.Iface != "" {
		// natOutgoing: the reply comes back to the node's address (masquerade is not modelled here).
		inPool, masq := false, false
		for _, pool := range s.IPAMPools.All() {
			if pool.CIDR.Contains(p.Dst) {
				inPool = true
			}
			if pool.Masquerade && pool.CIDR.Contains(p.Src) {
				masq = true
			}
		}
		if masq && !inPool {
			return
		}
	}
	var from *diffIngress
	for i := range ins {
		x := &ins[i]
		switch {
		case to.Workload != nil && x.in.Workload != nil && *x.in.Workload == *to.Workload,
			to.Host && x.in.Host,
			to.Iface != "" && to.Iface == x.in.Iface && x.outer == "":
			from = x
		}
	}
	if from == nil {
		return
	}
	r := oracle.Packet{Src: p.Dst, Dst: p.Src, Proto: p.Proto, SrcPort: p.DstPort, DstPort: p.SrcPort, CT: oracle.CTEstablished}
	if to.Workload != nil {
		// 1:1 NAT: the reply comes from the internal address.
		ep, _ := s.WorkloadEndpoints.Get(*to.Workload)
		for _, n := range append(append([]netip.Prefix(nil), ep.IPv4Nets...), ep.IPv6Nets...) {
			if n.Addr().Is4() == r.Src.Is4() && !n.Contains(r.Src) {
				return // NATed flow: its reply tuple is the internal one (not modelled here)
			}
		}
	}
	switch p.Proto {
	case oracle.ProtoICMP:
		r.ICMPType = 0
	case oracle.ProtoICMPv6:
		r.ICMPType = 129
	}
	want, _ := oracle.Evaluate(s, on, from.in, r)
	got := d.w.Process(frameWith(r, from.mac, "SA", from.outer), from.port)
	if !got.Forwarded() && got.DropReason == p4src.DropNoRoute {
		stats["no usable next hop"]++
		return
	}
	if got.Forwarded() != want.Allowed {
		d.fails++
		t.Errorf("%s: reply %s of %+v: oracle allowed=%v (%s), softswitch forwarded=%v (drop reason %d)",
			what, from.in, p, want.Allowed, want.Why, got.Forwarded(), got.DropReason)
		return
	}
	stats["replies agree"]++
}

// vxlanOuter returns the outer headers of VXLAN from another node's VTEP to this node's, when the model
// has both and VXLAN enabled ("" otherwise).
func vxlanOuter(s *model.State) string {
	enc, _ := s.Encapsulation()
	if !enc.VXLANEnabled {
		return ""
	}
	local, ok := s.VTEPs.Get(gen.NodeName)
	if !ok || !local.ParentDeviceIP.IsValid() {
		return ""
	}
	for node, v := range s.VTEPs.All() {
		if node != gen.NodeName && v.ParentDeviceIP.IsValid() {
			return fmt.Sprintf("eth(dst=02:00:00:00:00:11, src=02:00:00:00:01:01) / ipv4(src=%s, dst=%s) / udp(sport=5555, dport=4789) / vxlan(vni=4096)",
				v.ParentDeviceIP, local.ParentDeviceIP)
		}
	}
	return ""
}
