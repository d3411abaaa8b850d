package scenario

import (
	"crypto/sha1"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"

	"github.com/projectcalico/calico/felix/proto"
	"github.com/projectcalico/calico/libcalico-go/lib/selector"

	"github.com/calico-p4/calico-p4/e2e/topology"
)

// State is what Felix on the local node would have told its dataplane driver for one cluster state: every
// object keyed the way Felix keys it.
type State struct {
	IPSets     map[string]*proto.IPSetUpdate // members sorted
	Policies   map[string]*proto.ActivePolicyUpdate
	Profiles   map[string]*proto.ActiveProfileUpdate
	WEPs       map[string]*proto.WorkloadEndpointUpdate // "<orchestrator>/<workload>/<endpoint>"
	HEPs       map[string]*proto.HostEndpointUpdate
	SAs        map[string]*proto.ServiceAccountUpdate // "<ns>/<name>"
	Namespaces map[string]*proto.NamespaceUpdate
	HostV4     map[string]*proto.HostMetadataUpdate
	HostV6     map[string]*proto.HostMetadataV6Update
	HostV4V6   map[string]*proto.HostMetadataV4V6Update
	Pools      map[string]*proto.IPAMPoolUpdate
	Encap      *proto.Encapsulation
	Routes     map[string]*proto.RouteUpdate               // by dst
	VTEPs      map[string]*proto.VXLANTunnelEndpointUpdate // by node
	Services   map[string]*proto.ServiceUpdate             // "<ns>/<name>"
}

func newState() *State {
	return &State{IPSets: map[string]*proto.IPSetUpdate{}, Policies: map[string]*proto.ActivePolicyUpdate{},
		Profiles: map[string]*proto.ActiveProfileUpdate{}, WEPs: map[string]*proto.WorkloadEndpointUpdate{},
		HEPs: map[string]*proto.HostEndpointUpdate{}, SAs: map[string]*proto.ServiceAccountUpdate{},
		Namespaces: map[string]*proto.NamespaceUpdate{}, HostV4: map[string]*proto.HostMetadataUpdate{},
		HostV6: map[string]*proto.HostMetadataV6Update{}, HostV4V6: map[string]*proto.HostMetadataV4V6Update{},
		Pools: map[string]*proto.IPAMPoolUpdate{}, Routes: map[string]*proto.RouteUpdate{},
		VTEPs: map[string]*proto.VXLANTunnelEndpointUpdate{}, Services: map[string]*proto.ServiceUpdate{}}
}

// labelled is anything selectors can match: pods (all nodes), host endpoints (all nodes), network sets.
type labelled struct {
	key     string // "pod|<ns>/<name>", "hep|<name>", "set|<kind>|<key>"
	labels  map[string]string
	cidrs   []netip.Prefix // members of selector sets
	ips     []netip.Addr   // for named-port sets
	ports   []EndpointPort
	local   bool // a local endpoint (policies matching it are active)
	isHEP   bool
	profile []string
}

// effectiveLabels merges parent (profile) labels, first parent winning, under the object's own labels —
// Felix's label inheritance.
func effectiveLabels(own map[string]string, parents ...map[string]string) map[string]string {
	out := map[string]string{}
	for i := len(parents) - 1; i >= 0; i-- {
		for k, v := range parents[i] {
			out[k] = v
		}
	}
	for k, v := range own {
		out[k] = v
	}
	return out
}

func (c *cluster) profileLabels(name string) map[string]string {
	if ns, ok := strings.CutPrefix(name, nsProfilePrefix); ok && c.kdd() {
		if m, ok := c.ns[ns]; ok {
			out := map[string]string{nsLabelPrefix + labelName: ns}
			for k, v := range m.Labels {
				out[nsLabelPrefix+k] = v
			}
			return out
		}
	}
	if rest, ok := strings.CutPrefix(name, saProfilePrefix); ok && c.kdd() {
		ns, sa, _ := strings.Cut(rest, ".")
		if m, ok := c.saMeta(ns, sa); ok {
			out := map[string]string{saLabelPrefix + labelName: sa}
			for k, v := range m.Labels {
				out[saLabelPrefix+k] = v
			}
			return out
		}
	}
	if p, ok := c.profiles[name]; ok {
		return p.LabelsToApply
	}
	return nil
}

func (c *cluster) saMeta(ns, name string) (Meta, bool) {
	if m, ok := c.sas[ns+"/"+name]; ok {
		return m, true
	}
	if c.kdd() && c.implicitSAs && name == "default" {
		if _, ok := c.ns[ns]; ok {
			return Meta{Name: "default", Namespace: ns}, true
		}
	}
	return Meta{}, false
}

