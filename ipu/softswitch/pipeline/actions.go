package pipeline

import (
	"github.com/calico-p4/calico-p4/p4src"
)

// The tables of MainControlImpl and their actions, in k8s.p4's order. Each function applies one table
// (building its key from the same fields as the P4 key) and runs the chosen action; an action is a
// method named after the P4 action.

/* ---- Port classification ---- */

func (w *Worker) portEndpoint() {
	k := w.newKey()
	k.u32(w.meta.src.port)
	ap := w.apply(tPortEndpoint, k.b, 0)
	switch ap.id() {
	case p4src.ActionSetEndpointID:
		w.countDirect(&ap)
		p := ap.params()
		w.setEndpoint(p.u32(), p.u8(), p.u8(), p.u32())
	case p4src.ActionUnknownPortID:
		w.countDirect(&ap)
		w.meta.src.kind = p4src.EPKindNone
	}
}

func (w *Worker) setEndpoint(endpointID uint32, kind, flags uint8, peerPort uint32) {
	s := &w.meta.src
	s.endpoint = endpointID
	s.kind = kind
	s.flags = flags
	s.peerPort = peerPort
}

/* ---- Anti-spoofing ---- */

func (w *Worker) sourceGuardV4() {
	k := w.newKey()
	k.u32(w.meta.src.endpoint)
	k.u32(w.meta.flow.src4)
	w.sourceGuard(w.apply(tSourceGuardV4, k.b, 0))
}

func (w *Worker) sourceGuardV6() {
	k := w.newKey()
	k.u32(w.meta.src.endpoint)
	k.a6(&w.meta.flow.src6)
	w.sourceGuard(w.apply(tSourceGuardV6, k.b, 0))
}

func (w *Worker) sourceGuard(ap applied) {
	switch ap.id() {
	case p4src.ActionSourceAllowedID:
		w.meta.src.spoofed = 0
	case p4src.ActionSourceSpoofedID:
		w.meta.src.spoofed = 1
	}
}

/* ---- Gateway responder: ARP and IPv6 neighbour discovery ---- */

func (w *Worker) arpResponder() {
	k := w.newKey()
	k.u8(w.meta.src.kind)
	k.u32(be32(w.buf, w.hdr.arp+arpTargetIP))
	ap := w.apply(tARPResponder, k.b, 0)
	if ap.id() == p4src.ActionARPReplyID {
		p := ap.params()
		w.arpReply(p.u48())
	}
}

// arpReply turns the ARP request into the reply, sent back out the ingress port.
func (w *Worker) arpReply(mac uint64) {
	b, arp, eth := w.buf, w.hdr.arp, w.hdr.ethernet
	put16(b, arp+arpOper, p4src.ARPOperReply)
	putMAC(b, arp+arpTargetMAC, mac48(b, arp+arpSenderMAC))
	putMAC(b, arp+arpSenderMAC, mac)
	oldSrc4 := be32(b, arp+arpTargetIP)
	put32(b, arp+arpTargetIP, be32(b, arp+arpSenderIP))
	put32(b, arp+arpSenderIP, oldSrc4)
	putMAC(b, eth+ethDst, mac48(b, eth+ethSrc))
	putMAC(b, eth+ethSrc, mac)
	w.meta.fate = p4src.FateReply
}

func (w *Worker) ndResponder() {
	k := w.newKey()
	k.u8(w.meta.src.kind)
	t := addr16(w.buf, w.hdr.ndTarget)
	k.a6(&t)
	ap := w.apply(tNDResponder, k.b, 0)
	if ap.id() == p4src.ActionNDAdvertiseID {
		p := ap.params()
		w.ndAdvertise(p.u48())
	}
}

