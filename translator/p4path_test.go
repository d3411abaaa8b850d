package translator

import (
	"net/netip"
	"testing"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
	"github.com/calico-p4/calico-p4/translator/internal/gen"
	"github.com/calico-p4/calico-p4/translator/oracle"
)

// pathModel follows a packet through the classification, routing and check planning of k8s.p4
// (plan_next_check) over the translator's entries, with the walker for each check. It is a model of the
// program's control flow for policy verdicts only (no headers, no conntrack learning), used to test the
// translator end to end until the softswitch pipeline runs the entries itself.
type pathModel struct {
	set *entry.Set
	w   *walker
}

type epInfo struct {
	ep, kind, flags uint64
	ok              bool
}

func (m *pathModel) lookupExact(table p4src.TableName, field p4src.MatchFieldName, v uint64) (entry.Entry, bool) {
	for _, e := range m.set.All() {
		if e.Table != string(table) {
			continue
		}
		if mm, ok := matchOf(e, field); ok && bytesUint(mm.Value) == v {
			return e, true
		}
	}
	return entry.Entry{}, false
}

func (m *pathModel) portEndpoint(port uint32) epInfo {
	e, ok := m.lookupExact(p4src.TablePortEndpoint, p4src.KeyPortEndpointPort, uint64(port))
	if !ok {
		return epInfo{}
	}
	return epInfo{paramOf(e.Action, p4src.ParamSetEndpointEndpointID), paramOf(e.Action, p4src.ParamSetEndpointKind),
		paramOf(e.Action, p4src.ParamSetEndpointFlags), true}
}

// lpmLookup returns the entry of table whose lpm field holds the longest prefix containing a.
func (m *pathModel) lpmLookup(table p4src.TableName, field p4src.MatchFieldName, a netip.Addr, extra func(entry.Entry) bool) (entry.Entry, bool) {
	best, bestLen := entry.Entry{}, -1
	for _, e := range m.set.All() {
		if e.Table != string(table) || (extra != nil && !extra(e)) {
			continue
		}
		l := 0
		if mm, ok := matchOf(e, field); ok {
			p := netip.PrefixFrom(addrOf(mm.Value, a.BitLen()), int(mm.PrefixLen))
			if !p.Contains(a) {
				continue
			}
			l = p.Bits()
		}
		if l > bestLen {
			best, bestLen = e, l
		}
	}
	return best, bestLen >= 0
}

// destination routes dst: the next hop's kind, endpoint and flags (kind 0: dropped).
func (m *pathModel) destination(dst netip.Addr) epInfo {
	table, key := p4src.TableRouteV4, p4src.KeyRouteV4DstAddr
	if dst.Is6() {
		table, key = p4src.TableRouteV6, p4src.KeyRouteV6DstAddr
	}
	r, ok := m.lpmLookup(table, key, dst, nil)
	if !ok || r.Action.Name != string(p4src.ActionSetNexthop) {
		return epInfo{}
	}
	nh, ok := m.lookupExact(p4src.TableNexthop, p4src.KeyNexthopNexthopID, paramOf(r.Action, p4src.ParamSetNexthopNexthopID))
	if !ok {
		return epInfo{}
	}
	kinds := map[string]uint64{string(p4src.ActionNHLocal): uint64(p4src.EPKindWorkload), string(p4src.ActionNHHost): uint64(p4src.EPKindHost)}
	kind, ok := kinds[nh.Action.Name]
	if !ok {
		kind = uint64(p4src.EPKindUplink)
	}
	return epInfo{paramOf(nh.Action, "endpoint_id"), kind, paramOf(nh.Action, "flags"), true}
}

// hostOrigin: a packet from the host port (endpoint ep) with source a is the host's own traffic when the
// host endpoint's source_guard has an entry for a (k8s.p4's host_origin).
func (m *pathModel) hostOrigin(ep uint64, a netip.Addr) bool {
	table, key, epKey := p4src.TableSourceGuardV4, p4src.KeySourceGuardV4SrcAddr, p4src.KeySourceGuardV4EndpointID
	if a.Is6() {
		table, key, epKey = p4src.TableSourceGuardV6, p4src.KeySourceGuardV6SrcAddr, p4src.KeySourceGuardV6EndpointID
	}
	_, ok := m.lpmLookup(table, key, a, func(e entry.Entry) bool {
		mm, _ := matchOf(e, epKey)
		return bytesUint(mm.Value) == ep
	})
	return ok
}

