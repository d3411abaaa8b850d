// Package gen generates random Calico models (as the Felix messages that build them), random changes to
// them and random packets, for the translator's property and differential tests. Everything is drawn from
// a seeded *rand.Rand so a failing case is reproduced from its seed.
//
// Addresses, ports and protocols come from small universes so that random packets hit random rules.
package gen

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"

	"github.com/projectcalico/calico/felix/proto"
)

// Node is the generated node's name; its uplink is Uplink with the addresses NodeV4 / NodeV6.
const (
	NodeName = "node1"
	Uplink   = "eth0"
)

var (
	NodeV4 = netip.MustParseAddr("192.168.122.11")
	NodeV6 = netip.MustParseAddr("fd00:122::11")
)

// Universe of addresses: workload addresses (pods), "external" addresses, the node's, a remote node's.
var (
	v4Addrs = []string{"10.65.0.2", "10.65.0.3", "10.65.0.4", "10.65.0.5", "10.65.1.2", "10.65.1.3",
		"198.51.100.7", "198.51.100.200", "203.0.113.9", "192.168.122.11", "192.168.122.12", "8.8.8.8"}
	v6Addrs = []string{"fd00:65::2", "fd00:65::3", "fd00:65::4", "fd00:65::5", "fd00:65:1::2",
		"2001:db8::7", "2001:db8:1::9", "fd00:122::11", "fd00:122::12", "2001:4860::8888"}
	v4Nets = []string{"10.65.0.0/24", "10.65.0.2/32", "10.65.0.0/31", "10.65.1.0/24", "10.0.0.0/8",
		"198.51.100.0/24", "198.51.100.0/25", "203.0.113.0/24", "192.168.122.0/24", "0.0.0.0/0", "8.8.8.8/32"}
	v6Nets = []string{"fd00:65::/64", "fd00:65::2/128", "fd00:65::/127", "fd00:65:1::/64", "fd00::/8",
		"2001:db8::/32", "2001:db8::/48", "fd00:122::/64", "::/0"}
	ports      = []uint16{22, 53, 80, 443, 1000, 1001, 1005, 4789, 8080, 9000, 65535, 0}
	protoNames = []string{"tcp", "udp", "sctp", "icmp", "icmpv6"}
	protoNums  = []uint8{6, 17, 132, 1, 58, 47, 4}
	icmpTypes  = []uint8{0, 3, 8, 11, 128, 129, 135}
	icmpCodes  = []uint8{0, 1, 3}
)

// Workloads are the generated local workloads: key (workload id), interface, addresses.
var Workloads = []struct {
	ID, Iface, MAC string
	V4, V6         []string
}{
	{"ns/a", "calia0000000001", "0a:58:0a:41:00:02", []string{"10.65.0.2/32"}, []string{"fd00:65::2/128"}},
	{"ns/b", "calia0000000002", "0a:58:0a:41:00:03", []string{"10.65.0.3/32"}, []string{"fd00:65::3/128"}},
	{"ns/c", "calia0000000003", "0a:58:0a:41:00:04", []string{"10.65.0.4/32"}, nil},
	{"other/d", "calia0000000004", "0a:58:0a:41:00:05", []string{"10.65.0.5/32"}, []string{"fd00:65::5/128"}},
}

// Gen draws models, changes and packets.
type Gen struct {
	R *rand.Rand
	// sets, policies and profiles that exist (ids/names), to refer to them.
	netSets, portSets []string
	setTypes          map[string]proto.IPSetUpdate_IPSetType
	policies          map[string][]string // by tier
	profiles          []string
	// refs: the IP sets each generated policy ("pol <tier>/<name>") or profile ("prof <name>") names.
	refs map[string][]string
}

