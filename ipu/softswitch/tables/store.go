package tables

import (
	crand "crypto/rand"
	"encoding/binary"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
)

// LearnerConfig marks a table as a PNA add_on_miss (learner) table: the data plane inserts entries with
// Learn, and a learned entry is deleted by Sweep once it has not been refreshed (Touch) for the timeout
// of its expire-time profile.
type LearnerConfig struct {
	// Profiles[i] is the timeout of expire_time_profile_id i. A zero timeout never expires.
	Profiles []time.Duration
}

// Options configure a Store.
type Options struct {
	// Workers is the number of data-plane workers that update counters (worker ids 0..Workers-1). Each
	// worker id must be used by one goroutine at a time. Default: GOMAXPROCS.
	Workers int
	// Learners maps table names to their learner configuration; applied to every pipeline config that
	// has a table of that name.
	Learners map[string]LearnerConfig
	// RequireCanonical rejects bytestrings that are not in canonical (shortest) form with
	// INVALID_ARGUMENT. P4Runtime 1.4 asks servers to accept any length whose value fits, so it is off by
	// default; clients use it in tests to prove they send canonical values.
	RequireCanonical bool
	// Now returns monotonic nanoseconds; default Nanotime. The pipeline must use Store.Now for Touch.
	Now func() int64
	// HandleGrace is how long a deleted entry's handle stays unused (default 1s).
	HandleGrace time.Duration
	// ChunkSize is how many updates of a CONTINUE_ON_ERROR batch are applied per hold of the store
	// lock; between chunks data-plane learning proceeds (default 1024).
	ChunkSize int
	// CollapseBudget is how many modified entries one Sweep folds back from two slots (the identity
	// in the trie and its newest version) into one, a path copy each (versions.go), under the store
	// lock: 64 hold it ≈ 0.1–0.25 ms, so a control-plane write never waits long behind a sweep (at the
	// server's 200ms sweep period, 320 entries/s). Default 64; a negative value disables collapsing.
	CollapseBudget int
	// CollapseAge is how long an entry stays versioned before Sweep may collapse it (default 1s): an
	// entry modified again meanwhile costs no path copy.
	CollapseAge time.Duration
}

var processStart = time.Now()

// Nanotime returns monotonic nanoseconds since process start.
func Nanotime() int64 { return int64(time.Since(processStart)) }

// Store holds the forwarding state: immutable snapshots for readers, one writer at a time.
//
// The packet pipeline calls Load once per packet (or burst) and performs every lookup on the returned
// *State without locks. Control-plane writes build the next State by path copying (cost proportional
// to the change, not to table size) and publish it with one atomic store.
type Store struct {
	opts Options
	seed uint64

	writeMu sync.Mutex // serialises control-plane batches (strict serializability)
	mu      sync.Mutex // serialises every change of state (batches chunk-wise, learning, sweeping)

	dp atomic.Pointer[State] // data-plane view
	rv atomic.Pointer[State] // read view: the last complete control-plane batch

	pending *State // config saved by VERIFY_AND_SAVE, not committed (under mu)
	inBatch bool   // a chunked batch is between chunks (under mu)
	gen     uint64 // last edit generation handed out (under mu)

	listeners []func(*State)

	// books is the slab bookkeeping lists' memory, handed from one transaction to the next (under mu):
	// a batch of 1000 modifies otherwise grows two fresh lists of 1000 pointers each.
	books txnBooks
}

// txnBooks are a transaction's lists of entries installed and uninstalled (slab.go).
type txnBooks struct {
	borns, deaths []*Entry
}

// State is an immutable snapshot of the forwarding state of one pipeline config. Nil Schema means no
// pipeline config has been committed.
type State struct {
	Schema   *Schema
	gen      uint64
	seed     uint64
	tables   []*Table
	profiles []*Profile
	digests  map[uint32]*p4.DigestEntry_Config
	portDown map[uint32]bool
	rt       *runtime
	cookie   *p4.ForwardingPipelineConfig_Cookie
	devCfg   []byte
	store    *Store
	ovs      *ovLink // the config's overlay chain as of this state (versions.go)
}

