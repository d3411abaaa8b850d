package vectors

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// A packet is written as layers separated by "/", each a name with optional
// field=value arguments, outermost first, like scapy:
//
//	eth(dst=0a:58:0a:41:00:03, src=ee:ee:ee:ee:ee:ee) / ipv4(src=10.65.0.2, dst=10.65.0.3, ttl=63) / tcp(sport=40000, dport=80, flags=S)
//
// Fields left out take defaults; lengths, protocol numbers, EtherTypes and
// checksums are computed unless given.  Layers after an ICMP error layer are
// the quoted packet.  See README.md ("Vector format") for every layer and field.

// Layer names and the fields each accepts.
var layerFields = map[string][]string{
	"eth":     {"dst", "src", "type"},
	"vlan":    {"pcp", "dei", "vid", "type"},
	"arp":     {"htype", "ptype", "hlen", "plen", "op", "sha", "spa", "tha", "tpa"},
	"ipv4":    {"version", "ihl", "dscp", "ecn", "len", "id", "flags", "frag", "ttl", "proto", "chksum", "src", "dst", "options"},
	"ipv6":    {"version", "tc", "fl", "plen", "nh", "hlim", "src", "dst"},
	"tcp":     {"sport", "dport", "seq", "ack", "off", "flags", "win", "chksum", "urg"},
	"udp":     {"sport", "dport", "len", "chksum"},
	"sctp":    {"sport", "dport", "tag", "chksum"},
	"icmp":    {"type", "code", "chksum", "id", "seq"},
	"icmpv6":  {"type", "code", "chksum", "id", "seq"},
	"nd":      {"target"},
	"ndopt":   {"type", "len", "lladdr"},
	"vxlan":   {"flags", "vni"},
	"payload": {"hex", "len"},
}

type layer struct {
	name   string
	fields map[string]string
}

// ParsePacket builds the bytes of a packet description.
func ParsePacket(desc string) ([]byte, error) {
	layers, err := parseLayers(desc)
	if err != nil {
		return nil, err
	}
	return build(layers)
}

func parseLayers(desc string) ([]layer, error) {
	var out []layer
	for _, part := range splitTop(desc, '/') {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("empty layer in %q", desc)
		}
		name, args := part, ""
		if i := strings.IndexByte(part, '('); i >= 0 {
			if !strings.HasSuffix(part, ")") {
				return nil, fmt.Errorf("layer %q: missing )", part)
			}
			name, args = strings.TrimSpace(part[:i]), part[i+1:len(part)-1]
		}
		allowed, ok := layerFields[name]
		if !ok {
			return nil, fmt.Errorf("unknown layer %q", name)
		}
		l := layer{name: name, fields: map[string]string{}}
		for _, kv := range splitTop(args, ',') {
			kv = strings.TrimSpace(kv)
			if kv == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("layer %s: %q is not field=value", name, kv)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !contains(allowed, k) {
				return nil, fmt.Errorf("layer %s has no field %q (fields: %s)", name, k, strings.Join(allowed, ", "))
			}
			if _, dup := l.fields[k]; dup {
				return nil, fmt.Errorf("layer %s: field %s given twice", name, k)
			}
			l.fields[k] = v
		}
		out = append(out, l)
	}
	return out, nil
}

