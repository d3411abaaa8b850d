// Package scenario describes a small Calico cluster in YAML (nodes, IP pools, namespaces, service accounts,
// pods with labels, IPs and named ports, profiles, tiers, Calico GlobalNetworkPolicy / NetworkPolicy,
// Kubernetes NetworkPolicy, GlobalNetworkSet / NetworkSet, host endpoints, Kubernetes Services and
// EndpointSlices) plus steps that change it and state the reachability expected after each step, and
// compiles it into the stream of felix.ToDataplane messages a real Felix (v3.28, Kubernetes datastore) would
// send to a dataplane driver on the local node.
//
// The compiler follows Felix's own derivations, read from projectcalico/calico: v3 → v1 policy conversion
// (selectors, namespaceSelector and serviceAccounts folded into one selector; Kubernetes NetworkPolicy
// conversion), IP set ids (s:/n: as Felix hashes them, via Calico's selector library), rule ids, policy
// order and tiers, active policies/profiles, and the EventSequencer's flush order for deltas. With a VXLAN IP
// pool it also sends what Felix's route resolver sends (RouteUpdates for pools, node addresses, the IPAM
// blocks and tunnel addresses nodes declare, local workloads; a VTEP per node), following the protocol
// notes' observations (no real capture has them). Services become Felix's ServiceUpdates (as in the
// k8s-services capture); KubeObjects gives the Services and EndpointSlices the manager's own watch reads.
//
// It is pure: no I/O beyond reading the scenario bytes it is given and writing to the writer it is given.
// It must not start processes or touch namespaces (packages topology, probe and the runner do).
package scenario
