package translator

import (
	"fmt"
	"slices"

	"github.com/calico-p4/calico-p4/p4src/entry"
)

// store is the translator's output: an entry.Set holding, for every key, which owner produced it (the set's
// entry owners). Owners are
// strings naming the model object (or derived object) that produced an entry ("wep/k8s/ns/pod/eth0",
// "policy/default/np/in", "ipset/s:…"), so that removing an object removes exactly its entries.
//
// Two owners may produce the same key. Identical contents are simply shared. Different contents are a
// conflict (two endpoints claiming one interface or one address): the smallest owner wins, deterministically
// and independently of the order of changes, and the others are reported.
type store struct {
	set *entry.Set
	// others holds the entries other owners than the installed entry's want for the same key (rare: shared
	// or conflicting keys).
	others map[entry.Key]map[string]entry.Entry
	// conflicts: owner → keys where its entry lost to another owner's different entry.
	conflicts map[string]map[entry.Key]string
	errs      []error // entries the set refused (a translator bug: reported, never silently dropped)
	// keyBuf and keyEnds are keysOf's scratch space.
	keyBuf  []byte
	keyEnds []int
}

// keysOf returns the keys of entries (canonical), cut out of one string: one allocation for all of them
// instead of one per key. The keys of a unit are replaced together, so the string does not outlive them
// by much (a key that stays the same across a replace keeps the previous string alive until it changes).
func (s *store) keysOf(entries []entry.Entry) []entry.Key {
	if len(entries) == 0 {
		return nil
	}
	buf, ends := s.keyBuf[:0], s.keyEnds[:0]
	for i := range entries {
		buf = entries[i].AppendKey(buf)
		ends = append(ends, len(buf))
	}
	all := entry.Key(buf)
	keys := make([]entry.Key, len(entries))
	start := 0
	for i, end := range ends {
		keys[i] = all[start:end]
		start = end
	}
	s.keyBuf, s.keyEnds = buf, ends
	return keys
}

func newStore() *store { return newStoreSized(0) }

// newStoreSized returns a store presized for about n entries.
func newStoreSized(n int) *store {
	set := &entry.Set{}
	set.Grow(n)
	return &store{set: set, others: map[entry.Key]map[string]entry.Entry{},
		conflicts: map[string]map[entry.Key]string{}}
}

// slab hands out the match slices and byte strings of many entries from large chunks (one allocation for
// hundreds of entries). A nil slab allocates each.
type slab struct {
	ms []entry.Match
	bs []byte
}

const (
	slabMatches = 1024
	slabBytes   = 16 << 10
)

// matches returns an empty slice with room for n matches.
func (s *slab) matches(n int) []entry.Match {
	if s == nil {
		return make([]entry.Match, 0, n)
	}
	if cap(s.ms)-len(s.ms) < n {
		s.ms = make([]entry.Match, 0, max(n, slabMatches))
	}
	l := len(s.ms)
	s.ms = s.ms[:l+n]
	return s.ms[l : l : l+n]
}

// bytes returns a copy of b.
func (s *slab) bytes(b []byte) []byte {
	if s == nil {
		return append([]byte(nil), b...)
	}
	if cap(s.bs)-len(s.bs) < len(b) {
		s.bs = make([]byte, 0, max(len(b), slabBytes))
	}
	l := len(s.bs)
	s.bs = append(s.bs, b...)
	return s.bs[l:len(s.bs):len(s.bs)]
}

// put records owner's entry e (canonical) under key k.
func (s *store) put(owner string, k entry.Key, e entry.Entry) {
	cur, ok, err := s.set.Claim(k, e, owner)
	if !ok {
		if err != nil {
			s.errs = append(s.errs, err)
		}
		return
	}
	if cur == owner {
		s.write(k, e)
		if s.others[k] != nil {
			s.recheck(k)
		}
		return
	}
	os := s.others[k]
	if os == nil {
		os = map[string]entry.Entry{}
		s.others[k] = os
	}
	if owner < cur {
		// The newcomer wins; the old winner becomes another candidate.
		old, _ := s.set.Get(k)
		os[cur] = old
		delete(os, owner)
		s.set.SetOwner(k, owner)
		s.write(k, e)
	} else {
		os[owner] = e
	}
	s.recheck(k)
}

// del removes owner's entry under key k.
func (s *store) del(owner string, k entry.Key) {
	cur, ok := s.set.Owner(k)
	if !ok {
		return
	}
	os := s.others[k]
	if cur != owner {
		if _, had := os[owner]; had {
			delete(os, owner)
			s.clearConflict(owner, k)
			if len(os) == 0 {
				delete(s.others, k)
			}
			s.recheck(k)
		}
		return
	}
	if len(os) == 0 {
		s.set.Delete(k)
		s.clearConflict(owner, k)
		return
	}
	// Promote the smallest other owner.
	names := make([]string, 0, len(os))
	for o := range os {
		names = append(names, o)
	}
	slices.Sort(names)
	next := names[0]
	e := os[next]
	delete(os, next)
	if len(os) == 0 {
		delete(s.others, k)
	}
	s.set.SetOwner(k, next)
	s.clearConflict(owner, k)
	s.clearConflict(next, k)
	s.write(k, e)
	s.recheck(k)
}

func (s *store) write(k entry.Key, e entry.Entry) {
	if _, err := s.set.PutKeyed(k, e); err != nil {
		s.errs = append(s.errs, err)
	}
}

// recheck updates the conflict records of the other owners of one key.
func (s *store) recheck(k entry.Key) {
	win, _ := s.set.Get(k)
	owner, _ := s.set.Owner(k)
	s.clearConflict(owner, k)
	for o, e := range s.others[k] {
		if e.Equal(win) {
			s.clearConflict(o, k)
			continue
		}
		m := s.conflicts[o]
		if m == nil {
			m = map[entry.Key]string{}
			s.conflicts[o] = m
		}
		m[k] = owner
	}
}

func (s *store) clearConflict(owner string, k entry.Key) {
	if m := s.conflicts[owner]; m != nil {
		delete(m, k)
		if len(m) == 0 {
			delete(s.conflicts, owner)
		}
	}
}

// conflictErr describes owner's lost keys, or nil.
func (s *store) conflictErr(owner string) error {
	m := s.conflicts[owner]
	if len(m) == 0 {
		return nil
	}
	keys := make([]entry.Key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return fmt.Errorf("%d entries conflict with other objects (first: %s, held by %s)", len(keys), keys[0], m[keys[0]])
}

// unit is the set of entries one owner produces. replace installs a new version of them, touching only
// the keys that changed.
type unit struct {
	owner string
	keys  []entry.Key
}

func newUnit(owner string) *unit { return &unit{owner: owner} }

// replace makes the unit hold exactly entries.
func (u *unit) replace(s *store, entries []entry.Entry) {
	next := s.keysOf(entries)
	if len(u.keys) == 0 {
		for i, e := range entries {
			s.put(u.owner, next[i], e)
		}
		u.keys = next
		return
	}
	keep := make(map[entry.Key]struct{}, len(next))
	for i, e := range entries {
		keep[next[i]] = struct{}{}
		s.put(u.owner, next[i], e)
	}
	for _, k := range u.keys {
		if _, ok := keep[k]; !ok {
			s.del(u.owner, k)
		}
	}
	u.keys = next
}

// clear removes every entry of the unit.
func (u *unit) clear(s *store) {
	for _, k := range u.keys {
		s.del(u.owner, k)
	}
	u.keys = nil
}
