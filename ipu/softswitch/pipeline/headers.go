package pipeline

import "encoding/binary"

// Header views. The parser does not copy header fields: each header of k8s.p4's headers_t is the offset
// of its bytes in the worker's packet buffer (none when invalid), and the controls read and write fields
// in place. Assigning one header to another (decapsulation) moves the view; the deparser then emits the
// valid headers in MainDeparserImpl's order, moving bytes only when the layout changed.

const none int32 = -1

// Header sizes in bytes (k8s.p4 header types).
const (
	ethernetLen  = 14
	vlanLen      = 4
	arpLen       = 28
	ipv4Len      = 20
	ipv6Len      = 40
	tcpLen       = 20
	udpLen       = 8
	sctpLen      = 12
	icmpLen      = 8
	ndTargetLen  = 16
	ndOptionLen  = 8
	vxlanLen     = 8
	l4WordsLen   = 8
	maxEncapLen  = ethernetLen + ipv6Len + udpLen + vxlanLen
	maxHeaderLen = 512 // every header of one packet, encapsulation included
)

// headers is headers_t: one view per header.
type headers struct {
	// Added on output only: the outer headers of an encapsulated packet, built in encap.
	encapEthernet, encapIPv4, encapIPv6, encapUDP, encapVXLAN bool

	ethernet, vlan, arp, ipv4, ipv4Options, ipv6, tcp, udp, sctp, icmp, icmpv6, ndTarget, ndOption int32
	icmpErrIPv4, icmpErrIPv6, icmpErrL4                                                            int32
	vxlan, innerEthernet, innerIPv4, innerIPv6, innerTCP, innerUDP, innerSCTP, innerICMP           int32
	innerICMPv6                                                                                    int32

	ipv4OptionsLen int32 // bytes of the varbit ipv4_options
	payload        int32 // where the parser stopped: the start of the unparsed payload
	restructured   bool  // a header was moved, removed or added: the deparser must rebuild the layout
}

func (h *headers) reset() {
	*h = headers{
		ethernet: none, vlan: none, arp: none, ipv4: none, ipv4Options: none, ipv6: none, tcp: none, udp: none,
		sctp: none, icmp: none, icmpv6: none, ndTarget: none, ndOption: none, icmpErrIPv4: none,
		icmpErrIPv6: none, icmpErrL4: none, vxlan: none, innerEthernet: none, innerIPv4: none,
		innerIPv6: none, innerTCP: none, innerUDP: none, innerSCTP: none, innerICMP: none, innerICMPv6: none,
	}
}

func valid(off int32) bool { return off >= 0 }

// encapHeaders holds the fields of the output-only encap_* headers (MainControlImpl sets them, the
// deparser serialises them).
type encapHeaders struct {
	ethDst, ethSrc uint64
	ethType        uint16
	ipv4TotalLen   uint16
	ipv4Proto      uint8
	ipv4Checksum   uint16
	src4, dst4     uint32
	ipv6PayloadLen uint16
	src6, dst6     [16]byte
	udpSrc, udpDst uint16
	udpLen         uint16
	vni            uint32
}

// Byte helpers.

func be16(b []byte, off int32) uint16 { return binary.BigEndian.Uint16(b[off:]) }
func be32(b []byte, off int32) uint32 { return binary.BigEndian.Uint32(b[off:]) }
func put16(b []byte, off int32, v uint16) {
	binary.BigEndian.PutUint16(b[off:], v)
}
func put32(b []byte, off int32, v uint32) {
	binary.BigEndian.PutUint32(b[off:], v)
}
func mac48(b []byte, off int32) uint64 {
	return uint64(be16(b, off))<<32 | uint64(be32(b, off+2))
}
func putMAC(b []byte, off int32, v uint64) {
	put16(b, off, uint16(v>>32))
	put32(b, off+2, uint32(v))
}
func addr16(b []byte, off int32) (a [16]byte) {
	copy(a[:], b[off:off+16])
	return a
}
func putAddr16(b []byte, off int32, a *[16]byte) { copy(b[off:off+16], a[:]) }

// Field offsets inside the headers (k8s.p4 field order).
const (
	ethDst  = 0
	ethSrc  = 6
	ethType = 12

	vlanType = 2

	arpHwType     = 0
	arpProtoType  = 2
	arpOper       = 6
	arpSenderMAC  = 8
	arpSenderIP   = 14
	arpTargetMAC  = 18
	arpTargetIP   = 24
	ipv4VerIHL    = 0
	ipv4TotalLen  = 2
	ipv4FlagsFrag = 6
	ipv4TTL       = 8
	ipv4Proto     = 9
	ipv4Checksum  = 10
	ipv4Src       = 12
	ipv4Dst       = 16

	ipv6PayloadLen = 4
	ipv6NextHdr    = 6
	ipv6HopLimit   = 7
	ipv6Src        = 8
	ipv6Dst        = 24

	l4SrcPort   = 0
	l4DstPort   = 2
	tcpFlags    = 13
	tcpChecksum = 16
	udpChecksum = 6

	icmpType     = 0
	icmpCode     = 1
	icmpChecksum = 2
	icmpIdent    = 4
	icmpSeq      = 6

	ndOptType   = 0
	ndOptLength = 1
	ndOptLLAddr = 2

	l4Word0 = 0
	l4Word1 = 2
	l4Word2 = 4
)
