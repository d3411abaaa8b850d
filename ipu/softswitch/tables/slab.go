package tables

import (
	"math/bits"
	"unsafe"
)

// Entry slabs. Control-plane writes allocate the entries of a (snapshot) table from slabs of slabSize
// entries instead of one heap object each. The garbage collector's mark phase costs about as much per
// object as per few hundred bytes scanned, so 100k entries in 1.6k slabs mark in about half the time of
// 100k separate entries (BenchmarkStoreLiveHeap100k); and a slab is one allocation per 64 inserts or
// modifies instead of 64.
//
// Snapshot isolation: a slot is written once, before the state holding it is published, and never
// reused (but for its version links, versions.go); a MODIFY takes a fresh slot for the new version. A
// slab is an ordinary Go object, so it lives while any snapshot (or any reader's *Entry) points into
// it: the garbage collector, not the writer, decides when old versions go.
//
// Churn: a slab whose entries were mostly modified or deleted would be kept alive by its last live
// entry. The writer therefore tracks which slots are installed in the newest committed state (live, a
// bitmap per slab, updated at commit), and when a commit leaves a full slab with slabSize/4 or fewer live
// entries it copies them to fresh slots in the same commit (relocate). Live slots are the identities in
// the trie and the newest version of each modified identity; a replaced version dies at the MODIFY.
// So every slab but a table's current one holds more than a quarter live entries and slab memory stays
// below 4× the live entries (about 1.9× under uniform random churn), at the price of at most one copy
// per three removals.
//
// The bitmap is a hint: relocation checks that a slot is still the installed entry before copying it,
// and paths that do not keep the books (pipeline reconfiguration, SetLearner, learner tables) allocate
// entries on the heap as before.
const slabSize = 64

type entrySlab struct {
	live   uint64 // bit i: ents[i] is installed in the newest committed state (writer only, store lock)
	ents   [slabSize]Entry
	ranges []RangeCheck // tables with range fields: nRanges checks per slot, one object per slab
}

// rangeChecks returns the (empty) room for e's range checks, e a slot of s in a table with n range
// fields. Their bounds go into e's inline buffer (rangeBytes), so a range entry costs no object of
// its own either.
func (s *entrySlab) rangeChecks(e *Entry, n int) []RangeCheck {
	if n == 0 {
		return nil
	}
	if len(s.ranges) < slabSize*n {
		s.ranges = make([]RangeCheck, slabSize*n) // written before the slab's first range entry is published
	}
	i := int(e.slot-1) * n
	return s.ranges[i : i : i+n]
}

// slabOf returns the slab holding e, or nil for a heap entry.
func (e *Entry) slabOf() *entrySlab {
	if e.slot == 0 {
		return nil
	}
	off := unsafe.Offsetof(entrySlab{}.ents) + uintptr(e.slot-1)*unsafe.Sizeof(Entry{})
	return (*entrySlab)(unsafe.Add(unsafe.Pointer(e), -int(off)))
}

// newEntry returns a zeroed entry in a fresh slot of the table's current slab (under the store lock).
func (rt *tableRuntime) newEntry() *Entry {
	if rt.slab == nil || rt.slabUsed == slabSize {
		if rt.slab != nil {
			rt.retired = append(rt.retired, rt.slab)
		}
		rt.slab, rt.slabUsed = new(entrySlab), 0
	}
	e := &rt.slab.ents[rt.slabUsed]
	rt.slabUsed++
	e.slot = uint8(rt.slabUsed)
	return e
}

// newEntry allocates an entry for table t: from a slab for snapshot tables, on the heap for learner
// tables (their entries come and go at flow rate outside the books kept here).
func (tx *txn) newEntry(t *Table) *Entry {
	if t.live != nil {
		return new(Entry)
	}
	return t.rt.newEntry()
}

