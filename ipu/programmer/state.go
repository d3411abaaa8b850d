package programmer

import (
	"fmt"
	"hash/maphash"
	"iter"

	"github.com/calico-p4/calico-p4/p4src/entry"
)

// The programmer's per-key state is laid out for the garbage collector: with
// 100k keys, one heap object per key (and another per desired value) made
// every GC cycle mark hundreds of thousands of objects, and a cycle's mark
// phase overlapping incremental syncs is what their tail latency was made
// of. So slots live in chunked arenas (a few hundred objects for 100k keys),
// the index maps a key's hash to an arena index (it holds no pointer: a GC
// cycle does not scan it; a map keyed by the keys would have it follow 100k
// more pointers), and each slot holds its installed value packed
// (entry.Packed: one pointer-free string, where an Entry inline is 184 bytes
// of pointers to scan and the objects they point at to mark). The desired
// value is not stored again when it equals the installed one — the usual
// case: it is kept, packed too, in a second arena only while it differs
// (pending, rejected, or not yet installed), which is a few thousand values
// after a change, none at rest. Entries are unpacked only to be written,
// deleted or read back against, into memory each pass reuses
// (entry.Unpacker).

// arenaChunk is the number of elements of one arena chunk.
const arenaChunk = 1024

// arena holds values of T in fixed-size chunks: an element's address stays
// valid while the arena grows (ops of a pass point into it), and a GC cycle
// marks one object per chunk instead of one per element. Freed elements are
// zeroed (so they keep nothing alive) and reused; once nothing is in use the
// chunks but the first are dropped (the first is kept so that a few values
// coming and going, as the pending desired values of every incremental sync
// do, do not allocate a chunk each time).
type arena[T any] struct {
	chunks [][]T
	free   []int32
	next   int32 // elements below next have been handed out at least once
	used   int
}

func (a *arena[T]) at(i int32) *T { return &a.chunks[i/arenaChunk][i%arenaChunk] }

// alloc returns the index of a zero element.
func (a *arena[T]) alloc() int32 {
	a.used++
	if n := len(a.free); n > 0 {
		i := a.free[n-1]
		a.free = a.free[:n-1]
		return i
	}
	i := a.next
	a.next++
	if int(i/arenaChunk) == len(a.chunks) {
		a.chunks = append(a.chunks, make([]T, arenaChunk))
	}
	return i
}

// release zeroes element i and makes it available again.
func (a *arena[T]) release(i int32) {
	var zero T
	*a.at(i) = zero
	a.used--
	if a.used == 0 {
		// Every element handed out is free, and so zero. A new slice of
		// chunks, since the old array would keep the dropped ones alive.
		*a = arena[T]{chunks: [][]T{a.chunks[0]}}
		return
	}
	a.free = append(a.free, i)
}

// Values of slot.want other than 1 + an index into Programmer.wants.
const (
	// wantNone: the key is not desired (the zero value).
	wantNone int32 = 0
	// wantHave: the key is desired as installed (slot.have).
	wantHave int32 = -1
)

// slot is one key's state.
type slot struct {
	key entry.Key
	// have is the installed value, packed, valid when installed is set (for
	// defaults: set only when it differs from the program's default).
	have entry.Packed
	// want is wantNone, wantHave, or 1 + the index in Programmer.wants of
	// the desired value, which differs from have (or nothing is installed).
	want int32
	// count is the index in Programmer.countv of the installed-entries
	// counter of the slot's table.
	count int32
	// next is 1 + the index of the next slot whose key has the same hash
	// (0: none).
	next      int32
	installed bool
	dirty     bool
	// blocked: waits for a member or group (the reason is in
	// Programmer.trouble).
	blocked bool
	// rejected: refused as invalid (the error is in Programmer.trouble).
	rejected bool
}

// slotTrouble is why a slot is blocked or rejected.
type slotTrouble struct {
	blocked  string
	rejected error
}

// setBlocked records why s waits ("": it does not).
func (p *Programmer) setBlocked(s *slot, why string) {
	if why == "" && !s.blocked {
		return
	}
	t := p.trouble[s.key]
	t.blocked, s.blocked = why, why != ""
	p.setTrouble(s, t)
}

// setRejected records why s was refused (nil: it was not).
func (p *Programmer) setRejected(s *slot, err error) {
	if err == nil && !s.rejected {
		return
	}
	t := p.trouble[s.key]
	t.rejected, s.rejected = err, err != nil
	p.setTrouble(s, t)
}

func (p *Programmer) setTrouble(s *slot, t slotTrouble) {
	if t.blocked == "" && t.rejected == nil {
		delete(p.trouble, s.key)
	} else {
		p.trouble[s.key] = t
	}
}

// index maps the hashes of the slots' keys to 1 + their arena index; slots
// whose keys share a hash are chained by slot.next.
type index struct {
	seed maphash.Seed
	m    map[uint64]int32
	// collide, when set (tests), replaces the hash by the key's length
	// modulo collide, so that keys share hashes.
	collide uint64
}

func newIndex() index { return index{seed: maphash.MakeSeed(), m: map[uint64]int32{}} }

func (x *index) hash(k entry.Key) uint64 {
	if x.collide != 0 {
		return uint64(len(k)) % x.collide
	}
	return maphash.String(x.seed, string(k))
}

