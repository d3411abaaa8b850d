package scenario

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/projectcalico/calico/felix/proto"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Kubernetes Services and EndpointSlices. A scenario declares them as resources:
//
//	- kind: Service                     # spec and status are a core/v1 Service's
//	  metadata: {name: web, namespace: x}
//	  spec: {clusterIPs: [10.96.0.10], ports: [{name: http, port: 80, targetPort: 80}]}
//	- kind: EndpointSlice               # spec holds a discovery/v1 EndpointSlice's top-level fields
//	  metadata: {name: web-1, namespace: x, labels: {kubernetes.io/service-name: web}}
//	  spec: {addressType: IPv4, ports: [{name: http, port: 80}], endpoints: [{addresses: [10.65.0.11]}]}
//
// The compiler sends Felix's ServiceUpdate / ServiceRemove for every Service (Kubernetes datastore only,
// as Felix does: name, namespace, type, cluster IPs — "None" for headless, none for ExternalName —,
// spec.loadBalancerIP, external IPs, and per port only protocol, port and node port). EndpointSlices give
// Felix nothing (no `services:` policy rule is modelled); both reach the dataplane through the manager's
// own watch: KubeObjects gives the objects the API server would hold at each step, with the defaults it
// applies (type ClusterIP, protocol TCP, targetPort = port, clusterIPs from clusterIP).

// Resource kinds of Kubernetes services.
const (
	KindService       = "Service"
	KindEndpointSlice = "EndpointSlice"
)

// EndpointSliceSpec is the part of an EndpointSlice a scenario gives under spec.
type EndpointSliceSpec struct {
	AddressType discoveryv1.AddressType    `json:"addressType"`
	Endpoints   []discoveryv1.Endpoint     `json:"endpoints,omitempty"`
	Ports       []discoveryv1.EndpointPort `json:"ports,omitempty"`
}

// KubeObjects are the Services and EndpointSlices of one cluster state.
type KubeObjects struct {
	Services []*corev1.Service
	Slices   []*discoveryv1.EndpointSlice
}

// decodeService reads a Service resource, with the API server's defaults applied.
func decodeService(r Resource) (*corev1.Service, error) {
	if err := needNamespace(r, true); err != nil {
		return nil, err
	}
	s := &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: KindService},
		ObjectMeta: metav1.ObjectMeta{Name: r.Metadata.Name, Namespace: r.Metadata.Namespace, Labels: r.Metadata.Labels,
			Annotations: r.Metadata.Annotations}}
	if err := decodeSpec(r, &s.Spec); err != nil {
		return nil, err
	}
	if len(r.Status) > 0 {
		d := json.NewDecoder(bytes.NewReader(r.Status))
		d.DisallowUnknownFields()
		if err := d.Decode(&s.Status); err != nil {
			return nil, fmt.Errorf("Service %s: status: %w", r.key(), err)
		}
	}
	sp := &s.Spec
	if sp.Type == "" {
		sp.Type = corev1.ServiceTypeClusterIP
	}
	if len(sp.ClusterIPs) == 0 && sp.ClusterIP != "" {
		sp.ClusterIPs = []string{sp.ClusterIP}
	}
	if sp.ClusterIP == "" && len(sp.ClusterIPs) > 0 {
		sp.ClusterIP = sp.ClusterIPs[0]
	}
	if sp.Type != corev1.ServiceTypeExternalName && len(sp.ClusterIPs) == 0 {
		return nil, fmt.Errorf("Service %s: spec.clusterIPs is required (the scenario allocates no addresses)", r.key())
	}
	for _, ip := range sp.ClusterIPs {
		if _, err := netip.ParseAddr(ip); err != nil && ip != corev1.ClusterIPNone {
			return nil, fmt.Errorf("Service %s: clusterIPs: %q", r.key(), ip)
		}
	}
	for i := range sp.Ports {
		p := &sp.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal == 0 && sp.ClusterIP != corev1.ClusterIPNone {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	return s, nil
}

// decodeSlice reads an EndpointSlice resource.
func decodeSlice(r Resource) (*discoveryv1.EndpointSlice, error) {
	if err := needNamespace(r, true); err != nil {
		return nil, err
	}
	var sp EndpointSliceSpec
	if err := decodeSpec(r, &sp); err != nil {
		return nil, err
	}
	if r.Metadata.Labels[discoveryv1.LabelServiceName] == "" {
		return nil, fmt.Errorf("EndpointSlice %s: label %s is required", r.key(), discoveryv1.LabelServiceName)
	}
	switch sp.AddressType {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN:
	default:
		return nil, fmt.Errorf("EndpointSlice %s: addressType %q", r.key(), sp.AddressType)
	}
	return &discoveryv1.EndpointSlice{TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: KindEndpointSlice},
		ObjectMeta: metav1.ObjectMeta{Name: r.Metadata.Name, Namespace: r.Metadata.Namespace, Labels: r.Metadata.Labels,
			Annotations: r.Metadata.Annotations},
		AddressType: sp.AddressType, Endpoints: sp.Endpoints, Ports: sp.Ports}, nil
}

