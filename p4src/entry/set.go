package entry

import (
	"cmp"
	"fmt"
	"iter"
	"slices"
	"strings"
)

// Set is a set of entries indexed by key: the desired state of a target (the
// translator's output) or what is installed on it. The zero Set is empty and
// ready to use. A Set is not safe for concurrent use.
//
// Every change is journaled with a generation number so that a consumer that
// saw the set at generation g can ask which keys changed since
// (ChangedSince) instead of comparing every entry; the journal is bounded and
// a consumer that fell too far behind is told to compare everything.
type Set struct {
	// m points every key at its entry's slot. Entries live in slabs (chunks of slots) rather than in the
	// map: an Entry is too large for a map to hold inline, and one allocation per entry is what a large
	// translation would otherwise pay. Slots are never handed out (Get and All copy), so a changed entry
	// is overwritten in place; a deleted entry's slot is cleared and reused.
	m    map[Key]*slot
	slab []slot  // unused slots of the current chunk
	free []*slot // cleared slots of deleted entries
	// gen counts changes; journal[i] is the key changed at jbase+i+1.
	gen     uint64
	jbase   uint64
	journal []Key
	// unjournaled: changes are not journaled (SuspendJournal).
	unjournaled bool
}

// slot holds an entry and its owner: a label the producer of the set gives the entry (the translator names
// the object that produced it); the set stores it and never interprets it.
type slot struct {
	e     Entry
	owner string
}

// Slab chunk sizes: small sets start small, large ones allocate in chunks of maxChunk.
const (
	minChunk = 8
	maxChunk = 1024
)

// slot returns an empty slot for a new entry.
func (s *Set) newSlot() *slot {
	if n := len(s.free); n > 0 {
		p := s.free[n-1]
		s.free = s.free[:n-1]
		return p
	}
	if len(s.slab) == 0 {
		s.slab = make([]slot, min(maxChunk, max(minChunk, len(s.m)/4)))
	}
	p := &s.slab[0]
	s.slab = s.slab[1:]
	return p
}

// Grow makes room for n more entries (presizing the index), so that building a large set does not grow
// its index step by step.
func (s *Set) Grow(n int) {
	if n <= 0 {
		return
	}
	if len(s.m) == 0 {
		s.m = make(map[Key]*slot, n)
	} else {
		m := make(map[Key]*slot, len(s.m)+n)
		for k, p := range s.m {
			m[k] = p
		}
		s.m = m
	}
}

// SuspendJournal stops journaling changes until ResumeJournal; meanwhile ChangedSince reports false for
// every generation before the current one (the consumer compares the whole set). It is meant for building
// a large set that its consumers compare whole anyway: the journal would only be garbage.
func (s *Set) SuspendJournal() {
	s.unjournaled = true
	s.journal = nil
	s.jbase = s.gen
}

// ResumeJournal journals changes again from the current generation on.
func (s *Set) ResumeJournal() { s.unjournaled = false }

// minJournal is the journal length below which it is never truncated.
const minJournal = 4096