// splitTop splits on sep outside parentheses.
func splitTop(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case sep:
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fieldReader reads typed values of one layer's fields.
type fieldReader struct {
	l   layer
	err error
}

func (r *fieldReader) has(k string) bool { _, ok := r.l.fields[k]; return ok }

func (r *fieldReader) uint(k string, def uint64, bits int) uint64 {
	v, ok := r.l.fields[k]
	if !ok || r.err != nil {
		return def
	}
	n, err := parseUintValue(v)
	if err != nil {
		r.err = fmt.Errorf("%s.%s: %w", r.l.name, k, err)
		return def
	}
	if bits < 64 && n>>uint(bits) != 0 {
		r.err = fmt.Errorf("%s.%s: %d does not fit in %d bits", r.l.name, k, n, bits)
	}
	return n
}

func (r *fieldReader) mac(k string) []byte {
	v, ok := r.l.fields[k]
	if !ok || r.err != nil {
		return make([]byte, 6)
	}
	m, err := net.ParseMAC(v)
	if err != nil || len(m) != 6 {
		r.err = fmt.Errorf("%s.%s: bad MAC %q", r.l.name, k, v)
		return make([]byte, 6)
	}
	return m
}

func (r *fieldReader) addr(k string, v6 bool) []byte {
	n := 4
	if v6 {
		n = 16
	}
	v, ok := r.l.fields[k]
	if !ok || r.err != nil {
		return make([]byte, n)
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Is6() != v6 {
		r.err = fmt.Errorf("%s.%s: bad address %q", r.l.name, k, v)
		return make([]byte, n)
	}
	return a.AsSlice()
}

func (r *fieldReader) hex(k string) []byte {
	v, ok := r.l.fields[k]
	if !ok || r.err != nil {
		return nil
	}
	b, err := hex.DecodeString(strings.TrimPrefix(strings.ReplaceAll(v, " ", ""), "0x"))
	if err != nil {
		r.err = fmt.Errorf("%s.%s: bad hex %q", r.l.name, k, v)
	}
	return b
}

func parseUintValue(v string) (uint64, error) {
	return strconv.ParseUint(strings.ReplaceAll(v, "_", ""), 0, 64)
}

// tcpFlags parses "S", "SA", "FA", "R", "P", … or a number.
func tcpFlags(v string) (uint64, error) {
	if n, err := parseUintValue(v); err == nil {
		return n, nil
	}
	bits := map[rune]uint64{'F': 0x01, 'S': 0x02, 'R': 0x04, 'P': 0x08, 'A': 0x10, 'U': 0x20, 'E': 0x40, 'C': 0x80}
	var out uint64
	for _, c := range v {
		b, ok := bits[c]
		if !ok {
			return 0, fmt.Errorf("bad TCP flag %q in %q", c, v)
		}
		out |= b
	}
	return out, nil
}

// build serialises the layers, innermost first, filling computed fields.
func build(layers []layer) ([]byte, error) {
	var rest []byte
	for i := len(layers) - 1; i >= 0; i-- {
		l := layers[i]
		r := &fieldReader{l: l}
		var next string
		if i+1 < len(layers) {
			next = layers[i+1].name
		}
		ip := nearestIP(layers[:i])
		var h []byte
		switch l.name {
		case "payload":
			h = r.hex("hex")
			if r.has("len") {
				n := int(r.uint("len", 0, 16))
				if h != nil {
					return nil, fmt.Errorf("payload: give hex or len, not both")
				}
				h = make([]byte, n)
				for j := range h {
					h[j] = byte(j)
				}
			}
		case "eth":
			h = append(h, r.mac("dst")...)
			h = append(h, r.mac("src")...)
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("type", etherTypeFor(next), 16)))
		case "vlan":
			tci := r.uint("pcp", 0, 3)<<13 | r.uint("dei", 0, 1)<<12 | r.uint("vid", 0, 12)
			h = binary.BigEndian.AppendUint16(h, uint16(tci))
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("type", etherTypeFor(next), 16)))
		case "arp":
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("htype", 1, 16)))
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("ptype", 0x0800, 16)))
			h = append(h, byte(r.uint("hlen", 6, 8)), byte(r.uint("plen", 4, 8)))
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("op", 1, 16)))
			h = append(h, r.mac("sha")...)
			h = append(h, r.addr("spa", false)...)
			h = append(h, r.mac("tha")...)
			h = append(h, r.addr("tpa", false)...)
		case "ipv4":
			opts := r.hex("options")
			if len(opts)%4 != 0 {
				return nil, fmt.Errorf("ipv4.options must be a multiple of 4 bytes")
			}
			ihl := r.uint("ihl", uint64(5+len(opts)/4), 4)
			h = append(h, byte(r.uint("version", 4, 4)<<4|ihl))
			h = append(h, byte(r.uint("dscp", 0, 6)<<2|r.uint("ecn", 0, 2)))
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("len", uint64(20+len(opts)+len(rest)), 16)))
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("id", 0, 16)))
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("flags", 0, 3)<<13|r.uint("frag", 0, 13)))
			h = append(h, byte(r.uint("ttl", 64, 8)), byte(r.uint("proto", protoFor(next, false), 8)))
			h = append(h, 0, 0)
			h = append(h, r.addr("src", false)...)
			h = append(h, r.addr("dst", false)...)
			h = append(h, opts...)
			sum := checksum(h, 0)
			binary.BigEndian.PutUint16(h[10:], uint16(r.uint("chksum", uint64(sum), 16)))
		case "ipv6":
			v := r.uint("version", 6, 4)<<28 | r.uint("tc", 0, 8)<<20 | r.uint("fl", 0, 20)
			h = binary.BigEndian.AppendUint32(h, uint32(v))
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("plen", uint64(len(rest)), 16)))
			h = append(h, byte(r.uint("nh", protoFor(next, true), 8)), byte(r.uint("hlim", 64, 8)))
			h = append(h, r.addr("src", true)...)
			h = append(h, r.addr("dst", true)...)
		case "tcp":
			off := r.uint("off", 5, 4)
			flags := uint64(0)
			if v, ok := l.fields["flags"]; ok {
				f, err := tcpFlags(v)
				if err != nil {
					return nil, fmt.Errorf("tcp.flags: %w", err)
				}
				flags = f
			}
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("sport", 0, 16)))
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("dport", 0, 16)))
			h = binary.BigEndian.AppendUint32(h, uint32(r.uint("seq", 0, 32)))
			h = binary.BigEndian.AppendUint32(h, uint32(r.uint("ack", 0, 32)))
			h = append(h, byte(off<<4), byte(flags))
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("win", 8192, 16)))
			h = append(h, 0, 0)
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("urg", 0, 16)))
			sum := l4Checksum(ip, 6, h, rest)
			binary.BigEndian.PutUint16(h[16:], uint16(r.uint("chksum", uint64(sum), 16)))
		case "udp":
			defDport := uint64(0)
			if next == "vxlan" {
				defDport = 4789
			}
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("sport", 0, 16)))
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("dport", defDport, 16)))
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("len", uint64(8+len(rest)), 16)))
			h = append(h, 0, 0)
			sum := l4Checksum(ip, 17, h, rest)
			if sum == 0 {
				sum = 0xffff
			}
			binary.BigEndian.PutUint16(h[6:], uint16(r.uint("chksum", uint64(sum), 16)))
		case "sctp":
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("sport", 0, 16)))
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("dport", 0, 16)))
			h = binary.BigEndian.AppendUint32(h, uint32(r.uint("tag", 0, 32)))
			h = append(h, 0, 0, 0, 0)
			crc := crc32.Checksum(append(append([]byte(nil), h...), rest...), crc32.MakeTable(crc32.Castagnoli))
			// SCTP stores the CRC32c in little-endian byte order.
			binary.LittleEndian.PutUint32(h[8:], crc)
			if r.has("chksum") {
				binary.BigEndian.PutUint32(h[8:], uint32(r.uint("chksum", 0, 32)))
			}
		case "icmp", "icmpv6":
			h = append(h, byte(r.uint("type", 8, 8)), byte(r.uint("code", 0, 8)), 0, 0)
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("id", 0, 16)))
			h = binary.BigEndian.AppendUint16(h, uint16(r.uint("seq", 0, 16)))
			var sum uint16
			if l.name == "icmp" {
				sum = checksum(append(append([]byte(nil), h...), rest...), 0)
			} else {
				sum = l4Checksum(ip, 58, h, rest)
			}
			binary.BigEndian.PutUint16(h[2:], uint16(r.uint("chksum", uint64(sum), 16)))
		case "nd":
			h = append(h, r.addr("target", true)...)
		case "ndopt":
			h = append(h, byte(r.uint("type", 1, 8)), byte(r.uint("len", 1, 8)))
			h = append(h, r.mac("lladdr")...)
		case "vxlan":
			h = append(h, byte(r.uint("flags", 0x08, 8)), 0, 0, 0)
			h = binary.BigEndian.AppendUint32(h, uint32(r.uint("vni", 0, 24)<<8))
		}
		if r.err != nil {
			return nil, r.err
		}
		rest = append(h, rest...)
	}
	return rest, nil
}

