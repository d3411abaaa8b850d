package tables

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"reflect"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
)

// Routes of the lpm table used by the version tests: route i is 10.(i>>8).(i&255).0/24 in vrf 1 with
// next-hop port p.
func vAddr(i int) uint32 { return uint32(0x0a000000 + i<<8) }

func vKey(i int) []byte {
	k := make([]byte, 6)
	binary.BigEndian.PutUint16(k, 1)
	binary.BigEndian.PutUint32(k[2:], vAddr(i)|7)
	return k
}

func vRoute(typ p4.Update_Type, i int, port uint16) *p4.Update {
	u := lpmEntry(1, vAddr(i), 24, port)
	u.Type = typ
	return u
}

// vPort returns route i's port as snapshot st shows it (-1: no such route), after checking that every
// way of reading it agrees: Lookup, Resolve of the trie's entry, Each, EncodeEntry and Read.
func vPort(t *testing.T, st *State, i int) int {
	t.Helper()
	tbl := st.TableByID(tLPM)
	port := func(e *Entry) int { return int(U64(e.Action.Param(1))) }
	got := -1
	if e := st.Lookup(tbl, vKey(i)); e != nil {
		got = port(e)
		id := tbl.lookup(vKey(i)) // the identity in the trie: Resolve and EncodeEntry resolve it
		if a := st.Resolve(id, 0); int(U64(a.Param(1))) != got {
			t.Fatalf("route %d: Lookup says port %d, Resolve %d", i, got, U64(a.Param(1)))
		}
		te := st.EncodeEntry(tbl, id)
		if p := int(U64(te.Action.GetAction().Params[1].Value)); p != got {
			t.Fatalf("route %d: Lookup says port %d, EncodeEntry %d", i, got, p)
		}
		if st.Version(id) != e {
			t.Fatalf("route %d: Version and Lookup disagree", i)
		}
	} else if tbl.lookup(vKey(i)) != nil {
		t.Fatalf("route %d: Lookup misses an installed identity", i)
	}
	each := -1
	st.Each(tbl, func(e *Entry) bool {
		if binary.BigEndian.Uint32(e.Key[2:]) == vAddr(i) {
			each = port(e)
		}
		return true
	})
	if each != got {
		t.Fatalf("route %d: Lookup says port %d, Each %d", i, got, each)
	}
	read := -1
	q := vRoute(p4.Update_INSERT, i, 0).Entity.GetTableEntry()
	q.Action = nil
	err := st.Read(&p4.Entity{Entity: &p4.Entity_TableEntry{TableEntry: q}}, func(ent *p4.Entity) error {
		read = int(U64(ent.GetTableEntry().GetAction().GetAction().GetParams()[1].Value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if read != got {
		t.Fatalf("route %d: Lookup says port %d, Read %d", i, got, read)
	}
	return got
}

func writeBatch(t *testing.T, s *Store, a p4.WriteRequest_Atomicity, ups ...*p4.Update) []error {
	t.Helper()
	errs, err := s.Write(ups, a)
	if err != nil {
		t.Fatal(err)
	}
	return errs
}

// TestModifiedEntriesKeepEverySnapshotsVersion: every snapshot keeps reading the action it was published
// with while later batches modify, delete and re-insert its entries, through every read path.
func TestModifiedEntriesKeepEverySnapshotsVersion(t *testing.T) {
	const M, D, I = p4.Update_MODIFY, p4.Update_DELETE, p4.Update_INSERT
	type batch struct {
		ups  []*p4.Update
		want [3]int // ports of routes 0..2 after the batch (-1: absent)
	}
	for _, tc := range []struct {
		name    string
		batches []batch
	}{
		{"three successive modifies", []batch{
			{[]*p4.Update{vRoute(M, 0, 101)}, [3]int{101, 110, 120}},
			{[]*p4.Update{vRoute(M, 0, 102), vRoute(M, 1, 111)}, [3]int{102, 111, 120}},
			{[]*p4.Update{vRoute(M, 0, 103)}, [3]int{103, 111, 120}},
		}},
		{"two modifies of one entry in one batch", []batch{
			{[]*p4.Update{vRoute(M, 0, 101), vRoute(M, 0, 102)}, [3]int{102, 110, 120}},
			{[]*p4.Update{vRoute(M, 0, 103), vRoute(M, 0, 104), vRoute(M, 0, 105)}, [3]int{105, 110, 120}},
		}},
		{"modify then delete in one batch", []batch{
			{[]*p4.Update{vRoute(M, 1, 111), vRoute(D, 1, 0)}, [3]int{100, -1, 120}},
			{[]*p4.Update{vRoute(I, 1, 112)}, [3]int{100, 112, 120}},
		}},
		{"insert then modify in one batch", []batch{
			{[]*p4.Update{vRoute(D, 2, 0)}, [3]int{100, 110, -1}},
			{[]*p4.Update{vRoute(I, 2, 121), vRoute(M, 2, 122)}, [3]int{100, 110, 122}},
			{[]*p4.Update{vRoute(M, 2, 123)}, [3]int{100, 110, 123}},
		}},
		{"delete of a modified entry", []batch{
			{[]*p4.Update{vRoute(M, 0, 101)}, [3]int{101, 110, 120}},
			{[]*p4.Update{vRoute(D, 0, 0)}, [3]int{-1, 110, 120}},
			{[]*p4.Update{vRoute(I, 0, 105), vRoute(M, 1, 115)}, [3]int{105, 115, 120}},
		}},
	} {
		for _, a := range []p4.WriteRequest_Atomicity{p4.WriteRequest_CONTINUE_ON_ERROR, p4.WriteRequest_DATAPLANE_ATOMIC} {
			t.Run(fmt.Sprintf("%s/%v", tc.name, a), func(t *testing.T) {
				s := newTestStore(t, Options{})
				mustWrite(t, s, vRoute(I, 0, 100), vRoute(I, 1, 110), vRoute(I, 2, 120))
				snaps := []*State{s.Load()}
				wants := [][3]int{{100, 110, 120}}
				check := func() {
					for k, st := range snaps {
						for r := 0; r < 3; r++ {
							if got := vPort(t, st, r); got != wants[k][r] {
								t.Fatalf("snapshot %d: route %d reads port %d, want %d", k, r, got, wants[k][r])
							}
						}
					}
				}
				for _, b := range tc.batches {
					for j, err := range writeBatch(t, s, a, b.ups...) {
						if err != nil {
							t.Fatalf("update %d: %v", j, err)
						}
					}
					snaps = append(snaps, s.Load())
					wants = append(wants, b.want)
					check()
				}
				if s.ReadView() != s.Load() {
					t.Fatal("the read view is not the last batch")
				}
			})
		}
	}
}

// TestFailedBatchWithModifiesChangesNoSnapshot: a DATAPLANE_ATOMIC or ROLLBACK_ON_ERROR batch that
// modifies (once or twice), deletes and then fails leaves every snapshot and the next one as they were.
func TestFailedBatchWithModifiesChangesNoSnapshot(t *testing.T) {
	for _, a := range []p4.WriteRequest_Atomicity{p4.WriteRequest_DATAPLANE_ATOMIC, p4.WriteRequest_ROLLBACK_ON_ERROR} {
		t.Run(a.String(), func(t *testing.T) {
			s := newTestStore(t, Options{})
			mustWrite(t, s, vRoute(p4.Update_INSERT, 0, 100), vRoute(p4.Update_INSERT, 1, 110), vRoute(p4.Update_INSERT, 2, 120))
			st0 := s.Load()
			mustWrite(t, s, vRoute(p4.Update_MODIFY, 0, 101))
			st1 := s.Load()
			errs := writeBatch(t, s, a,
				vRoute(p4.Update_MODIFY, 0, 200), vRoute(p4.Update_MODIFY, 0, 201), vRoute(p4.Update_MODIFY, 1, 210),
				vRoute(p4.Update_DELETE, 2, 0), vRoute(p4.Update_INSERT, 3, 130), vRoute(p4.Update_MODIFY, 3, 131),
				vRoute(p4.Update_MODIFY, 9, 1)) // no route 9: fails
			if errs[len(errs)-1] == nil {
				t.Fatal("a MODIFY of a missing route succeeded")
			}
			if s.Load() != st1 {
				t.Fatal("a failed batch published a state")
			}
			for _, c := range []struct {
				name string
				st   *State
				want [4]int
			}{{"before the modify", st0, [4]int{100, 110, 120, -1}}, {"current", st1, [4]int{101, 110, 120, -1}}} {
				for r, w := range c.want {
					if got := vPort(t, c.st, r); got != w {
						t.Fatalf("%s: route %d reads %d, want %d", c.name, r, got, w)
					}
				}
			}
			// The next batch starts from the state before the failed one.
			mustWrite(t, s, vRoute(p4.Update_MODIFY, 0, 102), vRoute(p4.Update_MODIFY, 1, 112))
			for r, w := range [4]int{102, 112, 120, -1} {
				if got := vPort(t, s.Load(), r); got != w {
					t.Fatalf("after the next batch: route %d reads %d, want %d", r, got, w)
				}
			}
			for r, w := range [4]int{101, 110, 120, -1} {
				if got := vPort(t, st1, r); got != w {
					t.Fatalf("held snapshot after the next batch: route %d reads %d, want %d", r, got, w)
				}
			}
		})
	}
}

// TestChunkedBatchModifiesKeepOldSnapshots: a CONTINUE_ON_ERROR batch published two updates at a time
// (modifying routes in several chunks, one twice, with a failure in between) ends with the newest
// versions everywhere, while a snapshot held from before it keeps the old ones.
func TestChunkedBatchModifiesKeepOldSnapshots(t *testing.T) {
	s := newTestStore(t, Options{ChunkSize: 2})
	const n = 6
	var ups []*p4.Update
	for i := 0; i < n; i++ {
		ups = append(ups, vRoute(p4.Update_INSERT, i, uint16(100+i)))
	}
	mustWrite(t, s, ups...)
	st0 := s.Load()
	var seen []*State // every state the data plane published during the batch
	var mu sync.Mutex
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			st := s.Load()
			mu.Lock()
			if len(seen) == 0 || seen[len(seen)-1] != st {
				seen = append(seen, st)
			}
			mu.Unlock()
			goruntime.Gosched()
		}
	}()
	errs := writeBatch(t, s, p4.WriteRequest_CONTINUE_ON_ERROR,
		vRoute(p4.Update_MODIFY, 0, 200), vRoute(p4.Update_MODIFY, 1, 201),
		vRoute(p4.Update_MODIFY, 0, 300), vRoute(p4.Update_MODIFY, 9, 1), // no route 9
		vRoute(p4.Update_MODIFY, 2, 202), vRoute(p4.Update_DELETE, 3, 0),
		vRoute(p4.Update_MODIFY, 0, 400), vRoute(p4.Update_MODIFY, 4, 204),
		vRoute(p4.Update_MODIFY, 5, 205))
	close(stop)
	<-done
	if errs[3] == nil {
		t.Fatal("a MODIFY of a missing route succeeded")
	}
	want := []int{400, 201, 202, -1, 204, 205}
	for r := 0; r < n; r++ {
		if got := vPort(t, s.Load(), r); got != want[r] {
			t.Fatalf("after the batch: route %d reads %d, want %d", r, got, want[r])
		}
		if got := vPort(t, st0, r); got != 100+r {
			t.Fatalf("snapshot from before the batch: route %d reads %d, want %d", r, got, 100+r)
		}
	}
	// Every intermediate state the data plane saw still reads a consistent prefix of the batch: route
	// 0 moves 100 → 200 → 300 → 400, route 5 last; once route 5 is 205 the batch is done.
	order := map[int]int{100: 0, 200: 1, 300: 2, 400: 3}
	last := 0
	mu.Lock()
	defer mu.Unlock()
	for _, st := range seen {
		p0 := vPort(t, st, 0)
		o, ok := order[p0]
		if !ok || o < last {
			t.Fatalf("route 0 went back to %d", p0)
		}
		last = o
		if vPort(t, st, 5) == 205 && p0 != 400 {
			t.Fatalf("route 5 changed before route 0's last modify")
		}
	}
}

// TestConcurrentReadersSeeWholeBatches: while a writer modifies every route to the batch number in one
// atomic batch after another, readers (fresh and held snapshots) always see one batch number on every
// route. Run with -race, this also checks the version links are published safely.
func TestConcurrentReadersSeeWholeBatches(t *testing.T) {
	const n, batches = 200, 60
	s := newTestStore(t, Options{})
	var ups []*p4.Update
	for i := 0; i < n; i++ {
		ups = append(ups, vRoute(p4.Update_INSERT, i, 0))
	}
	mustWrite(t, s, ups...)
	var stop atomic.Bool
	var wg sync.WaitGroup
	fail := make(chan string, 4)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var held []*State
			for k := 0; !stop.Load(); k++ {
				st := s.Load()
				if k%5 == 0 {
					held = append(held, st)
				}
				if len(held) > 8 {
					held = held[1:]
				}
				for _, h := range append(held, st) {
					tbl := h.TableByID(tLPM)
					first := -1
					for i := (k * 7) % n; i < n; i += 13 {
						e := h.Lookup(tbl, vKey(i))
						if e == nil {
							fail <- fmt.Sprintf("reader %d: route %d missing", w, i)
							return
						}
						p := int(U64(h.Resolve(e, 0).Param(1)))
						if first < 0 {
							first = p
						} else if p != first {
							fail <- fmt.Sprintf("reader %d: one snapshot shows batches %d and %d", w, first, p)
							return
						}
					}
				}
			}
		}(w)
	}
	for b := 1; b <= batches; b++ {
		ups := ups[:0]
		for i := 0; i < n; i++ {
			ups = append(ups, vRoute(p4.Update_MODIFY, i, uint16(b)))
		}
		a := p4.WriteRequest_DATAPLANE_ATOMIC
		if b%3 == 0 {
			a = p4.WriteRequest_ROLLBACK_ON_ERROR
			ups = append(ups, vRoute(p4.Update_MODIFY, n+5, 1)) // fails: nothing applied
		}
		writeBatch(t, s, a, ups...)
	}
	stop.Store(true)
	wg.Wait()
	select {
	case msg := <-fail:
		t.Fatal(msg)
	default:
	}
}

