package translator

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// nodeUnit owns the node-level entries: the host and uplink ports, the gateway responders, host endpoint
// lists, tunnel termination, masquerade pools, and the node's own route candidates.
type nodeUnit struct {
	*unit
	lists  []string
	routes []netip.Prefix
	refs   map[string][]string // host endpoint id → programs its lists run
	issues []Unsupported
	warns  []string
}

const nodeOwner = "node"

// nodeEndpoints are the endpoint-id names the node always holds.
var nodeEndpoints = []string{epHost, epUplink, "tunnel/" + IfaceVXLANv4, "tunnel/" + IfaceVXLANv6, "tunnel/" + IfaceIPIP}

func (t *Translator) epID(name string) uint32 {
	id, _ := t.ids.ep.Get(name)
	return id
}

func (t *Translator) nodeWarn(w string) { t.nodeWarns = append(t.nodeWarns, w) }

// translateNode recomputes the node-level facts and entries, then re-renders the named next hops (which
// depend on the facts) and, when the IP pools changed, every route (the natOutgoing flag).
func (t *Translator) translateNode() {
	old := t.node
	nu := &nodeUnit{refs: map[string][]string{}}
	if old != nil {
		nu.unit = old.unit
	} else {
		nu.unit = newUnit(nodeOwner)
		for _, n := range nodeEndpoints {
			t.acquire(t.ids.ep, n)
		}
	}
	t.node = nu
	t.nodeWarns = nil
	f := t.computeFacts()
	t.facts = f
	nu.warns = t.nodeWarns
	cfg := f.cfg
	var ents []entry.Entry
	routes := map[netip.Prefix]routeCand{}

	// Workloads talk to the gateway 169.254.1.1 / fe80::ecee:eeff:feee:eeee, answered here.
	ents = append(ents,
		tableEntry(p4src.TableARPResponder, 0, act(p4src.ActionARPReply, param(p4src.ParamARPReplyMAC, macBytes(gatewayMAC))),
			exact(p4src.KeyARPResponderEndpointKind, u(uint64(p4src.EPKindWorkload))), lpm(p4src.KeyARPResponderTargetAddr, gatewayV4)),
		tableEntry(p4src.TableNDResponder, 0, act(p4src.ActionNDAdvertise, param(p4src.ParamNDAdvertiseMAC, macBytes(gatewayMAC))),
			exact(p4src.KeyNDResponderEndpointKind, u(uint64(p4src.EPKindWorkload))), lpm(p4src.KeyNDResponderTargetAddr, gatewayV6)))

	// IP pools: masquerade sources, and the pools' own routes (no natOutgoing towards pool addresses).
	var pools []netip.Prefix
	for _, p := range t.state.IPAMPools.All() {
		pools = append(pools, p.CIDR.Masked())
		if p.Masquerade {
			if p.CIDR.Addr().Is4() {
				ents = append(ents, tableEntry(p4src.TableNATOutgoingV4, 0, act(p4src.ActionNATOutgoing),
					lpm(p4src.KeyNATOutgoingV4SrcAddr, p.CIDR)))
			} else {
				ents = append(ents, tableEntry(p4src.TableNATOutgoingV6, 0, act(p4src.ActionNATOutgoing),
					lpm(p4src.KeyNATOutgoingV6SrcAddr, p.CIDR)))
			}
		}
	}
	slices.SortFunc(pools, model.ComparePrefixes)
	pools = slices.Compact(pools)
	poolsChanged := !slices.Equal(pools, t.pools)
	t.pools = pools

	uplink := f.attach[epUplink]
	if f.hostOK {
		var peer uint32
		if f.uplinkOK {
			peer = f.uplinkPort
		}
		ents = append(ents, tableEntry(p4src.TablePortEndpoint, 0,
			act(p4src.ActionSetEndpoint, param(p4src.ParamSetEndpointEndpointID, u(uint64(t.epID(epHost)))),
				param(p4src.ParamSetEndpointKind, u(uint64(p4src.EPKindHost))),
				param(p4src.ParamSetEndpointFlags, u(0)),
				param(p4src.ParamSetEndpointPeerPort, u(uint64(peer)))),
			exact(p4src.KeyPortEndpointPort, u(uint64(f.hostPort)))))
		// Workload → host: DefaultEndpointToHostAction after the workload's egress policy
		// (felix/rules/static.go, filterWorkloadToHostChain). RETURN hands the packet back to the INPUT
		// chain without host endpoint policy: allowed as far as Calico is concerned.
		v := p4src.VerdictAllow
		if cfg.DefaultEndpointToHostAction == "DROP" {
			v = p4src.VerdictDeny
		}
		name, id := t.refList(listSpec{{verdict: v}})
		nu.lists = append(nu.lists, name)
		ents = append(ents, endpointPolicy(t.epID(epHost), p4src.StageWorkloadToHost, id))
		// The host reaches pods through the host port: answer its ARP/ND for pool addresses.
		for _, p := range pools {
			if p.Addr().Is4() {
				ents = append(ents, tableEntry(p4src.TableARPResponder, 0,
					act(p4src.ActionARPReply, param(p4src.ParamARPReplyMAC, macBytes(gatewayMAC))),
					exact(p4src.KeyARPResponderEndpointKind, u(uint64(p4src.EPKindHost))), lpm(p4src.KeyARPResponderTargetAddr, p)))
			} else {
				ents = append(ents, tableEntry(p4src.TableNDResponder, 0,
					act(p4src.ActionNDAdvertise, param(p4src.ParamNDAdvertiseMAC, macBytes(gatewayMAC))),
					exact(p4src.KeyNDResponderEndpointKind, u(uint64(p4src.EPKindHost))), lpm(p4src.KeyNDResponderTargetAddr, p)))
			}
		}
		for _, a := range f.addrs {
			routes[netip.PrefixFrom(a.Addr(), a.Addr().BitLen())] = routeCand{prec: precHost, nh: "host", local: true}
		}
	}
	if f.uplinkOK {
		var peer uint32
		if f.hostOK {
			peer = f.hostPort
		}
		ents = append(ents, tableEntry(p4src.TablePortEndpoint, 0,
			act(p4src.ActionSetEndpoint, param(p4src.ParamSetEndpointEndpointID, u(uint64(t.epID(epUplink)))),
				param(p4src.ParamSetEndpointKind, u(uint64(p4src.EPKindUplink))),
				param(p4src.ParamSetEndpointFlags, u(uint64(uplink.flags))),
				param(p4src.ParamSetEndpointPeerPort, u(uint64(peer)))),
			exact(p4src.KeyPortEndpointPort, u(uint64(f.uplinkPort)))))
		if len(t.opts.Node.GatewayMAC) == 6 {
			for _, d := range []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")} {
				routes[d] = routeCand{prec: precDefault, nh: "gw"}
			}
			for _, p := range pools {
				routes[p] = routeCand{prec: precPool, nh: "gw"}
			}
		}
		for a := range t.opts.Node.Neighbors {
			routes[netip.PrefixFrom(a, a.BitLen())] = routeCand{prec: precNeighbor, nh: "direct/" + a.String()}
		}
	}

	// Host endpoints: the lists of every covered interface (felix/rules/endpoints.go: the filter chains
	// with failsafe ports, the forward chains, the raw (untracked) and mangle (pre-DNAT) chains).
	anyHEP := false
	for _, at := range f.attach {
		if at.hep != nil {
			anyHEP = true
		}
	}
	// The workloads' encapsulation drop (a program every from-wl list starts with).
	if rules := encapDropRules(cfg); len(rules) > 0 {
		t.translateProgram(encapDrop, "workload encapsulation drop", rules)
		t.encapDrop = true
	} else {
		t.removeProgram(encapDrop)
		t.encapDrop = false
	}
	failsafes := []string{failsafeFilterIn, failsafeFilterOut, failsafeRawIn, failsafeRawOut, failsafeMangleIn}
	for _, fs := range failsafes {
		if anyHEP {
			t.translateProgram(fs, "failsafe ports", failsafeRules(fs, cfg))
		} else {
			t.removeProgram(fs)
		}
	}
	attachNames := make([]string, 0, len(f.attach))
	for n := range f.attach {
		attachNames = append(attachNames, n)
	}
	slices.Sort(attachNames)
	for _, an := range attachNames {
		at := f.attach[an]
		h := at.hep
		if h == nil {
			continue
		}
		if h.AllInterfaces() && len(h.UntrackedTiers) > 0 {
			nu.issues = append(nu.issues, Unsupported{Feature: FeatureUntrackedAllInterfaces,
				Owner: "host endpoint " + h.ID, Detail: "doNotTrack policies on interfaceName *",
				Rendering: "ignored, as Felix does"})
		}
		type stageList struct {
			stage uint8
			l     listSpec
		}
		sls := []stageList{
			{p4src.StageHostIngress, buildList(chainNormal, h.Tiers, true, h.ProfileIDs, failsafeFilterIn)},
			{p4src.StageHostEgress, buildList(chainNormal, h.Tiers, false, h.ProfileIDs, failsafeFilterOut)},
			{p4src.StageForwardIngress, forwardList(h, true)},
			{p4src.StageForwardEgress, forwardList(h, false)},
		}
		if at.flags&p4src.EPFlagUntracked != 0 {
			sls = append(sls,
				stageList{p4src.StageUntrackedIngress, buildList(chainUntracked, h.UntrackedTiers, true, nil, failsafeRawIn)},
				stageList{p4src.StageUntrackedEgress, buildList(chainUntracked, h.UntrackedTiers, false, nil, failsafeRawOut)})
		}
		if at.prednat != nil {
			sls = append(sls, stageList{p4src.StagePrednatIngress, prednatList(at.prednat)})
		}
		for _, sl := range sls {
			if sl.l == nil {
				continue
			}
			name, id := t.refList(sl.l)
			nu.lists = append(nu.lists, name)
			owner := h.ID
			if sl.stage == p4src.StagePrednatIngress {
				owner = at.prednat.ID
			}
			for _, it := range sl.l {
				if it.step != "" && !strings.HasPrefix(it.step, "failsafe/") {
					nu.refs[owner] = append(nu.refs[owner], it.step)
				}
			}
			ents = append(ents, endpointPolicy(t.epID(at.epName), sl.stage, id))
		}
	}

	// Tunnel termination: VXLAN from the VTEPs of other nodes to ours, IP-in-IP from other nodes'
	// addresses to ours (Felix accepts tunnelled packets from known hosts only).
	if lv := f.localVTEP; lv != nil {
		for node, v := range t.state.VTEPs.All() {
			if node == f.name {
				continue
			}
			if f.vxlan4 && v.ParentDeviceIP.IsValid() && lv.ParentDeviceIP.IsValid() {
				at := f.attach["tunnel/"+IfaceVXLANv4]
				ents = append(ents, tunnelTerm(v.ParentDeviceIP, lv.ParentDeviceIP, p4src.TunnelVXLAN, t.epID(at.epName), at.flags))
			}
			if f.vxlan6 && v.ParentDeviceIPv6.IsValid() && lv.ParentDeviceIPv6.IsValid() {
				at := f.attach["tunnel/"+IfaceVXLANv6]
				ents = append(ents, tunnelTerm(v.ParentDeviceIPv6, lv.ParentDeviceIPv6, p4src.TunnelVXLAN, t.epID(at.epName), at.flags))
			}
		}
	}
	if (f.vxlan4 || f.vxlan6) && f.vxlanPort != 4789 {
		nu.issues = append(nu.issues, Unsupported{Feature: FeatureVXLANPort, Owner: "node",
			Detail:    fmt.Sprintf("VXLANPort %d", f.vxlanPort),
			Rendering: "encapsulated with that port; received VXLAN is only recognised on 4789"})
	}
	if f.ipip && f.addr4.IsValid() {
		at := f.attach["tunnel/"+IfaceIPIP]
		seen := map[netip.Addr]bool{}
		add := func(node string, a netip.Addr) {
			if node == f.name || !a.IsValid() || !a.Is4() || seen[a] {
				return
			}
			seen[a] = true
			ents = append(ents, tunnelTerm(a, f.addr4, p4src.TunnelIPIP, t.epID(at.epName), at.flags))
		}
		for node, h := range t.state.HostMetadata.All() {
			add(node, h.IPv4Addr)
		}
		for node, h := range t.state.HostMetadataV4V6.All() {
			add(node, h.IPv4Addr.Addr())
		}
	}

	// WireGuard is not enforced by a P4 pipeline.
	if n := t.state.WireguardEndpoints.Len() + t.state.WireguardEndpointsV6.Len(); n > 0 {
		nu.issues = append(nu.issues, Unsupported{Feature: FeatureWireguard, Owner: "node",
			Detail:    fmt.Sprintf("%d WireGuard endpoints", n),
			Rendering: "traffic between nodes is routed unencrypted (as Felix does towards peers without a key)"})
	}

	nu.replace(t.st, ents)
	if old != nil {
		for id := range old.refs {
			if _, still := nu.refs[id]; !still {
				t.setUserRefs("hep/"+id, nil)
			}
		}
	}
	for id, steps := range nu.refs {
		t.setUserRefs("hep/"+id, steps)
	}
	for p, c := range routes {
		nu.routes = append(nu.routes, p)
		t.setRoute(p, nodeOwner, c)
	}
	if old != nil {
		for _, p := range old.routes {
			if _, keep := routes[p]; !keep {
				t.delRoute(p, nodeOwner)
			}
		}
		for _, l := range old.lists {
			t.unrefList(l)
		}
	}
	if poolsChanged {
		t.rerenderRoutes()
	}
	t.rerenderNexthops()
}

