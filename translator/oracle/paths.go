package oracle

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/calico-p4/calico-p4/driver/model"
)

// Ingress says where a packet enters the node.
type Ingress struct {
	// Workload is set for a packet from a local workload endpoint.
	Workload *model.WorkloadEndpointKey
	// Host: from the host's own stack.
	Host bool
	// Iface: from a host interface (the uplink's name, or a tunnel device for decapsulated traffic).
	Iface string
}

func (i Ingress) String() string {
	switch {
	case i.Workload != nil:
		return "workload " + i.Workload.String()
	case i.Host:
		return "host"
	}
	return "interface " + i.Iface
}

// Destination is where the node sends a packet.
type Destination struct {
	Workload *model.WorkloadEndpointKey
	Host     bool
	// Iface: out of a host interface (uplink or tunnel device); "" with the others unset: no route.
	Iface string
}

func (d Destination) String() string {
	switch {
	case d.Workload != nil:
		return "workload " + d.Workload.String()
	case d.Host:
		return "host"
	case d.Iface != "":
		return "interface " + d.Iface
	}
	return "nowhere"
}

// Route says where the node sends a packet to dst (after 1:1 NAT): a local workload owning the address,
// the host for the node's addresses, a tunnel device for remote blocks over VXLAN / IP-in-IP, else the
// uplink.
func Route(s *model.State, n Node, dst netip.Addr) Destination {
	best := -1
	var out Destination
	for k, ep := range s.WorkloadEndpoints.All() {
		for _, p := range append(slices.Clone(ep.IPv4Nets), ep.IPv6Nets...) {
			if p.Contains(dst) && p.Bits() > best {
				kk := k
				best, out = p.Bits(), Destination{Workload: &kk}
			}
		}
	}
	if best >= 0 {
		return out
	}
	if slices.Contains(n.Addresses, dst) {
		return Destination{Host: true}
	}
	for p, r := range s.Routes.All() {
		if !p.Contains(dst) || p.Bits() <= best {
			continue
		}
		switch r.Type {
		case model.RouteLocalWorkload:
			if !r.LocalWorkload && p.Bits() != p.Addr().BitLen() {
				best, out = p.Bits(), Destination{} // a local IPAM block: blackhole
			}
		case model.RouteRemoteWorkload, model.RouteRemoteTunnel:
			if r.SameSubnet && !r.DstNodeIP.IsValid() {
				continue // vxlan_mgr: no unencapsulated route without the node's address
			}
			if r.SameSubnet {
				best, out = p.Bits(), Destination{Iface: n.Uplink}
			} else if r.IPPoolType == model.PoolVXLAN || r.Tunnel.VXLAN {
				dev := "vxlan.calico"
				if dst.Is6() {
					dev = "vxlan-v6.calico"
				}
				best, out = p.Bits(), Destination{Iface: dev}
			} else if r.IPPoolType == model.PoolIPIP || r.Tunnel.IPIP {
				if dst.Is4() {
					best, out = p.Bits(), Destination{Iface: "tunl0"}
				} else {
					best, out = p.Bits(), Destination{} // IP-in-IP carries IPv4 only
				}
			} else {
				best, out = p.Bits(), Destination{Iface: n.Uplink}
			}
		case model.RouteLocalHost, model.RouteLocalTunnel:
			best, out = p.Bits(), Destination{Host: true}
		case model.RouteRemoteHost:
			best, out = p.Bits(), Destination{Iface: n.Uplink}
		}
	}
	if best >= 0 {
		return out
	}
	return Destination{Iface: n.Uplink}
}

// HostOwns reports whether a is one of the node's own addresses: one of Node.Addresses, or the address of
// a local host or local tunnel route (/32, /128), unless a local workload owns it. A packet from the
// host's stack with such a source is the host's own traffic (Felix's OUTPUT chain); with any other source
// the host forwards it (the FORWARD chain).
func HostOwns(s *model.State, n Node, a netip.Addr) bool {
	if !Route(s, n, a).Host {
		return false
	}
	if slices.Contains(n.Addresses, a) {
		return true
	}
	r, ok := s.Routes.Get(netip.PrefixFrom(a, a.BitLen()))
	return ok && (r.Type == model.RouteLocalHost || r.Type == model.RouteLocalTunnel)
}

