package tables

import (
	"bytes"
	"sort"
	"sync/atomic"
	"unsafe"
)

// Handle identifies an installed entry's data-plane slot within its table (direct counters, hit time,
// expiry profile). Handles are reused only after the entry has been deleted for a grace period.
type Handle uint32

// ActionKind says how an entry names its action.
type ActionKind uint8

// Action kinds.
const (
	ActDirect  ActionKind = iota // Entry.Action
	ActMember                    // an action profile member (Entry.MemberID)
	ActGroup                     // an action selector group (Entry.GroupID)
	ActOneShot                   // a one-shot action set (Entry.OneShot)
)

// Action is an action call. Params holds every parameter at its ParamInfo offset (fixed width,
// big-endian), so the fast path reads a parameter as Params[p.Offset : p.Offset+p.Width].
// ID 0 with Info nil is the "no action" default of a table that declares none.
type Action struct {
	ID     uint32
	Info   *ActionInfo
	Params []byte
}

// Param returns the bytes of parameter i (ActionInfo.Params order).
func (a *Action) Param(i int) []byte {
	p := &a.Info.Params[i]
	return a.Params[p.Offset : p.Offset+p.Width]
}

// RangeCheck is a range field of an entry that is not a single value: the lookup checks
// Low <= key[Off:Off+Width] <= High.
type RangeCheck struct {
	Off, Width int
	Low, High  []byte
}

// Entry is one installed table entry. Entries are immutable once published (but for their version
// links, see versions.go: read an entry through State.Lookup, State.Each or State.Version to get the
// version a snapshot sees); the data-plane state that changes per packet (counters, hit time) lives in
// the table's slots under Handle.
type Entry struct {
	// cur is first: a lookup reads it next to Key's header (one cache line fewer than at the end).
	cur atomic.Pointer[Entry] // identity: its newest version, nil when the identity itself is current

	Table    *TableInfo
	Key      []byte // key & Mask, KeyLen bytes
	Mask     []byte // the entry's mask: in kbuf for slab entries (a pointer the GC skips), else its tuple's
	Priority int32  // P4Runtime priority (0 for tables without ternary/range/optional fields)
	Ranges   []RangeCheck

	Kind     ActionKind
	Action   Action
	MemberID uint32
	GroupID  uint32
	OneShot  *OneShot

	Handle             Handle
	Metadata           []byte
	ControllerMetadata uint64
	IdleTimeoutNs      int64
	IsConst            bool
	IsDefault          bool
	Learned            bool // inserted by the data plane (Learn)

	rank int32 // lookup order: priority, or prefix length for lpm tables
	poff uint8 // > 0: Action.Params live in kbuf at this offset
	slot uint8 // > 0: the entry is ents[slot-1] of an entrySlab (see slab.go); 0: a heap object
	rend uint8 // > 0: range bounds (RangeCheck.Low, High) live in kbuf up to this offset, behind the mask

	kbuf [64]byte // Key's (and, when they fit behind key and mask, the params') storage: one allocation

	// Versions (versions.go, with cur above); cloneInto does not copy them.
	vgen uint64                // edit generation in which this identity or version became current
	prev atomic.Pointer[Entry] // version: the version it replaced, until its transaction is published
}

// paramSpace is where a direct action's params may go in e's inline buffer: behind the key and the
// decode-time mask (nil when nothing is left).
func (e *Entry) paramSpace() []byte {
	off := max(2*len(e.Key), int(e.rend))
	if len(e.Key) == 0 || len(e.Key) > len(e.kbuf) || off >= len(e.kbuf) || &e.Key[0] != &e.kbuf[0] {
		return nil
	}
	return e.kbuf[off:]
}

// rangeBytes returns zeroed room for n bytes of range bounds: in e's inline buffer behind the key and
// the decode-time mask while it fits (cloneInto re-points them), else a new slice.
func (e *Entry) rangeBytes(n int) []byte {
	off := max(2*len(e.Key), int(e.rend))
	if len(e.Key) == 0 || len(e.Key) > len(e.kbuf) || &e.Key[0] != &e.kbuf[0] || off+n > len(e.kbuf) {
		return make([]byte, n)
	}
	e.rend = uint8(off + n)
	b := e.kbuf[off : off+n : off+n]
	clear(b)
	return b
}

