package tables

import "sync/atomic"

// liveTable holds the entries of a learner (PNA add_on_miss) table. Such tables are data-plane
// volatile (P4Runtime §8.3.1): the data plane inserts and expires entries at flow rate, so they are not
// copied per snapshot. Every snapshot of a pipeline config shares one liveTable; a learned entry is
// visible to every reader at once. Readers are lock-free: they load the bucket array and walk an
// immutable chain. Writers hold the store lock and replace chains (a chain is short: the table is
// resized to keep about one entry per bucket).
type liveTable struct {
	seed    uint64
	mask    []byte
	buckets atomic.Pointer[[]atomic.Pointer[lnode]]
	n       atomic.Int64
}

type lnode struct {
	hash uint64
	e    *Entry
	next *lnode
}

func newLiveTable(seed uint64, mask []byte) *liveTable {
	lt := &liveTable{seed: seed, mask: mask}
	b := make([]atomic.Pointer[lnode], 64)
	lt.buckets.Store(&b)
	return lt
}

func (lt *liveTable) len() int { return int(lt.n.Load()) }

// lookup returns the entry whose key equals key under the table mask, or nil. No allocation.
func (lt *liveTable) lookup(key []byte) *Entry {
	h := hashMasked(lt.seed, key, lt.mask)
	bs := *lt.buckets.Load()
	for n := bs[h&uint64(len(bs)-1)].Load(); n != nil; n = n.next {
		if n.hash == h && equalMasked(key, lt.mask, n.e.Key) {
			return n.e
		}
	}
	return nil
}

// find returns the installed entry with e's key (e.Key is already masked).
func (lt *liveTable) find(e *Entry) *Entry {
	h := hashBytes(lt.seed, e.Key)
	bs := *lt.buckets.Load()
	for n := bs[h&uint64(len(bs)-1)].Load(); n != nil; n = n.next {
		if n.hash == h && string(n.e.Key) == string(e.Key) {
			return n.e
		}
	}
	return nil
}

// insert adds e (its key must not be present). Under the store lock.
func (lt *liveTable) insert(e *Entry) {
	if int(lt.n.Load()) >= len(*lt.buckets.Load()) {
		lt.grow()
	}
	h := hashBytes(lt.seed, e.Key)
	bs := *lt.buckets.Load()
	b := &bs[h&uint64(len(bs)-1)]
	b.Store(&lnode{hash: h, e: e, next: b.Load()})
	lt.n.Add(1)
}

// replace swaps the installed entry old for e (same key). Under the store lock.
func (lt *liveTable) replace(old, e *Entry) bool { return lt.rewrite(old, e) }

// remove deletes the installed entry old. Under the store lock.
func (lt *liveTable) remove(old *Entry) bool {
	if lt.rewrite(old, nil) {
		lt.n.Add(-1)
		return true
	}
	return false
}

// rewrite rebuilds the chain holding old with old replaced by e (or dropped when e is nil); nodes
// after old are shared, nodes before it copied, so a reader walking the old chain is unaffected.
func (lt *liveTable) rewrite(old, e *Entry) bool {
	h := hashBytes(lt.seed, old.Key)
	bs := *lt.buckets.Load()
	b := &bs[h&uint64(len(bs)-1)]
	head := b.Load()
	var prefix []*lnode
	for n := head; n != nil; n = n.next {
		if n.e != old {
			prefix = append(prefix, n)
			continue
		}
		rest := n.next
		if e != nil {
			rest = &lnode{hash: h, e: e, next: rest}
		}
		for i := len(prefix) - 1; i >= 0; i-- {
			rest = &lnode{hash: prefix[i].hash, e: prefix[i].e, next: rest}
		}
		b.Store(rest)
		return true
	}
	return false
}

// grow doubles the bucket array, building new chains (the old array stays valid for readers).
func (lt *liveTable) grow() {
	old := *lt.buckets.Load()
	nb := make([]atomic.Pointer[lnode], 2*len(old))
	mask := uint64(len(nb) - 1)
	for i := range old {
		for n := old[i].Load(); n != nil; n = n.next {
			b := &nb[n.hash&mask]
			b.Store(&lnode{hash: n.hash, e: n.e, next: b.Load()})
		}
	}
	lt.buckets.Store(&nb)
}

// each calls f for every entry until f returns false.
func (lt *liveTable) each(f func(*Entry) bool) {
	bs := *lt.buckets.Load()
	for i := range bs {
		for n := bs[i].Load(); n != nil; n = n.next {
			if !f(n.e) {
				return
			}
		}
	}
}
