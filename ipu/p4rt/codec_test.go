package p4rt

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/calico-p4/calico-p4/p4src/entry"
)

func testInfo(t testing.TB) *Info {
	t.Helper()
	p, err := LoadP4Info("testdata/test.p4info.txtpb")
	if err != nil {
		t.Fatal(err)
	}
	in, err := NewInfo(p)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// fakeIDs is a bidirectional name<->id map for tests: ids are assigned in
// order of first use.
type fakeIDs struct {
	next  uint32
	ids   map[string]uint32
	names map[string]string
}

func newFakeIDs() *fakeIDs { return &fakeIDs{ids: map[string]uint32{}, names: map[string]string{}} }

func (f *fakeIDs) id(kind, profile, name string) uint32 {
	k := kind + "/" + profile + "/" + name
	if id, ok := f.ids[k]; ok {
		return id
	}
	f.next++
	f.ids[k] = f.next
	f.names[fmt.Sprint(kind, "/", profile, "/", f.next)] = name
	return f.next
}
func (f *fakeIDs) MemberID(p, n string) (uint32, bool) { return f.id("m", p, n), true }
func (f *fakeIDs) GroupID(p, n string) (uint32, bool)  { return f.id("g", p, n), true }
func (f *fakeIDs) MemberName(p string, id uint32) (string, bool) {
	n, ok := f.names[fmt.Sprint("m/", p, "/", id)]
	return n, ok
}
func (f *fakeIDs) GroupName(p string, id uint32) (string, bool) {
	n, ok := f.names[fmt.Sprint("g/", p, "/", id)]
	return n, ok
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	in := testInfo(t)
	u := entry.Uint
	for _, e := range []entry.Entry{
		entry.Table("ingress.classify", 0, entry.Act("ingress.set_port", entry.P("port", u(7))), entry.Exact("istd.input_port", u(0x1234))),
		entry.Table("ingress.routes", 0, entry.Act("ingress.set_nexthop", entry.P("port", u(1)), entry.P("dmac", u(0xeeeeeeeeeeee))),
			entry.Exact("meta.vrf", u(0)), entry.LPM("hdr.ipv4.dst_addr", u(0x0a000000), 8)),
		entry.Table("ingress.routes", 0, entry.Act("ingress.drop"), entry.Exact("meta.vrf", u(1))), // 0/0 route
		entry.Table("ingress.acl", 10, entry.Act("ingress.allow"),
			entry.Ternary("hdr.ipv4.protocol", u(6), u(0xff)), entry.Range("meta.dst_port", u(80), u(90)), entry.Optional("meta.src_port", u(0))),
		entry.Table("ingress.acl", 1, entry.Act("ingress.drop")), // everything wildcard
		entry.Default("ingress.routes", entry.Act("NoAction")),
		entry.Default("ingress.acl", entry.Act("ingress.drop")),
		entry.Member("ingress.backends", "svc/ns/web/tcp/80/10.0.0.1", entry.Act("ingress.dnat", entry.P("addr", u(0x0a000001)), entry.P("port", u(8080)))),
		entry.Group("ingress.backends", "svc/ns/web/tcp/80", entry.W("svc/ns/web/tcp/80/10.0.0.1", 1), entry.W("b", 3)),
		entry.Group("ingress.backends", "empty"),
		entry.TableGroup("ingress.services", 0, "svc/ns/web/tcp/80", entry.Exact("hdr.ipv4.dst_addr", u(0x0a600001)), entry.Exact("meta.dst_port", u(80))),
		entry.TableMember("ingress.services", 0, "b", entry.Exact("hdr.ipv4.dst_addr", u(0x0a600002)), entry.Exact("meta.dst_port", u(80))),
		entry.Member("ingress.nat_profile", "n1", entry.Act("ingress.dnat", entry.P("addr", u(1)), entry.P("port", u(0)))),
		entry.TableMember("ingress.nat", 0, "n1", entry.Exact("hdr.ipv4.src_addr", u(1))),
	} {
		t.Run(e.String(), func(t *testing.T) {
			ids := newFakeIDs()
			ent, err := in.Encode(e, ids)
			if err != nil {
				t.Fatal(err)
			}
			// Through the wire format, as a target would see it.
			b, _ := prototext.Marshal(ent)
			back := &p4v1.Entity{}
			if err := prototext.Unmarshal(b, back); err != nil {
				t.Fatal(err)
			}
			got, err := in.Decode(back, ids)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(e) {
				t.Fatalf("round trip:\n got %s\nwant %s\nvia %s", got, e, b)
			}
		})
	}
}

func TestEncodeUsesP4InfoIDs(t *testing.T) {
	in := testInfo(t)
	e := entry.Table("ingress.acl", 5, entry.Act("ingress.allow"), entry.Range("meta.dst_port", entry.Uint(1), entry.Uint(2)))
	ent, err := in.Encode(e, newFakeIDs())
	if err != nil {
		t.Fatal(err)
	}
	te := ent.GetTableEntry()
	if te.GetTableId() != 33554435 || te.GetPriority() != 5 || len(te.GetMatch()) != 1 || te.GetMatch()[0].GetFieldId() != 2 ||
		te.GetAction().GetAction().GetActionId() != 16777220 {
		t.Fatalf("encoded %v", ent)
	}
	g, err := in.Encode(entry.Group("ingress.backends", "g", entry.W("m", 2)), newFakeIDs())
	if err != nil {
		t.Fatal(err)
	}
	if g.GetActionProfileGroup().GetMaxSize() != 64 || g.GetActionProfileGroup().GetActionProfileId() != 285212673 {
		t.Fatalf("group encoded as %v", g)
	}
}

func TestEncodeRejectsWhatDoesNotFitTheP4Info(t *testing.T) {
	in := testInfo(t)
	u := entry.Uint
	raw := func(e entry.Entry) entry.Entry { return e } // bypass constructors
	tests := []struct {
		name string
		e    entry.Entry
		want string
	}{
		{"unknown table", entry.Table("ingress.nope", 0, entry.Act("ingress.drop")), `unknown table "ingress.nope"`},
		{"alias instead of name", entry.Table("classify", 0, entry.Act("ingress.drop"), entry.Exact("istd.input_port", u(1))), "use the full P4Info name: ingress.classify"},
		{"unknown field", entry.Table("ingress.classify", 0, entry.Act("ingress.drop"), entry.Exact("istd.input_port", u(1)), entry.Exact("x", u(1))), `unknown match field "x"`},
		{"missing exact field", entry.Table("ingress.routes", 0, entry.Act("ingress.drop"), entry.LPM("hdr.ipv4.dst_addr", u(0x0a000000), 8)), "exact field meta.vrf"},
		{"missing only field", entry.Table("ingress.classify", 0, entry.Act("ingress.drop")), "exact field istd.input_port"},
		{"wrong match kind", entry.Table("ingress.classify", 0, entry.Act("ingress.drop"), entry.Optional("istd.input_port", u(1))), "is exact in the P4Info, not optional"},
		{"value too wide", entry.Table("ingress.routes", 0, entry.Act("ingress.drop"), entry.Exact("meta.vrf", u(0x10000))), "does not fit in 16 bits"},
		{"non-canonical bytes", raw(entry.Entry{Kind: entry.KindTable, Table: "ingress.classify", Action: entry.Act("ingress.drop"),
			Match: []entry.Match{{Field: "istd.input_port", Kind: entry.MatchExact, Value: []byte{0, 1}}}}), "non-canonical"},
		{"lpm bits beyond prefix", entry.Table("ingress.routes", 0, entry.Act("ingress.drop"), entry.Exact("meta.vrf", u(0)), entry.LPM("hdr.ipv4.dst_addr", u(0x0a000001), 24)), "beyond the /24 prefix"},
		{"lpm prefix too long", entry.Table("ingress.routes", 0, entry.Act("ingress.drop"), entry.Exact("meta.vrf", u(0)), entry.LPM("hdr.ipv4.dst_addr", u(1), 33)), "prefix length 33"},
		{"ternary mask too wide", entry.Table("ingress.acl", 1, entry.Act("ingress.drop"), entry.Ternary("hdr.ipv4.protocol", u(1), u(0x1ff))), "does not fit in 8 bits"},
		{"full range", entry.Table("ingress.acl", 1, entry.Act("ingress.drop"), entry.Range("meta.dst_port", u(0), u(0xffff))), "covers every value"},
		{"missing priority", entry.Table("ingress.acl", 0, entry.Act("ingress.drop")), "needs a priority"},
		{"unexpected priority", entry.Table("ingress.classify", 3, entry.Act("ingress.drop"), entry.Exact("istd.input_port", u(1))), "takes no priority"},
		{"action not in table", entry.Table("ingress.classify", 0, entry.Act("ingress.allow"), entry.Exact("istd.input_port", u(1))), "not an action of table"},
		{"default-only action in entry", entry.Table("ingress.routes", 0, entry.Act("NoAction"), entry.Exact("meta.vrf", u(1))), "default-only"},
		{"table-only action as default", entry.Default("ingress.acl", entry.Act("ingress.allow")), "table-only"},
		{"const default", entry.Default("ingress.fixed", entry.Act("NoAction")), "const default"},
		{"field twice", entry.Table("ingress.classify", 0, entry.Act("ingress.drop"), entry.Exact("istd.input_port", u(1)), entry.Exact("istd.input_port", u(2))), "given twice"},
		{"param twice", entry.Table("ingress.classify", 0, entry.Act("ingress.set_port", entry.P("port", u(1)), entry.P("port", u(2))), entry.Exact("istd.input_port", u(1))), "given twice"},
		{"missing param", entry.Table("ingress.classify", 0, entry.Act("ingress.set_port"), entry.Exact("istd.input_port", u(1))), "param port is missing"},
		{"unknown param", entry.Table("ingress.classify", 0, entry.Act("ingress.set_port", entry.P("port", u(1)), entry.P("vlan", u(1))), entry.Exact("istd.input_port", u(1))), `no param "vlan"`},
		{"param too wide", entry.Table("ingress.routes", 0, entry.Act("ingress.set_nexthop", entry.P("port", u(1)), entry.P("dmac", u(1<<48))), entry.Exact("meta.vrf", u(1))), "does not fit in 48 bits"},
		{"action in indirect table", entry.Table("ingress.services", 0, entry.Act("ingress.drop"), entry.Exact("hdr.ipv4.dst_addr", u(1)), entry.Exact("meta.dst_port", u(1))), "takes a member or group"},
		{"member in direct table", entry.TableMember("ingress.classify", 0, "m", entry.Exact("istd.input_port", u(1))), "is direct"},
		{"group without selector", entry.TableGroup("ingress.nat", 0, "g", entry.Exact("hdr.ipv4.src_addr", u(1))), "without a selector"},
		{"unknown profile", entry.Member("ingress.nope", "m", entry.Act("ingress.dnat")), `unknown action profile`},
		{"member action not usable", entry.Member("ingress.backends", "m", entry.Act("ingress.allow")), "not usable by members"},
		{"group in profile without selector", entry.Group("ingress.nat_profile", "g"), "no selector"},
		{"group too large", entry.Group("ingress.backends", "g", entry.W("a", 60), entry.W("b", 5)), "exceeds max_group_size 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := in.Encode(tt.e, newFakeIDs())
			if err == nil {
				t.Fatalf("Encode(%s) succeeded, want error containing %q", tt.e, tt.want)
			}
			if !errors.Is(err, ErrInvalidEntry) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Encode(%s) = %v, want ErrInvalidEntry containing %q", tt.e, err, tt.want)
			}
		})
	}
}

