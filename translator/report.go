package translator

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/calico-p4/calico-p4/driver/model"
)

// Feature names a Calico feature (or a use of one) that k8s.p4 cannot enforce as Felix's Linux dataplane
// does. It is the `feature` label of the caller's metric.
type Feature string

// Features reported.
const (
	// FeatureHTTPMatch: a rule with an HTTP (L7) match. Felix's iptables dataplane ignores the field too
	// (L7 is enforced by an Envoy/Dikastes sidecar when application layer policy is on); a P4 pipeline
	// cannot see HTTP. Rendering: see Unsupported.Rendering.
	FeatureHTTPMatch Feature = "http-match"
	// FeaturePortsOnProtocol: ports on a protocol whose ports k8s.p4 does not parse (UDPLite, DCCP, …).
	FeaturePortsOnProtocol Feature = "ports-on-protocol"
	// FeatureDanglingIPSet: a rule references an IP set that does not exist (or has the wrong type).
	FeatureDanglingIPSet Feature = "dangling-ip-set"
	// FeatureWireguard: WireGuard encryption between nodes. Traffic to the nodes concerned is routed
	// unencrypted, as Felix does for peers without a key.
	FeatureWireguard Feature = "wireguard"
	// FeatureUntrackedAllInterfaces: doNotTrack policy on an all-interfaces ("*") host endpoint; Felix
	// ignores it too (with a warning).
	FeatureUntrackedAllInterfaces Feature = "untracked-on-all-interfaces"
	// FeatureVXLANPort: a VXLANPort other than 4789; k8s.p4 parses VXLAN on 4789 only, so tunnelled
	// traffic from other nodes is not terminated.
	FeatureVXLANPort Feature = "vxlan-port"
	// FeatureIPIPv6: an IPv6 route over IP-in-IP (k8s.p4 encapsulates IPv4 only).
	FeatureIPIPv6 Feature = "ipip-ipv6"
)

// Unsupported is one feature (use) the pipeline cannot enforce, reported once per owning object.
type Unsupported struct {
	Feature Feature
	// Owner is the object: "policy default/default.gnp-frontend", "profile kns.default", "node",
	// "route 10.65.1.0/26".
	Owner string
	// Detail says where (rule indexes, set ids).
	Detail string
	// Rendering says what the pipeline does instead.
	Rendering string
}

func (u Unsupported) String() string {
	return fmt.Sprintf("%s: %s unsupported (%s); %s", u.Owner, u.Feature, u.Detail, u.Rendering)
}

// Report is what a translation could not do as asked: unsupported features and per-endpoint errors. The
// caller logs and counts it; endpoint errors make the endpoint's status "error".
type Report struct {
	Unsupported []Unsupported
	// Workloads holds the workload endpoints that could not be programmed (fully), with why.
	Workloads map[model.WorkloadEndpointKey]error
	// Hosts holds the host endpoints that could not be programmed (fully), with why.
	Hosts map[string]error
	// Down lists the workload endpoints whose state is not "active": all their traffic is dropped, as Felix
	// does; their status is "down".
	Down []model.WorkloadEndpointKey
	// Warnings are node-level problems (a next hop without a MAC, a policy walk longer than the pass
	// budget, an internal error).
	Warnings []string
}

// Empty reports whether there is nothing to report.
func (r *Report) Empty() bool {
	return len(r.Unsupported) == 0 && len(r.Workloads) == 0 && len(r.Hosts) == 0 && len(r.Down) == 0 &&
		len(r.Warnings) == 0
}

func (r *Report) String() string {
	var parts []string
	for _, u := range r.Unsupported {
		parts = append(parts, u.String())
	}
	for _, k := range sortedWEPKeys(r.Workloads) {
		parts = append(parts, fmt.Sprintf("workload %s: %v", k, r.Workloads[k]))
	}
	for _, k := range sortedKeys(r.Hosts) {
		parts = append(parts, fmt.Sprintf("host endpoint %s: %v", k, r.Hosts[k]))
	}
	for _, k := range r.Down {
		parts = append(parts, fmt.Sprintf("workload %s: down", k))
	}
	parts = append(parts, r.Warnings...)
	return strings.Join(parts, "\n")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedWEPKeys[V any](m map[model.WorkloadEndpointKey]V) []model.WorkloadEndpointKey {
	out := make([]model.WorkloadEndpointKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, model.CompareWorkloadEndpointKeys)
	return out
}

func compareUnsupported(a, b Unsupported) int {
	return cmp.Or(strings.Compare(a.Owner, b.Owner), strings.Compare(string(a.Feature), string(b.Feature)),
		strings.Compare(a.Detail, b.Detail))
}