// ndAdvertise turns the neighbour solicitation into the advertisement (R, S, O set, target link-layer
// address option), sent back out the ingress port. The ICMPv6 checksum is computed by the caller.
func (w *Worker) ndAdvertise(mac uint64) {
	b, h := w.buf, &w.hdr
	copy(b[h.ipv6+ipv6Dst:h.ipv6+ipv6Dst+16], b[h.ipv6+ipv6Src:h.ipv6+ipv6Src+16])
	copy(b[h.ipv6+ipv6Src:h.ipv6+ipv6Src+16], b[h.ndTarget:h.ndTarget+16])
	b[h.ipv6+ipv6HopLimit] = 255
	b[h.icmpv6+icmpType] = p4src.ICMP6NDNA
	b[h.icmpv6+icmpCode] = 0
	put16(b, h.icmpv6+icmpIdent, p4src.NDNAFlagsRSO)
	put16(b, h.icmpv6+icmpSeq, 0)
	b[h.ndOption+ndOptType] = p4src.NDOptTargetLLAddr
	b[h.ndOption+ndOptLength] = 1
	putMAC(b, h.ndOption+ndOptLLAddr, mac)
	putMAC(b, h.ethernet+ethDst, mac48(b, h.ethernet+ethSrc))
	putMAC(b, h.ethernet+ethSrc, mac)
	w.meta.fate = p4src.FateReply
}

/* ---- Tunnel termination ---- */

func (w *Worker) tunnelTermV4() {
	k := w.newKey()
	k.u32(be32(w.buf, w.hdr.ipv4+ipv4Src))
	k.u32(be32(w.buf, w.hdr.ipv4+ipv4Dst))
	k.u8(w.meta.src.tunnelType)
	w.tunnelTerm(w.apply(tTunnelTermV4, k.b, 0))
}

func (w *Worker) tunnelTermV6() {
	k := w.newKey()
	k.b = append(k.b, w.buf[w.hdr.ipv6+ipv6Src:w.hdr.ipv6+ipv6Src+32]...)
	k.u8(w.meta.src.tunnelType)
	w.tunnelTerm(w.apply(tTunnelTermV6, k.b, 0))
}

func (w *Worker) tunnelTerm(ap applied) {
	if ap.id() == p4src.ActionTunnelDecapID {
		p := ap.params()
		w.tunnelDecap(p.u32(), p.u8())
	}
}

func (w *Worker) tunnelDecap(endpointID uint32, flags uint8) {
	s := &w.meta.src
	s.decap = 1
	s.endpoint = endpointID
	s.kind = p4src.EPKindTunnel
	s.flags = flags
}

/* ---- Connection tracking (learner tables) ---- */

func (w *Worker) ctKey4() keyBuf {
	c := &w.meta.ct
	k := w.newKey()
	k.u32(c.kSrc4)
	k.u32(c.kDst4)
	k.u8(c.kProto)
	k.u16(c.kSport)
	k.u16(c.kDport)
	k.u8(c.kICMPType)
	return k
}

func (w *Worker) ctKey6() keyBuf {
	c := &w.meta.ct
	k := w.newKey()
	k.a6(&c.kSrc6)
	k.a6(&c.kDst6)
	k.u8(c.kProto)
	k.u16(c.kSport)
	k.u16(c.kDport)
	k.u8(c.kICMPType)
	return k
}

func (w *Worker) learnParamsV4() []byte {
	l := &w.learnV4
	p := w.newParams()
	p.u8(l.nat)
	p.u32(l.srcAddr)
	p.u16(l.srcPort)
	p.u32(l.dstAddr)
	p.u16(l.dstPort)
	return p.b
}

func (w *Worker) learnParamsV6() []byte {
	l := &w.learnV6
	p := w.newParams()
	p.u8(l.nat)
	p.a6(&l.srcAddr)
	p.u16(l.srcPort)
	p.a6(&l.dstAddr)
	p.u16(l.dstPort)
	return p.b
}

func (w *Worker) ctOrigV4() {
	k := w.ctKey4()
	ap := w.apply(tCTOrigV4, k.b, 0)
	switch ap.id() {
	case p4src.ActionCTOrigHitV4ID:
		p := ap.params()
		w.ctHitV4(&w.meta.ct.hitOrig, &p)
		w.setEntryExpireTime(&ap, w.meta.ct.hitProfile)
	case p4src.ActionCTOrigMissV4ID:
		if w.meta.ct.learning == 1 {
			w.addEntry(tCTOrigV4, &ap, k.b, p4src.ActionCTOrigHitV4ID, w.learnParamsV4(), w.meta.ct.learnProfile)
		}
	}
}

