package model

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/projectcalico/calico/felix/proto"
)

// IPSetType mirrors felix.IPSetUpdate.IPSetType.
type IPSetType uint8

// IP set types (values equal Felix's enum).
const (
	IPSetTypeIP        IPSetType = 0 // members are addresses
	IPSetTypeIPAndPort IPSetType = 1 // members are address, protocol, port ("10.0.0.1,tcp:80")
	IPSetTypeNet       IPSetType = 2 // members are CIDRs
)

func (t IPSetType) String() string {
	switch t {
	case IPSetTypeIP:
		return "IP"
	case IPSetTypeIPAndPort:
		return "IP_AND_PORT"
	case IPSetTypeNet:
		return "NET"
	}
	return "UNKNOWN"
}

// AddrPort is a member of an IP_AND_PORT set: address, IANA protocol number, port.
type AddrPort struct {
	Addr     netip.Addr
	Protocol uint8
	Port     uint16
}

func (m AddrPort) String() string {
	name := strconv.Itoa(int(m.Protocol))
	switch m.Protocol {
	case ProtoTCP:
		name = "tcp"
	case ProtoUDP:
		name = "udp"
	case ProtoSCTP:
		name = "sctp"
	}
	return m.Addr.String() + "," + name + ":" + strconv.Itoa(int(m.Port))
}

func compareAddrPorts(a, b AddrPort) int {
	return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
}

// member is the internal, comparable form of any member: NET uses prefix; IP uses addr; IP_AND_PORT
// uses addr, proto, port.
type member struct {
	prefix netip.Prefix
	ap     AddrPort
}

// IPSet is an active IP set with parsed members. Read it through its accessors; never modify it.
type IPSet struct {
	ID      string
	Type    IPSetType
	members map[member]struct{}
	// gen is the State generation that may mutate this set in place (copy-on-write otherwise).
	gen uint64
}

// Len is the number of members.
func (s *IPSet) Len() int { return len(s.members) }

// Nets returns the members of a NET set, sorted (nil for other types).
func (s *IPSet) Nets() []netip.Prefix {
	if s.Type != IPSetTypeNet {
		return nil
	}
	out := make([]netip.Prefix, 0, len(s.members))
	for m := range s.members {
		out = append(out, m.prefix)
	}
	slices.SortFunc(out, ComparePrefixes)
	return out
}

// Addrs returns the members of an IP set, sorted (nil for other types).
func (s *IPSet) Addrs() []netip.Addr {
	if s.Type != IPSetTypeIP {
		return nil
	}
	out := make([]netip.Addr, 0, len(s.members))
	for m := range s.members {
		out = append(out, m.ap.Addr)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// AddrPorts returns the members of an IP_AND_PORT set, sorted (nil for other types).
func (s *IPSet) AddrPorts() []AddrPort {
	if s.Type != IPSetTypeIPAndPort {
		return nil
	}
	out := make([]AddrPort, 0, len(s.members))
	for m := range s.members {
		out = append(out, m.ap)
	}
	slices.SortFunc(out, compareAddrPorts)
	return out
}

// ContainsNet reports whether a NET set holds exactly this prefix (masked).
func (s *IPSet) ContainsNet(p netip.Prefix) bool {
	_, ok := s.members[member{prefix: p.Masked()}]
	return ok && s.Type == IPSetTypeNet
}

// ContainsAddr reports whether an IP set holds this address.
func (s *IPSet) ContainsAddr(a netip.Addr) bool {
	_, ok := s.members[member{ap: AddrPort{Addr: a}}]
	return ok && s.Type == IPSetTypeIP
}

// ContainsAddrPort reports whether an IP_AND_PORT set holds this member.
func (s *IPSet) ContainsAddrPort(m AddrPort) bool {
	_, ok := s.members[member{ap: m}]
	return ok && s.Type == IPSetTypeIPAndPort
}

// Strings returns the members in Felix's text form, sorted by value (for logs and tests).
func (s *IPSet) Strings() []string {
	var out []string
	switch s.Type {
	case IPSetTypeNet:
		for _, p := range s.Nets() {
			out = append(out, p.String())
		}
	case IPSetTypeIP:
		for _, a := range s.Addrs() {
			out = append(out, a.String())
		}
	case IPSetTypeIPAndPort:
		for _, m := range s.AddrPorts() {
			out = append(out, m.String())
		}
	}
	return out
}

func (s *IPSet) equal(o *IPSet) bool {
	return s.ID == o.ID && s.Type == o.Type && maps.Equal(s.members, o.members)
}

func (s *IPSet) copyAt(gen uint64) *IPSet {
	return &IPSet{ID: s.ID, Type: s.Type, members: maps.Clone(s.members), gen: gen}
}

func parseIPSetType(t proto.IPSetUpdate_IPSetType) (IPSetType, error) {
	switch t {
	case proto.IPSetUpdate_IP, proto.IPSetUpdate_IP_AND_PORT, proto.IPSetUpdate_NET:
		return IPSetType(t), nil
	}
	return 0, fmt.Errorf("unknown IP set type %d", t)
}

// parseMember parses one member of a set of the given type.
func parseMember(t IPSetType, s string) (member, error) {
	switch t {
	case IPSetTypeNet:
		p, err := ParseCIDR(s)
		if err != nil {
			return member{}, err
		}
		return member{prefix: p}, nil
	case IPSetTypeIP:
		a, err := ParseAddr(s)
		if err != nil {
			return member{}, err
		}
		return member{ap: AddrPort{Addr: a}}, nil
	case IPSetTypeIPAndPort:
		ipStr, protoPort, ok := strings.Cut(s, ",")
		if !ok {
			return member{}, fmt.Errorf("invalid IP,protocol:port member %q", s)
		}
		a, err := ParseAddr(ipStr)
		if err != nil {
			return member{}, fmt.Errorf("member %q: %w", s, err)
		}
		protoName, portStr, ok := strings.Cut(protoPort, ":")
		if !ok {
			return member{}, fmt.Errorf("invalid IP,protocol:port member %q", s)
		}
		var proto uint8
		switch strings.ToLower(protoName) {
		case "tcp":
			proto = ProtoTCP
		case "udp":
			proto = ProtoUDP
		case "sctp":
			proto = ProtoSCTP
		default:
			return member{}, fmt.Errorf("member %q: unknown protocol %q", s, protoName)
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			return member{}, fmt.Errorf("member %q: port out of range 0-65535", s)
		}
		return member{ap: AddrPort{Addr: a, Protocol: proto, Port: uint16(port)}}, nil
	}
	return member{}, fmt.Errorf("unknown IP set type %d", t)
}