// NewStore returns an empty store (no pipeline config).
func NewStore(opts Options) *Store {
	if opts.Workers <= 0 {
		opts.Workers = goruntime.GOMAXPROCS(0)
	}
	if opts.Now == nil {
		opts.Now = Nanotime
	}
	if opts.HandleGrace <= 0 {
		opts.HandleGrace = time.Second
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 1024
	}
	if opts.CollapseBudget == 0 {
		opts.CollapseBudget = 64
	}
	if opts.CollapseAge <= 0 {
		opts.CollapseAge = time.Second
	}
	if opts.Learners == nil {
		opts.Learners = map[string]LearnerConfig{}
	}
	var b [8]byte
	_, _ = crand.Read(b[:])
	s := &Store{opts: opts, seed: binary.LittleEndian.Uint64(b[:])}
	empty := &State{store: s, seed: s.seed}
	s.dp.Store(empty)
	s.rv.Store(empty)
	return s
}

// Options returns the store's options.
func (s *Store) Options() Options { return s.opts }

// Workers returns the number of counter shards.
func (s *Store) Workers() int { return s.opts.Workers }

// Now returns the store clock (monotonic nanoseconds).
func (s *Store) Now() int64 { return s.opts.Now() }

// Load returns the current data-plane snapshot. It never blocks.
func (s *Store) Load() *State { return s.dp.Load() }

// ReadView returns the snapshot P4Runtime reads see: the last complete batch (and, after
// VERIFY_AND_SAVE, the saved config's state).
func (s *Store) ReadView() *State { return s.rv.Load() }

// OnCommit registers f to be called (under the store lock, so keep it short) whenever a new
// pipeline config becomes the data-plane config.
func (s *Store) OnCommit(f func(*State)) {
	s.mu.Lock()
	s.listeners = append(s.listeners, f)
	s.mu.Unlock()
}

// Table returns the table with the given index in this snapshot.
func (st *State) Table(i int) *Table { return st.tables[i] }

// TableByID returns the table with the given P4Info id, or nil.
func (st *State) TableByID(id uint32) *Table {
	if st.Schema == nil {
		return nil
	}
	ti := st.Schema.Table(id)
	if ti == nil {
		return nil
	}
	return st.tables[ti.Index]
}

// TableByName returns the table with the given name, or nil.
func (st *State) TableByName(name string) *Table {
	if st.Schema == nil {
		return nil
	}
	ti := st.Schema.TableByName(name)
	if ti == nil {
		return nil
	}
	return st.tables[ti.Index]
}

// Profile returns the action profile with the given index.
func (st *State) Profile(i int) *Profile { return st.profiles[i] }

// Cookie returns the pipeline cookie (nil if none was given).
func (st *State) Cookie() *p4.ForwardingPipelineConfig_Cookie { return st.cookie }

// DeviceConfig returns the opaque p4_device_config.
func (st *State) DeviceConfig() []byte { return st.devCfg }

// DigestConfig returns the configuration of an enabled digest, or nil when disabled.
func (st *State) DigestConfig(id uint32) *p4.DigestEntry_Config { return st.digests[id] }

// PortDown reports whether port is marked down (watch ports of selector members).
func (st *State) PortDown(port uint32) bool { return st.portDown[port] }

