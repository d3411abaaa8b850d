package model

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/projectcalico/calico/felix/proto"
)

// Action is a rule's action.
type Action uint8

// Rule actions. ActionNextTier is Calico v3's "Pass" (Felix sends "next-tier").
const (
	ActionAllow Action = iota + 1
	ActionDeny
	ActionLog
	ActionNextTier
)

func (a Action) String() string {
	switch a {
	case ActionAllow:
		return "allow"
	case ActionDeny:
		return "deny"
	case ActionLog:
		return "log"
	case ActionNextTier:
		return "next-tier"
	}
	return "unknown"
}

// ParseAction parses Felix's action text. "pass" is accepted as a synonym of "next-tier".
func ParseAction(s string) (Action, error) {
	switch s {
	case "allow":
		return ActionAllow, nil
	case "deny":
		return ActionDeny, nil
	case "log":
		return ActionLog, nil
	case "next-tier", "pass":
		return ActionNextTier, nil
	}
	return 0, fmt.Errorf("unknown action %q", s)
}

// IPVersion restricts a rule to one IP family; IPVersionAny matches both.
type IPVersion uint8

// IP versions (values equal Felix's enum).
const (
	IPVersionAny IPVersion = 0
	IPVersion4   IPVersion = 4
	IPVersion6   IPVersion = 6
)

// Protocol is an IP protocol: its number, and the name Felix used if it sent one.
type Protocol struct {
	Number uint8
	// Name is Felix's lower-case name ("tcp", "udp", "icmp", "icmpv6", "sctp", "udplite"), or "" when
	// Felix sent a number.
	Name string
}

func (p Protocol) String() string {
	if p.Name != "" {
		return p.Name
	}
	return fmt.Sprint(p.Number)
}

// Well-known IANA protocol numbers.
const (
	ProtoICMP    uint8 = 1
	ProtoTCP     uint8 = 6
	ProtoUDP     uint8 = 17
	ProtoICMPv6  uint8 = 58
	ProtoSCTP    uint8 = 132
	ProtoUDPLite uint8 = 136
)

// ProtocolNumber maps a protocol name (any case) to its number.
func ProtocolNumber(name string) (uint8, bool) {
	switch strings.ToLower(name) {
	case "tcp":
		return ProtoTCP, true
	case "udp":
		return ProtoUDP, true
	case "icmp":
		return ProtoICMP, true
	case "icmpv6":
		return ProtoICMPv6, true
	case "sctp":
		return ProtoSCTP, true
	case "udplite":
		return ProtoUDPLite, true
	}
	return 0, false
}

// PortRange is an inclusive port range (a single port has First == Last).
type PortRange struct {
	First, Last uint16
}

// ICMPMatch matches an ICMP type, and the code too when HasCode.
type ICMPMatch struct {
	Type    uint8
	Code    uint8
	HasCode bool
}

// ServiceAccountMatch is a pass-through service-account match (not enforced by Felix's dataplane either:
// Felix folds it into the rule's IP sets).
type ServiceAccountMatch struct {
	Selector string
	Names    []string
}

// HTTPPath is one HTTP path match: exactly one of Exact / Prefix is set.
type HTTPPath struct {
	Exact  string
	Prefix string
}

// HTTPMatch is a pass-through HTTP (L7) match; a dataplane that cannot enforce it must report it.
type HTTPMatch struct {
	Methods []string
	Paths   []HTTPPath
}

// Rule is one parsed, validated policy or profile rule. Empty lists and nil pointers mean "no
// constraint". A packet matches when every positive field matches and no negated (Not*) field matches.
type Rule struct {
	Action    Action
	IPVersion IPVersion

	Protocol    *Protocol
	NotProtocol *Protocol

	SrcNets    []netip.Prefix
	NotSrcNets []netip.Prefix
	DstNets    []netip.Prefix
	NotDstNets []netip.Prefix

	// Ports: a packet matches the port constraint if it matches any range or any named-port IP set.
	SrcPorts                []PortRange
	NotSrcPorts             []PortRange
	DstPorts                []PortRange
	NotDstPorts             []PortRange
	SrcNamedPortIPSetIDs    []string
	NotSrcNamedPortIPSetIDs []string
	DstNamedPortIPSetIDs    []string
	NotDstNamedPortIPSetIDs []string
	SrcIPSetIDs             []string
	NotSrcIPSetIDs          []string
	DstIPSetIDs             []string
	NotDstIPSetIDs          []string
	DstIPPortSetIDs         []string // service IP+port sets (svc:…)
	ICMP                    *ICMPMatch
	NotICMP                 *ICMPMatch
	OriginalSrcSelector     string
	OriginalDstSelector     string
	OriginalSrcNSSelector   string
	OriginalDstNSSelector   string
	OriginalNotSrcSelector  string
	OriginalNotDstSelector  string
	OriginalSrcService      string
	OriginalSrcServiceNS    string
	OriginalDstService      string
	OriginalDstServiceNS    string
	SrcServiceAccountMatch  *ServiceAccountMatch
	DstServiceAccountMatch  *ServiceAccountMatch
	HTTPMatch               *HTTPMatch
	MetadataAnnotations     map[string]string
	RuleID                  string
}

