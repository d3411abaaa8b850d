// Package oracle is a direct evaluator of Calico's policy semantics over the model, written from Felix's
// Linux dataplane (felix/rules/{policy,endpoints,static}.go and felix/dataplane/linux/endpoint_mgr.go at
// the supported Calico commit), not from k8s.p4: given the desired state, a packet and where it enters, it
// says whether Felix would let the packet through and which check decided.
//
// It exists to test the translator (and the pipeline running the translator's entries): for random models
// and packets both must agree with it. It shares no code with the translator's encoding: every rule field
// is evaluated here as iptables would, by walking the rule, the IP set members and the chains.
//
// Scope: the filter, raw (untracked) and mangle (pre-DNAT) policy of workload and host endpoints, failsafe
// ports, DefaultEndpointToHostAction, anti-spoofing, endpoints that are down, conntrack state (established
// and related flows skip policy), routing to a local workload, the host or out of the node, 1:1 NAT.
// Packets "from the host" are the host's own traffic (OUTPUT) when their source is one of the node's
// addresses (HostOwns), else traffic the host forwards from an interface no host endpoint covers (FORWARD).
// Services (kube-proxy) are not modelled. Packets are whole (not fragments).
//
// States Felix never sends are evaluated as calico-p4 documents it handles them (translator/doc.go), each
// said where it is evaluated: a policy or profile missing from the model denies (EvalChain); a rule naming a
// missing IP set, or one of the wrong type, is rendered fail-safe (RuleMatches). Random change sequences
// reach such states (a set removed while a policy still names it), so the differential tests need them.
//
// It must not do I/O and must not import the translator.
package oracle

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/calico-p4/calico-p4/driver/model"
)

// Well-known protocol numbers.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
	ProtoSCTP   = 132
)

// CTState is the conntrack state of a packet.
type CTState uint8

// Conntrack states.
const (
	CTNew CTState = iota
	CTEstablished
	CTRelated
)

// Packet is what the oracle judges: the IP header fields policy can see, and the conntrack state.
type Packet struct {
	Src, Dst netip.Addr
	Proto    uint8
	// SrcPort/DstPort: TCP, UDP and SCTP only.
	SrcPort, DstPort uint16
	// ICMPType/ICMPCode: ICMP (IPv4) and ICMPv6 only.
	ICMPType, ICMPCode uint8
	CT                 CTState
}

// HasPorts reports whether the protocol carries ports.
func (p Packet) HasPorts() bool {
	return p.Proto == ProtoTCP || p.Proto == ProtoUDP || p.Proto == ProtoSCTP
}

func (p Packet) isICMP() bool {
	return (p.Src.Is4() && p.Proto == ProtoICMP) || (p.Src.Is6() && p.Proto == ProtoICMPv6)
}

func (p Packet) version() uint8 {
	if p.Src.Is4() {
		return 4
	}
	return 6
}

// Node is what the oracle needs to know about this node beyond the model.
type Node struct {
	// Name is this node's name (host endpoints and VTEPs are matched to it).
	Name string
	// Addresses are the node's own addresses (traffic to them goes to the host).
	Addresses []netip.Addr
	// Uplink is the name host endpoints use for the interface to the fabric ("eth0").
	Uplink string
}

// Verdict is the outcome for a packet.
type Verdict struct {
	Allowed bool
	// Why says which check decided ("workload x egress: policy default/p rule 2 deny", "no route", …).
	Why string
	// Untracked: allowed by untracked (doNotTrack) policy, so conntrack does not know the flow.
	Untracked bool
	// Accepted: allowed by untracked or pre-DNAT policy (Felix's accept mark), so the ingress host
	// endpoint's own filter checks were skipped.
	Accepted bool
}

func allow(why string, args ...any) Verdict {
	return Verdict{Allowed: true, Why: fmt.Sprintf(why, args...)}
}
func deny(why string, args ...any) Verdict {
	return Verdict{Allowed: false, Why: fmt.Sprintf(why, args...)}
}

// ChainResult is the outcome of one Felix endpoint chain.
type ChainResult uint8

// Chain results: a chain accepts, drops, or (untracked, pre-DNAT, forward chains) has no verdict.
const (
	ResultNone ChainResult = iota
	ResultAllow
	ResultDeny
)

func (r ChainResult) String() string {
	switch r {
	case ResultAllow:
		return "allow"
	case ResultDeny:
		return "deny"
	}
	return "none"
}

// ChainKind is the kind of a Felix endpoint chain.
type ChainKind uint8

