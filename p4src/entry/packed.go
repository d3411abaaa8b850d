package entry

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// A Set keeps each entry as its key (the map key) plus a packed value: the part of the entry the key does
// not hold (action, member or group reference, group members), as length-prefixed bytes. Together they
// describe a canonical, valid entry exactly, so two entries with the same key are Equal exactly when their
// packed values are equal bytes, and unpacking rebuilds the entry field for field.
//
// Why: a desired set of 100k entries held as Entry values is ≈ 60 MB of pointer-rich structs (an Entry is
// 184 bytes, each Match 104) that every GC cycle of the manager has to scan, and that scan is what delays
// syncs while a cycle runs. Packed values are pointer-free bytes the GC never looks into.

// Packed is an entry's packed value (see above): with the entry's key, it is the entry. It is an immutable
// string, so a consumer that keeps many entries (the programmer's installed state) holds one pointer-free
// object per entry instead of an Entry's slices, and compares values without unpacking them.
type Packed string

// Pack returns the packed value of e, which must be canonical (every constructor and every entry a Set
// returns is).
func (e Entry) Pack() Packed { return Packed(appendValue(nil, &e)) }

// Unpack rebuilds the entry with key k and packed value v (as Pack or Set.Changed return them). The entry
// shares no memory with k's or v's callers except substrings of k for names.
func Unpack(k Key, v Packed) (Entry, error) { return unpack(k, string(v)) }

// appendValue appends e's packed value to b.
func appendValue(b []byte, e *Entry) []byte {
	b = appendString(b, e.Action.Name)
	b = binary.AppendUvarint(b, uint64(len(e.Action.Params)))
	for i := range e.Action.Params {
		b = appendString(b, e.Action.Params[i].Name)
		b = appendBytes(b, e.Action.Params[i].Value)
	}
	b = appendString(b, e.Member)
	b = appendString(b, e.Group)
	b = binary.AppendUvarint(b, uint64(len(e.Members)))
	for _, m := range e.Members {
		b = appendString(b, m.Member)
		b = binary.AppendUvarint(b, uint64(uint32(m.Weight)))
	}
	return b
}

// unpack rebuilds the entry stored under k with packed value v. Names are substrings of k (table, profile,
// member or group name, match fields) and of v (action, params, references); byte strings share one new
// buffer: with the match and param slices, three allocations for a typical entry.
func unpack(k Key, v string) (Entry, error) { return (*Unpacker)(nil).unpack(k, v) }

// Unpacker unpacks entries into memory it reuses from one Reset to the next, for a consumer that needs
// many entries briefly (the programmer unpacks what it writes in a pass): an entry it returns is valid
// until Reset. A nil Unpacker allocates each entry's memory.
type Unpacker struct {
	ms  []Match
	ps  []Param
	gms []GroupMember
	buf []byte
}

// Unpack is the package's Unpack, into u's memory.
func (u *Unpacker) Unpack(k Key, v Packed) (Entry, error) { return u.unpack(k, string(v)) }

// Reset makes u's memory available again: every entry it returned so far must be out of use. Room beyond
// what a few thousand entries need (left by a full sync) is let go rather than kept for good.
func (u *Unpacker) Reset() {
	u.ms, u.ps, u.gms, u.buf = keepSmall(u.ms), keepSmall(u.ps), keepSmall(u.gms), keepSmall(u.buf)
}

// unpackerKeep is the most memory an Unpacker keeps in each pool across a Reset: room for the entries of
// an incremental sync of thousands, not for a full one.
const unpackerKeep = 1 << 20

func keepSmall[T any](pool []T) []T {
	var elem T
	if uintptr(cap(pool))*unsafe.Sizeof(elem) > unpackerKeep {
		return nil
	}
	return pool[:0]
}

// unpackerChunk is the least room an Unpacker allocates at a time (in elements or bytes).
const unpackerChunk = 1024

// grab returns n zeroed elements of *pool's free room (a new chunk when it lacks room: entries handed out
// keep the old one), or a new slice when pool is nil.
func grab[T any](pool *[]T, n int) []T {
	if pool == nil {
		return make([]T, n)
	}
	if cap(*pool)-len(*pool) < n {
		*pool = make([]T, 0, max(n, 2*cap(*pool), unpackerChunk))
	}
	l := len(*pool)
	*pool = (*pool)[:l+n]
	out := (*pool)[l : l+n : l+n]
	clear(out) // room used before the last Reset holds an older entry's fields
	return out
}

func (u *Unpacker) unpack(k Key, v string) (Entry, error) {
	var (
		bufs *[]byte
		ms   *[]Match
		ps   *[]Param
		gms  *[]GroupMember
	)
	if u != nil {
		bufs, ms, ps, gms = &u.buf, &u.ms, &u.ps, &u.gms
	}
	kr := keyReader{s: string(k), pos: 1}
	e := Entry{Kind: k.Kind()}
	// One buffer for every byte string: the key and the value bound their total length.
	buf := grab(bufs, len(k)+len(v))[:0]
	cut := func(s string) []byte {
		o := len(buf)
		buf = append(buf, s...)
		return buf[o:len(buf):len(buf)]
	}
	switch e.Kind {
	case KindMember, KindGroup:
		e.Profile = kr.str()
		e.Name = kr.str()
	case KindDefault:
		e.Table = kr.str()
	case KindTable:
		e.Table = kr.str()
		e.Priority = int32(uint32(kr.uvarint()))
		if n := kr.uvarint(); n > 0 && kr.err == nil {
			if n > uint64(len(k)) {
				return Entry{}, fmt.Errorf("key %q: %d match fields", string(k), n)
			}
			e.Match = grab(ms, int(n))
			for i := range e.Match {
				m := &e.Match[i]
				m.Field = kr.str()
				m.Kind = MatchKind(kr.byte())
				m.Value = cut(kr.str())
				switch m.Kind {
				case MatchLPM:
					m.PrefixLen = int32(uint32(kr.uvarint()))
				case MatchTernary:
					m.Mask = cut(kr.str())
				case MatchRange:
					m.High = cut(kr.str())
				}
			}
		}
	default:
		return Entry{}, fmt.Errorf("key %q: unknown kind %d", string(k), e.Kind)
	}
	if kr.err != nil {
		return Entry{}, fmt.Errorf("key %q: %w", string(k), kr.err)
	}
	vr := keyReader{s: v}
	e.Action.Name = vr.str()
	if n := vr.uvarint(); n > 0 && vr.err == nil {
		if n > uint64(len(v)) {
			return Entry{}, fmt.Errorf("packed value of %s: %d params", k, n)
		}
		e.Action.Params = grab(ps, int(n))
		for i := range e.Action.Params {
			e.Action.Params[i].Name = vr.str()
			e.Action.Params[i].Value = cut(vr.str())
		}
	}
	e.Member = vr.str()
	e.Group = vr.str()
	if n := vr.uvarint(); n > 0 && vr.err == nil {
		if n > uint64(len(v)) {
			return Entry{}, fmt.Errorf("packed value of %s: %d group members", k, n)
		}
		e.Members = grab(gms, int(n))
		for i := range e.Members {
			e.Members[i] = GroupMember{Member: vr.str(), Weight: int32(uint32(vr.uvarint()))}
		}
	}
	if vr.err != nil || vr.pos != len(v) {
		return Entry{}, fmt.Errorf("packed value of %s: malformed (%v)", k, vr.err)
	}
	return e, nil
}
