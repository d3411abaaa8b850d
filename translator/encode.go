package translator

import (
	"net"
	"net/netip"

	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// Small constructors of canonical P4Runtime values, bound to the generated names of p4src.

func u(v uint64) []byte { return entry.Uint(v) }

func addrBytes(a netip.Addr) []byte {
	b, err := p4src.EncodeAddr(a)
	if err != nil {
		return []byte{0}
	}
	return b
}

func macBytes(m net.HardwareAddr) []byte {
	b, err := p4src.EncodeMAC(m)
	if err != nil {
		return []byte{0}
	}
	return b
}

func exact(f p4src.MatchFieldName, v []byte) entry.Match { return entry.Exact(string(f), v) }

func lpm(f p4src.MatchFieldName, p netip.Prefix) entry.Match {
	b, n, err := p4src.EncodePrefix(p)
	if err != nil {
		b, n = []byte{0}, 0
	}
	return entry.LPM(string(f), b, int(n))
}

func param(n p4src.ParamName, v []byte) entry.Param { return entry.P(string(n), v) }

func act(n p4src.ActionName, ps ...entry.Param) entry.Action { return entry.Act(string(n), ps...) }

func tableEntry(t p4src.TableName, prio int32, a entry.Action, ms ...entry.Match) entry.Entry {
	return entry.Table(string(t), prio, a, ms...)
}

// gatewayMAC is Calico's gateway MAC, ee:ee:ee:ee:ee:ee.
var gatewayMAC = net.HardwareAddr{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}

// Well-known gateway addresses of Calico workloads.
var (
	gatewayV4 = netip.MustParsePrefix("169.254.1.1/32")
	gatewayV6 = netip.MustParsePrefix("fe80::ecee:eeff:feee:eeee/128")
)
