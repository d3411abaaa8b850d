package entry

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// anyEntry returns a canonical, valid entry of any kind, with every match kind, empty and non-empty
// params, member and group references and groups of several sizes.
func anyEntry(r *rand.Rand, key int) Entry {
	params := func() []Param {
		var ps []Param
		for i := range r.IntN(4) {
			ps = append(ps, P(fmt.Sprintf("p%d", i), Uint(r.Uint64N(1<<uint(1+r.IntN(63))))))
		}
		return ps
	}
	switch r.IntN(6) {
	case 0:
		return Member("prof", fmt.Sprintf("m%d", key), Act("fwd", params()...))
	case 1:
		var ms []GroupMember
		for i := range 1 + r.IntN(300) { // some groups need a chunk of their own
			ms = append(ms, W(fmt.Sprintf("member-with-a-long-name-%d", i), int32(1+r.IntN(5))))
		}
		return Group("prof", fmt.Sprintf("g%d", key), ms...)
	case 2:
		return Default(fmt.Sprintf("t%d", key), Act("drop", params()...))
	case 3:
		return TableMember("ind", 0, fmt.Sprintf("m%d", r.IntN(10)), Exact("f", Uint(uint64(key))))
	case 4:
		return TableGroup("sel", 0, fmt.Sprintf("g%d", r.IntN(10)), LPM("dst", Uint(uint64(key)<<8), 24))
	}
	return Table("acl", int32(1+r.IntN(1000)), Act("allow", params()...),
		Exact("a", Uint(uint64(key))), Ternary("b", Uint(r.Uint64()), Uint(0xff00)),
		Range("c", Uint(10), Uint(uint64(10+r.IntN(100)))), Optional("d", Uint(uint64(r.IntN(3)))))
}

func TestSetReturnsExactlyTheEntriesStored(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s Set
	for i := range 2000 {
		e := anyEntry(r, i)
		stored, err := s.Put(e)
		if err != nil {
			t.Fatal(err)
		}
		k := stored.Key()
		got, ok := s.Get(k)
		if !ok || !reflect.DeepEqual(got, stored) {
			t.Fatalf("stored\n%#v\ngot\n%#v", stored, got)
		}
		v := stored.Pack()
		if un, err := Unpack(k, v); err != nil || !reflect.DeepEqual(un, stored) {
			t.Fatalf("%s: Unpack gave %v, %v", k, un, err)
		}
		if _, present, changed := s.Changed(k, v+"x"); !present || !changed {
			t.Fatalf("%s: Changed against another value: %v %v", k, present, changed)
		}
		if cur, present, changed := s.Changed(k, v); cur != v || !present || changed {
			t.Fatalf("%s: Changed against its own value: %q %v %v", k, cur, present, changed)
		}
		if cur, present, changed := s.Changed(k, ""); cur != v || !present || !changed {
			t.Fatalf("%s: Changed for a consumer holding nothing: %q %v %v", k, cur, present, changed)
		}
	}
	if _, present, changed := s.Changed("no such key", ""); present || changed {
		t.Fatal("a key neither stored nor held reported as changed")
	}
	if _, present, changed := s.Changed("no such key", "held"); present || !changed {
		t.Fatal("a held key the set does not have reported as unchanged")
	}
}

func TestUnpackRejectsMalformedValues(t *testing.T) {
	e := Table("t", 0, Act("a", P("p", Uint(1))), Exact("f", Uint(1)))
	v := e.Pack()
	for _, bad := range []Packed{"", v[:len(v)-1], v + "\x00", "\xff\xff\xff\xff\xff"} {
		if _, err := Unpack(e.Key(), bad); err == nil {
			t.Errorf("Unpack(%q) succeeded", bad)
		}
	}
	if _, err := Unpack("\x09junk", v); err == nil {
		t.Error("Unpack with a key of an unknown kind succeeded")
	}
}

func TestSetEntriesShareNoMemoryWithTheSet(t *testing.T) {
	var s Set
	e, _ := s.Put(Table("t", 0, Act("a", P("p", Uint(0x0102))), Exact("f", Uint(7))))
	got, _ := s.Get(e.Key())
	got.Match[0].Value[0] = 99
	got.Action.Params[0].Value[0] = 99
	if again, _ := s.Get(e.Key()); !again.Equal(e) {
		t.Fatalf("writing into a returned entry changed the set: %s", again)
	}
}