func (w *Worker) ctReplyV4() {
	k := w.ctKey4()
	ap := w.apply(tCTReplyV4, k.b, 0)
	switch ap.id() {
	case p4src.ActionCTReplyHitV4ID:
		p := ap.params()
		w.ctHitV4(&w.meta.ct.hitReply, &p)
		w.setEntryExpireTime(&ap, w.meta.ct.hitProfile)
	case p4src.ActionCTReplyMissV4ID:
		if w.meta.ct.learning == 1 {
			w.addEntry(tCTReplyV4, &ap, k.b, p4src.ActionCTReplyHitV4ID, w.learnParamsV4(), w.meta.ct.learnProfile)
		}
	}
}

// ctHitV4 is the body of ct_orig_hit_v4 / ct_reply_hit_v4 (hit is hit_orig or hit_reply).
func (w *Worker) ctHitV4(hit *uint8, p *params) {
	c := &w.meta.ct
	*hit = 1
	c.vNat = p.u8()
	c.vSrc4 = p.u32()
	c.vSport = p.u16()
	c.vDst4 = p.u32()
	c.vDport = p.u16()
}

func (w *Worker) ctOrigV6() {
	k := w.ctKey6()
	ap := w.apply(tCTOrigV6, k.b, 0)
	switch ap.id() {
	case p4src.ActionCTOrigHitV6ID:
		p := ap.params()
		w.ctHitV6(&w.meta.ct.hitOrig, &p)
		w.setEntryExpireTime(&ap, w.meta.ct.hitProfile)
	case p4src.ActionCTOrigMissV6ID:
		if w.meta.ct.learning == 1 {
			w.addEntry(tCTOrigV6, &ap, k.b, p4src.ActionCTOrigHitV6ID, w.learnParamsV6(), w.meta.ct.learnProfile)
		}
	}
}

func (w *Worker) ctReplyV6() {
	k := w.ctKey6()
	ap := w.apply(tCTReplyV6, k.b, 0)
	switch ap.id() {
	case p4src.ActionCTReplyHitV6ID:
		p := ap.params()
		w.ctHitV6(&w.meta.ct.hitReply, &p)
		w.setEntryExpireTime(&ap, w.meta.ct.hitProfile)
	case p4src.ActionCTReplyMissV6ID:
		if w.meta.ct.learning == 1 {
			w.addEntry(tCTReplyV6, &ap, k.b, p4src.ActionCTReplyHitV6ID, w.learnParamsV6(), w.meta.ct.learnProfile)
		}
	}
}

func (w *Worker) ctHitV6(hit *uint8, p *params) {
	c := &w.meta.ct
	*hit = 1
	c.vNat = p.u8()
	c.vSrc6 = p.a6()
	c.vSport = p.u16()
	c.vDst6 = p.a6()
	c.vDport = p.u16()
}

/* ---- ClientIP session affinity (learner tables) ---- */

func (w *Worker) affinityV4() {
	c := &w.meta.ct
	k := w.newKey()
	k.u32(c.kSrc4)
	k.u32(c.kDst4)
	k.u8(c.kProto)
	k.u16(c.kDport)
	ap := w.apply(tAffinityV4, k.b, 0)
	switch ap.id() {
	case p4src.ActionAffinityHitV4ID:
		p := ap.params()
		s := &w.meta.svc
		s.hit = 1
		s.fromAffinity = 1
		s.addr4 = p.u32()
		s.port = p.u16()
		s.flags = p.u8()
		w.restartExpireTimer(&ap)
	case p4src.ActionAffinityMissV4ID:
		if c.learning == 1 {
			l := &w.learnAffinityV4
			pw := w.newParams()
			pw.u32(l.backendAddr)
			pw.u16(l.backendPort)
			pw.u8(l.flags)
			w.addEntry(tAffinityV4, &ap, k.b, p4src.ActionAffinityHitV4ID, pw.b, p4src.ExpireAffinity)
		}
	}
}

