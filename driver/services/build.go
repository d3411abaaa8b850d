package services

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/calico-p4/calico-p4/driver/model"
)

// Build joins a Service with its EndpointSlices into the typed, validated view the translator consumes.
//
// The join follows kube-proxy: a slice belongs to the service named by its kubernetes.io/service-name
// label (in the same namespace); a service port takes, from each slice of address type IPv4 or IPv6
// (FQDN slices are ignored), the slice port with the same name and protocol, whose number is the target
// port the EndpointSlice controller resolved for it; an endpoint contributes its first address (as
// kube-proxy) with its ready / serving / terminating conditions (ready defaults to true, serving to
// ready, terminating to false) and node name.
//
// A service that cannot be programmed as written (an address or protocol that does not parse: the API
// server's validation normally prevents it) is an error: the caller removes it (fail closed). Parts of a
// slice that cannot be used (an unparsable or wrong-family address, a port without a number) are skipped
// and returned as problems, the rest is kept.
func Build(svc *corev1.Service, slices []*discoveryv1.EndpointSlice) (*model.KubeService, []error, error) {
	if svc == nil {
		return nil, nil, errors.New("nil service")
	}
	ks := &model.KubeService{
		Key:  model.ServiceKey{Namespace: svc.Namespace, Name: svc.Name},
		Type: string(svc.Spec.Type),
	}
	if ks.Type == "" {
		ks.Type = model.ServiceTypeClusterIP
	}
	fail := func(format string, args ...any) (*model.KubeService, []error, error) {
		return nil, nil, fmt.Errorf("service %s: %s", ks.Key, fmt.Sprintf(format, args...))
	}
	if ks.Type != model.ServiceTypeExternalName {
		ips := svc.Spec.ClusterIPs
		if len(ips) == 0 && svc.Spec.ClusterIP != "" {
			ips = []string{svc.Spec.ClusterIP}
		}
		for _, s := range ips {
			if s == corev1.ClusterIPNone {
				ks.Headless = true
				continue
			}
			a, err := parseIP(s)
			if err != nil {
				return fail("clusterIPs: %v", err)
			}
			ks.ClusterIPs = append(ks.ClusterIPs, a)
		}
	}
	for _, s := range svc.Spec.ExternalIPs {
		a, err := parseIP(s)
		if err != nil {
			return fail("externalIPs: %v", err)
		}
		ks.ExternalIPs = append(ks.ExternalIPs, a)
	}
	if s := svc.Spec.LoadBalancerIP; s != "" {
		a, err := parseIP(s)
		if err != nil {
			return fail("loadBalancerIP: %v", err)
		}
		ks.LoadBalancerIP = a
	}
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.IP == "" {
			continue // hostname-only ingress: nothing to program
		}
		if in.IPMode != nil && *in.IPMode == corev1.LoadBalancerIPModeProxy {
			continue // the load balancer proxies to node or pod addresses: not a VIP to capture (as kube-proxy)
		}
		a, err := parseIP(in.IP)
		if err != nil {
			return fail("status.loadBalancer.ingress: %v", err)
		}
		ks.LoadBalancerIngress = append(ks.LoadBalancerIngress, a)
	}
	ks.ExternalTrafficLocal = svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	ks.InternalTrafficLocal = svc.Spec.InternalTrafficPolicy != nil &&
		*svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
	if p := svc.Spec.HealthCheckNodePort; p > 0 && p <= 65535 {
		ks.HealthCheckNodePort = uint16(p)
	}
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		ks.AffinityClientIP = true
		ks.AffinityTimeout = model.DefaultAffinityTimeout
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil &&
			*c.ClientIP.TimeoutSeconds > 0 {
			ks.AffinityTimeout = uint32(*c.ClientIP.TimeoutSeconds)
		}
	}
	for i, p := range svc.Spec.Ports {
		proto, err := protocol(p.Protocol)
		if err != nil {
			return fail("ports[%d]: %v", i, err)
		}
		if p.Port <= 0 || p.Port > 65535 || p.NodePort < 0 || p.NodePort > 65535 {
			return fail("ports[%d]: port %d / node port %d out of range", i, p.Port, p.NodePort)
		}
		ks.Ports = append(ks.Ports, model.KubeServicePort{Name: p.Name, Protocol: proto, Port: uint16(p.Port),
			NodePort: uint16(p.NodePort), TargetPort: p.TargetPort.String()})
	}
	var problems []error
	if ks.Type != model.ServiceTypeExternalName {
		for _, sl := range slices {
			problems = append(problems, addSlice(ks, sl)...)
		}
	}
	for i := range ks.Ports {
		ks.Ports[i].Backends = model.SortBackends(ks.Ports[i].Backends)
	}
	if err := ks.Validate(); err != nil {
		return fail("%v", err)
	}
	return ks, problems, nil
}

// addSlice adds one slice's endpoints to the ports they serve.
func addSlice(ks *model.KubeService, sl *discoveryv1.EndpointSlice) []error {
	if sl == nil || sl.Namespace != ks.Key.Namespace || sl.Labels[discoveryv1.LabelServiceName] != ks.Key.Name {
		return nil
	}
	var want int
	switch sl.AddressType {
	case discoveryv1.AddressTypeIPv4:
		want = 4
	case discoveryv1.AddressTypeIPv6:
		want = 6
	default:
		return nil // FQDN (or unknown): kube-proxy ignores these too
	}
	var problems []error
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Errorf("endpointslice %s/%s: %s", sl.Namespace, sl.Name, fmt.Sprintf(format, args...)))
	}
	for i := range ks.Ports {
		sp := &ks.Ports[i]
		var port uint16
		found := false
		for _, p := range sl.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			pn, err := protocol(proto)
			if err != nil || name != sp.Name || pn != sp.Protocol {
				continue
			}
			if p.Port == nil || *p.Port <= 0 || *p.Port > 65535 {
				bad("port %q has no usable number", name)
				break
			}
			port, found = uint16(*p.Port), true
			break
		}
		if !found {
			continue
		}
		for j, ep := range sl.Endpoints {
			if len(ep.Addresses) == 0 {
				continue
			}
			a, err := parseIP(ep.Addresses[0])
			if err != nil {
				bad("endpoints[%d]: %v", j, err)
				continue
			}
			if (want == 4) != a.Is4() {
				bad("endpoints[%d]: %s is not an %s address", j, a, sl.AddressType)
				continue
			}
			b := model.Backend{Addr: a, Port: port, Ready: true}
			if c := ep.Conditions.Ready; c != nil {
				b.Ready = *c
			}
			b.Serving = b.Ready
			if c := ep.Conditions.Serving; c != nil {
				b.Serving = *c
			}
			if c := ep.Conditions.Terminating; c != nil {
				b.Terminating = *c
			}
			if ep.NodeName != nil {
				b.NodeName = *ep.NodeName
			}
			sp.Backends = append(sp.Backends, b)
		}
	}
	return problems
}

func parseIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q has a zone", s)
	}
	return a.Unmap(), nil
}

func protocol(p corev1.Protocol) (uint8, error) {
	switch p {
	case corev1.ProtocolTCP, "":
		return model.ProtoTCP, nil
	case corev1.ProtocolUDP:
		return model.ProtoUDP, nil
	case corev1.ProtocolSCTP:
		return model.ProtoSCTP, nil
	}
	return 0, fmt.Errorf("protocol %q is not TCP, UDP or SCTP", string(p))
}
