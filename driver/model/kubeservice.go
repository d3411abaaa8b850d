package model

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Service types (Kubernetes' spec.type).
const (
	ServiceTypeClusterIP    = "ClusterIP"
	ServiceTypeNodePort     = "NodePort"
	ServiceTypeLoadBalancer = "LoadBalancer"
	ServiceTypeExternalName = "ExternalName"
)

// DefaultAffinityTimeout is Kubernetes' default sessionAffinityConfig.clientIP.timeoutSeconds (3 hours).
const DefaultAffinityTimeout = 10800

// KubeService is a Kubernetes Service joined with its EndpointSlices, as the manager's own watch
// (driver/services) sees them: everything a dataplane needs to load-balance the service, including what
// Felix's ServiceUpdate does not carry (backends, port names, target ports, session affinity, traffic
// policies, the health-check node port, the load balancer's ingress addresses). It is the desired state's
// second input: Felix never sets it, and a new Felix session's snapshot does not replace it.
//
// Values are immutable once stored (SetKubeService keeps the pointer).
type KubeService struct {
	Key  ServiceKey
	Type string
	// ClusterIPs are spec.clusterIPs (both families for dual-stack, primary family first); empty for
	// headless ("None") and ExternalName services.
	ClusterIPs []netip.Addr
	Headless   bool
	// ExternalIPs are spec.externalIPs.
	ExternalIPs []netip.Addr
	// LoadBalancerIP is the deprecated spec.loadBalancerIP (invalid when unset).
	LoadBalancerIP netip.Addr
	// LoadBalancerIngress are the IPs of status.loadBalancer.ingress (hostname-only entries are dropped).
	LoadBalancerIngress []netip.Addr
	// ExternalTrafficLocal is externalTrafficPolicy: Local; InternalTrafficLocal internalTrafficPolicy:
	// Local.
	ExternalTrafficLocal bool
	InternalTrafficLocal bool
	// HealthCheckNodePort is spec.healthCheckNodePort (LoadBalancer with externalTrafficPolicy Local), 0 if
	// none.
	HealthCheckNodePort uint16
	// AffinityClientIP is sessionAffinity: ClientIP; AffinityTimeout its timeoutSeconds.
	AffinityClientIP bool
	AffinityTimeout  uint32
	// Ports in spec order, each with its backends.
	Ports []KubeServicePort
}

// KubeServicePort is one port of a Service with the backends the EndpointSlices give it.
type KubeServicePort struct {
	// Name is the port's name ("" for a service's only, unnamed port); EndpointSlice ports match by it.
	Name     string
	Protocol uint8 // ProtoTCP, ProtoUDP or ProtoSCTP
	Port     uint16
	// NodePort is 0 when the port has none.
	NodePort uint16
	// TargetPort is spec.ports[].targetPort as written (a number or a container port name); the backends'
	// ports are what the EndpointSlices resolved it to.
	TargetPort string
	// Backends are sorted by address and port, unique by (address, port).
	Backends []Backend
}

// Backend is one endpoint of a service port.
type Backend struct {
	Addr netip.Addr
	Port uint16
	// Conditions of the endpoint (EndpointSlice: ready defaults to true; serving to ready; terminating
	// to false).
	Ready, Serving, Terminating bool
	// NodeName is the node hosting the endpoint ("" when the slice does not say).
	NodeName string
}

// Family returns 4 or 6.
func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// Validate checks a KubeService's invariants: a key, a known type, valid unmapped addresses, ports in
// range with a known protocol, unique (protocol, port) pairs, backends sorted and unique.
func (s *KubeService) Validate() error {
	if s.Key.Namespace == "" || s.Key.Name == "" {
		return errors.New("no namespace or name")
	}
	switch s.Type {
	case ServiceTypeClusterIP, ServiceTypeNodePort, ServiceTypeLoadBalancer, ServiceTypeExternalName:
	default:
		return fmt.Errorf("unknown type %q", s.Type)
	}
	addrs := func(what string, l []netip.Addr) error {
		for _, a := range l {
			if !a.IsValid() || a.Is4In6() || a.Zone() != "" || a.IsUnspecified() {
				return fmt.Errorf("%s: invalid address %v", what, a)
			}
		}
		return nil
	}
	if err := addrs("clusterIPs", s.ClusterIPs); err != nil {
		return err
	}
	if len(s.ClusterIPs) > 2 || (len(s.ClusterIPs) == 2 && family(s.ClusterIPs[0]) == family(s.ClusterIPs[1])) {
		return fmt.Errorf("clusterIPs: %v is not one address per family", s.ClusterIPs)
	}
	if err := addrs("externalIPs", s.ExternalIPs); err != nil {
		return err
	}
	if err := addrs("loadBalancer ingress", s.LoadBalancerIngress); err != nil {
		return err
	}
	if s.LoadBalancerIP.IsValid() {
		if err := addrs("loadBalancerIP", []netip.Addr{s.LoadBalancerIP}); err != nil {
			return err
		}
	}
	type pk struct {
		proto uint8
		port  uint16
	}
	seen := map[pk]bool{}
	for i, p := range s.Ports {
		if p.Protocol != ProtoTCP && p.Protocol != ProtoUDP && p.Protocol != ProtoSCTP {
			return fmt.Errorf("ports[%d]: protocol %d is not TCP, UDP or SCTP", i, p.Protocol)
		}
		if p.Port == 0 {
			return fmt.Errorf("ports[%d]: port 0", i)
		}
		if seen[pk{p.Protocol, p.Port}] {
			return fmt.Errorf("ports[%d]: protocol %d port %d listed twice", i, p.Protocol, p.Port)
		}
		seen[pk{p.Protocol, p.Port}] = true
		for j, b := range p.Backends {
			if err := addrs(fmt.Sprintf("ports[%d].backends[%d]", i, j), []netip.Addr{b.Addr}); err != nil {
				return err
			}
			if b.Port == 0 {
				return fmt.Errorf("ports[%d].backends[%d]: port 0", i, j)
			}
			if j > 0 && CompareBackends(p.Backends[j-1], b) >= 0 {
				return fmt.Errorf("ports[%d]: backends not sorted and unique at %d", i, j)
			}
		}
	}
	return nil
}

// CompareBackends orders backends by address, then port.
func CompareBackends(a, b Backend) int {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	return int(a.Port) - int(b.Port)
}

// SortBackends sorts backends and removes duplicates (same address and port), keeping the one with the
// best conditions (ready, then serving, then not terminating).
func SortBackends(bs []Backend) []Backend {
	slices.SortStableFunc(bs, func(a, b Backend) int {
		if c := CompareBackends(a, b); c != 0 {
			return c
		}
		return backendRank(b) - backendRank(a) // best first
	})
	return slices.CompactFunc(bs, func(a, b Backend) bool { return CompareBackends(a, b) == 0 })
}

func backendRank(b Backend) int {
	r := 0
	if b.Ready {
		r += 4
	}
	if b.Serving {
		r += 2
	}
	if !b.Terminating {
		r++
	}
	return r
}

// SetKubeService stores (or replaces) a service of the Kubernetes watch. An invalid one is rejected: the
// previous version is removed (fail closed) and an *InvalidError returned.
func (s *State) SetKubeService(ks *KubeService) error {
	if ks == nil {
		return &InvalidError{Kind: KindKubeService, Err: errors.New("nil service")}
	}
	if err := ks.Validate(); err != nil {
		return reject(s.KubeServices, ks.Key, ks.Key.String(), err)
	}
	s.KubeServices.put(ks.Key, ks)
	return nil
}

// RemoveKubeService removes a service of the Kubernetes watch; it reports whether it existed.
func (s *State) RemoveKubeService(k ServiceKey) bool { return s.KubeServices.remove(k) }