func tunnelTerm(remote, local netip.Addr, typ uint8, epID uint32, flags uint8) entry.Entry {
	a := act(p4src.ActionTunnelDecap, param(p4src.ParamTunnelDecapEndpointID, u(uint64(epID))),
		param(p4src.ParamTunnelDecapFlags, u(uint64(flags))))
	if remote.Is4() {
		return tableEntry(p4src.TableTunnelTermV4, 0, a, exact(p4src.KeyTunnelTermV4OuterSrcAddr, addrBytes(remote)),
			exact(p4src.KeyTunnelTermV4OuterDstAddr, addrBytes(local)), exact(p4src.KeyTunnelTermV4TunnelType, u(uint64(typ))))
	}
	return tableEntry(p4src.TableTunnelTermV6, 0, a, exact(p4src.KeyTunnelTermV6OuterSrcAddr, addrBytes(remote)),
		exact(p4src.KeyTunnelTermV6OuterDstAddr, addrBytes(local)), exact(p4src.KeyTunnelTermV6TunnelType, u(uint64(typ))))
}

// translateRoute applies one of Felix's RouteUpdates (felix/dataplane/linux/vxlan_mgr.go and the route
// resolver's route types) as a route candidate.
func (t *Translator) translateRoute(p netip.Prefix) {
	owner := "rt/" + p.String()
	r, ok := t.state.Routes.Get(p)
	if !ok {
		t.delRoute(p, owner)
		return
	}
	c, ok := t.routeCandOf(r)
	if !ok {
		t.delRoute(p, owner)
		return
	}
	t.setRoute(p, owner, c)
}

