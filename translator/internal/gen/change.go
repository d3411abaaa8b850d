package gen

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/projectcalico/calico/felix/proto"
)

// Change returns a random batch of changes to a model made by Model (some may be no-ops or refer to objects
// that do not exist, as a real stream can after a resync). An IP set is mostly removed as Felix removes one
// — once no policy or profile names it: the batch first updates those that do (their rules drawn again,
// from the sets that remain); otherwise the removal leaves rules naming a missing set, a state Felix never
// sends (its rule scanner keeps a set while any active rule names it) that the translator must still
// handle (fail-safe). Likewise policies and profiles are removed while endpoints may still use them.
func (g *Gen) Change(members func(id string) []string) []*proto.ToDataplane {
	var out []*proto.ToDataplane
	touched := map[string]bool{} // sets (re)created in this batch: the model does not show them yet
	for n := 1 + g.R.IntN(3); n > 0; n-- {
		switch g.R.IntN(16) {
		case 0, 1:
			sets := append(slices.Clone(g.netSets), g.portSets...)
			if len(sets) > 0 {
				id := pick(g.R, sets)
				var current []string
				if !touched[id] {
					current = members(id)
				}
				out = append(out, g.IPSetDelta(id, g.setTypes[id], current))
			}
		case 2:
			id := fmt.Sprintf("%s:new%d", pick(g.R, []string{"s", "n"}), g.R.IntN(4))
			touched[id] = true
			out = append(out, g.IPSet(id))
		case 3:
			sets := append(slices.Clone(g.netSets), g.portSets...)
			if len(sets) > 0 {
				id := pick(g.R, sets)
				g.netSets = slices.DeleteFunc(g.netSets, func(s string) bool { return s == id })
				g.portSets = slices.DeleteFunc(g.portSets, func(s string) bool { return s == id })
				if g.chance(0.75) {
					out = append(out, g.unreference(id)...)
				}
				out = append(out, &proto.ToDataplane{Payload: &proto.ToDataplane_IpsetRemove{IpsetRemove: &proto.IPSetRemove{Id: id}}})
			}
		case 4, 5:
			tier := pick(g.R, Tiers)
			out = append(out, g.Policy(tier, fmt.Sprintf("%s.pol%d", tier, g.R.IntN(5))))
		case 6:
			tier := pick(g.R, Tiers)
			if pols := g.policies[tier]; len(pols) > 0 {
				name := pick(g.R, pols)
				delete(g.refs, "pol "+tier+"/"+name)
				out = append(out, &proto.ToDataplane{Payload: &proto.ToDataplane_ActivePolicyRemove{ActivePolicyRemove: &proto.ActivePolicyRemove{
					Id: &proto.PolicyID{Tier: tier, Name: name}}}})
			}
		case 7:
			out = append(out, g.Profile(fmt.Sprintf("prof%d", g.R.IntN(4))))
		case 8:
			if len(g.profiles) > 0 {
				name := pick(g.R, g.profiles)
				delete(g.refs, "prof "+name)
				out = append(out, &proto.ToDataplane{Payload: &proto.ToDataplane_ActiveProfileRemove{ActiveProfileRemove: &proto.ActiveProfileRemove{
					Id: &proto.ProfileID{Name: name}}}})
			}
		case 9, 10:
			out = append(out, g.Workload(g.R.IntN(len(Workloads))))
		case 11:
			out = append(out, &proto.ToDataplane{Payload: &proto.ToDataplane_WorkloadEndpointRemove{WorkloadEndpointRemove: &proto.WorkloadEndpointRemove{
				Id: WorkloadID(g.R.IntN(len(Workloads)))}}})
		case 12:
			switch {
			case g.chance(0.3):
				if g.chance(0.7) {
					out = append(out, g.StarHostEndpoint())
				} else {
					out = append(out, &proto.ToDataplane{Payload: &proto.ToDataplane_HostEndpointRemove{HostEndpointRemove: &proto.HostEndpointRemove{
						Id: &proto.HostEndpointID{EndpointId: "hep2"}}}})
				}
			case g.chance(0.7):
				out = append(out, g.HostEndpoint())
			default:
				out = append(out, &proto.ToDataplane{Payload: &proto.ToDataplane_HostEndpointRemove{HostEndpointRemove: &proto.HostEndpointRemove{
					Id: &proto.HostEndpointID{EndpointId: "hep1"}}}})
			}
		case 13:
			out = append(out, g.Route())
		case 14:
			out = append(out, g.Underlay()...)
		case 15:
			if g.chance(0.5) {
				out = append(out, pool("10.66.0.0-16", "10.66.0.0/16", g.chance(0.5)))
			} else {
				out = append(out, &proto.ToDataplane{Payload: &proto.ToDataplane_IpamPoolRemove{IpamPoolRemove: &proto.IPAMPoolRemove{Id: "10.66.0.0-16"}}})
			}
		}
	}
	return out
}