// serviceUpdate is Felix's ServiceUpdate for a Service (KDD; see the k8s-services capture).
func serviceUpdate(s *corev1.Service) *proto.ServiceUpdate {
	u := &proto.ServiceUpdate{Name: s.Name, Namespace: s.Namespace, Type: string(s.Spec.Type),
		LoadbalancerIp: s.Spec.LoadBalancerIP, ExternalIps: append([]string(nil), s.Spec.ExternalIPs...)}
	if s.Spec.Type != corev1.ServiceTypeExternalName {
		u.ClusterIps = append([]string(nil), s.Spec.ClusterIPs...)
	}
	for _, p := range s.Spec.Ports {
		u.Ports = append(u.Ports, &proto.ServicePort{Protocol: string(p.Protocol), Port: p.Port, NodePort: p.NodePort})
	}
	return u
}

// services fills Felix's ServiceUpdates of a cluster state (Kubernetes datastore only).
func (c *cluster) services(st *State) {
	if !c.kdd() {
		return
	}
	for _, k := range sortedKeys(c.svcs) {
		st.Services[k] = serviceUpdate(c.svcs[k])
	}
}

// KubeObjects returns the Services and EndpointSlices after the snapshot (step 0) or after step i, sorted
// by namespace and name (each a copy the caller may keep).
func (s *Scenario) KubeObjects(step int) (*KubeObjects, error) {
	cs, err := s.states()
	if err != nil {
		return nil, err
	}
	if step < 0 || step >= len(cs) {
		return nil, fmt.Errorf("step %d out of range 0..%d", step, len(cs)-1)
	}
	out := &KubeObjects{}
	for _, k := range sortedKeys(cs[step].svcs) {
		out.Services = append(out.Services, cs[step].svcs[k].DeepCopy())
	}
	for _, k := range sortedKeys(cs[step].slices) {
		out.Slices = append(out.Slices, cs[step].slices[k].DeepCopy())
	}
	return out, nil
}

// validateServices checks that services and slices live in existing namespaces.
func (c *cluster) validateServices() error {
	for _, k := range sortedKeys(c.svcs) {
		if _, ok := c.ns[c.svcs[k].Namespace]; !ok {
			return fmt.Errorf("service %s: namespace %s does not exist", k, c.svcs[k].Namespace)
		}
	}
	for _, k := range sortedKeys(c.slices) {
		if _, ok := c.ns[c.slices[k].Namespace]; !ok {
			return fmt.Errorf("endpointslice %s: namespace %s does not exist", k, c.slices[k].Namespace)
		}
	}
	return nil
}

func serviceKey(u *proto.ServiceUpdate) string { return u.Namespace + "/" + u.Name }

// nsName splits "ns/name" (for ServiceRemove).
func nsName(k string) (string, string) {
	ns, name, _ := strings.Cut(k, "/")
	return ns, name
}
