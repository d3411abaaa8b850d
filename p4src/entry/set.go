package entry

import (
	"bytes"
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
//
// Entries are stored packed (packed.go, arena.go): the index maps a key to a slot number, and the slot
// locates the entry's packed value in pointer-free chunks. Get and All unpack a fresh copy; nothing
// returned shares memory with the set.
type Set struct {
	idx     map[Key]uint32
	recs    records
	owners  ownerTable
	scratch []byte // the packed value being stored
	// keyScratch is the key Put builds (a Key string is made only for a change).
	keyScratch []byte
	// gen counts changes; journal[i] is the key changed at jbase+i+1.
	gen     uint64
	jbase   uint64
	journal []Key
	// unjournaled: changes are not journaled (SuspendJournal).
	unjournaled bool
}

// Grow makes room for n more entries (presizing the index), so that building a large set does not grow
// its index step by step.
func (s *Set) Grow(n int) {
	if n <= 0 {
		return
	}
	m := make(map[Key]uint32, len(s.idx)+n)
	for k, i := range s.idx {
		m[k] = i
	}
	s.idx = m
	s.recs.slots = slices.Grow(s.recs.slots, n)
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
func (s *Set) Len() int { return len(s.idx) }

// Put canonicalises and validates e and stores it, replacing any entry with
// the same key. It returns the stored (canonical) entry.
func (s *Set) Put(e Entry) (Entry, error) {
	e = e.Canonical()
	if err := e.Validate(); err != nil {
		return e, err
	}
	// The key is built in scratch: an entry that is already present with these contents (a producer
	// restating its state) costs no key string, and a changed or new one costs one of exactly its size.
	s.keyScratch = e.AppendKey(s.keyScratch[:0])
	if i, ok := s.idx[Key(s.keyScratch)]; ok {
		s.scratch = appendValue(s.scratch[:0], &e)
		if bytes.Equal(s.recs.value(i), s.scratch) {
			return e, nil
		}
	}
	s.put(Key(s.keyScratch), &e)
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
	s.put(k, &e)
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
	if i, ok := s.idx[k]; ok {
		s.scratch = appendValue(s.scratch[:0], &e)
		if !bytes.Equal(s.recs.value(i), s.scratch) {
			old, _ := s.Get(k)
			return fmt.Errorf("conflicting entries for %s: %s and %s", k, old, e)
		}
		return nil
	}
	s.put(k, &e)
	return nil
}

// Claim is PutKeyed (k == e.Key(), e canonical) for a producer that labels its entries with owners: when
// no entry has key k, it validates e and stores it with owner; otherwise it changes nothing and returns the
// owner of the entry present (existed). One index lookup for a new key, where Owner then PutKeyed take
// three.
func (s *Set) Claim(k Key, e Entry, owner string) (cur string, existed bool, err error) {
	if i, ok := s.idx[k]; ok {
		return s.owners.name(s.recs.slots[i].owner), true, nil
	}
	if !e.isCanonical() {
		e = e.Canonical()
		k = e.Key()
	}
	if err := e.Validate(); err != nil {
		return "", false, err
	}
	i := s.insert(k, &e)
	s.recs.slots[i].owner = s.owners.acquire(owner)
	s.note(k)
	return "", false, nil
}

// Owner returns the owner of the entry with key k ("" for entries stored without one).
func (s *Set) Owner(k Key) (string, bool) {
	if i, ok := s.idx[k]; ok {
		return s.owners.name(s.recs.slots[i].owner), true
	}
	return "", false
}

// SetOwner changes the owner of the entry with key k (not a change of the entry: not journaled).
func (s *Set) SetOwner(k Key, owner string) bool {
	i, ok := s.idx[k]
	if !ok {
		return false
	}
	if old := s.recs.slots[i].owner; s.owners.name(old) != owner {
		s.recs.slots[i].owner = s.owners.acquire(owner)
		s.owners.release(old)
	}
	return true
}

// put stores the canonical, valid entry e under k (a change only if it differs from what is there).
func (s *Set) put(k Key, e *Entry) {
	if i, ok := s.idx[k]; ok {
		s.scratch = appendValue(s.scratch[:0], e)
		if bytes.Equal(s.recs.value(i), s.scratch) {
			return
		}
		s.recs.set(i, s.scratch)
	} else {
		s.insert(k, e)
	}
	s.note(k)
}

// insert stores e under the new key k (not journaled) and returns its slot.
func (s *Set) insert(k Key, e *Entry) uint32 {
	s.scratch = appendValue(s.scratch[:0], e)
	return s.insertScratch(k)
}

// AddAll adds every entry of o (see Add), stopping at the first conflict.
func (s *Set) AddAll(o *Set) error {
	for k, oi := range o.idx {
		v := o.recs.value(oi)
		if i, ok := s.idx[k]; ok {
			if !bytes.Equal(s.recs.value(i), v) {
				old, _ := s.Get(k)
				e, _ := o.Get(k)
				return fmt.Errorf("conflicting entries for %s: %s and %s", k, old, e)
			}
			continue
		}
		s.insertPacked(k, v, "")
		s.note(k)
	}
	return nil
}

// insertPacked stores the packed value v (taken from another set) under the new key k with owner.
func (s *Set) insertPacked(k Key, v []byte, owner string) {
	s.scratch = append(s.scratch[:0], v...)
	s.recs.slots[s.insertScratch(k)].owner = s.owners.acquire(owner)
}

// insertScratch stores the packed value in s.scratch under the new key k and returns its slot.
func (s *Set) insertScratch(k Key) uint32 {
	if s.idx == nil {
		s.idx = make(map[Key]uint32)
	}
	i := s.recs.newSlot()
	s.recs.set(i, s.scratch)
	s.idx[k] = i
	return i
}

// Delete removes the entry with key k and reports whether there was one.
func (s *Set) Delete(k Key) bool {
	i, ok := s.idx[k]
	if !ok {
		return false
	}
	delete(s.idx, k)
	s.owners.release(s.recs.slots[i].owner)
	s.recs.freeSlot(i)
	s.note(k)
	return true
}

// Clear removes every entry.
func (s *Set) Clear() {
	for k := range s.idx {
		s.note(k)
	}
	clear(s.idx)
	s.recs = records{}
	s.owners = ownerTable{}
}

func (s *Set) note(k Key) {
	s.gen++
	if s.unjournaled {
		s.jbase = s.gen
		return
	}
	if len(s.journal) >= max(minJournal, len(s.idx)) {
		// Forget the older half: a consumer that far behind compares
		// everything, one that kept up still gets just the changes.
		drop := len(s.journal) / 2
		s.journal = append(make([]Key, 0, len(s.journal)), s.journal[drop:]...)
		s.jbase += uint64(drop)
	}
	s.journal = append(s.journal, k)
}

// entryAt unpacks the entry in slot i under key k. A set only holds what it packed itself, so a failure
// is a bug in this package.
func (s *Set) entryAt(k Key, i uint32) Entry {
	e, err := unpack(k, string(s.recs.value(i))) // one string for the value's names
	if err != nil {
		panic(fmt.Sprintf("entry: set corrupted: %v", err))
	}
	return e
}

// Get returns the entry with key k.
func (s *Set) Get(k Key) (Entry, bool) {
	if i, ok := s.idx[k]; ok {
		return s.entryAt(k, i), true
	}
	return Entry{}, false
}

// Changed is for a consumer that holds v as the packed value of key k ("" for none: a packed value is
// never empty): it reports whether an entry with key k is present and whether that differs from what the
// consumer holds, and copies the value only when it does (one index lookup either way).
func (s *Set) Changed(k Key, v Packed) (cur Packed, present, changed bool) {
	i, ok := s.idx[k]
	if !ok {
		return "", false, v != ""
	}
	if b := s.recs.value(i); string(b) != string(v) {
		return Packed(b), true, true
	}
	return v, true, false
}

// Has reports whether an entry with key k is present.
func (s *Set) Has(k Key) bool {
	_, ok := s.idx[k]
	return ok
}

// All iterates over the entries in no particular order. The set must not change during the iteration.
func (s *Set) All() iter.Seq2[Key, Entry] {
	return func(yield func(Key, Entry) bool) {
		for k, i := range s.idx {
			if !yield(k, s.entryAt(k, i)) {
				return
			}
		}
	}
}

// Keys iterates over the keys in no particular order (without unpacking the entries). The set must not
// change during the iteration.
func (s *Set) Keys() iter.Seq[Key] {
	return func(yield func(Key) bool) {
		for k := range s.idx {
			if !yield(k) {
				return
			}
		}
	}
}

// Sorted returns the entries in the deterministic order of Compare.
func (s *Set) Sorted() []Entry {
	out := make([]Entry, 0, len(s.idx))
	for k, i := range s.idx {
		out = append(out, s.entryAt(k, i))
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

// Clone returns an independent copy with its own journal, packed afresh (no dead records).
func (s *Set) Clone() *Set {
	c := &Set{idx: make(map[Key]uint32, len(s.idx))}
	c.recs.slots = make([]ref, 0, len(s.idx))
	for k, i := range s.idx {
		c.insertPacked(k, s.recs.value(i), s.owners.name(s.recs.slots[i].owner))
	}
	return c
}

// Equal reports whether s and o hold the same entries.
func (s *Set) Equal(o *Set) bool {
	if s.Len() != o.Len() {
		return false
	}
	for k, i := range s.idx {
		oi, ok := o.idx[k]
		if !ok || !bytes.Equal(s.recs.value(i), o.recs.value(oi)) {
			return false
		}
	}
	return true
}

// CountByContainer returns the number of entries per table or action
// profile name.
func (s *Set) CountByContainer() map[string]int {
	out := make(map[string]int)
	for k := range s.idx {
		out[k.Container()]++
	}
	return out
}

// Generation counts the changes made to the set so far.
func (s *Set) Generation() uint64 { return s.gen }

// ChangedSince returns the keys added, changed or deleted after generation
// gen (possibly with repeats), or ok=false when the journal no longer reaches
// back to gen and the caller must compare the whole set.
func (s *Set) ChangedSince(gen uint64) (keys []Key, ok bool) {
	keys, ok = s.ChangedSinceView(gen)
	return slices.Clone(keys), ok
}

// ChangedSinceView is ChangedSince without the copy, for a consumer that reads the keys before it changes
// the set again (the slice is the set's journal: it must not be modified, and the next change may
// overwrite it).
func (s *Set) ChangedSinceView(gen uint64) (keys []Key, ok bool) {
	if gen > s.gen || gen < s.jbase {
		return nil, false
	}
	return s.journal[gen-s.jbase:], true
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
	for k, i := range to.idx {
		if fi, ok := from.idx[k]; !ok {
			d.Insert = append(d.Insert, to.entryAt(k, i))
		} else if !bytes.Equal(from.recs.value(fi), to.recs.value(i)) {
			d.Modify = append(d.Modify, to.entryAt(k, i))
		}
	}
	for k, fi := range from.idx {
		if _, ok := to.idx[k]; !ok {
			d.Delete = append(d.Delete, from.entryAt(k, fi))
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
		fi, inFrom := from.idx[k]
		i, inTo := to.idx[k]
		switch {
		case inTo && !inFrom:
			d.Insert = append(d.Insert, to.entryAt(k, i))
		case inTo && inFrom && !bytes.Equal(from.recs.value(fi), to.recs.value(i)):
			d.Modify = append(d.Modify, to.entryAt(k, i))
		case inFrom && !inTo:
			d.Delete = append(d.Delete, from.entryAt(k, fi))
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
