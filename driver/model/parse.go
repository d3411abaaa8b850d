package model

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"strings"
)

// ParseCIDR parses a CIDR ("10.0.0.0/8") or a bare address (taken as a host prefix) and returns the
// masked prefix. Zones are refused.
func ParseCIDR(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
		}
		return p.Masked(), nil
	}
	a, err := ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parseHostCIDR is ParseCIDR without masking: "192.168.122.11/24" keeps the host address.
func parseHostCIDR(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid address/prefix %q", s)
		}
		return p, nil
	}
	a, err := ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParseAddr parses an IPv4 or IPv6 address without zone.
func ParseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("invalid IP address %q", s)
	}
	return a, nil
}

// parseOptAddr parses an optional address: "" gives the invalid (zero) Addr.
func parseOptAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	return ParseAddr(s)
}

func parseCIDRs(in []string) ([]netip.Prefix, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]netip.Prefix, 0, len(in))
	for _, s := range in {
		p, err := ParseCIDR(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// parseFamilyCIDRs parses CIDRs that must all be of one family (4 or 6).
func parseFamilyCIDRs(in []string, family int) ([]netip.Prefix, error) {
	out, err := parseCIDRs(in)
	if err != nil {
		return nil, err
	}
	for _, p := range out {
		if (family == 4) != p.Addr().Is4() {
			return nil, fmt.Errorf("%s is not an IPv%d CIDR", p, family)
		}
	}
	return out, nil
}

func parseAddrs(in []string, family int) ([]netip.Addr, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]netip.Addr, 0, len(in))
	for _, s := range in {
		a, err := ParseAddr(s)
		if err != nil {
			return nil, err
		}
		if family != 0 && (family == 4) != a.Is4() {
			return nil, fmt.Errorf("%s is not an IPv%d address", a, family)
		}
		out = append(out, a)
	}
	return out, nil
}

// parseOptMAC parses an optional MAC address ("" gives nil).
func parseOptMAC(s string) (net.HardwareAddr, error) {
	if s == "" {
		return nil, nil
	}
	m, err := net.ParseMAC(s)
	if err != nil {
		return nil, fmt.Errorf("invalid MAC %q", s)
	}
	return m, nil
}

func cloneMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

func cloneStrings(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	return append([]string(nil), in...)
}
