package tables

import (
	"encoding/binary"
	"math/rand"
	"testing"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
)

// TestSlabChurnRelocatesEntriesAndKeepsOldSnapshots modifies, deletes and re-inserts random routes for
// many batches (some rolled back). After every batch each route reads back with its latest next hop,
// the first snapshot still shows every original next hop (relocated entries are copies, never rewritten
// slots), and the slabs holding the installed entries are bounded: every slab but the table's current
// one holds more than a quarter live entries, which only holds if emptied slabs are compacted.
func TestSlabChurnRelocatesEntriesAndKeepsOldSnapshots(t *testing.T) {
	const n = 2000
	s := newTestStore(t, Options{})
	addr := func(i int) uint32 { return uint32(0x0a000000 + i<<8) }
	key := func(i int) []byte {
		k := make([]byte, 6)
		binary.BigEndian.PutUint16(k, 1)
		binary.BigEndian.PutUint32(k[2:], addr(i)|7)
		return k
	}
	route := func(typ p4.Update_Type, i int, port uint16) *p4.Update {
		u := lpmEntry(1, addr(i), 24, port)
		u.Type = typ
		return u
	}
	want := map[int]uint16{}
	var ups []*p4.Update
	for i := 0; i < n; i++ {
		want[i] = uint16(i % 500)
		ups = append(ups, route(p4.Update_INSERT, i, want[i]))
	}
	mustWrite(t, s, ups...)
	first := s.Load()
	orig := map[int]uint16{}
	for i, p := range want {
		orig[i] = p
	}
	portOf := func(st *State, i int) (uint16, bool) {
		e := st.Lookup(st.TableByID(tLPM), key(i))
		if e == nil {
			return 0, false
		}
		return uint16(U64(e.Action.Param(1))), true
	}
	rng := rand.New(rand.NewSource(7))
	relocated := false
	for round := 0; round < 60; round++ {
		var batch []*p4.Update
		type change struct {
			port uint16
			del  bool
		}
		next := map[int]change{}
		for len(batch) < 150 {
			i := rng.Intn(n)
			if _, dup := next[i]; dup {
				continue
			}
			p := uint16(rng.Intn(500))
			_, present := want[i]
			switch {
			case present && rng.Intn(10) == 0:
				batch = append(batch, route(p4.Update_DELETE, i, 0))
				next[i] = change{del: true}
			case present:
				batch = append(batch, route(p4.Update_MODIFY, i, p))
				next[i] = change{port: p}
			default:
				batch = append(batch, route(p4.Update_INSERT, i, p))
				next[i] = change{port: p}
			}
		}
		if round%7 == 3 {
			// A failing atomic batch changes nothing, books included.
			bad := route(p4.Update_MODIFY, n+1, 1)
			errs, err := s.Write(append(batch, bad), p4.WriteRequest_ROLLBACK_ON_ERROR)
			if err != nil || errs[len(errs)-1] == nil {
				t.Fatalf("round %d: a MODIFY of a missing route was accepted: %v %v", round, err, errs)
			}
		} else {
			errs, err := s.Write(batch, p4.WriteRequest_DATAPLANE_ATOMIC)
			if err != nil {
				t.Fatal(err)
			}
			for j, e := range errs {
				if e != nil {
					t.Fatalf("round %d update %d: %v", round, j, e)
				}
			}
			for i, c := range next {
				if c.del {
					delete(want, i)
				} else {
					want[i] = c.port
				}
			}
		}
		st := s.Load()
		tbl := st.TableByID(tLPM)
		if tbl.Len() != len(want) {
			t.Fatalf("round %d: %d routes, want %d", round, tbl.Len(), len(want))
		}
		// The newest state holds each route's identity (in the trie) and its newest version.
		slabs := map[*entrySlab]int{}
		tbl.each(func(e0 *Entry) bool {
			for _, e := range []*Entry{e0, st.Version(e0)} {
				if s := e.slabOf(); s != nil {
					slabs[s]++
				}
				if _, ok := e.kbufOffset(e.Mask); !ok {
					t.Fatalf("round %d: a route's mask is not in its own buffer (it would keep another slab alive or cost the GC a lookup)", round)
				}
				if e == st.Version(e0) {
					break
				}
			}
			return true
		})
		pending := map[*entrySlab]bool{tbl.rt.slab: true} // current, or retired by a rolled-back batch
		for _, sl := range tbl.rt.retired {
			pending[sl] = true
		}
		for sl, live := range slabs {
			if !pending[sl] && live <= slabSize/4 {
				t.Fatalf("round %d: a slab holds only %d installed entries (not compacted)", round, live)
			}
			if live < slabSize/2 {
				relocated = true
			}
		}
		for i := 0; i < n; i++ {
			p, ok := portOf(st, i)
			w, present := want[i]
			if ok != present || p != w {
				t.Fatalf("round %d: route %d reads (%d, %v), want (%d, %v)", round, i, p, ok, w, present)
			}
			if p, ok := portOf(first, i); !ok || p != orig[i] {
				t.Fatalf("round %d: the first snapshot's route %d reads (%d, %v), want %d", round, i, p, ok, orig[i])
			}
		}
	}
	if !relocated {
		t.Fatal("no slab ever fell below half: the test did not exercise compaction")
	}
}

