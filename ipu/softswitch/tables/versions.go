package tables

import (
	"math"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"
)

// Entry versions. The entries in a snapshot table's trie are identities: a MODIFY does not replace
// its entry in the trie (a path copy of the persistent hash per update) but pushes a new version onto
// it, so a batch of modifies touches no trie node.
//
//   - An identity's cur is its newest version (nil: the identity itself is current). A version's prev
//     is the version it replaced, kept until the transaction that made it is published. vgen is the
//     edit generation in which an identity or version became current. Match fields, rank, priority and
//     handle are equal across the versions of an identity, so lookups work on identities; everything
//     else (the action, metadata, idle timeout, flags) must be read from the version a snapshot sees.
//   - A reader at snapshot generation G takes cur if it is no newer than G, else its prev if that is no
//     newer than G, else the version the first later transaction replaced: every published transaction
//     with modifies links an overlay (identity → replaced version, sorted by address) into a chain per
//     pipeline config, and every State points at the chain's tail as it was when the State was made.
//   - After publishing, the writer cuts the new versions' prev, so the current state reaches only the
//     newest version of each entry; replaced versions stay reachable only through overlays, that is only
//     from older States somebody still holds (the newest overlay hangs behind the current state's link,
//     which does not reach it).
//   - A failed (never published) transaction restores each identity's cur from its overlay records.
//
// Learner (live) tables and default entries do not use versions: they replace entries as before.

// ovRec records that a transaction replaced version old of identity e (old == e: the identity itself).
type ovRec struct {
	e, old *Entry
}

// overlay holds one published transaction's replaced versions, sorted by identity address.
type overlay struct {
	recs  []ovRec
	after *ovLink
}

// ovLink links the overlay of the next published transaction with modifies.
type ovLink struct {
	next atomic.Pointer[overlay]
}

