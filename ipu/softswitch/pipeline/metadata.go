package pipeline

// metadata_t of k8s.p4, kept across passes. Field names follow the P4 struct members; bit<1> fields
// are uint8 so that the Go reads like the P4 ("== 1").

type ip6 = [16]byte

// flowMeta is flow_meta_t: the packet's flow, read once in pass 0 (after decapsulation).
type flowMeta struct {
	ipVer     uint8
	src4      uint32
	dst4      uint32
	src6      ip6
	dst6      ip6
	proto     uint8
	sport     uint16
	dport     uint16
	hasPorts  uint8
	icmpType  uint8
	icmpCode  uint8
	icmpError uint8
	// icmpPeerType: ICMP's counterpart type (a query's reply, a reply's query: icmpCounterpart).
	icmpPeerType uint8
	// trackable: conntrack learns the flow when it is new and allowed (not an ICMP error; for ICMP, a
	// query — Linux creates no conntrack entry for other ICMP messages).
	trackable uint8
	tcpFlags  uint8
}

// srcMeta is src_meta_t: the ingress port and the endpoint behind it.
type srcMeta struct {
	port       uint32
	endpoint   uint32
	kind       uint8
	flags      uint8
	peerPort   uint32
	tunnelType uint8
	decap      uint8
	spoofed    uint8 // source_guard missed (workloads: dropped)
	// hostOrigin: from the host port with one of the node's own addresses as source (the host's own
	// traffic, Felix's OUTPUT chain); other packets from the host port are traffic it forwards.
	hostOrigin uint8
}

// dstMeta is dst_meta_t: the routing result.
type dstMeta struct {
	addr4        uint32
	addr6        ip6
	routed       uint8
	nexthop      uint32
	routeFlags   uint8
	kind         uint8
	endpoint     uint32
	flags        uint8
	port         uint32
	dmac         uint64
	smac         uint64
	encap        uint8
	outerSrc4    uint32
	outerDst4    uint32
	outerSrc6    ip6
	outerDst6    ip6
	vni          uint32
	vxlanPort    uint16
	innerDmac    uint64
	innerSmac    uint64
	decrementTTL uint8
}

// ctMeta is ct_meta_t: learner keys, hit values and learning state.
type ctMeta struct {
	kSrc4, kDst4 uint32
	kSrc6, kDst6 ip6
	kProto       uint8
	kSport       uint16
	kDport       uint16
	kICMPType    uint8 // the ICMP type of the entry's packets (0 for other protocols)
	state        uint8
	hitOrig      uint8
	hitReply     uint8
	vNat         uint8
	vSrc4        uint32
	vSrc6        ip6
	vSport       uint16
	vDst4        uint32
	vDst6        ip6
	vDport       uint16
	learning     uint8
	hitProfile   uint8
	learnProfile uint8
}

// svcMeta is svc_meta_t: service selection for a new flow.
type svcMeta struct {
	hit          uint8
	reject       uint8
	fromAffinity uint8
	flags        uint8
	addr4        uint32
	addr6        ip6
	port         uint16
}

// natMeta is nat_meta_t: rewrites applied in the last pass.
type natMeta struct {
	flags       uint8
	src4        uint32
	src6        ip6
	sport       uint16
	dst4        uint32
	dst6        ip6
	dport       uint16
	masquerade  uint8
	natOutgoing uint8
	snatOK      uint8
}

// polMeta is pol_meta_t: the policy walk.
type polMeta struct {
	check   uint8
	state   uint8
	verdict uint8
	broken  uint8
	// accepted: allowed by untracked or pre-DNAT policy (Felix's accept mark); untracked: allowed by
	// untracked policy (no conntrack: the remaining checks run on every packet, never learned).
	accepted  uint8
	untracked uint8
	endpoint  uint32
	stage     uint8
	listID    uint32
	pos       uint16
	tierNext  uint16
	step      uint32
	lookup    uint8
	setID     uint32
	missStep  uint32
	setHit    uint8
	result    uint8
	nextStep  uint32
	ruleID    uint32
	src4      uint32
	dst4      uint32
	src6      ip6
	dst6      ip6
	sport     uint16
	dport     uint16
	addr4     uint32
	addr6     ip6
	port      uint16
}

// metadata is metadata_t.
type metadata struct {
	phase      uint8
	fate       uint8
	dropReason uint8
	passes     uint8
	flow       flowMeta
	src        srcMeta
	dst        dstMeta
	ct         ctMeta
	svc        svcMeta
	nat        natMeta
	pol        polMeta
}

// ctNatV4 is ct_nat_v4_t (parameters of the learned conntrack actions), ctNatV6 ct_nat_v6_t,
// affinityV4 affinity_v4_t, affinityV6 affinity_v6_t.
type ctNatV4 struct {
	nat     uint8
	srcAddr uint32
	srcPort uint16
	dstAddr uint32
	dstPort uint16
}

type ctNatV6 struct {
	nat     uint8
	srcAddr ip6
	srcPort uint16
	dstAddr ip6
	dstPort uint16
}

type affinityV4 struct {
	backendAddr uint32
	backendPort uint16
	flags       uint8
}

type affinityV6 struct {
	backendAddr ip6
	backendPort uint16
	flags       uint8
}
