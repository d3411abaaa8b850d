package gen

import (
	"net/netip"

	"github.com/calico-p4/calico-p4/translator/oracle"
)

// Packet returns a random new-flow packet between addresses of the universe.
func (g *Gen) Packet() oracle.Packet {
	v4 := g.chance(0.6)
	addrs := v6Addrs
	if v4 {
		addrs = v4Addrs
	}
	p := oracle.Packet{Src: netip.MustParseAddr(pick(g.R, addrs)), Dst: netip.MustParseAddr(pick(g.R, addrs))}
	icmp := uint8(oracle.ProtoICMPv6)
	if v4 {
		icmp = oracle.ProtoICMP
	}
	p.Proto = pick(g.R, []uint8{oracle.ProtoTCP, oracle.ProtoTCP, oracle.ProtoUDP, oracle.ProtoSCTP, icmp, icmp, 47, 4})
	switch {
	case p.HasPorts():
		p.SrcPort = g.port()
		p.DstPort = g.port()
	case p.Proto == icmp:
		p.ICMPType = pick(g.R, icmpTypes)
		p.ICMPCode = pick(g.R, icmpCodes)
	}
	return p
}

func (g *Gen) port() uint16 {
	if g.chance(0.7) {
		return pick(g.R, ports)
	}
	return uint16(g.R.IntN(65536))
}
