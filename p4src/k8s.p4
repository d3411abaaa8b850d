/*
 * k8s.p4 — the calico-p4 dataplane: a Calico node (workload endpoints, host
 * endpoints, services, policy, routing, encapsulation) as a PNA program.
 *
 * Target: p4c-dpdk --arch pna (P4-DPDK / OVS-P4 / infrap4d) and the embedded
 * softswitch of calico-p4 (ipu/softswitch/pipeline, a Go implementation of
 * this file).  p4src/README.md is the reference for every table: read it
 * together with this file.
 *
 * Life of a packet (one "pass" = one run of MainControlImpl; the pipeline
 * recirculates to take more passes, keeping its metadata):
 *
 *   pass 0   parse -> port classification -> ARP/ND gateway responder
 *            -> VXLAN/IPIP decapsulation -> anti-spoofing -> conntrack lookup
 *            -> (new flows) session affinity / service / 1:1 NAT -> routing
 *            -> (new flows) masquerade decision -> plan the policy checks
 *            -> first unit of the policy walk
 *   pass n   one unit of the policy walk (endpoint list, policy list, one
 *            step: IP-set lookup + rules)
 *   learn    (new flows that all checks allowed) a pass of its own after the
 *            last check: conntrack / affinity learning, at the same apply
 *            sites as the pass-0 lookups
 *   last     NAT rewrite, TTL, MACs, encapsulation -> send (or drop)
 *
 * Established and related packets (conntrack hit), and packets whose fate
 * pass 0 decides without learning, finish in pass 0.  Every table has exactly
 * one apply site.  Header rewrites happen only in the last pass;
 * decapsulation happens in pass 0 and is carried by the recirculated packet.
 *
 * Conventions
 *   - Every P4Runtime-visible object carries @id with its P4Runtime prefix
 *     (tables 0x02, actions 0x01, action profiles 0x11, counters 0x12,
 *     direct counters 0x13).  Every table key element carries @name: the
 *     match-field names in the P4Info are these names.
 *   - Port ids are PNA PortId_t values handled as plain bit<32> numbers in
 *     keys and action parameters (no @p4runtime_translation in the P4Info).
 *   - Identifiers the control plane derives from names (endpoint, list, step,
 *     IP set, rule, next hop) are 32 bits wide.
 *   - drop_packet() is called exactly once, at the very end, after the fate
 *     of the packet is decided (DPDK's drop ends processing at once).
 *   - 128-bit values (IPv6 addresses) are only moved, matched and compared
 *     for equality.
 */

#include <core.p4>
#include <pna.p4>

/* ======================================================================== */
/* Types                                                                     */
/* ======================================================================== */

typedef bit<48>  mac_addr_t;
typedef bit<32>  ipv4_addr_t;
typedef bit<128> ipv6_addr_t;
typedef bit<16>  l4_port_t;
typedef bit<32>  port_num_t;     // a PortId_t value as a number
typedef bit<32>  endpoint_id_t;
typedef bit<32>  nexthop_id_t;
typedef bit<32>  list_id_t;
typedef bit<16>  list_pos_t;
typedef bit<32>  step_id_t;
typedef bit<32>  set_id_t;
typedef bit<32>  rule_id_t;

/* ======================================================================== */
/* Constants (the Go package p4src exports every one of them)                */
/* ======================================================================== */

// Ethernet / IP numbers.
const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<16> ETHERTYPE_ARP  = 0x0806;
const bit<16> ETHERTYPE_VLAN = 0x8100;
const bit<16> ETHERTYPE_IPV6 = 0x86dd;
const bit<8>  IPPROTO_ICMP   = 1;
const bit<8>  IPPROTO_IPIP   = 4;
const bit<8>  IPPROTO_TCP    = 6;
const bit<8>  IPPROTO_UDP    = 17;
const bit<8>  IPPROTO_ICMPV6 = 58;
const bit<8>  IPPROTO_SCTP   = 132;
const bit<16> VXLAN_UDP_PORT = 4789;   // parsed as VXLAN on receive
const bit<8>  VXLAN_FLAGS    = 0x08;   // "VNI present"
const bit<8>  DEFAULT_TTL    = 64;     // TTL / hop limit of outer headers
const bit<16> ARP_HTYPE_ETHERNET = 1;
const bit<16> ARP_OPER_REQUEST   = 1;
const bit<16> ARP_OPER_REPLY     = 2;

// ICMP / ICMPv6 types.
const bit<8> ICMP_ECHO_REPLY       = 0;
const bit<8> ICMP_DEST_UNREACH     = 3;
const bit<8> ICMP_ECHO_REQUEST     = 8;
const bit<8> ICMP_TIME_EXCEEDED    = 11;
const bit<8> ICMP_PARAM_PROBLEM    = 12;
const bit<8> ICMP_TIMESTAMP        = 13;
const bit<8> ICMP_TIMESTAMP_REPLY  = 14;
const bit<8> ICMP_INFO_REQUEST     = 15;
const bit<8> ICMP_INFO_REPLY       = 16;
const bit<8> ICMP_ADDRESS          = 17;   // address mask request
const bit<8> ICMP_ADDRESS_REPLY    = 18;
const bit<8> ICMP6_DEST_UNREACH    = 1;
const bit<8> ICMP6_PACKET_TOO_BIG  = 2;
const bit<8> ICMP6_TIME_EXCEEDED   = 3;
const bit<8> ICMP6_PARAM_PROBLEM   = 4;
const bit<8> ICMP6_ECHO_REQUEST    = 128;
const bit<8> ICMP6_ECHO_REPLY      = 129;
const bit<8> ICMP6_NI_QUERY        = 139;   // node information query
const bit<8> ICMP6_NI_REPLY        = 140;
const bit<8> ICMP_TYPE_NONE        = 255;   // no counterpart (icmp_counterpart)
const bit<8> ICMP6_ND_NS           = 135;
const bit<8> ICMP6_ND_NA           = 136;
const bit<8> ICMP_PORT_UNREACH     = 3;     // code of ICMP_DEST_UNREACH: a service without endpoints
const bit<8> ICMP6_PORT_UNREACH    = 4;     // code of ICMP6_DEST_UNREACH: a service without endpoints
const bit<8> ND_OPT_SOURCE_LLADDR  = 1;
const bit<8> ND_OPT_TARGET_LLADDR  = 2;
const bit<16> ND_NA_FLAGS_RSO      = 0xe000;  // Router, Solicited, Override
const bit<16> ND_NS_PAYLOAD_LEN    = 32;      // NS with one link-layer option

// TCP flags.
const bit<8> TCP_FLAG_FIN = 0x01;
const bit<8> TCP_FLAG_SYN = 0x02;
const bit<8> TCP_FLAG_RST = 0x04;
const bit<8> TCP_FLAG_ACK = 0x10;

// Calico's gateway MAC: source MAC of every frame sent to a workload and the
// MAC the gateway responder answers with (the responder takes it from its
// table entries; this constant is for nh_local).
const mac_addr_t GATEWAY_MAC = 0xeeeeeeeeeeee;

// Endpoint kinds (port_endpoint.set_endpoint(kind), derived for next hops).
const bit<8> EP_KIND_NONE     = 0;
const bit<8> EP_KIND_WORKLOAD = 1;   // a pod interface
const bit<8> EP_KIND_HOST     = 2;   // the host's own network stack
const bit<8> EP_KIND_UPLINK   = 3;   // the node's NIC towards the fabric
const bit<8> EP_KIND_TUNNEL   = 4;   // traffic decapsulated from a remote node

// Endpoint flags (set_endpoint(flags), nexthop actions' flags).
const bit<8> EP_FLAG_SOURCE_CHECK = 0x01;  // anti-spoofing applies (workloads)
const bit<8> EP_FLAG_POLICY       = 0x02;  // the endpoint has normal-policy lists
const bit<8> EP_FLAG_UNTRACKED    = 0x04;  // the endpoint has an untracked (doNotTrack) list
const bit<8> EP_FLAG_PREDNAT      = 0x08;  // the endpoint has a pre-DNAT list (host endpoint, or a workload under a "*" one)
const bit<8> EP_FLAG_HEP_FORWARD  = 0x10;  // a workload under a "*" host endpoint with applyOnForward policy:
                                           // from it (set_endpoint) / to it (nh_local), the "*" endpoint's
                                           // forward list (STAGE_FORWARD_INGRESS / STAGE_FORWARD_EGRESS)

// Policy stages: the second key of endpoint_policy.  Which stage applies is
// decided by control flow from the kinds of the source and destination.
const bit<8> STAGE_WORKLOAD_EGRESS   = 1;   // source workload (Felix from-wl)
const bit<8> STAGE_WORKLOAD_INGRESS  = 2;   // destination workload (to-wl)
const bit<8> STAGE_HOST_INGRESS      = 3;   // uplink/tunnel -> host (host endpoint, to-host)
const bit<8> STAGE_HOST_EGRESS       = 4;   // host -> uplink (host endpoint, from-host)
const bit<8> STAGE_FORWARD_INGRESS   = 5;   // uplink/tunnel (or a workload, "*" endpoint) -> not host (applyOnForward)
const bit<8> STAGE_FORWARD_EGRESS    = 6;   // not host -> uplink (or a workload, "*" endpoint) (applyOnForward)
const bit<8> STAGE_UNTRACKED_INGRESS = 7;   // uplink/tunnel, every packet (doNotTrack)
const bit<8> STAGE_UNTRACKED_EGRESS  = 8;   // host -> uplink, every packet (doNotTrack)
const bit<8> STAGE_PREDNAT_INGRESS   = 9;   // uplink/tunnel, new flows, before DNAT
const bit<8> STAGE_WORKLOAD_TO_HOST  = 10;  // workload -> host (DefaultEndpointToHostAction), keyed by the host endpoint

// Verdicts (policy_list.list_end(verdict), results of a check).
const bit<8> VERDICT_NONE     = 0;
const bit<8> VERDICT_ALLOW    = 1;
const bit<8> VERDICT_DENY     = 2;
const bit<8> VERDICT_CONTINUE = 3;   // no verdict: go on with the next check

// What a step looks up (policy_step.run_step(lookup)).
const bit<8> LOOKUP_NONE     = 0;
const bit<8> LOOKUP_NET_SRC  = 1;   // NET set by source address
const bit<8> LOOKUP_NET_DST  = 2;   // NET set by destination address
const bit<8> LOOKUP_PORT_SRC = 3;   // IP_AND_PORT set by (source address, protocol, source port)
const bit<8> LOOKUP_PORT_DST = 4;   // IP_AND_PORT set by (destination address, protocol, destination port)

// Tunnel types (tunnel_term_* key).
const bit<8> TUNNEL_NONE  = 0;
const bit<8> TUNNEL_IPIP  = 1;
const bit<8> TUNNEL_VXLAN = 2;

// Route flags (route_*.set_nexthop(flags)).
const bit<8> ROUTE_FLAG_NAT_OUTGOING = 0x01;   // destination outside every IP pool: natOutgoing applies

// Service flags (service_*.dnat_*(flags)).
const bit<8> SVC_FLAG_MASQUERADE = 0x01;   // also SNAT to the node (e.g. externalTrafficPolicy Cluster)
const bit<8> SVC_FLAG_AFFINITY   = 0x02;   // ClientIP session affinity: learn client -> backend

// NAT rewrite flags (learned conntrack entries, metadata).
const bit<8> NAT_REWRITE_DST = 0x01;
const bit<8> NAT_REWRITE_SRC = 0x02;

// Encapsulation chosen by the next hop.
const bit<8> ENCAP_NONE     = 0;
const bit<8> ENCAP_VXLAN_V4 = 1;
const bit<8> ENCAP_VXLAN_V6 = 2;
const bit<8> ENCAP_IPIP     = 3;

// Conntrack state of a packet.
const bit<8> CT_NEW     = 0;
const bit<8> CT_ORIG    = 1;   // established, original direction (hit ct_orig_*)
const bit<8> CT_REPLY   = 2;   // established, reply direction (hit ct_reply_*)
const bit<8> CT_RELATED = 3;   // ICMP error about a tracked flow

// Drop reasons: index of drop_counter.
const bit<8> DROP_NONE               = 0;
const bit<8> DROP_PARSE_ERROR        = 1;
const bit<8> DROP_UNKNOWN_PORT       = 2;
const bit<8> DROP_SPOOFED_SOURCE     = 3;
const bit<8> DROP_POLICY_DENY        = 4;
const bit<8> DROP_NO_ROUTE           = 5;
const bit<8> DROP_NO_SERVICE_BACKEND = 6;
const bit<8> DROP_TTL_EXPIRED        = 7;
const bit<8> DROP_PASS_BUDGET        = 8;
const bit<8> DROP_POLICY_PROGRAM     = 9;    // a list / step the walk needs is missing
const bit<8> DROP_UNSUPPORTED        = 10;   // not IP, unanswered ARP/ND from a workload, no peer port
const bit<8> DROP_SNAT_CONFLICT      = 11;   // the masqueraded tuple is already in use
const bit<32> DROP_REASONS           = 32;   // size of drop_counter

// Packet fate, decided once.
const bit<8> FATE_PENDING = 0;
const bit<8> FATE_FORWARD = 1;   // routed: send to the next hop
const bit<8> FATE_DROP    = 2;
const bit<8> FATE_REPLY   = 3;   // built by the responder: back out the ingress port
const bit<8> FATE_BRIDGE  = 4;   // host <-> uplink link-local traffic: to the peer port

// Phases of the pass machine.
const bit<8> PHASE_LOOKUP = 0;   // pass 0 after classification
const bit<8> PHASE_POLICY = 1;   // walking the policy program
const bit<8> PHASE_LEARN  = 2;   // next pass: learn conntrack / affinity, then forward
const bit<8> PHASE_DONE   = 3;   // fate decided

// Policy checks, in the order they run.
const bit<8> CHECK_NONE          = 0;
const bit<8> CHECK_UNTRACKED_IN  = 1;
const bit<8> CHECK_UNTRACKED_OUT = 2;
const bit<8> CHECK_PREDNAT       = 3;
const bit<8> CHECK_FROM_FORWARD  = 4;   // a workload's "*" host endpoint forward ingress (from-hep-forward)
const bit<8> CHECK_FROM          = 5;
const bit<8> CHECK_TO            = 6;
const bit<8> CHECK_TO_FORWARD    = 7;   // a workload's "*" host endpoint forward egress (to-hep-forward)
const bit<8> CHECK_END           = 8;

// States of the walk inside one check.
const bit<8> WALK_START = 0;   // look up endpoint_policy
const bit<8> WALK_LIST  = 1;   // look up policy_list at the current position
const bit<8> WALK_STEP  = 2;   // run the current step
const bit<8> WALK_DONE  = 3;   // the check has a verdict

// Outcome of policy_rule.
const bit<8> RULE_NO_MATCH = 0;
const bit<8> RULE_ALLOW    = 1;
const bit<8> RULE_DENY     = 2;
const bit<8> RULE_PASS     = 3;
const bit<8> RULE_NEXT     = 4;   // rule_log / rule_goto: continue at next_step

// Passes the policy walk may take: a walk still running in pass PASS_BUDGET
// drops (DROP_PASS_BUDGET).  Bounded by the pass number: DPDK's recirculation
// id (recircid, what istd.pass reads there) is 8 bits, and the last pass of a
// packet is the learning pass after a walk that ended in pass PASS_BUDGET,
// i.e. pass PASS_BUDGET + 1 <= 255, so that istd.pass never wraps to 0
// mid-packet.  meta.passes (bit<8>) counts the same passes.  See README:
// passes.
const bit<8> PASS_BUDGET = 254;

// Conntrack expire-time profiles (DPDK defaults in seconds in brackets).
const ExpireTimeProfileId_t EXPIRE_CLOSING         = (ExpireTimeProfileId_t) 0;   // [10] TCP FIN/RST seen
const ExpireTimeProfileId_t EXPIRE_ICMP            = (ExpireTimeProfileId_t) 1;   // [30]
const ExpireTimeProfileId_t EXPIRE_OTHER           = (ExpireTimeProfileId_t) 3;   // [120] UDP, SCTP, TCP handshake, others
const ExpireTimeProfileId_t EXPIRE_AFFINITY        = (ExpireTimeProfileId_t) 4;   // [300] ClientIP affinity
const ExpireTimeProfileId_t EXPIRE_TCP_ESTABLISHED = (ExpireTimeProfileId_t) 5;   // [43200]

/* ======================================================================== */
/* Headers                                                                   */
/* ======================================================================== */

header ethernet_h {
    mac_addr_t dst_addr;
    mac_addr_t src_addr;
    bit<16>    ether_type;
}

header vlan_h {
    bit<3>  pcp;
    bit<1>  dei;
    bit<12> vid;
    bit<16> ether_type;
}

header arp_h {
    bit<16>     hw_type;
    bit<16>     proto_type;
    bit<8>      hw_len;
    bit<8>      proto_len;
    bit<16>     oper;
    mac_addr_t  sender_mac;
    ipv4_addr_t sender_ip;
    mac_addr_t  target_mac;
    ipv4_addr_t target_ip;
}

