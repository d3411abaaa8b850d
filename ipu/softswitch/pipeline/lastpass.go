package pipeline

import "github.com/calico-p4/calico-p4/p4src"

// icmpCounterpart is k8s.p4's icmp_counterpart: the reply type of an ICMP / ICMPv6 query, the query type
// of a reply (Linux conntrack's invmap); ICMP_TYPE_NONE for other messages.
func icmpCounterpart(ipProto, t uint8) uint8 {
	switch ipProto {
	case p4src.IPProtoICMP:
		switch t {
		case p4src.ICMPEchoRequest:
			return p4src.ICMPEchoReply
		case p4src.ICMPEchoReply:
			return p4src.ICMPEchoRequest
		case p4src.ICMPTimestamp:
			return p4src.ICMPTimestampReply
		case p4src.ICMPTimestampReply:
			return p4src.ICMPTimestamp
		case p4src.ICMPInfoRequest:
			return p4src.ICMPInfoReply
		case p4src.ICMPInfoReply:
			return p4src.ICMPInfoRequest
		case p4src.ICMPAddress:
			return p4src.ICMPAddressReply
		case p4src.ICMPAddressReply:
			return p4src.ICMPAddress
		}
	case p4src.IPProtoICMPv6:
		switch t {
		case p4src.ICMP6EchoRequest:
			return p4src.ICMP6EchoReply
		case p4src.ICMP6EchoReply:
			return p4src.ICMP6EchoRequest
		case p4src.ICMP6NiQuery:
			return p4src.ICMP6NiReply
		case p4src.ICMP6NiReply:
			return p4src.ICMP6NiQuery
		}
	}
	return p4src.ICMPTypeNone
}