func (ov *overlay) find(e *Entry) *Entry {
	a := uintptr(unsafe.Pointer(e))
	lo, hi := 0, len(ov.recs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if uintptr(unsafe.Pointer(ov.recs[m].e)) < a {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(ov.recs) && ov.recs[lo].e == e {
		return ov.recs[lo].old
	}
	return nil
}

// latest returns the newest version of entry e (the writer's view, under the store lock).
func latest(e *Entry) *Entry {
	if h := e.cur.Load(); h != nil {
		return h
	}
	return e
}

// version returns the version of entry e that snapshot st sees: e itself unless e is an identity that
// was modified. It does not allocate.
func (st *State) version(e *Entry) *Entry {
	if e.cur.Load() == nil {
		return e
	}
	return st.versionOf(e)
}

// versionOf is version for an identity e that was modified.
func (st *State) versionOf(e *Entry) *Entry {
	h := e.cur.Load()
	if h.vgen <= st.gen {
		return h
	}
	if p := h.prev.Load(); p != nil && p.vgen <= st.gen {
		return p
	}
	if st.ovs != nil {
		for ov := st.ovs.next.Load(); ov != nil; ov = ov.after.next.Load() {
			if v := ov.find(e); v != nil {
				return v
			}
		}
	}
	// Unreachable for a snapshot that holds e (the first later transaction that modified or retired e
	// linked an overlay before cutting prev); fall back to a real version rather than crash the data plane.
	if h == retired {
		return e
	}
	return h
}

// Version returns the version of entry e (found in one of st's tables) as st sees it. Lookup, Each,
// Resolve and Read already resolve; use Version for an *Entry obtained otherwise.
func (st *State) Version(e *Entry) *Entry { return st.version(e) }

// Lookup returns the highest-ranked entry of table t (a table of st) matching key, as st sees it, or
// nil on a miss. key must be exactly Info.KeyLen bytes laid out as described on TableInfo. It does
// not allocate.
func (st *State) Lookup(t *Table, key []byte) *Entry {
	if t.live != nil {
		return t.live.lookup(key[:t.Info.KeyLen]) // learner entries have no versions
	}
	if e := t.lookup(key); e != nil {
		return st.version(e)
	}
	return nil
}

// Each calls f for every entry of table t (a table of st; not the default), as st sees it, until f
// returns false.
func (st *State) Each(t *Table, f func(*Entry) bool) {
	t.each(func(e *Entry) bool { return f(st.version(e)) })
}

// push makes n (a fresh entry written from old, the newest version of identity e0) the newest version
// of e0 in this transaction.
func (tx *txn) push(e0, old, n *Entry) {
	gen := tx.st.gen
	n.vgen = gen
	if e0.cur.Load() == nil {
		t := tx.st.tables[e0.Table.Index]
		t.rt.versioned = append(pruneVersioned(t.rt.versioned, t.count, gen), versionedRec{e0, tx.now})
	}
	if old.vgen == gen {
		// old was made by this transaction (an identity it inserted, or a version it pushed): no reader
		// can see it, so it needs no record.
		n.prev.Store(old.prev.Load())
	} else {
		n.prev.Store(old)
		if tx.recs == nil {
			tx.recs = make([]ovRec, 0, max(tx.updates, 16)) // kept by the overlay: sized once
		}
		tx.recs = append(tx.recs, ovRec{e0, old})
	}
	e0.cur.Store(n)
}

// linkOverlay links the transaction's records into its pipeline config's overlay chain (under the
// store lock, before the state is published).
func (tx *txn) linkOverlay() {
	rt := tx.st.rt
	if len(tx.recs) == 0 || rt == nil {
		return
	}
	slices.SortFunc(tx.recs, func(a, b ovRec) int {
		x, y := uintptr(unsafe.Pointer(a.e)), uintptr(unsafe.Pointer(b.e))
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	ov := &overlay{recs: tx.recs, after: new(ovLink)}
	rt.tail.next.Store(ov)
	rt.tail = ov.after
	tx.st.ovs = rt.tail
	tx.linked = true
}

// cutVersions drops the published versions' links to the versions they replaced (after publishing):
// those stay reachable through the overlay only, so only older States keep them alive. Identities the
// transaction removed from the trie lose their link to their newest version the same way (retire).
func (tx *txn) cutVersions() {
	if !tx.linked {
		tx.dead = tx.dead[:0]
		return
	}
	for _, r := range tx.recs {
		if h := r.e.cur.Load(); h != nil {
			h.prev.Store(nil)
		}
	}
	for _, e0 := range tx.dead {
		e0.cur.Store(retired)
	}
	clear(tx.dead)
	tx.recs, tx.linked, tx.dead = nil, false, tx.dead[:0]
}

// retired is the newest "version" of an identity that left the trie: newer than every snapshot, without
// a prev, so a reader holding an older snapshot finds the version it sees in the overlays.
var retired = &Entry{vgen: math.MaxUint64}

// retire records that identity e0, found in the trie, leaves it in this transaction (deleted, expired,
// relocated or collapsed). A modified identity links to its newest version, and e0's slab stays alive
// as long as any of its 64 entries is installed: the link would keep that version's slab alive too,
// and a chain of such links most of the memory churn ever used. So its newest version is recorded in
// the transaction's overlay (for older snapshots) and the link is cut once the state is published.
func (tx *txn) retire(e0 *Entry) {
	h := e0.cur.Load()
	if h == nil {
		return // never modified: it links nowhere
	}
	if h.vgen != tx.st.gen {
		tx.recs = append(tx.recs, ovRec{e0, h})
	} // else this transaction pushed h and recorded e0's version before it (or inserted e0 itself)
	tx.dead = append(tx.dead, e0)
}

// unpush restores the identities this (failed, never published) transaction modified.
func (tx *txn) unpush() {
	clear(tx.dead)
	tx.dead = tx.dead[:0]
	for i := len(tx.recs) - 1; i >= 0; i-- {
		r := tx.recs[i]
		if r.old == r.e {
			r.e.cur.Store(nil)
		} else {
			r.e.cur.Store(r.old)
		}
	}
	tx.recs = nil
}

// Collapsing. A modified identity holds two slots (itself, for its match, and its newest version) for
// as long as it stays in the trie; under uniform churn that is up to twice the entries' memory. Sweep
// therefore collapses, Options.CollapseBudget at a time, identities that got their first version at
// least Options.CollapseAge ago: each is replaced in the trie by a fresh identity copied from its newest
// version (a path copy, as a MODIFY used to cost, but off the write path and within a budget), so its
// two slots die. Older snapshots keep the old identity and its versions (retire).

// collapse replaces up to budget identities that got their first version at least age before tx.now by
// fresh identities (under the store lock, in transaction tx). It returns how many it replaced.
func (tx *txn) collapse(budget int, age time.Duration) int {
	done := 0
	for idx, t := range tx.st.tables {
		rt := t.rt
		n := 0
		for ; n < len(rt.versioned) && done < budget; n++ {
			r := rt.versioned[n]
			if tx.now-r.at < int64(age) {
				break // the list is oldest first
			}
			h := r.e.cur.Load()
			if h == nil || tx.st.tables[idx].find(r.e) != r.e {
				continue // rolled back, deleted or relocated meanwhile
			}
			tx.collapseOne(idx, r.e, h)
			done++
		}
		clear(rt.versioned[:n])
		rt.versioned = rt.versioned[n:]
		if done >= budget {
			break
		}
	}
	return done
}

// collapseOne replaces identity e0 (in table idx's trie, newest version head) by a fresh identity
// holding a copy of head; e0's slot and head's die.
func (tx *txn) collapseOne(idx int, e0, head *Entry) {
	tx.born(tx.replaceIdentity(idx, e0, head))
	tx.died(e0)
	tx.died(head)
}

// replaceIdentity puts a fresh identity copied from head, the newest version of identity e0, in e0's
// place in table idx's trie (collapse and slab relocation; neither is ever rolled back) and returns it.
// The caller keeps the slab books.
func (tx *txn) replaceIdentity(idx int, e0, head *Entry) *Entry {
	t := tx.st.ownTable(idx)
	n := t.rt.newEntry()
	head.cloneInto(n)
	n.vgen = tx.st.gen
	t.put(tx.st.gen, n, true)
	tx.retire(e0)
	return n
}

// pruneVersioned drops the records of identities no longer installed or no longer versioned once the
// list outgrows twice the table's entries (slab relocation replaces identities, and without Sweep
// nothing else would take their records out): so the list neither grows without bound nor keeps
// replaced identities' slabs alive. Amortised O(1) per record added.
func pruneVersioned(list []versionedRec, entries int, gen uint64) []versionedRec {
	if len(list) < 2*entries+64 {
		return list
	}
	kept := list[:0]
	for _, r := range list {
		// The slab books are updated at commit: an identity this transaction inserted is installed
		// although its bit is not set yet.
		installed := r.e.slot == 0 || r.e.vgen == gen || r.e.slabOf().live&(1<<(r.e.slot-1)) != 0
		if r.e.cur.Load() != nil && installed {
			kept = append(kept, r)
		}
	}
	clear(list[len(kept):])
	return kept
}
