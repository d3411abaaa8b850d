// Package cni is the manager's server for the Calico CNI plugin's gRPC dataplane (service
// cni.CniDataplane of github.com/projectcalico/calico/cni-plugin/pkg/dataplane/grpc/proto), selected in
// the CNI network config by "dataplane_options": {"type": "grpc", "socket": "unix:///var/run/calico-p4/cni.sock"}.
//
// It owns:
//   - Add: a veth pair per pod: the host end, named desired_host_interface_name, in the node's network
//     namespace (up, no addresses, IPv6 off, arp_ignore 8: the node kernel stays off it and the dataplane
//     attaches it by name); the pod end, named interface_name, in the pod's namespace with the MTU, the
//     container_ips, and container_routes via Calico's gateways (169.254.1.1 on-link for IPv4,
//     fe80::ecee:eeff:feee:eeee for IPv6 — what k8s.p4 answers ARP/ND for), with no static neighbour
//     entries. The reply carries the host interface name and the pod end's MAC. A retried Add for the same
//     namespace and interface returns the same pair.
//   - Del: removing the pair (succeeds when it is already gone).
//   - the pod MAC supply: host interface name → pod MAC handed to a Sink (the session manager), which makes
//     it the desired state's pod interfaces (model.PodInterface). With Calico's Kubernetes datastore Felix
//     sends workload endpoints without a MAC; this is where the translator gets it.
//   - the record of that mapping across manager restarts: each host end carries it in its interface alias
//     (IFLA_IFALIAS, "calico-p4-cni:" + the pod MAC, namespace path and interface name), set atomically
//     when the pair is created. The kernel keeps it exactly as long as the interface exists, so Rebuild
//     reads it back after a restart without a state file that could disagree with the interfaces, and
//     without entering other pods' namespaces.
//   - validation of requests (names, CIDRs, MTU, the namespace) with a clear error in the reply, the
//     metric calico_p4_cni_requests_total{op,result} and a log line per request.
//
// It must not translate or program anything (the session applies the pod interfaces like any other
// input), and must not touch interfaces it did not create: only veths, and on the host side only those
// carrying its alias.
package cni