// NewSet returns a set holding entries. Entries are canonicalised and
// validated; two different entries with the same key are an error.
func NewSet(entries ...Entry) (*Set, error) {
	s := &Set{}
	s.Grow(len(entries))
	for _, e := range entries {
		if err := s.Add(e); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Len is the number of entries.
func (s *Set) Len() int { return len(s.m) }

// Put canonicalises and validates e and stores it, replacing any entry with
// the same key. It returns the stored (canonical) entry.
func (s *Set) Put(e Entry) (Entry, error) {
	e = e.Canonical()
	if err := e.Validate(); err != nil {
		return e, err
	}
	s.put(e.Key(), e)
	return e, nil
}

// PutKeyed is Put for a producer that already computed the key of a canonical entry (k == e.Key()): a
// translation of hundreds of thousands of entries then computes each key once. e is still validated; a
// non-canonical e is canonicalised and its key recomputed.
func (s *Set) PutKeyed(k Key, e Entry) (Entry, error) {
	if !e.isCanonical() {
		return s.Put(e)
	}
	if err := e.Validate(); err != nil {
		return e, err
	}
	s.put(k, e)
	return e, nil
}

// Add is Put, except that an entry already present under the same key with
// different contents is an error (two producers disagree about one key).
func (s *Set) Add(e Entry) error {
	e = e.Canonical()
	if err := e.Validate(); err != nil {
		return err
	}
	k := e.Key()
	if old, ok := s.m[k]; ok && !old.e.Equal(e) {
		return fmt.Errorf("conflicting entries for %s: %s and %s", k, old.e, e)
	}
	s.put(k, e)
	return nil
}

// Claim is PutKeyed (k == e.Key(), e canonical) for a producer that labels its entries with owners: when
// no entry has key k, it validates e and stores it with owner; otherwise it changes nothing and returns the
// owner of the entry present (existed). One index lookup for a new key, where Owner then PutKeyed take
// three.
func (s *Set) Claim(k Key, e Entry, owner string) (cur string, existed bool, err error) {
	if old, ok := s.m[k]; ok {
		return old.owner, true, nil
	}
	if !e.isCanonical() {
		e = e.Canonical()
		k = e.Key()
	}
	if err := e.Validate(); err != nil {
		return "", false, err
	}
	if s.m == nil {
		s.m = make(map[Key]*slot)
	}
	p := s.newSlot()
	p.e, p.owner = e, owner
	s.m[k] = p
	s.note(k)
	return "", false, nil
}

// Owner returns the owner of the entry with key k ("" for entries stored without one).
func (s *Set) Owner(k Key) (string, bool) {
	if p, ok := s.m[k]; ok {
		return p.owner, true
	}
	return "", false
}

// SetOwner changes the owner of the entry with key k (not a change of the entry: not journaled).
func (s *Set) SetOwner(k Key, owner string) bool {
	if p, ok := s.m[k]; ok {
		p.owner = owner
		return true
	}
	return false
}

func (s *Set) put(k Key, e Entry) {
	if s.m == nil {
		s.m = make(map[Key]*slot)
	}
	if old, ok := s.m[k]; ok {
		if old.e.Equal(e) {
			return
		}
		old.e = e
	} else {
		p := s.newSlot()
		p.e = e
		s.m[k] = p
	}
	s.note(k)
}

// AddAll adds every entry of o (see Add), stopping at the first conflict.
func (s *Set) AddAll(o *Set) error {
	for k, e := range o.m {
		if old, ok := s.m[k]; ok && !old.e.Equal(e.e) {
			return fmt.Errorf("conflicting entries for %s: %s and %s", k, old.e, e.e)
		}
		s.put(k, e.e)
	}
	return nil
}

// Delete removes the entry with key k and reports whether there was one.
func (s *Set) Delete(k Key) bool {
	p, ok := s.m[k]
	if !ok {
		return false
	}
	delete(s.m, k)
	*p = slot{} // drop what the entry refers to
	s.free = append(s.free, p)
	s.note(k)
	return true
}

// Clear removes every entry.
func (s *Set) Clear() {
	for k := range s.m {
		s.note(k)
	}
	clear(s.m)
	s.slab, s.free = nil, nil
}

func (s *Set) note(k Key) {
	s.gen++
	if s.unjournaled {
		s.jbase = s.gen
		return
	}
	if len(s.journal) >= max(minJournal, len(s.m)) {
		// Forget the older half: a consumer that far behind compares
		// everything, one that kept up still gets just the changes.
		drop := len(s.journal) / 2
		s.journal = append(make([]Key, 0, len(s.journal)), s.journal[drop:]...)
		s.jbase += uint64(drop)
	}
	s.journal = append(s.journal, k)
}

// Get returns the entry with key k.
func (s *Set) Get(k Key) (Entry, bool) {
	if p, ok := s.m[k]; ok {
		return p.e, true
	}
	return Entry{}, false
}

// Has reports whether an entry with key k is present.
func (s *Set) Has(k Key) bool {
	_, ok := s.m[k]
	return ok
}

// All iterates over the entries in no particular order.
func (s *Set) All() iter.Seq2[Key, Entry] {
	return func(yield func(Key, Entry) bool) {
		for k, e := range s.m {
			if !yield(k, e.e) {
				return
			}
		}
	}
}

// Sorted returns the entries in the deterministic order of Compare.
func (s *Set) Sorted() []Entry {
	out := make([]Entry, 0, len(s.m))
	for _, e := range s.m {
		out = append(out, e.e)
	}
	SortEntries(out)
	return out
}

// Compare orders entries deterministically: by kind in dependency order
// (members, groups, table entries, default actions), then by table or
// profile name, then by key (for canonical values of equal length this is
// numeric order).
func Compare(a, b Entry) int { return compareKeyed(a, a.Key(), b, b.Key()) }

func compareKeyed(a Entry, ak Key, b Entry, bk Key) int {
	if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	if c := strings.Compare(a.Container(), b.Container()); c != 0 {
		return c
	}
	return strings.Compare(string(ak), string(bk))
}

// Clone returns an independent copy (entries are values and are shared; they
// are immutable). The copy has its own journal.
func (s *Set) Clone() *Set {
	c := &Set{m: make(map[Key]*slot, len(s.m))}
	slots := make([]slot, len(s.m))
	i := 0
	for k, e := range s.m {
		slots[i] = *e
		c.m[k] = &slots[i]
		i++
	}
	return c
}

// Equal reports whether s and o hold the same entries.
func (s *Set) Equal(o *Set) bool {
	if s.Len() != o.Len() {
		return false
	}
	for k, e := range s.m {
		oe, ok := o.m[k]
		if !ok || !e.e.Equal(oe.e) {
			return false
		}
	}
	return true
}

// CountByContainer returns the number of entries per table or action
// profile name.
func (s *Set) CountByContainer() map[string]int {
	out := make(map[string]int)
	for _, e := range s.m {
		out[e.e.Container()]++
	}
	return out
}

// Generation counts the changes made to the set so far.
func (s *Set) Generation() uint64 { return s.gen }

// ChangedSince returns the keys added, changed or deleted after generation
// gen (possibly with repeats), or ok=false when the journal no longer reaches
// back to gen and the caller must compare the whole set.
func (s *Set) ChangedSince(gen uint64) (keys []Key, ok bool) {
	if gen > s.gen || gen < s.jbase {
		return nil, false
	}
	return slices.Clone(s.journal[gen-s.jbase:]), true
}

// String lists the entries, one a line, in Sorted order.
func (s *Set) String() string {
	var sb strings.Builder
	for _, e := range s.Sorted() {
		sb.WriteString(e.String())
		sb.WriteByte('\n')
	}
	return sb.String()
}

// Delta is what turns one set into another.
type Delta struct {
	// Insert holds entries of the new set whose key is not in the old one.
	Insert []Entry
	// Modify holds entries of the new set whose key is in the old set with
	// other contents.
	Modify []Entry
	// Delete holds entries of the old set whose key is not in the new one.
	Delete []Entry
}

// Len is the number of changes.
func (d Delta) Len() int { return len(d.Insert) + len(d.Modify) + len(d.Delete) }

// Diff returns the changes that turn from into to, each list in Compare
// order.
func Diff(from, to *Set) Delta {
	var d Delta
	for k, e := range to.m {
		if old, ok := from.m[k]; !ok {
			d.Insert = append(d.Insert, e.e)
		} else if !old.e.Equal(e.e) {
			d.Modify = append(d.Modify, e.e)
		}
	}
	for k, e := range from.m {
		if _, ok := to.m[k]; !ok {
			d.Delete = append(d.Delete, e.e)
		}
	}
	d.sort()
	return d
}

// DiffKeys is Diff restricted to keys (for example those from ChangedSince):
// keys not listed are assumed equal in both sets. Repeated keys are fine.
func DiffKeys(from, to *Set, keys []Key) Delta {
	var d Delta
	seen := make(map[Key]struct{}, len(keys))
	for _, k := range keys {
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		old, inFrom := from.m[k]
		e, inTo := to.m[k]
		switch {
		case inTo && !inFrom:
			d.Insert = append(d.Insert, e.e)
		case inTo && inFrom && !old.e.Equal(e.e):
			d.Modify = append(d.Modify, e.e)
		case inFrom && !inTo:
			d.Delete = append(d.Delete, old.e)
		}
	}
	d.sort()
	return d
}

func (d *Delta) sort() {
	for _, l := range [][]Entry{d.Insert, d.Modify, d.Delete} {
		SortEntries(l)
	}
}

// SortEntries sorts entries in Compare order, computing each key once.
func SortEntries(entries []Entry) {
	type ke struct {
		k Key
		e Entry
	}
	all := make([]ke, len(entries))
	for i, e := range entries {
		all[i] = ke{e.Key(), e}
	}
	slices.SortFunc(all, func(a, b ke) int { return compareKeyed(a.e, a.k, b.e, b.k) })
	for i := range all {
		entries[i] = all[i].e
	}
}
