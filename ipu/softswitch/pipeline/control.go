package pipeline

import (
	"github.com/calico-p4/calico-p4/p4src"
)

// MainControlImpl runs one pass of k8s.p4's main control. It returns true when the packet recirculates
// (recirculate()), false when its fate was decided and applied (send_to_port / drop_packet).
func (w *Worker) MainControlImpl(firstPass bool) (recirculate bool) {
	m := &w.meta

	if firstPass {
		w.classification()
	}
	if m.phase == p4src.PhaseLookup || m.phase == p4src.PhaseLearn {
		w.conntrackAffinityServices()
	}
	if m.phase == p4src.PhaseLookup {
		w.routingMasqueradePlanning()
	}
	if m.phase == p4src.PhasePolicy {
		w.policyWalk()
	}

	// Pass budget: only the policy walk can loop (the learning pass is not counted against it).
	if m.phase == p4src.PhasePolicy && m.passes >= p4src.PassBudget {
		m.fate = p4src.FateDrop
		m.dropReason = p4src.DropPassBudget
		m.phase = p4src.PhaseDone
	}

	if m.phase == p4src.PhaseDone {
		w.lastPass()
		return false
	}
	m.passes++
	return true
}

// classification is "Pass 0: classification": metadata reset, port classification, the ARP/ND
// gateway, link-local bridging, tunnel termination, the flow and anti-spoofing.
func (w *Worker) classification() {
	m, h, b := &w.meta, &w.hdr, w.buf
	*m = metadata{}
	m.phase = p4src.PhaseLookup
	m.fate = p4src.FatePending
	m.dropReason = p4src.DropNone
	m.src.port = w.inPort
	m.src.kind = p4src.EPKindNone
	m.src.tunnelType = p4src.TunnelNone
	m.dst.kind = p4src.EPKindNone
	m.dst.encap = p4src.EncapNone
	m.ct.state = p4src.CTNew
	m.pol.check = p4src.CheckNone
	m.pol.state = p4src.WalkStart
	m.pol.verdict = p4src.VerdictNone

	if w.parserError {
		m.fate = p4src.FateDrop
		m.dropReason = p4src.DropParseError
	} else {
		w.portEndpoint()
		if m.src.kind == p4src.EPKindNone {
			m.fate = p4src.FateDrop
			m.dropReason = p4src.DropUnknownPort
		}
	}

	// ---- link-local traffic: ARP, ND, multicast/broadcast frames
	if m.fate == p4src.FatePending {
		if valid(h.arp) {
			if be16(b, h.arp+arpOper) == p4src.ARPOperRequest && be16(b, h.arp+arpHwType) == p4src.ARPHTypeEthernet &&
				be16(b, h.arp+arpProtoType) == p4src.EtherTypeIPv4 {
				w.arpResponder()
			}
		} else if valid(h.icmpv6) && b[h.icmpv6+icmpType] == p4src.ICMP6NDNS &&
			valid(h.ndOption) && b[h.ndOption+ndOptType] == p4src.NDOptSourceLLAddr &&
			b[h.ipv6+ipv6HopLimit] == 255 {
			w.ndResponder()
			if m.fate == p4src.FateReply {
				// ICMPv6 checksum of the advertisement (pseudo-header + 32-byte message).
				ck := &w.ck
				ck.clear()
				ck.addBytes(b[h.ipv6+ipv6Src : h.ipv6+ipv6Src+32])
				ck.add16(0)
				ck.add16(be16(b, h.ipv6+ipv6PayloadLen))
				ck.add16(0)
				ck.add16(uint16(p4src.IPProtoICMPv6))
				ck.add16(uint16(b[h.icmpv6+icmpType])<<8 | uint16(b[h.icmpv6+icmpCode]))
				ck.add16(be16(b, h.icmpv6+icmpIdent))
				ck.add16(be16(b, h.icmpv6+icmpSeq))
				ck.addBytes(b[h.ndTarget : h.ndTarget+ndTargetLen])
				ck.addBytes(b[h.ndOption : h.ndOption+ndOptionLen])
				put16(b, h.icmpv6+icmpChecksum, ck.get())
			}
		}
		if m.fate == p4src.FatePending {
			linkLocal := valid(h.arp) ||
				(!valid(h.ipv4) && !valid(h.ipv6)) ||
				b[h.ethernet+ethDst]&0x01 == 1 ||
				(valid(h.icmpv6) && b[h.icmpv6+icmpType] >= 133 && b[h.icmpv6+icmpType] <= 137)
			if linkLocal {
				// Host <-> uplink link-local traffic is bridged; a workload only talks to its
				// gateway at this level.
				if (m.src.kind == p4src.EPKindHost || m.src.kind == p4src.EPKindUplink) && m.src.peerPort != 0 {
					m.fate = p4src.FateBridge
				} else {
					m.fate = p4src.FateDrop
					m.dropReason = p4src.DropUnsupported
				}
			}
		}
	}

	// ---- tunnel termination (VXLAN / IP-in-IP from the uplink)
	if m.fate == p4src.FatePending && (m.src.kind == p4src.EPKindUplink || m.src.kind == p4src.EPKindTunnel) {
		if valid(h.vxlan) {
			m.src.tunnelType = p4src.TunnelVXLAN
		} else if valid(h.innerIPv4) {
			m.src.tunnelType = p4src.TunnelIPIP
		}
		if m.src.tunnelType != p4src.TunnelNone {
			if valid(h.ipv4) {
				w.tunnelTermV4()
			} else {
				w.tunnelTermV6()
			}
		}
		if m.src.decap == 1 {
			w.decapsulate()
		}
	}

	// ---- the flow
	if m.fate == p4src.FatePending {
		f := &m.flow
		if valid(h.ipv4) {
			f.ipVer = 4
			f.src4 = be32(b, h.ipv4+ipv4Src)
			f.dst4 = be32(b, h.ipv4+ipv4Dst)
			f.proto = b[h.ipv4+ipv4Proto]
		} else if valid(h.ipv6) {
			f.ipVer = 6
			f.src6 = addr16(b, h.ipv6+ipv6Src)
			f.dst6 = addr16(b, h.ipv6+ipv6Dst)
			f.proto = b[h.ipv6+ipv6NextHdr]
		}
		switch {
		case valid(h.tcp):
			f.sport = be16(b, h.tcp+l4SrcPort)
			f.dport = be16(b, h.tcp+l4DstPort)
			f.tcpFlags = b[h.tcp+tcpFlags]
			f.hasPorts = 1
		case valid(h.udp):
			f.sport = be16(b, h.udp+l4SrcPort)
			f.dport = be16(b, h.udp+l4DstPort)
			f.hasPorts = 1
		case valid(h.sctp):
			f.sport = be16(b, h.sctp+l4SrcPort)
			f.dport = be16(b, h.sctp+l4DstPort)
			f.hasPorts = 1
		}
		if f.ipVer != 0 {
			f.trackable = 1
		}
		// ICMP: queries and replies carry an identifier (both "ports" of the conntrack key); only a query
		// starts a tracked flow, whose replies have the counterpart type.
		if valid(h.icmp) {
			f.icmpType = b[h.icmp+icmpType]
			f.icmpCode = b[h.icmp+icmpCode]
			f.icmpPeerType = icmpCounterpart(p4src.IPProtoICMP, f.icmpType)
			f.trackable = 0
			if f.icmpPeerType != p4src.ICMPTypeNone {
				f.sport = be16(b, h.icmp+icmpIdent)
				f.dport = f.sport
				if f.icmpType == p4src.ICMPEchoRequest || f.icmpType == p4src.ICMPTimestamp ||
					f.icmpType == p4src.ICMPInfoRequest || f.icmpType == p4src.ICMPAddress {
					f.trackable = 1
				}
			}
			if valid(h.icmpErrL4) {
				f.icmpError = 1
			}
		} else if valid(h.icmpv6) {
			f.icmpType = b[h.icmpv6+icmpType]
			f.icmpCode = b[h.icmpv6+icmpCode]
			f.icmpPeerType = icmpCounterpart(p4src.IPProtoICMPv6, f.icmpType)
			f.trackable = 0
			if f.icmpPeerType != p4src.ICMPTypeNone {
				f.sport = be16(b, h.icmpv6+icmpIdent)
				f.dport = f.sport
				if f.icmpType == p4src.ICMP6EchoRequest || f.icmpType == p4src.ICMP6NiQuery {
					f.trackable = 1
				}
			}
			if valid(h.icmpErrL4) {
				f.icmpError = 1
			}
		}
		if f.ipVer == 0 {
			m.fate = p4src.FateDrop
			m.dropReason = p4src.DropUnsupported
		}
	}

	// ---- anti-spoofing: a workload sends from its own addresses or its allowed spoofed prefixes only.
	// The same table tells the host's own traffic from traffic the host forwards: a packet from the
	// host port whose source is one of the node's own addresses (an entry of the host endpoint) is the
	// host's; any other is forwarded (not dropped: checked as forwarded).
	if m.fate == p4src.FatePending && (m.src.flags&p4src.EPFlagSourceCheck != 0 || m.src.kind == p4src.EPKindHost) {
		if m.flow.ipVer == 4 {
			w.sourceGuardV4()
		} else {
			w.sourceGuardV6()
		}
		if m.src.kind == p4src.EPKindHost {
			if m.src.spoofed == 0 {
				m.src.hostOrigin = 1
			}
		} else if m.src.spoofed == 1 {
			m.fate = p4src.FateDrop
			m.dropReason = p4src.DropSpoofedSource
		}
	}

	if m.fate != p4src.FatePending {
		m.phase = p4src.PhaseDone
	}
}