// TestReplacedVersionsAreCollected: once no snapshot from before a batch is held, the versions that
// batch replaced (and the slabs holding them) can be collected: the current state reaches only the
// newest version of each entry. And heavy MODIFY churn keeps the entry slabs bounded.
func TestReplacedVersionsAreCollected(t *testing.T) {
	const n = 256 // four full slabs per batch
	s := newTestStore(t, Options{})
	batch := func(typ p4.Update_Type, port uint16) {
		var ups []*p4.Update
		for i := 0; i < n; i++ {
			ups = append(ups, vRoute(typ, i, port))
		}
		mustWrite(t, s, ups...)
	}
	batch(p4.Update_INSERT, 0)
	batch(p4.Update_MODIFY, 1)
	old := s.Load()
	v := old.Lookup(old.TableByID(tLPM), vKey(0))
	if v == nil || U64(v.Action.Param(1)) != 1 || v.slot == 0 {
		t.Fatalf("route 0 after the first modify: %+v", v)
	}
	wv, ws := weak.Make(v), weak.Make(v.slabOf())
	for p := uint16(2); p < 10; p++ {
		batch(p4.Update_MODIFY, p)
		if got := vPort(t, old, 0); got != 1 {
			t.Fatalf("a held snapshot reads route 0 as %d, want 1", got)
		}
	}
	v, old = nil, nil
	goruntime.GC()
	goruntime.GC()
	if wv.Value() != nil || ws.Value() != nil {
		t.Fatal("a replaced version is still reachable with no snapshot from before its replacement held")
	}
	if got := vPort(t, s.Load(), 0); got != 9 {
		t.Fatalf("route 0 reads %d, want 9", got)
	}

	// Churn: random modifies of a quarter of the routes per batch. The slabs that hold the current
	// state's identities and newest versions stay within the compaction bound, and the heap does not
	// grow with the number of batches.
	rng := rand.New(rand.NewSource(3))
	heap := func() uint64 {
		goruntime.GC()
		var ms goruntime.MemStats
		goruntime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	var base uint64
	for b := 0; b < 200; b++ {
		var ups []*p4.Update
		for _, i := range rng.Perm(n)[:n/4] {
			ups = append(ups, vRoute(p4.Update_MODIFY, i, uint16(b%500)))
		}
		mustWrite(t, s, ups...)
		if b == 20 {
			base = heap()
		}
	}
	if h := heap(); h > 2*base+1<<20 {
		t.Fatalf("heap grew from %d to %d bytes over 180 modify batches", base, h)
	}
	st := s.Load()
	tbl := st.TableByID(tLPM)
	slabs := map[*entrySlab]bool{}
	tbl.each(func(e0 *Entry) bool {
		slabs[e0.slabOf()] = true
		slabs[st.Version(e0).slabOf()] = true
		return true
	})
	delete(slabs, nil)
	// 2n live slots (identities and newest versions) at more than a quarter per slab, plus the current
	// slab and those retired since the last check.
	if max := 2*n*4/slabSize + 2 + len(tbl.rt.retired); len(slabs) > max {
		t.Fatalf("the current state's entries are in %d slabs, bound %d", len(slabs), max)
	}
}

// TestCloneIntoCopiesEveryField guards cloneInto's field-by-field copy: a field added to Entry must be
// added there (or to the list of fields it deliberately does not copy).
func TestCloneIntoCopiesEveryField(t *testing.T) {
	notCopied := map[string]bool{"slot": true, "vgen": true, "cur": true, "prev": true}
	copied := []string{"Table", "Key", "Mask", "Priority", "Ranges", "Kind", "Action", "MemberID", "GroupID", "OneShot",
		"Handle", "Metadata", "ControllerMetadata", "IdleTimeoutNs", "IsConst", "IsDefault", "Learned", "rank", "poff", "rend", "kbuf"}
	known := map[string]bool{}
	for _, f := range copied {
		known[f] = true
	}
	typ := reflect.TypeOf(Entry{})
	for i := 0; i < typ.NumField(); i++ {
		if f := typ.Field(i).Name; !known[f] && !notCopied[f] {
			t.Errorf("Entry.%s is neither copied by cloneInto nor listed as not copied", f)
		}
	}
	e := &Entry{Priority: 7, MemberID: 3, GroupID: 4, Handle: 5, ControllerMetadata: 6, IdleTimeoutNs: 8,
		IsConst: true, Learned: true, Kind: ActGroup, rank: 9, vgen: 10}
	e.newKey(4)
	copy(e.Key, []byte{1, 2, 3, 4})
	e.cur.Store(e)
	c := new(Entry)
	e.cloneInto(c)
	if c.cur.Load() != nil || c.prev.Load() != nil || c.vgen != 0 {
		t.Fatal("cloneInto copied the version links")
	}
	if c.Priority != 7 || c.MemberID != 3 || c.GroupID != 4 || c.Handle != 5 || c.ControllerMetadata != 6 || c.IdleTimeoutNs != 8 ||
		!c.IsConst || !c.Learned || c.Kind != ActGroup || c.rank != 9 || string(c.Key) != "\x01\x02\x03\x04" || &c.Key[0] != &c.kbuf[0] {
		t.Fatalf("cloneInto lost fields: %+v", c)
	}
}

// TestSweepCollapsesVersionedEntries: Sweep folds modified entries back into one slot each, within its
// budget and only once they have been versioned for CollapseAge, while a snapshot from before keeps
// reading its own versions; with collapsing off the entries stay versioned.
func TestSweepCollapsesVersionedEntries(t *testing.T) {
	const n, budget = 256, 50
	tests := []struct {
		name   string
		budget int
		want   int // entries still versioned after the clock passed CollapseAge
	}{
		{"budgeted", budget, 0},
		{"off", -1, n / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var clock atomic.Int64
			s := newTestStore(t, Options{CollapseBudget: tt.budget, CollapseAge: time.Second, Now: clock.Load})
			write := func(typ p4.Update_Type, port uint16, step int) {
				var ups []*p4.Update
				for i := 0; i < n; i += step {
					ups = append(ups, vRoute(typ, i, port))
				}
				mustWrite(t, s, ups...)
			}
			write(p4.Update_INSERT, 1, 1)
			write(p4.Update_MODIFY, 2, 2) // even routes: their unmodified odd neighbours share their slabs
			wantPort := func(i int) int { return 2 - i%2 }
			old := s.Load()
			// The slab of the first versions: once they are collapsed and no snapshot from before is held,
			// nothing may keep it alive (a retired identity's link to its version would, since the
			// identity's slab stays alive for its unmodified neighbours).
			id0 := old.TableByID(tLPM).lookup(vKey(0))
			versionSlab := weak.Make(old.Version(id0).slabOf())
			id0 = nil
			versioned := func() (c int) {
				s.Load().TableByID(tLPM).each(func(e0 *Entry) bool {
					if e0.cur.Load() != nil {
						c++
					}
					return true
				})
				return c
			}
			if res := s.Sweep(); res.Collapsed != 0 || versioned() != n/2 {
				t.Fatalf("before CollapseAge: collapsed %d, %d versioned; want 0, %d", res.Collapsed, versioned(), n/2)
			}
			clock.Add(int64(time.Second))
			collapsed := 0
			for range n/budget + 2 {
				res := s.Sweep()
				if res.Collapsed > budget {
					t.Fatalf("one Sweep collapsed %d, budget %d", res.Collapsed, budget)
				}
				collapsed += res.Collapsed
			}
			// Slab compaction relocates (and so collapses) some entries itself: Sweep does the rest.
			if left := versioned(); left != tt.want || collapsed > n/2 || (tt.budget > 0) != (collapsed > 0) {
				t.Fatalf("Sweep collapsed %d, %d still versioned; want %d versioned", collapsed, left, tt.want)
			}
			for i := 0; i < n; i += 7 {
				if got := vPort(t, s.Load(), i); got != wantPort(i) {
					t.Fatalf("route %d reads port %d after collapsing, want %d", i, got, wantPort(i))
				}
				if got := vPort(t, old, i); got != wantPort(i) {
					t.Fatalf("the snapshot from before collapsing reads route %d as %d, want %d", i, got, wantPort(i))
				}
			}
			old = nil
			goruntime.GC()
			goruntime.GC()
			if collectable := versionSlab.Value() == nil; collectable != (tt.budget > 0) {
				t.Errorf("the first versions' slab collectable = %v with collapse budget %d", collectable, tt.budget)
			}
			// A collapsed entry is versioned again by its next modify; a snapshot from before is unaffected.
			old = s.Load()
			write(p4.Update_MODIFY, 3, 1)
			if now, then := vPort(t, s.Load(), 4), vPort(t, old, 4); now != 3 || then != 2 {
				t.Fatalf("after another modify: route 4 reads %d now and %d in the old snapshot", now, then)
			}
		})
	}
}