// nearestIP returns the innermost IP layer before position i.
func nearestIP(before []layer) *layer {
	for i := len(before) - 1; i >= 0; i-- {
		if before[i].name == "ipv4" || before[i].name == "ipv6" {
			return &before[i]
		}
	}
	return nil
}

func etherTypeFor(next string) uint64 {
	switch next {
	case "vlan":
		return 0x8100
	case "arp":
		return 0x0806
	case "ipv4":
		return 0x0800
	case "ipv6":
		return 0x86dd
	}
	return 0
}

func protoFor(next string, v6 bool) uint64 {
	switch next {
	case "tcp":
		return 6
	case "udp":
		return 17
	case "sctp":
		return 132
	case "icmp":
		return 1
	case "icmpv6":
		return 58
	case "ipv4":
		return 4
	case "ipv6":
		return 41
	}
	if v6 {
		return 59 // no next header
	}
	return 0
}

// l4Checksum computes a TCP/UDP/ICMPv6 checksum with the pseudo-header of
// the enclosing IP layer.
func l4Checksum(ip *layer, proto byte, hdr, rest []byte) uint16 {
	seg := append(append([]byte(nil), hdr...), rest...)
	if ip == nil {
		return checksum(seg, 0)
	}
	r := &fieldReader{l: *ip}
	var pseudo []byte
	if ip.name == "ipv4" {
		pseudo = append(pseudo, r.addr("src", false)...)
		pseudo = append(pseudo, r.addr("dst", false)...)
		pseudo = append(pseudo, 0, proto)
		pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(seg)))
	} else {
		pseudo = append(pseudo, r.addr("src", true)...)
		pseudo = append(pseudo, r.addr("dst", true)...)
		pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(seg)))
		pseudo = append(pseudo, 0, 0, 0, proto)
	}
	return checksum(seg, sum16(pseudo))
}

func sum16(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

// checksum is the Internet checksum of b plus an initial partial sum.
func checksum(b []byte, initial uint32) uint16 {
	s := initial + sum16(b)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
