// Package topology builds the end-to-end test network out of Linux network namespaces: pods (one namespace
// each, an eth0 with IPv4/IPv6 addresses and Calico's default routes via 169.254.1.1 and
// fe80::ecee:eeff:feee:eeee, no static neighbour entries) whose host ends (veth, or TAP) sit in a private
// "node" namespace, optionally a second node joined by an uplink veth.
//
// Two modes:
//   - ModeAttach (the default): host ends are left for a dataplane to attach (the softswitch opens them by
//     name inside the node namespace). The node's kernel is kept out of the way: no IPv6 on host ends, no
//     proxy ARP, no ARP answers (arp_ignore 8), no routes, and a MAC of their own (not Calico's
//     ee:ee:ee:ee:ee:ee, which the dataplane answers for), so ARP/ND for the gateway can only be answered by
//     the dataplane and the kernel drops every frame it sees there as meant for another host.
//     Optionally (Config.HostPort) each node gets a host port — a veth whose dataplane end is the
//     dataplane's host interface and whose other end carries the node's addresses, the node namespace's
//     kernel playing the host's network stack — and (Config.External) a peer outside the cluster on the
//     node's uplink port.
//   - ModeKernel: the node namespace routes between pods exactly the way Calico's Linux dataplane does
//     (host end MAC ee:ee:ee:ee:ee:ee, proxy_arp, /32 and /128 routes to the host ends, forwarding on), as a
//     reference for tests and for kernel-vs-softswitch benchmarks.
//
// Every namespace name starts with a per-run prefix (NamePrefix + run id) and the run registers its PID under
// RegistryDir, so Sweep can remove leftovers of crashed runs without touching runs that are still alive.
// Close removes everything a run created, also after a partial Create.
//
// The package must not send traffic (package probe does) and must never touch the root namespace's links,
// routes or sysctls.
package topology