// Resolve returns the action to run for entry e (as st sees it, see State.Version): its own action, its member's, or the member a group
// or one-shot set picks with hash (weighted, skipping members whose watch port is down). It returns
// nil for a group with no live member (the pipeline then runs the table's empty-group behaviour,
// NoAction). It does not allocate.
func (st *State) Resolve(e *Entry, hash uint32) *Action {
	e = st.version(e)
	switch e.Kind {
	case ActDirect:
		return &e.Action
	case ActMember:
		if m := st.profiles[e.Table.Profile.Index].Member(e.MemberID); m != nil {
			return &m.Action
		}
	case ActGroup:
		p := st.profiles[e.Table.Profile.Index]
		g := p.Group(e.GroupID)
		if g == nil {
			return nil
		}
		i := pick(g.Members, g.cum, hash, st.portDown)
		if i < 0 {
			return nil
		}
		if m := p.Member(g.Members[i].ID); m != nil {
			return &m.Action
		}
	case ActOneShot:
		i := pick(e.OneShot.Members, e.OneShot.cum, hash, st.portDown)
		if i >= 0 {
			return &e.OneShot.Actions[i]
		}
	}
	return nil
}

// Touch records a hit (or PNA restart_expire_timer) on entry handle h of table t at time now
// (Store.Now). The pipeline calls it for tables with idle timeout or learning. It does not allocate.
func (st *State) Touch(t *Table, h Handle, now int64) {
	c := t.rt.chunk(h)
	if c == nil {
		return
	}
	p := &c.lastHit[h&chunkMask]
	if p.Load() < now {
		p.Store(now)
	}
}

// SetExpiryProfile changes the expire-time profile of a learned entry (PNA set_entry_expire_time).
func (st *State) SetExpiryProfile(t *Table, h Handle, profile uint8) {
	if c := t.rt.chunk(h); c != nil {
		c.profile[h&chunkMask].Store(uint32(profile))
	}
}

// AddDirect adds one packet of the given length to entry handle h's direct counter, in worker w's
// shard. No-op for tables without a direct counter. It does not allocate.
func (st *State) AddDirect(w int, t *Table, h Handle, bytes uint64) {
	c := t.rt.chunk(h)
	if c == nil || c.shards == nil {
		return
	}
	c.shards[w*chunkSize+int(h&chunkMask)].add(bytes)
}

// DirectCounter returns the current value of entry handle h's direct counter.
func (st *State) DirectCounter(t *Table, h Handle) CounterValue { return t.rt.counter(h) }

// CounterIndex returns the index of the indexed counter with the given name (for AddCounter), or -1.
func (st *State) CounterIndex(name string) int {
	if st.Schema == nil {
		return -1
	}
	for _, c := range st.Schema.Counters {
		if c.Name == name {
			return c.Index
		}
	}
	return -1
}

// AddCounter adds one packet of the given length at index i of indexed counter c (CounterInfo.Index),
// in worker w's shard. Out-of-range indexes are ignored (P4 semantics for counters). No allocation.
func (st *State) AddCounter(w, c, i int, bytes uint64) {
	a := st.rt.counters[c]
	n := len(a.adj)
	if uint(i) >= uint(n) {
		return
	}
	a.shards[w*n+i].add(bytes)
}

// Counter returns the value at index i of indexed counter c.
func (st *State) Counter(c, i int) CounterValue { return st.rt.counters[c].get(i) }

// RegisterRead returns cell i of register r (RegisterInfo.Index) for registers of up to 64 bits.
// Out-of-range reads return 0.
func (st *State) RegisterRead(r, i int) uint64 {
	a := st.rt.registers[r]
	if uint(i) >= uint(len(a.u64)) {
		return 0
	}
	return a.u64[i].Load()
}

// RegisterWrite sets cell i of register r (up to 64 bits; value truncated to the register width).
func (st *State) RegisterWrite(r, i int, v uint64) {
	a := st.rt.registers[r]
	if uint(i) >= uint(len(a.u64)) {
		return
	}
	if w := a.info.Bitwidth; w < 64 {
		v &= 1<<uint(w) - 1
	}
	a.u64[i].Store(v)
}

// nextGen hands out a new edit generation (under mu).
func (s *Store) nextGen() uint64 {
	s.gen++
	return s.gen
}

