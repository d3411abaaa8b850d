package scenario

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
)

// Scenario is a cluster description, its initial resources and the steps applied after the snapshot.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// LocalNode is the node Felix runs on (default: the first Node resource, or "node1").
	LocalNode string `json:"localNode,omitempty"`
	// FelixConfig entries are added to the ConfigUpdate (as "datastore (global)" values).
	FelixConfig map[string]string `json:"felixConfig,omitempty"`
	// Datastore is "kubernetes" (default; KDD semantics: namespaces get kubernetes.io/metadata.name, every
	// namespace has a "default" service account, nodes get kubernetes.io/hostname and kubernetes.io/os) or
	// "etcdv3" (nothing implicit).
	Datastore string `json:"datastore,omitempty"`
	// ImplicitServiceAccounts (Kubernetes datastore, default true) gives every namespace a "default"
	// service account, as Kubernetes' controller manager does. Set false to list them explicitly.
	ImplicitServiceAccounts *bool `json:"implicitServiceAccounts,omitempty"`
	// IfacePrefix for workload interface names (default "cali").
	IfacePrefix string `json:"ifacePrefix,omitempty"`
	// Resources present before InSync.
	Resources []Resource `json:"resources,omitempty"`
	// Expect is the reachability expected right after InSync.
	Expect []Expectation `json:"expect,omitempty"`
	Steps  []Step        `json:"steps,omitempty"`

	// DefaultMAC, when set, gives the MAC of pods whose spec has none. Felix with the Kubernetes datastore
	// sends workload endpoints without a MAC (the captures have none); a dataplane that must rewrite
	// destination MACs learns them elsewhere (the CNI plugin's reply). The harness sets it to the MACs its
	// pods really have.
	DefaultMAC func(namespace, pod string) string `json:"-"`
}

// Step changes the cluster and states what is expected afterwards.
type Step struct {
	Title  string        `json:"title"`
	Apply  []Resource    `json:"apply,omitempty"`  // create or replace
	Delete []Ref         `json:"delete,omitempty"` // remove
	Expect []Expectation `json:"expect,omitempty"` // reachability after the step; none = not probed
}

