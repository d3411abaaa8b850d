package tables

import (
	"sync/atomic"
)

// The data-plane side of the store: state the packet pipeline changes at packet rate (counters, hit
// times, registers). It lives outside the immutable snapshots, indexed by entry handle or counter
// index, and is shared by every snapshot of one pipeline config.
//
// Counters are sharded per worker: worker w only ever writes its own shard, with plain atomic loads and
// stores (no read-modify-write instruction, no shared cache line); reads sum the shards. A control-plane
// "set" does not touch the shards: it records an adjustment so that sum + adjustment equals the value set.

const (
	chunkBits = 10
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1
)

// counterCell is one packets/bytes pair.
type counterCell struct {
	pkts  atomic.Uint64
	bytes atomic.Uint64
}

func (c *counterCell) add(b uint64) {
	c.pkts.Store(c.pkts.Load() + 1)
	c.bytes.Store(c.bytes.Load() + b)
}

// CounterValue is a counter's packets and bytes.
type CounterValue struct {
	Packets, Bytes uint64
}

// slotChunk holds the data-plane state of chunkSize consecutive handles.
type slotChunk struct {
	lastHit [chunkSize]atomic.Int64
	profile [chunkSize]atomic.Uint32
	adj     []counterCell // chunkSize, nil if the table has no direct counter
	shards  []counterCell // workers*chunkSize
}

// tableRuntime is the per-table data-plane state, shared by all snapshots of one pipeline config.
type tableRuntime struct {
	workers int
	direct  bool
	chunks  atomic.Pointer[[]*slotChunk]

	// Writer-side slot allocation (under Store.mu).
	next       uint32
	free       []uint32
	quarantine []quarantined
	learner    *LearnerConfig

	// Writer-side entry allocation (under Store.mu): the slab new entries go to (slab.go).
	slab     *entrySlab
	slabUsed int
	retired  []*entrySlab // former current slabs not checked for compaction yet

	// versioned lists identities that got a version since they were indexed, oldest first, for
	// collapsing (versions.go; under Store.mu). Entries may be stale: collapse checks each.
	versioned []versionedRec
}

// versionedRec is an identity that got its first version at time at (Store.Now).
type versionedRec struct {
	e  *Entry
	at int64
}

type quarantined struct {
	h  uint32
	at int64
}

func newTableRuntime(workers int, direct bool) *tableRuntime {
	rt := &tableRuntime{workers: workers, direct: direct}
	empty := []*slotChunk{}
	rt.chunks.Store(&empty)
	return rt
}

func (rt *tableRuntime) chunk(h Handle) *slotChunk {
	cs := *rt.chunks.Load()
	i := int(h >> chunkBits)
	if i >= len(cs) {
		return nil
	}
	return cs[i]
}

// alloc returns a free handle; released handles are reused after grace nanoseconds, so that a
// packet still working on an older snapshot never counts into a new entry.
func (rt *tableRuntime) alloc(now, grace int64) Handle {
	for len(rt.quarantine) > 0 && now-rt.quarantine[0].at >= grace {
		rt.free = append(rt.free, rt.quarantine[0].h)
		rt.quarantine = rt.quarantine[1:]
	}
	var h uint32
	if n := len(rt.free); n > 0 {
		h = rt.free[n-1]
		rt.free = rt.free[:n-1]
	} else {
		h = rt.next
		rt.next++
		cs := *rt.chunks.Load()
		if int(h>>chunkBits) >= len(cs) {
			c := &slotChunk{}
			if rt.direct {
				c.adj = make([]counterCell, chunkSize)
				c.shards = make([]counterCell, rt.workers*chunkSize)
			}
			ncs := make([]*slotChunk, len(cs)+1)
			copy(ncs, cs)
			ncs[len(cs)] = c
			rt.chunks.Store(&ncs)
		}
	}
	c := rt.chunk(Handle(h))
	i := h & chunkMask
	c.lastHit[i].Store(now)
	c.profile[i].Store(0)
	if rt.direct {
		rt.setCounter(Handle(h), CounterValue{})
	}
	return Handle(h)
}

// unalloc returns a handle that was never published (rolled back): reusable at once.
func (rt *tableRuntime) unalloc(h Handle) { rt.free = append(rt.free, uint32(h)) }

