package p4rt

import (
	"bytes"
	"math/rand/v2"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"

	"github.com/calico-p4/calico-p4/p4src/entry"
)

func wireEntries() []entry.Entry {
	u := entry.Uint
	return []entry.Entry{
		entry.Table("ingress.classify", 0, entry.Act("ingress.set_port", entry.P("port", u(7))), entry.Exact("istd.input_port", u(0x1234))),
		entry.Table("ingress.routes", 0, entry.Act("ingress.set_nexthop", entry.P("port", u(1)), entry.P("dmac", u(0xeeeeeeeeeeee))),
			entry.Exact("meta.vrf", u(0)), entry.LPM("hdr.ipv4.dst_addr", u(0x0a000000), 8)),
		entry.Table("ingress.routes", 0, entry.Act("ingress.drop"), entry.Exact("meta.vrf", u(1))),
		entry.Table("ingress.acl", 10, entry.Act("ingress.allow"),
			entry.Ternary("hdr.ipv4.protocol", u(6), u(0xff)), entry.Range("meta.dst_port", u(80), u(90)), entry.Optional("meta.src_port", u(0))),
		entry.Table("ingress.acl", 0x7fffffff, entry.Act("ingress.drop")),
		entry.Default("ingress.routes", entry.Act("NoAction")),
		entry.Member("ingress.backends", "m", entry.Act("ingress.dnat", entry.P("addr", u(0x0a000001)), entry.P("port", u(8080)))),
		entry.Group("ingress.backends", "g", entry.W("m", 1), entry.W("b", 3)),
		entry.Group("ingress.backends", "empty"),
		entry.TableGroup("ingress.services", 0, "g", entry.Exact("hdr.ipv4.dst_addr", u(0x0a600001)), entry.Exact("meta.dst_port", u(80))),
		entry.TableMember("ingress.services", 0, "b", entry.Exact("hdr.ipv4.dst_addr", u(0)), entry.Exact("meta.dst_port", u(0xffff))),
	}
}

// The wire encoder must produce what proto.Marshal of the message encoder
// produces, for every entity shape, full or key only.
func TestWireEncodingMatchesProtoMarshal(t *testing.T) {
	in := testInfo(t)
	ids := newFakeIDs()
	for _, e := range wireEntries() {
		for _, typ := range []p4v1.Update_Type{p4v1.Update_INSERT, p4v1.Update_MODIFY, p4v1.Update_DELETE} {
			keyOnly := typ == p4v1.Update_DELETE
			got, err := in.AppendUpdate([]byte("prefix"), typ, e, ids, keyOnly)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(got, []byte("prefix")) {
				t.Fatal("AppendUpdate lost the buffer's content")
			}
			ent, _ := in.Encode(e, ids)
			if keyOnly {
				switch x := ent.GetEntity().(type) {
				case *p4v1.Entity_TableEntry:
					x.TableEntry.Action = nil
				case *p4v1.Entity_ActionProfileMember:
					x.ActionProfileMember.Action = nil
				case *p4v1.Entity_ActionProfileGroup:
					x.ActionProfileGroup.Members = nil
				}
			}
			want, _ := proto.MarshalOptions{Deterministic: true}.Marshal(&p4v1.WriteRequest{Updates: []*p4v1.Update{{Type: typ, Entity: ent}}})
			if !bytes.Equal(got[len("prefix"):], want) {
				dec := &p4v1.WriteRequest{}
				if err := proto.Unmarshal(got[len("prefix"):], dec); err != nil {
					t.Fatalf("%s %s: wire bytes do not parse: %v", typ, e, err)
				}
				if !proto.Equal(dec.GetUpdates()[0], &p4v1.Update{Type: typ, Entity: ent}) {
					t.Fatalf("%s %s:\nwire  %v\nproto %v", typ, e, dec, ent)
				}
			}
		}
	}
	reset, _ := in.AppendDefaultReset(nil, "ingress.routes")
	dec := &p4v1.WriteRequest{}
	if err := proto.Unmarshal(reset, dec); err != nil || !dec.GetUpdates()[0].GetEntity().GetTableEntry().GetIsDefaultAction() ||
		dec.GetUpdates()[0].GetEntity().GetTableEntry().GetAction() != nil || dec.GetUpdates()[0].GetType() != p4v1.Update_MODIFY {
		t.Fatalf("default reset: %v %v", dec, err)
	}
}

func TestWireEncodingOfRandomEntries(t *testing.T) {
	in := testInfo(t)
	ids := newFakeIDs()
	r := rand.New(rand.NewPCG(1, 1))
	rnd := func(bits int) []byte { return entry.Uint(r.Uint64() >> (64 - bits)) }
	for i := 0; i < 2000; i++ {
		var e entry.Entry
		switch r.IntN(3) {
		case 0:
			plen := 1 + r.IntN(32)
			v := r.Uint32() &^ (1<<(32-plen) - 1)
			if plen == 32 {
				v = r.Uint32()
			}
			e = entry.Table("ingress.routes", 0, entry.Act("ingress.set_nexthop", entry.P("port", rnd(32)), entry.P("dmac", rnd(48))),
				entry.Exact("meta.vrf", rnd(16)), entry.LPM("hdr.ipv4.dst_addr", entry.Uint(uint64(v)), plen))
		case 1:
			lo := r.Uint64N(0xfff0)
			e = entry.Table("ingress.acl", 1+r.Int32N(1<<30), entry.Act("ingress.allow"),
				entry.Ternary("hdr.ipv4.protocol", rnd(8), entry.Uint(1+r.Uint64N(0xff))), entry.Range("meta.dst_port", entry.Uint(lo), entry.Uint(lo+r.Uint64N(10))))
		default:
			e = entry.Member("ingress.backends", "m", entry.Act("ingress.dnat", entry.P("addr", rnd(32)), entry.P("port", rnd(16))))
		}
		got, err := in.AppendUpdate(nil, p4v1.Update_INSERT, e, ids, false)
		if err != nil {
			t.Fatal(err)
		}
		ent, _ := in.Encode(e, ids)
		dec := &p4v1.WriteRequest{}
		if err := proto.Unmarshal(got, dec); err != nil || !proto.Equal(dec.GetUpdates()[0], &p4v1.Update{Type: p4v1.Update_INSERT, Entity: ent}) {
			t.Fatalf("%s: %v %v", e, dec, err)
		}
	}
}

func BenchmarkAppendUpdateRoute(b *testing.B) {
	in := testInfo(b)
	e := entry.Table("ingress.routes", 0, entry.Act("ingress.set_nexthop", entry.P("port", entry.Uint(3)), entry.P("dmac", entry.Uint(0xeeeeeeeeeeee))),
		entry.Exact("meta.vrf", entry.Uint(1)), entry.LPM("hdr.ipv4.dst_addr", entry.Uint(0x0a000000), 8))
	ids := newFakeIDs()
	buf := make([]byte, 0, 1<<20)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var err error
		if buf, err = in.AppendUpdate(buf[:0], p4v1.Update_INSERT, e, ids, false); err != nil {
			b.Fatal(err)
		}
	}
}