// TestSetChurnKeepsEntriesAndBoundsMemory replaces and deletes entries many times over (so chunks are
// evacuated again and again, and slot numbers are reused) and checks every entry against a plain map, the
// dead bytes against the live ones, and that owner labels are forgotten with their last entry.
func TestSetChurnKeepsEntriesAndBoundsMemory(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var s Set
	want := map[Key]Entry{}
	owners := map[Key]string{}
	for round := range 40_000 {
		key := r.IntN(3000)
		switch op := r.IntN(10); {
		case op < 6:
			e := anyEntry(rand.New(rand.NewPCG(uint64(key), uint64(round))), key)
			stored, err := s.Put(e)
			if err != nil {
				t.Fatal(err)
			}
			want[stored.Key()] = stored
		case op < 8:
			for k := range want {
				if !s.Delete(k) {
					t.Fatalf("delete of present %s failed", k)
				}
				delete(want, k)
				delete(owners, k)
				break
			}
		default:
			for k := range want {
				o := fmt.Sprintf("owner-%d", r.IntN(50))
				s.SetOwner(k, o)
				owners[k] = o
				break
			}
		}
	}
	if s.Len() != len(want) {
		t.Fatalf("set holds %d entries, want %d", s.Len(), len(want))
	}
	for k, e := range want {
		got, ok := s.Get(k)
		if !ok || !reflect.DeepEqual(got, e) {
			t.Fatalf("%s: got %v, want %v", k, got, e)
		}
		if o, _ := s.Owner(k); o != owners[k] {
			t.Fatalf("%s: owner %q, want %q", k, o, owners[k])
		}
	}
	// Every chunk but the current one is at least half live: dead bytes never outgrow the live ones by
	// more than the current chunk.
	for c := range s.recs.chunks {
		ch := s.recs.chunks[c]
		if uint32(c) != s.recs.cur && ch.live*2 < len(ch.buf) {
			t.Errorf("chunk %d keeps %d bytes for %d live ones", c, len(ch.buf), ch.live)
		}
	}
	distinct := map[string]bool{}
	for _, o := range owners {
		distinct[o] = true
	}
	if len(s.owners.ids) != len(distinct) {
		t.Errorf("owner table holds %d labels, entries have %d", len(s.owners.ids), len(distinct))
	}
	for k := range want {
		s.Delete(k)
	}
	if len(s.owners.ids) != 0 || s.Len() != 0 {
		t.Errorf("after deleting everything: %d owner labels, %d entries", len(s.owners.ids), s.Len())
	}
	for c := range s.recs.chunks {
		if ch := s.recs.chunks[c]; ch.live != 0 || (uint32(c) != s.recs.cur && len(ch.buf) != 0) {
			t.Errorf("chunk %d still holds %d bytes (%d live) after deleting everything", c, len(ch.buf), ch.live)
		}
	}
}

// A modify that keeps the packed size (a new value of a fixed-width param) rewrites the record where it
// is: the arena neither grows nor evacuates, and the set reads back the newest value.
func TestSameSizeModifyRewritesInPlace(t *testing.T) {
	var s Set
	route := func(i, mac int) Entry {
		return Table("routes", 0, Act("fwd", P("dmac", Uint(uint64(0x100000+mac)))), LPM("dst", Uint(uint64(0x0a000000+i<<8)), 24))
	}
	for i := range 100 {
		s.Put(route(i, 0))
	}
	arenaBytes := func() (n int) {
		for _, c := range s.recs.chunks {
			n += len(c.buf)
		}
		return n
	}
	before := arenaBytes()
	for round := 1; round <= 50; round++ {
		for i := range 100 {
			s.Put(route(i, round))
		}
	}
	if after := arenaBytes(); after != before {
		t.Fatalf("arena went from %d to %d bytes for same-size modifies", before, after)
	}
	for i := range 100 {
		if got, _ := s.Get(route(i, 0).Key()); !got.Equal(route(i, 50)) {
			t.Fatalf("entry %d = %s, want %s", i, got, route(i, 50))
		}
	}
}

func TestUnpackerEntriesStayValidUntilReset(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var u Unpacker
	for round := range 3 {
		var want []Entry
		var got []Entry
		for i := range 3000 { // several chunks of each pool
			e := anyEntry(r, round*10_000+i)
			want = append(want, e)
			un, err := u.Unpack(e.Key(), e.Pack())
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, un)
		}
		for i := range want { // checked after all were unpacked: none overwrote another
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("round %d entry %d: got %v, want %v", round, i, got[i], want[i])
			}
		}
		u.Reset()
	}
}
