// Package model is the typed, validated desired state of one Calico node as Felix describes it over the
// external dataplane driver protocol (felix.ToDataplane messages).
//
// It owns:
//   - decoding of every ToDataplane payload (see Payloads) into typed objects: IP sets with parsed members,
//     policies and profiles with parsed rules, workload and host endpoints, routes, VXLAN tunnel endpoints,
//     WireGuard endpoints, host metadata, IPAM pools, encapsulation, BGP configuration, services,
//     namespaces, service accounts and Felix's configuration;
//   - validation: invalid content (a bad CIDR, a port out of range, an unknown action, …) rejects that one
//     object with an *InvalidError; the rest of the state is untouched;
//   - the desired state's second input, KubeServices: Services with their backends from the manager's own
//     Kubernetes watch (driver/services), set with SetKubeService / RemoveKubeService (validated by
//     KubeService.Validate; Felix's messages never touch them and Replace keeps them);
//   - the third input, PodInterfaces: host interface name → pod MAC from the manager's CNI server
//     (driver/cni), set with SetPodInterface / RemovePodInterface; WorkloadMAC gives an endpoint's MAC
//     (Felix's, else the CNI server's: with the Kubernetes datastore Felix sends none);
//   - change tracking (Changes: which objects were added, updated or removed since the last TakeChanges),
//     snapshots (Clone, copy-on-write for IP sets) and snapshot replacement with a true diff (Replace).
//
// Objects reachable from a State are immutable values once stored: an update replaces the object, it
// never modifies it in place (IP sets are copied on write when shared with a snapshot). Consumers such as
// the translator must treat everything they read as read-only.
//
// Using it (the translator's view):
//
//	for key, ep := range desired.WorkloadEndpoints.All() { … }     // sorted by key
//	set, ok := desired.IPSets.Get(id); set.Nets() / Addrs() / AddrPorts() // sorted members
//	for _, tier := range ep.Tiers { for _, pk := range tier.IngressPolicyKeys() { p, ok := desired.Policies.Get(pk) … } }
//	changes.WorkloadEndpoints.Of(model.Removed), changes.IPSets.Get(id) == model.Updated, changes.Resync
//	d, ok := changes.IPSetDelta(id)   // member-level change of a set changed only by IPSetDeltaUpdates
//	for m := range set.Members() { … }  // unsorted (Nets / Addrs / AddrPorts sort)
//	cfg := desired.Config() // parsed Felix config with defaults; cfg.Raw for anything else
//
// References between objects (an endpoint's policy or profile, a rule's IP set) are by key and may
// dangle: an object may have been rejected as invalid or not sent yet; treat a dangling reference fail
// closed. Rule fields the dataplane cannot enforce (HTTPMatch, service-account matches, original
// selectors) are kept so the translator can report them.
//
// It must not do I/O: no logging, no metrics, no network. Callers (driver/session) log and count the
// errors this package returns.
package model