// parseRules parses a list of rules; the first invalid rule fails the whole list.
func parseRules(dir string, in []*proto.Rule) ([]Rule, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]Rule, 0, len(in))
	for i, r := range in {
		pr, err := parseRule(r)
		if err != nil {
			id := ""
			if r != nil && r.RuleId != "" {
				id = " (" + r.RuleId + ")"
			}
			return nil, fmt.Errorf("%s rule %d%s: %w", dir, i, id, err)
		}
		out = append(out, pr)
	}
	return out, nil
}

func parseRule(r *proto.Rule) (Rule, error) {
	if r == nil {
		return Rule{}, errors.New("nil rule")
	}
	var out Rule
	var err error
	if out.Action, err = ParseAction(r.Action); err != nil {
		return Rule{}, err
	}
	switch r.IpVersion {
	case proto.IPVersion_ANY, proto.IPVersion_IPV4, proto.IPVersion_IPV6:
		out.IPVersion = IPVersion(r.IpVersion)
	default:
		return Rule{}, fmt.Errorf("unknown ip_version %d", r.IpVersion)
	}
	if out.Protocol, err = parseProtocol(r.Protocol); err != nil {
		return Rule{}, fmt.Errorf("protocol: %w", err)
	}
	if out.NotProtocol, err = parseProtocol(r.NotProtocol); err != nil {
		return Rule{}, fmt.Errorf("not_protocol: %w", err)
	}
	nets := []struct {
		name string
		in   []string
		out  *[]netip.Prefix
	}{
		{"src_net", r.SrcNet, &out.SrcNets},
		{"not_src_net", r.NotSrcNet, &out.NotSrcNets},
		{"dst_net", r.DstNet, &out.DstNets},
		{"not_dst_net", r.NotDstNet, &out.NotDstNets},
	}
	for _, n := range nets {
		if *n.out, err = parseCIDRs(n.in); err != nil {
			return Rule{}, fmt.Errorf("%s: %w", n.name, err)
		}
	}
	ports := []struct {
		name string
		in   []*proto.PortRange
		out  *[]PortRange
	}{
		{"src_ports", r.SrcPorts, &out.SrcPorts},
		{"not_src_ports", r.NotSrcPorts, &out.NotSrcPorts},
		{"dst_ports", r.DstPorts, &out.DstPorts},
		{"not_dst_ports", r.NotDstPorts, &out.NotDstPorts},
	}
	for _, p := range ports {
		if *p.out, err = parsePortRanges(p.in); err != nil {
			return Rule{}, fmt.Errorf("%s: %w", p.name, err)
		}
	}
	ids := []struct {
		name string
		in   []string
		out  *[]string
	}{
		{"src_named_port_ip_set_ids", r.SrcNamedPortIpSetIds, &out.SrcNamedPortIPSetIDs},
		{"not_src_named_port_ip_set_ids", r.NotSrcNamedPortIpSetIds, &out.NotSrcNamedPortIPSetIDs},
		{"dst_named_port_ip_set_ids", r.DstNamedPortIpSetIds, &out.DstNamedPortIPSetIDs},
		{"not_dst_named_port_ip_set_ids", r.NotDstNamedPortIpSetIds, &out.NotDstNamedPortIPSetIDs},
		{"src_ip_set_ids", r.SrcIpSetIds, &out.SrcIPSetIDs},
		{"not_src_ip_set_ids", r.NotSrcIpSetIds, &out.NotSrcIPSetIDs},
		{"dst_ip_set_ids", r.DstIpSetIds, &out.DstIPSetIDs},
		{"not_dst_ip_set_ids", r.NotDstIpSetIds, &out.NotDstIPSetIDs},
		{"dst_ip_port_set_ids", r.DstIpPortSetIds, &out.DstIPPortSetIDs},
	}
	for _, l := range ids {
		if *l.out, err = parseIDs(l.in); err != nil {
			return Rule{}, fmt.Errorf("%s: %w", l.name, err)
		}
	}
	switch ic := r.Icmp.(type) {
	case nil:
	case *proto.Rule_IcmpType:
		if out.ICMP, err = parseICMP(ic.IcmpType, 0, false); err != nil {
			return Rule{}, fmt.Errorf("icmp_type: %w", err)
		}
	case *proto.Rule_IcmpTypeCode:
		if ic.IcmpTypeCode == nil {
			return Rule{}, errors.New("icmp_type_code: empty")
		}
		if out.ICMP, err = parseICMP(ic.IcmpTypeCode.Type, ic.IcmpTypeCode.Code, true); err != nil {
			return Rule{}, fmt.Errorf("icmp_type_code: %w", err)
		}
	default:
		return Rule{}, fmt.Errorf("unknown icmp match %T", ic)
	}
	switch ic := r.NotIcmp.(type) {
	case nil:
	case *proto.Rule_NotIcmpType:
		if out.NotICMP, err = parseICMP(ic.NotIcmpType, 0, false); err != nil {
			return Rule{}, fmt.Errorf("not_icmp_type: %w", err)
		}
	case *proto.Rule_NotIcmpTypeCode:
		if ic.NotIcmpTypeCode == nil {
			return Rule{}, errors.New("not_icmp_type_code: empty")
		}
		if out.NotICMP, err = parseICMP(ic.NotIcmpTypeCode.Type, ic.NotIcmpTypeCode.Code, true); err != nil {
			return Rule{}, fmt.Errorf("not_icmp_type_code: %w", err)
		}
	default:
		return Rule{}, fmt.Errorf("unknown not_icmp match %T", ic)
	}
	out.OriginalSrcSelector = r.OriginalSrcSelector
	out.OriginalDstSelector = r.OriginalDstSelector
	out.OriginalSrcNSSelector = r.OriginalSrcNamespaceSelector
	out.OriginalDstNSSelector = r.OriginalDstNamespaceSelector
	out.OriginalNotSrcSelector = r.OriginalNotSrcSelector
	out.OriginalNotDstSelector = r.OriginalNotDstSelector
	out.OriginalSrcService = r.OriginalSrcService
	out.OriginalSrcServiceNS = r.OriginalSrcServiceNamespace
	out.OriginalDstService = r.OriginalDstService
	out.OriginalDstServiceNS = r.OriginalDstServiceNamespace
	out.SrcServiceAccountMatch = parseSAMatch(r.SrcServiceAccountMatch)
	out.DstServiceAccountMatch = parseSAMatch(r.DstServiceAccountMatch)
	if out.HTTPMatch, err = parseHTTPMatch(r.HttpMatch); err != nil {
		return Rule{}, fmt.Errorf("http_match: %w", err)
	}
	if r.Metadata != nil && len(r.Metadata.Annotations) > 0 {
		out.MetadataAnnotations = cloneMap(r.Metadata.Annotations)
	}
	out.RuleID = r.RuleId
	return out, nil
}

