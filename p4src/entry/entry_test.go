package entry

import (
	"bytes"
	"strings"
	"testing"
)

func TestCanonicalBytes(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"empty stays empty", nil, nil},
		{"zero is one zero byte", []byte{0, 0, 0, 0}, []byte{0}},
		{"leading zeros dropped", []byte{0, 0, 1, 2}, []byte{1, 2}},
		{"already canonical unchanged", []byte{0x80, 0}, []byte{0x80, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Canonical(tt.in)
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("Canonical(%x) = %x, want %x", tt.in, got, tt.want)
			}
			if len(tt.in) > 0 && !IsCanonical(got) {
				t.Fatalf("IsCanonical(%x) = false", got)
			}
			if len(got) > 0 && len(tt.in) > 0 && &got[0] == &tt.in[len(tt.in)-len(got)] {
				t.Fatalf("Canonical aliases its input")
			}
		})
	}
}

func TestUintIsCanonical(t *testing.T) {
	tests := []struct {
		v    uint64
		want []byte
	}{
		{0, []byte{0}},
		{1, []byte{1}},
		{0xff, []byte{0xff}},
		{0x100, []byte{1, 0}},
		{0x0a000001, []byte{0x0a, 0, 0, 1}},
		{^uint64(0), bytes.Repeat([]byte{0xff}, 8)},
	}
	for _, tt := range tests {
		if got := Uint(tt.v); !bytes.Equal(got, tt.want) {
			t.Errorf("Uint(%#x) = %x, want %x", tt.v, got, tt.want)
		}
	}
}