header ipv4_h {
    bit<4>      version;
    bit<4>      ihl;
    bit<6>      dscp;
    bit<2>      ecn;
    bit<16>     total_len;
    bit<16>     identification;
    bit<3>      flags;
    bit<13>     frag_offset;
    bit<8>      ttl;
    bit<8>      protocol;
    bit<16>     hdr_checksum;
    ipv4_addr_t src_addr;
    ipv4_addr_t dst_addr;
}

// IPv4 options, carried through unchanged (ihl > 5).
header ipv4_options_h {
    varbit<320> options;
}

header ipv6_h {
    bit<4>      version;
    bit<8>      traffic_class;
    bit<20>     flow_label;
    bit<16>     payload_len;
    bit<8>      next_hdr;
    bit<8>      hop_limit;
    ipv6_addr_t src_addr;
    ipv6_addr_t dst_addr;
}

header tcp_h {
    l4_port_t src_port;
    l4_port_t dst_port;
    bit<32>   seq_no;
    bit<32>   ack_no;
    bit<4>    data_offset;
    bit<4>    res;
    bit<8>    flags;
    bit<16>   window;
    bit<16>   checksum;
    bit<16>   urgent_ptr;
}

header udp_h {
    l4_port_t src_port;
    l4_port_t dst_port;
    bit<16>   length;
    bit<16>   checksum;
}

header sctp_h {
    l4_port_t src_port;
    l4_port_t dst_port;
    bit<32>   verification_tag;
    bit<32>   checksum;
}

// The first 8 bytes of an ICMP or ICMPv6 message.  ident/seq are the echo
// identifier and sequence number; for errors they are "unused"/MTU; for an
// ND advertisement ident carries the R/S/O flags.
header icmp_h {
    bit<8>  type;
    bit<8>  code;
    bit<16> checksum;
    bit<16> ident;
    bit<16> seq;
}

header nd_target_h {
    ipv6_addr_t target_addr;
}

header nd_option_h {
    bit<8>     type;
    bit<8>     length;      // in units of 8 bytes
    mac_addr_t ll_addr;
}

header vxlan_h {
    bit<8>  flags;
    bit<24> reserved;
    bit<24> vni;
    bit<8>  reserved2;
}

// The first 8 bytes after the IP header embedded in an ICMP error: ports of
// TCP/UDP/SCTP in word0/word1; for ICMP, type and code in word0 and the
// identifier of a query or reply in word2.
header l4_words_h {
    bit<16> word0;
    bit<16> word1;
    bit<16> word2;
    bit<16> word3;
}

struct headers_t {
    // Added on output only (never parsed): the outer headers of an
    // encapsulated packet.
    ethernet_h      encap_ethernet;
    ipv4_h          encap_ipv4;
    ipv6_h          encap_ipv6;
    udp_h           encap_udp;
    vxlan_h         encap_vxlan;
    // The packet as received (the outer headers when it is a tunnel packet).
    ethernet_h      ethernet;
    vlan_h          vlan;
    arp_h           arp;
    ipv4_h          ipv4;
    ipv4_options_h  ipv4_options;
    ipv6_h          ipv6;
    tcp_h           tcp;
    udp_h           udp;
    sctp_h          sctp;
    icmp_h          icmp;
    icmp_h          icmpv6;
    nd_target_h     nd_target;
    nd_option_h     nd_option;
    // The packet header quoted by an ICMP error.
    ipv4_h          icmp_err_ipv4;
    ipv6_h          icmp_err_ipv6;
    l4_words_h      icmp_err_l4;
    // Tunnel header and the tunnelled packet.
    vxlan_h         vxlan;
    ethernet_h      inner_ethernet;
    ipv4_h          inner_ipv4;
    ipv6_h          inner_ipv6;
    tcp_h           inner_tcp;
    udp_h           inner_udp;
    sctp_h          inner_sctp;
    icmp_h          inner_icmp;
    icmp_h          inner_icmpv6;
}

/* ======================================================================== */
/* Metadata (kept across passes)                                             */
/* ======================================================================== */

// The packet's flow, read once in pass 0 (after decapsulation).
struct flow_meta_t {
    bit<8>      ip_ver;       // 0 (not IP), 4 or 6
    ipv4_addr_t src4;
    ipv4_addr_t dst4;
    ipv6_addr_t src6;
    ipv6_addr_t dst6;
    bit<8>      proto;
    l4_port_t   sport;        // TCP/UDP/SCTP ports; the identifier of an ICMP
    l4_port_t   dport;        // query or reply (both "ports")
    bit<1>      has_ports;    // TCP/UDP/SCTP ports were parsed
    bit<8>      icmp_type;
    bit<8>      icmp_code;
    bit<1>      icmp_error;   // ICMP error quoting a parsed header
    bit<8>      icmp_peer_type;   // ICMP: the counterpart type (a query's reply,
                                  // a reply's query: icmp_counterpart)
    bit<1>      trackable;    // conntrack learns this packet's flow when it is
                              // new and allowed: not an ICMP error; for ICMP,
                              // a query (as Linux: other ICMP messages never
                              // create a conntrack entry)
    bit<8>      tcp_flags;
}

// The ingress port and the endpoint behind it.
struct src_meta_t {
    port_num_t    port;
    endpoint_id_t endpoint;
    bit<8>        kind;
    bit<8>        flags;
    port_num_t    peer_port;    // where bridged (link-local) traffic goes; 0 = none
    bit<8>        tunnel_type;  // tunnel header found on a packet from the uplink
    bit<1>        decap;        // the tunnel was terminated here
    bit<1>        spoofed;      // source_guard missed (workloads: dropped)
    bit<1>        host_origin;  // from the host port with one of the node's own
                                // addresses as source: the host's own traffic
                                // (Felix's OUTPUT chain); other packets from the
                                // host port are traffic it forwards
}

// The routing result: next hop and the endpoint behind it.
struct dst_meta_t {
    ipv4_addr_t   addr4;          // the (post-DNAT) address routed on
    ipv6_addr_t   addr6;
    bit<1>        routed;
    nexthop_id_t  nexthop;
    bit<8>        route_flags;
    bit<8>        kind;
    endpoint_id_t endpoint;
    bit<8>        flags;
    port_num_t    port;
    mac_addr_t    dmac;
    mac_addr_t    smac;
    bit<8>        encap;
    ipv4_addr_t   outer_src4;
    ipv4_addr_t   outer_dst4;
    ipv6_addr_t   outer_src6;
    ipv6_addr_t   outer_dst6;
    bit<24>       vni;
    l4_port_t     vxlan_port;
    mac_addr_t    inner_dmac;
    mac_addr_t    inner_smac;
    bit<1>        decrement_ttl;
}

// Conntrack: learner keys, hit values and learning state.
struct ct_meta_t {
    // Key of ct_orig_*, ct_reply_* (all five) and affinity_* (src, dst,
    // proto, dport).  Set to the packet's tuple for lookups and to the
    // tuples to remember while learning.
    ipv4_addr_t k_src4;
    ipv4_addr_t k_dst4;
    ipv6_addr_t k_src6;
    ipv6_addr_t k_dst6;
    bit<8>      k_proto;
    l4_port_t   k_sport;
    l4_port_t   k_dport;
    bit<8>      k_icmp_type;    // ct_*: the ICMP type of the entry's packets (0
                                // for other protocols)
    // Result of the lookups.
    bit<8>      state;
    bit<1>      hit_orig;
    bit<1>      hit_reply;
    bit<8>      v_nat;          // NAT_REWRITE_* of the entry hit
    ipv4_addr_t v_src4;
    ipv6_addr_t v_src6;
    l4_port_t   v_sport;
    ipv4_addr_t v_dst4;
    ipv6_addr_t v_dst6;
    l4_port_t   v_dport;
    // Learning.
    bit<1>      learning;       // miss actions add entries while set
    ExpireTimeProfileId_t hit_profile;
    ExpireTimeProfileId_t learn_profile;
}

// Service selection for a new flow.
struct svc_meta_t {
    bit<1>      hit;
    bit<1>      reject;
    bit<1>      from_affinity;
    bit<8>      flags;
    ipv4_addr_t addr4;
    ipv6_addr_t addr6;
    l4_port_t   port;           // 0 keeps the destination port
}

// Rewrites applied in the last pass.
struct nat_meta_t {
    bit<8>      flags;          // NAT_REWRITE_*
    ipv4_addr_t src4;
    ipv6_addr_t src6;
    l4_port_t   sport;
    ipv4_addr_t dst4;
    ipv6_addr_t dst6;
    l4_port_t   dport;
    bit<1>      masquerade;     // SNAT wanted for this new flow
    bit<1>      nat_outgoing;   // source is in a natOutgoing pool
    bit<1>      snat_ok;        // snat_address_* gave an address
}

// The policy walk.
struct pol_meta_t {
    bit<8>        check;        // CHECK_*
    bit<8>        state;        // WALK_*
    bit<8>        verdict;      // VERDICT_* of the current check
    bit<1>        broken;       // the program is missing an entry
    bit<1>        accepted;     // allowed by untracked or pre-DNAT policy (Felix's
                                // accept mark): the source's own host endpoint
                                // checks are skipped
    bit<1>        untracked;    // allowed by untracked policy: no conntrack (the
                                // checks that remain run on every packet; never
                                // learned)
    endpoint_id_t endpoint;     // endpoint_policy key
    bit<8>        stage;
    list_id_t     list_id;      // policy_list key
    list_pos_t    pos;
    list_pos_t    tier_next;    // where rule_pass continues
    step_id_t     step;         // policy_step / policy_rule key
    bit<8>        lookup;       // LOOKUP_* of the step
    set_id_t      set_id;
    step_id_t     miss_step;    // where the policy continues when no rule matches; 0 = next position
    bit<1>        set_hit;
    bit<8>        result;       // RULE_*
    step_id_t     next_step;
    rule_id_t     rule_id;      // policy_rule_stats key; 0 = not counted
    // The packet as the check sees it (pre- or post-DNAT).
    ipv4_addr_t   src4;
    ipv4_addr_t   dst4;
    ipv6_addr_t   src6;
    ipv6_addr_t   dst6;
    l4_port_t     sport;
    l4_port_t     dport;
    // IP-set lookup key.
    ipv4_addr_t   addr4;
    ipv6_addr_t   addr6;
    l4_port_t     port;
}

struct metadata_t {
    bit<8>      phase;
    bit<8>      fate;
    bit<8>      drop_reason;
    bit<8>      passes;        // recirculations so far
    flow_meta_t flow;
    src_meta_t  src;
    dst_meta_t  dst;
    ct_meta_t   ct;
    svc_meta_t  svc;
    nat_meta_t  nat;
    pol_meta_t  pol;
}

// Parameters of the learned actions (field order = action parameter order).
struct ct_nat_v4_t {
    bit<8>      nat;
    ipv4_addr_t src_addr;
    l4_port_t   src_port;
    ipv4_addr_t dst_addr;
    l4_port_t   dst_port;
}

struct ct_nat_v6_t {
    bit<8>      nat;
    ipv6_addr_t src_addr;
    l4_port_t   src_port;
    ipv6_addr_t dst_addr;
    l4_port_t   dst_port;
}

struct affinity_v4_t {
    ipv4_addr_t backend_addr;
    l4_port_t   backend_port;
    bit<8>      flags;
}

struct affinity_v6_t {
    ipv6_addr_t backend_addr;
    l4_port_t   backend_port;
    bit<8>      flags;
}

/* ======================================================================== */
/* Parser                                                                    */
/* ======================================================================== */

parser MainParserImpl(
    packet_in pkt,
    out   headers_t  hdr,
    inout metadata_t meta,
    in    pna_main_parser_input_metadata_t istd)
{
    state start {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_VLAN: parse_vlan;
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_IPV6: parse_ipv6;
            ETHERTYPE_ARP:  parse_arp;
            default:        accept;
        }
    }

    state parse_vlan {
        pkt.extract(hdr.vlan);
        transition select(hdr.vlan.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_IPV6: parse_ipv6;
            ETHERTYPE_ARP:  parse_arp;
            default:        accept;
        }
    }

    state parse_arp {
        pkt.extract(hdr.arp);
        transition accept;
    }

    state parse_ipv4 {
        pkt.extract(hdr.ipv4);
        transition select(hdr.ipv4.ihl) {
            4w0:     accept;   // malformed: no L4
            4w1:     accept;
            4w2:     accept;
            4w3:     accept;
            4w4:     accept;
            4w5:     parse_ipv4_no_options;
            default: parse_ipv4_options;
        }
    }

    state parse_ipv4_options {
        pkt.extract(hdr.ipv4_options, (bit<32>) (((bit<16>) hdr.ipv4.ihl - 16w5) * 16w32));
        transition parse_ipv4_no_options;
    }

    // Only the first fragment carries the L4 header.
    state parse_ipv4_no_options {
        transition select(hdr.ipv4.frag_offset) {
            13w0:    parse_ipv4_l4;
            default: accept;
        }
    }

    state parse_ipv4_l4 {
        transition select(hdr.ipv4.protocol) {
            IPPROTO_TCP:  parse_tcp;
            IPPROTO_UDP:  parse_udp;
            IPPROTO_SCTP: parse_sctp;
            IPPROTO_ICMP: parse_icmp;
            IPPROTO_IPIP: parse_inner_ipv4;
            default:      accept;
        }
    }

    // Extension headers are not parsed: such packets carry no L4 fields.
    state parse_ipv6 {
        pkt.extract(hdr.ipv6);
        transition select(hdr.ipv6.next_hdr) {
            IPPROTO_TCP:    parse_tcp;
            IPPROTO_UDP:    parse_udp;
            IPPROTO_SCTP:   parse_sctp;
            IPPROTO_ICMPV6: parse_icmpv6;
            default:        accept;
        }
    }

    state parse_tcp {
        pkt.extract(hdr.tcp);
        transition accept;
    }

    state parse_udp {
        pkt.extract(hdr.udp);
        transition select(hdr.udp.dst_port) {
            VXLAN_UDP_PORT: parse_vxlan;
            default:        accept;
        }
    }

    state parse_sctp {
        pkt.extract(hdr.sctp);
        transition accept;
    }

    state parse_icmp {
        pkt.extract(hdr.icmp);
        transition select(hdr.icmp.type) {
            ICMP_DEST_UNREACH:  parse_icmp_err_ipv4;
            ICMP_TIME_EXCEEDED: parse_icmp_err_ipv4;
            ICMP_PARAM_PROBLEM: parse_icmp_err_ipv4;
            default:            accept;
        }
    }

    state parse_icmp_err_ipv4 {
        pkt.extract(hdr.icmp_err_ipv4);
        transition select(hdr.icmp_err_ipv4.ihl) {
            4w5:     parse_icmp_err_l4;
            default: accept;
        }
    }

    state parse_icmpv6 {
        pkt.extract(hdr.icmpv6);
        transition select(hdr.icmpv6.type) {
            ICMP6_DEST_UNREACH:   parse_icmp_err_ipv6;
            ICMP6_PACKET_TOO_BIG: parse_icmp_err_ipv6;
            ICMP6_TIME_EXCEEDED:  parse_icmp_err_ipv6;
            ICMP6_PARAM_PROBLEM:  parse_icmp_err_ipv6;
            ICMP6_ND_NS:          parse_nd;
            ICMP6_ND_NA:          parse_nd;
            default:              accept;
        }
    }

    state parse_icmp_err_ipv6 {
        pkt.extract(hdr.icmp_err_ipv6);
        transition parse_icmp_err_l4;
    }

    state parse_icmp_err_l4 {
        pkt.extract(hdr.icmp_err_l4);
        transition accept;
    }

    state parse_nd {
        pkt.extract(hdr.nd_target);
        transition select(hdr.ipv6.payload_len) {
            ND_NS_PAYLOAD_LEN: parse_nd_option;
            default:           accept;
        }
    }

    state parse_nd_option {
        pkt.extract(hdr.nd_option);
        transition accept;
    }

    // ---- tunnels: VXLAN (UDP 4789) and IP-in-IP
    state parse_vxlan {
        pkt.extract(hdr.vxlan);
        pkt.extract(hdr.inner_ethernet);
        transition select(hdr.inner_ethernet.ether_type) {
            ETHERTYPE_IPV4: parse_inner_ipv4;
            ETHERTYPE_IPV6: parse_inner_ipv6;
            default:        accept;
        }
    }

    state parse_inner_ipv4 {
        pkt.extract(hdr.inner_ipv4);
        transition select(hdr.inner_ipv4.ihl) {
            4w5:     parse_inner_ipv4_fragment;
            default: accept;
        }
    }

    state parse_inner_ipv4_fragment {
        transition select(hdr.inner_ipv4.frag_offset) {
            13w0:    parse_inner_ipv4_l4;
            default: accept;
        }
    }

    state parse_inner_ipv4_l4 {
        transition select(hdr.inner_ipv4.protocol) {
            IPPROTO_TCP:  parse_inner_tcp;
            IPPROTO_UDP:  parse_inner_udp;
            IPPROTO_SCTP: parse_inner_sctp;
            IPPROTO_ICMP: parse_inner_icmp;
            default:      accept;
        }
    }

    state parse_inner_ipv6 {
        pkt.extract(hdr.inner_ipv6);
        transition select(hdr.inner_ipv6.next_hdr) {
            IPPROTO_TCP:    parse_inner_tcp;
            IPPROTO_UDP:    parse_inner_udp;
            IPPROTO_SCTP:   parse_inner_sctp;
            IPPROTO_ICMPV6: parse_inner_icmpv6;
            default:        accept;
        }
    }

    state parse_inner_tcp {
        pkt.extract(hdr.inner_tcp);
        transition accept;
    }

    state parse_inner_udp {
        pkt.extract(hdr.inner_udp);
        transition accept;
    }

    state parse_inner_sctp {
        pkt.extract(hdr.inner_sctp);
        transition accept;
    }

    state parse_inner_icmp {
        pkt.extract(hdr.inner_icmp);
        transition accept;
    }

    state parse_inner_icmpv6 {
        pkt.extract(hdr.inner_icmpv6);
        transition accept;
    }
}