func parseProtocol(p *proto.Protocol) (*Protocol, error) {
	if p == nil {
		return nil, nil
	}
	switch v := p.NumberOrName.(type) {
	case nil:
		return nil, nil
	case *proto.Protocol_Number:
		if v.Number < 0 || v.Number > 255 {
			return nil, fmt.Errorf("number %d out of range 0-255", v.Number)
		}
		return &Protocol{Number: uint8(v.Number)}, nil
	case *proto.Protocol_Name:
		n, ok := ProtocolNumber(v.Name)
		if !ok {
			return nil, fmt.Errorf("unknown protocol name %q", v.Name)
		}
		return &Protocol{Number: n, Name: v.Name}, nil
	}
	return nil, fmt.Errorf("unknown protocol form %T", p.NumberOrName)
}

func parseICMP(typ, code int32, hasCode bool) (*ICMPMatch, error) {
	if typ < 0 || typ > 255 {
		return nil, fmt.Errorf("type %d out of range 0-255", typ)
	}
	if code < 0 || code > 255 {
		return nil, fmt.Errorf("code %d out of range 0-255", code)
	}
	return &ICMPMatch{Type: uint8(typ), Code: uint8(code), HasCode: hasCode}, nil
}

func parsePortRanges(in []*proto.PortRange) ([]PortRange, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]PortRange, 0, len(in))
	for _, p := range in {
		if p == nil {
			return nil, errors.New("nil port range")
		}
		if p.First < 0 || p.First > 65535 || p.Last < 0 || p.Last > 65535 {
			return nil, fmt.Errorf("port range %d-%d out of range 0-65535", p.First, p.Last)
		}
		if p.First > p.Last {
			return nil, fmt.Errorf("port range %d-%d: first > last", p.First, p.Last)
		}
		out = append(out, PortRange{First: uint16(p.First), Last: uint16(p.Last)})
	}
	return out, nil
}

func parseIDs(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	for _, id := range in {
		if id == "" {
			return nil, errors.New("empty IP set id")
		}
	}
	return append([]string(nil), in...), nil
}

func parseSAMatch(m *proto.ServiceAccountMatch) *ServiceAccountMatch {
	if m == nil || (m.Selector == "" && len(m.Names) == 0) {
		return nil
	}
	out := &ServiceAccountMatch{Selector: m.Selector}
	if len(m.Names) > 0 {
		out.Names = append([]string(nil), m.Names...)
	}
	return out
}

func parseHTTPMatch(m *proto.HTTPMatch) (*HTTPMatch, error) {
	if m == nil || (len(m.Methods) == 0 && len(m.Paths) == 0) {
		return nil, nil
	}
	out := &HTTPMatch{}
	if len(m.Methods) > 0 {
		out.Methods = append([]string(nil), m.Methods...)
	}
	for _, p := range m.Paths {
		if p == nil {
			return nil, errors.New("nil path match")
		}
		switch v := p.PathMatch.(type) {
		case *proto.HTTPMatch_PathMatch_Exact:
			out.Paths = append(out.Paths, HTTPPath{Exact: v.Exact})
		case *proto.HTTPMatch_PathMatch_Prefix:
			out.Paths = append(out.Paths, HTTPPath{Prefix: v.Prefix})
		default:
			return nil, fmt.Errorf("path match without exact or prefix (%T)", v)
		}
	}
	return out, nil
}
