package model

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ProtoPort is one failsafe port: protocol ("tcp" or "udp"), optional network, port.
type ProtoPort struct {
	Protocol string
	// Net restricts the peer address; invalid (zero) means any.
	Net  netip.Prefix
	Port uint16
}

func (p ProtoPort) String() string {
	if p.Net.IsValid() {
		if p.Net.Addr().Is6() {
			return fmt.Sprintf("%s:[%s]:%d", p.Protocol, p.Net, p.Port)
		}
		return fmt.Sprintf("%s:%s:%d", p.Protocol, p.Net, p.Port)
	}
	return fmt.Sprintf("%s:%d", p.Protocol, p.Port)
}

// Felix's defaults for the keys we honour (felix/config/config_params.go at the supported commit).
const (
	DefaultFailsafeInboundHostPorts  = "tcp:22,udp:68,tcp:179,tcp:2379,tcp:2380,tcp:5473,tcp:6443,tcp:6666,tcp:6667"
	DefaultFailsafeOutboundHostPorts = "udp:53,udp:67,tcp:179,tcp:2379,tcp:2380,tcp:5473,tcp:6443,tcp:6666,tcp:6667"
	DefaultReportingInterval         = 30 * time.Second
	DefaultVXLANPort                 = 4789
	DefaultVXLANVNI                  = 4096
	DefaultInterfacePrefix           = "cali"
)

// Driver options: Felix passes config keys it does not know through, lower-cased (FELIX_CALICOP4ENDPOINTSTATUS=false
// in Felix's environment arrives as "calicop4endpointstatus":"false"). These are the ones calico-p4 reads.
const (
	// OptEndpointStatus: "true" (default) or "false": report workload/host endpoint status to Felix.
	OptEndpointStatus = "calicop4endpointstatus"
	// OptApplyRetrySecs: seconds (float, default 1) before retrying a failed apply; doubles up to 30 s.
	OptApplyRetrySecs = "calicop4applyretrysecs"
)

// HonouredConfigKeys lists the Felix config keys the model parses (Felix's canonical names).
var HonouredConfigKeys = []string{
	"FelixHostname", "DefaultEndpointToHostAction", "FailsafeInboundHostPorts", "FailsafeOutboundHostPorts",
	"ReportingIntervalSecs", "VXLANEnabled", "IpInIpEnabled", "VXLANMTU", "VXLANPort", "VXLANVNI",
	"Ipv6Support", "InterfacePrefix", "ServiceLoopPrevention", "NATOutgoingAddress",
}

// RawConfigSource is one of ConfigUpdate.source_to_raw_config's entries.
type RawConfigSource struct {
	Source string
	Config map[string]string
}

// Config is Felix's configuration as sent in ConfigUpdate: the raw map plus the keys the dataplane uses,
// parsed with Felix's defaults and semantics.
type Config struct {
	// Raw is ConfigUpdate.config: canonical name → raw value for every parameter set by some source
	// (defaults are not included), plus pass-through (lower-cased) unknown keys.
	Raw map[string]string
	// Sources is ConfigUpdate.source_to_raw_config (1 datastore global, 2 per-host, 3 file, 4 env, 5 override).
	Sources map[uint32]RawConfigSource

	// FelixHostname is this node's name ("" when Felix did not say).
	FelixHostname string
	// DefaultEndpointToHostAction is "DROP" (default), "RETURN" or "ACCEPT".
	DefaultEndpointToHostAction string
	FailsafeInboundHostPorts    []ProtoPort
	FailsafeOutboundHostPorts   []ProtoPort
	// ReportingInterval is how often to send ProcessStatusUpdate; 0 disables it.
	ReportingInterval time.Duration
	// VXLANEnabled and IPIPEnabled are nil when not set (Felix then derives them from the IP pools).
	VXLANEnabled *bool
	IPIPEnabled  *bool
	VXLANMTU     int
	VXLANPort    int
	VXLANVNI     int
	IPv6Support  bool
	// InterfacePrefixes are the workload interface prefixes (InterfacePrefix split on commas).
	InterfacePrefixes []string
	// ServiceLoopPrevention is "Drop" (default), "Reject" or "Disabled".
	ServiceLoopPrevention string
	// NATOutgoingAddress is the SNAT source for natOutgoing; invalid when unset.
	NATOutgoingAddress netip.Addr

	// DriverOptions are the pass-through (all lower-case) keys of Raw.
	DriverOptions map[string]string
	// EndpointStatus is OptEndpointStatus (default true).
	EndpointStatus bool
	// ApplyRetry is OptApplyRetrySecs (default 1 s).
	ApplyRetry time.Duration
}

