package entry

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Key identifies an entry within the target: the table with the match fields
// and priority (KindTable), the table (KindDefault), or the action profile
// with the symbolic name (KindMember, KindGroup). Two entries with the same
// key cannot both be installed; an entry whose key is installed with other
// contents is modified in place.
//
// A Key is a compact binary string (comparable, usable as a map key); String
// renders it for people.
type Key string

// Key returns e's key. e should be canonical.
func (e Entry) Key() Key {
	return Key(e.AppendKey(make([]byte, 0, e.keySize())))
}

// keySize bounds the length of e's key.
func (e *Entry) keySize() int {
	n := 2 + len(e.Table) + len(e.Profile) + len(e.Name) + 8
	for i := range e.Match {
		m := &e.Match[i]
		n += 8 + len(m.Field) + len(m.Value) + len(m.Mask) + len(m.High)
	}
	return n
}

// AppendKey appends the bytes of e's key to b: a producer of many entries can build their keys in one
// buffer and cut them out of a single string (Key(string(buf))[i:j]) instead of allocating each.
func (e Entry) AppendKey(b []byte) []byte {
	b = append(b, byte(e.Kind))
	switch e.Kind {
	case KindMember, KindGroup:
		b = appendString(b, e.Profile)
		b = appendString(b, e.Name)
	case KindDefault:
		b = appendString(b, e.Table)
	default:
		b = appendString(b, e.Table)
		b = binary.AppendUvarint(b, uint64(uint32(e.Priority)))
		b = binary.AppendUvarint(b, uint64(len(e.Match)))
		for i := range e.Match {
			m := &e.Match[i]
			b = appendString(b, m.Field)
			b = append(b, byte(m.Kind))
			b = appendBytes(b, m.Value)
			switch m.Kind {
			case MatchLPM:
				b = binary.AppendUvarint(b, uint64(uint32(m.PrefixLen)))
			case MatchTernary:
				b = appendBytes(b, m.Mask)
			case MatchRange:
				b = appendBytes(b, m.High)
			}
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// Kind is the kind of entry the key belongs to.
func (k Key) Kind() Kind {
	if len(k) == 0 {
		return 0
	}
	return Kind(k[0])
}

// Container is the table or action-profile name in the key.
func (k Key) Container() string {
	r := keyReader{s: string(k), pos: 1}
	return r.str()
}

// String renders the key readably, e.g.
// `table ingress.routes[hdr.ipv4.dst=0x0a000000/24]` or
// `member svc_selector["svc/ns/web/tcp/80/10.0.0.1"]`.
func (k Key) String() string {
	if len(k) == 0 {
		return "<empty key>"
	}
	r := keyReader{s: string(k), pos: 1}
	var sb strings.Builder
	kind := Kind(k[0])
	sb.WriteString(kind.String())
	sb.WriteByte(' ')
	sb.WriteString(r.str())
	switch kind {
	case KindMember, KindGroup:
		fmt.Fprintf(&sb, "[%q]", r.str())
	case KindDefault:
	default:
		prio := r.uvarint()
		nm := r.uvarint()
		sb.WriteByte('[')
		for i := uint64(0); i < nm && r.err == nil; i++ {
			if i > 0 {
				sb.WriteString(", ")
			}
			m := Match{Field: r.str(), Kind: MatchKind(r.byte())}
			m.Value = []byte(r.str())
			switch m.Kind {
			case MatchLPM:
				m.PrefixLen = int32(r.uvarint())
			case MatchTernary:
				m.Mask = []byte(r.str())
			case MatchRange:
				m.High = []byte(r.str())
			}
			writeMatch(&sb, m)
		}
		sb.WriteByte(']')
		if prio != 0 {
			fmt.Fprintf(&sb, " prio %d", int32(prio))
		}
	}
	if r.err != nil {
		return fmt.Sprintf("<malformed key %q>", string(k))
	}
	return sb.String()
}

type keyReader struct {
	s   string
	pos int
	err error
}

func (r *keyReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint([]byte(r.s[r.pos:min(len(r.s), r.pos+binary.MaxVarintLen64)]))
	if n <= 0 {
		r.err = fmt.Errorf("bad varint")
		return 0
	}
	r.pos += n
	return v
}

func (r *keyReader) byte() byte {
	if r.err != nil || r.pos >= len(r.s) {
		r.err = fmt.Errorf("short key")
		return 0
	}
	r.pos++
	return r.s[r.pos-1]
}

func (r *keyReader) str() string {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.s)-r.pos) < n {
		r.err = fmt.Errorf("short key")
		return ""
	}
	s := r.s[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return s
}