/* ======================================================================== */
/* Pre-control (unused)                                                      */
/* ======================================================================== */

control PreControlImpl(
    in    headers_t  hdr,
    inout metadata_t meta,
    in    pna_pre_input_metadata_t  istd,
    inout pna_pre_output_metadata_t ostd)
{
    apply { }
}

/* ======================================================================== */
/* ICMP queries and replies                                                  */
/* ======================================================================== */

// The counterpart of an ICMP / ICMPv6 query or reply: the reply type of a
// query, the query type of a reply (Linux conntrack's invmap); ICMP_TYPE_NONE
// for other messages.  Conntrack keys an ICMP flow by its type too: the
// original entry carries the query type, the reply entry the reply type, so
// a query in the reverse direction of a tracked one is a new flow.
bit<8> icmp_counterpart(in bit<8> ip_proto, in bit<8> t) {
    bit<8> r = ICMP_TYPE_NONE;
    if (ip_proto == IPPROTO_ICMP) {
        if (t == ICMP_ECHO_REQUEST) {
            r = ICMP_ECHO_REPLY;
        } else if (t == ICMP_ECHO_REPLY) {
            r = ICMP_ECHO_REQUEST;
        } else if (t == ICMP_TIMESTAMP) {
            r = ICMP_TIMESTAMP_REPLY;
        } else if (t == ICMP_TIMESTAMP_REPLY) {
            r = ICMP_TIMESTAMP;
        } else if (t == ICMP_INFO_REQUEST) {
            r = ICMP_INFO_REPLY;
        } else if (t == ICMP_INFO_REPLY) {
            r = ICMP_INFO_REQUEST;
        } else if (t == ICMP_ADDRESS) {
            r = ICMP_ADDRESS_REPLY;
        } else if (t == ICMP_ADDRESS_REPLY) {
            r = ICMP_ADDRESS;
        }
    } else if (ip_proto == IPPROTO_ICMPV6) {
        if (t == ICMP6_ECHO_REQUEST) {
            r = ICMP6_ECHO_REPLY;
        } else if (t == ICMP6_ECHO_REPLY) {
            r = ICMP6_ECHO_REQUEST;
        } else if (t == ICMP6_NI_QUERY) {
            r = ICMP6_NI_REPLY;
        } else if (t == ICMP6_NI_REPLY) {
            r = ICMP6_NI_QUERY;
        }
    }
    return r;
}

/* ======================================================================== */
/* Check planning (plain control flow, no tables)                            */
/* ======================================================================== */

// Moves meta.pol.check to the next check that applies to this packet and
// prepares its walk: the endpoint and stage that select its list, and the
// addresses / ports the check sees.  CHECK_END when no check is left.
//
// The checks are Felix's chains (felix/rules/static.go), in their order:
//   raw PREROUTING / OUTPUT   untracked ingress (from the uplink or a tunnel),
//                             untracked egress (the host's own traffic to the
//                             uplink): every packet
//   conntrack                 established / related packets skip the rest,
//                             unless untracked policy allowed them (no
//                             conntrack state: they are checked every time)
//   mangle PREROUTING         pre-DNAT (from the uplink, a tunnel or a workload:
//                             a "*" host endpoint's pre-DNAT policy applies to
//                             every interface), new flows, not after an
//                             untracked allow
//   filter                    for traffic forwarded from a workload, the
//                             "*" host endpoint's forward ingress policy
//                             (from-hep-forward, not after an accept mark);
//                             the source's "from" check, then the
//                             destination's "to" check; for traffic
//                             forwarded to a workload (not the host's own),
//                             the "*" host endpoint's forward egress policy
//                             (to-hep-forward): Felix's FORWARD chain
//                             dispatches every interface, workload ones
//                             included, with the "*" endpoint as default
// An untracked or pre-DNAT allow sets Felix's accept mark (meta.pol.accepted):
// the INPUT chain accepts at once, the FORWARD chain skips the ingress host
// endpoint's forward policy, the OUTPUT chain accepts at once; so "from" is
// skipped and "to" still runs for workload destinations (to-wl) and for the
// uplink when forwarded (to-hep-forward).  A workload's own "from" check runs
// whatever the mark (Felix's INPUT sends workload traffic to cali-wl-to-host
// before accepting marked packets, and endpoint chains clear the mark).
// The host's own traffic (meta.src.host_origin) is Felix's OUTPUT chain: no
// policy towards workloads (kubelet probes work under default-deny ingress),
// the host endpoint's normal egress policy towards the uplink.  Any other
// packet from the host port is traffic the host forwards (FORWARD chain, from
// an interface without a host endpoint): the workload's ingress policy, the
// uplink's forward egress policy.
void plan_next_check(inout metadata_t m) {
    bit<8> c = m.pol.check;
    bit<8> n = CHECK_END;
    bool from_uplink = m.src.kind == EP_KIND_UPLINK || m.src.kind == EP_KIND_TUNNEL;
    bool from_host = m.src.kind == EP_KIND_HOST && m.src.host_origin == 1;

    if (c < CHECK_UNTRACKED_IN && from_uplink && (m.src.flags & EP_FLAG_UNTRACKED) != 0) {
        n = CHECK_UNTRACKED_IN;
    } else if (c < CHECK_UNTRACKED_OUT && from_host && m.dst.kind == EP_KIND_UPLINK
               && (m.dst.flags & EP_FLAG_UNTRACKED) != 0) {
        n = CHECK_UNTRACKED_OUT;
    } else if (m.ct.state != CT_NEW && m.pol.untracked == 0) {
        n = CHECK_END;                       // established / related: no policy
    } else if (c < CHECK_PREDNAT && (from_uplink || m.src.kind == EP_KIND_WORKLOAD)
               && (m.src.flags & EP_FLAG_PREDNAT) != 0 && m.pol.accepted == 0) {
        n = CHECK_PREDNAT;
    } else if (c < CHECK_FROM_FORWARD && m.src.kind == EP_KIND_WORKLOAD && m.dst.kind != EP_KIND_HOST
               && (m.src.flags & EP_FLAG_HEP_FORWARD) != 0 && m.pol.accepted == 0) {
        n = CHECK_FROM_FORWARD;
    } else if (c < CHECK_FROM && (m.src.flags & EP_FLAG_POLICY) != 0
               && (m.src.kind == EP_KIND_WORKLOAD || (from_uplink && m.pol.accepted == 0))) {
        n = CHECK_FROM;
    } else if (c < CHECK_TO && (m.dst.flags & EP_FLAG_POLICY) != 0
               && ((m.dst.kind == EP_KIND_WORKLOAD && !from_host)
                   || (m.dst.kind == EP_KIND_UPLINK && (!from_host || m.pol.accepted == 0))
                   || (m.dst.kind == EP_KIND_HOST && m.src.kind == EP_KIND_WORKLOAD))) {
        n = CHECK_TO;
    } else if (c < CHECK_TO_FORWARD && m.dst.kind == EP_KIND_WORKLOAD && !from_host
               && (m.dst.flags & EP_FLAG_HEP_FORWARD) != 0) {
        n = CHECK_TO_FORWARD;
    }

    m.pol.check = n;
    m.pol.state = WALK_START;
    m.pol.verdict = VERDICT_NONE;

    // Untracked and pre-DNAT checks see the packet as received; the others
    // see it after DNAT (before SNAT), as Felix's filter table does.
    m.pol.src4 = m.flow.src4;
    m.pol.src6 = m.flow.src6;
    m.pol.dst4 = m.flow.dst4;
    m.pol.dst6 = m.flow.dst6;
    m.pol.sport = 0;
    m.pol.dport = 0;
    if (m.flow.has_ports == 1) {
        m.pol.sport = m.flow.sport;
        m.pol.dport = m.flow.dport;
    }
    if (n == CHECK_FROM || n == CHECK_TO || n == CHECK_FROM_FORWARD || n == CHECK_TO_FORWARD) {
        m.pol.dst4 = m.dst.addr4;
        m.pol.dst6 = m.dst.addr6;
        if (m.flow.has_ports == 1 && (m.nat.flags & NAT_REWRITE_DST) != 0) {
            m.pol.dport = m.nat.dport;
        }
    }

    if (n == CHECK_UNTRACKED_IN) {
        m.pol.endpoint = m.src.endpoint;
        m.pol.stage = STAGE_UNTRACKED_INGRESS;
    } else if (n == CHECK_UNTRACKED_OUT) {
        m.pol.endpoint = m.dst.endpoint;
        m.pol.stage = STAGE_UNTRACKED_EGRESS;
    } else if (n == CHECK_PREDNAT) {
        m.pol.endpoint = m.src.endpoint;
        m.pol.stage = STAGE_PREDNAT_INGRESS;
    } else if (n == CHECK_FROM_FORWARD) {
        m.pol.endpoint = m.src.endpoint;
        m.pol.stage = STAGE_FORWARD_INGRESS;
    } else if (n == CHECK_FROM) {
        m.pol.endpoint = m.src.endpoint;
        if (m.src.kind == EP_KIND_WORKLOAD) {
            m.pol.stage = STAGE_WORKLOAD_EGRESS;
        } else if (m.dst.kind == EP_KIND_HOST) {
            m.pol.stage = STAGE_HOST_INGRESS;
        } else {
            m.pol.stage = STAGE_FORWARD_INGRESS;
        }
    } else if (n == CHECK_TO) {
        m.pol.endpoint = m.dst.endpoint;
        if (m.dst.kind == EP_KIND_WORKLOAD) {
            m.pol.stage = STAGE_WORKLOAD_INGRESS;
        } else if (m.dst.kind == EP_KIND_HOST) {
            m.pol.stage = STAGE_WORKLOAD_TO_HOST;
        } else if (from_host) {
            m.pol.stage = STAGE_HOST_EGRESS;
        } else {
            m.pol.stage = STAGE_FORWARD_EGRESS;
        }
    } else if (n == CHECK_TO_FORWARD) {
        m.pol.endpoint = m.dst.endpoint;
        m.pol.stage = STAGE_FORWARD_EGRESS;
    }
}

/* ======================================================================== */
/* Main control                                                              */
/* ======================================================================== */

