package pipeline

import "github.com/calico-p4/calico-p4/p4src"

// parser is the state of one run of MainParserImpl over w.buf[start:end].
type parser struct {
	b   []byte
	pos int32
	end int32
	err bool // error.PacketTooShort
}

// extract is packet_in.extract: the next n bytes become a header, or the parser stops with
// PacketTooShort (the header stays invalid).
func (p *parser) extract(n int32) (int32, bool) {
	if p.pos+n > p.end {
		p.err = true
		return none, false
	}
	off := p.pos
	p.pos += n
	return off, true
}

// MainParserImpl parses w.buf[w.start:w.end] into w.hdr (k8s.p4's parser, state by state). A parser error
// leaves the headers extracted so far valid and sets w.parserError (istd.parser_error).
func (w *Worker) MainParserImpl() {
	h := &w.hdr
	h.reset()
	p := parser{b: w.buf, pos: w.start, end: w.end}
	w.parseStart(&p)
	h.payload = p.pos
	w.parserError = p.err
}

func (w *Worker) parseStart(p *parser) {
	h := &w.hdr
	var ok bool
	if h.ethernet, ok = p.extract(ethernetLen); !ok {
		return
	}
	switch be16(p.b, h.ethernet+ethType) {
	case p4src.EtherTypeVlan:
		w.parseVLAN(p)
	case p4src.EtherTypeIPv4:
		w.parseIPv4(p)
	case p4src.EtherTypeIPv6:
		w.parseIPv6(p)
	case p4src.EtherTypeARP:
		w.parseARP(p)
	}
}

func (w *Worker) parseVLAN(p *parser) {
	h := &w.hdr
	var ok bool
	if h.vlan, ok = p.extract(vlanLen); !ok {
		return
	}
	switch be16(p.b, h.vlan+vlanType) {
	case p4src.EtherTypeIPv4:
		w.parseIPv4(p)
	case p4src.EtherTypeIPv6:
		w.parseIPv6(p)
	case p4src.EtherTypeARP:
		w.parseARP(p)
	}
}

func (w *Worker) parseARP(p *parser) {
	w.hdr.arp, _ = p.extract(arpLen)
}

// parseIPv4 covers parse_ipv4, parse_ipv4_options, parse_ipv4_no_options and parse_ipv4_l4.
func (w *Worker) parseIPv4(p *parser) {
	h := &w.hdr
	var ok bool
	if h.ipv4, ok = p.extract(ipv4Len); !ok {
		return
	}
	ihl := int32(p.b[h.ipv4+ipv4VerIHL] & 0x0f)
	if ihl < 5 {
		return // malformed: no L4
	}
	if ihl > 5 {
		n := (ihl - 5) * 4
		if h.ipv4Options, ok = p.extract(n); !ok {
			return
		}
		h.ipv4OptionsLen = n
	}
	// Only the first fragment carries the L4 header.
	if be16(p.b, h.ipv4+ipv4FlagsFrag)&0x1fff != 0 {
		return
	}
	switch p.b[h.ipv4+ipv4Proto] {
	case p4src.IPProtoTCP:
		h.tcp, _ = p.extract(tcpLen)
	case p4src.IPProtoUDP:
		w.parseUDP(p)
	case p4src.IPProtoSCTP:
		h.sctp, _ = p.extract(sctpLen)
	case p4src.IPProtoICMP:
		w.parseICMP(p)
	case p4src.IPProtoIPIP:
		w.parseInnerIPv4(p)
	}
}

// Extension headers are not parsed: such packets carry no L4 fields.
func (w *Worker) parseIPv6(p *parser) {
	h := &w.hdr
	var ok bool
	if h.ipv6, ok = p.extract(ipv6Len); !ok {
		return
	}
	switch p.b[h.ipv6+ipv6NextHdr] {
	case p4src.IPProtoTCP:
		h.tcp, _ = p.extract(tcpLen)
	case p4src.IPProtoUDP:
		w.parseUDP(p)
	case p4src.IPProtoSCTP:
		h.sctp, _ = p.extract(sctpLen)
	case p4src.IPProtoICMPv6:
		w.parseICMPv6(p)
	}
}

func (w *Worker) parseUDP(p *parser) {
	h := &w.hdr
	var ok bool
	if h.udp, ok = p.extract(udpLen); !ok {
		return
	}
	if be16(p.b, h.udp+l4DstPort) == p4src.VXLANUDPPort {
		w.parseVXLAN(p)
	}
}