// New returns a generator for seed.
func New(seed uint64) *Gen { return &Gen{R: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func (g *Gen) chance(p float64) bool { return g.R.Float64() < p }

// Model returns the messages of a random snapshot (ending with InSync).
func (g *Gen) Model() []*proto.ToDataplane {
	var out []*proto.ToDataplane
	out = append(out, g.config(), hostMeta(), &proto.ToDataplane{Payload: &proto.ToDataplane_Encapsulation{
		Encapsulation: &proto.Encapsulation{}}})
	out = append(out, pool("10.65.0.0-16", "10.65.0.0/16", true), pool("fd00:65::-48", "fd00:65::/48", false))
	g.netSets, g.portSets, g.policies, g.profiles, g.refs = nil, nil, map[string][]string{}, nil, nil
	for i := 0; i < 2+g.R.IntN(4); i++ {
		out = append(out, g.IPSet(fmt.Sprintf("s:net%d", i)))
	}
	for i := 0; i < 1+g.R.IntN(3); i++ {
		out = append(out, g.IPSet(fmt.Sprintf("n:port%d", i)))
	}
	for _, tier := range Tiers {
		for i := 0; i < 1+g.R.IntN(4); i++ {
			out = append(out, g.Policy(tier, fmt.Sprintf("%s.pol%d", tier, i)))
		}
	}
	for i := 0; i < 1+g.R.IntN(3); i++ {
		out = append(out, g.Profile(fmt.Sprintf("prof%d", i)))
	}
	for i := range Workloads {
		if g.chance(0.8) {
			out = append(out, g.Workload(i))
		}
	}
	if g.chance(0.7) {
		out = append(out, g.HostEndpoint())
	}
	if g.chance(0.3) {
		out = append(out, g.StarHostEndpoint())
	}
	if g.chance(0.4) {
		// A consistent VXLAN overlay: this node's and node2's VTEPs, node2's block.
		out = append(out, &proto.ToDataplane{Payload: &proto.ToDataplane_Encapsulation{Encapsulation: &proto.Encapsulation{VxlanEnabled: true}}})
		for n, name := range []string{NodeName, "node2"} {
			out = append(out, &proto.ToDataplane{Payload: &proto.ToDataplane_VtepUpdate{VtepUpdate: &proto.VXLANTunnelEndpointUpdate{
				Node: name, Mac: fmt.Sprintf("66:00:00:00:00:%02x", n+1), Ipv4Addr: fmt.Sprintf("10.65.%d.1", n+10),
				ParentDeviceIp: fmt.Sprintf("192.168.122.1%d", n+1)}}})
		}
		out = append(out, &proto.ToDataplane{Payload: &proto.ToDataplane_RouteUpdate{RouteUpdate: &proto.RouteUpdate{
			Type: proto.RouteType_REMOTE_WORKLOAD, IpPoolType: proto.IPPoolType_VXLAN, Dst: "10.65.1.0/26",
			DstNodeName: "node2", DstNodeIp: "192.168.122.12", TunnelType: &proto.TunnelType{Vxlan: true}}}})
	} else if g.chance(0.5) {
		for i := 0; i < 3; i++ {
			out = append(out, g.Underlay()...)
		}
		for i := 0; i < 1+g.R.IntN(5); i++ {
			out = append(out, g.Route())
		}
	}
	return append(out, &proto.ToDataplane{Payload: &proto.ToDataplane_InSync{InSync: &proto.InSync{}}})
}

func (g *Gen) config() *proto.ToDataplane {
	cfg := map[string]string{"FelixHostname": NodeName}
	if g.chance(0.2) {
		cfg["AllowVXLANPacketsFromWorkloads"] = "true"
	}
	if g.chance(0.2) {
		cfg["AllowIPIPPacketsFromWorkloads"] = "true"
	}
	if g.chance(0.5) {
		cfg["DefaultEndpointToHostAction"] = pick(g.R, []string{"DROP", "RETURN", "ACCEPT"})
	}
	if g.chance(0.5) {
		cfg["FailsafeInboundHostPorts"] = pick(g.R, []string{"tcp:22", "tcp:22,udp:68", "tcp:10.0.0.0/8:443,udp:[fd00::/8]:53", "none"})
		cfg["FailsafeOutboundHostPorts"] = pick(g.R, []string{"udp:53", "tcp:80,tcp:198.51.100.0/24:443", "none"})
	}
	return &proto.ToDataplane{Payload: &proto.ToDataplane_ConfigUpdate{ConfigUpdate: &proto.ConfigUpdate{Config: cfg}}}
}

func hostMeta() *proto.ToDataplane {
	return &proto.ToDataplane{Payload: &proto.ToDataplane_HostMetadataV4V6Update{HostMetadataV4V6Update: &proto.HostMetadataV4V6Update{
		Hostname: NodeName, Ipv4Addr: NodeV4.String() + "/24", Ipv6Addr: NodeV6.String() + "/64"}}}
}

func pool(id, cidr string, masq bool) *proto.ToDataplane {
	return &proto.ToDataplane{Payload: &proto.ToDataplane_IpamPoolUpdate{IpamPoolUpdate: &proto.IPAMPoolUpdate{
		Id: id, Pool: &proto.IPAMPool{Cidr: cidr, Masquerade: masq}}}}
}

// IPSet returns a random set with that id ("n:…" ids are IP_AND_PORT sets, "s:…" NET or IP sets).
func (g *Gen) IPSet(id string) *proto.ToDataplane {
	u := &proto.IPSetUpdate{Id: id}
	if g.setTypes == nil {
		g.setTypes = map[string]proto.IPSetUpdate_IPSetType{}
	}
	defer func() { g.setTypes[id] = u.Type }()
	if id[0] == 'n' {
		u.Type = proto.IPSetUpdate_IP_AND_PORT
		for i := 0; i < g.R.IntN(5); i++ {
			u.Members = append(u.Members, g.addrPort())
		}
		if !slices.Contains(g.portSets, id) {
			g.portSets = append(g.portSets, id)
		}
	} else {
		u.Type = proto.IPSetUpdate_NET
		if g.chance(0.3) {
			u.Type = proto.IPSetUpdate_IP
		}
		for i := 0; i < g.R.IntN(5); i++ {
			u.Members = append(u.Members, g.member(u.Type))
		}
		if !slices.Contains(g.netSets, id) {
			g.netSets = append(g.netSets, id)
		}
	}
	return &proto.ToDataplane{Payload: &proto.ToDataplane_IpsetUpdate{IpsetUpdate: u}}
}

func (g *Gen) member(t proto.IPSetUpdate_IPSetType) string {
	if t == proto.IPSetUpdate_IP {
		return g.addr()
	}
	if g.chance(0.6) {
		return pick(g.R, v4Nets)
	}
	return pick(g.R, v6Nets)
}

func (g *Gen) addr() string {
	if g.chance(0.6) {
		return pick(g.R, v4Addrs)
	}
	return pick(g.R, v6Addrs)
}

func (g *Gen) addrPort() string {
	return fmt.Sprintf("%s,%s:%d", g.addr(), pick(g.R, []string{"tcp", "udp", "sctp"}), pick(g.R, ports))
}

// IPSetDelta returns a random delta for an existing set.
func (g *Gen) IPSetDelta(id string, t proto.IPSetUpdate_IPSetType, current []string) *proto.ToDataplane {
	d := &proto.IPSetDeltaUpdate{Id: id}
	for i := 0; i < g.R.IntN(3); i++ {
		if t == proto.IPSetUpdate_IP_AND_PORT {
			d.AddedMembers = append(d.AddedMembers, g.addrPort())
		} else {
			d.AddedMembers = append(d.AddedMembers, g.member(t))
		}
	}
	for _, m := range current {
		if g.chance(0.3) {
			d.RemovedMembers = append(d.RemovedMembers, m)
		}
	}
	return &proto.ToDataplane{Payload: &proto.ToDataplane_IpsetDeltaUpdate{IpsetDeltaUpdate: d}}
}

// Tiers are the tiers policies are generated in.
var Tiers = []string{"default", "security", "platform"}

// Policy returns a random policy in tier.
func (g *Gen) Policy(tier, name string) *proto.ToDataplane {
	p := &proto.Policy{}
	for i := 0; i < g.R.IntN(5); i++ {
		p.InboundRules = append(p.InboundRules, g.Rule())
	}
	for i := 0; i < g.R.IntN(5); i++ {
		p.OutboundRules = append(p.OutboundRules, g.Rule())
	}
	if g.policies == nil {
		g.policies = map[string][]string{}
	}
	g.noteRefs("pol "+tier+"/"+name, p.InboundRules, p.OutboundRules)
	if !slices.Contains(g.policies[tier], name) {
		g.policies[tier] = append(g.policies[tier], name)
	}
	return &proto.ToDataplane{Payload: &proto.ToDataplane_ActivePolicyUpdate{ActivePolicyUpdate: &proto.ActivePolicyUpdate{
		Id: &proto.PolicyID{Tier: tier, Name: name}, Policy: p}}}
}

// Profile returns a random profile.
func (g *Gen) Profile(name string) *proto.ToDataplane {
	p := &proto.Profile{}
	for i := 0; i < g.R.IntN(4); i++ {
		p.InboundRules = append(p.InboundRules, g.Rule())
	}
	for i := 0; i < g.R.IntN(4); i++ {
		p.OutboundRules = append(p.OutboundRules, g.Rule())
	}
	g.noteRefs("prof "+name, p.InboundRules, p.OutboundRules)
	if !slices.Contains(g.profiles, name) {
		g.profiles = append(g.profiles, name)
	}
	return &proto.ToDataplane{Payload: &proto.ToDataplane_ActiveProfileUpdate{ActiveProfileUpdate: &proto.ActiveProfileUpdate{
		Id: &proto.ProfileID{Name: name}, Profile: p}}}
}

// noteRefs records the IP sets the rules of a policy or profile name.
func (g *Gen) noteRefs(key string, in, out []*proto.Rule) {
	if g.refs == nil {
		g.refs = map[string][]string{}
	}
	var ids []string
	for _, r := range append(slices.Clone(in), out...) {
		for _, l := range [][]string{r.SrcIpSetIds, r.NotSrcIpSetIds, r.DstIpSetIds, r.NotDstIpSetIds, r.DstIpPortSetIds,
			r.SrcNamedPortIpSetIds, r.NotSrcNamedPortIpSetIds, r.DstNamedPortIpSetIds, r.NotDstNamedPortIpSetIds} {
			ids = append(ids, l...)
		}
	}
	g.refs[key] = ids
}

// Rule returns a random rule using every kind of field (HTTP and service-account matches excepted: the
// translator renders those fail-safe, which the oracle does not model).
func (g *Gen) Rule() *proto.Rule {
	r := &proto.Rule{Action: pick(g.R, []string{"allow", "allow", "deny", "deny", "next-tier", "log"})}
	switch g.R.IntN(6) {
	case 0:
		r.IpVersion = proto.IPVersion_IPV4
	case 1:
		r.IpVersion = proto.IPVersion_IPV6
	}
	protoOf := func() *proto.Protocol {
		if g.chance(0.5) {
			return &proto.Protocol{NumberOrName: &proto.Protocol_Name{Name: pick(g.R, protoNames)}}
		}
		return &proto.Protocol{NumberOrName: &proto.Protocol_Number{Number: int32(pick(g.R, protoNums))}}
	}
	if g.chance(0.5) {
		r.Protocol = protoOf()
	}
	if g.chance(0.15) {
		r.NotProtocol = protoOf()
	}
	nets := func() []string {
		var out []string
		for i := 0; i < 1+g.R.IntN(3); i++ {
			if g.chance(0.6) {
				out = append(out, pick(g.R, v4Nets))
			} else {
				out = append(out, pick(g.R, v6Nets))
			}
		}
		return out
	}
	if g.chance(0.25) {
		r.SrcNet = nets()
	}
	if g.chance(0.15) {
		r.NotSrcNet = nets()
	}
	if g.chance(0.25) {
		r.DstNet = nets()
	}
	if g.chance(0.15) {
		r.NotDstNet = nets()
	}
	sets := func(from []string) []string {
		var out []string
		if len(from) == 0 {
			return nil
		}
		for i := 0; i < 1+g.R.IntN(2); i++ {
			out = append(out, pick(g.R, from))
		}
		return out
	}
	if g.chance(0.3) {
		r.SrcIpSetIds = sets(g.netSets)
	}
	if g.chance(0.15) {
		r.NotSrcIpSetIds = sets(g.netSets)
	}
	if g.chance(0.3) {
		r.DstIpSetIds = sets(g.netSets)
	}
	if g.chance(0.15) {
		r.NotDstIpSetIds = sets(g.netSets)
	}
	portRanges := func() []*proto.PortRange {
		var out []*proto.PortRange
		for i := 0; i < 1+g.R.IntN(3); i++ {
			a, b := pick(g.R, ports), pick(g.R, ports)
			if a > b {
				a, b = b, a
			}
			if g.chance(0.5) {
				b = a
			}
			out = append(out, &proto.PortRange{First: int32(a), Last: int32(b)})
		}
		return out
	}
	if g.chance(0.3) {
		r.SrcPorts = portRanges()
	}
	if g.chance(0.4) {
		r.DstPorts = portRanges()
	}
	if g.chance(0.1) {
		r.NotSrcPorts = portRanges()
	}
	if g.chance(0.15) {
		r.NotDstPorts = portRanges()
	}
	if g.chance(0.15) {
		r.SrcNamedPortIpSetIds = sets(g.portSets)
	}
	if g.chance(0.25) {
		r.DstNamedPortIpSetIds = sets(g.portSets)
	}
	if g.chance(0.1) {
		r.NotSrcNamedPortIpSetIds = sets(g.portSets)
	}
	if g.chance(0.1) {
		r.NotDstNamedPortIpSetIds = sets(g.portSets)
	}
	if g.chance(0.05) {
		r.DstIpPortSetIds = sets(g.portSets)
	}
	if g.chance(0.2) {
		if g.chance(0.5) {
			r.Icmp = &proto.Rule_IcmpType{IcmpType: int32(pick(g.R, icmpTypes))}
		} else {
			r.Icmp = &proto.Rule_IcmpTypeCode{IcmpTypeCode: &proto.IcmpTypeAndCode{Type: int32(pick(g.R, icmpTypes)),
				Code: int32(pick(g.R, icmpCodes))}}
		}
	}
	if g.chance(0.15) {
		if g.chance(0.5) {
			r.NotIcmp = &proto.Rule_NotIcmpType{NotIcmpType: int32(pick(g.R, icmpTypes))}
		} else {
			r.NotIcmp = &proto.Rule_NotIcmpTypeCode{NotIcmpTypeCode: &proto.IcmpTypeAndCode{Type: int32(pick(g.R, icmpTypes)),
				Code: int32(pick(g.R, icmpCodes))}}
		}
	}
	return r
}

// tiers returns 0–3 random tiers (in a random order) over the existing policies of each tier.
func (g *Gen) tiers() []*proto.TierInfo {
	var out []*proto.TierInfo
	order := slices.Clone(Tiers)
	g.R.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, name := range order[:g.R.IntN(len(order)+1)] {
		pols := g.policies[name]
		if len(pols) == 0 {
			continue
		}
		t := &proto.TierInfo{Name: name}
		for j := 0; j < g.R.IntN(4); j++ {
			t.IngressPolicies = append(t.IngressPolicies, pick(g.R, pols))
		}
		for j := 0; j < g.R.IntN(4); j++ {
			t.EgressPolicies = append(t.EgressPolicies, pick(g.R, pols))
		}
		t.IngressPolicies = slices.Compact(t.IngressPolicies)
		t.EgressPolicies = slices.Compact(t.EgressPolicies)
		out = append(out, t)
	}
	return out
}

func (g *Gen) profilesList() []string {
	var out []string
	for i := 0; i < g.R.IntN(3); i++ {
		out = append(out, pick(g.R, g.profiles))
	}
	return slices.Compact(out)
}

// Workload returns an update of generated workload i.
func (g *Gen) Workload(i int) *proto.ToDataplane {
	w := Workloads[i]
	ep := &proto.WorkloadEndpoint{State: "active", Name: w.Iface, Mac: w.MAC, Ipv4Nets: w.V4, Ipv6Nets: w.V6,
		ProfileIds: g.profilesList(), Tiers: g.tiers()}
	if g.chance(0.1) {
		ep.State = "down"
	}
	if g.chance(0.1) {
		ep.AllowSpoofedSourcePrefixes = []string{pick(g.R, v4Nets)}
	}
	return &proto.ToDataplane{Payload: &proto.ToDataplane_WorkloadEndpointUpdate{WorkloadEndpointUpdate: &proto.WorkloadEndpointUpdate{
		Id: WorkloadID(i), Endpoint: ep}}}
}

// WorkloadID is the id of generated workload i.
func WorkloadID(i int) *proto.WorkloadEndpointID {
	return &proto.WorkloadEndpointID{OrchestratorId: "k8s", WorkloadId: Workloads[i].ID, EndpointId: "eth0"}
}

// HostEndpoint returns a random host endpoint for the uplink (by name, by expected IP, or "*").
func (g *Gen) HostEndpoint() *proto.ToDataplane {
	h := &proto.HostEndpoint{ProfileIds: g.profilesList(), Tiers: g.tiers()}
	switch g.R.IntN(3) {
	case 0:
		h.Name = Uplink
	case 1:
		h.ExpectedIpv4Addrs = []string{NodeV4.String()}
	case 2:
		h.Name = "*"
	}
	if g.chance(0.5) {
		h.ForwardTiers = g.tiers()
	}
	if g.chance(0.4) {
		h.UntrackedTiers = g.tiers()
	}
	if g.chance(0.4) {
		h.PreDnatTiers = g.tiers()
	}
	return &proto.ToDataplane{Payload: &proto.ToDataplane_HostEndpointUpdate{HostEndpointUpdate: &proto.HostEndpointUpdate{
		Id: &proto.HostEndpointID{EndpointId: "hep1"}, Endpoint: h}}}
}

// StarHostEndpoint returns a random all-interfaces ("*") host endpoint "hep2", beside "hep1": a "*" one
// behind a named one (whose interfaces it covers only where the named one has no pre-DNAT policy) or
// behind a smaller "*" one (which wins), and its pre-DNAT and applyOnForward policy on workload
// interfaces.
func (g *Gen) StarHostEndpoint() *proto.ToDataplane {
	h := &proto.HostEndpoint{Name: "*", ProfileIds: g.profilesList(), Tiers: g.tiers()}
	if g.chance(0.7) {
		h.ForwardTiers = g.tiers()
	}
	if g.chance(0.7) {
		h.PreDnatTiers = g.tiers()
	}
	return &proto.ToDataplane{Payload: &proto.ToDataplane_HostEndpointUpdate{HostEndpointUpdate: &proto.HostEndpointUpdate{
		Id: &proto.HostEndpointID{EndpointId: "hep2"}, Endpoint: h}}}
}

// Policies lists the generated policy names of a tier; Profiles the profiles; NetSets/PortSets the set ids.
func (g *Gen) Policies(tier string) []string { return g.policies[tier] }
func (g *Gen) Profiles() []string            { return g.profiles }
func (g *Gen) NetSets() []string             { return g.netSets }
func (g *Gen) PortSets() []string            { return g.portSets }