control MainControlImpl(
    inout headers_t  hdr,
    inout metadata_t meta,
    in    pna_main_input_metadata_t  istd,
    inout pna_main_output_metadata_t ostd)
{
    /* ---------------------------------------------------------------- */
    /* Counters, selectors, scratch                                      */
    /* ---------------------------------------------------------------- */

    // Dropped packets by reason (index = DROP_*).
    @id(0x12000001)
    Counter<bit<64>, bit<32>>(DROP_REASONS, PNA_CounterType_t.PACKETS_AND_BYTES) drop_counter;

    // Per endpoint: packets received from the endpoint's port.
    @id(0x13000001)
    DirectCounter<bit<64>>(PNA_CounterType_t.PACKETS_AND_BYTES) port_endpoint_counter;

    // Per next hop (one per local endpoint): packets sent to it.
    @id(0x13000002)
    DirectCounter<bit<64>>(PNA_CounterType_t.PACKETS_AND_BYTES) nexthop_counter;

    // Per policy rule: packets (first packets of flows) that matched it.
    @id(0x13000003)
    DirectCounter<bit<64>>(PNA_CounterType_t.PACKETS_AND_BYTES) policy_rule_counter;

    // Backends of services: members = (backend address, port), groups =
    // service ports; the hash covers the client address and port.
    @id(0x11000001) @max_group_size(256)
    ActionSelector(PNA_HashAlgorithm_t.TARGET_DEFAULT, 32w32768, 32w16) service_selector_v4;

    @id(0x11000002) @max_group_size(256)
    ActionSelector(PNA_HashAlgorithm_t.TARGET_DEFAULT, 32w16384, 32w16) service_selector_v6;

    InternetChecksum() ck;

    // Parameters handed to add_entry() while learning.
    ct_nat_v4_t   learn_v4;
    ct_nat_v6_t   learn_v6;
    affinity_v4_t learn_affinity_v4;
    affinity_v6_t learn_affinity_v6;

    // Scratch for header rewrites.
    ipv4_addr_t old_src4;
    ipv4_addr_t old_dst4;
    ipv6_addr_t old_src6;
    ipv6_addr_t old_dst6;
    l4_port_t   old_sport;
    l4_port_t   old_dport;
    bit<16>     old_ttl_proto;
    bit<16>     l3_len;
    mac_addr_t  old_mac;
    bit<16>     quoted_w0;   // first 16 bits of the header an ICMP error quotes (IPv4)
    bit<16>     quoted_w1;   // IPv4 flags and fragment offset
    bit<32>     quoted_v6w0; // IPv6 version, traffic class, flow label

    /* ---------------------------------------------------------------- */
    /* Port classification                                               */
    /* ---------------------------------------------------------------- */

    @id(0x01000001)
    action set_endpoint(endpoint_id_t endpoint_id, bit<8> kind, bit<8> flags, port_num_t peer_port) {
        port_endpoint_counter.count();
        meta.src.endpoint = endpoint_id;
        meta.src.kind = kind;
        meta.src.flags = flags;
        meta.src.peer_port = peer_port;
    }

    @id(0x01000002)
    action unknown_port() {
        port_endpoint_counter.count();
        meta.src.kind = EP_KIND_NONE;
    }

    @id(0x02000001)
    table port_endpoint {
        key = {
            meta.src.port : exact @name("port");
        }
        actions = {
            @tableonly set_endpoint;
            @defaultonly unknown_port;
        }
        const default_action = unknown_port;
        size = 1024;
        pna_direct_counter = port_endpoint_counter;
    }

    /* ---------------------------------------------------------------- */
    /* Anti-spoofing                                                     */
    /* ---------------------------------------------------------------- */

    @id(0x01000003)
    action source_allowed() {
        meta.src.spoofed = 0;
    }

    @id(0x01000004)
    action source_spoofed() {
        meta.src.spoofed = 1;
    }

    @id(0x02000002)
    table source_guard_v4 {
        key = {
            meta.src.endpoint : exact @name("endpoint_id");
            meta.flow.src4    : lpm   @name("src_addr");
        }
        actions = {
            @tableonly source_allowed;
            @defaultonly source_spoofed;
        }
        const default_action = source_spoofed;
        size = 2048;
    }

    @id(0x02000003)
    table source_guard_v6 {
        key = {
            meta.src.endpoint : exact @name("endpoint_id");
            meta.flow.src6    : lpm   @name("src_addr");
        }
        actions = {
            @tableonly source_allowed;
            @defaultonly source_spoofed;
        }
        const default_action = source_spoofed;
        size = 2048;
    }

    /* ---------------------------------------------------------------- */
    /* Gateway responder: ARP and IPv6 neighbour discovery               */
    /* ---------------------------------------------------------------- */

    // Turns the ARP request into the reply, sent back out the ingress port.
    @id(0x01000005)
    action arp_reply(mac_addr_t mac) {
        hdr.arp.oper = ARP_OPER_REPLY;
        hdr.arp.target_mac = hdr.arp.sender_mac;
        hdr.arp.sender_mac = mac;
        old_src4 = hdr.arp.target_ip;
        hdr.arp.target_ip = hdr.arp.sender_ip;
        hdr.arp.sender_ip = old_src4;
        hdr.ethernet.dst_addr = hdr.ethernet.src_addr;
        hdr.ethernet.src_addr = mac;
        meta.fate = FATE_REPLY;
    }

    @id(0x02000004)
    table arp_responder {
        key = {
            meta.src.kind      : exact @name("endpoint_kind");
            hdr.arp.target_ip  : lpm   @name("target_addr");
        }
        actions = {
            @tableonly arp_reply;
            @defaultonly NoAction;
        }
        const default_action = NoAction;
        size = 64;
    }

    // Turns the neighbour solicitation into the advertisement (R, S, O set,
    // target link-layer address option), sent back out the ingress port.
    // The ICMPv6 checksum is computed in the apply block.
    @id(0x01000006)
    action nd_advertise(mac_addr_t mac) {
        hdr.ipv6.dst_addr = hdr.ipv6.src_addr;
        hdr.ipv6.src_addr = hdr.nd_target.target_addr;
        hdr.ipv6.hop_limit = 255;
        hdr.icmpv6.type = ICMP6_ND_NA;
        hdr.icmpv6.code = 0;
        hdr.icmpv6.ident = ND_NA_FLAGS_RSO;
        hdr.icmpv6.seq = 0;
        hdr.nd_option.type = ND_OPT_TARGET_LLADDR;
        hdr.nd_option.length = 1;
        hdr.nd_option.ll_addr = mac;
        hdr.ethernet.dst_addr = hdr.ethernet.src_addr;
        hdr.ethernet.src_addr = mac;
        meta.fate = FATE_REPLY;
    }

    @id(0x02000005)
    table nd_responder {
        key = {
            meta.src.kind              : exact @name("endpoint_kind");
            hdr.nd_target.target_addr  : lpm   @name("target_addr");
        }
        actions = {
            @tableonly nd_advertise;
            @defaultonly NoAction;
        }
        const default_action = NoAction;
        size = 64;
    }

    /* ---------------------------------------------------------------- */
    /* Tunnel termination                                                */
    /* ---------------------------------------------------------------- */

    @id(0x01000007)
    action tunnel_decap(endpoint_id_t endpoint_id, bit<8> flags) {
        meta.src.decap = 1;
        meta.src.endpoint = endpoint_id;
        meta.src.kind = EP_KIND_TUNNEL;
        meta.src.flags = flags;
    }

    @id(0x02000006)
    table tunnel_term_v4 {
        key = {
            hdr.ipv4.src_addr    : exact @name("outer_src_addr");
            hdr.ipv4.dst_addr    : exact @name("outer_dst_addr");
            meta.src.tunnel_type : exact @name("tunnel_type");
        }
        actions = {
            @tableonly tunnel_decap;
            @defaultonly NoAction;
        }
        const default_action = NoAction;
        size = 4096;
    }

    @id(0x02000007)
    table tunnel_term_v6 {
        key = {
            hdr.ipv6.src_addr    : exact @name("outer_src_addr");
            hdr.ipv6.dst_addr    : exact @name("outer_dst_addr");
            meta.src.tunnel_type : exact @name("tunnel_type");
        }
        actions = {
            @tableonly tunnel_decap;
            @defaultonly NoAction;
        }
        const default_action = NoAction;
        size = 4096;
    }

    /* ---------------------------------------------------------------- */
    /* Connection tracking (learner tables)                              */
    /* ---------------------------------------------------------------- */
    // ct_orig_*: keyed by the tuple of the flow's first packet as received;
    // a hit gives the NAT to repeat (pinned DNAT backend, SNAT address).
    // ct_reply_*: keyed by the tuple replies carry (after NAT, reversed); a
    // hit gives the reverse NAT.  Both are learned in the learning pass of
    // an allowed new flow, at the same (single) apply site as the lookup.
    // Hits refresh the entry's expiry.

    @id(0x01000008)
    action ct_orig_hit_v4(bit<8> nat, ipv4_addr_t src_addr, l4_port_t src_port,
                          ipv4_addr_t dst_addr, l4_port_t dst_port) {
        meta.ct.hit_orig = 1;
        meta.ct.v_nat = nat;
        meta.ct.v_src4 = src_addr;
        meta.ct.v_sport = src_port;
        meta.ct.v_dst4 = dst_addr;
        meta.ct.v_dport = dst_port;
        set_entry_expire_time(meta.ct.hit_profile);
    }

    @id(0x01000009)
    action ct_orig_miss_v4() {
        if (meta.ct.learning == 1) {
            add_entry(action_name = "ct_orig_hit_v4",
                      action_params = learn_v4,
                      expire_time_profile_id = meta.ct.learn_profile);
        }
    }

    @id(0x0100000a)
    action ct_reply_hit_v4(bit<8> nat, ipv4_addr_t src_addr, l4_port_t src_port,
                           ipv4_addr_t dst_addr, l4_port_t dst_port) {
        meta.ct.hit_reply = 1;
        meta.ct.v_nat = nat;
        meta.ct.v_src4 = src_addr;
        meta.ct.v_sport = src_port;
        meta.ct.v_dst4 = dst_addr;
        meta.ct.v_dport = dst_port;
        set_entry_expire_time(meta.ct.hit_profile);
    }

    @id(0x0100000b)
    action ct_reply_miss_v4() {
        if (meta.ct.learning == 1) {
            add_entry(action_name = "ct_reply_hit_v4",
                      action_params = learn_v4,
                      expire_time_profile_id = meta.ct.learn_profile);
        }
    }

    @id(0x02000008)
    table ct_orig_v4 {
        key = {
            meta.ct.k_src4  : exact @name("src_addr");
            meta.ct.k_dst4  : exact @name("dst_addr");
            meta.ct.k_proto : exact @name("protocol");
            meta.ct.k_sport : exact @name("src_port");
            meta.ct.k_dport : exact @name("dst_port");
            meta.ct.k_icmp_type : exact @name("icmp_type");
        }
        actions = {
            @tableonly ct_orig_hit_v4;
            @defaultonly ct_orig_miss_v4;
        }
        add_on_miss = true;
        default_idle_timeout_for_data_plane_added_entries = 1;
        idle_timeout_with_auto_delete = true;
        const default_action = ct_orig_miss_v4;
        size = 131072;
    }

    @id(0x02000009)
    table ct_reply_v4 {
        key = {
            meta.ct.k_src4  : exact @name("src_addr");
            meta.ct.k_dst4  : exact @name("dst_addr");
            meta.ct.k_proto : exact @name("protocol");
            meta.ct.k_sport : exact @name("src_port");
            meta.ct.k_dport : exact @name("dst_port");
            meta.ct.k_icmp_type : exact @name("icmp_type");
        }
        actions = {
            @tableonly ct_reply_hit_v4;
            @defaultonly ct_reply_miss_v4;
        }
        add_on_miss = true;
        default_idle_timeout_for_data_plane_added_entries = 1;
        idle_timeout_with_auto_delete = true;
        const default_action = ct_reply_miss_v4;
        size = 131072;
    }

    @id(0x0100000c)
    action ct_orig_hit_v6(bit<8> nat, ipv6_addr_t src_addr, l4_port_t src_port,
                          ipv6_addr_t dst_addr, l4_port_t dst_port) {
        meta.ct.hit_orig = 1;
        meta.ct.v_nat = nat;
        meta.ct.v_src6 = src_addr;
        meta.ct.v_sport = src_port;
        meta.ct.v_dst6 = dst_addr;
        meta.ct.v_dport = dst_port;
        set_entry_expire_time(meta.ct.hit_profile);
    }

    @id(0x0100000d)
    action ct_orig_miss_v6() {
        if (meta.ct.learning == 1) {
            add_entry(action_name = "ct_orig_hit_v6",
                      action_params = learn_v6,
                      expire_time_profile_id = meta.ct.learn_profile);
        }
    }

    @id(0x0100000e)
    action ct_reply_hit_v6(bit<8> nat, ipv6_addr_t src_addr, l4_port_t src_port,
                           ipv6_addr_t dst_addr, l4_port_t dst_port) {
        meta.ct.hit_reply = 1;
        meta.ct.v_nat = nat;
        meta.ct.v_src6 = src_addr;
        meta.ct.v_sport = src_port;
        meta.ct.v_dst6 = dst_addr;
        meta.ct.v_dport = dst_port;
        set_entry_expire_time(meta.ct.hit_profile);
    }

    @id(0x0100000f)
    action ct_reply_miss_v6() {
        if (meta.ct.learning == 1) {
            add_entry(action_name = "ct_reply_hit_v6",
                      action_params = learn_v6,
                      expire_time_profile_id = meta.ct.learn_profile);
        }
    }

    @id(0x0200000a)
    table ct_orig_v6 {
        key = {
            meta.ct.k_src6  : exact @name("src_addr");
            meta.ct.k_dst6  : exact @name("dst_addr");
            meta.ct.k_proto : exact @name("protocol");
            meta.ct.k_sport : exact @name("src_port");
            meta.ct.k_dport : exact @name("dst_port");
            meta.ct.k_icmp_type : exact @name("icmp_type");
        }
        actions = {
            @tableonly ct_orig_hit_v6;
            @defaultonly ct_orig_miss_v6;
        }
        add_on_miss = true;
        default_idle_timeout_for_data_plane_added_entries = 1;
        idle_timeout_with_auto_delete = true;
        const default_action = ct_orig_miss_v6;
        size = 65536;
    }

    @id(0x0200000b)
    table ct_reply_v6 {
        key = {
            meta.ct.k_src6  : exact @name("src_addr");
            meta.ct.k_dst6  : exact @name("dst_addr");
            meta.ct.k_proto : exact @name("protocol");
            meta.ct.k_sport : exact @name("src_port");
            meta.ct.k_dport : exact @name("dst_port");
            meta.ct.k_icmp_type : exact @name("icmp_type");
        }
        actions = {
            @tableonly ct_reply_hit_v6;
            @defaultonly ct_reply_miss_v6;
        }
        add_on_miss = true;
        default_idle_timeout_for_data_plane_added_entries = 1;
        idle_timeout_with_auto_delete = true;
        const default_action = ct_reply_miss_v6;
        size = 65536;
    }

    /* ---------------------------------------------------------------- */
    /* ClientIP session affinity (learner tables)                        */
    /* ---------------------------------------------------------------- */

    @id(0x01000010)
    action affinity_hit_v4(ipv4_addr_t backend_addr, l4_port_t backend_port, bit<8> flags) {
        meta.svc.hit = 1;
        meta.svc.from_affinity = 1;
        meta.svc.flags = flags;
        meta.svc.addr4 = backend_addr;
        meta.svc.port = backend_port;
        restart_expire_timer();
    }

    @id(0x01000011)
    action affinity_miss_v4() {
        if (meta.ct.learning == 1) {
            add_entry(action_name = "affinity_hit_v4",
                      action_params = learn_affinity_v4,
                      expire_time_profile_id = EXPIRE_AFFINITY);
        }
    }

    @id(0x0200000c)
    table affinity_v4 {
        key = {
            meta.ct.k_src4  : exact @name("client_addr");
            meta.ct.k_dst4  : exact @name("service_addr");
            meta.ct.k_proto : exact @name("protocol");
            meta.ct.k_dport : exact @name("service_port");
        }
        actions = {
            @tableonly affinity_hit_v4;
            @defaultonly affinity_miss_v4;
        }
        add_on_miss = true;
        default_idle_timeout_for_data_plane_added_entries = 1;
        idle_timeout_with_auto_delete = true;
        const default_action = affinity_miss_v4;
        size = 16384;
    }

    @id(0x01000012)
    action affinity_hit_v6(ipv6_addr_t backend_addr, l4_port_t backend_port, bit<8> flags) {
        meta.svc.hit = 1;
        meta.svc.from_affinity = 1;
        meta.svc.flags = flags;
        meta.svc.addr6 = backend_addr;
        meta.svc.port = backend_port;
        restart_expire_timer();
    }

    @id(0x01000013)
    action affinity_miss_v6() {
        if (meta.ct.learning == 1) {
            add_entry(action_name = "affinity_hit_v6",
                      action_params = learn_affinity_v6,
                      expire_time_profile_id = EXPIRE_AFFINITY);
        }
    }

    @id(0x0200000d)
    table affinity_v6 {
        key = {
            meta.ct.k_src6  : exact @name("client_addr");
            meta.ct.k_dst6  : exact @name("service_addr");
            meta.ct.k_proto : exact @name("protocol");
            meta.ct.k_dport : exact @name("service_port");
        }
        actions = {
            @tableonly affinity_hit_v6;
            @defaultonly affinity_miss_v6;
        }
        add_on_miss = true;
        default_idle_timeout_for_data_plane_added_entries = 1;
        idle_timeout_with_auto_delete = true;
        const default_action = affinity_miss_v6;
        size = 8192;
    }

    /* ---------------------------------------------------------------- */
    /* Services (ClusterIP, ExternalIP, LoadBalancer, NodePort) and 1:1 NAT */
    /* ---------------------------------------------------------------- */

    @id(0x01000014)
    action dnat_v4(ipv4_addr_t addr, l4_port_t port, bit<8> flags) {
        meta.svc.hit = 1;
        meta.svc.addr4 = addr;
        meta.svc.port = port;
        meta.svc.flags = flags;
    }

    @id(0x01000015)
    action dnat_v6(ipv6_addr_t addr, l4_port_t port, bit<8> flags) {
        meta.svc.hit = 1;
        meta.svc.addr6 = addr;
        meta.svc.port = port;
        meta.svc.flags = flags;
    }

    // A service port without ready backends.
    @id(0x01000016)
    action service_reject() {
        meta.svc.reject = 1;
    }

    @id(0x0200000e)
    table service_v4 {
        key = {
            meta.flow.dst4  : exact    @name("dst_addr");
            meta.flow.proto : exact    @name("protocol");
            meta.flow.dport : exact    @name("dst_port");
            meta.flow.src4  : selector @name("client_addr");
            meta.flow.sport : selector @name("client_port");
        }
        actions = {
            dnat_v4;
            service_reject;
            @defaultonly NoAction;
        }
        pna_implementation = service_selector_v4;
        size = 8192;
    }

    @id(0x0200000f)
    table service_v6 {
        key = {
            meta.flow.dst6  : exact    @name("dst_addr");
            meta.flow.proto : exact    @name("protocol");
            meta.flow.dport : exact    @name("dst_port");
            meta.flow.src6  : selector @name("client_addr");
            meta.flow.sport : selector @name("client_port");
        }
        actions = {
            dnat_v6;
            service_reject;
            @defaultonly NoAction;
        }
        pna_implementation = service_selector_v6;
        size = 4096;
    }

    // Workload ipv4_nat / ipv6_nat: external address -> internal address.
    @id(0x01000017)
    action dnat_address_v4(ipv4_addr_t addr) {
        meta.svc.hit = 1;
        meta.svc.addr4 = addr;
        meta.svc.port = 0;
        meta.svc.flags = 0;
    }

    @id(0x01000018)
    action dnat_address_v6(ipv6_addr_t addr) {
        meta.svc.hit = 1;
        meta.svc.addr6 = addr;
        meta.svc.port = 0;
        meta.svc.flags = 0;
    }

    @id(0x02000010)
    table nat_1to1_v4 {
        key = {
            meta.flow.dst4 : exact @name("ext_addr");
        }
        actions = {
            @tableonly dnat_address_v4;
            @defaultonly NoAction;
        }
        const default_action = NoAction;
        size = 1024;
    }

    @id(0x02000011)
    table nat_1to1_v6 {
        key = {
            meta.flow.dst6 : exact @name("ext_addr");
        }
        actions = {
            @tableonly dnat_address_v6;
            @defaultonly NoAction;
        }
        const default_action = NoAction;
        size = 1024;
    }

    /* ---------------------------------------------------------------- */
    /* Routing                                                           */
    /* ---------------------------------------------------------------- */

    @id(0x01000019)
    action set_nexthop(nexthop_id_t nexthop_id, bit<8> flags) {
        meta.dst.routed = 1;
        meta.dst.nexthop = nexthop_id;
        meta.dst.route_flags = flags;
    }

    @id(0x0100001a)
    action route_unreachable() {
        meta.dst.routed = 0;
    }

    @id(0x02000012)
    table route_v4 {
        key = {
            meta.dst.addr4 : lpm @name("dst_addr");
        }
        actions = {
            set_nexthop;
            route_unreachable;
        }
        const default_action = route_unreachable;
        size = 16384;
    }

    @id(0x02000013)
    table route_v6 {
        key = {
            meta.dst.addr6 : lpm @name("dst_addr");
        }
        actions = {
            set_nexthop;
            route_unreachable;
        }
        const default_action = route_unreachable;
        size = 16384;
    }

    // A workload on this node: MACs for the pod, source MAC ee:ee:ee:ee:ee:ee.
    @id(0x0100001b)
    action nh_local(port_num_t port, mac_addr_t dst_mac, endpoint_id_t endpoint_id, bit<8> flags) {
        nexthop_counter.count();
        meta.dst.kind = EP_KIND_WORKLOAD;
        meta.dst.port = port;
        meta.dst.dmac = dst_mac;
        meta.dst.smac = GATEWAY_MAC;
        meta.dst.endpoint = endpoint_id;
        meta.dst.flags = flags;
        meta.dst.encap = ENCAP_NONE;
        meta.dst.decrement_ttl = 1;
    }

    // The host's own stack.
    @id(0x0100001c)
    action nh_host(port_num_t port, mac_addr_t dst_mac, mac_addr_t src_mac,
                   endpoint_id_t endpoint_id, bit<8> flags) {
        nexthop_counter.count();
        meta.dst.kind = EP_KIND_HOST;
        meta.dst.port = port;
        meta.dst.dmac = dst_mac;
        meta.dst.smac = src_mac;
        meta.dst.endpoint = endpoint_id;
        meta.dst.flags = flags;
        meta.dst.encap = ENCAP_NONE;
        meta.dst.decrement_ttl = 0;
    }

    // Out of the uplink, not encapsulated (a node in the same subnet, a router).
    @id(0x0100001d)
    action nh_direct(port_num_t port, mac_addr_t dst_mac, mac_addr_t src_mac,
                     endpoint_id_t endpoint_id, bit<8> flags) {
        nexthop_counter.count();
        meta.dst.kind = EP_KIND_UPLINK;
        meta.dst.port = port;
        meta.dst.dmac = dst_mac;
        meta.dst.smac = src_mac;
        meta.dst.endpoint = endpoint_id;
        meta.dst.flags = flags;
        meta.dst.encap = ENCAP_NONE;
        meta.dst.decrement_ttl = 1;
    }

    // A remote node over VXLAN with an IPv4 underlay.  dst_mac/src_mac are
    // the outer MACs, inner_dst_mac/inner_src_mac the remote and local VTEP MACs.
    @id(0x0100001e)
    action nh_vxlan_v4(port_num_t port, mac_addr_t dst_mac, mac_addr_t src_mac,
                       ipv4_addr_t outer_src_addr, ipv4_addr_t outer_dst_addr,
                       bit<24> vni, l4_port_t udp_port,
                       mac_addr_t inner_dst_mac, mac_addr_t inner_src_mac,
                       endpoint_id_t endpoint_id, bit<8> flags) {
        nexthop_counter.count();
        meta.dst.kind = EP_KIND_UPLINK;
        meta.dst.port = port;
        meta.dst.dmac = dst_mac;
        meta.dst.smac = src_mac;
        meta.dst.outer_src4 = outer_src_addr;
        meta.dst.outer_dst4 = outer_dst_addr;
        meta.dst.vni = vni;
        meta.dst.vxlan_port = udp_port;
        meta.dst.inner_dmac = inner_dst_mac;
        meta.dst.inner_smac = inner_src_mac;
        meta.dst.endpoint = endpoint_id;
        meta.dst.flags = flags;
        meta.dst.encap = ENCAP_VXLAN_V4;
        meta.dst.decrement_ttl = 1;
    }

    // A remote node over VXLAN with an IPv6 underlay.
    @id(0x0100001f)
    action nh_vxlan_v6(port_num_t port, mac_addr_t dst_mac, mac_addr_t src_mac,
                       ipv6_addr_t outer_src_addr, ipv6_addr_t outer_dst_addr,
                       bit<24> vni, l4_port_t udp_port,
                       mac_addr_t inner_dst_mac, mac_addr_t inner_src_mac,
                       endpoint_id_t endpoint_id, bit<8> flags) {
        nexthop_counter.count();
        meta.dst.kind = EP_KIND_UPLINK;
        meta.dst.port = port;
        meta.dst.dmac = dst_mac;
        meta.dst.smac = src_mac;
        meta.dst.outer_src6 = outer_src_addr;
        meta.dst.outer_dst6 = outer_dst_addr;
        meta.dst.vni = vni;
        meta.dst.vxlan_port = udp_port;
        meta.dst.inner_dmac = inner_dst_mac;
        meta.dst.inner_smac = inner_src_mac;
        meta.dst.endpoint = endpoint_id;
        meta.dst.flags = flags;
        meta.dst.encap = ENCAP_VXLAN_V6;
        meta.dst.decrement_ttl = 1;
    }

    // A remote node over IP-in-IP (IPv4 only).
    @id(0x01000020)
    action nh_ipip(port_num_t port, mac_addr_t dst_mac, mac_addr_t src_mac,
                   ipv4_addr_t outer_src_addr, ipv4_addr_t outer_dst_addr,
                   endpoint_id_t endpoint_id, bit<8> flags) {
        nexthop_counter.count();
        meta.dst.kind = EP_KIND_UPLINK;
        meta.dst.port = port;
        meta.dst.dmac = dst_mac;
        meta.dst.smac = src_mac;
        meta.dst.outer_src4 = outer_src_addr;
        meta.dst.outer_dst4 = outer_dst_addr;
        meta.dst.endpoint = endpoint_id;
        meta.dst.flags = flags;
        meta.dst.encap = ENCAP_IPIP;
        meta.dst.decrement_ttl = 1;
    }

    @id(0x01000021)
    action nexthop_missing() {
        nexthop_counter.count();
        meta.dst.kind = EP_KIND_NONE;
    }

    @id(0x02000014)
    table nexthop {
        key = {
            meta.dst.nexthop : exact @name("nexthop_id");
        }
        actions = {
            @tableonly nh_local;
            @tableonly nh_host;
            @tableonly nh_direct;
            @tableonly nh_vxlan_v4;
            @tableonly nh_vxlan_v6;
            @tableonly nh_ipip;
            @defaultonly nexthop_missing;
        }
        const default_action = nexthop_missing;
        size = 4096;
        pna_direct_counter = nexthop_counter;
    }

    /* ---------------------------------------------------------------- */
    /* Masquerade (natOutgoing pools, services that SNAT)                */
    /* ---------------------------------------------------------------- */

    @id(0x01000022)
    action nat_outgoing() {
        meta.nat.nat_outgoing = 1;
    }

    @id(0x02000015)
    table nat_outgoing_v4 {
        key = {
            meta.flow.src4 : lpm @name("src_addr");
        }
        actions = {
            @tableonly nat_outgoing;
            @defaultonly NoAction;
        }
        const default_action = NoAction;
        size = 256;
    }

    @id(0x02000016)
    table nat_outgoing_v6 {
        key = {
            meta.flow.src6 : lpm @name("src_addr");
        }
        actions = {
            @tableonly nat_outgoing;
            @defaultonly NoAction;
        }
        const default_action = NoAction;
        size = 256;
    }

    @id(0x01000023)
    action snat_to_v4(ipv4_addr_t addr) {
        meta.nat.snat_ok = 1;
        meta.nat.src4 = addr;
    }

    @id(0x01000024)
    action snat_to_v6(ipv6_addr_t addr) {
        meta.nat.snat_ok = 1;
        meta.nat.src6 = addr;
    }

    @id(0x02000017)
    table snat_address_v4 {
        key = {
            meta.dst.nexthop : exact @name("nexthop_id");
        }
        actions = {
            @tableonly snat_to_v4;
            @defaultonly NoAction;
        }
        const default_action = NoAction;
        size = 4096;
    }

    @id(0x02000018)
    table snat_address_v6 {
        key = {
            meta.dst.nexthop : exact @name("nexthop_id");
        }
        actions = {
            @tableonly snat_to_v6;
            @defaultonly NoAction;
        }
        const default_action = NoAction;
        size = 4096;
    }

    /* ---------------------------------------------------------------- */
    /* Policy program                                                    */
    /* ---------------------------------------------------------------- */

    // endpoint_policy: (endpoint, stage) -> the ordered list that applies.
    @id(0x01000025)
    action set_policy_list(list_id_t list_id) {
        meta.pol.list_id = list_id;
        meta.pol.pos = 0;
        meta.pol.state = WALK_LIST;
    }

    // No list for this endpoint and stage: the check has no verdict.
    @id(0x01000026)
    action no_policy() {
        meta.pol.verdict = VERDICT_CONTINUE;
        meta.pol.state = WALK_DONE;
    }

    @id(0x02000019)
    table endpoint_policy {
        key = {
            meta.pol.endpoint : exact @name("endpoint_id");
            meta.pol.stage    : exact @name("stage");
        }
        actions = {
            @tableonly set_policy_list;
            @defaultonly no_policy;
        }
        const default_action = no_policy;
        size = 4096;
    }

    // policy_list: (list, position) -> run a policy, or end the list.
    @id(0x01000027)
    action run_policy(step_id_t first_step, list_pos_t next_tier_pos) {
        meta.pol.step = first_step;
        meta.pol.tier_next = next_tier_pos;
        meta.pol.state = WALK_STEP;
    }

    @id(0x01000028)
    action list_end(bit<8> verdict) {
        meta.pol.verdict = verdict;
        meta.pol.state = WALK_DONE;
    }

    @id(0x01000029)
    action list_missing() {
        meta.pol.broken = 1;
        meta.pol.verdict = VERDICT_DENY;
        meta.pol.state = WALK_DONE;
    }

    @id(0x0200001a)
    table policy_list {
        key = {
            meta.pol.list_id : exact @name("list_id");
            meta.pol.pos     : exact @name("position");
        }
        actions = {
            @tableonly run_policy;
            @tableonly list_end;
            @defaultonly list_missing;
        }
        const default_action = list_missing;
        size = 32768;
    }

    // policy_step: step -> the one IP set it looks up, where to go on no match.
    @id(0x0100002a)
    action run_step(bit<8> lookup, set_id_t set_id, step_id_t miss_step) {
        meta.pol.lookup = lookup;
        meta.pol.set_id = set_id;
        meta.pol.miss_step = miss_step;
    }

    @id(0x0100002b)
    action step_missing() {
        meta.pol.broken = 1;
        meta.pol.verdict = VERDICT_DENY;
        meta.pol.state = WALK_DONE;
    }

    @id(0x0200001b)
    table policy_step {
        key = {
            meta.pol.step : exact @name("step_id");
        }
        actions = {
            @tableonly run_step;
            @defaultonly step_missing;
        }
        const default_action = step_missing;
        size = 49152;
    }

    // IP sets: membership of the step's set.
    @id(0x0100002c)
    action ipset_hit() {
        meta.pol.set_hit = 1;
    }

    @id(0x0200001c)
    table ipset_net_v4 {
        key = {
            meta.pol.set_id : exact @name("set_id");
            meta.pol.addr4  : lpm   @name("addr");
        }
        actions = {
            @tableonly ipset_hit;
            @defaultonly NoAction;
        }
        const default_action = NoAction;
        size = 131072;
    }

    @id(0x0200001d)
    table ipset_net_v6 {
        key = {
            meta.pol.set_id : exact @name("set_id");
            meta.pol.addr6  : lpm   @name("addr");
        }
        actions = {
            @tableonly ipset_hit;
            @defaultonly NoAction;
        }
        const default_action = NoAction;
        size = 131072;
    }

    @id(0x0200001e)
    table ipset_port_v4 {
        key = {
            meta.pol.set_id : exact @name("set_id");
            meta.pol.addr4  : exact @name("addr");
            meta.flow.proto : exact @name("protocol");
            meta.pol.port   : exact @name("port");
        }
        actions = {
            @tableonly ipset_hit;
            @defaultonly NoAction;
        }
        const default_action = NoAction;
        size = 16384;
    }

    @id(0x0200001f)
    table ipset_port_v6 {
        key = {
            meta.pol.set_id : exact @name("set_id");
            meta.pol.addr6  : exact @name("addr");
            meta.flow.proto : exact @name("protocol");
            meta.pol.port   : exact @name("port");
        }
        actions = {
            @tableonly ipset_hit;
            @defaultonly NoAction;
        }
        const default_action = NoAction;
        size = 16384;
    }

    // policy_rule: the step's rules in priority order; first match wins.
    @id(0x0100002d)
    action rule_allow(rule_id_t rule_id) {
        meta.pol.result = RULE_ALLOW;
        meta.pol.rule_id = rule_id;
    }

    @id(0x0100002e)
    action rule_deny(rule_id_t rule_id) {
        meta.pol.result = RULE_DENY;
        meta.pol.rule_id = rule_id;
    }

    @id(0x0100002f)
    action rule_pass(rule_id_t rule_id) {
        meta.pol.result = RULE_PASS;
        meta.pol.rule_id = rule_id;
    }

    // Felix's "log": counted, then the policy continues at next_step.
    @id(0x01000030)
    action rule_log(rule_id_t rule_id, step_id_t next_step) {
        meta.pol.result = RULE_NEXT;
        meta.pol.rule_id = rule_id;
        meta.pol.next_step = next_step;
    }

    // Continue at next_step: the next set of a multi-set rule, or skipping a
    // rule whose negated match hit.  Not counted.
    @id(0x01000031)
    action rule_goto(step_id_t next_step) {
        meta.pol.result = RULE_NEXT;
        meta.pol.rule_id = 0;
        meta.pol.next_step = next_step;
    }

    @id(0x01000032)
    action rule_no_match() {
        meta.pol.result = RULE_NO_MATCH;
        meta.pol.rule_id = 0;
    }

    @id(0x02000020)
    table policy_rule {
        key = {
            meta.pol.step       : exact    @name("step_id");
            meta.pol.set_hit    : optional @name("set_hit");
            meta.flow.ip_ver    : optional @name("ip_version");
            meta.flow.proto     : ternary  @name("protocol");
            meta.pol.sport      : range    @name("src_port");
            meta.pol.dport      : range    @name("dst_port");
            meta.flow.icmp_type : ternary  @name("icmp_type");
            meta.flow.icmp_code : ternary  @name("icmp_code");
        }
        actions = {
            @tableonly rule_allow;
            @tableonly rule_deny;
            @tableonly rule_pass;
            @tableonly rule_log;
            @tableonly rule_goto;
            @defaultonly rule_no_match;
        }
        const default_action = rule_no_match;
        size = 98304;
    }

    // Per-rule hit counts (direct counters are not allowed on the wildcard
    // policy_rule table in DPDK, hence this exact table).
    @id(0x01000033)
    action count_rule() {
        policy_rule_counter.count();
    }

    @id(0x02000021)
    table policy_rule_stats {
        key = {
            meta.pol.rule_id : exact @name("rule_id");
        }
        actions = {
            count_rule;
        }
        const default_action = count_rule;
        size = 49152;
        pna_direct_counter = policy_rule_counter;
    }

    /* ---------------------------------------------------------------- */
    /* Apply                                                             */
    /* ---------------------------------------------------------------- */

    apply {
        /* ============================================================ */
        /* Pass 0: classification                                        */
        /* ============================================================ */
        if (istd.pass == (PassNumber_t) 0) {
            meta.phase = PHASE_LOOKUP;
            meta.fate = FATE_PENDING;
            meta.drop_reason = DROP_NONE;
            meta.passes = 0;

            meta.flow.ip_ver = 0;
            meta.flow.src4 = 0;
            meta.flow.dst4 = 0;
            meta.flow.src6 = 0;
            meta.flow.dst6 = 0;
            meta.flow.proto = 0;
            meta.flow.sport = 0;
            meta.flow.dport = 0;
            meta.flow.has_ports = 0;
            meta.flow.icmp_type = 0;
            meta.flow.icmp_code = 0;
            meta.flow.icmp_error = 0;
            meta.flow.icmp_peer_type = 0;
            meta.flow.trackable = 0;
            meta.flow.tcp_flags = 0;

            meta.src.port = (PortIdUint_t) istd.input_port;
            meta.src.endpoint = 0;
            meta.src.kind = EP_KIND_NONE;
            meta.src.flags = 0;
            meta.src.peer_port = 0;
            meta.src.tunnel_type = TUNNEL_NONE;
            meta.src.decap = 0;
            meta.src.spoofed = 0;
            meta.src.host_origin = 0;

            meta.dst.addr4 = 0;
            meta.dst.addr6 = 0;
            meta.dst.routed = 0;
            meta.dst.nexthop = 0;
            meta.dst.route_flags = 0;
            meta.dst.kind = EP_KIND_NONE;
            meta.dst.endpoint = 0;
            meta.dst.flags = 0;
            meta.dst.port = 0;
            meta.dst.encap = ENCAP_NONE;
            meta.dst.decrement_ttl = 0;

            meta.ct.state = CT_NEW;
            meta.ct.hit_orig = 0;
            meta.ct.hit_reply = 0;
            meta.ct.v_nat = 0;
            meta.ct.learning = 0;

            meta.svc.hit = 0;
            meta.svc.reject = 0;
            meta.svc.from_affinity = 0;
            meta.svc.flags = 0;
            meta.svc.addr4 = 0;
            meta.svc.addr6 = 0;
            meta.svc.port = 0;

            meta.nat.flags = 0;
            meta.nat.src4 = 0;
            meta.nat.src6 = 0;
            meta.nat.sport = 0;
            meta.nat.dst4 = 0;
            meta.nat.dst6 = 0;
            meta.nat.dport = 0;
            meta.nat.masquerade = 0;
            meta.nat.nat_outgoing = 0;
            meta.nat.snat_ok = 0;

            meta.pol.check = CHECK_NONE;
            meta.pol.state = WALK_START;
            meta.pol.verdict = VERDICT_NONE;
            meta.pol.broken = 0;
            meta.pol.accepted = 0;
            meta.pol.untracked = 0;

            if (istd.parser_error != error.NoError) {
                meta.fate = FATE_DROP;
                meta.drop_reason = DROP_PARSE_ERROR;
            } else {
                port_endpoint.apply();
                if (meta.src.kind == EP_KIND_NONE) {
                    meta.fate = FATE_DROP;
                    meta.drop_reason = DROP_UNKNOWN_PORT;
                }
            }

            // ---- link-local traffic: ARP, ND, multicast/broadcast frames
            if (meta.fate == FATE_PENDING) {
                if (hdr.arp.isValid()) {
                    if (hdr.arp.oper == ARP_OPER_REQUEST && hdr.arp.hw_type == ARP_HTYPE_ETHERNET
                        && hdr.arp.proto_type == ETHERTYPE_IPV4) {
                        arp_responder.apply();
                    }
                } else if (hdr.icmpv6.isValid() && hdr.icmpv6.type == ICMP6_ND_NS
                           && hdr.nd_option.isValid() && hdr.nd_option.type == ND_OPT_SOURCE_LLADDR
                           && hdr.ipv6.hop_limit == 255) {
                    nd_responder.apply();
                    if (meta.fate == FATE_REPLY) {
                        // ICMPv6 checksum of the advertisement (pseudo-header
                        // + 32-byte message; the packet has no other payload).
                        ck.clear();
                        ck.add({ hdr.ipv6.src_addr, hdr.ipv6.dst_addr,
                                 16w0, hdr.ipv6.payload_len, 24w0, IPPROTO_ICMPV6,
                                 hdr.icmpv6.type, hdr.icmpv6.code, hdr.icmpv6.ident, hdr.icmpv6.seq,
                                 hdr.nd_target.target_addr,
                                 hdr.nd_option.type, hdr.nd_option.length, hdr.nd_option.ll_addr });
                        hdr.icmpv6.checksum = ck.get();
                    }
                }
                if (meta.fate == FATE_PENDING) {
                    bool link_local = hdr.arp.isValid()
                        || (!hdr.ipv4.isValid() && !hdr.ipv6.isValid())
                        || (hdr.ethernet.dst_addr & 48w0x010000000000) != 0   // I/G bit
                        || (hdr.icmpv6.isValid() && hdr.icmpv6.type >= 133 && hdr.icmpv6.type <= 137);
                    if (link_local) {
                        // Host <-> uplink link-local traffic is bridged; a
                        // workload only talks to its gateway at this level.
                        if ((meta.src.kind == EP_KIND_HOST || meta.src.kind == EP_KIND_UPLINK)
                            && meta.src.peer_port != 0) {
                            meta.fate = FATE_BRIDGE;
                        } else {
                            meta.fate = FATE_DROP;
                            meta.drop_reason = DROP_UNSUPPORTED;
                        }
                    }
                }
            }

            // ---- tunnel termination (VXLAN / IP-in-IP from the uplink)
            if (meta.fate == FATE_PENDING
                && (meta.src.kind == EP_KIND_UPLINK || meta.src.kind == EP_KIND_TUNNEL)) {
                if (hdr.vxlan.isValid()) {
                    meta.src.tunnel_type = TUNNEL_VXLAN;
                } else if (hdr.inner_ipv4.isValid()) {
                    meta.src.tunnel_type = TUNNEL_IPIP;
                }
                if (meta.src.tunnel_type != TUNNEL_NONE) {
                    if (hdr.ipv4.isValid()) {
                        tunnel_term_v4.apply();
                    } else {
                        tunnel_term_v6.apply();
                    }
                }
                if (meta.src.decap == 1) {
                    // The inner packet becomes the packet.  IP-in-IP keeps
                    // the outer Ethernet header (rewritten on output).
                    if (hdr.vxlan.isValid()) {
                        hdr.ethernet = hdr.inner_ethernet;
                    } else {
                        hdr.ethernet.ether_type = ETHERTYPE_IPV4;
                    }
                    hdr.vlan.setInvalid();
                    hdr.ipv4_options.setInvalid();
                    hdr.ipv4 = hdr.inner_ipv4;
                    hdr.ipv6 = hdr.inner_ipv6;
                    hdr.tcp = hdr.inner_tcp;
                    hdr.udp = hdr.inner_udp;
                    hdr.sctp = hdr.inner_sctp;
                    hdr.icmp = hdr.inner_icmp;
                    hdr.icmpv6 = hdr.inner_icmpv6;
                    hdr.vxlan.setInvalid();
                    hdr.inner_ethernet.setInvalid();
                    hdr.inner_ipv4.setInvalid();
                    hdr.inner_ipv6.setInvalid();
                    hdr.inner_tcp.setInvalid();
                    hdr.inner_udp.setInvalid();
                    hdr.inner_sctp.setInvalid();
                    hdr.inner_icmp.setInvalid();
                    hdr.inner_icmpv6.setInvalid();
                }
            }

            // ---- the flow
            if (meta.fate == FATE_PENDING) {
                if (hdr.ipv4.isValid()) {
                    meta.flow.ip_ver = 4;
                    meta.flow.src4 = hdr.ipv4.src_addr;
                    meta.flow.dst4 = hdr.ipv4.dst_addr;
                    meta.flow.proto = hdr.ipv4.protocol;
                } else if (hdr.ipv6.isValid()) {
                    meta.flow.ip_ver = 6;
                    meta.flow.src6 = hdr.ipv6.src_addr;
                    meta.flow.dst6 = hdr.ipv6.dst_addr;
                    meta.flow.proto = hdr.ipv6.next_hdr;
                }
                if (hdr.tcp.isValid()) {
                    meta.flow.sport = hdr.tcp.src_port;
                    meta.flow.dport = hdr.tcp.dst_port;
                    meta.flow.tcp_flags = hdr.tcp.flags;
                    meta.flow.has_ports = 1;
                } else if (hdr.udp.isValid()) {
                    meta.flow.sport = hdr.udp.src_port;
                    meta.flow.dport = hdr.udp.dst_port;
                    meta.flow.has_ports = 1;
                } else if (hdr.sctp.isValid()) {
                    meta.flow.sport = hdr.sctp.src_port;
                    meta.flow.dport = hdr.sctp.dst_port;
                    meta.flow.has_ports = 1;
                }
                if (meta.flow.ip_ver != 0) {
                    meta.flow.trackable = 1;
                }
                // ICMP: queries and replies carry an identifier (both
                // "ports" of the conntrack key); only a query starts a
                // tracked flow, whose replies have the counterpart type.
                if (hdr.icmp.isValid()) {
                    meta.flow.icmp_type = hdr.icmp.type;
                    meta.flow.icmp_code = hdr.icmp.code;
                    meta.flow.icmp_peer_type = icmp_counterpart(IPPROTO_ICMP, hdr.icmp.type);
                    meta.flow.trackable = 0;
                    if (meta.flow.icmp_peer_type != ICMP_TYPE_NONE) {
                        meta.flow.sport = hdr.icmp.ident;
                        meta.flow.dport = hdr.icmp.ident;
                        if (hdr.icmp.type == ICMP_ECHO_REQUEST || hdr.icmp.type == ICMP_TIMESTAMP
                            || hdr.icmp.type == ICMP_INFO_REQUEST || hdr.icmp.type == ICMP_ADDRESS) {
                            meta.flow.trackable = 1;
                        }
                    }
                    if (hdr.icmp_err_l4.isValid()) {
                        meta.flow.icmp_error = 1;
                    }
                } else if (hdr.icmpv6.isValid()) {
                    meta.flow.icmp_type = hdr.icmpv6.type;
                    meta.flow.icmp_code = hdr.icmpv6.code;
                    meta.flow.icmp_peer_type = icmp_counterpart(IPPROTO_ICMPV6, hdr.icmpv6.type);
                    meta.flow.trackable = 0;
                    if (meta.flow.icmp_peer_type != ICMP_TYPE_NONE) {
                        meta.flow.sport = hdr.icmpv6.ident;
                        meta.flow.dport = hdr.icmpv6.ident;
                        if (hdr.icmpv6.type == ICMP6_ECHO_REQUEST || hdr.icmpv6.type == ICMP6_NI_QUERY) {
                            meta.flow.trackable = 1;
                        }
                    }
                    if (hdr.icmp_err_l4.isValid()) {
                        meta.flow.icmp_error = 1;
                    }
                }
                if (meta.flow.ip_ver == 0) {
                    meta.fate = FATE_DROP;
                    meta.drop_reason = DROP_UNSUPPORTED;
                }
            }

            // ---- anti-spoofing: a workload sends from its own addresses
            // or its allowed spoofed prefixes only.  The same table tells
            // the host's own traffic from traffic the host forwards: a
            // packet from the host port whose source is one of the node's
            // own addresses (an entry of the host endpoint) is the host's;
            // any other is forwarded (not dropped: checked as forwarded).
            if (meta.fate == FATE_PENDING
                && ((meta.src.flags & EP_FLAG_SOURCE_CHECK) != 0 || meta.src.kind == EP_KIND_HOST)) {
                if (meta.flow.ip_ver == 4) {
                    source_guard_v4.apply();
                } else {
                    source_guard_v6.apply();
                }
                if (meta.src.kind == EP_KIND_HOST) {
                    if (meta.src.spoofed == 0) {
                        meta.src.host_origin = 1;
                    }
                } else if (meta.src.spoofed == 1) {
                    meta.fate = FATE_DROP;
                    meta.drop_reason = DROP_SPOOFED_SOURCE;
                }
            }

            if (meta.fate != FATE_PENDING) {
                meta.phase = PHASE_DONE;
            }
        }

        /* ============================================================ */
        /* Conntrack, affinity, services: the lookup pass (pass 0) and   */
        /* the learning pass                                             */
        /* ============================================================ */
        // Every table of this program has exactly one apply site (p4c
        // backends reject a table applied at two places; the consistency
        // test enforces it).  The learner tables are therefore applied here
        // both to look up (PHASE_LOOKUP, pass 0) and to learn (PHASE_LEARN:
        // a pass of its own after the checks allowed a new flow; PNA's
        // add_entry adds the key that was just looked up, so learning needs
        // an apply at learning time).  The key fields are set per mode
        // before each apply.  The apply block has no loops, so every table
        // is applied at most once per pass.
        //
        //   lookup (pass 0)          learning pass
        //   ct_reply_*  own tuple    reversed translated tuple: learn on miss;
        //                            a hit on a masqueraded flow -> DROP_SNAT_CONFLICT
        //   ct_orig_*   own tuple,   own tuple: learn on miss
        //               if ct_reply missed
        //   affinity_*  new flows    flows whose service entry asked for
        //                            affinity and did not come from affinity
        //   service_*, nat_1to1_*    (lookup only)
        //
        // Lookup order reply-then-orig.  It gives the same result as
        // orig-then-reply for every tuple that is in at most one of the two
        // tables.  Learning does not put a tuple T in both from one flow's
        // packets: once a reply entry for T exists, a packet with tuple T
        // hits it and is established, so T is never learned as a new flow's
        // original tuple (a flow whose reversed tuple is its own tuple, same
        // address and port at both ends, puts it in both, untranslated: same
        // result).  Otherwise T reaches both tables only (a) by a race: flow G's
        // first packet (tuple T) was looked up before flow F, whose reply
        // tuple is T, was learned.  Untranslated, both entries carry no NAT
        // and CT_ORIG / CT_REPLY are used only as "established": same result.
        // F translated: T's packets are F's replies and now get F's un-NAT
        // (orig-first treated them as G, untranslated).  Or (b) by a clash:
        // learning compares G's reply tuple with ct_reply only, so a new flow
        // G whose reply tuple equals the original tuple T of a live
        // translated flow F is learned (F: client -> NodePort, DNATed; G:
        // host node-address:node-port -> that client), which Linux refuses
        // at confirm time.  T is then ambiguous either way: reply-first
        // resolves it to G's reply entry, orig-first resolved it to F's.
        // p4src/README.md, Limitations, has both cases.
        if (meta.phase == PHASE_LOOKUP || meta.phase == PHASE_LEARN) {
            meta.ct.learning = 0;
            if (meta.phase == PHASE_LEARN) {
                meta.ct.learning = 1;
            }
            meta.ct.hit_orig = 0;
            meta.ct.hit_reply = 0;

            if (meta.ct.learning == 0) {
                // ---- lookup key: the packet's tuple, or for an ICMP error
                // the reversed tuple of the packet it quotes.
                meta.ct.k_src4 = meta.flow.src4;
                meta.ct.k_dst4 = meta.flow.dst4;
                meta.ct.k_src6 = meta.flow.src6;
                meta.ct.k_dst6 = meta.flow.dst6;
                meta.ct.k_proto = meta.flow.proto;
                meta.ct.k_sport = meta.flow.sport;
                meta.ct.k_dport = meta.flow.dport;
                meta.ct.k_icmp_type = meta.flow.icmp_type;
                if (meta.flow.icmp_error == 1) {
                    if (hdr.icmp_err_ipv4.isValid()) {
                        meta.ct.k_src4 = hdr.icmp_err_ipv4.dst_addr;
                        meta.ct.k_dst4 = hdr.icmp_err_ipv4.src_addr;
                        meta.ct.k_proto = hdr.icmp_err_ipv4.protocol;
                    } else {
                        meta.ct.k_src6 = hdr.icmp_err_ipv6.dst_addr;
                        meta.ct.k_dst6 = hdr.icmp_err_ipv6.src_addr;
                        meta.ct.k_proto = hdr.icmp_err_ipv6.next_hdr;
                    }
                    meta.ct.k_icmp_type = 0;
                    if (meta.ct.k_proto == IPPROTO_ICMP || meta.ct.k_proto == IPPROTO_ICMPV6) {
                        // A quoted query or reply: its identifier, and the
                        // reversed tuple carries its counterpart type.
                        meta.ct.k_sport = hdr.icmp_err_l4.word2;
                        meta.ct.k_dport = hdr.icmp_err_l4.word2;
                        meta.ct.k_icmp_type = icmp_counterpart(meta.ct.k_proto, (bit<8>) (hdr.icmp_err_l4.word0 >> 8));
                    } else {
                        meta.ct.k_sport = hdr.icmp_err_l4.word1;
                        meta.ct.k_dport = hdr.icmp_err_l4.word0;
                    }
                }

                // Expiry: FIN/RST -> closing; TCP -> established (hits) or
                // handshake (learning a SYN); ICMP; others.  Kept in the
                // metadata for the learning pass.
                meta.ct.hit_profile = EXPIRE_OTHER;
                meta.ct.learn_profile = EXPIRE_OTHER;
                if (meta.flow.proto == IPPROTO_TCP) {
                    meta.ct.hit_profile = EXPIRE_TCP_ESTABLISHED;
                    if ((meta.flow.tcp_flags & TCP_FLAG_SYN) == 0) {
                        meta.ct.learn_profile = EXPIRE_TCP_ESTABLISHED;
                    }
                    if ((meta.flow.tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST)) != 0) {
                        meta.ct.hit_profile = EXPIRE_CLOSING;
                        meta.ct.learn_profile = EXPIRE_CLOSING;
                    }
                } else if (meta.flow.proto == IPPROTO_ICMP || meta.flow.proto == IPPROTO_ICMPV6) {
                    meta.ct.hit_profile = EXPIRE_ICMP;
                    meta.ct.learn_profile = EXPIRE_ICMP;
                }
            } else {
                // ---- the reply entry: keyed by the tuple replies will
                // carry (the translated tuple, reversed); its value undoes
                // the translation.
                learn_v4.nat = 0;
                learn_v4.src_addr = meta.flow.dst4;
                learn_v4.src_port = meta.flow.dport;
                learn_v4.dst_addr = meta.flow.src4;
                learn_v4.dst_port = meta.flow.sport;
                learn_v6.nat = 0;
                learn_v6.src_addr = meta.flow.dst6;
                learn_v6.src_port = meta.flow.dport;
                learn_v6.dst_addr = meta.flow.src6;
                learn_v6.dst_port = meta.flow.sport;
                if ((meta.nat.flags & NAT_REWRITE_DST) != 0) {
                    learn_v4.nat = learn_v4.nat | NAT_REWRITE_SRC;
                    learn_v6.nat = learn_v6.nat | NAT_REWRITE_SRC;
                }
                if ((meta.nat.flags & NAT_REWRITE_SRC) != 0) {
                    learn_v4.nat = learn_v4.nat | NAT_REWRITE_DST;
                    learn_v6.nat = learn_v6.nat | NAT_REWRITE_DST;
                }
                meta.ct.k_proto = meta.flow.proto;
                meta.ct.k_src4 = meta.flow.dst4;
                meta.ct.k_src6 = meta.flow.dst6;
                meta.ct.k_sport = meta.flow.dport;
                meta.ct.k_dst4 = meta.flow.src4;
                meta.ct.k_dst6 = meta.flow.src6;
                meta.ct.k_dport = meta.flow.sport;
                meta.ct.k_icmp_type = meta.flow.icmp_peer_type;   // an ICMP query's replies: the reply type
                if ((meta.nat.flags & NAT_REWRITE_DST) != 0) {
                    meta.ct.k_src4 = meta.nat.dst4;
                    meta.ct.k_src6 = meta.nat.dst6;
                    meta.ct.k_sport = meta.nat.dport;
                }
                if ((meta.nat.flags & NAT_REWRITE_SRC) != 0) {
                    meta.ct.k_dst4 = meta.nat.src4;
                    meta.ct.k_dst6 = meta.nat.src6;
                    meta.ct.k_dport = meta.nat.sport;
                }
            }

            // ---- ct_reply_*: the only apply site
            if (meta.flow.ip_ver == 4) {
                ct_reply_v4.apply();
            } else {
                ct_reply_v6.apply();
            }

            if (meta.ct.learning == 1 && meta.ct.hit_reply == 1
                && (meta.nat.flags & NAT_REWRITE_SRC) != 0) {
                // Another flow already owns the masqueraded tuple: nothing
                // more is learned.
                meta.fate = FATE_DROP;
                meta.drop_reason = DROP_SNAT_CONFLICT;
            }

            // ---- ct_orig_*: the only apply site.  Looked up when ct_reply
            // missed; learned (keyed by the packet's own tuple, its value
            // repeating the translation: pinned backend) unless the reply
            // tuple conflicted.
            if (meta.fate == FATE_PENDING && (meta.ct.learning == 1 || meta.ct.hit_reply == 0)) {
                if (meta.ct.learning == 1) {
                    learn_v4.nat = meta.nat.flags;
                    learn_v4.src_addr = meta.nat.src4;
                    learn_v4.src_port = meta.nat.sport;
                    learn_v4.dst_addr = meta.nat.dst4;
                    learn_v4.dst_port = meta.nat.dport;
                    learn_v6.nat = meta.nat.flags;
                    learn_v6.src_addr = meta.nat.src6;
                    learn_v6.src_port = meta.nat.sport;
                    learn_v6.dst_addr = meta.nat.dst6;
                    learn_v6.dst_port = meta.nat.dport;
                    meta.ct.k_src4 = meta.flow.src4;
                    meta.ct.k_dst4 = meta.flow.dst4;
                    meta.ct.k_src6 = meta.flow.src6;
                    meta.ct.k_dst6 = meta.flow.dst6;
                    meta.ct.k_sport = meta.flow.sport;
                    meta.ct.k_dport = meta.flow.dport;
                    meta.ct.k_icmp_type = meta.flow.icmp_type;
                }
                if (meta.flow.ip_ver == 4) {
                    ct_orig_v4.apply();
                } else {
                    ct_orig_v6.apply();
                }
            }

            // ---- the lookup's verdict: established / related
            if (meta.ct.learning == 0 && (meta.ct.hit_orig == 1 || meta.ct.hit_reply == 1)) {
                meta.ct.state = CT_ORIG;
                if (meta.ct.hit_reply == 1) {
                    meta.ct.state = CT_REPLY;
                }
                meta.nat.flags = meta.ct.v_nat;
                meta.nat.src4 = meta.ct.v_src4;
                meta.nat.src6 = meta.ct.v_src6;
                meta.nat.sport = meta.ct.v_sport;
                meta.nat.dst4 = meta.ct.v_dst4;
                meta.nat.dst6 = meta.ct.v_dst6;
                meta.nat.dport = meta.ct.v_dport;
                if (meta.flow.icmp_error == 1) {
                    // Related: only the outer destination address is
                    // translated (the quoted header is left as it is).
                    meta.ct.state = CT_RELATED;
                    meta.nat.flags = meta.nat.flags & NAT_REWRITE_DST;
                }
            }

            // ---- affinity_*: the only apply site.  Lookup: new flows (not
            // ICMP errors), before the service table; the key is the
            // packet's tuple (client, service address, protocol, service
            // port), already in meta.ct.k_*.  Learning: ClientIP affinity
            // remembers the backend the selector chose, under the same key
            // (meta.ct.k_* hold the packet's own tuple after ct_orig).
            if ((meta.ct.learning == 0 && meta.ct.state == CT_NEW && meta.flow.icmp_error == 0)
                || (meta.ct.learning == 1 && meta.fate == FATE_PENDING
                    && (meta.svc.flags & SVC_FLAG_AFFINITY) != 0 && meta.svc.from_affinity == 0)) {
                if (meta.ct.learning == 1) {
                    learn_affinity_v4.backend_addr = meta.nat.dst4;
                    learn_affinity_v4.backend_port = meta.nat.dport;
                    learn_affinity_v4.flags = meta.svc.flags;
                    learn_affinity_v6.backend_addr = meta.nat.dst6;
                    learn_affinity_v6.backend_port = meta.nat.dport;
                    learn_affinity_v6.flags = meta.svc.flags;
                }
                if (meta.flow.ip_ver == 4) {
                    affinity_v4.apply();
                } else {
                    affinity_v6.apply();
                }
            }

            if (meta.ct.learning == 0) {
                // ---- new flow: the service (unless affinity answered),
                // then 1:1 NAT
                if (meta.ct.state == CT_NEW && meta.flow.icmp_error == 0) {
                    if (meta.flow.ip_ver == 4) {
                        if (meta.svc.hit == 0) {
                            service_v4.apply();
                        }
                        if (meta.svc.hit == 0 && meta.svc.reject == 0) {
                            nat_1to1_v4.apply();
                        }
                    } else {
                        if (meta.svc.hit == 0) {
                            service_v6.apply();
                        }
                        if (meta.svc.hit == 0 && meta.svc.reject == 0) {
                            nat_1to1_v6.apply();
                        }
                    }
                    if (meta.svc.reject == 1) {
                        meta.fate = FATE_DROP;
                        meta.drop_reason = DROP_NO_SERVICE_BACKEND;
                        // ---- reject, as kube-proxy's REJECT (icmp-port-unreachable,
                        // icmp6-port-unreachable for every protocol, TCP included):
                        // the packet becomes an ICMP / ICMPv6 destination unreachable,
                        // port unreachable, back out the ingress port.  Built from
                        // parsed headers only: the error quotes the IP header and the
                        // first 8 bytes of the TCP/UDP/SCTP header; the outer IP length
                        // ends the packet there, so any bytes the deparser emits after
                        // it (the unparsed payload) are trailing padding that receivers
                        // trim (the checksums cover none of them).  Not for packets
                        // with IPv4 options (the quoted header would be incomplete),
                        // without an L4 header (fragments) or decapsulated from a
                        // tunnel (the ingress port leads to the remote node, not the
                        // client): those are still dropped.
                        if (meta.src.decap == 0 && !hdr.ipv4_options.isValid()
                            && (hdr.tcp.isValid() || hdr.udp.isValid() || hdr.sctp.isValid())) {
                            meta.fate = FATE_REPLY;
                            hdr.icmp_err_l4.setValid();
                            if (hdr.tcp.isValid()) {
                                hdr.icmp_err_l4.word0 = hdr.tcp.src_port;
                                hdr.icmp_err_l4.word1 = hdr.tcp.dst_port;
                                hdr.icmp_err_l4.word2 = (bit<16>) (hdr.tcp.seq_no >> 16);
                                hdr.icmp_err_l4.word3 = (bit<16>) hdr.tcp.seq_no;
                            } else if (hdr.udp.isValid()) {
                                hdr.icmp_err_l4.word0 = hdr.udp.src_port;
                                hdr.icmp_err_l4.word1 = hdr.udp.dst_port;
                                hdr.icmp_err_l4.word2 = hdr.udp.length;
                                hdr.icmp_err_l4.word3 = hdr.udp.checksum;
                            } else {
                                hdr.icmp_err_l4.word0 = hdr.sctp.src_port;
                                hdr.icmp_err_l4.word1 = hdr.sctp.dst_port;
                                hdr.icmp_err_l4.word2 = (bit<16>) (hdr.sctp.verification_tag >> 16);
                                hdr.icmp_err_l4.word3 = (bit<16>) hdr.sctp.verification_tag;
                            }
                            hdr.tcp.setInvalid();
                            hdr.udp.setInvalid();
                            hdr.sctp.setInvalid();
                            old_mac = hdr.ethernet.dst_addr;
                            hdr.ethernet.dst_addr = hdr.ethernet.src_addr;
                            hdr.ethernet.src_addr = old_mac;
                            if (hdr.ipv4.isValid()) {
                                hdr.icmp_err_ipv4 = hdr.ipv4;
                                quoted_w0 = ((bit<16>) hdr.ipv4.version << 12) | ((bit<16>) hdr.ipv4.ihl << 8)
                                    | ((bit<16>) hdr.ipv4.dscp << 2) | (bit<16>) hdr.ipv4.ecn;
                                quoted_w1 = ((bit<16>) hdr.ipv4.flags << 13) | (bit<16>) hdr.ipv4.frag_offset;
                                old_src4 = hdr.ipv4.src_addr;
                                hdr.ipv4.src_addr = hdr.ipv4.dst_addr;
                                hdr.ipv4.dst_addr = old_src4;
                                hdr.ipv4.dscp = 0;
                                hdr.ipv4.ecn = 0;
                                hdr.ipv4.total_len = 56;   // IPv4 20 + ICMP 8 + quoted 20 + 8
                                hdr.ipv4.identification = 0;
                                hdr.ipv4.flags = 0;
                                hdr.ipv4.frag_offset = 0;
                                hdr.ipv4.ttl = DEFAULT_TTL;
                                hdr.ipv4.protocol = IPPROTO_ICMP;
                                ck.clear();
                                // version 4, ihl 5, dscp/ecn 0; flags/fragment 0
                                ck.add({ 16w0x4500, hdr.ipv4.total_len, hdr.ipv4.identification, 16w0,
                                         hdr.ipv4.ttl, hdr.ipv4.protocol,
                                         hdr.ipv4.src_addr, hdr.ipv4.dst_addr });
                                hdr.ipv4.hdr_checksum = ck.get();
                                hdr.icmp.setValid();
                                hdr.icmp.type = ICMP_DEST_UNREACH;
                                hdr.icmp.code = ICMP_PORT_UNREACH;
                                hdr.icmp.ident = 0;
                                hdr.icmp.seq = 0;
                                ck.clear();
                                ck.add({ hdr.icmp.type, hdr.icmp.code, hdr.icmp.ident, hdr.icmp.seq,
                                         quoted_w0, hdr.icmp_err_ipv4.total_len,
                                         hdr.icmp_err_ipv4.identification, quoted_w1,
                                         hdr.icmp_err_ipv4.ttl, hdr.icmp_err_ipv4.protocol,
                                         hdr.icmp_err_ipv4.hdr_checksum,
                                         hdr.icmp_err_ipv4.src_addr, hdr.icmp_err_ipv4.dst_addr,
                                         hdr.icmp_err_l4.word0, hdr.icmp_err_l4.word1,
                                         hdr.icmp_err_l4.word2, hdr.icmp_err_l4.word3 });
                                hdr.icmp.checksum = ck.get();
                            } else {
                                hdr.icmp_err_ipv6 = hdr.ipv6;
                                quoted_v6w0 = ((bit<32>) hdr.ipv6.version << 28)
                                    | ((bit<32>) hdr.ipv6.traffic_class << 20) | (bit<32>) hdr.ipv6.flow_label;
                                old_src6 = hdr.ipv6.src_addr;
                                hdr.ipv6.src_addr = hdr.ipv6.dst_addr;
                                hdr.ipv6.dst_addr = old_src6;
                                hdr.ipv6.traffic_class = 0;
                                hdr.ipv6.flow_label = 0;
                                hdr.ipv6.payload_len = 56;   // ICMPv6 8 + quoted 40 + 8
                                hdr.ipv6.next_hdr = IPPROTO_ICMPV6;
                                hdr.ipv6.hop_limit = DEFAULT_TTL;
                                hdr.icmpv6.setValid();
                                hdr.icmpv6.type = ICMP6_DEST_UNREACH;
                                hdr.icmpv6.code = ICMP6_PORT_UNREACH;
                                hdr.icmpv6.ident = 0;
                                hdr.icmpv6.seq = 0;
                                ck.clear();
                                ck.add({ hdr.ipv6.src_addr, hdr.ipv6.dst_addr,
                                         16w0, hdr.ipv6.payload_len, 24w0, IPPROTO_ICMPV6,
                                         hdr.icmpv6.type, hdr.icmpv6.code, hdr.icmpv6.ident, hdr.icmpv6.seq,
                                         quoted_v6w0, hdr.icmp_err_ipv6.payload_len,
                                         hdr.icmp_err_ipv6.next_hdr, hdr.icmp_err_ipv6.hop_limit,
                                         hdr.icmp_err_ipv6.src_addr, hdr.icmp_err_ipv6.dst_addr,
                                         hdr.icmp_err_l4.word0, hdr.icmp_err_l4.word1,
                                         hdr.icmp_err_l4.word2, hdr.icmp_err_l4.word3 });
                                hdr.icmpv6.checksum = ck.get();
                            }
                        }
                    } else if (meta.svc.hit == 1) {
                        meta.nat.flags = NAT_REWRITE_DST;
                        meta.nat.dst4 = meta.svc.addr4;
                        meta.nat.dst6 = meta.svc.addr6;
                        meta.nat.dport = meta.flow.dport;
                        if (meta.svc.port != 0 && meta.flow.has_ports == 1) {
                            meta.nat.dport = meta.svc.port;
                        }
                        if ((meta.svc.flags & SVC_FLAG_MASQUERADE) != 0) {
                            meta.nat.masquerade = 1;
                        }
                    }
                }
            } else {
                // ---- end of the learning pass: forward (unless the reply
                // tuple conflicted)
                if (meta.fate == FATE_PENDING) {
                    meta.fate = FATE_FORWARD;
                }
                meta.ct.learning = 0;
                meta.phase = PHASE_DONE;
            }
        }

        /* ============================================================ */
        /* Pass 0: routing, masquerade, check planning                   */
        /* ============================================================ */
        if (meta.phase == PHASE_LOOKUP) {
            // ---- routing on the destination after DNAT
            if (meta.fate == FATE_PENDING) {
                meta.dst.addr4 = meta.flow.dst4;
                meta.dst.addr6 = meta.flow.dst6;
                if ((meta.nat.flags & NAT_REWRITE_DST) != 0) {
                    meta.dst.addr4 = meta.nat.dst4;
                    meta.dst.addr6 = meta.nat.dst6;
                }
                if (meta.flow.ip_ver == 4) {
                    route_v4.apply();
                } else {
                    route_v6.apply();
                }
                if (meta.dst.routed == 1) {
                    nexthop.apply();
                }
                if (meta.dst.kind == EP_KIND_NONE) {
                    meta.fate = FATE_DROP;
                    meta.drop_reason = DROP_NO_ROUTE;
                }
            }

            // ---- masquerade (new flows): natOutgoing pools towards
            // destinations outside every pool, and services that ask for it.
            if (meta.fate == FATE_PENDING && meta.ct.state == CT_NEW) {
                if ((meta.dst.route_flags & ROUTE_FLAG_NAT_OUTGOING) != 0) {
                    if (meta.flow.ip_ver == 4) {
                        nat_outgoing_v4.apply();
                    } else {
                        nat_outgoing_v6.apply();
                    }
                    if (meta.nat.nat_outgoing == 1) {
                        meta.nat.masquerade = 1;
                    }
                }
                if (meta.nat.masquerade == 1) {
                    if (meta.flow.ip_ver == 4) {
                        snat_address_v4.apply();
                    } else {
                        snat_address_v6.apply();
                    }
                    if (meta.nat.snat_ok == 1) {
                        meta.nat.flags = meta.nat.flags | NAT_REWRITE_SRC;
                        meta.nat.sport = meta.flow.sport;   // source port kept
                    }
                }
            }

            // ---- which checks apply
            if (meta.fate == FATE_PENDING) {
                plan_next_check(meta);
                if (meta.pol.check != CHECK_END) {
                    meta.phase = PHASE_POLICY;
                } else if (meta.ct.state == CT_NEW && meta.flow.trackable == 1) {
                    meta.phase = PHASE_LEARN;
                } else {
                    meta.fate = FATE_FORWARD;
                    meta.phase = PHASE_DONE;
                }
            } else {
                meta.phase = PHASE_DONE;
            }
        }

        /* ============================================================ */
        /* Policy walk: one unit per pass                                */
        /* ============================================================ */
        if (meta.phase == PHASE_POLICY) {
            if (meta.pol.state == WALK_START) {
                endpoint_policy.apply();
            }
            if (meta.pol.state == WALK_LIST) {
                policy_list.apply();
            }
            if (meta.pol.state == WALK_STEP) {
                meta.pol.set_hit = 0;
                meta.pol.rule_id = 0;
                meta.pol.lookup = LOOKUP_NONE;
                policy_step.apply();
            }
            if (meta.pol.state == WALK_STEP) {
                meta.pol.addr4 = meta.pol.src4;
                meta.pol.addr6 = meta.pol.src6;
                meta.pol.port = meta.pol.sport;
                if (meta.pol.lookup == LOOKUP_NET_DST || meta.pol.lookup == LOOKUP_PORT_DST) {
                    meta.pol.addr4 = meta.pol.dst4;
                    meta.pol.addr6 = meta.pol.dst6;
                    meta.pol.port = meta.pol.dport;
                }
                if (meta.pol.lookup == LOOKUP_NET_SRC || meta.pol.lookup == LOOKUP_NET_DST) {
                    if (meta.flow.ip_ver == 4) {
                        ipset_net_v4.apply();
                    } else {
                        ipset_net_v6.apply();
                    }
                } else if (meta.pol.lookup == LOOKUP_PORT_SRC || meta.pol.lookup == LOOKUP_PORT_DST) {
                    if (meta.flow.ip_ver == 4) {
                        ipset_port_v4.apply();
                    } else {
                        ipset_port_v6.apply();
                    }
                }
                policy_rule.apply();
                if (meta.pol.rule_id != 0) {
                    policy_rule_stats.apply();
                }
                if (meta.pol.result == RULE_ALLOW) {
                    meta.pol.verdict = VERDICT_ALLOW;
                    meta.pol.state = WALK_DONE;
                } else if (meta.pol.result == RULE_DENY) {
                    meta.pol.verdict = VERDICT_DENY;
                    meta.pol.state = WALK_DONE;
                } else if (meta.pol.result == RULE_PASS) {
                    meta.pol.pos = meta.pol.tier_next;
                    meta.pol.state = WALK_LIST;
                } else if (meta.pol.result == RULE_NEXT) {
                    meta.pol.step = meta.pol.next_step;
                } else if (meta.pol.miss_step != 0) {
                    meta.pol.step = meta.pol.miss_step;
                } else {
                    // The policy did not match: next position of the list.
                    meta.pol.pos = meta.pol.pos + 1;
                    meta.pol.state = WALK_LIST;
                }
            }
            if (meta.pol.state == WALK_DONE) {
                if (meta.pol.verdict == VERDICT_DENY) {
                    meta.fate = FATE_DROP;
                    meta.drop_reason = DROP_POLICY_DENY;
                    if (meta.pol.broken == 1) {
                        meta.drop_reason = DROP_POLICY_PROGRAM;
                    }
                    meta.phase = PHASE_DONE;
                } else {
                    // An untracked or pre-DNAT allow: Felix's accept mark.
                    if (meta.pol.verdict == VERDICT_ALLOW && (meta.pol.check == CHECK_UNTRACKED_IN
                            || meta.pol.check == CHECK_UNTRACKED_OUT || meta.pol.check == CHECK_PREDNAT)) {
                        meta.pol.accepted = 1;
                        if (meta.pol.check != CHECK_PREDNAT) {
                            meta.pol.untracked = 1;
                        }
                    }
                    plan_next_check(meta);
                    if (meta.pol.check == CHECK_END) {
                        if (meta.ct.state == CT_NEW && meta.flow.trackable == 1 && meta.pol.untracked == 0) {
                            meta.phase = PHASE_LEARN;
                        } else {
                            meta.fate = FATE_FORWARD;
                            meta.phase = PHASE_DONE;
                        }
                    }
                }
            }
        }

        /* ============================================================ */
        /* Pass budget                                                   */
        /* ============================================================ */
        // Only the policy walk can loop.  The learning pass (one bounded
        // pass after the walk ended) is not counted against the budget, so
        // the budget allows the same walks as when learning shared the
        // walk's last pass.
        if (meta.phase == PHASE_POLICY && meta.passes >= PASS_BUDGET) {
            meta.fate = FATE_DROP;
            meta.drop_reason = DROP_PASS_BUDGET;
            meta.phase = PHASE_DONE;
        }

        /* ============================================================ */
        /* Last pass: TTL, NAT, MACs, encapsulation, send                */
        /* ============================================================ */
        if (meta.phase == PHASE_DONE) {
            if (meta.fate == FATE_FORWARD && meta.dst.decrement_ttl == 1
                && meta.src.kind != EP_KIND_HOST) {
                if (hdr.ipv4.isValid() && hdr.ipv4.ttl <= 1) {
                    meta.fate = FATE_DROP;
                    meta.drop_reason = DROP_TTL_EXPIRED;
                } else if (hdr.ipv6.isValid() && hdr.ipv6.hop_limit <= 1) {
                    meta.fate = FATE_DROP;
                    meta.drop_reason = DROP_TTL_EXPIRED;
                }
            }
            if (meta.fate == FATE_FORWARD && meta.dst.encap == ENCAP_IPIP && !hdr.ipv4.isValid()) {
                meta.fate = FATE_DROP;
                meta.drop_reason = DROP_NO_ROUTE;
            }

            if (meta.fate == FATE_FORWARD) {
                // ---- IPv4: TTL and NAT, checksums updated incrementally
                // (RFC 1624), so IPv4 options are covered.
                if (hdr.ipv4.isValid()) {
                    old_src4 = hdr.ipv4.src_addr;
                    old_dst4 = hdr.ipv4.dst_addr;
                    old_ttl_proto = ((bit<16>) hdr.ipv4.ttl << 8) | (bit<16>) hdr.ipv4.protocol;
                    if (meta.dst.decrement_ttl == 1 && meta.src.kind != EP_KIND_HOST) {
                        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
                    }
                    if ((meta.nat.flags & NAT_REWRITE_SRC) != 0) {
                        hdr.ipv4.src_addr = meta.nat.src4;
                    }
                    if ((meta.nat.flags & NAT_REWRITE_DST) != 0) {
                        hdr.ipv4.dst_addr = meta.nat.dst4;
                    }
                    ck.clear();
                    ck.set_state(~hdr.ipv4.hdr_checksum);
                    ck.subtract({ old_ttl_proto, old_src4, old_dst4 });
                    ck.add({ hdr.ipv4.ttl, hdr.ipv4.protocol, hdr.ipv4.src_addr, hdr.ipv4.dst_addr });
                    hdr.ipv4.hdr_checksum = ck.get();
                }
                // ---- IPv6: hop limit and NAT
                if (hdr.ipv6.isValid()) {
                    old_src6 = hdr.ipv6.src_addr;
                    old_dst6 = hdr.ipv6.dst_addr;
                    if (meta.dst.decrement_ttl == 1 && meta.src.kind != EP_KIND_HOST) {
                        hdr.ipv6.hop_limit = hdr.ipv6.hop_limit - 1;
                    }
                    if ((meta.nat.flags & NAT_REWRITE_SRC) != 0) {
                        hdr.ipv6.src_addr = meta.nat.src6;
                    }
                    if ((meta.nat.flags & NAT_REWRITE_DST) != 0) {
                        hdr.ipv6.dst_addr = meta.nat.dst6;
                    }
                }
                // ---- L4 ports and checksums (pseudo-header addresses)
                if (meta.nat.flags != 0) {
                    old_sport = meta.flow.sport;
                    old_dport = meta.flow.dport;
                    if (meta.flow.icmp_error == 0 && meta.flow.has_ports == 1) {
                        if (hdr.tcp.isValid()) {
                            if ((meta.nat.flags & NAT_REWRITE_SRC) != 0) { hdr.tcp.src_port = meta.nat.sport; }
                            if ((meta.nat.flags & NAT_REWRITE_DST) != 0) { hdr.tcp.dst_port = meta.nat.dport; }
                        } else if (hdr.udp.isValid()) {
                            if ((meta.nat.flags & NAT_REWRITE_SRC) != 0) { hdr.udp.src_port = meta.nat.sport; }
                            if ((meta.nat.flags & NAT_REWRITE_DST) != 0) { hdr.udp.dst_port = meta.nat.dport; }
                        } else if (hdr.sctp.isValid()) {
                            if ((meta.nat.flags & NAT_REWRITE_SRC) != 0) { hdr.sctp.src_port = meta.nat.sport; }
                            if ((meta.nat.flags & NAT_REWRITE_DST) != 0) { hdr.sctp.dst_port = meta.nat.dport; }
                        }
                    }
                    if (hdr.tcp.isValid()) {
                        ck.clear();
                        ck.set_state(~hdr.tcp.checksum);
                        if (hdr.ipv4.isValid()) {
                            ck.subtract({ old_src4, old_dst4 });
                            ck.add({ hdr.ipv4.src_addr, hdr.ipv4.dst_addr });
                        } else {
                            ck.subtract({ old_src6, old_dst6 });
                            ck.add({ hdr.ipv6.src_addr, hdr.ipv6.dst_addr });
                        }
                        ck.subtract({ old_sport, old_dport });
                        ck.add({ hdr.tcp.src_port, hdr.tcp.dst_port });
                        hdr.tcp.checksum = ck.get();
                    } else if (hdr.udp.isValid() && (hdr.udp.checksum != 0 || hdr.ipv6.isValid())) {
                        ck.clear();
                        ck.set_state(~hdr.udp.checksum);
                        if (hdr.ipv4.isValid()) {
                            ck.subtract({ old_src4, old_dst4 });
                            ck.add({ hdr.ipv4.src_addr, hdr.ipv4.dst_addr });
                        } else {
                            ck.subtract({ old_src6, old_dst6 });
                            ck.add({ hdr.ipv6.src_addr, hdr.ipv6.dst_addr });
                        }
                        ck.subtract({ old_sport, old_dport });
                        ck.add({ hdr.udp.src_port, hdr.udp.dst_port });
                        hdr.udp.checksum = ck.get();
                        if (hdr.udp.checksum == 0) {
                            hdr.udp.checksum = 0xffff;
                        }
                    } else if (hdr.icmpv6.isValid()) {
                        // ICMPv6 covers the pseudo-header; ICMPv4 does not.
                        ck.clear();
                        ck.set_state(~hdr.icmpv6.checksum);
                        ck.subtract({ old_src6, old_dst6 });
                        ck.add({ hdr.ipv6.src_addr, hdr.ipv6.dst_addr });
                        hdr.icmpv6.checksum = ck.get();
                    }
                    // SCTP's CRC32c covers the payload and is not updated.
                }

                // ---- L2: drop any VLAN tag, set the next hop's MACs
                if (hdr.vlan.isValid()) {
                    hdr.ethernet.ether_type = hdr.vlan.ether_type;
                    hdr.vlan.setInvalid();
                }
                hdr.ethernet.dst_addr = meta.dst.dmac;
                hdr.ethernet.src_addr = meta.dst.smac;

                // ---- encapsulation
                l3_len = 0;
                if (hdr.ipv4.isValid()) {
                    l3_len = hdr.ipv4.total_len;
                } else if (hdr.ipv6.isValid()) {
                    l3_len = hdr.ipv6.payload_len + 40;
                }
                if (meta.dst.encap == ENCAP_VXLAN_V4 || meta.dst.encap == ENCAP_VXLAN_V6) {
                    hdr.ethernet.dst_addr = meta.dst.inner_dmac;
                    hdr.ethernet.src_addr = meta.dst.inner_smac;
                    hdr.encap_ethernet.setValid();
                    hdr.encap_ethernet.dst_addr = meta.dst.dmac;
                    hdr.encap_ethernet.src_addr = meta.dst.smac;
                    hdr.encap_vxlan.setValid();
                    hdr.encap_vxlan.flags = VXLAN_FLAGS;
                    hdr.encap_vxlan.reserved = 0;
                    hdr.encap_vxlan.vni = meta.dst.vni;
                    hdr.encap_vxlan.reserved2 = 0;
                    hdr.encap_udp.setValid();
                    hdr.encap_udp.src_port = 16w0xc000 | ((meta.flow.sport ^ meta.flow.dport) & 16w0x3fff);
                    hdr.encap_udp.dst_port = meta.dst.vxlan_port;
                    hdr.encap_udp.length = l3_len + 30;   // UDP 8 + VXLAN 8 + Ethernet 14
                    hdr.encap_udp.checksum = 0;
                    if (meta.dst.encap == ENCAP_VXLAN_V4) {
                        hdr.encap_ethernet.ether_type = ETHERTYPE_IPV4;
                        hdr.encap_ipv4.setValid();
                        hdr.encap_ipv4.version = 4;
                        hdr.encap_ipv4.ihl = 5;
                        hdr.encap_ipv4.dscp = 0;
                        hdr.encap_ipv4.ecn = 0;
                        hdr.encap_ipv4.total_len = l3_len + 50;
                        hdr.encap_ipv4.identification = 0;
                        hdr.encap_ipv4.flags = 0;
                        hdr.encap_ipv4.frag_offset = 0;
                        hdr.encap_ipv4.ttl = DEFAULT_TTL;
                        hdr.encap_ipv4.protocol = IPPROTO_UDP;
                        hdr.encap_ipv4.src_addr = meta.dst.outer_src4;
                        hdr.encap_ipv4.dst_addr = meta.dst.outer_dst4;
                    } else {
                        hdr.encap_ethernet.ether_type = ETHERTYPE_IPV6;
                        hdr.encap_ipv6.setValid();
                        hdr.encap_ipv6.version = 6;
                        hdr.encap_ipv6.traffic_class = 0;
                        hdr.encap_ipv6.flow_label = 0;
                        hdr.encap_ipv6.payload_len = l3_len + 30;
                        hdr.encap_ipv6.next_hdr = IPPROTO_UDP;
                        hdr.encap_ipv6.hop_limit = DEFAULT_TTL;
                        hdr.encap_ipv6.src_addr = meta.dst.outer_src6;
                        hdr.encap_ipv6.dst_addr = meta.dst.outer_dst6;
                    }
                } else if (meta.dst.encap == ENCAP_IPIP) {
                    hdr.encap_ethernet.setValid();
                    hdr.encap_ethernet.dst_addr = meta.dst.dmac;
                    hdr.encap_ethernet.src_addr = meta.dst.smac;
                    hdr.encap_ethernet.ether_type = ETHERTYPE_IPV4;
                    hdr.ethernet.setInvalid();
                    hdr.encap_ipv4.setValid();
                    hdr.encap_ipv4.version = 4;
                    hdr.encap_ipv4.ihl = 5;
                    hdr.encap_ipv4.dscp = 0;
                    hdr.encap_ipv4.ecn = 0;
                    hdr.encap_ipv4.total_len = l3_len + 20;
                    hdr.encap_ipv4.identification = 0;
                    hdr.encap_ipv4.flags = 0;
                    hdr.encap_ipv4.frag_offset = 0;
                    hdr.encap_ipv4.ttl = DEFAULT_TTL;
                    hdr.encap_ipv4.protocol = IPPROTO_IPIP;
                    hdr.encap_ipv4.src_addr = meta.dst.outer_src4;
                    hdr.encap_ipv4.dst_addr = meta.dst.outer_dst4;
                }
                if (hdr.encap_ipv4.isValid()) {
                    ck.clear();
                    // version 4, ihl 5, dscp/ecn 0; flags/fragment 0
                    ck.add({ 16w0x4500, hdr.encap_ipv4.total_len, hdr.encap_ipv4.identification, 16w0,
                             hdr.encap_ipv4.ttl, hdr.encap_ipv4.protocol,
                             hdr.encap_ipv4.src_addr, hdr.encap_ipv4.dst_addr });
                    hdr.encap_ipv4.hdr_checksum = ck.get();
                }
            }

            // ---- the fate, decided once
            if (meta.fate == FATE_FORWARD) {
                send_to_port((PortId_t) meta.dst.port);
            } else if (meta.fate == FATE_REPLY) {
                if (meta.drop_reason != DROP_NONE) {
                    // A rejected packet (DROP_NO_SERVICE_BACKEND) is counted
                    // as dropped; the ICMP error built from it is sent.
                    drop_counter.count((bit<32>) meta.drop_reason);
                }
                send_to_port((PortId_t) meta.src.port);
            } else if (meta.fate == FATE_BRIDGE) {
                send_to_port((PortId_t) meta.src.peer_port);
            } else {
                drop_counter.count((bit<32>) meta.drop_reason);
                drop_packet();
            }
        } else {
            meta.passes = meta.passes + 1;
            recirculate();
        }
    }
}