// unreference draws the rules of every policy and profile naming set id again (id no longer among the sets
// to draw from), in a deterministic order.
func (g *Gen) unreference(id string) []*proto.ToDataplane {
	var out []*proto.ToDataplane
	for _, key := range slices.Sorted(maps.Keys(g.refs)) {
		if !slices.Contains(g.refs[key], id) {
			continue
		}
		if name, ok := strings.CutPrefix(key, "prof "); ok {
			out = append(out, g.Profile(name))
			continue
		}
		tier, name, _ := strings.Cut(strings.TrimPrefix(key, "pol "), "/")
		out = append(out, g.Policy(tier, name))
	}
	return out
}

var routeDsts = []string{"10.65.1.0/26", "10.65.1.64/26", "10.65.0.0/26", "10.66.0.0/24", "fd00:65:1::/122",
	"192.168.122.12/32", "10.65.1.2/32", "172.16.0.0/16", "fd00:122::12/128", "10.65.0.10/32"}

// Route returns a random RouteUpdate or RouteRemove.
func (g *Gen) Route() *proto.ToDataplane {
	dst := pick(g.R, routeDsts)
	if g.chance(0.2) {
		return &proto.ToDataplane{Payload: &proto.ToDataplane_RouteRemove{RouteRemove: &proto.RouteRemove{Dst: dst}}}
	}
	r := &proto.RouteUpdate{Dst: dst, Type: proto.RouteType(g.R.IntN(7)), IpPoolType: proto.IPPoolType(g.R.IntN(4)),
		DstNodeName: pick(g.R, []string{"node2", "node3", NodeName}), SameSubnet: g.chance(0.3), NatOutgoing: g.chance(0.3),
		LocalWorkload: g.chance(0.2)}
	if g.chance(0.7) {
		r.DstNodeIp = pick(g.R, []string{"192.168.122.12", "192.168.122.13", "fd00:122::12"})
	}
	if g.chance(0.3) {
		r.TunnelType = &proto.TunnelType{Vxlan: g.chance(0.5), Ipip: g.chance(0.5), Wireguard: g.chance(0.1)}
	}
	return &proto.ToDataplane{Payload: &proto.ToDataplane_RouteUpdate{RouteUpdate: r}}
}

// Underlay returns random VTEP and host-metadata changes (this node's and others').
func (g *Gen) Underlay() []*proto.ToDataplane {
	node := pick(g.R, []string{"node2", "node3", NodeName})
	switch g.R.IntN(4) {
	case 0:
		return []*proto.ToDataplane{{Payload: &proto.ToDataplane_VtepRemove{VtepRemove: &proto.VXLANTunnelEndpointRemove{Node: node}}}}
	case 1:
		return []*proto.ToDataplane{{Payload: &proto.ToDataplane_HostMetadataUpdate{HostMetadataUpdate: &proto.HostMetadataUpdate{
			Hostname: node, Ipv4Addr: pick(g.R, []string{"192.168.122.12", "192.168.122.13", "192.168.122.11"})}}}}
	case 2:
		return []*proto.ToDataplane{{Payload: &proto.ToDataplane_Encapsulation{Encapsulation: &proto.Encapsulation{
			IpipEnabled: g.chance(0.5), VxlanEnabled: g.chance(0.5), VxlanEnabledV6: g.chance(0.5)}}}}
	}
	n := byte(g.R.IntN(3) + 1)
	v := &proto.VXLANTunnelEndpointUpdate{Node: node, Mac: fmt.Sprintf("66:00:00:00:00:%02x", n),
		Ipv4Addr: fmt.Sprintf("10.65.%d.0", n), ParentDeviceIp: fmt.Sprintf("192.168.122.1%d", n)}
	if g.chance(0.5) {
		v.MacV6 = fmt.Sprintf("66:00:00:00:06:%02x", n)
		v.Ipv6Addr = fmt.Sprintf("fd00:65:%d::", n)
		v.ParentDeviceIpv6 = fmt.Sprintf("fd00:122::1%d", n)
	}
	return []*proto.ToDataplane{{Payload: &proto.ToDataplane_VtepUpdate{VtepUpdate: v}}}
}