func TestBitLen(t *testing.T) {
	tests := []struct {
		in   []byte
		want int
	}{
		{nil, 0}, {[]byte{0}, 0}, {[]byte{1}, 1}, {[]byte{0, 0x80}, 8}, {[]byte{1, 0}, 9}, {[]byte{0xff, 0xff, 0xff, 0xff}, 32},
	}
	for _, tt := range tests {
		if got := BitLen(tt.in); got != tt.want {
			t.Errorf("BitLen(%x) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestConstructorsReturnCanonicalEntries(t *testing.T) {
	e := Table("t", 10, Act("a", P("z", []byte{0, 0, 5}), P("b", []byte{0})),
		Ternary("x", []byte{0xff, 0xff}, []byte{0x00, 0x0f}),
		Exact("c", []byte{0, 0, 0, 7}),
		LPM("d", []byte{0, 0}, 0),             // don't care: dropped
		Ternary("e", []byte{1}, []byte{0, 0}), // mask zero: dropped
		Range("f", []byte{0, 1}, []byte{0, 0x10}),
	)
	want := Entry{Kind: KindTable, Table: "t", Priority: 10,
		Action: Action{Name: "a", Params: []Param{{"b", []byte{0}}, {"z", []byte{5}}}},
		Match: []Match{
			{Field: "c", Kind: MatchExact, Value: []byte{7}},
			{Field: "f", Kind: MatchRange, Value: []byte{1}, High: []byte{0x10}},
			{Field: "x", Kind: MatchTernary, Value: []byte{0x0f}, Mask: []byte{0x0f}},
		}}
	if !e.Equal(want) {
		t.Fatalf("got  %s\nwant %s", e, want)
	}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	if !e.isCanonical() {
		t.Fatal("constructor result is not canonical")
	}
}

func TestCanonicalDoesNotTouchItsInput(t *testing.T) {
	params := []Param{{"z", []byte{0, 1}}, {"a", []byte{2}}}
	match := []Match{{Field: "y", Kind: MatchExact, Value: []byte{0, 3}}, {Field: "b", Kind: MatchExact, Value: []byte{4}}}
	in := Entry{Kind: KindTable, Table: "t", Match: match, Action: Action{Name: "a", Params: params}}
	out := in.Canonical()
	if params[0].Name != "z" || !bytes.Equal(params[0].Value, []byte{0, 1}) || match[0].Field != "y" {
		t.Fatal("Canonical modified the caller's slices")
	}
	if out.Match[0].Field != "b" || out.Action.Params[0].Name != "a" || !bytes.Equal(out.Action.Params[1].Value, []byte{1}) {
		t.Fatalf("not canonicalised: %s", out)
	}
}

// Canonical copies only the parts it changes: a slice already canonical is shared (the result is an
// immutable value either way), one it reorders or rewrites is a copy.
func TestCanonicalCopiesOnlyWhatItChanges(t *testing.T) {
	sortedMatch := []Match{{Field: "a", Kind: MatchExact, Value: []byte{1}}, {Field: "b", Kind: MatchExact, Value: []byte{2}}}
	unsortedMatch := []Match{{Field: "b", Kind: MatchExact, Value: []byte{2}}, {Field: "a", Kind: MatchExact, Value: []byte{1}}}
	sortedParams := []Param{{"a", []byte{1}}, {"b", []byte{2}}}
	paddedParams := []Param{{"a", []byte{0, 1}}, {"b", []byte{2}}}
	tests := []struct {
		name                   string
		match                  []Match
		params                 []Param
		sharesMatch, sharesPar bool
	}{
		{"canonical: everything shared", sortedMatch, sortedParams, true, true},
		{"unsorted match copied, params shared", unsortedMatch, sortedParams, false, true},
		{"padded param copied, match shared", sortedMatch, paddedParams, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Entry{Kind: KindTable, Table: "t", Match: tt.match, Action: Action{Name: "x", Params: tt.params}}
			out := in.Canonical()
			if !out.isCanonical() {
				t.Fatalf("not canonical: %s", out)
			}
			if got := &out.Match[0] == &tt.match[0]; got != tt.sharesMatch {
				t.Errorf("match shared = %v, want %v", got, tt.sharesMatch)
			}
			if got := &out.Action.Params[0] == &tt.params[0]; got != tt.sharesPar {
				t.Errorf("params shared = %v, want %v", got, tt.sharesPar)
			}
			// Values it kept are the caller's bytes; values it changed are not.
			if !tt.sharesPar && &out.Action.Params[0].Value[0] == &tt.params[0].Value[1] {
				t.Error("a canonicalised param value aliases the caller's padded bytes")
			}
		})
	}
}

func TestMaskedEqualIsAndThenCompare(t *testing.T) {
	tests := []struct {
		v, m []byte
		want bool
	}{
		{nil, []byte{0xff}, true},
		{[]byte{0}, []byte{0x0f}, true},
		{[]byte{0x0f}, []byte{0xff}, true},
		{[]byte{0x1f}, []byte{0x0f}, false},
		{[]byte{1, 0}, []byte{0xff}, false}, // a bit above the mask's width
		{[]byte{0x0a}, []byte{0xff, 0xff}, true},
		{[]byte{0xff, 0}, []byte{0xff, 0}, true},
		{[]byte{0xff, 1}, []byte{0xff, 0}, false},
	}
	for _, tt := range tests {
		ref := bytes.Equal(and(tt.v, tt.m), tt.v)
		if got := maskedEqual(tt.v, tt.m); got != tt.want || got != ref {
			t.Errorf("maskedEqual(%x, %x) = %v, want %v (and-then-compare says %v)", tt.v, tt.m, got, tt.want, ref)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	ok := Act("fwd", P("port", Uint(1)))
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{"table entry without table", Entry{Kind: KindTable, Action: ok}, "no table"},
		{"table entry without action or reference", Entry{Kind: KindTable, Table: "t"}, "exactly one of action, member or group"},
		{"table entry with action and member", Entry{Kind: KindTable, Table: "t", Action: ok, Member: "m"}, "exactly one"},
		{"negative priority", Entry{Kind: KindTable, Table: "t", Action: ok, Priority: -1}, "negative priority"},
		{"non-canonical match value", Entry{Kind: KindTable, Table: "t", Action: ok,
			Match: []Match{{Field: "f", Kind: MatchExact, Value: []byte{0, 1}}}}, "non-canonical"},
		{"empty match value", Entry{Kind: KindTable, Table: "t", Action: ok,
			Match: []Match{{Field: "f", Kind: MatchExact}}}, "empty byte string"},
		{"duplicate match field", Entry{Kind: KindTable, Table: "t", Action: ok,
			Match: []Match{Exact("f", Uint(1)), Exact("f", Uint(2))}}, "duplicate"},
		{"lpm with zero prefix and a value", Entry{Kind: KindTable, Table: "t", Action: ok,
			Match: []Match{{Field: "f", Kind: MatchLPM, Value: Uint(1)}}}, "prefix length 0"},
		{"ternary value outside mask", Entry{Kind: KindTable, Table: "t", Action: ok,
			Match: []Match{{Field: "f", Kind: MatchTernary, Value: Uint(3), Mask: Uint(1)}}}, "outside mask"},
		{"ternary zero mask", Entry{Kind: KindTable, Table: "t", Action: ok,
			Match: []Match{{Field: "f", Kind: MatchTernary, Value: Uint(0), Mask: Uint(0)}}}, "mask is zero"},
		{"range low above high", Entry{Kind: KindTable, Table: "t", Action: ok,
			Match: []Match{Range("f", Uint(0x100), Uint(0xff))}}, "above high"},
		{"unknown match kind", Entry{Kind: KindTable, Table: "t", Action: ok,
			Match: []Match{{Field: "f", Kind: 42, Value: Uint(1)}}}, "unknown match kind"},
		{"duplicate param", Entry{Kind: KindTable, Table: "t",
			Action: Action{Name: "a", Params: []Param{P("p", Uint(1)), P("p", Uint(2))}}}, "duplicate"},
		{"default with match", Entry{Kind: KindDefault, Table: "t", Action: ok, Match: []Match{Exact("f", Uint(1))}}, "cannot have match"},
		{"default with member reference", Entry{Kind: KindDefault, Table: "t", Action: ok, Member: "m"}, "cannot reference"},
		{"default without action", Entry{Kind: KindDefault, Table: "t"}, "no action"},
		{"member without name", Entry{Kind: KindMember, Profile: "p", Action: ok}, "profile and a name"},
		{"member without action", Entry{Kind: KindMember, Profile: "p", Name: "m"}, "no action"},
		{"group with action", Entry{Kind: KindGroup, Profile: "p", Name: "g", Action: ok}, "cannot have an action"},
		{"group member weight zero", Group("p", "g", W("m", 0)), "weight 0"},
		{"group duplicate member", Entry{Kind: KindGroup, Profile: "p", Name: "g", Members: []GroupMember{W("m", 1), W("m", 2)}}, "duplicate"},
		{"unknown kind", Entry{Kind: 9, Table: "t"}, "unknown kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.Validate()
			if err == nil {
				t.Fatalf("Validate(%s) = nil, want error containing %q", tt.e, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate(%s) = %v, want it to contain %q", tt.e, err, tt.want)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, e := range []Entry{
		Table("t", 0, Act("drop")),
		Table("t", 5, Act("fwd", P("port", Uint(1))), Ternary("a", Uint(1), Uint(1)), Optional("b", Uint(0)), Range("c", Uint(1), Uint(1))),
		TableMember("t", 0, "m", Exact("k", Uint(1))),
		TableGroup("t", 0, "g", LPM("k", Uint(0x0a000000), 8)),
		Default("t", Act("drop")),
		Member("ap", "m", Act("fwd", P("port", Uint(3)))),
		Group("ap", "g"),
		Group("ap", "g", W("b", 1), W("a", 3)),
	} {
		if err := e.Validate(); err != nil {
			t.Errorf("Validate(%s) = %v", e, err)
		}
	}
}

func TestKeyIdentifiesTheSlotNotTheContents(t *testing.T) {
	base := Table("t", 3, Act("a", P("p", Uint(1))), Exact("f", Uint(1)), Ternary("g", Uint(2), Uint(6)))
	sameSlot := []Entry{
		Table("t", 3, Act("b"), Exact("f", Uint(1)), Ternary("g", Uint(2), Uint(6))),
		TableMember("t", 3, "m", Ternary("g", Uint(2), Uint(6)), Exact("f", []byte{0, 1})),
	}
	otherSlot := []Entry{
		Table("t", 4, Act("a", P("p", Uint(1))), Exact("f", Uint(1)), Ternary("g", Uint(2), Uint(6))),
		Table("u", 3, Act("a", P("p", Uint(1))), Exact("f", Uint(1)), Ternary("g", Uint(2), Uint(6))),
		Table("t", 3, Act("a", P("p", Uint(1))), Exact("f", Uint(2)), Ternary("g", Uint(2), Uint(6))),
		Table("t", 3, Act("a", P("p", Uint(1))), Exact("f", Uint(1)), Ternary("g", Uint(2), Uint(7))),
		Table("t", 3, Act("a", P("p", Uint(1))), Exact("f", Uint(1))),
		Table("t", 3, Act("a", P("p", Uint(1))), Exact("f", Uint(1)), Optional("g", Uint(2))),
	}
	for _, e := range sameSlot {
		if e.Key() != base.Key() {
			t.Errorf("%s and %s should share a key", e, base)
		}
	}
	for _, e := range otherSlot {
		if e.Key() == base.Key() {
			t.Errorf("%s and %s should not share a key", e, base)
		}
	}
}

func TestKeysDoNotCollideAcrossBoundaries(t *testing.T) {
	pairs := [][2]Entry{
		{Member("ab", "c", Act("x")), Member("a", "bc", Act("x"))},
		{Member("p", "n", Act("x")), Group("p", "n")},
		{Default("t", Act("x")), Table("t", 0, Act("x"))},
		{Table("t", 0, Act("x"), Exact("a", []byte("bc"))), Table("t", 0, Act("x"), Exact("ab", []byte("c")))},
		{Table("t", 0, Act("x"), LPM("a", Uint(1), 8)), Table("t", 0, Act("x"), LPM("a", Uint(1), 9))},
		{Table("t", 0, Act("x"), Range("a", Uint(1), Uint(2))), Table("t", 0, Act("x"), Ternary("a", Uint(1), Uint(3)))},
	}
	for _, p := range pairs {
		if p[0].Key() == p[1].Key() {
			t.Errorf("%s and %s share a key %s", p[0], p[1], p[0].Key())
		}
	}
}

func TestKeyAndEntryRenderReadably(t *testing.T) {
	tests := []struct {
		e         Entry
		key, full string
	}{
		{Table("ingress.routes", 0, Act("set_nexthop", P("port", Uint(1))), LPM("hdr.ipv4.dst", Uint(0x0a000000), 24)),
			"table ingress.routes[hdr.ipv4.dst=0x0a000000/24]",
			"table ingress.routes[hdr.ipv4.dst=0x0a000000/24] -> set_nexthop(port=0x01)"},
		{TableGroup("svc", 7, "svc/ns/web/tcp/80", Exact("dst", Uint(0x0a600001)), Range("port", Uint(80), Uint(90)), Ternary("proto", Uint(6), Uint(0xff))),
			"table svc[dst=0x0a600001, port=0x50..0x5a, proto=0x06&&&0xff] prio 7",
			`table svc[dst=0x0a600001, port=0x50..0x5a, proto=0x06&&&0xff] prio 7 -> group "svc/ns/web/tcp/80"`},
		{Member("sel", "svc/ns/web/tcp/80/10.0.0.1", Act("dnat", P("ip", Uint(0x0a000001)))),
			`member sel["svc/ns/web/tcp/80/10.0.0.1"]`,
			`member sel["svc/ns/web/tcp/80/10.0.0.1"] -> dnat(ip=0x0a000001)`},
		{Group("sel", "g", W("b", 2), W("a", 1)), `group sel["g"]`, `group sel["g"] {"a"*1, "b"*2}`},
		{Default("t", Act("drop")), "default t", "default t -> drop()"},
		{TableMember("t", 1, "m", Optional("o", Uint(0))), "table t[o?=0x00] prio 1", `table t[o?=0x00] prio 1 -> member "m"`},
	}
	for _, tt := range tests {
		if got := tt.e.Key().String(); got != tt.key {
			t.Errorf("key:\n got %s\nwant %s", got, tt.key)
		}
		if got := tt.e.String(); got != tt.full {
			t.Errorf("entry:\n got %s\nwant %s", got, tt.full)
		}
		if tt.e.Key().Container() != tt.e.Container() || tt.e.Key().Kind() != tt.e.Kind {
			t.Errorf("key %s: container %q kind %s", tt.e.Key(), tt.e.Key().Container(), tt.e.Key().Kind())
		}
	}
}

func TestEqual(t *testing.T) {
	a := Table("t", 1, Act("a", P("p", Uint(1))), Exact("f", Uint(1)))
	if !a.Equal(Table("t", 1, Act("a", P("p", []byte{0, 1})), Exact("f", []byte{0, 0, 1}))) {
		t.Error("entries differing only in byte padding should be equal after canonicalisation")
	}
	for _, b := range []Entry{
		Table("t", 1, Act("a", P("p", Uint(2))), Exact("f", Uint(1))),
		Table("t", 1, Act("b", P("p", Uint(1))), Exact("f", Uint(1))),
		Table("t", 1, Act("a", P("q", Uint(1))), Exact("f", Uint(1))),
		Table("t", 1, Act("a", P("p", Uint(1)), P("q", Uint(1))), Exact("f", Uint(1))),
		TableMember("t", 1, "m", Exact("f", Uint(1))),
	} {
		if a.Equal(b) {
			t.Errorf("%s should differ from %s", a, b)
		}
	}
	if Group("p", "g", W("a", 1)).Equal(Group("p", "g", W("a", 2))) {
		t.Error("group weights should matter")
	}
}

func FuzzKeyString(f *testing.F) {
	f.Add(string(Table("t", 1, Act("a"), Exact("f", Uint(1)), Range("r", Uint(1), Uint(2))).Key()))
	f.Add(string(Member("p", "n", Act("a")).Key()))
	f.Fuzz(func(t *testing.T, s string) {
		_ = Key(s).String() // must not panic on any input
		_ = Key(s).Container()
	})
}