// HostEndpointFor resolves the host endpoint covering a host interface (endpoint_mgr.go): an explicitly
// named one, or a nameless one expecting one of the node's addresses (uplink only); the smallest id wins;
// else the smallest all-interfaces one.
func HostEndpointFor(s *model.State, n Node, iface string) *model.HostEndpoint {
	var star *model.HostEndpoint
	for _, h := range s.HostEndpoints.All() {
		if h.InterfaceName == "*" {
			if star == nil {
				star = h
			}
			continue
		}
		if h.InterfaceName == iface {
			return h
		}
		if h.InterfaceName == "" && iface == n.Uplink {
			for _, a := range n.Addresses {
				if slices.Contains(h.ExpectedIPv4Addrs, a) || slices.Contains(h.ExpectedIPv6Addrs, a) {
					return h
				}
			}
		}
	}
	return star
}

// PreDNATEndpointFor is the host endpoint whose pre-DNAT policy packets entering at in run (Felix's mangle
// PREROUTING, felix/dataplane/linux/endpoint_mgr.go updateHostEndpoints and felix/rules/dispatch.go): the
// dispatch chain lists the interfaces whose host endpoint has pre-DNAT policy, and sends every other
// packet — from any interface, workload interfaces included — to the all-interfaces endpoint's chain if
// that one has pre-DNAT policy. Nil: no pre-DNAT policy applies (the host's own traffic never has any).
func PreDNATEndpointFor(s *model.State, n Node, in Ingress) *model.HostEndpoint {
	if in.Iface != "" {
		if h := HostEndpointFor(s, n, in.Iface); h != nil && len(h.PreDNATTiers) > 0 {
			return h
		}
	}
	if in.Iface == "" && in.Workload == nil {
		return nil
	}
	for _, h := range s.HostEndpoints.All() {
		if h.InterfaceName == "*" {
			if len(h.PreDNATTiers) > 0 {
				return h
			}
			return nil // the smallest "*" endpoint is the one in use
		}
	}
	return nil
}

// WorkloadForwardEndpoint is the host endpoint whose applyOnForward policy traffic forwarded from or to a
// workload interface runs (Felix's filter FORWARD chain, felix/rules/static.go StaticFilterForwardChains:
// the from- and to-host-endpoint forward dispatch chains run for every forwarded packet, and their default
// rule — no named host endpoint names a workload interface — goes to the all-interfaces endpoint's forward
// chains, felix/rules/dispatch.go hostDispatchChains; endpoint_mgr.go updateHostEndpoints lists every
// active host endpoint there, with or without forward policy). Nil without a "*" endpoint. A direction
// without forward policy allows (endpoints.go: "Allow forwarded traffic by default").
func WorkloadForwardEndpoint(s *model.State) *model.HostEndpoint {
	for _, h := range s.HostEndpoints.All() {
		if h.InterfaceName == "*" {
			return h // the smallest "*" endpoint is the one in use
		}
	}
	return nil
}

// Evaluate is the verdict for packet p entering at in: Felix's raw, mangle and filter tables in order.
// The 1:1 NAT of workloads (floating IPs) is applied before routing and the filter table, as Felix's nat
// PREROUTING does.
func Evaluate(s *model.State, n Node, in Ingress, p Packet) (Verdict, Destination) {
	v, to, mk := evaluate(s, n, in, p)
	v.Untracked = v.Allowed && mk.untracked
	v.Accepted = v.Allowed && mk.accepted
	return v, to
}

// marks are what the raw and mangle tables leave on an allowed packet: untracked (NOTRACK) and Felix's
// accept mark (untracked or pre-DNAT policy allowed it).
type marks struct{ untracked, accepted bool }

