package p4rt

import (
	"fmt"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/calico-p4/calico-p4/p4src/entry"
)

// The wire encoder writes p4.v1 messages straight into a byte buffer: no
// message objects, no reflection, no allocation per entry. Its output is
// checked against the proto encoder by the tests (same bytes as a
// deterministic proto.Marshal).

// AppendUpdate validates e like Encode and appends it to b as one
// `repeated Update updates = 4` element of a p4.v1.WriteRequest. With
// keyOnly (for DELETE), only the entity's key is written.
func (in *Info) AppendUpdate(b []byte, typ p4v1.Update_Type, e entry.Entry, ids IDs, keyOnly bool) ([]byte, error) {
	var r resolved
	if err := in.resolve(e, ids, &r); err != nil {
		return b, err
	}
	if keyOnly {
		r.act, r.np, r.members = actNone, 0, nil
	}
	return r.appendUpdate(b, typ), nil
}

// AppendDefaultReset appends the update that resets the default action of
// table to the program's (a MODIFY without action).
func (in *Info) AppendDefaultReset(b []byte, table string) ([]byte, error) {
	t, ok := in.tables[table]
	if !ok {
		return b, fmt.Errorf("%w: %w", ErrInvalidEntry, unknownName("table", table, in.tableNames))
	}
	r := resolved{entity: entTable, id: t.ID, isDefault: true}
	return r.appendUpdate(b, p4v1.Update_MODIFY), nil
}

// AppendRawUpdate appends an update of an entity given as a message.
func AppendRawUpdate(b []byte, typ p4v1.Update_Type, ent *p4v1.Entity) ([]byte, error) {
	u, err := protoMarshal(&p4v1.Update{Type: typ, Entity: ent})
	if err != nil {
		return b, err
	}
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	return protowire.AppendBytes(b, u), nil
}

func sizeVarintField(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func sizeBytesField(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendMessageHeader(b []byte, num protowire.Number, size int) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(size))
}

// int32 fields are encoded as the sign-extended 64-bit varint.
func int32Varint(v int32) uint64 { return uint64(int64(v)) }

func (m *rmatch) innerSize() int {
	switch m.kind {
	case entry.MatchLPM:
		return sizeBytesField(1, len(m.a)) + sizeVarintField(2, int32Varint(m.plen))
	case entry.MatchTernary, entry.MatchRange:
		return sizeBytesField(1, len(m.a)) + sizeBytesField(2, len(m.b))
	}
	return sizeBytesField(1, len(m.a))
}

func (m *rmatch) oneofField() protowire.Number {
	switch m.kind {
	case entry.MatchExact:
		return 2
	case entry.MatchTernary:
		return 3
	case entry.MatchLPM:
		return 4
	case entry.MatchRange:
		return 6
	}
	return 7 // optional
}

func (m *rmatch) size() int {
	return sizeVarintField(1, uint64(m.fieldID)) + sizeBytesField(m.oneofField(), m.innerSize())
}

func (m *rmatch) append(b []byte) []byte {
	b = appendVarintField(b, 1, uint64(m.fieldID))
	b = appendMessageHeader(b, m.oneofField(), m.innerSize())
	b = appendBytesField(b, 1, m.a)
	switch m.kind {
	case entry.MatchLPM:
		b = appendVarintField(b, 2, int32Varint(m.plen))
	case entry.MatchTernary, entry.MatchRange:
		b = appendBytesField(b, 2, m.b)
	}
	return b
}

func (r *resolved) actionSize() int {
	n := sizeVarintField(1, uint64(r.actionID))
	for i := 0; i < r.np; i++ {
		n += sizeBytesField(4, paramSize(r.param(i)))
	}
	return n
}

func paramSize(p *rparam) int {
	return sizeVarintField(2, uint64(p.id)) + sizeBytesField(3, len(p.value))
}

