package translator

import (
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

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

// softswitch loads an entry set into a fresh store running k8s.p4 and returns the pipeline over it.
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
	var ups []*p4v1.Update
	for _, e := range set.Sorted() {
		ent, err := p4info(t).Encode(e, noIDs{})
		if err != nil {
			t.Fatalf("%v: %v", e, err)
		}
		ups = append(ups, &p4v1.Update{Type: p4v1.Update_INSERT, Entity: ent})
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

// TestDifferentialAgainstTheSoftswitch: random models (policies with every rule field, tiers with pass,
// profiles, IP sets, named ports, host endpoints, v4/v6) and random packets: the softswitch pipeline
// running the translator's entries forwards exactly the packets the oracle says Felix allows, and drops
// the others for a policy reason. Seeds are logged.
func TestDifferentialAgainstTheSoftswitch(t *testing.T) {
	seed := firstSeed(t)
	n, fails := 0, 0
	stats := map[string]int{}
	for i := 0; i < *flagModels && fails < 5; i++ {
		g := gen.New(seed + uint64(i))
		s := stateOf(t, g.Model())
		tr := New(testPorts, genNode())
		res := tr.Apply(s, model.Changes{Resync: true})
		var now atomic.Int64
		now.Store(1)
		pl, st := softswitch(t, res.Entries, &now)
		w, err := pl.NewWorker(0)
		if err != nil {
			t.Fatal(err)
		}
		m := &pathModel{set: res.Entries, w: newWalker(res.Entries)}
		on := oracleNode()
		type ingress struct {
			in    oracle.Ingress
			port  uint32
			mac   string
			outer string // VXLAN from a remote node's VTEP
		}
		var ins []ingress
		for k, ep := range s.WorkloadEndpoints.All() {
			kk := k
			p, _ := testPorts.PortID(ep.InterfaceName)
			mac := "0a:58:00:00:00:01"
			if len(ep.MAC) == 6 {
				mac = ep.MAC.String()
			}
			ins = append(ins, ingress{oracle.Ingress{Workload: &kk}, p, mac, ""})
		}
		hp, _ := testPorts.PortID(genNode().Node.HostInterface)
		up, _ := testPorts.PortID(genNode().Node.UplinkInterface)
		ins = append(ins, ingress{oracle.Ingress{Host: true}, hp, "02:00:00:00:00:01", ""},
			ingress{oracle.Ingress{Iface: gen.Uplink}, up, "02:00:00:00:01:01", ""})
		if outer := vxlanOuter(s); outer != "" {
			ins = append(ins, ingress{oracle.Ingress{Iface: "vxlan.calico"}, up, "66:00:00:00:00:02", outer})
		}
		for j := 0; j < 60 && fails < 5; j++ {
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
				ep, _ := s.WorkloadEndpoints.Get(*in.in.Workload)
				for _, nn := range append(append([]netip.Prefix(nil), ep.IPv4Nets...), ep.IPv6Nets...) {
					if nn.Addr().Is4() == p.Dst.Is4() {
						p.Src = nn.Addr()
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
			now.Add(int64(1e15))
			st.Sweep()
			got := w.Process(frameWith(p, in.mac, "S", in.outer), in.port)
			n++
			allowed := got.Forwarded()
			switch {
			case got.DropReason == p4src.DropPassBudget:
				stats["pass budget"]++ // a walk longer than PASS_BUDGET (reported by the translator)
				continue
			case allowed == want.Allowed:
				if !allowed && got.DropReason != p4src.DropPolicyDeny && got.DropReason != p4src.DropSpoofedSource &&
					got.DropReason != p4src.DropNoRoute && got.DropReason != p4src.DropUnknownPort {
					fails++
					t.Errorf("seed %d: %s → %s, %+v: dropped for reason %d; the oracle denies it (%s)",
						seed+uint64(i), in.in, to, p, got.DropReason, want.Why)
				}
				stats["agree"]++
				if allowed {
					// The reply, from where the packet went: established for both (unless untracked).
					checkReply(t, seed+uint64(i), s, on, w, m, p, want, to, ins2(ins, func(x ingress) (oracle.Ingress, uint32, string, string) {
						return x.in, x.port, x.mac, x.outer
					}), stats, &fails)
				}
				continue
			case got.DropReason == p4src.DropNoRoute:
				stats["no usable next hop"]++ // underlay reachability: not modelled by the oracle
				continue
			}
			fails++
			tr, _ := pl.Trace(frameWith(p, in.mac, "S", in.outer), in.port)
			t.Errorf("seed %d: %s → %s, packet %+v: oracle allowed=%v (%s), softswitch forwarded=%v (drop reason %d)\n%s",
				seed+uint64(i), in.in, to, p, want.Allowed, want.Why, allowed, got.DropReason, indent(fmt.Sprint(tr)))
		}
	}
	t.Logf("%d packets: %v", n, stats)
}

func indent(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 60 {
		lines = append(lines[:60], "...")
	}
	return "    " + strings.Join(lines, "\n    ")
}

// replyIngress describes where a reply enters.
type replyIngress struct {
	in    oracle.Ingress
	port  uint32
	mac   string
	outer string
}

func ins2[T any](xs []T, f func(T) (oracle.Ingress, uint32, string, string)) []replyIngress {
	out := make([]replyIngress, 0, len(xs))
	for _, x := range xs {
		in, port, mac, outer := f(x)
		out = append(out, replyIngress{in, port, mac, outer})
	}
	return out
}

// checkReply sends the reply of an allowed flow and checks it passes as established traffic.
func checkReply(t *testing.T, seed uint64, s *model.State, on oracle.Node, w *pipeline.Worker, m *pathModel, p oracle.Packet,
	first oracle.Verdict, to oracle.Destination, ins []replyIngress, stats map[string]int, fails *int) {
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
	var from *replyIngress
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
	got := w.Process(frameWith(r, from.mac, "SA", from.outer), from.port)
	if !got.Forwarded() && got.DropReason == p4src.DropNoRoute {
		stats["no usable next hop"]++
		return
	}
	if got.Forwarded() != want.Allowed {
		*fails++
		t.Errorf("seed %d: reply %s of %+v: oracle allowed=%v (%s), softswitch forwarded=%v (drop reason %d)",
			seed, from.in, p, want.Allowed, want.Why, got.Forwarded(), got.DropReason)
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
