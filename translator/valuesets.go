package translator

import (
	"math/bits"
	"slices"
)

// Value sets of the fields policy_rule matches, and their cover by the match kinds k8s.p4 offers (ternary
// for protocol and ICMP type/code, range for ports). A rule's match on a field is computed exactly as a set
// of values (positive constraints intersected, negated ones removed), then covered by as few patterns as
// the match kind allows; the rule's entries are the product of the covers (see doc.go, "Entry counts").

// byteSet is a set of 8-bit values.
type byteSet [4]uint64

func fullByteSet() byteSet { return byteSet{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)} }

func byteSetOf(vs ...uint8) byteSet {
	var s byteSet
	for _, v := range vs {
		s[v>>6] |= 1 << (v & 63)
	}
	return s
}

func (s byteSet) has(v uint8) bool { return s[v>>6]&(1<<(v&63)) != 0 }

func (s byteSet) and(o byteSet) byteSet {
	return byteSet{s[0] & o[0], s[1] & o[1], s[2] & o[2], s[3] & o[3]}
}

func (s byteSet) without(v uint8) byteSet {
	s[v>>6] &^= 1 << (v & 63)
	return s
}

func (s byteSet) count() int {
	return bits.OnesCount64(s[0]) + bits.OnesCount64(s[1]) + bits.OnesCount64(s[2]) + bits.OnesCount64(s[3])
}

func (s byteSet) empty() bool { return s == byteSet{} }

// pattern8 is a ternary match on an 8-bit field; mask 0 matches anything.
type pattern8 struct{ value, mask uint8 }

// cover returns ternary patterns whose union is exactly s: the aligned power-of-two blocks of a recursive
// split (a full set is one wildcard, "all but one value" is 8 patterns, a few values are that many exact
// patterns). The patterns are disjoint.
//
// The result may be shared: callers must not modify it.
func (s byteSet) cover() []pattern8 {
	switch n := s.count(); n {
	case 0:
		return nil
	case 256:
		return anyPattern8
	case 1:
		for w := range s {
			if s[w] != 0 {
				return []pattern8{{value: uint8(w<<6 + bits.TrailingZeros64(s[w])), mask: 0xff}}
			}
		}
	}
	var out []pattern8
	s.coverInto(&out, 0, 256)
	return out
}

// anyPattern8 is the cover of the full set (shared: never modified).
var anyPattern8 = []pattern8{{0, 0}}

// coverInto appends the cover of s within [lo, lo+size), an aligned power-of-two block.
func (s byteSet) coverInto(out *[]pattern8, lo, size int) {
	n := s.countRange(lo, size)
	switch {
	case n == 0:
		return
	case n == size:
		mask := uint8(0xff) << uint(bits.TrailingZeros(uint(size)))
		*out = append(*out, pattern8{value: uint8(lo) & mask, mask: mask})
		return
	}
	s.coverInto(out, lo, size/2)
	s.coverInto(out, lo+size/2, size/2)
}

// countRange counts the members in [lo, lo+size), an aligned power-of-two block.
func (s byteSet) countRange(lo, size int) int {
	if size >= 64 {
		n := 0
		for w := lo >> 6; w < (lo+size)>>6; w++ {
			n += bits.OnesCount64(s[w])
		}
		return n
	}
	m := (uint64(1)<<uint(size) - 1) << uint(lo&63)
	return bits.OnesCount64(s[lo>>6] & m)
}

// portRange is an inclusive range of 16-bit values.
type portRange struct{ lo, hi uint16 }

var fullPorts = []portRange{{0, 65535}}