func (p *pod) serviceAccount() string {
	if p.Spec.ServiceAccountName != "" {
		return p.Spec.ServiceAccountName
	}
	return "default"
}

// podProfiles: Kubernetes pods get kns.<ns> and ksa.<ns>.<sa>, then any extra profiles.
func (p *pod) profiles() []string {
	return append([]string{nsProfilePrefix + p.Namespace, saProfilePrefix + p.Namespace + "." + p.serviceAccount()}, p.Spec.Profiles...)
}

func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

func (c *cluster) labelled(local string) []*labelled {
	var out []*labelled
	for _, k := range sortedKeys(c.pods) {
		p := c.pods[k]
		own := map[string]string{}
		for k, v := range p.Labels {
			if !strings.HasPrefix(k, nsLabelPrefix) && !strings.HasPrefix(k, saLabelPrefix) {
				own[k] = v
			}
		}
		own[labelNamespace] = p.Namespace
		own[labelOrchestrator] = "k8s"
		own[labelServiceAccount] = p.serviceAccount()
		var parents []map[string]string
		for _, prof := range p.profiles() {
			parents = append(parents, c.profileLabels(prof))
		}
		l := &labelled{key: "pod|" + k, labels: effectiveLabels(own, parents...), ips: p.ips, ports: p.Spec.Ports,
			local: p.Spec.NodeName == local, profile: p.profiles()}
		for _, ip := range p.ips {
			l.cidrs = append(l.cidrs, hostPrefix(ip))
		}
		out = append(out, l)
	}
	for _, k := range sortedKeys(c.heps) {
		h := c.heps[k]
		var parents []map[string]string
		for _, prof := range h.Spec.Profiles {
			parents = append(parents, c.profileLabels(prof))
		}
		l := &labelled{key: "hep|" + k, labels: effectiveLabels(h.Labels, parents...), ips: h.ips, ports: h.Spec.Ports,
			local: h.Spec.Node == local, isHEP: true}
		for _, ip := range h.ips {
			l.cidrs = append(l.cidrs, hostPrefix(ip))
		}
		out = append(out, l)
	}
	for _, k := range sortedKeys(c.sets) {
		s := c.sets[k]
		labels := s.Labels
		if s.Kind == KindNetworkSet {
			own := map[string]string{}
			for k, v := range s.Labels {
				own[k] = v
			}
			own[labelNamespace] = s.Namespace
			labels = effectiveLabels(own, c.profileLabels(nsProfilePrefix+s.Namespace))
		}
		out = append(out, &labelled{key: "set|" + k, labels: labels, cidrs: s.nets})
	}
	return out
}