// derive returns a mutable shallow copy of st owned by gen.
func (st *State) derive(gen uint64) *State {
	c := *st
	c.gen = gen
	if st.rt != nil {
		c.ovs = st.rt.tail
	}
	c.tables = append([]*Table(nil), st.tables...)
	c.profiles = append([]*Profile(nil), st.profiles...)
	return &c
}

func (st *State) ownTable(i int) *Table {
	t := st.tables[i]
	if t.gen != st.gen {
		t = t.clone(st.gen)
		st.tables[i] = t
	}
	return t
}

func (st *State) ownProfile(i int) *Profile {
	p := st.profiles[i]
	if p.gen != st.gen {
		p = p.clone(st.gen)
		st.profiles[i] = p
	}
	return p
}

// newState builds an empty state for schema.
func (s *Store) newState(schema *Schema, gen uint64) *State {
	st := &State{Schema: schema, gen: gen, seed: s.seed, store: s, digests: map[uint32]*p4.DigestEntry_Config{}, portDown: map[uint32]bool{}}
	st.rt = newRuntime(schema, s.opts.Workers, s.opts.Learners)
	st.ovs = st.rt.tail
	for _, ti := range schema.Tables {
		t := &Table{Info: ti, gen: gen, seed: s.seed, rt: st.rt.tables[ti.Index]}
		if _, ok := s.opts.Learners[ti.Name]; ok && ti.ExactOnly {
			t.live = newLiveTable(s.seed, ti.validMask)
		}
		t.def = s.initialDefault(t, s.opts.Now())
		st.tables = append(st.tables, t)
	}
	for _, pi := range schema.Profiles {
		st.profiles = append(st.profiles, &Profile{Info: pi, gen: gen, seed: s.seed})
	}
	return st
}

// initialDefault builds a table's default entry from the P4Info (handle allocated once per table).
func (s *Store) initialDefault(t *Table, now int64) *Entry {
	e := &Entry{Table: t.Info, IsDefault: true, Kind: ActDirect}
	if t.def != nil {
		e.Handle = t.def.Handle
	} else {
		e.Handle = t.rt.alloc(now, 0)
	}
	if d := t.Info.InitialDefault; d != nil && d.ActionId != 0 {
		ref := t.Info.Actions[d.ActionId]
		e.Action = Action{ID: d.ActionId, Info: ref.Action, Params: make([]byte, ref.Action.ParamsLen)}
		for _, arg := range d.Arguments {
			if i, ok := ref.Action.paramByID[arg.ParamId]; ok {
				p := ref.Action.Params[i]
				_ = putBits(e.Action.Params[p.Offset:p.Offset+p.Width], arg.Value, p.Bitwidth, false, desc{a: "initial default"})
			}
		}
	} else if t.Info.ConstDefaultActionID != 0 {
		ref := t.Info.Actions[t.Info.ConstDefaultActionID]
		e.Action = Action{ID: ref.Action.ID, Info: ref.Action, Params: make([]byte, ref.Action.ParamsLen)}
	}
	if t.Info.ConstDefaultActionID != 0 || t.Info.Profile != nil {
		e.IsConst = true
	}
	return e
}

// SetPortDown marks a port down (true) or up; selector members watching a down port are skipped.
func (s *Store) SetPortDown(port uint32, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	apply := func(st *State) *State {
		if st == nil || st.portDown[port] == down {
			return st
		}
		n := st.derive(s.nextGen())
		n.portDown = make(map[uint32]bool, len(st.portDown)+1)
		for k, v := range st.portDown {
			n.portDown[k] = v
		}
		if down {
			n.portDown[port] = true
		} else {
			delete(n.portDown, port)
		}
		return n
	}
	n := apply(s.dp.Load())
	s.dp.Store(n)
	if s.pending != nil {
		s.pending = apply(s.pending)
		s.rv.Store(s.pending)
	} else if !s.inBatch {
		s.rv.Store(n)
	}
}
