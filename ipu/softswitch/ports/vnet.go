package ports

import (
	"encoding/binary"
	"errors"
)

// virtio_net_hdr (PACKET_VNET_HDR, IFF_VNET_HDR): GSO and checksum-offload metadata of a packet,
// little-endian on the hosts we run on.
const vnetLen = 10

const (
	vnetNeedsCsum = 1
	gsoNone       = 0
	gsoTCPv4      = 1
	gsoUDP        = 3
	gsoTCPv6      = 4
	gsoUDPL4      = 5
	gsoECN        = 0x80
)

type vnetHdr struct {
	flags, gsoType                         uint8
	hdrLen, gsoSize, csumStart, csumOffset uint16
}

func decodeVnet(b []byte) vnetHdr {
	return vnetHdr{flags: b[0], gsoType: b[1], hdrLen: binary.LittleEndian.Uint16(b[2:]),
		gsoSize: binary.LittleEndian.Uint16(b[4:]), csumStart: binary.LittleEndian.Uint16(b[6:]),
		csumOffset: binary.LittleEndian.Uint16(b[8:])}
}

func (h *vnetHdr) encode(b []byte) {
	b[0], b[1] = h.flags, h.gsoType
	binary.LittleEndian.PutUint16(b[2:], h.hdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.gsoSize)
	binary.LittleEndian.PutUint16(b[6:], h.csumStart)
	binary.LittleEndian.PutUint16(b[8:], h.csumOffset)
}

func (h *vnetHdr) gso() uint8 { return h.gsoType &^ gsoECN }

// partialField returns the offset of the checksum field of a CHECKSUM_PARTIAL packet, or -1.
func (h *vnetHdr) partialField(frameLen int) int {
	if h.flags&vnetNeedsCsum == 0 {
		return -1
	}
	off := int(h.csumStart) + int(h.csumOffset)
	if off+2 > frameLen {
		return -1
	}
	return off
}

// invert16 complements the 16-bit field at off. A CHECKSUM_PARTIAL field holds the pseudo-header sum
// (not its complement); inverting it before and after the pipeline makes the program's incremental
// checksum update (RFC 1624 on a complemented checksum) move the pseudo-header sum correctly when
// addresses or ports are rewritten.
func invert16(b []byte, off int) {
	binary.BigEndian.PutUint16(b[off:], ^binary.BigEndian.Uint16(b[off:]))
}

// partialPorts reads the ports (the first four bytes of the L4 header at start) of a CHECKSUM_PARTIAL TCP
// or UDP packet whose checksum field is at field; ok is false for anything else (SCTP's CRC32c is no
// pseudo-header sum).
func partialPorts(b []byte, start, field int) (uint32, bool) {
	if off := field - start; start < 0 || start+4 > len(b) || (off != 16 && off != 6) {
		return 0, false
	}
	return binary.BigEndian.Uint32(b[start:]), true
}

// unportPartial takes back out of a CHECKSUM_PARTIAL field what the pipeline's incremental update added
// for rewritten ports (before → after): the field holds the pseudo-header sum, which has no ports — the
// completion (software, or the receiver's device) sums the L4 header, new ports included, itself. Without
// it a NATed port is counted twice and the completed checksum is wrong (found by the two-node service
// test: DNAT to a backend on another node, completed before VXLAN encapsulation, refused by the backend).
func unportPartial(b []byte, field int, before, after uint32) {
	if before == after {
		return
	}
	s := uint32(binary.BigEndian.Uint16(b[field:])) + uint32(^uint16(after>>16)) + uint32(^uint16(after)) +
		before>>16 + before&0xffff
	binary.BigEndian.PutUint16(b[field:], fold(s))
}