// planNextCheck is k8s.p4's plan_next_check: it moves meta.pol.check to the next check that applies to
// this packet and prepares its walk. The checks are Felix's chains in their order: untracked ingress /
// untracked egress (every packet), then — for new flows, and for every packet an untracked policy
// allowed (no conntrack) — pre-DNAT (not after an untracked allow), the source endpoint's "from" check
// (not after an untracked or pre-DNAT allow: Felix's accept mark), the destination endpoint's "to"
// check; around them, for traffic forwarded from / to a workload under a "*" host endpoint with
// applyOnForward policy (EPFlagHepForward), that endpoint's forward ingress (before "from", not after
// the accept mark) and forward egress (after "to") lists. The host's own traffic (hostOrigin) gets no check towards workloads (Felix's OUTPUT chain) and
// the host endpoint's egress towards the uplink; other packets from the host port are forwarded traffic.
func planNextCheck(m *metadata) {
	c := m.pol.check
	n := p4src.CheckEnd
	fromUplink := m.src.kind == p4src.EPKindUplink || m.src.kind == p4src.EPKindTunnel
	fromHost := m.src.kind == p4src.EPKindHost && m.src.hostOrigin == 1

	switch {
	case c < p4src.CheckUntrackedIn && fromUplink && m.src.flags&p4src.EPFlagUntracked != 0:
		n = p4src.CheckUntrackedIn
	case c < p4src.CheckUntrackedOut && fromHost && m.dst.kind == p4src.EPKindUplink &&
		m.dst.flags&p4src.EPFlagUntracked != 0:
		n = p4src.CheckUntrackedOut
	case m.ct.state != p4src.CTNew && m.pol.untracked == 0:
		n = p4src.CheckEnd // established / related: no policy
	case c < p4src.CheckPrednat && (fromUplink || m.src.kind == p4src.EPKindWorkload) &&
		m.src.flags&p4src.EPFlagPrednat != 0 && m.pol.accepted == 0:
		n = p4src.CheckPrednat
	case c < p4src.CheckFromForward && m.src.kind == p4src.EPKindWorkload && m.dst.kind != p4src.EPKindHost &&
		m.src.flags&p4src.EPFlagHepForward != 0 && m.pol.accepted == 0:
		n = p4src.CheckFromForward
	case c < p4src.CheckFrom && m.src.flags&p4src.EPFlagPolicy != 0 &&
		(m.src.kind == p4src.EPKindWorkload || (fromUplink && m.pol.accepted == 0)):
		n = p4src.CheckFrom
	case c < p4src.CheckTo && m.dst.flags&p4src.EPFlagPolicy != 0 &&
		((m.dst.kind == p4src.EPKindWorkload && !fromHost) ||
			(m.dst.kind == p4src.EPKindUplink && (!fromHost || m.pol.accepted == 0)) ||
			(m.dst.kind == p4src.EPKindHost && m.src.kind == p4src.EPKindWorkload)):
		n = p4src.CheckTo
	case c < p4src.CheckToForward && m.dst.kind == p4src.EPKindWorkload && !fromHost &&
		m.dst.flags&p4src.EPFlagHepForward != 0:
		n = p4src.CheckToForward
	}

	m.pol.check = n
	m.pol.state = p4src.WalkStart
	m.pol.verdict = p4src.VerdictNone

	// Untracked and pre-DNAT checks see the packet as received; the others see it after DNAT (before
	// SNAT), as Felix's filter table does.
	m.pol.src4, m.pol.src6 = m.flow.src4, m.flow.src6
	m.pol.dst4, m.pol.dst6 = m.flow.dst4, m.flow.dst6
	m.pol.sport, m.pol.dport = 0, 0
	if m.flow.hasPorts == 1 {
		m.pol.sport, m.pol.dport = m.flow.sport, m.flow.dport
	}
	if n == p4src.CheckFrom || n == p4src.CheckTo || n == p4src.CheckFromForward || n == p4src.CheckToForward {
		m.pol.dst4, m.pol.dst6 = m.dst.addr4, m.dst.addr6
		if m.flow.hasPorts == 1 && m.nat.flags&p4src.NATRewriteDst != 0 {
			m.pol.dport = m.nat.dport
		}
	}

	switch n {
	case p4src.CheckUntrackedIn:
		m.pol.endpoint = m.src.endpoint
		m.pol.stage = p4src.StageUntrackedIngress
	case p4src.CheckUntrackedOut:
		m.pol.endpoint = m.dst.endpoint
		m.pol.stage = p4src.StageUntrackedEgress
	case p4src.CheckPrednat:
		m.pol.endpoint = m.src.endpoint
		m.pol.stage = p4src.StagePrednatIngress
	case p4src.CheckFromForward:
		m.pol.endpoint = m.src.endpoint
		m.pol.stage = p4src.StageForwardIngress
	case p4src.CheckFrom:
		m.pol.endpoint = m.src.endpoint
		switch {
		case m.src.kind == p4src.EPKindWorkload:
			m.pol.stage = p4src.StageWorkloadEgress
		case m.dst.kind == p4src.EPKindHost:
			m.pol.stage = p4src.StageHostIngress
		default:
			m.pol.stage = p4src.StageForwardIngress
		}
	case p4src.CheckTo:
		m.pol.endpoint = m.dst.endpoint
		switch {
		case m.dst.kind == p4src.EPKindWorkload:
			m.pol.stage = p4src.StageWorkloadIngress
		case m.dst.kind == p4src.EPKindHost:
			m.pol.stage = p4src.StageWorkloadToHost
		case fromHost:
			m.pol.stage = p4src.StageHostEgress
		default:
			m.pol.stage = p4src.StageForwardEgress
		}
	case p4src.CheckToForward:
		m.pol.endpoint = m.dst.endpoint
		m.pol.stage = p4src.StageForwardEgress
	}
}

