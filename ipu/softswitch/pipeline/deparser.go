package pipeline

import "github.com/calico-p4/calico-p4/p4src"

// MainDeparserImpl emits the valid headers in k8s.p4's order followed by the unparsed payload, leaving
// the packet in w.buf[w.start:w.end]. Headers changed in place need no work; when the layout changed
// (decapsulation, a VLAN tag removed, encapsulation) the headers are rebuilt in front of the payload.
func (w *Worker) MainDeparserImpl() {
	h := &w.hdr
	if !h.restructured {
		return
	}
	// The headers of the packet as received, in emit order.
	views := [...]struct{ off, n int32 }{
		{h.ethernet, ethernetLen}, {h.vlan, vlanLen}, {h.arp, arpLen}, {h.ipv4, ipv4Len},
		{h.ipv4Options, h.ipv4OptionsLen}, {h.ipv6, ipv6Len}, {h.tcp, tcpLen}, {h.udp, udpLen},
		{h.sctp, sctpLen}, {h.icmp, icmpLen}, {h.icmpv6, icmpLen}, {h.ndTarget, ndTargetLen},
		{h.ndOption, ndOptionLen}, {h.icmpErrIPv4, ipv4Len}, {h.icmpErrIPv6, ipv6Len}, {h.icmpErrL4, l4WordsLen},
		{h.vxlan, vxlanLen}, {h.innerEthernet, ethernetLen}, {h.innerIPv4, ipv4Len}, {h.innerIPv6, ipv6Len},
		{h.innerTCP, tcpLen}, {h.innerUDP, udpLen}, {h.innerSCTP, sctpLen}, {h.innerICMP, icmpLen},
		{h.innerICMPv6, icmpLen},
	}
	// Fast path: the headers are contiguous and end at the payload (nothing moved, or a prefix was
	// removed as by VXLAN decapsulation).
	first, next := none, none
	contiguous := true
	for _, v := range views {
		if v.off < 0 {
			continue
		}
		if first < 0 {
			first = v.off
		} else if v.off != next {
			contiguous = false
			break
		}
		next = v.off + v.n
	}
	if first < 0 {
		first, next = h.payload, h.payload
	}
	contiguous = contiguous && next == h.payload
	enc := w.encapLen()
	if contiguous {
		start := first - enc
		w.writeEncap(w.buf[start:first])
		w.start = start
		return
	}
	// General case: assemble the headers in scratch, then place them in front of the payload.
	s := w.scratch[:0]
	s = s[:enc]
	w.writeEncap(s)
	for _, v := range views {
		if v.off >= 0 {
			s = append(s, w.buf[v.off:v.off+v.n]...)
		}
	}
	start := h.payload - int32(len(s))
	copy(w.buf[start:h.payload], s)
	w.start = start
}

func (w *Worker) encapLen() int32 {
	h := &w.hdr
	n := int32(0)
	if h.encapEthernet {
		n += ethernetLen
	}
	if h.encapIPv4 {
		n += ipv4Len
	}
	if h.encapIPv6 {
		n += ipv6Len
	}
	if h.encapUDP {
		n += udpLen
	}
	if h.encapVXLAN {
		n += vxlanLen
	}
	return n
}

// writeEncap serialises the valid encap_* headers into b (len(b) == encapLen()).
func (w *Worker) writeEncap(b []byte) {
	h, e := &w.hdr, &w.encap
	o := int32(0)
	if h.encapEthernet {
		putMAC(b, o+ethDst, e.ethDst)
		putMAC(b, o+ethSrc, e.ethSrc)
		put16(b, o+ethType, e.ethType)
		o += ethernetLen
	}
	if h.encapIPv4 {
		b[o] = 0x45
		b[o+1] = 0
		put16(b, o+ipv4TotalLen, e.ipv4TotalLen)
		put16(b, o+4, 0)
		put16(b, o+ipv4FlagsFrag, 0)
		b[o+ipv4TTL] = p4src.DefaultTTL
		b[o+ipv4Proto] = e.ipv4Proto
		put16(b, o+ipv4Checksum, e.ipv4Checksum)
		put32(b, o+ipv4Src, e.src4)
		put32(b, o+ipv4Dst, e.dst4)
		o += ipv4Len
	}
	if h.encapIPv6 {
		put32(b, o, 6<<28)
		put16(b, o+ipv6PayloadLen, e.ipv6PayloadLen)
		b[o+ipv6NextHdr] = p4src.IPProtoUDP
		b[o+ipv6HopLimit] = p4src.DefaultTTL
		putAddr16(b, o+ipv6Src, &e.src6)
		putAddr16(b, o+ipv6Dst, &e.dst6)
		o += ipv6Len
	}
	if h.encapUDP {
		put16(b, o+l4SrcPort, e.udpSrc)
		put16(b, o+l4DstPort, e.udpDst)
		put16(b, o+4, e.udpLen)
		put16(b, o+udpChecksum, 0)
		o += udpLen
	}
	if h.encapVXLAN {
		put32(b, o, uint32(p4src.VXLANFlags)<<24)
		put32(b, o+4, e.vni<<8)
	}
}