// noteInlineParams records whether Action.Params were decoded into paramSpace (clone re-points them).
func (e *Entry) noteInlineParams() {
	e.poff = 0
	if sp := e.paramSpace(); len(sp) > 0 && len(e.Action.Params) > 0 && &e.Action.Params[0] == &sp[0] {
		e.poff = uint8(len(e.kbuf) - len(sp))
	}
}

// newKey points e.Key at fresh zeroed storage of n bytes (inline when it fits).
func (e *Entry) newKey(n int) {
	if n <= len(e.kbuf) {
		e.Key = e.kbuf[:n:n]
		return
	}
	e.Key = make([]byte, n)
}

// clone copies an entry into a new heap object, keeping its key inline in the copy.
func (e *Entry) clone() *Entry {
	c := new(Entry)
	e.cloneInto(c)
	return c
}

// cloneInto copies e into c (a fresh entry, heap or slab slot: c keeps its slot), keeping the key inline.
func (e *Entry) cloneInto(c *Entry) {
	// Field by field: the version links (atomics) are not copied; c keeps its slot.
	c.Table, c.Key, c.Mask, c.Priority, c.Ranges = e.Table, e.Key, e.Mask, e.Priority, e.Ranges
	c.Kind, c.Action, c.MemberID, c.GroupID, c.OneShot = e.Kind, e.Action, e.MemberID, e.GroupID, e.OneShot
	c.Handle, c.Metadata, c.ControllerMetadata, c.IdleTimeoutNs = e.Handle, e.Metadata, e.ControllerMetadata, e.IdleTimeoutNs
	c.IsConst, c.IsDefault, c.Learned = e.IsConst, e.IsDefault, e.Learned
	c.rank, c.poff, c.rend, c.kbuf = e.rank, e.poff, e.rend, e.kbuf
	if len(e.Key) > 0 && len(e.Key) <= len(e.kbuf) {
		c.Key = c.kbuf[:len(e.Key):len(e.Key)]
	}
	if e.poff > 0 {
		n := int(e.poff) + len(e.Action.Params)
		c.Action.Params = c.kbuf[e.poff:n:n]
	}
	if off, ok := e.kbufOffset(e.Mask); ok {
		c.Mask = c.kbuf[off : off+len(e.Mask) : off+len(e.Mask)]
	}
	if len(e.Ranges) > 0 && (e.rend > 0 || e.slot != 0 || c.slot != 0) {
		// The checks (and bounds) of a slab or inline entry are the copy's own: nothing in the copy
		// may point into the original's slab, or that slab could never be collected.
		if c.slot != 0 {
			c.Ranges = c.slabOf().rangeChecks(c, e.Table.nRanges)[:len(e.Ranges)]
		} else {
			c.Ranges = make([]RangeCheck, len(e.Ranges))
		}
		copy(c.Ranges, e.Ranges)
		for i := range c.Ranges {
			r := &c.Ranges[i]
			if off, ok := e.kbufOffset(r.Low); ok {
				r.Low = c.kbuf[off : off+len(r.Low) : off+len(r.Low)]
			}
			if off, ok := e.kbufOffset(r.High); ok {
				r.High = c.kbuf[off : off+len(r.High) : off+len(r.High)]
			}
		}
	}
}

// kbufOffset returns the offset of b in e's inline buffer, if b lives there.
func (e *Entry) kbufOffset(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	base := uintptr(unsafe.Pointer(&e.kbuf[0]))
	p := uintptr(unsafe.Pointer(&b[0]))
	if p < base || p >= base+uintptr(len(e.kbuf)) {
		return 0, false
	}
	return int(p - base), true
}

func (e *Entry) rangesMatch(key []byte) bool {
	for i := range e.Ranges {
		r := &e.Ranges[i]
		k := key[r.Off : r.Off+r.Width]
		if compareBE(k, r.Low) < 0 || compareBE(k, r.High) > 0 {
			return false
		}
	}
	return true
}