// born and died record, for the commit, slab entries this transaction installed and uninstalled.
func (tx *txn) born(e *Entry) {
	if e.slot != 0 {
		tx.borns = append(tx.borns, e)
	}
}

func (tx *txn) died(e *Entry) {
	if e.slot != 0 {
		tx.deaths = append(tx.deaths, e)
	}
}

// keepSlabBooks applies the transaction's births and deaths to the slab bitmaps and relocates the live
// entries of slabs that are down to a quarter, in this transaction (called by finish, before publishing).
// A slab is checked when one of its entries dies and when it stops being its table's current slab
// (retired: deaths while it was current were not checked; checked at the table's next commit, since
// a rolled-back transaction can retire one too).
func (tx *txn) keepSlabBooks() {
	if len(tx.borns) == 0 && len(tx.deaths) == 0 {
		return
	}
	for _, e := range tx.borns {
		e.slabOf().live |= 1 << (e.slot - 1)
	}
	for _, e := range tx.deaths {
		e.slabOf().live &^= 1 << (e.slot - 1)
	}
	for _, e := range tx.deaths {
		if t := tx.slabTable(e); t != nil {
			tx.compact(t.Info.Index, e.slabOf())
		}
	}
	for _, list := range [][]*Entry{tx.borns, tx.deaths} {
		for _, e := range list {
			t := tx.slabTable(e)
			if t == nil {
				continue
			}
			for len(t.rt.retired) > 0 { // relocation may retire more
				last := len(t.rt.retired) - 1
				sl := t.rt.retired[last]
				t.rt.retired[last] = nil // the array would keep the slab alive until the slot is reused
				t.rt.retired = t.rt.retired[:last]
				tx.compact(t.Info.Index, sl)
			}
		}
	}
	clear(tx.borns)
	clear(tx.deaths)
	tx.borns, tx.deaths = tx.borns[:0], tx.deaths[:0]
}

// slabTable returns the table of the transaction's state that slab entry e belongs to (nil if the
// pipeline config changed or the table keeps no books).
func (tx *txn) slabTable(e *Entry) *Table {
	i := e.Table.Index
	if i < 0 || i >= len(tx.st.tables) {
		return nil
	}
	t := tx.st.tables[i]
	if t.Info != e.Table || t.live != nil {
		return nil
	}
	return t
}

// compact relocates the live entries of slab s of table idx if it is down to a quarter and is not the
// table's current slab.
func (tx *txn) compact(idx int, s *entrySlab) {
	t := tx.st.tables[idx]
	if s == t.rt.slab || s.live == 0 || bits.OnesCount64(s.live) > slabSize/4 {
		return
	}
	tx.relocate(idx, s)
}

// relocate copies the live entries of slab s (of table idx) to fresh slots, so that s can be collected
// once older snapshots are gone. A live slot is an identity in the table's trie or the newest version
// of one (versions.go); either way its identity is replaced in the trie by a fresh identity holding a
// copy of the newest version, which frees the identity's slot and its newest version's.
func (tx *txn) relocate(idx int, s *entrySlab) {
	var others []*entrySlab // slabs that lost a live entry here too
	for m := s.live; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		e := &s.ents[i]
		s.live &^= 1 << i
		e0 := tx.st.tables[idx].find(e)
		if e0 == nil {
			continue // the books were stale: not installed any more
		}
		head := latest(e0)
		if e0 != e && head != e {
			continue // stale: a replaced version
		}
		n := tx.replaceIdentity(idx, e0, head)
		n.slabOf().live |= 1 << (n.slot - 1)
		for _, x := range [...]*Entry{e0, head} {
			if x != e && x.slot != 0 {
				if xs := x.slabOf(); xs.live&(1<<(x.slot-1)) != 0 {
					xs.live &^= 1 << (x.slot - 1)
					others = append(others, xs)
				}
			}
		}
	}
	for _, o := range others {
		if o != s {
			tx.compact(idx, o)
		}
	}
}