func sum16(b []byte, s uint32) uint32 {
	n := len(b)
	for i := 0; i+1 < n; i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if n%2 == 1 {
		s += uint32(b[n-1]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// completeChecksum finishes a CHECKSUM_PARTIAL packet in software (what a device without checksum
// offload does): the field already holds the pseudo-header sum.
func completeChecksum(frame []byte, start, off int) {
	if start > len(frame) || off+2 > len(frame) {
		return
	}
	c := ^fold(sum16(frame[start:], 0))
	binary.BigEndian.PutUint16(frame[off:], c)
}

var errSegment = errors.New("cannot segment this packet")

// ipHdr is an IP header found while walking a frame's header chain.
type ipHdr struct {
	off int
	v6  bool
}

// headerChain walks Ethernet / IPv4 / IPv6 / VXLAN (UDP) / IP-in-IP headers up to the L4 header at l4,
// returning the IP headers and UDP (tunnel) headers on the way.
func headerChain(f []byte, l4 int) (ips []ipHdr, udps []int, err error) {
	pos := 14
	if len(f) < 14 {
		return nil, nil, errSegment
	}
	et := binary.BigEndian.Uint16(f[12:])
	for depth := 0; depth < 4; depth++ {
		var next int
		var proto uint8
		switch et {
		case 0x0800:
			if pos+20 > len(f) {
				return nil, nil, errSegment
			}
			ips = append(ips, ipHdr{off: pos})
			next = pos + int(f[pos]&0x0f)*4
			proto = f[pos+9]
		case 0x86dd:
			if pos+40 > len(f) {
				return nil, nil, errSegment
			}
			ips = append(ips, ipHdr{off: pos, v6: true})
			next = pos + 40
			proto = f[pos+6]
		default:
			return nil, nil, errSegment
		}
		if next == l4 {
			return ips, udps, nil
		}
		switch proto {
		case 4:
			et, pos = 0x0800, next
		case 41:
			et, pos = 0x86dd, next
		case 17: // VXLAN: UDP, VXLAN, inner Ethernet
			if next+8+8+14 > len(f) {
				return nil, nil, errSegment
			}
			udps = append(udps, next)
			pos = next + 8 + 8 + 14
			et = binary.BigEndian.Uint16(f[pos-2:])
		default:
			return nil, nil, errSegment
		}
	}
	return nil, nil, errSegment
}

// segment splits a GSO super-packet (TCP or UDP_L4) whose L4 header starts at l4 into segments of at
// most mss payload bytes, each with complete checksums, appended to out; emit is called with each
// segment. IP lengths, IPv4 ids and checksums, tunnel UDP lengths, TCP sequence numbers and flags
// are fixed per segment.
func segment(f []byte, l4 int, mss int, udp bool, out []byte, emit func([]byte)) error {
	if mss <= 0 || l4 <= 0 || l4 >= len(f) {
		return errSegment
	}
	ips, udps, err := headerChain(f, l4)
	if err != nil || len(ips) == 0 {
		return errSegment
	}
	l4len := 8
	if !udp {
		if l4+20 > len(f) {
			return errSegment
		}
		l4len = int(f[l4+12]>>4) * 4
	}
	hl := l4 + l4len
	if hl > len(f) {
		return errSegment
	}
	payload := f[hl:]
	inner := ips[len(ips)-1]
	var seq uint32
	if !udp {
		seq = binary.BigEndian.Uint32(f[l4+4:])
	}
	n := (len(payload) + mss - 1) / mss
	if n == 0 {
		n = 1
	}
	for i := 0; i < n; i++ {
		lo := i * mss
		hi := min(lo+mss, len(payload))
		segLen := hl + hi - lo
		if cap(out) < segLen {
			return errSegment
		}
		s := out[:segLen]
		copy(s, f[:hl])
		copy(s[hl:], payload[lo:hi])
		for _, ip := range ips {
			if ip.v6 {
				binary.BigEndian.PutUint16(s[ip.off+4:], uint16(segLen-ip.off-40))
				continue
			}
			ihl := int(s[ip.off]&0x0f) * 4
			binary.BigEndian.PutUint16(s[ip.off+2:], uint16(segLen-ip.off))
			binary.BigEndian.PutUint16(s[ip.off+4:], binary.BigEndian.Uint16(f[ip.off+4:])+uint16(i))
			s[ip.off+10], s[ip.off+11] = 0, 0
			binary.BigEndian.PutUint16(s[ip.off+10:], ^fold(sum16(s[ip.off:ip.off+ihl], 0)))
		}
		for _, u := range udps {
			binary.BigEndian.PutUint16(s[u+4:], uint16(segLen-u))
		}
		// L4: sequence, flags, checksum with the innermost IP's pseudo-header.
		csumOff := l4 + 6
		if !udp {
			binary.BigEndian.PutUint32(s[l4+4:], seq+uint32(lo))
			flags := f[l4+13]
			if i > 0 {
				flags &^= 0x80 // CWR only on the first segment
			}
			if i < n-1 {
				flags &^= 0x01 | 0x08 // FIN, PSH only on the last
			}
			s[l4+13] = flags
			csumOff = l4 + 16
		} else {
			binary.BigEndian.PutUint16(s[l4+4:], uint16(segLen-l4))
		}
		s[csumOff], s[csumOff+1] = 0, 0
		var ps uint32
		l4Len := uint32(segLen - l4)
		proto := uint32(6)
		if udp {
			proto = 17
		}
		if inner.v6 {
			ps = sum16(s[inner.off+8:inner.off+40], 0) + l4Len>>16 + l4Len&0xffff + proto
		} else {
			ps = sum16(s[inner.off+12:inner.off+20], 0) + l4Len + proto
		}
		c := ^fold(sum16(s[l4:], ps))
		if udp && c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(s[csumOff:], c)
		emit(s)
	}
	return nil
}