// verdict runs the checks k8s.p4's plan_next_check plans for a packet from src; routed is false when the
// program has no usable next hop.
func (m *pathModel) verdict(src epInfo, p oracle.Packet, ct oracle.CTState) (allowed bool, routed bool) {
	if !src.ok {
		return false, true
	}
	dst := p.Dst
	if e, ok := m.lookupExact(natTable(dst), natKey(dst), bytesUint(addrBytes(dst))); ok {
		dst = addrOf(e.Action.Params[0].Value, dst.BitLen())
	}
	d := m.destination(dst)
	if !d.ok {
		return false, false
	}
	q := p
	q.Dst = dst
	fromUplink := src.kind == uint64(p4src.EPKindUplink) || src.kind == uint64(p4src.EPKindTunnel)
	fromHost := src.kind == uint64(p4src.EPKindHost) && m.hostOrigin(src.ep, p.Src)
	run := func(ep uint64, stage uint8, pk oracle.Packet) uint8 { return m.w.check(uint32(ep), stage, pk).verdict }
	accepted, untracked := false, false
	if fromUplink && src.flags&uint64(p4src.EPFlagUntracked) != 0 {
		switch run(src.ep, p4src.StageUntrackedIngress, p) {
		case p4src.VerdictDeny:
			return false, true
		case p4src.VerdictAllow:
			accepted, untracked = true, true
		}
	}
	if fromHost && d.kind == uint64(p4src.EPKindUplink) && d.flags&uint64(p4src.EPFlagUntracked) != 0 {
		switch run(d.ep, p4src.StageUntrackedEgress, p) {
		case p4src.VerdictDeny:
			return false, true
		case p4src.VerdictAllow:
			accepted, untracked = true, true
		}
	}
	if ct != oracle.CTNew && !untracked {
		return true, true
	}
	fromWorkload := src.kind == uint64(p4src.EPKindWorkload)
	if (fromUplink || fromWorkload) && src.flags&uint64(p4src.EPFlagPrednat) != 0 && !accepted {
		switch run(src.ep, p4src.StagePrednatIngress, p) {
		case p4src.VerdictDeny:
			return false, true
		case p4src.VerdictAllow:
			accepted = true
		}
	}
	if fromWorkload && d.kind != uint64(p4src.EPKindHost) && src.flags&uint64(p4src.EPFlagHepForward) != 0 && !accepted {
		if run(src.ep, p4src.StageForwardIngress, q) == p4src.VerdictDeny {
			return false, true
		}
	}
	if src.flags&uint64(p4src.EPFlagPolicy) != 0 && (fromWorkload || (fromUplink && !accepted)) {
		stage := p4src.StageWorkloadEgress
		if fromUplink {
			stage = p4src.StageForwardIngress
			if d.kind == uint64(p4src.EPKindHost) {
				stage = p4src.StageHostIngress
			}
		}
		if run(src.ep, stage, q) == p4src.VerdictDeny {
			return false, true
		}
	}
	if d.flags&uint64(p4src.EPFlagPolicy) != 0 && ((d.kind == uint64(p4src.EPKindWorkload) && !fromHost) ||
		(d.kind == uint64(p4src.EPKindUplink) && (!fromHost || !accepted)) ||
		(d.kind == uint64(p4src.EPKindHost) && src.kind == uint64(p4src.EPKindWorkload))) {
		stage := p4src.StageForwardEgress
		switch {
		case d.kind == uint64(p4src.EPKindWorkload):
			stage = p4src.StageWorkloadIngress
		case d.kind == uint64(p4src.EPKindHost):
			stage = p4src.StageWorkloadToHost
		case fromHost:
			stage = p4src.StageHostEgress
		}
		if run(d.ep, stage, q) == p4src.VerdictDeny {
			return false, true
		}
	}
	if d.kind == uint64(p4src.EPKindWorkload) && !fromHost && d.flags&uint64(p4src.EPFlagHepForward) != 0 {
		if run(d.ep, p4src.StageForwardEgress, q) == p4src.VerdictDeny {
			return false, true
		}
	}
	return true, true
}