func (w *Worker) affinityV6() {
	c := &w.meta.ct
	k := w.newKey()
	k.a6(&c.kSrc6)
	k.a6(&c.kDst6)
	k.u8(c.kProto)
	k.u16(c.kDport)
	ap := w.apply(tAffinityV6, k.b, 0)
	switch ap.id() {
	case p4src.ActionAffinityHitV6ID:
		p := ap.params()
		s := &w.meta.svc
		s.hit = 1
		s.fromAffinity = 1
		s.addr6 = p.a6()
		s.port = p.u16()
		s.flags = p.u8()
		w.restartExpireTimer(&ap)
	case p4src.ActionAffinityMissV6ID:
		if c.learning == 1 {
			l := &w.learnAffinityV6
			pw := w.newParams()
			pw.a6(&l.backendAddr)
			pw.u16(l.backendPort)
			pw.u8(l.flags)
			w.addEntry(tAffinityV6, &ap, k.b, p4src.ActionAffinityHitV6ID, pw.b, p4src.ExpireAffinity)
		}
	}
}

/* ---- Services and 1:1 NAT ---- */

func (w *Worker) serviceV4() {
	f := &w.meta.flow
	k := w.newKey()
	k.u32(f.dst4)
	k.u8(f.proto)
	k.u16(f.dport)
	ap := w.apply(tServiceV4, k.b, selectorHash4(f.src4, f.sport))
	switch ap.id() {
	case p4src.ActionDNATV4ID:
		p := ap.params()
		s := &w.meta.svc
		s.hit = 1
		s.addr4 = p.u32()
		s.port = p.u16()
		s.flags = p.u8()
	case p4src.ActionServiceRejectID:
		w.meta.svc.reject = 1
	}
}

func (w *Worker) serviceV6() {
	f := &w.meta.flow
	k := w.newKey()
	k.a6(&f.dst6)
	k.u8(f.proto)
	k.u16(f.dport)
	ap := w.apply(tServiceV6, k.b, selectorHash6(&f.src6, f.sport))
	switch ap.id() {
	case p4src.ActionDNATV6ID:
		p := ap.params()
		s := &w.meta.svc
		s.hit = 1
		s.addr6 = p.a6()
		s.port = p.u16()
		s.flags = p.u8()
	case p4src.ActionServiceRejectID:
		w.meta.svc.reject = 1
	}
}

func (w *Worker) nat1to1V4() {
	k := w.newKey()
	k.u32(w.meta.flow.dst4)
	ap := w.apply(tNAT1to1V4, k.b, 0)
	if ap.id() == p4src.ActionDNATAddressV4ID {
		p := ap.params()
		s := &w.meta.svc
		s.hit = 1
		s.addr4 = p.u32()
		s.port = 0
		s.flags = 0
	}
}

func (w *Worker) nat1to1V6() {
	k := w.newKey()
	k.a6(&w.meta.flow.dst6)
	ap := w.apply(tNAT1to1V6, k.b, 0)
	if ap.id() == p4src.ActionDNATAddressV6ID {
		p := ap.params()
		s := &w.meta.svc
		s.hit = 1
		s.addr6 = p.a6()
		s.port = 0
		s.flags = 0
	}
}

/* ---- Routing ---- */

func (w *Worker) routeV4() {
	k := w.newKey()
	k.u32(w.meta.dst.addr4)
	w.route(w.apply(tRouteV4, k.b, 0))
}

func (w *Worker) routeV6() {
	k := w.newKey()
	k.a6(&w.meta.dst.addr6)
	w.route(w.apply(tRouteV6, k.b, 0))
}

func (w *Worker) route(ap applied) {
	d := &w.meta.dst
	switch ap.id() {
	case p4src.ActionSetNexthopID:
		p := ap.params()
		d.routed = 1
		d.nexthop = p.u32()
		d.routeFlags = p.u8()
	case p4src.ActionRouteUnreachableID:
		d.routed = 0
	}
}