// lastPass is "Last pass: TTL, NAT, MACs, encapsulation, send".
func (w *Worker) lastPass() {
	m, h, b := &w.meta, &w.hdr, w.buf
	f, d, n := &m.flow, &m.dst, &m.nat
	if m.fate == p4src.FateForward && d.decrementTTL == 1 && m.src.kind != p4src.EPKindHost {
		if valid(h.ipv4) && b[h.ipv4+ipv4TTL] <= 1 {
			m.fate = p4src.FateDrop
			m.dropReason = p4src.DropTTLExpired
		} else if valid(h.ipv6) && b[h.ipv6+ipv6HopLimit] <= 1 {
			m.fate = p4src.FateDrop
			m.dropReason = p4src.DropTTLExpired
		}
	}
	if m.fate == p4src.FateForward && d.encap == p4src.EncapIPIP && !valid(h.ipv4) {
		m.fate = p4src.FateDrop
		m.dropReason = p4src.DropNoRoute
	}

	if m.fate == p4src.FateForward {
		ck := &w.ck
		decTTL := d.decrementTTL == 1 && m.src.kind != p4src.EPKindHost
		var oldSrc4, oldDst4 uint32
		var oldSrc6, oldDst6 ip6
		// ---- IPv4: TTL and NAT, checksums updated incrementally (RFC 1624), so IPv4 options are covered.
		if valid(h.ipv4) {
			ip := h.ipv4
			oldSrc4 = be32(b, ip+ipv4Src)
			oldDst4 = be32(b, ip+ipv4Dst)
			oldTTLProto := be16(b, ip+ipv4TTL)
			if decTTL {
				b[ip+ipv4TTL]--
			}
			if n.flags&p4src.NATRewriteSrc != 0 {
				put32(b, ip+ipv4Src, n.src4)
			}
			if n.flags&p4src.NATRewriteDst != 0 {
				put32(b, ip+ipv4Dst, n.dst4)
			}
			ck.clear()
			ck.setState(^be16(b, ip+ipv4Checksum))
			ck.sub16(oldTTLProto)
			ck.sub32(oldSrc4)
			ck.sub32(oldDst4)
			ck.add16(be16(b, ip+ipv4TTL))
			ck.add32(be32(b, ip+ipv4Src))
			ck.add32(be32(b, ip+ipv4Dst))
			put16(b, ip+ipv4Checksum, ck.get())
		}
		// ---- IPv6: hop limit and NAT
		if valid(h.ipv6) {
			ip := h.ipv6
			oldSrc6 = addr16(b, ip+ipv6Src)
			oldDst6 = addr16(b, ip+ipv6Dst)
			if decTTL {
				b[ip+ipv6HopLimit]--
			}
			if n.flags&p4src.NATRewriteSrc != 0 {
				putAddr16(b, ip+ipv6Src, &n.src6)
			}
			if n.flags&p4src.NATRewriteDst != 0 {
				putAddr16(b, ip+ipv6Dst, &n.dst6)
			}
		}
		// ---- L4 ports and checksums (pseudo-header addresses)
		if n.flags != 0 {
			oldSport, oldDport := f.sport, f.dport
			if f.icmpError == 0 && f.hasPorts == 1 {
				l4 := none
				switch {
				case valid(h.tcp):
					l4 = h.tcp
				case valid(h.udp):
					l4 = h.udp
				case valid(h.sctp):
					l4 = h.sctp
				}
				if l4 >= 0 {
					if n.flags&p4src.NATRewriteSrc != 0 {
						put16(b, l4+l4SrcPort, n.sport)
					}
					if n.flags&p4src.NATRewriteDst != 0 {
						put16(b, l4+l4DstPort, n.dport)
					}
				}
			}
			pseudo := func() {
				if valid(h.ipv4) {
					ck.sub32(oldSrc4)
					ck.sub32(oldDst4)
					ck.add32(be32(b, h.ipv4+ipv4Src))
					ck.add32(be32(b, h.ipv4+ipv4Dst))
				} else {
					ck.subBytes(oldSrc6[:])
					ck.subBytes(oldDst6[:])
					ck.addBytes(b[h.ipv6+ipv6Src : h.ipv6+ipv6Src+32])
				}
			}
			switch {
			case valid(h.tcp):
				ck.clear()
				ck.setState(^be16(b, h.tcp+tcpChecksum))
				pseudo()
				ck.sub16(oldSport)
				ck.sub16(oldDport)
				ck.add16(be16(b, h.tcp+l4SrcPort))
				ck.add16(be16(b, h.tcp+l4DstPort))
				put16(b, h.tcp+tcpChecksum, ck.get())
			case valid(h.udp) && (be16(b, h.udp+udpChecksum) != 0 || valid(h.ipv6)):
				ck.clear()
				ck.setState(^be16(b, h.udp+udpChecksum))
				pseudo()
				ck.sub16(oldSport)
				ck.sub16(oldDport)
				ck.add16(be16(b, h.udp+l4SrcPort))
				ck.add16(be16(b, h.udp+l4DstPort))
				sum := ck.get()
				if sum == 0 {
					sum = 0xffff
				}
				put16(b, h.udp+udpChecksum, sum)
			case valid(h.icmpv6):
				// ICMPv6 covers the pseudo-header; ICMPv4 does not.
				ck.clear()
				ck.setState(^be16(b, h.icmpv6+icmpChecksum))
				ck.subBytes(oldSrc6[:])
				ck.subBytes(oldDst6[:])
				ck.addBytes(b[h.ipv6+ipv6Src : h.ipv6+ipv6Src+32])
				put16(b, h.icmpv6+icmpChecksum, ck.get())
			}
			// SCTP's CRC32c covers the payload and is not updated.
		}

		// ---- L2: drop any VLAN tag, set the next hop's MACs
		if valid(h.vlan) {
			put16(b, h.ethernet+ethType, be16(b, h.vlan+vlanType))
			h.vlan = none
			h.restructured = true
		}
		putMAC(b, h.ethernet+ethDst, d.dmac)
		putMAC(b, h.ethernet+ethSrc, d.smac)

		// ---- encapsulation
		l3Len := uint16(0)
		if valid(h.ipv4) {
			l3Len = be16(b, h.ipv4+ipv4TotalLen)
		} else if valid(h.ipv6) {
			l3Len = be16(b, h.ipv6+ipv6PayloadLen) + 40
		}
		e := &w.encap
		switch d.encap {
		case p4src.EncapVXLANV4, p4src.EncapVXLANV6:
			putMAC(b, h.ethernet+ethDst, d.innerDmac)
			putMAC(b, h.ethernet+ethSrc, d.innerSmac)
			h.encapEthernet = true
			e.ethDst, e.ethSrc = d.dmac, d.smac
			h.encapVXLAN = true
			e.vni = d.vni
			h.encapUDP = true
			e.udpSrc = 0xc000 | ((f.sport ^ f.dport) & 0x3fff)
			e.udpDst = d.vxlanPort
			e.udpLen = l3Len + 30 // UDP 8 + VXLAN 8 + Ethernet 14
			if d.encap == p4src.EncapVXLANV4 {
				e.ethType = p4src.EtherTypeIPv4
				h.encapIPv4 = true
				e.ipv4TotalLen = l3Len + 50
				e.ipv4Proto = p4src.IPProtoUDP
				e.src4, e.dst4 = d.outerSrc4, d.outerDst4
			} else {
				e.ethType = p4src.EtherTypeIPv6
				h.encapIPv6 = true
				e.ipv6PayloadLen = l3Len + 30
				e.src6, e.dst6 = d.outerSrc6, d.outerDst6
			}
			h.restructured = true
		case p4src.EncapIPIP:
			h.encapEthernet = true
			e.ethDst, e.ethSrc = d.dmac, d.smac
			e.ethType = p4src.EtherTypeIPv4
			h.ethernet = none
			h.encapIPv4 = true
			e.ipv4TotalLen = l3Len + 20
			e.ipv4Proto = p4src.IPProtoIPIP
			e.src4, e.dst4 = d.outerSrc4, d.outerDst4
			h.restructured = true
		}
		if h.encapIPv4 {
			ck.clear()
			// version 4, ihl 5, dscp/ecn 0; flags/fragment 0
			ck.add16(0x4500)
			ck.add16(e.ipv4TotalLen)
			ck.add16(0) // identification
			ck.add16(0)
			ck.add16(uint16(p4src.DefaultTTL)<<8 | uint16(e.ipv4Proto))
			ck.add32(e.src4)
			ck.add32(e.dst4)
			e.ipv4Checksum = ck.get()
		}
	}

	// ---- the fate, decided once
	switch m.fate {
	case p4src.FateForward:
		w.outPort = d.port
	case p4src.FateReply:
		if m.dropReason != p4src.DropNone {
			// A rejected packet (DROP_NO_SERVICE_BACKEND) is counted as dropped; the ICMP error built
			// from it is sent.
			w.countDrop(m.dropReason)
		}
		w.outPort = m.src.port
	case p4src.FateBridge:
		w.outPort = m.src.peerPort
	default:
		w.countDrop(m.dropReason)
	}
}
