// Package translator turns the model (driver/model: the desired state Felix describes) into the entries of
// k8s.p4 (p4src/entry values) with the semantics of Felix's own Linux dataplane. It is pure: no I/O, no
// logging, no metrics; the caller logs and counts the Report.
//
// # Using it
//
//	tr := translator.New(ports, translator.Options{Node: node})   // ports: interface name → P4 port id
//	res := tr.Apply(desired, changes)   // at InSync (changes.Resync) and then per coalesced batch
//	programmer.Sync(ctx, res.Entries)   // the same *entry.Set every time, changed in place (journaled)
//	log/count res.Report                // unsupported features, endpoint errors, down endpoints, warnings
//
// Translate(state, ports, opts) is a one-shot full translation. Apply re-translates only what the changes
// touch: one policy or profile (its two programs), one IP set (member-level: a Felix IPSetDeltaUpdate
// becomes inserts and deletes of the members it names, through model.Changes.IPSetDelta), one endpoint,
// one route; host endpoints, VTEPs, node addresses and IP pools re-translate the node-level entries. A
// changed ConfigUpdate or Encapsulation, or a Resync, translates everything again and writes only the
// differences into the set. Every entry is owned by the object that produced it (shared ones — interned
// lists, CIDR sets, next hops — by reference counts), so removing an object removes exactly its entries;
// two objects claiming one key (two endpoints on one interface, one floating IP) are resolved
// deterministically (the smallest owner wins) and the loser is reported.
//
// Report maps onto endpoint status: Workloads / Hosts errors ("error"), Down ("down"), everything else
// "up". Unsupported lists each unsupported feature once per owning object (its Feature is the metric
// label); Warnings are node-level problems.
//
// # Identifiers
//
// Endpoint, list, step, IP-set, rule and next-hop ids are 32-bit FNV-1a hashes of names ("wep/k8s/ns/pod/eth0",
// "pol/<tier>/<policy>/in/3", "felix/s:abc…", "cidr/10.0.0.0/8,…", "local/…", "vxlan4/node2"), 0 excluded,
// with collisions resolved as if every name took, in sorted order, the first free value of its probe
// sequence. The assignment is a function of the set of names only, so a fresh translation of the same model
// gives identical entries (the programmer's read-back reconcile after a manager restart depends on it);
// when a collision moves an id already in use, the translation is redone from scratch. Lists are interned by
// content: endpoints with the same ordered lists share one list id.
//
// Make-before-break. A program's (a policy's or profile's rules in one direction) step ids are named after
// its content, "<owner>@<version>/<i>", the version a 64-bit hash of everything its entries are rendered
// from except the step ids (programVersion). A changed program therefore gets new steps and rule entries
// beside the old ones instead of being rewritten in place; the lists that run it switch to its new first
// step (one policy_list MODIFY per list position); its old entries are deleted. The programmer's write order
// (p4src.WriteOrder) puts these in that order, so no walk meets half of each version. What stays: rule ids
// ("<owner>/<rule index>": they key the per-rule counters), IP-set ids, list ids (a list's content names the
// programs it runs by their stable "<owner>/0", so a policy change never changes an endpoint's list id) and
// endpoint and next-hop ids. The version is a function of the model, so a fresh translation still equals an
// incremental one. A change costs O(the program's entries) inserts and deletes plus one MODIFY per list
// position running it; a program sent again unchanged keeps its version and writes nothing. An endpoint
// whose lists change moves to other list ids (interned by content): the new lists are written before its
// endpoint_policy switches to them, the old ones deleted after (if no other endpoint uses them). Residual:
// when a new step name's hash collides with a name in use, the translation is redone from scratch and the
// canonical assignment may give a new step an id the old version used (a modify in place; odds about
// steps/2³² per change).
//
// Ports come from the PortResolver (docs/architecture.md, "Port ids"); the node's own ports, MACs and
// underlay neighbours from Options.Node, the node's addresses from the model's host metadata by default.
//
// # Semantics (Felix's Linux dataplane at the supported Calico commit)
//
// Workload endpoints: port_endpoint (kind workload, anti-spoofing and policy flags), source_guard for the
// endpoint's addresses and allowSpoofedSourcePrefixes (Felix's RPF check), its own next hop (dst MAC =
// the pod's, src MAC ee:ee:ee:ee:ee:ee, per-endpoint counters), /32 and /128 routes, ipv4_nat/ipv6_nat
// as nat_1to1_*, and two lists (from-wl: egress policies + outbound profile rules; to-wl: ingress). The
// from-wl list starts with Felix's drop of encapsulated packets sent by workloads (UDP to VXLANPort, IP-in-IP)
// unless AllowVXLANPacketsFromWorkloads / AllowIPIPPacketsFromWorkloads. State
// other than "active" is Felix's admin-down chain (everything dropped): no port_endpoint, routes
// unreachable, reported Down. The pod's MAC is the endpoint's own (Felix's) or, when Felix sends none (the
// Kubernetes datastore), the one the manager's CNI server recorded for its interface
// (model.State.PodInterfaces, re-translated when it changes). An endpoint without a port or without a MAC is
// reported in error (routes
// unreachable: traffic to it never falls to a broader route). The gateway 169.254.1.1 /
// fe80::ecee:eeff:feee:eeee is answered with ee:ee:ee:ee:ee:ee; the host port gets ARP/ND answers for the
// IP pools.
//
// Lists follow felix/rules/endpoints.go: for each tier with at least one policy in the direction, its
// policies in order, then (normal and forward chains) an end-of-tier deny; a policy's pass continues after
// its tier; then, for normal chains, the profiles in order (a profile's pass continues with the next
// profile) and "drop if no profiles matched"; untracked and pre-DNAT chains have no end-of-tier drop and
// end with no verdict; a forward chain without policies has no list (Felix allows forwarded traffic). All
// tiers are evaluated in order (Felix ≥ 3.29 semantics; at the supported v3.28 Felix only ever sends one
// tier, "default", and the two agree).
//
// Rules follow felix/rules/policy.go, evaluated per IP version: a rule with the other ip_version, or with a
// CIDR list (negated ones included) holding no CIDR of the family, does not exist for that family; CIDR
// lists match any of their CIDRs (and a negated list none); each IP set of a rule must match (each negated
// set must not); numeric ports OR named ports (IP_AND_PORT sets) must match, numeric ports only on packets
// with ports (TCP, UDP, SCTP); negated ports also need a packet with ports; ICMP and negated ICMP type/code
// match only ICMP of the packet's family (the icmp / icmp6 matches require it); protocol and negated
// protocol by number; log counts and continues; allow, deny and pass end the policy. Service-account
// matches are enforced: Felix folds them into the rule's selector IP sets
// (libcalico-go/lib/backend/syncersv1/updateprocessors/rules.go), which the translator evaluates. Only new
// flows are evaluated; conntrack lets established and related packets through.
//
// Unsupported, reported once per policy or profile (Report.Unsupported, fail-safe rendering):
//   - HTTP matches (Felix's iptables dataplane ignores them too; L7 is Envoy/Dikastes' job): an allow,
//     pass or log rule with one is omitted (never matches), which is what Felix would do if it ignored
//     the rule and never allows more than Felix plus L7 enforcement would; a deny rule is kept without the
//     HTTP match (denies a superset).
//   - A rule naming an IP set that does not exist or has the wrong type: same fail-safe rendering.
//   - Ports on UDPLite or DCCP (k8s.p4 parses ports of TCP, UDP and SCTP only): same.
//   - WireGuard: routes are rendered as their pool's encapsulation says (unencrypted, as Felix does
//     towards peers without a key), reported once for the node and per route that expects it.
//   - doNotTrack policy on an all-interfaces ("*") host endpoint: ignored, as Felix does, and reported.
//   - IPv6 over IP-in-IP, a VXLANPort other than 4789 on receive: reported.
//
// Host endpoints (endpoint_mgr.go, static.go): the endpoint covering the uplink is the one naming its
// interface (Options.Node.HostEndpointInterface), or a nameless one expecting one of the node's addresses,
// the smallest id winning, else the smallest "*" one; Felix's tunnel devices (vxlan.calico, vxlan-v6.calico,
// tunl0) are covered by one naming them or by "*". The uplink (and tunnel) endpoint carries: host ingress
// and egress lists (the filter-table failsafe ports first, tiers, profiles, drop), forward lists
// (applyOnForward tiers), untracked lists (the raw-table failsafe ports — which only skip the raw table, so
// they end the check with no verdict — and the doNotTrack tiers) and the pre-DNAT list (the mangle-table
// failsafe ports, preDNAT tiers). Workload → host traffic gets DefaultEndpointToHostAction after the
// workload's egress check: DROP denies, RETURN and ACCEPT allow (RETURN skips host endpoint policy).
// An all-interfaces ("*") host endpoint covers the uplink and tunnel devices when no named one does. Its
// pre-DNAT list also runs on every interface without a pre-DNAT endpoint of its own (Felix's mangle
// dispatch lists only endpoints with pre-DNAT policy and sends everything else to the "*" chain,
// felix/rules/dispatch.go, endpoint_mgr.go): on the uplink and tunnels behind a named endpoint without
// pre-DNAT policy, and on every workload (EP_FLAG_PREDNAT and the same interned list at
// STAGE_PREDNAT_INGRESS; the workloads are re-translated when that list changes). Without pre-DNAT policy
// it has no effect on workloads. A pre-DNAT allow on a workload's packet does not skip the workload's own
// egress check (endpoint chains clear the accept mark; INPUT sends workload traffic to cali-wl-to-host
// first). Its applyOnForward policy runs on traffic forwarded from and to every workload (Felix's FORWARD
// chain runs the from- and to-host-endpoint forward dispatch for every forwarded packet, the "*" endpoint
// the default: static.go StaticFilterForwardChains, dispatch.go): its forward ingress list at
// STAGE_FORWARD_INGRESS with EP_FLAG_HEP_FORWARD on the workload's port_endpoint (traffic from it, not to
// the host: k8s.p4 skips it after an untracked / pre-DNAT allow), its forward egress list at
// STAGE_FORWARD_EGRESS with EP_FLAG_HEP_FORWARD on the workload's nh_local (traffic to it, not the host's
// own), each only for a direction with forward policy (without, Felix's forward chain allows); the same
// interned lists as the uplink's when "*" covers it; the workloads are re-translated when they change.
// The host port's endpoint gets a source_guard entry for every address the node routes to the host port
// (/32, /128: its addresses, LOCAL_HOST and LOCAL_TUNNEL routes): packets from the host port with such a
// source are the host's own traffic (Felix's OUTPUT chain: no workload ingress policy, the host endpoint's
// normal and untracked egress policy); anything else from the host port is traffic the host forwards (the
// FORWARD chain: workload ingress policy, applyOnForward egress). An untracked or pre-DNAT allow skips only
// the ingress host endpoint's own checks (Felix's accept mark); see p4src/README.md, stage 9.
//
// Routes (RouteUpdate types): remote workload blocks and remote tunnel addresses through the node that owns
// them — unencapsulated to its address when same_subnet (Felix sets it for cross-subnet pools in the same
// subnet), else VXLAN to its VTEP (VNI and port from config) or IP-in-IP to its address, per the pool type;
// local blocks are blackholes (route_unreachable); the node's own and tunnel addresses go to the host port;
// remote hosts directly; the IP pools and 0.0.0.0/0, ::/0 via the gateway. Routes leaving the node towards
// destinations outside every pool carry ROUTE_FLAG_NAT_OUTGOING; natOutgoing pools are nat_outgoing_*
// entries; masquerade uses the node's address (NATOutgoingAddress if set) or the tunnel address. VXLAN and
// IP-in-IP from known nodes are terminated (tunnel_term_*). A next hop that cannot be built (no MAC, no VTEP)
// has no nexthop entry — routes to it drop (DROP_NO_ROUTE) — and a warning says why.
//
// # Policy encoding (k8s.p4's policy program, see p4src/README.md "Policy encoding")
//
// A rule list compiles into steps (policy_step + policy_rule). A rule's match on the fields policy_rule
// keys on (protocol, ports, ICMP type/code, ip_version) is computed exactly as a set of values — positive
// constraints intersected, negated ones subtracted — and covered by as few patterns as the match kinds
// allow: protocol and ICMP by ternary blocks (one value = 1 entry, "all but one" = 8), ports by disjoint
// ranges (DstPorts 8000-8100 minus NotDstPorts 8080 = 8000-8079, 8081-8100). So negations of those fields
// need no "skip" entries and never split a step. Each IP-set condition (a selector set, the rule's CIDR
// list as a derived set, a negated set, a named port) is one lookup: a rule needing one lookup shares the
// current step with the rules before and after it (entries conditioned on set_hit); a rule needing several
// chains steps (rule_goto on success, miss_step to the rules after it on failure), ending the step; a port
// group with several named-port sets chains one step per set (any hit succeeds); a log rule ends its step
// (rule_log continues at the step holding the rules after it). Chained lookups carry the rule's L4 match as
// a pre-check when it is small (≤ 4 patterns), so that non-matching traffic leaves early. A program of
// three or more steps whose every rule restricts protocol, ports or ICMP gets a guard step first: the union
// of the rules' L4 patterns (≤ 16) continues into the program, anything else leaves the policy in one pass
// (Kubernetes policies mostly name their ports and protocols).
//
// Entry counts. For rule r: P_r its L4 patterns (the product of the covers: protocols × source port ranges ×
// destination port ranges × ICMP patterns, per family variant when the families differ), L_r its lookups
// (one per IP-set condition; a port group of named ports has one per named-port set), A_r the alternatives
// of its last condition (1, or the named-port sets of a last port group, each carrying the final entries),
// N_r the patterns of a port group's numeric alternative, C_r the entries of a chained lookup (the pre-check
// patterns when ≤ 4, else 1; a port group's first lookup adds 3 per numeric range):
//
//	policy_rule       = Σ_r ( A_r × P_r + N_r + (L_r − A_r) × C_r ) + ≤ 16 per guarded program
//	policy_step       ≤ Σ over programs (1 + Σ_r L_r + log rules + rules ending a step + 1 guard)
//	policy_rule_stats = rules with at least one entry
//	ipset_*           = members of the sets in use (each once) + CIDRs of distinct rule CIDR lists
//	policy_list       = Σ over distinct lists of their positions; endpoint_policy ≤ 5 per workload, ≤ 7 per
//	                    host-endpoint interface, 1 for the host
//	per workload      = 1 port_endpoint + addresses source_guard + 1 nexthop + addresses routes + NATs
//
// Nothing is a product of endpoints and rules.
// Port-range worst case: a rule with s source and d destination port ranges (after subtracting the negated
// ones; a list of k ranges subtracted from the full range leaves ≤ k+1) needs s × d entries per protocol
// pattern; above 64 the source ranges move to a step of their own (s + d entries, one more pass). A rule
// without a protocol but with ports matches TCP, UDP and SCTP (3 patterns, as if Felix accepted it). "not
// protocol p" is 8 patterns; "not ICMP type t code c" 16.
//
// Passes: the pipeline runs one step per pass; a new flow walks the source's from-check and the
// destination's to-check, each visiting, in the worst case, every step of every policy of its lists before
// the one that decides. Report.Warnings names lists whose worst walk exceeds k8s.p4's PASS_BUDGET less the
// two passes of lookup and learning (p4src.PassBudget, generated from the program: 254, the most an 8-bit
// pass number allows); such flows drop, DROP_PASS_BUDGET. At the scale (TestTheScaleModelFitsK8sP4)
// the longest list walks 111 steps.
//
// # Services (kube-proxy's part; services.go)
//
// Input: the Services of the manager's own Kubernetes watch (model.State.KubeServices, driver/services:
// backends, target ports, traffic policies, affinity, load balancer ingress); Felix's ServiceUpdates are
// not used (the watch's view is complete and consistent; driver/services explains the choice). Headless
// and ExternalName services have no entries. Per family of a service's cluster IPs (a single-stack
// service is not programmed in the other family, as kube-proxy's per-family proxiers), per port:
//   - service_v4/v6 entries (address, protocol, port) for each cluster IP (the "internal" destinations),
//     and for each external IP, spec.loadBalancerIP and status.loadBalancer.ingress IP, and — NodePort and
//     LoadBalancer services — for each of the node's own addresses with the node port (the "external"
//     ones; k8s.p4 has no wildcard address, so one entry per local address: the node's addresses and its
//     LOCAL_HOST / LOCAL_TUNNEL routes, re-rendered when they change);
//   - each points at an action-selector group of dnat members (equal weights) named
//     "svc/<ns>/<name>/<proto>/<port>/<v4|v6>/<int|ext>" (members: "<group>/<addr>:<port>"), or at the
//     member "<group>/reject" (service_reject: an ICMP / ICMPv6 port unreachable back to the client, as
//     kube-proxy's REJECT, counted as DROP_NO_SERVICE_BACKEND) when no endpoint is usable;
//   - the endpoints are kube-proxy's choice: the ready ones, or if none the serving terminating ones;
//     internalTrafficPolicy Local (internal destinations) and externalTrafficPolicy Local (external ones)
//     keep only those on this node (EndpointSlice nodeName = the node's name);
//   - external destinations with externalTrafficPolicy Cluster carry SVC_FLAG_MASQUERADE (replies from
//     backends on other nodes must come back through this one; the pipeline SNATs to the next hop's
//     snat_address, so a backend on this node, reached without one, sees the client's address);
//   - ClientIP affinity sets SVC_FLAG_AFFINITY on every member. Approximations, reported per service
//     (Unsupported): k8s.p4's affinity entries expire after a fixed 300 s (EXPIRE_AFFINITY) without a new
//     connection, whatever timeoutSeconds says (Kubernetes' default is 10800 s); affinity is kept per
//     service address and port (kube-proxy keeps it per service port across its addresses); a group holds
//     at most 256 backends (the first 256 by address are used); with externalTrafficPolicy Local, pods
//     reaching an external address get only this node's endpoints too (kube-proxy sends traffic from pods
//     to any endpoint: k8s.p4's service table keys on the destination only).
//
// GlobalBGPConfigUpdate's service cluster, external and load balancer CIDRs are Felix's service loop
// prevention (ServiceLoopPrevention Drop or Reject; Disabled: nothing): an unreachable route per CIDR, so
// traffic to a service address no service translated is dropped (DROP_NO_ROUTE; "Reject" drops too:
// the route has no reject action; only service_reject builds an ICMP error) instead of being routed back to the router that learned the CIDR from
// this node. Translated traffic is routed on its backend's address and never meets these routes.
// Entries: one service_* entry per (address, port), one member per backend per port and destination set
// (internal / external), one group per port and set.
//
// It must not do I/O, keep references into the programmer, or decide what to write (the programmer does).
package translator