func (w *Worker) nexthop() {
	d := &w.meta.dst
	k := w.newKey()
	k.u32(d.nexthop)
	ap := w.apply(tNexthop, k.b, 0)
	p := ap.params()
	switch ap.id() {
	case p4src.ActionNHLocalID:
		w.countDirect(&ap)
		d.kind = p4src.EPKindWorkload
		d.port = p.u32()
		d.dmac = p.u48()
		d.smac = p4src.GatewayMAC
		d.endpoint = p.u32()
		d.flags = p.u8()
		d.encap = p4src.EncapNone
		d.decrementTTL = 1
	case p4src.ActionNHHostID:
		w.countDirect(&ap)
		d.kind = p4src.EPKindHost
		d.port = p.u32()
		d.dmac = p.u48()
		d.smac = p.u48()
		d.endpoint = p.u32()
		d.flags = p.u8()
		d.encap = p4src.EncapNone
		d.decrementTTL = 0
	case p4src.ActionNHDirectID:
		w.countDirect(&ap)
		d.kind = p4src.EPKindUplink
		d.port = p.u32()
		d.dmac = p.u48()
		d.smac = p.u48()
		d.endpoint = p.u32()
		d.flags = p.u8()
		d.encap = p4src.EncapNone
		d.decrementTTL = 1
	case p4src.ActionNHVXLANV4ID:
		w.countDirect(&ap)
		d.kind = p4src.EPKindUplink
		d.port = p.u32()
		d.dmac = p.u48()
		d.smac = p.u48()
		d.outerSrc4 = p.u32()
		d.outerDst4 = p.u32()
		d.vni = p.u24()
		d.vxlanPort = p.u16()
		d.innerDmac = p.u48()
		d.innerSmac = p.u48()
		d.endpoint = p.u32()
		d.flags = p.u8()
		d.encap = p4src.EncapVXLANV4
		d.decrementTTL = 1
	case p4src.ActionNHVXLANV6ID:
		w.countDirect(&ap)
		d.kind = p4src.EPKindUplink
		d.port = p.u32()
		d.dmac = p.u48()
		d.smac = p.u48()
		d.outerSrc6 = p.a6()
		d.outerDst6 = p.a6()
		d.vni = p.u24()
		d.vxlanPort = p.u16()
		d.innerDmac = p.u48()
		d.innerSmac = p.u48()
		d.endpoint = p.u32()
		d.flags = p.u8()
		d.encap = p4src.EncapVXLANV6
		d.decrementTTL = 1
	case p4src.ActionNHIPIPID:
		w.countDirect(&ap)
		d.kind = p4src.EPKindUplink
		d.port = p.u32()
		d.dmac = p.u48()
		d.smac = p.u48()
		d.outerSrc4 = p.u32()
		d.outerDst4 = p.u32()
		d.endpoint = p.u32()
		d.flags = p.u8()
		d.encap = p4src.EncapIPIP
		d.decrementTTL = 1
	case p4src.ActionNexthopMissingID:
		w.countDirect(&ap)
		d.kind = p4src.EPKindNone
	}
}

/* ---- Masquerade ---- */

func (w *Worker) natOutgoingV4() {
	k := w.newKey()
	k.u32(w.meta.flow.src4)
	if ap := w.apply(tNATOutgoingV4, k.b, 0); ap.id() == p4src.ActionNATOutgoingID {
		w.meta.nat.natOutgoing = 1
	}
}

func (w *Worker) natOutgoingV6() {
	k := w.newKey()
	k.a6(&w.meta.flow.src6)
	if ap := w.apply(tNATOutgoingV6, k.b, 0); ap.id() == p4src.ActionNATOutgoingID {
		w.meta.nat.natOutgoing = 1
	}
}

func (w *Worker) snatAddressV4() {
	k := w.newKey()
	k.u32(w.meta.dst.nexthop)
	if ap := w.apply(tSNATAddressV4, k.b, 0); ap.id() == p4src.ActionSNATToV4ID {
		p := ap.params()
		w.meta.nat.snatOK = 1
		w.meta.nat.src4 = p.u32()
	}
}

func (w *Worker) snatAddressV6() {
	k := w.newKey()
	k.u32(w.meta.dst.nexthop)
	if ap := w.apply(tSNATAddressV6, k.b, 0); ap.id() == p4src.ActionSNATToV6ID {
		p := ap.params()
		w.meta.nat.snatOK = 1
		w.meta.nat.src6 = p.a6()
	}
}

/* ---- Policy program ---- */

func (w *Worker) endpointPolicy() {
	pol := &w.meta.pol
	k := w.newKey()
	k.u32(pol.endpoint)
	k.u8(pol.stage)
	ap := w.apply(tEndpointPolicy, k.b, 0)
	switch ap.id() {
	case p4src.ActionSetPolicyListID:
		p := ap.params()
		pol.listID = p.u32()
		pol.pos = 0
		pol.state = p4src.WalkList
	case p4src.ActionNoPolicyID:
		pol.verdict = p4src.VerdictContinue
		pol.state = p4src.WalkDone
	}
}