// parseICMP covers parse_icmp, parse_icmp_err_ipv4 and parse_icmp_err_l4.
func (w *Worker) parseICMP(p *parser) {
	h := &w.hdr
	var ok bool
	if h.icmp, ok = p.extract(icmpLen); !ok {
		return
	}
	switch p.b[h.icmp+icmpType] {
	case p4src.ICMPDestUnreach, p4src.ICMPTimeExceeded, p4src.ICMPParamProblem:
		if h.icmpErrIPv4, ok = p.extract(ipv4Len); !ok {
			return
		}
		if p.b[h.icmpErrIPv4+ipv4VerIHL]&0x0f == 5 {
			h.icmpErrL4, _ = p.extract(l4WordsLen)
		}
	}
}

// parseICMPv6 covers parse_icmpv6, parse_icmp_err_ipv6, parse_icmp_err_l4, parse_nd and parse_nd_option.
func (w *Worker) parseICMPv6(p *parser) {
	h := &w.hdr
	var ok bool
	if h.icmpv6, ok = p.extract(icmpLen); !ok {
		return
	}
	switch p.b[h.icmpv6+icmpType] {
	case p4src.ICMP6DestUnreach, p4src.ICMP6PacketTooBig, p4src.ICMP6TimeExceeded, p4src.ICMP6ParamProblem:
		if h.icmpErrIPv6, ok = p.extract(ipv6Len); !ok {
			return
		}
		h.icmpErrL4, _ = p.extract(l4WordsLen)
	case p4src.ICMP6NDNS, p4src.ICMP6NDNA:
		if h.ndTarget, ok = p.extract(ndTargetLen); !ok {
			return
		}
		if be16(p.b, h.ipv6+ipv6PayloadLen) == p4src.NDNSPayloadLen {
			h.ndOption, _ = p.extract(ndOptionLen)
		}
	}
}

// Tunnels: VXLAN (UDP 4789) and IP-in-IP.
func (w *Worker) parseVXLAN(p *parser) {
	h := &w.hdr
	var ok bool
	if h.vxlan, ok = p.extract(vxlanLen); !ok {
		return
	}
	if h.innerEthernet, ok = p.extract(ethernetLen); !ok {
		return
	}
	switch be16(p.b, h.innerEthernet+ethType) {
	case p4src.EtherTypeIPv4:
		w.parseInnerIPv4(p)
	case p4src.EtherTypeIPv6:
		w.parseInnerIPv6(p)
	}
}

// parseInnerIPv4 covers parse_inner_ipv4, parse_inner_ipv4_fragment and parse_inner_ipv4_l4.
func (w *Worker) parseInnerIPv4(p *parser) {
	h := &w.hdr
	var ok bool
	if h.innerIPv4, ok = p.extract(ipv4Len); !ok {
		return
	}
	if p.b[h.innerIPv4+ipv4VerIHL]&0x0f != 5 {
		return
	}
	if be16(p.b, h.innerIPv4+ipv4FlagsFrag)&0x1fff != 0 {
		return
	}
	w.parseInnerL4(p, p.b[h.innerIPv4+ipv4Proto], p4src.IPProtoICMP)
}

func (w *Worker) parseInnerIPv6(p *parser) {
	h := &w.hdr
	var ok bool
	if h.innerIPv6, ok = p.extract(ipv6Len); !ok {
		return
	}
	w.parseInnerL4(p, p.b[h.innerIPv6+ipv6NextHdr], p4src.IPProtoICMPv6)
}

func (w *Worker) parseInnerL4(p *parser, proto, icmpProto uint8) {
	h := &w.hdr
	switch proto {
	case p4src.IPProtoTCP:
		h.innerTCP, _ = p.extract(tcpLen)
	case p4src.IPProtoUDP:
		h.innerUDP, _ = p.extract(udpLen)
	case p4src.IPProtoSCTP:
		h.innerSCTP, _ = p.extract(sctpLen)
	case icmpProto:
		if icmpProto == p4src.IPProtoICMP {
			h.innerICMP, _ = p.extract(icmpLen)
		} else {
			h.innerICMPv6, _ = p.extract(icmpLen)
		}
	}
}