// normalizePorts sorts and merges ranges into disjoint, non-adjacent ranges.
func normalizePorts(in []portRange) []portRange {
	rs := slices.Clone(in)
	slices.SortFunc(rs, func(a, b portRange) int { return int(a.lo) - int(b.lo) })
	var out []portRange
	for _, r := range rs {
		if n := len(out); n > 0 && int(r.lo) <= int(out[n-1].hi)+1 {
			if r.hi > out[n-1].hi {
				out[n-1].hi = r.hi
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// intersectPorts intersects two normalized range lists.
func intersectPorts(a, b []portRange) []portRange {
	var out []portRange
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		lo, hi := max(a[i].lo, b[j].lo), min(a[i].hi, b[j].hi)
		if lo <= hi {
			out = append(out, portRange{lo, hi})
		}
		if a[i].hi < b[j].hi {
			i++
		} else {
			j++
		}
	}
	return out
}

// subtractPorts removes the normalized ranges b from the normalized ranges a.
//
// The result may share a's elements (b empty): callers must not modify it.
func subtractPorts(a, b []portRange) []portRange {
	if len(b) == 0 {
		return a
	}
	return intersectPorts(a, complementPorts(b))
}

// complementPorts is the complement of normalized ranges within 0..65535.
func complementPorts(rs []portRange) []portRange {
	var out []portRange
	next := 0
	for _, r := range rs {
		if int(r.lo) > next {
			out = append(out, portRange{uint16(next), r.lo - 1})
		}
		next = int(r.hi) + 1
	}
	if next <= 65535 {
		out = append(out, portRange{uint16(next), 65535})
	}
	return out
}

// icmpRect is a set of (type, code) pairs: every type of types with every code of codes.
type icmpRect struct{ types, codes byteSet }

// icmpPattern is one ternary pattern on (icmp_type, icmp_code).
type icmpPattern struct{ typ, code pattern8 }

// icmpSet computes the (type, code) pairs a rule's ICMP match and negated ICMP match allow, as disjoint
// rectangles. hasPos/hasNeg say whether the rule has each match.
func icmpSet(pos, neg *icmpMatch) []icmpRect {
	if pos == nil && neg == nil {
		return anyICMP
	}
	all := fullByteSet()
	var rects []icmpRect
	if pos == nil {
		rects = []icmpRect{{all, all}}
	} else {
		r := icmpRect{byteSetOf(pos.typ), all}
		if pos.hasCode {
			r.codes = byteSetOf(pos.code)
		}
		rects = []icmpRect{r}
	}
	if neg == nil {
		return rects
	}
	// Subtract the negated rectangle N from every rectangle R (R \ N as two disjoint rectangles).
	n := icmpRect{byteSetOf(neg.typ), all}
	if neg.hasCode {
		n.codes = byteSetOf(neg.code)
	}
	var out []icmpRect
	for _, r := range rects {
		// Types of R outside N: every code.
		outside := icmpRect{r.types.and(complementByte(n.types)), r.codes}
		if !outside.types.empty() && !outside.codes.empty() {
			out = append(out, outside)
		}
		// Types in both: the codes of R outside N.
		inside := icmpRect{r.types.and(n.types), r.codes.and(complementByte(n.codes))}
		if !inside.types.empty() && !inside.codes.empty() {
			out = append(out, inside)
		}
	}
	return out
}

type icmpMatch struct {
	typ, code uint8
	hasCode   bool
}

func complementByte(s byteSet) byteSet { return byteSet{^s[0], ^s[1], ^s[2], ^s[3]} }

// anyICMP is the (type, code) set of a rule without ICMP matches; anyICMPCover is its cover (both shared:
// never modified).
var (
	anyICMP      = []icmpRect{{fullByteSet(), fullByteSet()}}
	anyICMPCover = []icmpPattern{{}}
)

// icmpCover covers rectangles with (type, code) patterns. The result may be shared: callers must not modify
// it.
func icmpCover(rects []icmpRect) []icmpPattern {
	if len(rects) == 1 && rects[0] == anyICMP[0] {
		return anyICMPCover
	}
	var out []icmpPattern
	for _, r := range rects {
		for _, t := range r.types.cover() {
			for _, c := range r.codes.cover() {
				out = append(out, icmpPattern{t, c})
			}
		}
	}
	return out
}