// decapsulate: the inner packet becomes the packet. IP-in-IP keeps the outer Ethernet header
// (rewritten on output).
func (w *Worker) decapsulate() {
	h := &w.hdr
	if valid(h.vxlan) {
		h.ethernet = h.innerEthernet
	} else {
		put16(w.buf, h.ethernet+ethType, p4src.EtherTypeIPv4)
	}
	h.vlan = none
	h.ipv4Options, h.ipv4OptionsLen = none, 0
	h.ipv4 = h.innerIPv4
	h.ipv6 = h.innerIPv6
	h.tcp = h.innerTCP
	h.udp = h.innerUDP
	h.sctp = h.innerSCTP
	h.icmp = h.innerICMP
	h.icmpv6 = h.innerICMPv6
	h.vxlan = none
	h.innerEthernet, h.innerIPv4, h.innerIPv6 = none, none, none
	h.innerTCP, h.innerUDP, h.innerSCTP, h.innerICMP, h.innerICMPv6 = none, none, none, none, none
	h.restructured = true
}

// conntrackAffinityServices is "Conntrack, affinity, services: the lookup pass (pass 0) and the
// learning pass". Every learner table has one apply site, used to look up (PHASE_LOOKUP) and, in a
// pass of its own after the checks allowed a new flow, to learn (PHASE_LEARN).
func (w *Worker) conntrackAffinityServices() {
	m, h, b := &w.meta, &w.hdr, w.buf
	f, c, n, s := &m.flow, &m.ct, &m.nat, &m.svc
	c.learning = 0
	if m.phase == p4src.PhaseLearn {
		c.learning = 1
	}
	c.hitOrig = 0
	c.hitReply = 0

	if c.learning == 0 {
		// ---- lookup key: the packet's tuple, or for an ICMP error the reversed tuple of the packet
		// it quotes.
		c.kSrc4, c.kDst4 = f.src4, f.dst4
		c.kSrc6, c.kDst6 = f.src6, f.dst6
		c.kProto = f.proto
		c.kSport, c.kDport = f.sport, f.dport
		c.kICMPType = f.icmpType
		if f.icmpError == 1 {
			if valid(h.icmpErrIPv4) {
				c.kSrc4 = be32(b, h.icmpErrIPv4+ipv4Dst)
				c.kDst4 = be32(b, h.icmpErrIPv4+ipv4Src)
				c.kProto = b[h.icmpErrIPv4+ipv4Proto]
			} else {
				c.kSrc6 = addr16(b, h.icmpErrIPv6+ipv6Dst)
				c.kDst6 = addr16(b, h.icmpErrIPv6+ipv6Src)
				c.kProto = b[h.icmpErrIPv6+ipv6NextHdr]
			}
			c.kICMPType = 0
			if c.kProto == p4src.IPProtoICMP || c.kProto == p4src.IPProtoICMPv6 {
				// A quoted query or reply: its identifier, and the reversed tuple carries its counterpart
				// type (word0 holds the quoted type and code).
				c.kSport = be16(b, h.icmpErrL4+l4Word2)
				c.kDport = c.kSport
				c.kICMPType = icmpCounterpart(c.kProto, b[h.icmpErrL4+l4Word0])
			} else {
				c.kSport = be16(b, h.icmpErrL4+l4Word1)
				c.kDport = be16(b, h.icmpErrL4+l4Word0)
			}
		}

		// Expiry: FIN/RST -> closing; TCP -> established (hits) or handshake (learning a SYN); ICMP;
		// others. Kept in the metadata for the learning pass.
		c.hitProfile = p4src.ExpireOther
		c.learnProfile = p4src.ExpireOther
		if f.proto == p4src.IPProtoTCP {
			c.hitProfile = p4src.ExpireTCPEstablished
			if f.tcpFlags&p4src.TCPFlagSYN == 0 {
				c.learnProfile = p4src.ExpireTCPEstablished
			}
			if f.tcpFlags&(p4src.TCPFlagFIN|p4src.TCPFlagRST) != 0 {
				c.hitProfile = p4src.ExpireClosing
				c.learnProfile = p4src.ExpireClosing
			}
		} else if f.proto == p4src.IPProtoICMP || f.proto == p4src.IPProtoICMPv6 {
			c.hitProfile = p4src.ExpireICMP
			c.learnProfile = p4src.ExpireICMP
		}
	} else {
		// ---- the reply entry: keyed by the tuple replies will carry (the translated tuple,
		// reversed); its value undoes the translation.
		l4, l6 := &w.learnV4, &w.learnV6
		*l4 = ctNatV4{nat: 0, srcAddr: f.dst4, srcPort: f.dport, dstAddr: f.src4, dstPort: f.sport}
		*l6 = ctNatV6{nat: 0, srcAddr: f.dst6, srcPort: f.dport, dstAddr: f.src6, dstPort: f.sport}
		if n.flags&p4src.NATRewriteDst != 0 {
			l4.nat |= p4src.NATRewriteSrc
			l6.nat |= p4src.NATRewriteSrc
		}
		if n.flags&p4src.NATRewriteSrc != 0 {
			l4.nat |= p4src.NATRewriteDst
			l6.nat |= p4src.NATRewriteDst
		}
		c.kProto = f.proto
		c.kSrc4, c.kSrc6, c.kSport = f.dst4, f.dst6, f.dport
		c.kDst4, c.kDst6, c.kDport = f.src4, f.src6, f.sport
		c.kICMPType = f.icmpPeerType // an ICMP query's replies: the reply type
		if n.flags&p4src.NATRewriteDst != 0 {
			c.kSrc4, c.kSrc6, c.kSport = n.dst4, n.dst6, n.dport
		}
		if n.flags&p4src.NATRewriteSrc != 0 {
			c.kDst4, c.kDst6, c.kDport = n.src4, n.src6, n.sport
		}
	}

	// ---- ct_reply_*: the only apply site
	if f.ipVer == 4 {
		w.ctReplyV4()
	} else {
		w.ctReplyV6()
	}

	if c.learning == 1 && c.hitReply == 1 && n.flags&p4src.NATRewriteSrc != 0 {
		// Another flow already owns the masqueraded tuple: nothing more is learned.
		m.fate = p4src.FateDrop
		m.dropReason = p4src.DropSNATConflict
	}

	// ---- ct_orig_*: the only apply site. Looked up when ct_reply missed; learned (keyed by the
	// packet's own tuple, its value repeating the translation: pinned backend) unless the reply tuple
	// conflicted.
	if m.fate == p4src.FatePending && (c.learning == 1 || c.hitReply == 0) {
		if c.learning == 1 {
			w.learnV4 = ctNatV4{nat: n.flags, srcAddr: n.src4, srcPort: n.sport, dstAddr: n.dst4, dstPort: n.dport}
			w.learnV6 = ctNatV6{nat: n.flags, srcAddr: n.src6, srcPort: n.sport, dstAddr: n.dst6, dstPort: n.dport}
			c.kSrc4, c.kDst4 = f.src4, f.dst4
			c.kSrc6, c.kDst6 = f.src6, f.dst6
			c.kSport, c.kDport = f.sport, f.dport
			c.kICMPType = f.icmpType
		}
		if f.ipVer == 4 {
			w.ctOrigV4()
		} else {
			w.ctOrigV6()
		}
	}

	// ---- the lookup's verdict: established / related
	if c.learning == 0 && (c.hitOrig == 1 || c.hitReply == 1) {
		c.state = p4src.CTOrig
		if c.hitReply == 1 {
			c.state = p4src.CTReply
		}
		n.flags = c.vNat
		n.src4, n.src6, n.sport = c.vSrc4, c.vSrc6, c.vSport
		n.dst4, n.dst6, n.dport = c.vDst4, c.vDst6, c.vDport
		if f.icmpError == 1 {
			// Related: only the outer destination address is translated (the quoted header is left
			// as it is).
			c.state = p4src.CTRelated
			n.flags &= p4src.NATRewriteDst
		}
	}

	// ---- affinity_*: the only apply site. Lookup: new flows (not ICMP errors), before the service
	// table, keyed by the packet's tuple. Learning: ClientIP affinity remembers the backend the
	// selector chose, under the same key.
	if (c.learning == 0 && c.state == p4src.CTNew && f.icmpError == 0) ||
		(c.learning == 1 && m.fate == p4src.FatePending && s.flags&p4src.SvcFlagAffinity != 0 && s.fromAffinity == 0) {
		if c.learning == 1 {
			w.learnAffinityV4 = affinityV4{backendAddr: n.dst4, backendPort: n.dport, flags: s.flags}
			w.learnAffinityV6 = affinityV6{backendAddr: n.dst6, backendPort: n.dport, flags: s.flags}
		}
		if f.ipVer == 4 {
			w.affinityV4()
		} else {
			w.affinityV6()
		}
	}

	if c.learning == 0 {
		// ---- new flow: the service (unless affinity answered), then 1:1 NAT
		if c.state == p4src.CTNew && f.icmpError == 0 {
			if f.ipVer == 4 {
				if s.hit == 0 {
					w.serviceV4()
				}
				if s.hit == 0 && s.reject == 0 {
					w.nat1to1V4()
				}
			} else {
				if s.hit == 0 {
					w.serviceV6()
				}
				if s.hit == 0 && s.reject == 0 {
					w.nat1to1V6()
				}
			}
			if s.reject == 1 {
				m.fate = p4src.FateDrop
				m.dropReason = p4src.DropNoServiceBackend
				if m.src.decap == 0 && !valid(h.ipv4Options) && (valid(h.tcp) || valid(h.udp) || valid(h.sctp)) {
					w.serviceRejectReply()
				}
			} else if s.hit == 1 {
				n.flags = p4src.NATRewriteDst
				n.dst4 = s.addr4
				n.dst6 = s.addr6
				n.dport = f.dport
				if s.port != 0 && f.hasPorts == 1 {
					n.dport = s.port
				}
				if s.flags&p4src.SvcFlagMasquerade != 0 {
					n.masquerade = 1
				}
			}
		}
	} else {
		// ---- end of the learning pass: forward (unless the reply tuple conflicted)
		if m.fate == p4src.FatePending {
			m.fate = p4src.FateForward
		}
		c.learning = 0
		m.phase = p4src.PhaseDone
	}
}