// Chain kinds (felix/rules/endpoints.go, endpointIptablesChain).
const (
	// Normal: tiers with end-of-tier drop, then profiles, then "drop if no profiles matched".
	Normal ChainKind = iota
	// Forward: applyOnForward tiers with end-of-tier drop; allow when there are none.
	Forward
	// Untracked: doNotTrack tiers, no end-of-tier drop, no profiles.
	Untracked
	// PreDNAT: preDNAT tiers, no end-of-tier drop, no profiles.
	PreDNAT
)

// Failsafe says which failsafe chain (felix/rules/static.go) a host endpoint chain starts with.
type Failsafe uint8

// Failsafe chains.
const (
	NoFailsafe Failsafe = iota
	FailsafeFilterIn
	FailsafeFilterOut
	FailsafeRawIn
	FailsafeRawOut
	FailsafeMangleIn
)

// EvalChain evaluates one endpoint chain: the failsafe rules, the tiers' policies (ingress: inbound rules;
// egress: outbound rules) and, for normal chains, the profiles.
func EvalChain(s *model.State, kind ChainKind, fs Failsafe, tiers []model.TierInfo, profiles []string, ingress bool,
	p Packet) (ChainResult, string) {
	if fs != NoFailsafe {
		if failsafeMatches(s.Config(), fs, p) {
			if kind == Normal || kind == Forward {
				return ResultAllow, "failsafe port"
			}
			// raw / mangle failsafe ACCEPT ends that table only: the filter table still runs.
			return ResultNone, "failsafe port (raw/mangle)"
		}
	}
	havePolicies := false
	for _, tier := range tiers {
		names := tier.EgressPolicies
		if ingress {
			names = tier.IngressPolicies
		}
		if len(names) == 0 {
			continue
		}
		havePolicies = true
		passed := false
		for _, name := range names {
			key := model.PolicyKey{Tier: tier.Name, Name: name}
			pol, ok := s.Policies.Get(key)
			if !ok {
				// Felix never renders a jump to a policy it does not have; the translator fails closed.
				return ResultDeny, fmt.Sprintf("policy %s missing", key)
			}
			rules := pol.OutboundRules
			if ingress {
				rules = pol.InboundRules
			}
			act, idx := evalRules(s, rules, p)
			switch act {
			case model.ActionAllow:
				return ResultAllow, fmt.Sprintf("policy %s rule %d allow", key, idx)
			case model.ActionDeny:
				return ResultDeny, fmt.Sprintf("policy %s rule %d deny", key, idx)
			case model.ActionNextTier:
				passed = true
			}
			if passed {
				break
			}
		}
		if !passed && (kind == Normal || kind == Forward) {
			return ResultDeny, fmt.Sprintf("end of tier %s", tier.Name)
		}
	}
	switch kind {
	case Forward:
		if !havePolicies {
			return ResultAllow, "no forward policy"
		}
		return ResultNone, "forward policies passed"
	case Untracked, PreDNAT:
		return ResultNone, "no verdict"
	}
	for _, name := range profiles {
		prof, ok := s.Profiles.Get(name)
		if !ok {
			return ResultDeny, fmt.Sprintf("profile %s missing", name)
		}
		rules := prof.OutboundRules
		if ingress {
			rules = prof.InboundRules
		}
		act, idx := evalRules(s, rules, p)
		switch act {
		case model.ActionAllow:
			return ResultAllow, fmt.Sprintf("profile %s rule %d allow", name, idx)
		case model.ActionDeny:
			return ResultDeny, fmt.Sprintf("profile %s rule %d deny", name, idx)
		}
		// pass (or no match): the next profile
	}
	return ResultDeny, "no profile matched"
}

// evalRules walks a rule list: the first allow, deny or pass that matches decides; log rules are counted
// and the walk continues. It returns 0 when no rule decided.
func evalRules(s *model.State, rules []model.Rule, p Packet) (model.Action, int) {
	for i := range rules {
		r := &rules[i]
		if !RuleMatches(s, r, p) {
			continue
		}
		if r.Action == model.ActionLog {
			continue
		}
		return r.Action, i
	}
	return 0, -1
}