/* ======================================================================== */
/* Deparser                                                                  */
/* ======================================================================== */

control MainDeparserImpl(
    packet_out pkt,
    in    headers_t  hdr,
    in    metadata_t meta,
    in    pna_main_output_metadata_t ostd)
{
    apply {
        pkt.emit(hdr.encap_ethernet);
        pkt.emit(hdr.encap_ipv4);
        pkt.emit(hdr.encap_ipv6);
        pkt.emit(hdr.encap_udp);
        pkt.emit(hdr.encap_vxlan);
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.vlan);
        pkt.emit(hdr.arp);
        pkt.emit(hdr.ipv4);
        pkt.emit(hdr.ipv4_options);
        pkt.emit(hdr.ipv6);
        pkt.emit(hdr.tcp);
        pkt.emit(hdr.udp);
        pkt.emit(hdr.sctp);
        pkt.emit(hdr.icmp);
        pkt.emit(hdr.icmpv6);
        pkt.emit(hdr.nd_target);
        pkt.emit(hdr.nd_option);
        pkt.emit(hdr.icmp_err_ipv4);
        pkt.emit(hdr.icmp_err_ipv6);
        pkt.emit(hdr.icmp_err_l4);
        pkt.emit(hdr.vxlan);
        pkt.emit(hdr.inner_ethernet);
        pkt.emit(hdr.inner_ipv4);
        pkt.emit(hdr.inner_ipv6);
        pkt.emit(hdr.inner_tcp);
        pkt.emit(hdr.inner_udp);
        pkt.emit(hdr.inner_sctp);
        pkt.emit(hdr.inner_icmp);
        pkt.emit(hdr.inner_icmpv6);
    }
}

PNA_NIC(
    MainParserImpl(),
    PreControlImpl(),
    MainControlImpl(),
    MainDeparserImpl()
) main;