func (t *Translator) routeCandOf(r *model.Route) (routeCand, bool) {
	host := r.Dst.Bits() == r.Dst.Addr().BitLen()
	switch r.Type {
	case model.RouteCIDRInfo:
		return routeCand{}, false // informational (IP pools); the pools are taken from IPAMPoolUpdates
	case model.RouteLocalWorkload:
		if r.LocalWorkload || host {
			return routeCand{}, false // a local endpoint's address: its endpoint unit routes it
		}
		return routeCand{prec: precRoute}, true // a local IPAM block: blackhole
	case model.RouteLocalHost, model.RouteLocalTunnel:
		return routeCand{prec: precRoute, nh: "host", local: true}, true
	case model.RouteRemoteHost:
		a := r.DstNodeIP
		if host {
			a = r.Dst.Addr()
		}
		if !a.IsValid() {
			return routeCand{}, false
		}
		return routeCand{prec: precRoute, nh: "direct/" + a.String()}, true
	case model.RouteRemoteWorkload, model.RouteRemoteTunnel:
		v6 := r.Dst.Addr().Is6()
		switch {
		case r.SameSubnet && !r.DstNodeIP.IsValid():
			// Felix cannot program an unencapsulated route without the node's address: no route.
			return routeCand{}, false
		case r.SameSubnet:
			return routeCand{prec: precRoute, nh: "direct/" + r.DstNodeIP.String()}, true
		case r.IPPoolType == model.PoolVXLAN || r.Tunnel.VXLAN:
			kind := "vxlan4/"
			if v6 {
				kind = "vxlan6/"
			}
			return routeCand{prec: precRoute, nh: kind + r.DstNodeName}, true
		case r.IPPoolType == model.PoolIPIP || r.Tunnel.IPIP:
			if v6 || !r.DstNodeIP.IsValid() {
				return routeCand{prec: precRoute}, true // cannot be encapsulated: unreachable (reported)
			}
			return routeCand{prec: precRoute, nh: "ipip/" + r.DstNodeIP.String()}, true
		case r.DstNodeIP.IsValid():
			return routeCand{prec: precRoute, nh: "direct/" + r.DstNodeIP.String()}, true
		}
		return routeCand{prec: precRoute, nh: "gw"}, true
	}
	return routeCand{}, false
}