func TestDecodeRejectsUnknownIDs(t *testing.T) {
	in := testInfo(t)
	ids := newFakeIDs()
	for _, txt := range []string{
		`table_entry { table_id: 1 }`,
		`table_entry { table_id: 33554433 match { field_id: 9 exact { value: "\001" } } action { action { action_id: 16777217 } } }`,
		`table_entry { table_id: 33554433 match { field_id: 1 exact { value: "\001" } } action { action { action_id: 99 } } }`,
		`table_entry { table_id: 33554436 match { field_id: 1 exact { value: "\001" } } action { action_profile_member_id: 5 } }`,
		`action_profile_member { action_profile_id: 285212673 member_id: 42 action { action_id: 16777221 } }`,
		`action_profile_group { action_profile_id: 7 group_id: 1 }`,
		`counter_entry { counter_id: 1 }`,
	} {
		ent := &p4v1.Entity{}
		if err := prototext.Unmarshal([]byte(txt), ent); err != nil {
			t.Fatal(err)
		}
		if e, err := in.Decode(ent, ids); err == nil {
			t.Errorf("Decode(%s) = %s, want an error", txt, e)
		}
	}
}

func TestDecodeCanonicalisesPaddedBytes(t *testing.T) {
	in := testInfo(t)
	ent := &p4v1.Entity{}
	txt := `table_entry { table_id: 33554433 match { field_id: 1 exact { value: "\000\000\000\007" } }
	  action { action { action_id: 16777218 params { param_id: 1 value: "\000\000\000\001" } } } }`
	if err := prototext.Unmarshal([]byte(txt), ent); err != nil {
		t.Fatal(err)
	}
	got, err := in.Decode(ent, newFakeIDs())
	if err != nil {
		t.Fatal(err)
	}
	want := entry.Table("ingress.classify", 0, entry.Act("ingress.set_port", entry.P("port", entry.Uint(1))), entry.Exact("istd.input_port", entry.Uint(7)))
	if !got.Equal(want) {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestInitialDefault(t *testing.T) {
	in := testInfo(t)
	d, ok := in.InitialDefault("ingress.routes")
	if !ok || !d.Equal(entry.Default("ingress.routes", entry.Act("ingress.drop"))) {
		t.Fatalf("InitialDefault = %s, %v", d, ok)
	}
}

func TestNewInfoRejectsBrokenP4Info(t *testing.T) {
	for name, txt := range map[string]string{
		"duplicate table name": `tables { preamble { id: 1 name: "t" } } tables { preamble { id: 2 name: "t" } }`,
		"duplicate table id":   `tables { preamble { id: 1 name: "t" } } tables { preamble { id: 1 name: "u" } }`,
		"unknown action ref":   `tables { preamble { id: 1 name: "t" } action_refs { id: 5 } }`,
		"unknown profile":      `tables { preamble { id: 1 name: "t" } implementation_id: 5 }`,
		"duplicate param":      `actions { preamble { id: 1 name: "a" } params { id: 1 name: "p" } params { id: 2 name: "p" } }`,
	} {
		p := &p4configv1.P4Info{}
		if err := prototext.Unmarshal([]byte(txt), p); err != nil {
			t.Fatal(err)
		}
		if _, err := NewInfo(p); err == nil {
			t.Errorf("%s: NewInfo accepted %s", name, txt)
		}
	}
}
