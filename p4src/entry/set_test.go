package entry

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func mustSet(t testing.TB, es ...Entry) *Set {
	t.Helper()
	s, err := NewSet(es...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSetPutReplacesAndAddRejectsConflicts(t *testing.T) {
	var s Set // the zero Set is usable
	a1 := Table("t", 0, Act("a", P("p", Uint(1))), Exact("f", Uint(1)))
	a2 := Table("t", 0, Act("a", P("p", Uint(2))), Exact("f", Uint(1)))
	if _, err := s.Put(a1); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(a1); err != nil {
		t.Fatalf("adding an identical entry again: %v", err)
	}
	if err := s.Add(a2); err == nil {
		t.Fatal("Add of a different entry under the same key should fail")
	}
	if _, err := s.Put(a2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(a1.Key()); !got.Equal(a2) || s.Len() != 1 {
		t.Fatalf("Put did not replace: %v", s.String())
	}
	if _, err := s.Put(Entry{Kind: KindTable, Table: "t"}); err == nil {
		t.Fatal("Put of an invalid entry should fail")
	}
	if !s.Delete(a1.Key()) || s.Delete(a1.Key()) || s.Len() != 0 {
		t.Fatal("Delete should remove once")
	}
}

func TestSetPutCanonicalises(t *testing.T) {
	var s Set
	raw := Entry{Kind: KindTable, Table: "t", Action: Action{Name: "a", Params: []Param{{"p", []byte{0, 0, 9}}}},
		Match: []Match{{Field: "f", Kind: MatchExact, Value: []byte{0, 0, 0, 1}}}}
	got, err := s.Put(raw)
	if err != nil {
		t.Fatal(err)
	}
	if want := Table("t", 0, Act("a", P("p", Uint(9))), Exact("f", Uint(1))); !got.Equal(want) || !s.Has(want.Key()) {
		t.Fatalf("stored %s, want %s", got, want)
	}
}

func TestSortedIsDependencyOrderedAndDeterministic(t *testing.T) {
	es := []Entry{
		Default("z", Act("drop")),
		TableGroup("t", 0, "g", Exact("f", Uint(2))),
		TableGroup("t", 0, "g", Exact("f", Uint(1))),
		Group("sel", "g", W("m", 1)),
		Member("sel", "m", Act("a")),
		Table("a", 0, Act("x"), Exact("f", Uint(0x100))),
		Table("a", 0, Act("x"), Exact("f", Uint(0xff))),
	}
	want := []string{
		`member sel["m"] -> a()`,
		`group sel["g"] {"m"*1}`,
		`table a[f=0xff] -> x()`,
		`table a[f=0x0100] -> x()`,
		`table t[f=0x01] -> group "g"`,
		`table t[f=0x02] -> group "g"`,
		`default z -> drop()`,
	}
	for i := 0; i < 10; i++ {
		rand.Shuffle(len(es), func(a, b int) { es[a], es[b] = es[b], es[a] })
		var got []string
		for _, e := range mustSet(t, es...).Sorted() {
			got = append(got, e.String())
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Sorted:\n%q\nwant\n%q", got, want)
		}
	}
}

func TestCloneIsIndependent(t *testing.T) {
	a := Table("t", 0, Act("a"), Exact("f", Uint(1)))
	s := mustSet(t, a)
	c := s.Clone()
	c.Delete(a.Key())
	if !s.Has(a.Key()) || c.Has(a.Key()) {
		t.Fatal("clone shares state")
	}
	if s.Equal(c) || !s.Equal(s.Clone()) {
		t.Fatal("Equal is wrong")
	}
}

func TestDiff(t *testing.T) {
	keep := Table("t", 0, Act("a"), Exact("f", Uint(1)))
	changedOld := Table("t", 0, Act("a"), Exact("f", Uint(2)))
	changedNew := Table("t", 0, Act("b"), Exact("f", Uint(2)))
	gone := Member("p", "m", Act("a"))
	added := Group("p", "g")
	from := mustSet(t, keep, changedOld, gone)
	to := mustSet(t, keep, changedNew, added)
	d := Diff(from, to)
	if len(d.Insert) != 1 || !d.Insert[0].Equal(added) ||
		len(d.Modify) != 1 || !d.Modify[0].Equal(changedNew) ||
		len(d.Delete) != 1 || !d.Delete[0].Equal(gone) {
		t.Fatalf("Diff = %+v", d)
	}
	if Diff(to, to).Len() != 0 {
		t.Fatal("a set should not differ from itself")
	}
}

func TestCountByContainer(t *testing.T) {
	s := mustSet(t, Table("t", 0, Act("a"), Exact("f", Uint(1))), Table("t", 0, Act("a"), Exact("f", Uint(2))), Member("p", "m", Act("a")))
	got := s.CountByContainer()
	if got["t"] != 2 || got["p"] != 1 || len(got) != 2 {
		t.Fatalf("CountByContainer = %v", got)
	}
}

// randomEntry draws from a small universe so that keys collide often.
func randomEntry(r *rand.Rand) Entry {
	switch r.IntN(4) {
	case 0:
		return Member("p", fmt.Sprint("m", r.IntN(5)), Act("a", P("v", Uint(uint64(r.IntN(3))))))
	case 1:
		return Group("p", fmt.Sprint("g", r.IntN(3)), W(fmt.Sprint("m", r.IntN(5)), 1+r.Int32N(2)))
	case 2:
		return Default("t", Act(fmt.Sprint("a", r.IntN(2))))
	}
	return Table("t", r.Int32N(2), Act("a", P("v", Uint(uint64(r.IntN(3))))), Ternary("f", Uint(uint64(r.IntN(8))), Uint(0xff)))
}

// The journal lets a consumer diff only what changed; that must always agree
// with a full diff, including after journal truncation (where it says so).
func TestChangedSinceAgreesWithFullDiff(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s Set
	snapshot, gen := s.Clone(), s.Generation()
	fullDiffs := 0
	for step := 0; step < 3000; step++ {
		for n := r.IntN(8); n > 0; n-- {
			if r.IntN(3) == 0 {
				s.Delete(randomEntry(r).Key())
			} else if _, err := s.Put(randomEntry(r)); err != nil {
				t.Fatal(err)
			}
		}
		if step%500 == 499 {
			// A burst larger than the journal bound.
			for i := 0; i < minJournal+10; i++ {
				s.Put(Table("big", 0, Act("a"), Exact("k", Uint(uint64(i)))))
			}
			for i := 0; i < minJournal+10; i++ {
				s.Delete(Table("big", 0, Act("a"), Exact("k", Uint(uint64(i)))).Key())
			}
		}
		full := Diff(snapshot, &s)
		keys, ok := s.ChangedSince(gen)
		if !ok {
			fullDiffs++
		} else if inc := DiffKeys(snapshot, &s, keys); fmt.Sprint(inc) != fmt.Sprint(full) {
			t.Fatalf("step %d: incremental diff %v != full diff %v", step, inc, full)
		}
		snapshot, gen = s.Clone(), s.Generation()
	}
	if fullDiffs == 0 || fullDiffs > 20 {
		t.Fatalf("journal truncated %d times; want a few (one per burst)", fullDiffs)
	}
}

func TestPutOfAnEqualEntryIsNotAChange(t *testing.T) {
	var s Set
	e := Table("t", 0, Act("a"), Exact("f", Uint(1)))
	s.Put(e)
	g := s.Generation()
	s.Put(Table("t", 0, Act("a"), Exact("f", []byte{0, 1})))
	if keys, ok := s.ChangedSince(g); !ok || len(keys) != 0 {
		t.Fatalf("ChangedSince = %v, %v; want nothing", keys, ok)
	}
}

// A producer restating its state (the translator re-putting what it built before) must not make
// garbage per entry: Put builds the key in scratch and finds the entry unchanged.
func TestPutOfAnUnchangedCanonicalEntryDoesNotAllocate(t *testing.T) {
	var s Set
	e := Table("t", 0, Act("a", P("p", Uint(7))), LPM("dst", Uint(0x0a000000), 8), Exact("vrf", Uint(1)))
	if _, err := s.Put(e); err != nil {
		t.Fatal(err)
	}
	g := s.Generation()
	if n := testing.AllocsPerRun(50, func() { s.Put(e) }); n != 0 {
		t.Fatalf("Put of an unchanged entry: %v allocations, want 0", n)
	}
	if keys, ok := s.ChangedSince(g); !ok || len(keys) != 0 {
		t.Fatalf("ChangedSince = %v, %v; want nothing", keys, ok)
	}
	changed := Table("t", 0, Act("a", P("p", Uint(8))), LPM("dst", Uint(0x0a000000), 8), Exact("vrf", Uint(1)))
	s.Put(changed)
	if keys, ok := s.ChangedSince(g); !ok || len(keys) != 1 || keys[0] != e.Key() {
		t.Fatalf("ChangedSince = %v, %v; want the one key", keys, ok)
	}
	if got, _ := s.Get(e.Key()); !got.Equal(changed) {
		t.Fatalf("Get = %s, want %s", got, changed)
	}
}

func TestAddAllMergesAndDetectsConflicts(t *testing.T) {
	a := mustSet(t, Table("t", 0, Act("a"), Exact("f", Uint(1))))
	b := mustSet(t, Table("t", 0, Act("a"), Exact("f", Uint(1))), Member("p", "m", Act("x")))
	if err := a.AddAll(b); err != nil || a.Len() != 2 {
		t.Fatalf("AddAll = %v, len %d", err, a.Len())
	}
	c := mustSet(t, Table("t", 0, Act("b"), Exact("f", Uint(1))))
	if err := a.AddAll(c); err == nil {
		t.Fatal("AddAll of a conflicting entry should fail")
	}
}

func TestSetEntriesAreValuesAcrossModifyDeleteAndClone(t *testing.T) {
	var s Set
	mk := func(f, p uint64) Entry { return Table("t", 0, Act("a", P("p", Uint(p))), Exact("f", Uint(f))) }
	for f := uint64(0); f < 100; f++ {
		if _, err := s.Put(mk(f, 1)); err != nil {
			t.Fatal(err)
		}
	}
	k := mk(7, 1).Key()
	before, _ := s.Get(k)
	clone := s.Clone()
	if _, err := s.Put(mk(7, 2)); err != nil { // modified in place inside the set
		t.Fatal(err)
	}
	if !before.Equal(mk(7, 1)) {
		t.Fatalf("an entry got before a modify changed: %s", before)
	}
	if got, _ := clone.Get(k); !got.Equal(mk(7, 1)) {
		t.Fatalf("a clone saw the original's modify: %s", got)
	}
	// Deleted slots are reused: the entries that take them must not disturb the others.
	for f := uint64(0); f < 50; f++ {
		s.Delete(mk(f, 1).Key())
	}
	for f := uint64(200); f < 260; f++ {
		if _, err := s.Put(mk(f, 3)); err != nil {
			t.Fatal(err)
		}
	}
	for f := uint64(50); f < 100; f++ {
		if got, ok := s.Get(mk(f, 1).Key()); !ok || !got.Equal(mk(f, 1)) {
			t.Fatalf("entry %d: got %s, %v after slots were reused", f, got, ok)
		}
	}
	if s.Len() != 110 || clone.Len() != 100 {
		t.Fatalf("lengths %d and %d, want 110 and 100", s.Len(), clone.Len())
	}
}

func TestSetSuspendedJournalMakesConsumersCompareEverything(t *testing.T) {
	var s Set
	s.Grow(1000)
	g0 := s.Generation()
	s.SuspendJournal()
	for f := uint64(0); f < 10; f++ {
		if _, err := s.Put(Table("t", 0, Act("a"), Exact("f", Uint(f)))); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := s.ChangedSince(g0); ok {
		t.Fatal("ChangedSince reached back into changes made while the journal was suspended")
	}
	s.ResumeJournal()
	g1 := s.Generation()
	if g1 != g0+10 {
		t.Fatalf("generation %d, want %d", g1, g0+10)
	}
	if _, err := s.Put(Table("t", 0, Act("a"), Exact("f", Uint(99)))); err != nil {
		t.Fatal(err)
	}
	keys, ok := s.ChangedSince(g1)
	if !ok || len(keys) != 1 || keys[0] != Table("t", 0, Act("a"), Exact("f", Uint(99))).Key() {
		t.Fatalf("after ResumeJournal: %v, %v", keys, ok)
	}
}

func TestAppendKeyIsKey(t *testing.T) {
	e := Table("t", 5, Act("a"), Exact("f", Uint(1)), Ternary("g", Uint(0xf0), Uint(0xff)))
	if got := Key(e.AppendKey([]byte("prefix")))[len("prefix"):]; got != e.Key() {
		t.Fatalf("AppendKey appended %q, Key is %q", got, e.Key())
	}
}

func TestClaimStoresOnlyNewKeysAndKeepsOwners(t *testing.T) {
	var s Set
	a := Table("t", 0, Act("a", P("p", Uint(1))), Exact("f", Uint(1)))
	b := Table("t", 0, Act("a", P("p", Uint(2))), Exact("f", Uint(1))) // same key, other contents
	k := a.Key()
	if cur, existed, err := s.Claim(k, a, "x"); err != nil || existed || cur != "" {
		t.Fatalf("first claim: %q %v %v", cur, existed, err)
	}
	if cur, existed, err := s.Claim(k, b, "y"); err != nil || !existed || cur != "x" {
		t.Fatalf("second claim: %q %v %v", cur, existed, err)
	}
	if got, _ := s.Get(k); !got.Equal(a) {
		t.Fatalf("a claim of a present key changed the entry to %s", got)
	}
	g := s.Generation()
	if !s.SetOwner(k, "y") || s.Generation() != g {
		t.Fatal("SetOwner failed or was journaled as a change")
	}
	if _, err := s.PutKeyed(k, b); err != nil {
		t.Fatal(err)
	}
	if o, ok := s.Owner(k); !ok || o != "y" {
		t.Fatalf("owner after a put %q, %v; want y (kept)", o, ok)
	}
	if c := s.Clone(); func() string { o, _ := c.Owner(k); return o }() != "y" {
		t.Fatal("a clone lost the owner")
	}
	if _, _, err := s.Claim(Entry{Kind: KindTable, Table: "t"}.Key(), Entry{Kind: KindTable, Table: "t"}, "z"); err == nil {
		t.Fatal("claim of an invalid entry should fail")
	}
	s.Delete(k)
	if _, ok := s.Owner(k); ok || s.SetOwner(k, "q") {
		t.Fatal("a deleted entry still has an owner")
	}
}
