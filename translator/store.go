package translator

import (
	"fmt"
	"slices"

	"github.com/calico-p4/calico-p4/p4src/entry"
)

// store is the translator's output: an entry.Set plus, for every key, which owner produced it. Owners are
// strings naming the model object (or derived object) that produced an entry ("wep/k8s/ns/pod/eth0",
// "policy/default/np/in", "ipset/s:…"), so that removing an object removes exactly its entries.
//
// Two owners may produce the same key. Identical contents are simply shared. Different contents are a
// conflict (two endpoints claiming one interface or one address): the smallest owner wins, deterministically
// and independently of the order of changes, and the others are reported.
type store struct {
	set   *entry.Set
	cells map[entry.Key]cell
	// conflicts: owner → keys where its entry lost to another owner's different entry.
	conflicts map[string]map[entry.Key]string
	errs      []error // entries the set refused (a translator bug: reported, never silently dropped)
}

type cell struct {
	owner string
	// others holds the entries of the other owners of this key (rare).
	others map[string]entry.Entry
}

func newStore() *store {
	return &store{set: &entry.Set{}, cells: map[entry.Key]cell{}, conflicts: map[string]map[entry.Key]string{}}
}

// put records owner's entry e (canonical) under key k.
func (s *store) put(owner string, k entry.Key, e entry.Entry) {
	c, ok := s.cells[k]
	if !ok {
		s.cells[k] = cell{owner: owner}
		s.write(e)
		return
	}
	if c.owner == owner {
		s.write(e)
		if c.others != nil {
			s.recheck(k, c)
		}
		return
	}
	cur, _ := s.set.Get(k)
	if c.others == nil {
		c.others = map[string]entry.Entry{}
	}
	if owner < c.owner {
		// The newcomer wins; the old winner becomes another candidate.
		c.others[c.owner] = cur
		delete(c.others, owner)
		c.owner = owner
		s.cells[k] = c
		s.write(e)
	} else {
		c.others[owner] = e
		s.cells[k] = c
	}
	s.recheck(k, c)
}

// del removes owner's entry under key k.
func (s *store) del(owner string, k entry.Key) {
	c, ok := s.cells[k]
	if !ok {
		return
	}
	if c.owner != owner {
		if _, had := c.others[owner]; had {
			delete(c.others, owner)
			s.clearConflict(owner, k)
			if len(c.others) == 0 {
				c.others = nil
			}
			s.cells[k] = c
			s.recheck(k, c)
		}
		return
	}
	if len(c.others) == 0 {
		delete(s.cells, k)
		s.set.Delete(k)
		s.clearConflict(owner, k)
		return
	}
	// Promote the smallest other owner.
	names := make([]string, 0, len(c.others))
	for o := range c.others {
		names = append(names, o)
	}
	slices.Sort(names)
	next := names[0]
	e := c.others[next]
	delete(c.others, next)
	if len(c.others) == 0 {
		c.others = nil
	}
	c.owner = next
	s.cells[k] = c
	s.clearConflict(owner, k)
	s.clearConflict(next, k)
	s.write(e)
	s.recheck(k, c)
}

func (s *store) write(e entry.Entry) {
	if _, err := s.set.Put(e); err != nil {
		s.errs = append(s.errs, err)
	}
}

// recheck updates the conflict records of the losers of one key.
func (s *store) recheck(k entry.Key, c cell) {
	win, _ := s.set.Get(k)
	s.clearConflict(c.owner, k)
	for o, e := range c.others {
		if e.Equal(win) {
			s.clearConflict(o, k)
			continue
		}
		m := s.conflicts[o]
		if m == nil {
			m = map[entry.Key]string{}
			s.conflicts[o] = m
		}
		m[k] = c.owner
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
	next := make([]entry.Key, len(entries))
	for i, e := range entries {
		next[i] = e.Key()
	}
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