// slot returns k's slot, making an empty one if there is none.
func (p *Programmer) slot(k entry.Key) *slot {
	if s := p.lookup(k); s != nil {
		return s
	}
	return p.addSlot(k)
}

// addSlot makes an empty slot for k, which has none.
func (p *Programmer) addSlot(k entry.Key) *slot {
	h := p.slots.hash(k)
	i := p.slab.alloc()
	s := p.slab.at(i)
	s.key, s.count, s.next = k, p.counter(k.Container()), p.slots.m[h]
	p.slots.m[h] = i + 1
	return s
}

// lookup returns k's slot, or nil.
func (p *Programmer) lookup(k entry.Key) *slot {
	for i := p.slots.m[p.slots.hash(k)]; i != 0; {
		s := p.slab.at(i - 1)
		if s.key == k {
			return s
		}
		i = s.next
	}
	return nil
}

// remove drops s from the index and frees it.
func (p *Programmer) remove(s *slot) {
	p.setBlocked(s, "")
	p.setRejected(s, nil)
	h := p.slots.hash(s.key)
	for link, i := (*int32)(nil), p.slots.m[h]; i != 0; {
		cur := p.slab.at(i - 1)
		if cur != s {
			link, i = &cur.next, cur.next
			continue
		}
		switch {
		case link != nil:
			*link = s.next
		case s.next != 0:
			p.slots.m[h] = s.next
		default:
			delete(p.slots.m, h)
		}
		p.slab.release(i - 1)
		return
	}
}

// allSlots iterates over the slots in use; the loop body may remove the
// slot it is given.
func (p *Programmer) allSlots() iter.Seq[*slot] {
	return func(yield func(*slot) bool) {
		for i := int32(0); i < p.slab.next; i++ {
			if s := p.slab.at(i); s.key != "" && !yield(s) {
				return
			}
		}
	}
}

// counter returns the index of container's installed-entries counter.
func (p *Programmer) counter(container string) int32 {
	c, ok := p.counts[container]
	if !ok {
		c = int32(len(p.countv))
		p.countv = append(p.countv, 0)
		p.counts[container] = c
	}
	return c
}

// packedWant returns s's desired value packed ("", false: not desired).
func (p *Programmer) packedWant(s *slot) (entry.Packed, bool) {
	switch s.want {
	case wantNone:
		return "", false
	case wantHave:
		return s.have, true
	}
	return *p.wants.at(s.want - 1), true
}

// wantOf returns s's desired value unpacked (ok false: not desired), in u's
// memory (nil: its own).
func (p *Programmer) wantOf(s *slot, u *entry.Unpacker) (e entry.Entry, ok bool) {
	v, ok := p.packedWant(s)
	if !ok {
		return entry.Entry{}, false
	}
	return mustUnpack(u, s.key, v), true
}

// haveOf returns s's installed value unpacked (s.installed must be set), in
// u's memory (nil: its own).
func (p *Programmer) haveOf(s *slot, u *entry.Unpacker) entry.Entry {
	return mustUnpack(u, s.key, s.have)
}

// mustUnpack unpacks a value the programmer stored: only packed values of
// valid entries are, so a failure is a bug.
func mustUnpack(u *entry.Unpacker, k entry.Key, v entry.Packed) entry.Entry {
	e, err := u.Unpack(k, v)
	if err != nil {
		panic(fmt.Sprintf("programmer: stored value of %s: %v", k, err))
	}
	return e
}

// setWant records v as s's desired value.
func (p *Programmer) setWant(s *slot, v entry.Packed) {
	if s.installed && s.have == v {
		p.dropWant(s)
		s.want = wantHave
		return
	}
	if s.want <= 0 {
		s.want = p.wants.alloc() + 1
	}
	*p.wants.at(s.want - 1) = v
}

// dropWant records that s is not desired.
func (p *Programmer) dropWant(s *slot) {
	if s.want > 0 {
		p.wants.release(s.want - 1)
	}
	s.want = wantNone
}

// setHave records e as installed in s, keeping s's desired value.
func (p *Programmer) setHave(s *slot, e entry.Entry) {
	v := e.Pack()
	if s.want == wantHave && s.have == v {
		return
	}
	w, ok := p.spillWant(s)
	s.have, s.installed = v, true
	if ok {
		p.setWant(s, w)
	}
}

// installWant records s's desired value as installed (it has been written).
func (p *Programmer) installWant(s *slot) {
	s.have, s.installed = *p.wants.at(s.want - 1), true
	p.dropWant(s)
	s.want = wantHave
}

// dropHave records that nothing is installed for s, keeping s's desired
// value.
func (p *Programmer) dropHave(s *slot) {
	p.spillWant(s)
	s.have, s.installed = "", false
}

// spillWant moves a desired value that is "as installed" to the wants arena
// before s.have changes, and returns the desired value (ok false: not
// desired).
func (p *Programmer) spillWant(s *slot) (entry.Packed, bool) {
	switch s.want {
	case wantNone:
		return "", false
	case wantHave:
		i := p.wants.alloc()
		*p.wants.at(i) = s.have
		s.want = i + 1
	}
	return *p.wants.at(s.want - 1), true
}

// forget drops a slot that is neither desired nor installed.
func (p *Programmer) forget(s *slot) {
	if s.want == wantNone && !s.installed && !s.dirty && !s.rejected {
		p.remove(s)
	}
}