// Ref names a resource to delete.
type Ref struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion,omitempty"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace,omitempty"`
}

// Expectation states reachability for some probe cases: Default for every pod pair, then Rules in order
// ("allow <from> -> <to>" / "deny <from> -> <to>", patterns are globs over "<namespace>/<pod>"; later wins).
type Expectation struct {
	Cases   []string `json:"cases"`
	Default string   `json:"default"` // "allow" or "deny"
	Rules   []string `json:"rules,omitempty"`
	// Peers restricts (or extends) who is probed: globs over pod names and the harness's special peers
	// ("host/<node>": the node's own network stack; "ext/<name>": a client outside the cluster on the
	// node's uplink). Default: every pod, no special peer.
	Peers []string `json:"peers,omitempty"`
}

// Selects reports whether the expectation probes the peer called name.
func (e Expectation) Selects(name string, special bool) bool {
	if len(e.Peers) == 0 {
		return !special
	}
	for _, p := range e.Peers {
		if globMatch(p, name) {
			return true
		}
	}
	return false
}

// Meta is the metadata of a resource.
type Meta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Resource is one object. Kind selects how Spec is read; NetworkPolicy is Calico's unless APIVersion is
// networking.k8s.io/v1 (Kubernetes'), which may also be written as kind KubernetesNetworkPolicy.
type Resource struct {
	APIVersion string          `json:"apiVersion,omitempty"`
	Kind       string          `json:"kind"`
	Metadata   Meta            `json:"metadata"`
	Spec       json.RawMessage `json:"spec,omitempty"`
	// Status is read for Services only (status.loadBalancer).
	Status json.RawMessage `json:"status,omitempty"`
}

// Resource kinds.
const (
	KindNode             = "Node"
	KindIPPool           = "IPPool"
	KindNamespace        = "Namespace"
	KindServiceAccount   = "ServiceAccount"
	KindPod              = "Pod"
	KindProfile          = "Profile"
	KindTier             = "Tier"
	KindGNP              = "GlobalNetworkPolicy"
	KindNP               = "NetworkPolicy"
	KindKNP              = "KubernetesNetworkPolicy"
	KindGNS              = "GlobalNetworkSet"
	KindNetworkSet       = "NetworkSet"
	KindHostEndpoint     = "HostEndpoint"
	apiVersionKubernetes = "networking.k8s.io/v1"
)

// canonicalKind maps (apiVersion, kind) to the kinds above.
func canonicalKind(apiVersion, kind string) string {
	if kind == KindNP && apiVersion == apiVersionKubernetes {
		return KindKNP
	}
	return kind
}

// NodeSpec: the node's addresses (CIDR form, as on the Node) and BGP AS number.
type NodeSpec struct {
	IPv4     string `json:"ipv4,omitempty"` // e.g. 192.168.122.11/24
	IPv6     string `json:"ipv6,omitempty"`
	ASNumber string `json:"asNumber,omitempty"`
	// Blocks are the IPAM blocks affine to the node (e.g. 10.65.1.0/26). VXLANTunnelAddr and VXLANTunnelMAC
	// are its vxlan.calico address and MAC (Node.spec.ipv4VXLANTunnelAddr, .status / the generated MAC).
	// With a VXLAN IP pool Felix's route resolver sends routes for blocks, nodes, tunnel addresses and local
	// workloads, and a VTEP per node with a tunnel address; the compiler does the same.
	Blocks          []string `json:"blocks,omitempty"`
	VXLANTunnelAddr string   `json:"vxlanTunnelAddr,omitempty"`
	VXLANTunnelMAC  string   `json:"vxlanTunnelMAC,omitempty"`
}

// IPPoolSpec mirrors Calico's IPPool.
type IPPoolSpec struct {
	CIDR        string `json:"cidr"`
	NATOutgoing bool   `json:"natOutgoing,omitempty"`
	IPIPMode    string `json:"ipipMode,omitempty"`  // Always, CrossSubnet, Never
	VXLANMode   string `json:"vxlanMode,omitempty"` // Always, CrossSubnet, Never
	Disabled    bool   `json:"disabled,omitempty"`
}

// PodSpec is a compact pod: node, service account, IPs, named container ports, optional MAC / interface
// name and extra (non-Kubernetes) profiles.
type PodSpec struct {
	NodeName           string         `json:"nodeName,omitempty"`
	ServiceAccountName string         `json:"serviceAccountName,omitempty"`
	IPs                []string       `json:"ips"`
	Ports              []EndpointPort `json:"ports,omitempty"`
	MAC                string         `json:"mac,omitempty"`
	InterfaceName      string         `json:"interfaceName,omitempty"`
	Profiles           []string       `json:"profiles,omitempty"`
	AllowSpoofedSource []string       `json:"allowSpoofedSourcePrefixes,omitempty"`
}

// EndpointPort is a named port of a pod or host endpoint.
type EndpointPort struct {
	Name     string `json:"name"`
	Port     int    `json:"port,omitempty"`
	Protocol string `json:"protocol,omitempty"` // TCP (default), UDP, SCTP
	// ContainerPort is accepted as an alias of Port (Kubernetes spelling).
	ContainerPort int `json:"containerPort,omitempty"`
}

func (p EndpointPort) number() int {
	if p.Port != 0 {
		return p.Port
	}
	return p.ContainerPort
}

// ProfileSpec mirrors Calico's Profile.
type ProfileSpec struct {
	Ingress       []Rule            `json:"ingress,omitempty"`
	Egress        []Rule            `json:"egress,omitempty"`
	LabelsToApply map[string]string `json:"labelsToApply,omitempty"`
}

// TierSpec mirrors Calico's Tier (not in Calico v3.28: newer Felix versions send several tiers).
type TierSpec struct {
	Order *float64 `json:"order,omitempty"`
}

// PolicySpec mirrors Calico's GlobalNetworkPolicy / NetworkPolicy spec.
type PolicySpec struct {
	Tier                   string   `json:"tier,omitempty"`
	Order                  *float64 `json:"order,omitempty"`
	Selector               string   `json:"selector,omitempty"`
	NamespaceSelector      string   `json:"namespaceSelector,omitempty"` // GlobalNetworkPolicy only
	ServiceAccountSelector string   `json:"serviceAccountSelector,omitempty"`
	Types                  []string `json:"types,omitempty"`
	Ingress                []Rule   `json:"ingress,omitempty"`
	Egress                 []Rule   `json:"egress,omitempty"`
	DoNotTrack             bool     `json:"doNotTrack,omitempty"`
	PreDNAT                bool     `json:"preDNAT,omitempty"`
	ApplyOnForward         bool     `json:"applyOnForward,omitempty"`
}

// KubernetesNetworkPolicySpec is networking.k8s.io/v1 NetworkPolicySpec.
type KubernetesNetworkPolicySpec = networkingv1.NetworkPolicySpec

// NetworkSetSpec mirrors Calico's (Global)NetworkSet.
type NetworkSetSpec struct {
	Nets []string `json:"nets"`
}

// HostEndpointSpec mirrors Calico's HostEndpoint.
type HostEndpointSpec struct {
	Node          string         `json:"node"`
	InterfaceName string         `json:"interfaceName,omitempty"`
	ExpectedIPs   []string       `json:"expectedIPs,omitempty"`
	Profiles      []string       `json:"profiles,omitempty"`
	Ports         []EndpointPort `json:"ports,omitempty"`
}

// Rule mirrors Calico's v3 Rule.
type Rule struct {
	Action      string            `json:"action"` // Allow, Deny, Log, Pass
	IPVersion   *int              `json:"ipVersion,omitempty"`
	Protocol    *Protocol         `json:"protocol,omitempty"`
	NotProtocol *Protocol         `json:"notProtocol,omitempty"`
	ICMP        *ICMPFields       `json:"icmp,omitempty"`
	NotICMP     *ICMPFields       `json:"notICMP,omitempty"`
	Source      EntityRule        `json:"source,omitempty"`
	Destination EntityRule        `json:"destination,omitempty"`
	HTTP        *HTTPMatch        `json:"http,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"` // annotations
}

// ICMPFields: type and optional code.
type ICMPFields struct {
	Type *int `json:"type,omitempty"`
	Code *int `json:"code,omitempty"`
}

// EntityRule mirrors Calico's v3 EntityRule.
type EntityRule struct {
	Nets              []string               `json:"nets,omitempty"`
	NotNets           []string               `json:"notNets,omitempty"`
	Selector          string                 `json:"selector,omitempty"`
	NotSelector       string                 `json:"notSelector,omitempty"`
	NamespaceSelector string                 `json:"namespaceSelector,omitempty"`
	Ports             []Port                 `json:"ports,omitempty"`
	NotPorts          []Port                 `json:"notPorts,omitempty"`
	ServiceAccounts   *ServiceAccountMatch   `json:"serviceAccounts,omitempty"`
	Services          map[string]interface{} `json:"services,omitempty"` // not supported (needs Kubernetes Services)
}

// ServiceAccountMatch mirrors Calico's.
type ServiceAccountMatch struct {
	Names    []string `json:"names,omitempty"`
	Selector string   `json:"selector,omitempty"`
}

// HTTPMatch mirrors Calico's (passed through; a P4 pipeline cannot evaluate it).
type HTTPMatch struct {
	Methods []string `json:"methods,omitempty"`
	Paths   []struct {
		Exact  string `json:"exact,omitempty"`
		Prefix string `json:"prefix,omitempty"`
	} `json:"paths,omitempty"`
}

// Protocol is a protocol name (TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite) or number.
type Protocol struct {
	Name   string
	Number int
}

// UnmarshalJSON accepts a string or a number.
func (p *Protocol) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		if n < 0 || n > 255 {
			return fmt.Errorf("protocol number %d out of range", n)
		}
		p.Number = n
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("protocol: want a name or number: %w", err)
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 255 {
		p.Number = n
		return nil
	}
	switch strings.ToLower(s) {
	case "tcp", "udp", "icmp", "icmpv6", "sctp", "udplite":
		p.Name = s
		return nil
	}
	return fmt.Errorf("unknown protocol %q", s)
}

// v1 returns Felix's (v1) spelling: lower-case name, or the number.
func (p Protocol) v1() Protocol {
	if p.Name != "" {
		return Protocol{Name: strings.ToLower(p.Name)}
	}
	return p
}

// Port is a port, a range "first:last", or a named port.
type Port struct {
	First, Last int
	Name        string
}

// UnmarshalJSON accepts 80, "80", "80:90" or "http".
func (p *Port) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		return p.set(n, n)
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("port: want a number or string: %w", err)
	}
	return p.parse(s)
}

func (p *Port) parse(s string) error {
	if a, b, ok := strings.Cut(s, ":"); ok {
		first, err1 := strconv.Atoi(a)
		last, err2 := strconv.Atoi(b)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("bad port range %q", s)
		}
		return p.set(first, last)
	}
	if n, err := strconv.Atoi(s); err == nil {
		return p.set(n, n)
	}
	if s == "" || strings.ContainsAny(s, " /,") {
		return fmt.Errorf("bad port name %q", s)
	}
	p.Name = s
	return nil
}

func (p *Port) set(first, last int) error {
	if first < 0 || last > 65535 || first > last {
		return fmt.Errorf("bad port range %d:%d", first, last)
	}
	p.First, p.Last = first, last
	return nil
}

type (
	networkingPeer = networkingv1.NetworkPolicyPeer
	networkingPort = networkingv1.NetworkPolicyPort
)