// members computes an IP set's members over every labelled object, in Felix's string formats.
func members(d ipSetDef, objs []*labelled) []string {
	seen := map[string]bool{}
	for _, o := range objs {
		if !d.Selector.Evaluate(o.labels) {
			continue
		}
		if d.NamedPort == "" {
			for _, c := range o.cidrs {
				seen[c.String()] = true
			}
			continue
		}
		for _, p := range o.ports {
			proto := strings.ToLower(p.Protocol)
			if proto == "" {
				proto = "tcp"
			}
			if p.Name != d.NamedPort || proto != d.Protocol {
				continue
			}
			for _, ip := range o.ips {
				seen[fmt.Sprintf("%s,%s:%d", ip, proto, p.number())] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

type activePolicy struct {
	v1  *v1Policy
	sel selector.Selector
}

// tierOrder sorts tiers by order (unset last), then name — how newer Felix orders TierInfo.
func (c *cluster) tierOrder(names map[string]bool) []string {
	var out []string
	for n := range names {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool {
		oi, oj := c.tiers[out[i]].Order, c.tiers[out[j]].Order
		switch {
		case oi != nil && oj != nil && *oi != *oj:
			return *oi < *oj
		case oi != nil && oj == nil:
			return true
		case oi == nil && oj != nil:
			return false
		}
		return out[i] < out[j]
	})
	return out
}

// policyLess is Felix's PolKVLess: by order (unset last), then name.
func policyLess(a, b *v1Policy) bool {
	switch {
	case a.Order != nil && b.Order != nil && *a.Order != *b.Order:
		return *a.Order < *b.Order
	case a.Order != nil && b.Order == nil:
		return true
	case a.Order == nil && b.Order != nil:
		return false
	}
	return a.Name < b.Name
}

func governs(p *v1Policy, dir string) bool {
	if len(p.Types) == 0 {
		return true
	}
	for _, t := range p.Types {
		if t == dir {
			return true
		}
	}
	return false
}

// tierInfos splits the ordered policies matching an endpoint into Felix's tier lists.
func tierInfos(tiers []string, byTier map[string][]*v1Policy) (normal, untracked, preDNAT, forward []*proto.TierInfo) {
	for _, t := range tiers {
		n, u, p, f := &proto.TierInfo{Name: t}, &proto.TierInfo{Name: t}, &proto.TierInfo{Name: t}, &proto.TierInfo{Name: t}
		add := func(ti *proto.TierInfo, pol *v1Policy, egress bool) {
			if governs(pol, "ingress") {
				ti.IngressPolicies = append(ti.IngressPolicies, pol.Name)
			}
			if egress && governs(pol, "egress") {
				ti.EgressPolicies = append(ti.EgressPolicies, pol.Name)
			}
		}
		for _, pol := range byTier[t] {
			switch {
			case pol.DoNotTrack:
				add(u, pol, true)
			case pol.PreDNAT:
				add(p, pol, false)
			default:
				if pol.ApplyOnForward {
					add(f, pol, true)
				}
				add(n, pol, true)
			}
		}
		for _, x := range []struct {
			ti  *proto.TierInfo
			out *[]*proto.TierInfo
		}{{u, &untracked}, {p, &preDNAT}, {f, &forward}, {n, &normal}} {
			if len(x.ti.IngressPolicies) > 0 || len(x.ti.EgressPolicies) > 0 {
				*x.out = append(*x.out, x.ti)
			}
		}
	}
	return
}

// compute derives Felix's view for the local node.
func (c *cluster) compute(local, ifacePrefix string, defaultMAC func(namespace, pod string) string) (*State, error) {
	st := newState()
	objs := c.labelled(local)
	byKey := map[string]*labelled{}
	for _, o := range objs {
		byKey[o.key] = o
	}

	// Policies, converted and ordered.
	var pols []*activePolicy
	for _, k := range sortedKeys(c.policies) {
		v, err := toV1(c.policies[k])
		if err != nil {
			return nil, err
		}
		sel, err := selector.Parse(v.Selector)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", v.Name, err)
		}
		pols = append(pols, &activePolicy{v1: v, sel: sel})
	}
	sort.Slice(pols, func(i, j int) bool { return policyLess(pols[i].v1, pols[j].v1) })

	matching := func(labels map[string]string) (map[string][]*v1Policy, []string) {
		byTier := map[string][]*v1Policy{}
		tiers := map[string]bool{}
		for _, p := range pols {
			if p.sel.Evaluate(labels) {
				byTier[p.v1.Tier] = append(byTier[p.v1.Tier], p.v1)
				tiers[p.v1.Tier] = true
			}
		}
		return byTier, c.tierOrder(tiers)
	}

	active := map[string]*v1Policy{}
	activeProfiles := map[string]bool{}

	// Local workload endpoints.
	for _, k := range sortedKeys(c.pods) {
		p := c.pods[k]
		if p.Spec.NodeName != local {
			continue
		}
		byTier, tiers := matching(byKey["pod|"+k].labels)
		for _, ps := range byTier {
			for _, v := range ps {
				active[v.Name] = v
			}
		}
		normal, _, _, _ := tierInfos(tiers, byTier)
		iface := p.Spec.InterfaceName
		if iface == "" {
			iface = topology.CalicoInterfaceName(ifacePrefix, p.Namespace, p.Name)
		}
		mac := p.Spec.MAC
		if mac == "" && defaultMAC != nil {
			mac = defaultMAC(p.Namespace, p.Name)
		}
		ep := &proto.WorkloadEndpoint{State: "active", Name: iface, Mac: mac, ProfileIds: p.profiles(),
			Tiers: normal, Annotations: p.Annotations}
		for _, ip := range p.ips {
			if ip.Is4() {
				ep.Ipv4Nets = append(ep.Ipv4Nets, hostPrefix(ip).String())
			} else {
				ep.Ipv6Nets = append(ep.Ipv6Nets, hostPrefix(ip).String())
			}
		}
		for _, s := range p.Spec.AllowSpoofedSource {
			pfx, err := parseNet(s)
			if err != nil {
				return nil, fmt.Errorf("pod %s: allowSpoofedSourcePrefixes: %w", k, err)
			}
			ep.AllowSpoofedSourcePrefixes = append(ep.AllowSpoofedSourcePrefixes, pfx.String())
		}
		for _, pr := range ep.ProfileIds {
			activeProfiles[pr] = true
		}
		id := &proto.WorkloadEndpointID{OrchestratorId: "k8s", WorkloadId: p.Namespace + "/" + p.Name, EndpointId: "eth0"}
		st.WEPs[wepKey(id)] = &proto.WorkloadEndpointUpdate{Id: id, Endpoint: ep}
	}
	// Local host endpoints.
	for _, k := range sortedKeys(c.heps) {
		h := c.heps[k]
		if h.Spec.Node != local {
			continue
		}
		byTier, tiers := matching(byKey["hep|"+k].labels)
		for _, ps := range byTier {
			for _, v := range ps {
				active[v.Name] = v
			}
		}
		normal, untracked, preDNAT, forward := tierInfos(tiers, byTier)
		ep := &proto.HostEndpoint{Name: h.Spec.InterfaceName, ProfileIds: h.Spec.Profiles, Tiers: normal,
			UntrackedTiers: untracked, PreDnatTiers: preDNAT, ForwardTiers: forward}
		for _, ip := range h.ips {
			if ip.Is4() {
				ep.ExpectedIpv4Addrs = append(ep.ExpectedIpv4Addrs, ip.String())
			} else {
				ep.ExpectedIpv6Addrs = append(ep.ExpectedIpv6Addrs, ip.String())
			}
		}
		for _, pr := range h.Spec.Profiles {
			activeProfiles[pr] = true
		}
		st.HEPs[h.Name] = &proto.HostEndpointUpdate{Id: &proto.HostEndpointID{EndpointId: h.Name}, Endpoint: ep}
	}

	sets := map[string]ipSetDef{}
	render := func(rules []v1Rule, seed string) ([]*proto.Rule, error) {
		var out []*proto.Rule
		for _, r := range rules {
			pr, defs, err := ruleToProto(r)
			if err != nil {
				return nil, err
			}
			for _, d := range defs {
				sets[d.ID] = d
			}
			out = append(out, pr)
		}
		return out, fillRuleIDs(out, seed)
	}
	for name, v := range active {
		in, err := render(v.Inbound, "pol-in-"+v.Tier+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", name, err)
		}
		out, err := render(v.Outbound, "pol-out-"+v.Tier+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", name, err)
		}
		sel := v.Selector
		st.Policies[policyKey(v.Tier, name)] = &proto.ActivePolicyUpdate{
			Id: &proto.PolicyID{Tier: v.Tier, Name: name},
			Policy: &proto.Policy{Namespace: v.Namespace, InboundRules: in, OutboundRules: out,
				Untracked: v.DoNotTrack, PreDnat: v.PreDNAT, OriginalSelector: selector.Normalise(sel)},
		}
	}
	for name := range activeProfiles {
		prof, err := c.profileRules(name)
		if err != nil {
			return nil, err
		}
		in, err := render(prof.inbound, "prof-in-"+name)
		if err != nil {
			return nil, fmt.Errorf("profile %s: %w", name, err)
		}
		out, err := render(prof.outbound, "prof-out-"+name)
		if err != nil {
			return nil, fmt.Errorf("profile %s: %w", name, err)
		}
		st.Profiles[name] = &proto.ActiveProfileUpdate{Id: &proto.ProfileID{Name: name},
			Profile: &proto.Profile{InboundRules: in, OutboundRules: out}}
	}
	for id, d := range sets {
		st.IPSets[id] = &proto.IPSetUpdate{Id: id, Type: d.setType(), Members: members(d, objs)}
	}

	// Namespaces and service accounts (Kubernetes datastore: from the kns./ksa. profiles).
	if c.kdd() {
		for _, ns := range sortedKeys(c.ns) {
			labels := map[string]string{labelName: ns}
			for k, v := range c.ns[ns].Labels {
				labels[k] = v
			}
			st.Namespaces[ns] = &proto.NamespaceUpdate{Id: &proto.NamespaceID{Name: ns}, Labels: labels}
			if _, explicit := c.sas[ns+"/default"]; !explicit && c.implicitSAs {
				st.SAs[ns+"/default"] = &proto.ServiceAccountUpdate{Id: &proto.ServiceAccountID{Namespace: ns, Name: "default"},
					Labels: map[string]string{labelName: "default"}}
			}
		}
		for _, k := range sortedKeys(c.sas) {
			m := c.sas[k]
			labels := map[string]string{labelName: m.Name}
			for k, v := range m.Labels {
				labels[k] = v
			}
			st.SAs[k] = &proto.ServiceAccountUpdate{Id: &proto.ServiceAccountID{Namespace: m.Namespace, Name: m.Name}, Labels: labels}
		}
	}
	// Nodes.
	for _, name := range sortedKeys(c.nodes) {
		n := c.nodes[name]
		if n.v4.IsValid() {
			st.HostV4[name] = &proto.HostMetadataUpdate{Hostname: name, Ipv4Addr: n.v4.Addr().String()}
		}
		if n.v6.IsValid() {
			st.HostV6[name] = &proto.HostMetadataV6Update{Hostname: name, Ipv6Addr: n.v6.Addr().String()}
		}
		u := &proto.HostMetadataV4V6Update{Hostname: name, Asnumber: n.asn, Labels: n.Labels}
		if n.v4.IsValid() {
			u.Ipv4Addr = n.v4.String()
		}
		if n.v6.IsValid() {
			u.Ipv6Addr = n.v6.String()
		}
		st.HostV4V6[name] = u
	}
	// IP pools and the encapsulation they imply.
	st.Encap = &proto.Encapsulation{}
	for _, name := range sortedKeys(c.pools) {
		p := c.pools[name]
		pfx := netip.MustParsePrefix(p.CIDR)
		ipip, vxlan := encapMode(p.IPIPMode), encapMode(p.VXLANMode)
		id := strings.ReplaceAll(pfx.String(), "/", "-")
		st.Pools[id] = &proto.IPAMPoolUpdate{Id: id, Pool: &proto.IPAMPool{Cidr: pfx.String(), Masquerade: p.NATOutgoing,
			IpipMode: ipip, VxlanMode: vxlan}}
		if pfx.Addr().Is4() {
			st.Encap.IpipEnabled = st.Encap.IpipEnabled || ipip != ""
			st.Encap.VxlanEnabled = st.Encap.VxlanEnabled || vxlan != ""
		} else {
			st.Encap.VxlanEnabledV6 = st.Encap.VxlanEnabledV6 || vxlan != ""
		}
	}
	if st.Encap.VxlanEnabled {
		c.routes(st, local)
	}
	c.services(st)
	return st, nil
}

// routes adds what Felix's route resolver (calc graph L3RouteResolver, active with VXLAN) sends: every IP
// pool as CIDR_INFO, every node's address as LOCAL/REMOTE_HOST, every IPAM block as LOCAL/REMOTE_WORKLOAD
// (of its pool's type), local workload addresses as LOCAL_WORKLOAD with local_workload, VXLAN tunnel
// addresses as LOCAL/REMOTE_TUNNEL, and a VTEP per node with an address and a tunnel address (IPv4).
func (c *cluster) routes(st *State, local string) {
	type pool struct {
		cidr netip.Prefix
		typ  proto.IPPoolType
		masq bool
	}
	var pools []pool
	for _, name := range sortedKeys(c.pools) {
		p := c.pools[name]
		if p.Disabled {
			continue
		}
		pp := pool{cidr: netip.MustParsePrefix(p.CIDR).Masked(), typ: proto.IPPoolType_NO_ENCAP, masq: p.NATOutgoing}
		switch {
		case encapMode(p.VXLANMode) != "":
			pp.typ = proto.IPPoolType_VXLAN
		case encapMode(p.IPIPMode) != "":
			pp.typ = proto.IPPoolType_IPIP
		}
		pools = append(pools, pp)
		st.Routes[pp.cidr.String()] = &proto.RouteUpdate{Type: proto.RouteType_CIDR_INFO, IpPoolType: pp.typ,
			Dst: pp.cidr.String(), NatOutgoing: pp.masq}
	}
	poolOf := func(p netip.Prefix) (pool, bool) {
		for _, pp := range pools {
			if pp.cidr.Bits() <= p.Bits() && pp.cidr.Contains(p.Addr()) {
				return pp, true
			}
		}
		return pool{}, false
	}
	add := func(typ proto.RouteType, dst netip.Prefix, n *node, fill func(r *proto.RouteUpdate)) {
		r := &proto.RouteUpdate{Type: typ, Dst: dst.String(), DstNodeName: n.Name}
		if n.v4.IsValid() && dst.Addr().Is4() {
			r.DstNodeIp = n.v4.Addr().String()
		} else if n.v6.IsValid() && dst.Addr().Is6() {
			r.DstNodeIp = n.v6.Addr().String()
		}
		if pp, ok := poolOf(dst); ok {
			r.IpPoolType, r.NatOutgoing = pp.typ, pp.masq
		}
		if fill != nil {
			fill(r)
		}
		st.Routes[r.Dst] = r
	}
	for _, name := range sortedKeys(c.nodes) {
		n := c.nodes[name]
		isLocal := name == local
		for _, a := range []netip.Prefix{n.v4, n.v6} {
			if !a.IsValid() {
				continue
			}
			typ := proto.RouteType_REMOTE_HOST
			if isLocal {
				typ = proto.RouteType_LOCAL_HOST
			}
			add(typ, hostPrefix(a.Addr()), n, nil)
		}
		for _, b := range n.blocks {
			typ := proto.RouteType_REMOTE_WORKLOAD
			if isLocal {
				typ = proto.RouteType_LOCAL_WORKLOAD
			}
			add(typ, b, n, nil)
		}
		if n.tunnel.IsValid() {
			typ := proto.RouteType_REMOTE_TUNNEL
			if isLocal {
				typ = proto.RouteType_LOCAL_TUNNEL
			}
			add(typ, hostPrefix(n.tunnel), n, func(r *proto.RouteUpdate) { r.TunnelType = &proto.TunnelType{Vxlan: true} })
			if n.v4.IsValid() {
				mac := n.tunMAC
				if mac == "" {
					mac = vtepMAC(name)
				}
				st.VTEPs[name] = &proto.VXLANTunnelEndpointUpdate{Node: name, Mac: mac, Ipv4Addr: n.tunnel.String(),
					ParentDeviceIp: n.v4.Addr().String()}
			}
		}
	}
	for _, k := range sortedKeys(c.pods) {
		p := c.pods[k]
		if p.Spec.NodeName != local {
			continue
		}
		n := c.nodes[local]
		if n == nil {
			n = &node{Meta: Meta{Name: local}}
		}
		for _, ip := range p.ips {
			add(proto.RouteType_LOCAL_WORKLOAD, hostPrefix(ip), n, func(r *proto.RouteUpdate) { r.LocalWorkload = true })
		}
	}
}

// vtepMAC is the MAC Felix generates for a node's VXLAN device when none is set: a locally administered
// address derived from the node's name (Felix hashes it with SHA-1 too; the bytes are ours).
func vtepMAC(node string) string {
	sum := sha1.Sum([]byte("calico-p4-vtep:" + node))
	return net.HardwareAddr{0x66, sum[0], sum[1], sum[2], sum[3], sum[4]}.String()
}

func encapMode(m string) string {
	switch strings.ToLower(m) {
	case "always":
		return "always"
	case "crosssubnet", "cross-subnet":
		return "cross-subnet"
	}
	return ""
}

type profileRules struct{ inbound, outbound []v1Rule }

// profileRules: kns.<ns> allows everything (Calico's namespace profile), ksa.* has no rules, a declared
// Profile has its rules, and a referenced profile that does not exist denies both ways (as Felix sends it).
func (c *cluster) profileRules(name string) (profileRules, error) {
	if ns, ok := strings.CutPrefix(name, nsProfilePrefix); ok && c.kdd() {
		if _, ok := c.ns[ns]; ok {
			return profileRules{[]v1Rule{{Action: "allow"}}, []v1Rule{{Action: "allow"}}}, nil
		}
	}
	if rest, ok := strings.CutPrefix(name, saProfilePrefix); ok && c.kdd() {
		ns, sa, _ := strings.Cut(rest, ".")
		if _, ok := c.saMeta(ns, sa); ok {
			return profileRules{}, nil
		}
	}
	if p, ok := c.profiles[name]; ok {
		in, err := rulesToV1(p.Ingress, "")
		if err != nil {
			return profileRules{}, fmt.Errorf("profile %s: %w", name, err)
		}
		out, err := rulesToV1(p.Egress, "")
		if err != nil {
			return profileRules{}, fmt.Errorf("profile %s: %w", name, err)
		}
		return profileRules{in, out}, nil
	}
	return profileRules{[]v1Rule{{Action: "deny"}}, []v1Rule{{Action: "deny"}}}, nil
}

func wepKey(id *proto.WorkloadEndpointID) string {
	return id.OrchestratorId + "/" + id.WorkloadId + "/" + id.EndpointId
}

func policyKey(tier, name string) string { return tier + "|" + name }
