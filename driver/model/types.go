package model

import (
	"cmp"
	"net"
	"net/netip"
	"strings"
)

// Kind names a kind of model object. Its String form is the `kind` label of the
// calico_p4_model_invalid_objects_total metric.
type Kind uint8

// The kinds of objects the model holds.
const (
	KindIPSet Kind = iota + 1
	KindPolicy
	KindProfile
	KindWorkloadEndpoint
	KindHostEndpoint
	KindRoute
	KindVTEP
	KindWireguardEndpoint
	KindWireguardEndpointV6
	KindHostMetadata
	KindHostMetadataV6
	KindHostMetadataV4V6
	KindIPAMPool
	KindEncapsulation
	KindBGPConfig
	KindService
	KindNamespace
	KindServiceAccount
	KindConfig
	// KindKubeService is a Service with its backends from the manager's own Kubernetes watch (not Felix).
	KindKubeService
	// KindPodInterface is a pod interface (host interface name, pod MAC) from the manager's CNI server.
	KindPodInterface
)

// Kinds lists every kind, in a stable order.
var Kinds = []Kind{
	KindIPSet, KindPolicy, KindProfile, KindWorkloadEndpoint, KindHostEndpoint, KindRoute, KindVTEP,
	KindWireguardEndpoint, KindWireguardEndpointV6, KindHostMetadata, KindHostMetadataV6, KindHostMetadataV4V6,
	KindIPAMPool, KindEncapsulation, KindBGPConfig, KindService, KindNamespace, KindServiceAccount, KindConfig,
	KindKubeService, KindPodInterface,
}

func (k Kind) String() string {
	switch k {
	case KindIPSet:
		return "ipset"
	case KindPolicy:
		return "policy"
	case KindProfile:
		return "profile"
	case KindWorkloadEndpoint:
		return "workload_endpoint"
	case KindHostEndpoint:
		return "host_endpoint"
	case KindRoute:
		return "route"
	case KindVTEP:
		return "vtep"
	case KindWireguardEndpoint:
		return "wireguard_endpoint"
	case KindWireguardEndpointV6:
		return "wireguard_endpoint_v6"
	case KindHostMetadata:
		return "host_metadata"
	case KindHostMetadataV6:
		return "host_metadata_v6"
	case KindHostMetadataV4V6:
		return "host_metadata_v4v6"
	case KindIPAMPool:
		return "ipam_pool"
	case KindEncapsulation:
		return "encapsulation"
	case KindBGPConfig:
		return "bgp_config"
	case KindService:
		return "service"
	case KindNamespace:
		return "namespace"
	case KindServiceAccount:
		return "service_account"
	case KindConfig:
		return "config"
	case KindKubeService:
		return "kube_service"
	case KindPodInterface:
		return "pod_interface"
	}
	return "unknown"
}

// ---------------------------------------------------------------------------------------------------
// Keys

// PolicyKey identifies a policy: its tier and its name (e.g. {"default", "default.gnp-frontend"} for a
// GlobalNetworkPolicy, {"default", "ns/default.np"} for a NetworkPolicy).
type PolicyKey struct {
	Tier string
	Name string
}

func (k PolicyKey) String() string { return k.Tier + "/" + k.Name }

// ComparePolicyKeys orders policy keys by tier, then name.
func ComparePolicyKeys(a, b PolicyKey) int {
	return cmp.Or(strings.Compare(a.Tier, b.Tier), strings.Compare(a.Name, b.Name))
}

// WorkloadEndpointKey identifies a local workload endpoint (k8s: {"k8s", "<ns>/<pod>", "eth0"}).
type WorkloadEndpointKey struct {
	OrchestratorID string
	WorkloadID     string
	EndpointID     string
}

func (k WorkloadEndpointKey) String() string {
	return k.OrchestratorID + "/" + k.WorkloadID + "/" + k.EndpointID
}

// CompareWorkloadEndpointKeys orders workload endpoint keys field by field.
func CompareWorkloadEndpointKeys(a, b WorkloadEndpointKey) int {
	return cmp.Or(strings.Compare(a.OrchestratorID, b.OrchestratorID),
		strings.Compare(a.WorkloadID, b.WorkloadID), strings.Compare(a.EndpointID, b.EndpointID))
}

// ServiceKey identifies a Kubernetes Service.
type ServiceKey struct {
	Namespace string
	Name      string
}

func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

// CompareServiceKeys orders service keys by namespace, then name.
func CompareServiceKeys(a, b ServiceKey) int {
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
}

// ServiceAccountKey identifies a Kubernetes service account.
type ServiceAccountKey struct {
	Namespace string
	Name      string
}

func (k ServiceAccountKey) String() string { return k.Namespace + "/" + k.Name }