func (e *Entry) sameIdentity(o *Entry) bool {
	return e.Priority == o.Priority && e.sameMatch(o)
}

// sameMatch compares key and ranges (not the priority).
func (e *Entry) sameMatch(o *Entry) bool {
	if !bytes.Equal(e.Key, o.Key) || len(e.Ranges) != len(o.Ranges) {
		return false
	}
	for i := range e.Ranges {
		a, b := &e.Ranges[i], &o.Ranges[i]
		if a.Off != b.Off || !bytes.Equal(a.Low, b.Low) || !bytes.Equal(a.High, b.High) {
			return false
		}
	}
	return true
}

// tuple holds the entries that share one mask (tuple-space search): a persistent hash of key&mask.
type tuple struct {
	mask    []byte
	maxRank int32 // upper bound of the ranks inside (exact after recompute)
	n       int
	dels    int
	gen     uint64
	m       hamt[*Entry]
}

// Table is one table in a State snapshot. Lookup is safe from any goroutine at any time.
type Table struct {
	Info   *TableInfo
	gen    uint64
	seed   uint64
	tuples []*tuple // by maxRank, highest first
	count  int
	def    *Entry
	rt     *tableRuntime
	live   *liveTable // learner tables: shared by every snapshot, see liveTable
}

// Len returns the number of (non-default) entries.
func (t *Table) Len() int {
	if t.live != nil {
		return t.live.len()
	}
	return t.count
}

// Learner reports whether the table takes data-plane inserts (Store.Learn).
func (t *Table) Learner() bool { return t.live != nil }

// Default returns the table's default entry (never nil).
func (t *Table) Default() *Entry { return t.def }

// lookup returns the highest-ranked entry (identity) matching key, or nil on a miss; State.Lookup
// returns the version a snapshot sees. It does not allocate.
func (t *Table) lookup(key []byte) *Entry {
	key = key[:t.Info.KeyLen]
	if t.live != nil {
		return t.live.lookup(key)
	}
	var best *Entry
	var bestRank int32
	for _, tp := range t.tuples {
		if best != nil && tp.maxRank <= bestRank {
			break
		}
		vals := tp.m.get(hashMasked(t.seed, key, tp.mask))
		for _, e := range vals {
			if best != nil && e.rank <= bestRank {
				break
			}
			if equalMasked(key, tp.mask, e.Key) && (e.Ranges == nil || e.rangesMatch(key)) {
				best, bestRank = e, e.rank
				break
			}
		}
	}
	return best
}

// each calls f for every entry (identity; not the default) until f returns false; State.Each
// passes the versions a snapshot sees.
func (t *Table) each(f func(*Entry) bool) {
	if t.live != nil {
		t.live.each(f)
		return
	}
	for _, tp := range t.tuples {
		if !tp.m.each(f) {
			return
		}
	}
}

// find returns the installed entry (identity) with e's match (mask, key, ranges, priority), or nil.
func (t *Table) find(e *Entry) *Entry {
	if t.live != nil {
		return t.live.find(e)
	}
	tp := t.tupleFor(e.Mask)
	if tp == nil {
		return nil
	}
	for _, o := range tp.m.get(hashBytes(t.seed, e.Key)) {
		if o.sameIdentity(e) {
			return o
		}
	}
	return nil
}

func (t *Table) tupleFor(mask []byte) *tuple {
	for _, tp := range t.tuples {
		if bytes.Equal(tp.mask, mask) {
			return tp
		}
	}
	return nil
}

// The methods below run inside a write transaction on a Table owned by gen.

func (t *Table) clone(gen uint64) *Table {
	c := *t
	c.gen = gen
	c.tuples = append(make([]*tuple, 0, len(t.tuples)+1), t.tuples...)
	return &c
}

func (t *Table) ownTuple(i int, gen uint64) *tuple {
	tp := t.tuples[i]
	if tp.gen != gen {
		c := *tp
		c.gen = gen
		tp = &c
		t.tuples[i] = tp
	}
	return tp
}