// routingMasqueradePlanning is "Pass 0: routing, masquerade, check planning".
func (w *Worker) routingMasqueradePlanning() {
	m := &w.meta
	f, c, n, d := &m.flow, &m.ct, &m.nat, &m.dst

	// ---- routing on the destination after DNAT
	if m.fate == p4src.FatePending {
		d.addr4, d.addr6 = f.dst4, f.dst6
		if n.flags&p4src.NATRewriteDst != 0 {
			d.addr4, d.addr6 = n.dst4, n.dst6
		}
		if f.ipVer == 4 {
			w.routeV4()
		} else {
			w.routeV6()
		}
		if d.routed == 1 {
			w.nexthop()
		}
		if d.kind == p4src.EPKindNone {
			m.fate = p4src.FateDrop
			m.dropReason = p4src.DropNoRoute
		}
	}

	// ---- masquerade (new flows): natOutgoing pools towards destinations outside every pool, and
	// services that ask for it.
	if m.fate == p4src.FatePending && c.state == p4src.CTNew {
		if d.routeFlags&p4src.RouteFlagNATOutgoing != 0 {
			if f.ipVer == 4 {
				w.natOutgoingV4()
			} else {
				w.natOutgoingV6()
			}
			if n.natOutgoing == 1 {
				n.masquerade = 1
			}
		}
		if n.masquerade == 1 {
			if f.ipVer == 4 {
				w.snatAddressV4()
			} else {
				w.snatAddressV6()
			}
			if n.snatOK == 1 {
				n.flags |= p4src.NATRewriteSrc
				n.sport = f.sport // source port kept
			}
		}
	}

	// ---- which checks apply
	if m.fate == p4src.FatePending {
		planNextCheck(m)
		if m.pol.check != p4src.CheckEnd {
			m.phase = p4src.PhasePolicy
		} else if c.state == p4src.CTNew && f.trackable == 1 {
			m.phase = p4src.PhaseLearn
		} else {
			m.fate = p4src.FateForward
			m.phase = p4src.PhaseDone
		}
	} else {
		m.phase = p4src.PhaseDone
	}
}