// RuleMatches reports whether the packet matches the rule as Felix renders it for the packet's IP version
// (felix/rules/policy.go: FilterRuleToIPVersion, then every match criterion).
//
// Dangling IP sets: Felix never sends a rule naming an IP set it does not have — its rule scanner
// (felix/calc/rule_scanner.go) keeps a set active while any active policy or profile references it, and the
// event sequencer sends IPSetUpdate before the policies that use a set and IPSetRemove after them. A state
// with such a rule (a set missing, or of a type that does not fit where the rule uses it) is outside
// Felix's contract; calico-p4 renders it fail-safe (translator/doc.go, "Unsupported"), which is what is
// evaluated here, like a missing policy: an allow, pass or log rule naming a dangling set never matches; a
// deny rule treats each dangling condition as satisfied (a dangling named port satisfies its whole port
// group), so it denies a superset of what either reading of the missing set would deny.
func RuleMatches(s *model.State, r *model.Rule, p Packet) bool {
	if len(DanglingSets(s, r)) > 0 && r.Action != model.ActionDeny {
		return false
	}
	okAddr := func(id string) bool { return setFits(s, id, false) }
	okPort := func(id string) bool { return setFits(s, id, true) }
	v := p.version()
	// The rule is not rendered for this IP version when its version differs, or when one of its CIDR lists
	// (negated ones too) has CIDRs but none of this version.
	if r.IPVersion != model.IPVersionAny && uint8(r.IPVersion) != v {
		return false
	}
	inFamily := func(nets []netip.Prefix) ([]netip.Prefix, bool) {
		if len(nets) == 0 {
			return nil, true
		}
		var out []netip.Prefix
		for _, n := range nets {
			if n.Addr().Is4() == (v == 4) {
				out = append(out, n)
			}
		}
		return out, len(out) > 0
	}
	srcNets, ok1 := inFamily(r.SrcNets)
	notSrcNets, ok2 := inFamily(r.NotSrcNets)
	dstNets, ok3 := inFamily(r.DstNets)
	notDstNets, ok4 := inFamily(r.NotDstNets)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return false
	}

	// Protocol.
	if r.Protocol != nil && p.Proto != r.Protocol.Number {
		return false
	}
	if r.NotProtocol != nil && p.Proto == r.NotProtocol.Number {
		return false
	}
	// CIDRs: any of the list; none of the negated list.
	if len(srcNets) > 0 && !anyContains(srcNets, p.Src) {
		return false
	}
	if anyContains(notSrcNets, p.Src) {
		return false
	}
	if len(dstNets) > 0 && !anyContains(dstNets, p.Dst) {
		return false
	}
	if anyContains(notDstNets, p.Dst) {
		return false
	}
	// IP sets: all of the list; none of the negated list.
	for _, id := range r.SrcIPSetIDs {
		if okAddr(id) && !inAddrSet(s, id, p.Src) {
			return false
		}
	}
	for _, id := range r.NotSrcIPSetIDs {
		if okAddr(id) && inAddrSet(s, id, p.Src) {
			return false
		}
	}
	for _, id := range r.DstIPSetIDs {
		if okAddr(id) && !inAddrSet(s, id, p.Dst) {
			return false
		}
	}
	for _, id := range r.NotDstIPSetIDs {
		if okAddr(id) && inAddrSet(s, id, p.Dst) {
			return false
		}
	}
	for _, id := range r.DstIPPortSetIDs {
		if okPort(id) && !inPortSet(s, id, p.Dst, p.Proto, p.DstPort, p.HasPorts()) {
			return false
		}
	}
	// Ports: a numeric range (multiport: the packet must carry ports) or a named port (any matches).
	portGroup := func(ranges []model.PortRange, named []string, addr netip.Addr, port uint16) bool {
		if len(ranges) == 0 && len(named) == 0 {
			return true
		}
		if slices.ContainsFunc(named, func(id string) bool { return !okPort(id) }) {
			return true // a dangling named port (deny rules only): the group is satisfied
		}
		if p.HasPorts() && inRanges(ranges, port) {
			return true
		}
		for _, id := range named {
			if inPortSet(s, id, addr, p.Proto, port, p.HasPorts()) {
				return true
			}
		}
		return false
	}
	if !portGroup(r.SrcPorts, r.SrcNamedPortIPSetIDs, p.Src, p.SrcPort) {
		return false
	}
	if !portGroup(r.DstPorts, r.DstNamedPortIPSetIDs, p.Dst, p.DstPort) {
		return false
	}
	// Negated ports: multiport "!" still needs a packet with ports.
	if len(r.NotSrcPorts) > 0 && (!p.HasPorts() || inRanges(r.NotSrcPorts, p.SrcPort)) {
		return false
	}
	if len(r.NotDstPorts) > 0 && (!p.HasPorts() || inRanges(r.NotDstPorts, p.DstPort)) {
		return false
	}
	for _, id := range r.NotSrcNamedPortIPSetIDs {
		if okPort(id) && inPortSet(s, id, p.Src, p.Proto, p.SrcPort, p.HasPorts()) {
			return false
		}
	}
	for _, id := range r.NotDstNamedPortIPSetIDs {
		if okPort(id) && inPortSet(s, id, p.Dst, p.Proto, p.DstPort, p.HasPorts()) {
			return false
		}
	}
	// ICMP: the icmp / icmp6 match only ever sees ICMP of the packet's family.
	if r.ICMP != nil {
		if !p.isICMP() || p.ICMPType != r.ICMP.Type || (r.ICMP.HasCode && p.ICMPCode != r.ICMP.Code) {
			return false
		}
	}
	if r.NotICMP != nil {
		if !p.isICMP() || (p.ICMPType == r.NotICMP.Type && (!r.NotICMP.HasCode || p.ICMPCode == r.NotICMP.Code)) {
			return false
		}
	}
	return true
}