func (r *resolved) appendAction(b []byte) []byte {
	b = appendVarintField(b, 1, uint64(r.actionID))
	for i := 0; i < r.np; i++ {
		p := r.param(i)
		b = appendMessageHeader(b, 4, paramSize(p))
		b = appendVarintField(b, 2, uint64(p.id))
		b = appendBytesField(b, 3, p.value)
	}
	return b
}

func (r *resolved) tableActionSize() int {
	switch r.act {
	case actDirect:
		return sizeBytesField(1, r.actionSize())
	case actMember, actGroup:
		return sizeVarintField(protowire.Number(r.act), uint64(r.refID))
	}
	return 0
}

func (r *resolved) bodySize() int {
	switch r.entity {
	case entMember:
		n := sizeVarintField(1, uint64(r.id)) + sizeVarintField(2, uint64(r.ownID))
		if r.act == actDirect {
			n += sizeBytesField(3, r.actionSize())
		}
		return n
	case entGroup:
		n := sizeVarintField(1, uint64(r.id)) + sizeVarintField(2, uint64(r.ownID))
		for _, m := range r.members {
			n += sizeBytesField(3, sizeVarintField(1, uint64(m.id))+sizeVarintField(2, int32Varint(m.weight)))
		}
		return n + sizeVarintField(4, int32Varint(r.maxSize))
	}
	n := sizeVarintField(1, uint64(r.id))
	for i := 0; i < r.nm; i++ {
		n += sizeBytesField(2, r.match(i).size())
	}
	if r.act != actNone {
		n += sizeBytesField(3, r.tableActionSize())
	}
	n += sizeVarintField(4, int32Varint(r.priority))
	if r.isDefault {
		n += protowire.SizeTag(8) + 1
	}
	return n
}

func (r *resolved) appendBody(b []byte) []byte {
	switch r.entity {
	case entMember:
		b = appendVarintField(b, 1, uint64(r.id))
		b = appendVarintField(b, 2, uint64(r.ownID))
		if r.act == actDirect {
			b = appendMessageHeader(b, 3, r.actionSize())
			b = r.appendAction(b)
		}
		return b
	case entGroup:
		b = appendVarintField(b, 1, uint64(r.id))
		b = appendVarintField(b, 2, uint64(r.ownID))
		for _, m := range r.members {
			b = appendMessageHeader(b, 3, sizeVarintField(1, uint64(m.id))+sizeVarintField(2, int32Varint(m.weight)))
			b = appendVarintField(b, 1, uint64(m.id))
			b = appendVarintField(b, 2, int32Varint(m.weight))
		}
		return appendVarintField(b, 4, int32Varint(r.maxSize))
	}
	b = appendVarintField(b, 1, uint64(r.id))
	for i := 0; i < r.nm; i++ {
		m := r.match(i)
		b = appendMessageHeader(b, 2, m.size())
		b = m.append(b)
	}
	if r.act != actNone {
		b = appendMessageHeader(b, 3, r.tableActionSize())
		switch r.act {
		case actDirect:
			b = appendMessageHeader(b, 1, r.actionSize())
			b = r.appendAction(b)
		default:
			b = appendVarintField(b, protowire.Number(r.act), uint64(r.refID))
		}
	}
	b = appendVarintField(b, 4, int32Varint(r.priority))
	if r.isDefault {
		b = protowire.AppendTag(b, 8, protowire.VarintType)
		b = append(b, 1)
	}
	return b
}

func (r *resolved) appendUpdate(b []byte, typ p4v1.Update_Type) []byte {
	body := r.bodySize()
	entity := sizeBytesField(protowire.Number(r.entity), body)
	update := sizeVarintField(1, uint64(typ)) + sizeBytesField(2, entity)
	b = appendMessageHeader(b, 4, update)
	b = appendVarintField(b, 1, uint64(typ))
	b = appendMessageHeader(b, 2, entity)
	b = appendMessageHeader(b, protowire.Number(r.entity), body)
	return r.appendBody(b)
}