func evaluate(s *model.State, n Node, in Ingress, p Packet) (Verdict, Destination, marks) {
	cfg := s.Config()
	// Anti-spoofing (raw PREROUTING, RPF for workload interfaces).
	if in.Workload != nil {
		ep, ok := s.WorkloadEndpoints.Get(*in.Workload)
		if !ok {
			return deny("unknown workload"), Destination{}, marks{}
		}
		if ep.State != "active" {
			return deny("%s is down", in), Destination{}, marks{}
		}
		nets := append(append(slices.Clone(ep.IPv4Nets), ep.IPv6Nets...), ep.AllowSpoofedSourcePrefixes...)
		if !anyContains(nets, p.Src) {
			return deny("%s: spoofed source %s", in, p.Src), Destination{}, marks{}
		}
	}
	var inHEP *model.HostEndpoint
	if in.Iface != "" {
		inHEP = HostEndpointFor(s, n, in.Iface)
	}

	// 1:1 NAT of workloads (floating IPs), then routing.
	dst := p.Dst
	for _, ep := range s.WorkloadEndpoints.All() {
		for _, nat := range append(slices.Clone(ep.IPv4NAT), ep.IPv6NAT...) {
			if nat.ExtIP == p.Dst {
				dst = nat.IntIP
			}
		}
	}
	to := Route(s, n, dst)
	if to.Workload == nil && !to.Host && to.Iface == "" {
		return deny("no route to %s", dst), to, marks{}
	}
	var outHEP *model.HostEndpoint
	if to.Iface != "" {
		outHEP = HostEndpointFor(s, n, to.Iface)
	}
	if to.Workload != nil {
		if ep, _ := s.WorkloadEndpoints.Get(*to.Workload); ep.State != "active" {
			return deny("%s is down", to), to, marks{}
		}
	}

	// raw: untracked policy of the ingress host endpoint, or (host-originated) of the egress one.
	untrackedAccept := false
	untracked := func(h *model.HostEndpoint, ingress bool) (Verdict, bool) {
		if h == nil || h.InterfaceName == "*" || len(h.UntrackedTiers) == 0 {
			return Verdict{}, false
		}
		fs := FailsafeRawOut
		if ingress {
			fs = FailsafeRawIn
		}
		r, why := EvalChain(s, Untracked, fs, h.UntrackedTiers, nil, ingress, p)
		switch r {
		case ResultDeny:
			return deny("host endpoint %s untracked: %s", h.ID, why), true
		case ResultAllow:
			untrackedAccept = true
		}
		return Verdict{}, false
	}
	if in.Iface != "" {
		if v, done := untracked(inHEP, true); done {
			return v, to, marks{}
		}
	}
	// From the host's stack: its own traffic (a source address of the node) is locally originated (raw and
	// filter OUTPUT); anything else is traffic it forwards, which enters the FORWARD chain from an
	// interface we know nothing of (no host endpoint covers it).
	hostOrigin := in.Host && HostOwns(s, n, p.Src)
	if hostOrigin && to.Iface != "" {
		if v, done := untracked(outHEP, false); done {
			return v, to, marks{}
		}
		if untrackedAccept {
			return allow("host endpoint %s untracked egress allow", outHEP.ID), to, marks{untrackedAccept, untrackedAccept}
		}
	}

	// conntrack: established and related traffic is accepted by every tracked chain.
	if p.CT != CTNew && !untrackedAccept {
		return allow("conntrack %v", p.CT), to, marks{untrackedAccept, untrackedAccept}
	}

	// mangle PREROUTING: pre-DNAT policy of the ingress interface's host endpoint — for a workload
	// interface, or a host interface whose endpoint has no pre-DNAT policy, the "*" one's.
	preDNATAccept := untrackedAccept
	if preHEP := PreDNATEndpointFor(s, n, in); preHEP != nil && !untrackedAccept {
		r, why := EvalChain(s, PreDNAT, FailsafeMangleIn, preHEP.PreDNATTiers, nil, true, p)
		switch r {
		case ResultDeny:
			return deny("host endpoint %s pre-DNAT: %s", preHEP.ID, why), to, marks{untrackedAccept, preDNATAccept}
		case ResultAllow:
			preDNATAccept = true
		}
	}
	// From here the packet is judged after DNAT.
	q := p
	q.Dst = dst

	wl := func(k *model.WorkloadEndpointKey, ingress bool) (ChainResult, string) {
		ep, _ := s.WorkloadEndpoints.Get(*k)
		return EvalChain(s, Normal, NoFailsafe, ep.Tiers, ep.ProfileIDs, ingress, q)
	}
	hep := func(h *model.HostEndpoint, kind ChainKind, ingress bool) (ChainResult, string) {
		switch kind {
		case Forward:
			return EvalChain(s, Forward, NoFailsafe, h.ForwardTiers, nil, ingress, q)
		default:
			fs := FailsafeFilterOut
			if ingress {
				fs = FailsafeFilterIn
			}
			return EvalChain(s, Normal, fs, h.Tiers, h.ProfileIDs, ingress, q)
		}
	}
	// The "*" endpoint's forward chains for workload interfaces (from-hep-forward before the from-wl
	// check, to-hep-forward after the to-wl check); a forward chain denies or allows (pass included).
	wlHEP := WorkloadForwardEndpoint(s)
	fromWLForward := func() (Verdict, bool) {
		if wlHEP == nil || preDNATAccept {
			return Verdict{}, false
		}
		if r, why := hep(wlHEP, Forward, true); r == ResultDeny {
			return deny("host endpoint %s forward ingress from %s: %s", wlHEP.ID, in, why), true
		}
		return Verdict{}, false
	}
	toWLForward := func() (Verdict, bool) {
		if wlHEP == nil {
			return Verdict{}, false
		}
		if r, why := hep(wlHEP, Forward, false); r == ResultDeny {
			return deny("host endpoint %s forward egress to %s: %s", wlHEP.ID, to, why), true
		}
		return Verdict{}, false
	}
	switch {
	case in.Workload != nil:
		if !to.Host {
			if v, done := fromWLForward(); done {
				return v, to, marks{untrackedAccept, preDNATAccept}
			}
		}
		if why := WorkloadEncapDropped(cfg, p); why != "" {
			return deny("%s: %s", in, why), to, marks{untrackedAccept, preDNATAccept}
		}
		if r, why := wl(in.Workload, false); r != ResultAllow {
			return deny("%s egress: %s", in, why), to, marks{untrackedAccept, preDNATAccept}
		}
		switch {
		case to.Host:
			if cfg.DefaultEndpointToHostAction == "DROP" {
				return deny("DefaultEndpointToHostAction DROP"), to, marks{untrackedAccept, preDNATAccept}
			}
			return allow("to host: DefaultEndpointToHostAction %s", cfg.DefaultEndpointToHostAction), to, marks{untrackedAccept, preDNATAccept}
		case to.Workload != nil:
			if r, why := wl(to.Workload, true); r != ResultAllow {
				return deny("%s ingress: %s", to, why), to, marks{untrackedAccept, preDNATAccept}
			}
			if v, done := toWLForward(); done {
				return v, to, marks{untrackedAccept, preDNATAccept}
			}
			return allow("workload to workload"), to, marks{untrackedAccept, preDNATAccept}
		default:
			if outHEP != nil {
				if r, why := hep(outHEP, Forward, false); r == ResultDeny {
					return deny("host endpoint %s forward egress: %s", outHEP.ID, why), to, marks{untrackedAccept, preDNATAccept}
				}
			}
			return allow("workload out of %s", to.Iface), to, marks{untrackedAccept, preDNATAccept}
		}
	case in.Host && !hostOrigin:
		switch {
		case to.Workload != nil:
			if r, why := wl(to.Workload, true); r != ResultAllow {
				return deny("%s ingress: %s", to, why), to, marks{untrackedAccept, preDNATAccept}
			}
			if v, done := toWLForward(); done {
				return v, to, marks{untrackedAccept, preDNATAccept}
			}
			return allow("forwarded by the host to %s", to), to, marks{untrackedAccept, preDNATAccept}
		case to.Host:
			return allow("to the host, from an interface without a host endpoint"), to, marks{untrackedAccept, preDNATAccept}
		default:
			if outHEP != nil {
				if r, why := hep(outHEP, Forward, false); r == ResultDeny {
					return deny("host endpoint %s forward egress: %s", outHEP.ID, why), to, marks{untrackedAccept, preDNATAccept}
				}
			}
			return allow("forwarded by the host out of %s", to.Iface), to, marks{untrackedAccept, preDNATAccept}
		}
	case in.Host:
		switch {
		case to.Workload != nil, to.Host:
			return allow("from the host (no policy)"), to, marks{untrackedAccept, preDNATAccept}
		default:
			if outHEP != nil {
				if r, why := hep(outHEP, Normal, false); r != ResultAllow {
					return deny("host endpoint %s egress: %s", outHEP.ID, why), to, marks{untrackedAccept, preDNATAccept}
				}
			}
			return allow("host out of %s", to.Iface), to, marks{untrackedAccept, preDNATAccept}
		}
	default: // from a host interface
		switch {
		case to.Host:
			if preDNATAccept {
				return allow("accepted by untracked / pre-DNAT policy"), to, marks{untrackedAccept, preDNATAccept}
			}
			if inHEP != nil {
				if r, why := hep(inHEP, Normal, true); r != ResultAllow {
					return deny("host endpoint %s ingress: %s", inHEP.ID, why), to, marks{untrackedAccept, preDNATAccept}
				}
			}
			return allow("to host"), to, marks{untrackedAccept, preDNATAccept}
		default:
			if inHEP != nil && !preDNATAccept {
				if r, why := hep(inHEP, Forward, true); r == ResultDeny {
					return deny("host endpoint %s forward ingress: %s", inHEP.ID, why), to, marks{untrackedAccept, preDNATAccept}
				}
			}
			if to.Workload != nil {
				if r, why := wl(to.Workload, true); r != ResultAllow {
					return deny("%s ingress: %s", to, why), to, marks{untrackedAccept, preDNATAccept}
				}
				if v, done := toWLForward(); done {
					return v, to, marks{untrackedAccept, preDNATAccept}
				}
				return allow("forwarded to %s", to), to, marks{untrackedAccept, preDNATAccept}
			}
			if outHEP != nil {
				if r, why := hep(outHEP, Forward, false); r == ResultDeny {
					return deny("host endpoint %s forward egress: %s", outHEP.ID, why), to, marks{untrackedAccept, preDNATAccept}
				}
			}
			return allow("forwarded out of %s", to.Iface), to, marks{untrackedAccept, preDNATAccept}
		}
	}
}

func (c CTState) String() string {
	switch c {
	case CTEstablished:
		return "established"
	case CTRelated:
		return "related"
	}
	return "new"
}

// configBool reads a boolean Felix parameter from the raw configuration (Felix's default: false).
func configBool(cfg *model.Config, key string) bool {
	for k, v := range cfg.Raw {
		if strings.EqualFold(k, key) {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			return err == nil && b
		}
	}
	return false
}

// WorkloadEncapDropped says why Felix's from-wl chain drops p before any policy ("" if it does not):
// VXLAN (UDP to VXLANPort) and IP-in-IP packets from workloads, unless AllowVXLANPacketsFromWorkloads /
// AllowIPIPPacketsFromWorkloads (felix/rules/endpoints.go).
func WorkloadEncapDropped(cfg *model.Config, p Packet) string {
	if !configBool(cfg, "AllowVXLANPacketsFromWorkloads") && p.Proto == ProtoUDP && int(p.DstPort) == cfg.VXLANPort {
		return "VXLAN packets from workloads are dropped"
	}
	if !configBool(cfg, "AllowIPIPPacketsFromWorkloads") && p.Proto == 4 {
		return "IP-in-IP packets from workloads are dropped"
	}
	return ""
}