// DanglingSets lists the IP sets a rule names that the model does not have, or has with a type that does
// not fit where the rule uses them (NET or IP for address matches, IP_AND_PORT for named ports and service
// ports). Felix never sends such a rule (see RuleMatches).
func DanglingSets(s *model.State, r *model.Rule) []string {
	var out []string
	check := func(ids []string, port bool) {
		for _, id := range ids {
			if !setFits(s, id, port) && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	for _, ids := range [][]string{r.SrcIPSetIDs, r.NotSrcIPSetIDs, r.DstIPSetIDs, r.NotDstIPSetIDs} {
		check(ids, false)
	}
	for _, ids := range [][]string{r.DstIPPortSetIDs, r.SrcNamedPortIPSetIDs, r.NotSrcNamedPortIPSetIDs,
		r.DstNamedPortIPSetIDs, r.NotDstNamedPortIPSetIDs} {
		check(ids, true)
	}
	return out
}

// setFits reports whether the model has set id with a type usable as an address match (NET, IP) or, for
// port, as a named-port / service-port match (IP_AND_PORT).
func setFits(s *model.State, id string, port bool) bool {
	set, ok := s.IPSets.Get(id)
	if !ok {
		return false
	}
	if port {
		return set.Type == model.IPSetTypeIPAndPort
	}
	return set.Type == model.IPSetTypeNet || set.Type == model.IPSetTypeIP
}

func anyContains(nets []netip.Prefix, a netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

func inRanges(rs []model.PortRange, port uint16) bool {
	for _, r := range rs {
		if port >= r.First && port <= r.Last {
			return true
		}
	}
	return false
}

// inAddrSet: membership of an address in a NET or IP set (callers handle missing sets, see RuleMatches).
func inAddrSet(s *model.State, id string, a netip.Addr) bool {
	set, ok := s.IPSets.Get(id)
	if !ok {
		return false
	}
	switch set.Type {
	case model.IPSetTypeIP:
		return set.ContainsAddr(a)
	case model.IPSetTypeNet:
		return anyContains(set.Nets(), a)
	}
	return false
}

// inPortSet: membership of (address, protocol, port) in an IP_AND_PORT set.
func inPortSet(s *model.State, id string, a netip.Addr, proto uint8, port uint16, hasPorts bool) bool {
	set, ok := s.IPSets.Get(id)
	if !ok || set.Type != model.IPSetTypeIPAndPort || !hasPorts {
		return false
	}
	return set.ContainsAddrPort(model.AddrPort{Addr: a, Protocol: proto, Port: port})
}

// failsafeMatches evaluates Felix's failsafe chains.
func failsafeMatches(cfg *model.Config, fs Failsafe, p Packet) bool {
	match := func(pp model.ProtoPort, dst bool, peerIsSrc bool) bool {
		num, ok := model.ProtocolNumber(pp.Protocol)
		if !ok || p.Proto != num || !p.HasPorts() {
			return false
		}
		port := p.SrcPort
		if dst {
			port = p.DstPort
		}
		if port != pp.Port {
			return false
		}
		if pp.Net.IsValid() {
			peer := p.Dst
			if peerIsSrc {
				peer = p.Src
			}
			if pp.Net.Addr().Is4() != peer.Is4() || !pp.Net.Contains(peer) {
				return false
			}
		}
		return true
	}
	anyOf := func(ports []model.ProtoPort, dst, peerIsSrc bool) bool {
		return slices.ContainsFunc(ports, func(pp model.ProtoPort) bool { return match(pp, dst, peerIsSrc) })
	}
	in, out := cfg.FailsafeInboundHostPorts, cfg.FailsafeOutboundHostPorts
	switch fs {
	case FailsafeFilterIn, FailsafeMangleIn:
		return anyOf(in, true, true)
	case FailsafeFilterOut:
		return anyOf(out, true, false)
	case FailsafeRawIn:
		return anyOf(in, true, true) || anyOf(out, false, true)
	case FailsafeRawOut:
		return anyOf(out, true, false) || anyOf(in, false, false)
	}
	return false
}
