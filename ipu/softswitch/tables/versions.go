package tables

import (
	"slices"
	"sync/atomic"
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
	// Unreachable for a snapshot that holds e (the first later transaction that modified e linked an
	// overlay before cutting prev); fall back to the newest version rather than crash the data plane.
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
	if old.vgen == gen {
		// old was made by this transaction (an identity it inserted, or a version it pushed): no reader
		// can see it, so it needs no record.
		n.prev.Store(old.prev.Load())
	} else {
		n.prev.Store(old)
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
// those stay reachable through the overlay only, so only older States keep them alive.
func (tx *txn) cutVersions() {
	if !tx.linked {
		return
	}
	for _, r := range tx.recs {
		latest(r.e).prev.Store(nil)
	}
	tx.recs, tx.linked = nil, false
}

// unpush restores the identities this (failed, never published) transaction modified.
func (tx *txn) unpush() {
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