// DefaultConfig is the configuration before any ConfigUpdate: Felix's defaults.
func DefaultConfig() *Config {
	c, _ := ParseConfig(nil, nil)
	return c
}

var ifaceListRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,15}(,[a-zA-Z0-9_-]{1,15})*$`)

// ParseConfig parses a ConfigUpdate's maps. An invalid value of an honoured key leaves that key at its
// default and is reported as an *InvalidError (several are joined); the config is still usable.
func ParseConfig(raw map[string]string, sources map[uint32]RawConfigSource) (*Config, error) {
	c := &Config{
		Raw:                         cloneMap(raw),
		Sources:                     sources,
		DefaultEndpointToHostAction: "DROP",
		ReportingInterval:           DefaultReportingInterval,
		VXLANPort:                   DefaultVXLANPort,
		VXLANVNI:                    DefaultVXLANVNI,
		IPv6Support:                 true,
		InterfacePrefixes:           []string{DefaultInterfacePrefix},
		ServiceLoopPrevention:       "Drop",
		EndpointStatus:              true,
		ApplyRetry:                  time.Second,
	}
	c.FailsafeInboundHostPorts, _ = parsePortList(DefaultFailsafeInboundHostPorts)
	c.FailsafeOutboundHostPorts, _ = parsePortList(DefaultFailsafeOutboundHostPorts)

	lower := make(map[string]string, len(raw))
	for k, v := range raw {
		lower[strings.ToLower(k)] = v
		if k == strings.ToLower(k) {
			if c.DriverOptions == nil {
				c.DriverOptions = map[string]string{}
			}
			c.DriverOptions[k] = v
		}
	}
	var errs []error
	// field parses one key: set is called with the raw value unless it is absent; "none" means the zero
	// value (as in Felix) unless the key must be non-zero.
	field := func(key string, nonZero bool, zero func(), set func(string) error) {
		v, ok := lower[strings.ToLower(key)]
		if !ok {
			return
		}
		var err error
		if strings.EqualFold(v, "none") {
			if nonZero {
				err = errors.New(`must not be "none"`)
			} else {
				zero()
			}
		} else {
			err = set(strings.TrimSpace(v))
		}
		if err != nil {
			errs = append(errs, &InvalidError{Kind: KindConfig, Key: key,
				Err: fmt.Errorf("value %q: %w (using the default)", v, err)})
		}
	}

	field("FelixHostname", true, nil, func(v string) error { c.FelixHostname = v; return nil })
	field("DefaultEndpointToHostAction", true, nil, func(v string) error {
		return oneOf(v, []string{"DROP", "RETURN", "ACCEPT"}, &c.DefaultEndpointToHostAction)
	})
	field("FailsafeInboundHostPorts", false, func() { c.FailsafeInboundHostPorts = nil }, func(v string) error {
		p, err := parsePortList(v)
		if err == nil {
			c.FailsafeInboundHostPorts = p
		}
		return err
	})
	field("FailsafeOutboundHostPorts", false, func() { c.FailsafeOutboundHostPorts = nil }, func(v string) error {
		p, err := parsePortList(v)
		if err == nil {
			c.FailsafeOutboundHostPorts = p
		}
		return err
	})
	field("ReportingIntervalSecs", false, func() { c.ReportingInterval = 0 }, func(v string) error {
		d, err := parseSeconds(v)
		if err == nil {
			c.ReportingInterval = max(d, 0)
		}
		return err
	})
	field("VXLANEnabled", false, func() { c.VXLANEnabled = nil }, func(v string) error {
		b, err := parseBool(v)
		if err == nil {
			c.VXLANEnabled = &b
		}
		return err
	})
	field("IpInIpEnabled", false, func() { c.IPIPEnabled = nil }, func(v string) error {
		b, err := parseBool(v)
		if err == nil {
			c.IPIPEnabled = &b
		}
		return err
	})
	intField := func(key string, dst *int, lo, hi int) {
		field(key, false, func() { *dst = 0 }, func(v string) error {
			n, err := strconv.ParseInt(v, 0, 32)
			if err != nil {
				return errors.New("not an integer")
			}
			if int(n) < lo || int(n) > hi {
				return fmt.Errorf("out of range %d-%d", lo, hi)
			}
			*dst = int(n)
			return nil
		})
	}
	intField("VXLANMTU", &c.VXLANMTU, 0, 65535)
	intField("VXLANPort", &c.VXLANPort, 0, 65535)
	intField("VXLANVNI", &c.VXLANVNI, 0, 1<<24-1)
	field("Ipv6Support", false, func() { c.IPv6Support = false }, func(v string) error {
		b, err := parseBool(v)
		if err == nil {
			c.IPv6Support = b
		}
		return err
	})
	field("InterfacePrefix", true, nil, func(v string) error {
		if !ifaceListRE.MatchString(v) {
			return errors.New("not a comma-separated list of interface name prefixes")
		}
		c.InterfacePrefixes = strings.Split(v, ",")
		return nil
	})
	field("ServiceLoopPrevention", false, func() { c.ServiceLoopPrevention = "" }, func(v string) error {
		return oneOf(v, []string{"Drop", "Reject", "Disabled"}, &c.ServiceLoopPrevention)
	})
	field("NATOutgoingAddress", false, func() { c.NATOutgoingAddress = netip.Addr{} }, func(v string) error {
		a, err := ParseAddr(v)
		if err != nil {
			return err
		}
		if !a.Is4() {
			return errors.New("not an IPv4 address")
		}
		c.NATOutgoingAddress = a
		return nil
	})
	field(OptEndpointStatus, false, func() { c.EndpointStatus = false }, func(v string) error {
		b, err := parseBool(v)
		if err == nil {
			c.EndpointStatus = b
		}
		return err
	})
	field(OptApplyRetrySecs, false, func() {}, func(v string) error {
		d, err := parseSeconds(v)
		if err == nil && d <= 0 {
			err = errors.New("must be positive")
		}
		if err == nil {
			c.ApplyRetry = d
		}
		return err
	})
	return c, errors.Join(errs...)
}

// DriverOption returns a pass-through option by its lower-case name.
func (c *Config) DriverOption(name string) (string, bool) {
	v, ok := c.DriverOptions[strings.ToLower(name)]
	return v, ok
}

// DriverOptionNames lists the pass-through options Felix sent, sorted.
func (c *Config) DriverOptionNames() []string {
	return slices.Sorted(maps.Keys(c.DriverOptions))
}

func oneOf(v string, allowed []string, dst *string) error {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			*dst = a
			return nil
		}
	}
	return fmt.Errorf("not one of %s", strings.Join(allowed, ", "))
}

// parseBool accepts Felix's boolean spellings.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "y", "t":
		return true, nil
	case "false", "0", "no", "n", "f":
		return false, nil
	}
	return false, errors.New("not a boolean")
}

func parseSeconds(v string) (time.Duration, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f != f || f > 1e9 || f < -1e9 {
		return 0, errors.New("not a number of seconds")
	}
	return time.Duration(f * float64(time.Second)), nil
}

// parsePortList parses Felix's port-list format: comma-separated "<proto>:<port>", "<proto>:<net>:<port>",
// "<proto>:[<v6 net>]:<port>" or "<port>" (tcp), protocols tcp and udp.
func parsePortList(v string) ([]ProtoPort, error) {
	var out []ProtoPort
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		pp := ProtoPort{Protocol: "tcp"}
		var netStr string
		if i := strings.Index(item, "["); i >= 0 {
			j := strings.Index(item, "]:")
			if j < i {
				return nil, fmt.Errorf("%q: unbalanced [ ]", item)
			}
			netStr = item[i+1 : j]
			item = item[:i] + item[j+2:]
		}
		parts := strings.Split(item, ":")
		var portStr string
		switch len(parts) {
		case 1:
			portStr = parts[0]
		case 2:
			pp.Protocol, portStr = strings.ToLower(parts[0]), parts[1]
		case 3:
			pp.Protocol, netStr, portStr = strings.ToLower(parts[0]), parts[1], parts[2]
		default:
			return nil, fmt.Errorf("%q: want <protocol>:<net>:<port>, <protocol>:<port> or <port>", item)
		}
		if pp.Protocol != "tcp" && pp.Protocol != "udp" {
			return nil, fmt.Errorf("%q: unknown protocol %q", item, pp.Protocol)
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%q: port must be an integer 0-65535", item)
		}
		pp.Port = uint16(port)
		if netStr != "" {
			if pp.Net, err = ParseCIDR(netStr); err != nil {
				return nil, fmt.Errorf("%q: %w", item, err)
			}
		}
		out = append(out, pp)
	}
	return out, nil
}
