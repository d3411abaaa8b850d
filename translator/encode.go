package translator

import (
	"net"
	"net/netip"

	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// Small constructors of canonical P4Runtime values, bound to the generated names of p4src.

// u is the canonical byte string of v. Values below 256 share preallocated strings (entries are
// immutable: nothing writes into their byte strings).
func u(v uint64) []byte {
	if v < 256 {
		return smallValues[v : v+1 : v+1]
	}
	return entry.Uint(v)
}

var smallValues = func() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

func addrBytes(a netip.Addr) []byte {
	if !a.IsValid() {
		return []byte{0}
	}
	return canonAddr(a.Unmap())
}

func macBytes(m net.HardwareAddr) []byte {
	b, err := p4src.EncodeMAC(m)
	if err != nil {
		return []byte{0}
	}
	return b
}

// The constructors below build canonical values directly (the byte strings they are given are canonical:
// u, addrBytes, macBytes and canonAddr produce canonical strings), so that entry.Set finds them canonical
// and copies nothing: a large translation builds hundreds of thousands of entries.

func exact(f p4src.MatchFieldName, v []byte) entry.Match {
	return entry.Match{Field: string(f), Kind: entry.MatchExact, Value: v}
}

func optional(f p4src.MatchFieldName, v []byte) entry.Match {
	return entry.Match{Field: string(f), Kind: entry.MatchOptional, Value: v}
}

// ternary: v must already be masked (v & mask == v) and mask non-zero.
func ternary(f p4src.MatchFieldName, v, mask []byte) entry.Match {
	return entry.Match{Field: string(f), Kind: entry.MatchTernary, Value: v, Mask: mask}
}

func rangeMatch(f p4src.MatchFieldName, lo, hi []byte) entry.Match {
	return entry.Match{Field: string(f), Kind: entry.MatchRange, Value: lo, High: hi}
}

// lpm matches p; a zero-length prefix is a wildcard and must be left out of the entry (see lpmOpt).
func lpm(f p4src.MatchFieldName, p netip.Prefix) entry.Match {
	p = p.Masked()
	return entry.Match{Field: string(f), Kind: entry.MatchLPM, Value: canonAddr(p.Addr()), PrefixLen: int32(p.Bits())}
}

func param(n p4src.ParamName, v []byte) entry.Param { return entry.Param{Name: string(n), Value: v} }

// act builds an action with its params sorted by name.
func act(n p4src.ActionName, ps ...entry.Param) entry.Action {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].Name < ps[j-1].Name; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
	if len(ps) == 0 {
		ps = nil
	}
	return entry.Action{Name: string(n), Params: ps}
}

// tableEntry builds a table entry with its match fields sorted by name; an lpm of length 0 (a wildcard)
// is dropped, as P4Runtime requires.
func tableEntry(t p4src.TableName, prio int32, a entry.Action, ms ...entry.Match) entry.Entry {
	out := ms[:0]
	for _, m := range ms {
		if m.Kind == entry.MatchLPM && m.PrefixLen == 0 {
			continue
		}
		out = append(out, m)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Field < out[j-1].Field; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	if len(out) == 0 {
		out = nil
	}
	return entry.Entry{Kind: entry.KindTable, Table: string(t), Priority: prio, Action: a, Match: out}
}

// gatewayMAC is Calico's gateway MAC, ee:ee:ee:ee:ee:ee.
var gatewayMAC = net.HardwareAddr{0xee, 0xee, 0xee, 0xee, 0xee, 0xee}

// Well-known gateway addresses of Calico workloads.
var (
	gatewayV4 = netip.MustParsePrefix("169.254.1.1/32")
	gatewayV6 = netip.MustParsePrefix("fe80::ecee:eeff:feee:eeee/128")
)