func (t *Table) sortTuples() {
	sort.SliceStable(t.tuples, func(i, j int) bool { return t.tuples[i].maxRank > t.tuples[j].maxRank })
}

// put inserts e, or replaces the entry with the same identity when replace is set. For a learner
// table the change is visible at once and put returns the function that undoes it.
func (t *Table) put(gen uint64, e *Entry, replace bool) (undo func()) {
	if lt := t.live; lt != nil {
		e.Mask = t.Info.validMask
		if !replace {
			lt.insert(e)
			return func() { lt.remove(e) }
		}
		old := lt.find(e)
		lt.replace(old, e)
		return func() { lt.replace(e, old) }
	}
	idx := -1
	for i, tp := range t.tuples {
		if bytes.Equal(tp.mask, e.Mask) {
			idx = i
			break
		}
	}
	if idx < 0 {
		t.tuples = append(t.tuples, &tuple{mask: bytes.Clone(e.Mask), maxRank: e.rank, gen: gen})
		idx = len(t.tuples) - 1
	}
	tp := t.ownTuple(idx, gen)
	// A slab entry keeps its decode-time mask, behind its key: a pointer into its own slab costs the
	// collector nothing, one into the tuple a lookup per entry per cycle.
	if _, inline := e.kbufOffset(e.Mask); !inline || e.slot == 0 {
		e.Mask = tp.mask
	}
	delta := 1
	if replace {
		delta = 0
	}
	tp.m.update(gen, hashBytes(t.seed, e.Key), delta, func(old []*Entry, owned bool) []*Entry {
		if replace {
			out := old
			if !owned {
				out = append([]*Entry(nil), old...)
			}
			for i, o := range out {
				if o.sameIdentity(e) {
					out[i] = e
					return out
				}
			}
			panic("tables: replace of a missing entry")
		}
		var out []*Entry
		if owned {
			out = old
		} else {
			out = make([]*Entry, len(old), len(old)+1)
			copy(out, old)
		}
		pos := len(out)
		for i, o := range out {
			if e.rank > o.rank {
				pos = i
				break
			}
		}
		out = append(out, nil)
		copy(out[pos+1:], out[pos:])
		out[pos] = e
		return out
	})
	if !replace {
		tp.n++
		t.count++
		if e.rank > tp.maxRank || tp.n == 1 {
			tp.maxRank = e.rank
			t.sortTuples()
		}
	}
	return nil
}

// remove deletes the entry with e's identity (which must be installed); see put for the undo.
func (t *Table) remove(gen uint64, e *Entry) (undo func()) {
	if lt := t.live; lt != nil {
		old := lt.find(e)
		lt.remove(old)
		return func() { lt.insert(old) }
	}
	idx := -1
	for i, tp := range t.tuples {
		if bytes.Equal(tp.mask, e.Mask) {
			idx = i
			break
		}
	}
	if idx < 0 {
		panic("tables: remove from a missing tuple")
	}
	tp := t.ownTuple(idx, gen)
	tp.m.update(gen, hashBytes(t.seed, e.Key), -1, func(old []*Entry, owned bool) []*Entry {
		out := make([]*Entry, 0, len(old))
		for _, o := range old {
			if !o.sameIdentity(e) {
				out = append(out, o)
			}
		}
		return out
	})
	tp.n--
	t.count--
	if tp.n == 0 {
		copy(t.tuples[idx:], t.tuples[idx+1:])
		t.tuples[len(t.tuples)-1] = nil
		t.tuples = t.tuples[:len(t.tuples)-1]
		return nil
	}
	tp.dels++
	if e.rank == tp.maxRank && tp.dels > tp.n/2+8 {
		var mr int32
		first := true
		tp.m.each(func(o *Entry) bool {
			if first || o.rank > mr {
				mr, first = o.rank, false
			}
			return true
		})
		tp.maxRank, tp.dels = mr, 0
		t.sortTuples()
	}
	return nil
}