func (rt *tableRuntime) release(h Handle, now int64) {
	rt.quarantine = append(rt.quarantine, quarantined{h: uint32(h), at: now})
}

func (rt *tableRuntime) counter(h Handle) CounterValue {
	c := rt.chunk(h)
	if c == nil || c.adj == nil {
		return CounterValue{}
	}
	i := int(h & chunkMask)
	v := CounterValue{Packets: c.adj[i].pkts.Load(), Bytes: c.adj[i].bytes.Load()}
	for w := 0; w < rt.workers; w++ {
		s := &c.shards[w*chunkSize+i]
		v.Packets += s.pkts.Load()
		v.Bytes += s.bytes.Load()
	}
	return v
}

func (rt *tableRuntime) setCounter(h Handle, v CounterValue) {
	c := rt.chunk(h)
	if c == nil || c.adj == nil {
		return
	}
	i := int(h & chunkMask)
	var sp, sb uint64
	for w := 0; w < rt.workers; w++ {
		s := &c.shards[w*chunkSize+i]
		sp += s.pkts.Load()
		sb += s.bytes.Load()
	}
	c.adj[i].pkts.Store(v.Packets - sp)
	c.adj[i].bytes.Store(v.Bytes - sb)
}

// counterArray is an indexed counter extern.
type counterArray struct {
	info    *CounterInfo
	workers int
	adj     []counterCell
	shards  []counterCell // workers*size
}

func newCounterArray(info *CounterInfo, workers int) *counterArray {
	return &counterArray{info: info, workers: workers, adj: make([]counterCell, info.Size), shards: make([]counterCell, int64(workers)*info.Size)}
}

func (c *counterArray) get(i int) CounterValue {
	v := CounterValue{Packets: c.adj[i].pkts.Load(), Bytes: c.adj[i].bytes.Load()}
	n := len(c.adj)
	for w := 0; w < c.workers; w++ {
		s := &c.shards[w*n+i]
		v.Packets += s.pkts.Load()
		v.Bytes += s.bytes.Load()
	}
	return v
}

func (c *counterArray) set(i int, v CounterValue) {
	var sp, sb uint64
	n := len(c.adj)
	for w := 0; w < c.workers; w++ {
		s := &c.shards[w*n+i]
		sp += s.pkts.Load()
		sb += s.bytes.Load()
	}
	c.adj[i].pkts.Store(v.Packets - sp)
	c.adj[i].bytes.Store(v.Bytes - sb)
}

// registerArray is a register extern. Cells of bit<W>/int<W> registers up to 64 bits are atomic
// words the pipeline reads and writes directly; wider or structured cells hold immutable values
// swapped atomically.
type registerArray struct {
	info *RegisterInfo
	u64  []atomic.Uint64
	wide []atomic.Pointer[[]byte]
	data []atomic.Pointer[registerData]
}

func newRegisterArray(info *RegisterInfo) *registerArray {
	r := &registerArray{info: info}
	switch {
	case info.Bitwidth > 0 && info.Bitwidth <= 64:
		r.u64 = make([]atomic.Uint64, info.Size)
	case info.Bitwidth > 64:
		r.wide = make([]atomic.Pointer[[]byte], info.Size)
	default:
		r.data = make([]atomic.Pointer[registerData], info.Size)
	}
	return r
}

// runtime is the data-plane state of one pipeline config.
type runtime struct {
	workers   int
	tables    []*tableRuntime
	counters  []*counterArray
	registers []*registerArray
	tail      *ovLink // the end of the config's overlay chain (writer only, under Store.mu; versions.go)
}

func newRuntime(s *Schema, workers int, learners map[string]LearnerConfig) *runtime {
	rt := &runtime{workers: workers, tail: new(ovLink)}
	for _, t := range s.Tables {
		tr := newTableRuntime(workers, t.DirectCounter != nil)
		if lc, ok := learners[t.Name]; ok {
			c := lc
			tr.learner = &c
		}
		rt.tables = append(rt.tables, tr)
	}
	for _, c := range s.Counters {
		rt.counters = append(rt.counters, newCounterArray(c, workers))
	}
	for _, r := range s.Registers {
		rt.registers = append(rt.registers, newRegisterArray(r))
	}
	return rt
}