// CompareServiceAccountKeys orders service account keys by namespace, then name.
func CompareServiceAccountKeys(a, b ServiceAccountKey) int {
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
}

// ComparePrefixes orders prefixes by address (IPv4 before IPv6), then length.
func ComparePrefixes(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

// ---------------------------------------------------------------------------------------------------
// Endpoints

// TierInfo is one tier of an endpoint's policy lists, in Felix's order.
type TierInfo struct {
	Name            string
	IngressPolicies []string
	EgressPolicies  []string
}

// IngressPolicyKeys returns the keys of the tier's ingress policies, in order.
func (t TierInfo) IngressPolicyKeys() []PolicyKey { return t.keys(t.IngressPolicies) }

// EgressPolicyKeys returns the keys of the tier's egress policies, in order.
func (t TierInfo) EgressPolicyKeys() []PolicyKey { return t.keys(t.EgressPolicies) }

func (t TierInfo) keys(names []string) []PolicyKey {
	out := make([]PolicyKey, len(names))
	for i, n := range names {
		out[i] = PolicyKey{Tier: t.Name, Name: n}
	}
	return out
}

// NATInfo is a 1:1 NAT (floating IP) mapping of a workload endpoint.
type NATInfo struct {
	ExtIP netip.Addr
	IntIP netip.Addr
}

// WorkloadEndpoint is a local workload endpoint (a pod interface).
type WorkloadEndpoint struct {
	Key WorkloadEndpointKey
	// State is Felix's endpoint state ("active" in practice).
	State string
	// InterfaceName is the host-side interface (e.g. "cali1f0000001").
	InterfaceName string
	// MAC is the workload's MAC address; nil if Felix sent none.
	MAC        net.HardwareAddr
	ProfileIDs []string
	IPv4Nets   []netip.Prefix
	IPv6Nets   []netip.Prefix
	// Tiers are the normal (tracked) policy tiers, in order.
	Tiers                      []TierInfo
	IPv4NAT                    []NATInfo
	IPv6NAT                    []NATInfo
	AllowSpoofedSourcePrefixes []netip.Prefix
	Annotations                map[string]string
}

// HostEndpoint is a local host endpoint.
type HostEndpoint struct {
	// ID is Felix's endpoint id (the HostEndpoint resource name).
	ID string
	// InterfaceName is the interface the endpoint applies to; "*" means all of the host's interfaces, and
	// empty means "the interface that has one of the expected IPs".
	InterfaceName     string
	ProfileIDs        []string
	Tiers             []TierInfo
	UntrackedTiers    []TierInfo
	PreDNATTiers      []TierInfo
	ForwardTiers      []TierInfo
	ExpectedIPv4Addrs []netip.Addr
	ExpectedIPv6Addrs []netip.Addr
}

// AllInterfaces reports whether this is an all-interfaces ("*") host endpoint.
func (h *HostEndpoint) AllInterfaces() bool { return h.InterfaceName == "*" }

// ---------------------------------------------------------------------------------------------------
// Policies and profiles

// Policy is an active policy (selects at least one local endpoint).
type Policy struct {
	Key PolicyKey
	// Namespace is set for namespaced (Network)Policies, empty for global ones.
	Namespace        string
	InboundRules     []Rule
	OutboundRules    []Rule
	Untracked        bool
	PreDNAT          bool
	OriginalSelector string
}

// Profile is an active profile (referenced by a local endpoint).
type Profile struct {
	Name          string
	InboundRules  []Rule
	OutboundRules []Rule
}

// ---------------------------------------------------------------------------------------------------
// Routing and nodes

// RouteType mirrors felix.RouteType.
type RouteType uint8

// Route types (values equal Felix's enum).
const (
	RouteCIDRInfo RouteType = iota
	RouteRemoteWorkload
	RouteRemoteHost
	RouteLocalWorkload
	RouteLocalHost
	RouteRemoteTunnel
	RouteLocalTunnel
)

func (t RouteType) String() string {
	switch t {
	case RouteCIDRInfo:
		return "CIDR_INFO"
	case RouteRemoteWorkload:
		return "REMOTE_WORKLOAD"
	case RouteRemoteHost:
		return "REMOTE_HOST"
	case RouteLocalWorkload:
		return "LOCAL_WORKLOAD"
	case RouteLocalHost:
		return "LOCAL_HOST"
	case RouteRemoteTunnel:
		return "REMOTE_TUNNEL"
	case RouteLocalTunnel:
		return "LOCAL_TUNNEL"
	}
	return "UNKNOWN"
}

// IPPoolType mirrors felix.IPPoolType.
type IPPoolType uint8

// IP pool types (values equal Felix's enum).
const (
	PoolNone IPPoolType = iota
	PoolNoEncap
	PoolVXLAN
	PoolIPIP
)

func (t IPPoolType) String() string {
	switch t {
	case PoolNone:
		return "NONE"
	case PoolNoEncap:
		return "NO_ENCAP"
	case PoolVXLAN:
		return "VXLAN"
	case PoolIPIP:
		return "IPIP"
	}
	return "UNKNOWN"
}

// TunnelType says how traffic to a route's destination is tunnelled.
type TunnelType struct {
	IPIP      bool
	VXLAN     bool
	Wireguard bool
}

// Route is one entry of Felix's route resolver (only sent when VXLAN, WireGuard or BPF is enabled).
type Route struct {
	Dst        netip.Prefix
	Type       RouteType
	IPPoolType IPPoolType
	// DstNodeName and DstNodeIP name the node holding the destination (empty / invalid when none).
	DstNodeName   string
	DstNodeIP     netip.Addr
	SameSubnet    bool
	NATOutgoing   bool
	LocalWorkload bool
	Tunnel        TunnelType
}

// VTEP is a node's VXLAN tunnel endpoint.
type VTEP struct {
	Node             string
	MAC              net.HardwareAddr
	IPv4Addr         netip.Addr
	ParentDeviceIP   netip.Addr
	MACV6            net.HardwareAddr
	IPv6Addr         netip.Addr
	ParentDeviceIPv6 netip.Addr
}

// WireguardEndpoint is a node's IPv4 WireGuard endpoint.
type WireguardEndpoint struct {
	Hostname          string
	PublicKey         string
	InterfaceIPv4Addr netip.Addr
}

// WireguardEndpointV6 is a node's IPv6 WireGuard endpoint.
type WireguardEndpointV6 struct {
	Hostname          string
	PublicKeyV6       string
	InterfaceIPv6Addr netip.Addr
}

// HostMetadata is a node's IPv4 address (HostMetadataUpdate).
type HostMetadata struct {
	Hostname string
	IPv4Addr netip.Addr
}

// HostMetadataV6 is a node's IPv6 address (HostMetadataV6Update).
type HostMetadataV6 struct {
	Hostname string
	IPv6Addr netip.Addr
}

// HostMetadataV4V6 is a Node resource (HostMetadataV4V6Update): addresses with their subnet (the
// prefix keeps the host address, e.g. 192.168.122.11/24; invalid when absent), AS number and labels.
type HostMetadataV4V6 struct {
	Hostname string
	IPv4Addr netip.Prefix
	IPv6Addr netip.Prefix
	ASNumber string
	Labels   map[string]string
}

// EncapMode is an IP pool's IPIP or VXLAN mode.
type EncapMode string

// Encapsulation modes as Felix sends them.
const (
	EncapNever       EncapMode = ""
	EncapAlways      EncapMode = "always"
	EncapCrossSubnet EncapMode = "cross-subnet"
)

// IPAMPool is a Calico IP pool.
type IPAMPool struct {
	ID         string
	CIDR       netip.Prefix
	Masquerade bool
	IPIPMode   EncapMode
	VXLANMode  EncapMode
}

// Encapsulation is Felix's view of which overlays are enabled.
type Encapsulation struct {
	IPIPEnabled    bool
	VXLANEnabled   bool
	VXLANEnabledV6 bool
}

// BGPConfig is the global BGPConfiguration's service advertisement CIDRs.
type BGPConfig struct {
	ServiceClusterCIDRs      []netip.Prefix
	ServiceExternalCIDRs     []netip.Prefix
	ServiceLoadBalancerCIDRs []netip.Prefix
}

// ---------------------------------------------------------------------------------------------------
// Kubernetes objects

// ServicePort is one port of a Service.
type ServicePort struct {
	// Protocol is the IANA protocol number (6, 17, 132); ProtocolName keeps Felix's text ("TCP").
	Protocol     uint8
	ProtocolName string
	Port         uint16
	// NodePort is 0 when the port has none.
	NodePort uint16
}

// Service is a Kubernetes Service as Felix forwards it (KDD only). Backends are not part of it.
type Service struct {
	Key  ServiceKey
	Type string
	// ClusterIPs holds the cluster IPs (both families); empty for headless and ExternalName services.
	ClusterIPs []netip.Addr
	// Headless is true when the cluster IP is "None".
	Headless       bool
	LoadBalancerIP netip.Addr
	ExternalIPs    []netip.Addr
	Ports          []ServicePort
}

// Namespace is a Kubernetes namespace's labels.
type Namespace struct {
	Name   string
	Labels map[string]string
}

// ServiceAccount is a Kubernetes service account's labels.
type ServiceAccount struct {
	Key    ServiceAccountKey
	Labels map[string]string
}