// TestRangeEntriesOwnTheirChecksAcrossModifiesAndRelocation: range entries keep their checks in their
// slab and their bounds and mask in their own buffer, through MODIFYs and relocation (nothing in an installed
// entry points into another entry's slab, which would keep that slab alive), and old snapshots still
// match with their own bounds.
func TestRangeEntriesOwnTheirChecksAcrossModifiesAndRelocation(t *testing.T) {
	const n = 300
	s := newTestStore(t, Options{})
	acl := func(typ p4.Update_Type, i int, deny bool) *p4.Update {
		act := uint32(aPermit)
		if deny {
			act = aDeny
		}
		lo := uint64(1000 + 20*i)
		return upd(typ, &p4.TableEntry{TableId: tACL, Priority: int32(1 + i),
			Match: []*p4.FieldMatch{
				{FieldId: 5, FieldMatchType: &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: []byte{6}}}},
				{FieldId: 3, FieldMatchType: &p4.FieldMatch_Range_{Range: &p4.FieldMatch_Range{Low: Canonical(be(lo, 2)), High: Canonical(be(lo+9, 2))}}},
			},
			Action: &p4.TableAction{Type: &p4.TableAction_Action{Action: &p4.Action{ActionId: act}}}})
	}
	key := func(i, off int) []byte {
		k := make([]byte, 13)
		binary.BigEndian.PutUint16(k[8:], uint16(1000+20*i+off))
		k[12] = 6
		return k
	}
	var ups []*p4.Update
	for i := 0; i < n; i++ {
		ups = append(ups, acl(p4.Update_INSERT, i, false))
	}
	mustWrite(t, s, ups...)
	first := s.Load()
	deny := make([]bool, n)
	rng := rand.New(rand.NewSource(3))
	for round := 0; round < 40; round++ {
		var batch []*p4.Update
		for _, i := range rng.Perm(n)[:60] {
			deny[i] = !deny[i]
			batch = append(batch, acl(p4.Update_MODIFY, i, deny[i]))
		}
		mustWrite(t, s, batch...)
	}
	st := s.Load()
	tbl := st.TableByID(tACL)
	st.Each(tbl, func(e *Entry) bool {
		if len(e.Ranges) != 1 {
			t.Fatalf("entry has %d range checks, want 1", len(e.Ranges))
		}
		r := &e.Ranges[0]
		if _, ok := e.kbufOffset(r.Low); !ok {
			t.Fatal("range low bound is not in the entry's own buffer")
		}
		if _, ok := e.kbufOffset(r.High); !ok {
			t.Fatal("range high bound is not in the entry's own buffer")
		}
		if _, ok := e.kbufOffset(e.Mask); !ok {
			t.Fatal("the mask is not in the entry's own buffer")
		}
		sl := e.slabOf()
		if sl == nil || &sl.ranges[int(e.slot-1)*tbl.Info.nRanges] != r {
			t.Fatal("range checks are not in the entry's own slab slot")
		}
		return true
	})
	for i := 0; i < n; i++ {
		for _, off := range []int{0, 9, 10} {
			e := st.Lookup(tbl, key(i, off))
			if off == 10 {
				if e != nil {
					t.Fatalf("rule %d matches port %d beyond its range", i, 1000+20*i+off)
				}
				continue
			}
			want := uint32(aPermit)
			if deny[i] {
				want = aDeny
			}
			if e == nil || e.Action.ID != want || e.Priority != int32(1+i) {
				t.Fatalf("rule %d at offset %d: %+v, want action %#x", i, off, e, want)
			}
			if e0 := first.Lookup(first.TableByID(tACL), key(i, off)); e0 == nil || e0.Action.ID != aPermit {
				t.Fatalf("the first snapshot's rule %d changed: %+v", i, e0)
			}
		}
	}
}

// TestSnapshotsStayStillWhileChurnRelocatesEntries: readers read every route of a snapshot twice while
// a writer modifies random routes (relocating slabs); both reads of one snapshot must agree (no slot is
// written after publication). Under -race a rewritten slot is also reported as a race.
func TestSnapshotsStayStillWhileChurnRelocatesEntries(t *testing.T) {
	const n = 1000
	s := newTestStore(t, Options{})
	key := func(i int) []byte {
		k := make([]byte, 6)
		binary.BigEndian.PutUint16(k, 1)
		binary.BigEndian.PutUint32(k[2:], uint32(0x0a000000+i<<8)|9)
		return k
	}
	var ups []*p4.Update
	for i := 0; i < n; i++ {
		ups = append(ups, lpmEntry(1, uint32(0x0a000000+i<<8), 24, 1))
	}
	mustWrite(t, s, ups...)
	done := make(chan struct{})
	errc := make(chan string, 2)
	for r := 0; r < 2; r++ {
		go func() {
			for {
				select {
				case <-done:
					errc <- ""
					return
				default:
				}
				st := s.Load()
				tbl := st.TableByID(tLPM)
				port := func(i int) uint64 {
					if e := st.Lookup(tbl, key(i)); e != nil {
						return U64(e.Action.Param(1))
					}
					return 0 // missing: never equal to an installed port
				}
				first := make([]uint64, n)
				for i := range first {
					first[i] = port(i)
				}
				for i := range first {
					if got := port(i); got != first[i] || got == 0 {
						errc <- "a snapshot's route changed or vanished under a reader"
						return
					}
				}
			}
		}()
	}
	rng := rand.New(rand.NewSource(11))
	for round := 0; round < 150; round++ {
		var batch []*p4.Update
		for _, i := range rng.Perm(n)[:100] {
			u := lpmEntry(1, uint32(0x0a000000+i<<8), 24, uint16(2+round))
			u.Type = p4.Update_MODIFY
			batch = append(batch, u)
		}
		mustWrite(t, s, batch...)
	}
	close(done)
	for r := 0; r < 2; r++ {
		if msg := <-errc; msg != "" {
			t.Fatal(msg)
		}
	}
}
