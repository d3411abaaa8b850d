package services

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/calico-p4/calico-p4/driver/model"
)

func ptr[T any](v T) *T { return &v }

func svc(ns, name string, mod func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"},
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("web")}}}}
	if mod != nil {
		mod(s)
	}
	return s
}

type ep struct {
	addr                        string
	ready, serving, terminating *bool
	node                        string
}

func slice(ns, name, service string, typ discoveryv1.AddressType, ports map[string]int32, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		Labels: map[string]string{discoveryv1.LabelServiceName: service}}, AddressType: typ}
	for n, p := range ports {
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr(n), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(p)})
	}
	for _, e := range eps {
		x := discoveryv1.Endpoint{Addresses: []string{e.addr},
			Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Serving: e.serving, Terminating: e.terminating}}
		if e.node != "" {
			x.NodeName = ptr(e.node)
		}
		s.Endpoints = append(s.Endpoints, x)
	}
	return s
}

func b(addr string, port uint16, ready, serving, terminating bool, node string) model.Backend {
	return model.Backend{Addr: netip.MustParseAddr(addr), Port: port, Ready: ready, Serving: serving, Terminating: terminating, NodeName: node}
}

func TestBuildJoinsAServiceWithItsSlicesAsKubeProxyReadsThem(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	tests := []struct {
		name     string
		svc      *corev1.Service
		slices   []*discoveryv1.EndpointSlice
		want     func(*model.KubeService)
		problems int
		err      string
	}{
		{
			name: "named port resolves through the slice port of the same name; conditions default ready",
			svc:  svc("x", "web", nil),
			slices: []*discoveryv1.EndpointSlice{slice("x", "web-1", "web", discoveryv1.AddressTypeIPv4, map[string]int32{"http": 8080},
				ep{addr: "10.65.0.52", node: "node1"}, ep{addr: "10.65.0.51", node: "node2"})},
			want: func(k *model.KubeService) {
				k.Ports[0].Backends = []model.Backend{b("10.65.0.51", 8080, true, true, false, "node2"),
					b("10.65.0.52", 8080, true, true, false, "node1")}
			},
		},
		{
			name: "terminating and not-ready endpoints keep their conditions; serving defaults to ready",
			svc:  svc("x", "web", nil),
			slices: []*discoveryv1.EndpointSlice{slice("x", "web-1", "web", discoveryv1.AddressTypeIPv4, map[string]int32{"http": 8080},
				ep{addr: "10.65.0.51", ready: no, serving: yes, terminating: yes}, ep{addr: "10.65.0.52", ready: no})},
			want: func(k *model.KubeService) {
				k.Ports[0].Backends = []model.Backend{b("10.65.0.51", 8080, false, true, true, ""),
					b("10.65.0.52", 8080, false, false, false, "")}
			},
		},
		{
			name: "slices of other services, other namespaces, FQDN slices and unnamed-mismatch ports are ignored",
			svc:  svc("x", "web", nil),
			slices: []*discoveryv1.EndpointSlice{
				slice("x", "other-1", "other", discoveryv1.AddressTypeIPv4, map[string]int32{"http": 1}, ep{addr: "10.0.0.1"}),
				slice("y", "web-1", "web", discoveryv1.AddressTypeIPv4, map[string]int32{"http": 2}, ep{addr: "10.0.0.2"}),
				slice("x", "web-f", "web", discoveryv1.AddressTypeFQDN, map[string]int32{"http": 3}, ep{addr: "example.com"}),
				slice("x", "web-2", "web", discoveryv1.AddressTypeIPv4, map[string]int32{"": 4}, ep{addr: "10.0.0.4"}),
			},
		},
		{
			name: "dual-stack: one slice per family, duplicates across slices merged keeping the best conditions",
			svc: svc("x", "dual", func(s *corev1.Service) {
				s.Spec.ClusterIPs = []string{"10.96.0.20", "fd00:10:96::20"}
			}),
			slices: []*discoveryv1.EndpointSlice{
				slice("x", "dual-4", "dual", discoveryv1.AddressTypeIPv4, map[string]int32{"http": 80}, ep{addr: "10.65.0.51", ready: no}),
				slice("x", "dual-4b", "dual", discoveryv1.AddressTypeIPv4, map[string]int32{"http": 80}, ep{addr: "10.65.0.51"}),
				slice("x", "dual-6", "dual", discoveryv1.AddressTypeIPv6, map[string]int32{"http": 80}, ep{addr: "fd00:65::51"}),
			},
			want: func(k *model.KubeService) {
				k.ClusterIPs = []netip.Addr{netip.MustParseAddr("10.96.0.20"), netip.MustParseAddr("fd00:10:96::20")}
				k.Ports[0].Backends = []model.Backend{b("10.65.0.51", 80, true, true, false, ""), b("fd00:65::51", 80, true, true, false, "")}
			},
		},
		{
			name: "an address of the wrong family or unparsable is skipped and reported",
			svc:  svc("x", "web", nil),
			slices: []*discoveryv1.EndpointSlice{slice("x", "web-1", "web", discoveryv1.AddressTypeIPv4, map[string]int32{"http": 80},
				ep{addr: "fd00::1"}, ep{addr: "not-an-ip"}, ep{addr: "10.65.0.51"})},
			want: func(k *model.KubeService) {
				k.Ports[0].Backends = []model.Backend{b("10.65.0.51", 80, true, true, false, "")}
			},
			problems: 2,
		},
		{
			name: "load balancer, external IPs, traffic policies, health check, affinity with its timeout",
			svc: svc("x", "lb", func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeLoadBalancer
				s.Spec.Ports[0].NodePort = 30081
				s.Spec.LoadBalancerIP = "203.0.113.10"
				s.Spec.ExternalIPs = []string{"198.51.100.7"}
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
				s.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
				s.Spec.HealthCheckNodePort = 30090
				s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
				s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(600))}}
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.20"}, {Hostname: "lb.example.com"},
					{IP: "203.0.113.30", IPMode: ptr(corev1.LoadBalancerIPModeProxy)}}
			}),
			want: func(k *model.KubeService) {
				k.Type = model.ServiceTypeLoadBalancer
				k.Ports[0].NodePort = 30081
				k.LoadBalancerIP = netip.MustParseAddr("203.0.113.10")
				k.ExternalIPs = []netip.Addr{netip.MustParseAddr("198.51.100.7")}
				k.LoadBalancerIngress = []netip.Addr{netip.MustParseAddr("203.0.113.20")}
				k.ExternalTrafficLocal, k.InternalTrafficLocal = true, true
				k.HealthCheckNodePort = 30090
				k.AffinityClientIP, k.AffinityTimeout = true, 600
			},
		},
		{
			name: "affinity without a config gets Kubernetes' default timeout",
			svc:  svc("x", "web", func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP }),
			want: func(k *model.KubeService) { k.AffinityClientIP, k.AffinityTimeout = true, model.DefaultAffinityTimeout },
		},
		{
			name: "headless",
			svc:  svc("x", "web", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"} }),
			want: func(k *model.KubeService) { k.ClusterIPs, k.Headless = nil, true },
		},
		{
			name: "ExternalName has no addresses and no backends",
			svc: svc("x", "ext", func(s *corev1.Service) {
				s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}
			}),
			slices: []*discoveryv1.EndpointSlice{slice("x", "ext-1", "ext", discoveryv1.AddressTypeIPv4, nil, ep{addr: "10.0.0.1"})},
			want: func(k *model.KubeService) {
				k.Type, k.ClusterIPs, k.Ports = model.ServiceTypeExternalName, nil, nil
			},
		},
		{
			name: "an unparsable cluster IP rejects the service",
			svc:  svc("x", "web", func(s *corev1.Service) { s.Spec.ClusterIPs = []string{"10.96.0.300"} }),
			err:  "clusterIPs",
		},
		{
			name: "an unknown protocol rejects the service",
			svc:  svc("x", "web", func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "ICMP" }),
			err:  "protocol",
		},
		{
			name: "the same protocol and port twice rejects the service",
			svc: svc("x", "web", func(s *corev1.Service) {
				s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "again", Port: 80})
			}),
			err: "listed twice",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, problems, err := Build(tc.svc, tc.slices)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) != tc.problems {
				t.Errorf("problems = %v, want %d", problems, tc.problems)
			}
			want := &model.KubeService{Key: model.ServiceKey{Namespace: tc.svc.Namespace, Name: tc.svc.Name},
				Type: model.ServiceTypeClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")},
				Ports: []model.KubeServicePort{{Name: "http", Protocol: model.ProtoTCP, Port: 80, TargetPort: "web"}}}
			if tc.want != nil {
				tc.want(want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}