// policyWalk is "Policy walk: one unit per pass".
func (w *Worker) policyWalk() {
	m := &w.meta
	pol, f := &m.pol, &m.flow
	if pol.state == p4src.WalkStart {
		w.endpointPolicy()
	}
	if pol.state == p4src.WalkList {
		w.policyList()
	}
	if pol.state == p4src.WalkStep {
		pol.setHit = 0
		pol.ruleID = 0
		pol.lookup = p4src.LookupNone
		w.policyStep()
	}
	if pol.state == p4src.WalkStep {
		pol.addr4, pol.addr6, pol.port = pol.src4, pol.src6, pol.sport
		if pol.lookup == p4src.LookupNetDst || pol.lookup == p4src.LookupPortDst {
			pol.addr4, pol.addr6, pol.port = pol.dst4, pol.dst6, pol.dport
		}
		if pol.lookup == p4src.LookupNetSrc || pol.lookup == p4src.LookupNetDst {
			if f.ipVer == 4 {
				w.ipsetNetV4()
			} else {
				w.ipsetNetV6()
			}
		} else if pol.lookup == p4src.LookupPortSrc || pol.lookup == p4src.LookupPortDst {
			if f.ipVer == 4 {
				w.ipsetPortV4()
			} else {
				w.ipsetPortV6()
			}
		}
		w.policyRule()
		if pol.ruleID != 0 {
			w.policyRuleStats()
		}
		switch {
		case pol.result == p4src.RuleAllow:
			pol.verdict = p4src.VerdictAllow
			pol.state = p4src.WalkDone
		case pol.result == p4src.RuleDeny:
			pol.verdict = p4src.VerdictDeny
			pol.state = p4src.WalkDone
		case pol.result == p4src.RulePass:
			pol.pos = pol.tierNext
			pol.state = p4src.WalkList
		case pol.result == p4src.RuleNext:
			pol.step = pol.nextStep
		case pol.missStep != 0:
			pol.step = pol.missStep
		default:
			// The policy did not match: next position of the list.
			pol.pos++
			pol.state = p4src.WalkList
		}
	}
	if pol.state == p4src.WalkDone {
		if pol.verdict == p4src.VerdictDeny {
			m.fate = p4src.FateDrop
			m.dropReason = p4src.DropPolicyDeny
			if pol.broken == 1 {
				m.dropReason = p4src.DropPolicyProgram
			}
			m.phase = p4src.PhaseDone
		} else {
			// An untracked or pre-DNAT allow: Felix's accept mark.
			if pol.verdict == p4src.VerdictAllow && (pol.check == p4src.CheckUntrackedIn ||
				pol.check == p4src.CheckUntrackedOut || pol.check == p4src.CheckPrednat) {
				pol.accepted = 1
				if pol.check != p4src.CheckPrednat {
					pol.untracked = 1
				}
			}
			planNextCheck(m)
			if pol.check == p4src.CheckEnd {
				if m.ct.state == p4src.CTNew && f.trackable == 1 && pol.untracked == 0 {
					m.phase = p4src.PhaseLearn
				} else {
					m.fate = p4src.FateForward
					m.phase = p4src.PhaseDone
				}
			}
		}
	}
}