func (w *Worker) policyList() {
	pol := &w.meta.pol
	k := w.newKey()
	k.u32(pol.listID)
	k.u16(pol.pos)
	ap := w.apply(tPolicyList, k.b, 0)
	switch ap.id() {
	case p4src.ActionRunPolicyID:
		p := ap.params()
		pol.step = p.u32()
		pol.tierNext = p.u16()
		pol.state = p4src.WalkStep
	case p4src.ActionListEndID:
		p := ap.params()
		pol.verdict = p.u8()
		pol.state = p4src.WalkDone
	case p4src.ActionListMissingID:
		pol.broken = 1
		pol.verdict = p4src.VerdictDeny
		pol.state = p4src.WalkDone
	}
}

func (w *Worker) policyStep() {
	pol := &w.meta.pol
	k := w.newKey()
	k.u32(pol.step)
	ap := w.apply(tPolicyStep, k.b, 0)
	switch ap.id() {
	case p4src.ActionRunStepID:
		p := ap.params()
		pol.lookup = p.u8()
		pol.setID = p.u32()
		pol.missStep = p.u32()
	case p4src.ActionStepMissingID:
		pol.broken = 1
		pol.verdict = p4src.VerdictDeny
		pol.state = p4src.WalkDone
	}
}

func (w *Worker) ipsetHit(ap applied) {
	if ap.id() == p4src.ActionIPSetHitID {
		w.meta.pol.setHit = 1
	}
}

func (w *Worker) ipsetNetV4() {
	pol := &w.meta.pol
	k := w.newKey()
	k.u32(pol.setID)
	k.u32(pol.addr4)
	w.ipsetHit(w.apply(tIPSetNetV4, k.b, 0))
}

func (w *Worker) ipsetNetV6() {
	pol := &w.meta.pol
	k := w.newKey()
	k.u32(pol.setID)
	k.a6(&pol.addr6)
	w.ipsetHit(w.apply(tIPSetNetV6, k.b, 0))
}

func (w *Worker) ipsetPortV4() {
	pol := &w.meta.pol
	k := w.newKey()
	k.u32(pol.setID)
	k.u32(pol.addr4)
	k.u8(w.meta.flow.proto)
	k.u16(pol.port)
	w.ipsetHit(w.apply(tIPSetPortV4, k.b, 0))
}

func (w *Worker) ipsetPortV6() {
	pol := &w.meta.pol
	k := w.newKey()
	k.u32(pol.setID)
	k.a6(&pol.addr6)
	k.u8(w.meta.flow.proto)
	k.u16(pol.port)
	w.ipsetHit(w.apply(tIPSetPortV6, k.b, 0))
}

func (w *Worker) policyRule() {
	pol, f := &w.meta.pol, &w.meta.flow
	k := w.newKey()
	k.u32(pol.step)
	k.u8(pol.setHit)
	k.u8(f.ipVer)
	k.u8(f.proto)
	k.u16(pol.sport)
	k.u16(pol.dport)
	k.u8(f.icmpType)
	k.u8(f.icmpCode)
	ap := w.apply(tPolicyRule, k.b, 0)
	p := ap.params()
	switch ap.id() {
	case p4src.ActionRuleAllowID:
		pol.result = p4src.RuleAllow
		pol.ruleID = p.u32()
	case p4src.ActionRuleDenyID:
		pol.result = p4src.RuleDeny
		pol.ruleID = p.u32()
	case p4src.ActionRulePassID:
		pol.result = p4src.RulePass
		pol.ruleID = p.u32()
	case p4src.ActionRuleLogID:
		pol.result = p4src.RuleNext
		pol.ruleID = p.u32()
		pol.nextStep = p.u32()
	case p4src.ActionRuleGotoID:
		pol.result = p4src.RuleNext
		pol.ruleID = 0
		pol.nextStep = p.u32()
	default: // rule_no_match
		pol.result = p4src.RuleNoMatch
		pol.ruleID = 0
	}
}

func (w *Worker) policyRuleStats() {
	k := w.newKey()
	k.u32(w.meta.pol.ruleID)
	ap := w.apply(tPolicyRuleStats, k.b, 0)
	if ap.id() == p4src.ActionCountRuleID {
		w.countDirect(&ap)
	}
}