func natTable(a netip.Addr) p4src.TableName {
	if a.Is4() {
		return p4src.TableNAT1to1V4
	}
	return p4src.TableNAT1to1V6
}

func natKey(a netip.Addr) p4src.MatchFieldName {
	if a.Is4() {
		return p4src.KeyNAT1to1V4ExtAddr
	}
	return p4src.KeyNAT1to1V6ExtAddr
}

// TestPathsAgreeWithTheOracle: random models and packets entering from workloads, the host and the
// uplink; the program's planning over the translator's entries gives Felix's verdict.
func TestPathsAgreeWithTheOracle(t *testing.T) {
	seed := firstSeed(t)
	n, fails, unroutable := 0, 0, 0
	for i := 0; i < *flagModels && fails < 5; i++ {
		g := gen.New(seed + uint64(i))
		s := stateOf(t, g.Model())
		tr := New(testPorts, genNode())
		res := tr.Apply(s, model.Changes{Resync: true})
		m := &pathModel{set: res.Entries, w: newWalker(res.Entries)}
		on := oracleNode()
		type ingress struct {
			in   oracle.Ingress
			port uint32
		}
		var ins []ingress
		for k, ep := range s.WorkloadEndpoints.All() {
			kk := k
			p, _ := testPorts.PortID(ep.InterfaceName)
			ins = append(ins, ingress{oracle.Ingress{Workload: &kk}, p})
		}
		hp, _ := testPorts.PortID(genNode().Node.HostInterface)
		up, _ := testPorts.PortID(genNode().Node.UplinkInterface)
		ins = append(ins, ingress{oracle.Ingress{Host: true}, hp}, ingress{oracle.Ingress{Iface: gen.Uplink}, up})
		for j := 0; j < 60; j++ {
			in := ins[g.R.IntN(len(ins))]
			p := g.Packet()
			if in.in.Host && g.R.IntN(4) > 0 {
				p.Src = nodeAddr(p.Dst) // mostly the host's own traffic (traffic it forwards is tested too)
			}
			if in.in.Workload != nil && g.R.IntN(4) > 0 {
				// Mostly use the workload's own address (anti-spoofing is tested too).
				ep, _ := s.WorkloadEndpoints.Get(*in.in.Workload)
				for _, n := range append(append([]netip.Prefix(nil), ep.IPv4Nets...), ep.IPv6Nets...) {
					if n.Addr().Is4() == p.Dst.Is4() {
						p.Src = n.Addr()
					}
				}
			}
			if g.R.IntN(5) == 0 {
				p.CT = oracle.CTEstablished
			}
			want, to := oracle.Evaluate(s, on, in.in, p)
			src := m.portEndpoint(in.port)
			if in.in.Workload != nil && src.ok {
				// anti-spoofing (source_guard)
				table, key := p4src.TableSourceGuardV4, p4src.KeySourceGuardV4SrcAddr
				if p.Src.Is6() {
					table, key = p4src.TableSourceGuardV6, p4src.KeySourceGuardV6SrcAddr
				}
				if _, ok := m.lpmLookup(table, key, p.Src, func(e entry.Entry) bool {
					mm, _ := matchOf(e, p4src.KeySourceGuardV4EndpointID)
					return bytesUint(mm.Value) == src.ep
				}); !ok {
					src.ok = false
				}
			}
			got, routed := m.verdict(src, p, p.CT)
			n++
			if !routed {
				// The program has no usable next hop (no MAC, no VTEP): it drops; the oracle does not
				// model underlay reachability.
				unroutable++
				continue
			}
			if got != want.Allowed {
				fails++
				t.Errorf("seed %d: %s → %s, packet %+v: oracle allowed=%v (%s), program allowed=%v",
					seed+uint64(i), in.in, to, p, want.Allowed, want.Why, got)
			}
		}
	}
	t.Logf("%d packets (%d without a usable next hop)", n, unroutable)
}

// nodeAddr is the generated node's address of dst's family.
func nodeAddr(dst netip.Addr) netip.Addr {
	if dst.Is4() {
		return gen.NodeV4
	}
	return gen.NodeV6
}