// Where serviceRejectReply writes the headers the packet did not have (icmp/icmpv6, icmp_err_ipv4/v6,
// icmp_err_l4): the start of the buffer's headroom, never part of a packet on input; the deparser
// (general case) copies them into place in front of the payload.
const (
	rejectICMPOff  int32 = 0
	rejectQuoteOff int32 = rejectICMPOff + icmpLen
	rejectL4Off    int32 = rejectQuoteOff + ipv6Len
)

// serviceRejectReply is k8s.p4's reject block in "new flow: the service": the packet (TCP, UDP or
// SCTP, no IPv4 options, not decapsulated) becomes an ICMP / ICMPv6 port unreachable quoting its IP
// header and the first 8 bytes of its L4 header, back out the ingress port. As in the P4 deparser the
// unparsed payload stays behind the headers: the outer IP length (56) ends the packet before it, so
// receivers trim it as padding, and no checksum covers it.
func (w *Worker) serviceRejectReply() {
	m, h, b := &w.meta, &w.hdr, w.buf
	m.fate = p4src.FateReply
	l4 := rejectL4Off
	switch {
	case valid(h.tcp):
		copy(b[l4:l4+l4WordsLen], b[h.tcp:h.tcp+l4WordsLen]) // ports, sequence number
	case valid(h.udp):
		copy(b[l4:l4+l4WordsLen], b[h.udp:h.udp+l4WordsLen]) // ports, length, checksum
	default:
		copy(b[l4:l4+l4WordsLen], b[h.sctp:h.sctp+l4WordsLen]) // ports, verification tag
	}
	h.icmpErrL4 = l4
	h.tcp, h.udp, h.sctp = none, none, none
	dst := mac48(b, h.ethernet+ethDst)
	putMAC(b, h.ethernet+ethDst, mac48(b, h.ethernet+ethSrc))
	putMAC(b, h.ethernet+ethSrc, dst)
	ck := &w.ck
	q, ic := rejectQuoteOff, rejectICMPOff
	if valid(h.ipv4) {
		o := h.ipv4
		copy(b[q:q+ipv4Len], b[o:o+ipv4Len])
		h.icmpErrIPv4 = q
		src := be32(b, o+ipv4Src)
		put32(b, o+ipv4Src, be32(b, o+ipv4Dst))
		put32(b, o+ipv4Dst, src)
		b[o+ipv4VerIHL] = 0x45 // version 4, ihl 5 (no options)
		b[o+1] = 0             // dscp, ecn
		put16(b, o+ipv4TotalLen, ipv4Len+icmpLen+ipv4Len+l4WordsLen)
		put16(b, o+4, 0) // identification
		put16(b, o+ipv4FlagsFrag, 0)
		b[o+ipv4TTL] = p4src.DefaultTTL
		b[o+ipv4Proto] = p4src.IPProtoICMP
		ck.clear()
		ck.add16(0x4500)
		ck.add16(be16(b, o+ipv4TotalLen))
		ck.add16(0)
		ck.add16(0)
		ck.add16(uint16(p4src.DefaultTTL)<<8 | uint16(p4src.IPProtoICMP))
		ck.add32(be32(b, o+ipv4Src))
		ck.add32(be32(b, o+ipv4Dst))
		put16(b, o+ipv4Checksum, ck.get())
		b[ic+icmpType], b[ic+icmpCode] = p4src.ICMPDestUnreach, p4src.ICMPPortUnreach
		put16(b, ic+icmpIdent, 0)
		put16(b, ic+icmpSeq, 0)
		ck.clear()
		ck.add16(uint16(b[ic+icmpType])<<8 | uint16(b[ic+icmpCode]))
		ck.add16(0)
		ck.add16(0)
		ck.addBytes(b[q : q+ipv4Len])
		ck.addBytes(b[l4 : l4+l4WordsLen])
		put16(b, ic+icmpChecksum, ck.get())
		h.icmp = ic
	} else {
		o := h.ipv6
		copy(b[q:q+ipv6Len], b[o:o+ipv6Len])
		h.icmpErrIPv6 = q
		src := addr16(b, o+ipv6Src)
		copy(b[o+ipv6Src:o+ipv6Src+16], b[o+ipv6Dst:o+ipv6Dst+16])
		putAddr16(b, o+ipv6Dst, &src)
		put32(b, o, 6<<28) // traffic class, flow label 0
		put16(b, o+ipv6PayloadLen, icmpLen+ipv6Len+l4WordsLen)
		b[o+ipv6NextHdr] = p4src.IPProtoICMPv6
		b[o+ipv6HopLimit] = p4src.DefaultTTL
		b[ic+icmpType], b[ic+icmpCode] = p4src.ICMP6DestUnreach, p4src.ICMP6PortUnreach
		put16(b, ic+icmpIdent, 0)
		put16(b, ic+icmpSeq, 0)
		ck.clear()
		ck.addBytes(b[o+ipv6Src : o+ipv6Src+32])
		ck.add16(0)
		ck.add16(be16(b, o+ipv6PayloadLen))
		ck.add16(0)
		ck.add16(uint16(p4src.IPProtoICMPv6))
		ck.add16(uint16(b[ic+icmpType])<<8 | uint16(b[ic+icmpCode]))
		ck.add16(0)
		ck.add16(0)
		ck.addBytes(b[q : q+ipv6Len])
		ck.addBytes(b[l4 : l4+l4WordsLen])
		put16(b, ic+icmpChecksum, ck.get())
		h.icmpv6 = ic
	}
	h.restructured = true
}
