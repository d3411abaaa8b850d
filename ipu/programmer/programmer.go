package programmer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"

	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// Target is what the programmer needs from a P4Runtime session
// (*p4rt.Client implements it).
type Target interface {
	Status() p4rt.Status
	Changed() <-chan struct{}
	// WriteEncoded sends n updates encoded by Info.AppendUpdate in one
	// Write with the given atomicity. It must not keep updates after it
	// returns (the programmer reuses the buffer).
	WriteEncoded(ctx context.Context, updates []byte, n int, atomicity p4v1.WriteRequest_Atomicity) error
	Read(ctx context.Context, entities []*p4v1.Entity, fn func(*p4v1.Entity) error) error
	EnsurePipeline(ctx context.Context, p p4rt.Pipeline) (p4rt.PipelineResult, error)
}

// Config configures a Programmer.
type Config struct {
	// Pipeline is pushed to the target when it runs another one (or none).
	Pipeline p4rt.Pipeline
	// BatchSize is the number of updates per Write RPC (default 1000) when
	// writes are not atomic.
	BatchSize int
	// TableOrder ranks the tables by write order (see "Write order" in
	// doc.go): inserts and modifies go rank by rank, deletes in the reverse
	// order, each rank's action profiles (members, then groups) before its
	// table entries. Empty: every table has the same rank. When set, every
	// table the programmer writes must have a rank (k8s.p4's is
	// p4src.WriteOrderNames()).
	TableOrder [][]string
	// Atomic sends each pass as DATAPLANE_ATOMIC writes (one per
	// MaxAtomicBytes of updates, in write order), for targets that apply such
	// a write as one change (p4rt.TargetProfile.SupportsAtomicWrites). A
	// target that refuses the atomicity is then written in order instead.
	Atomic bool
	// MaxAtomicBytes bounds the encoded updates of one atomic write (default
	// 64 MiB; the embedded target accepts 256 MiB requests). A pass larger
	// than that is split into ordered atomic chunks.
	MaxAtomicBytes int
	// DeleteGrace is how long a non-atomic pass waits between its last insert
	// or modify and its first delete, so that packets that started walking
	// entries about to be deleted (before the modifies that stopped pointing
	// at them) finish first (0: no wait).
	DeleteGrace time.Duration
	// UnmanagedTables are tables the programmer never reads, writes or
	// deletes (for example learner tables the dataplane fills itself).
	UnmanagedTables []string
	// RetryMin and RetryMax bound the backoff between retries of failed
	// updates (defaults 50ms and 30s).
	RetryMin, RetryMax time.Duration
	// MaxAttempts bounds the attempts of an update that fails transiently
	// within one pass (default 4); it is tried again on the next pass.
	MaxAttempts int
	// Logger (nil: no logging).
	Logger *zap.Logger
	// Registerer receives the programmer's metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// ErrNotPrimary is returned by Sync while the client is not primary: the
// desired state is kept and applied when it becomes primary again (Run).
var ErrNotPrimary = p4rt.ErrNotPrimary

// Result summarises one Sync (or retry pass).
type Result struct {
	Inserted, Modified, Deleted int
	// Writes is the number of Write RPCs sent.
	Writes int
	// Pending counts entries that still differ from desired and will be
	// retried (table full, transient errors, dependencies not installed).
	Pending int
	// Rejected counts desired entries refused as invalid (by the P4Info or
	// the target); they are retried only when their desired value changes or
	// at the next reconcile.
	Rejected int
	// Reconciled is true when the pass started with a read-back reconcile.
	Reconciled bool
}

// Programmer keeps a target equal to the desired entries. It is safe for
// concurrent use; Sync calls are serialised.
type Programmer struct {
	target    Target
	info      *p4rt.Info
	cfg       Config
	log       *zap.Logger
	m         *metrics
	unmanaged map[string]bool

	mu sync.Mutex
	// slots indexes, per key, the slot in slab that holds what is desired
	// and what is installed (state.go says why so).
	slots index
	slab  arena[slot]
	// wants holds the desired values that differ from the installed ones.
	wants arena[entry.Packed]
	// unpacked holds the entries a pass unpacked (to write, delete or
	// compare them): reset when the pass's ops are finished.
	unpacked entry.Unpacker
	// dirty lists the slots whose desired and installed values may differ:
	// the work of the next pass.
	dirty     []*slot
	nRejected int
	// trouble says why the slots flagged blocked or rejected are (few: kept
	// out of the slots, which would carry the fields for every key).
	trouble map[entry.Key]slotTrouble
	// countv counts installed entries per table / profile; counts indexes
	// it by name.
	countv     []int
	counts     map[string]int32
	order      writeOrder
	rawDeletes [][]*p4v1.Entity // by stage
	// pendingRefs holds, while an atomic write is encoded, the members and
	// groups written earlier in it (so entries may refer to them).
	pendingRefs map[entry.Key]bool
	// scratch holds the encode buffers of atomic writes for reuse.
	scratch encodeScratch
	// atomicRefused is set when the target refused an atomic write as
	// unsupported: it is written in order from then on.
	atomicRefused bool
	ids           *ids
	reconciled    bool
	epoch         uint64
	lastSet       *entry.Set
	lastGen       uint64
	lastErr       error
	closer        func() error
	// hasDesired is set by the first Sync: until then the programmer
	// reads the target but never writes (a restarted manager must not
	// delete what it has not yet been told to keep).
	hasDesired bool
	// pipelineEpoch is the session in which the pipeline was last ensured.
	pipelineEpoch uint64
}

func (p *Programmer) markDirty(s *slot) {
	if !s.dirty {
		s.dirty = true
		p.dirty = append(p.dirty, s)
	}
}

// New returns a programmer for target, which runs the pipeline described by
// info and cfg.Pipeline.
func New(target Target, info *p4rt.Info, cfg Config) (*Programmer, error) {
	if target == nil || info == nil {
		return nil, errors.New("programmer: needs a target and a P4Info")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 50 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(30*time.Second, cfg.RetryMin)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.MaxAtomicBytes <= 0 {
		cfg.MaxAtomicBytes = 64 << 20
	}
	p := &Programmer{
		target: target, info: info, cfg: cfg, log: cfg.Logger, m: newMetrics(cfg.Registerer),
		unmanaged: map[string]bool{}, slots: newIndex(), trouble: map[entry.Key]slotTrouble{}, counts: map[string]int32{}, ids: newIDs(),
	}
	for _, t := range cfg.UnmanagedTables {
		if _, ok := info.Table(t); !ok {
			return nil, fmt.Errorf("programmer: unmanaged table %q is not in the P4Info", t)
		}
		p.unmanaged[t] = true
	}
	ord, err := newWriteOrder(info, cfg.TableOrder, p.unmanaged)
	if err != nil {
		return nil, err
	}
	p.order = ord
	p.rawDeletes = make([][]*p4v1.Entity, ord.numStages())
	return p, nil
}

// Sync makes the target equal to desired: it records desired (a later
// retry or reconcile works from it), reconciles first if the session is new,
// then writes the differences. desired is read only during the call; when
// the same Set is passed again after in-place changes, only the changed
// keys are compared.
//
// It returns ErrNotPrimary when not primary (nothing is written), and a
// *SyncError when some entries could not be installed (the rest are; Run
// retries the failed ones).
func (p *Programmer) Sync(ctx context.Context, desired *entry.Set) (Result, error) {
	start := time.Now()
	defer func() { p.m.syncSeconds.Observe(time.Since(start).Seconds()) }()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.absorb(desired)
	p.hasDesired = true
	return p.pass(ctx)
}

// absorb records desired as what is wanted, marking what changed dirty.
// Values are compared and kept packed.
func (p *Programmer) absorb(desired *entry.Set) {
	set := func(k entry.Key) {
		s := p.lookup(k)
		var held entry.Packed // what is desired now ("": nothing)
		if s != nil {
			held, _ = p.packedWant(s)
		}
		v, present, changed := desired.Changed(k, held)
		switch {
		case !changed:
			return
		case present:
			if s == nil {
				s = p.addSlot(k)
			}
			p.setWant(s, v)
		default:
			p.dropWant(s)
		}
		if s.rejected {
			p.setRejected(s, nil)
			p.nRejected--
		}
		p.markDirty(s)
	}
	if desired == p.lastSet {
		// The keys are read before anything changes desired (a Sync holds it for the call).
		if keys, ok := desired.ChangedSinceView(p.lastGen); ok {
			for _, k := range keys {
				set(k)
			}
			p.lastGen = desired.Generation()
			return
		}
	}
	for k := range desired.Keys() {
		set(k)
	}
	for s := range p.allSlots() {
		if s.want != wantNone && !desired.Has(s.key) {
			set(s.key)
		}
	}
	p.lastSet, p.lastGen = desired, desired.Generation()
}

// pass reconciles if needed and processes dirty keys. Called with mu held.
func (p *Programmer) pass(ctx context.Context) (Result, error) {
	var res Result
	st := p.target.Status()
	if !st.Primary {
		p.setReady(false)
		return res, fmt.Errorf("programmer: %w (%d entries waiting)", ErrNotPrimary, len(p.dirty))
	}
	if !p.hasDesired {
		// Nothing to compare with yet: make sure the target runs our
		// pipeline, but read (and match member and group ids to names)
		// only once the first desired state is known.
		if p.pipelineEpoch != st.Epoch {
			if _, err := p.target.EnsurePipeline(ctx, p.cfg.Pipeline); err != nil {
				return res, fmt.Errorf("programmer: pipeline: %w", err)
			}
			p.pipelineEpoch = st.Epoch
		}
		return res, nil
	}
	if !p.reconciled || st.Epoch != p.epoch {
		p.setReady(false)
		if err := p.reconcile(ctx, st.Epoch); err != nil {
			return res, err
		}
		res.Reconciled = true
	}
	p.setReady(true)
	err := p.process(ctx, &res)
	res.Pending = len(p.dirty)
	res.Rejected = p.nRejected
	p.m.pending.Set(float64(len(p.dirty)))
	for t, i := range p.counts {
		p.m.installed.WithLabelValues(t).Set(float64(p.countv[i]))
	}
	p.lastErr = err
	if errors.Is(err, ErrNotPrimary) {
		p.setReady(false)
	}
	return res, err
}

func (p *Programmer) setReady(r bool) {
	if r {
		p.m.ready.Set(1)
	} else {
		p.m.ready.Set(0)
	}
}

// Ready reports whether the programmer is primary and has reconciled the
// target with a desired state in the current session (false before the
// first Sync, and whenever another controller is primary).
func (p *Programmer) Ready() bool {
	st := p.target.Status()
	p.mu.Lock()
	defer p.mu.Unlock()
	return st.Primary && p.reconciled && st.Epoch == p.epoch
}

// InSync reports whether everything desired is installed (nothing pending
// or rejected) as of the last pass.
func (p *Programmer) InSync() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.dirty) == 0 && p.nRejected == 0
}

// Installed returns a copy of what the programmer believes is installed
// (default actions only where they differ from the program's).
func (p *Programmer) Installed() *entry.Set {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, _ := entry.NewSet()
	for sl := range p.allSlots() {
		if !sl.installed {
			continue
		}
		e := p.haveOf(sl, nil)
		if _, err := s.Put(e); err != nil {
			p.log.Error("Installed entry does not validate", zap.Stringer("entry", e), zap.Error(err))
		}
	}
	return s
}

// Rejected returns the desired entries refused as invalid, with the reason.
func (p *Programmer) Rejected() map[entry.Key]error {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[entry.Key]error, p.nRejected)
	for s := range p.allSlots() {
		if s.rejected {
			out[s.key] = p.trouble[s.key].rejected
		}
	}
	return out
}

// Run keeps the target in sync in the background until ctx is done:
// after the client (re)gains primary it reconciles and applies the last
// desired state, and it retries pending entries with backoff.
func (p *Programmer) Run(ctx context.Context) error {
	bo := p.cfg.RetryMin
	for {
		changed := p.target.Changed()
		st := p.target.Status()
		p.mu.Lock()
		work := st.Primary && (!p.hasDesired && p.pipelineEpoch != st.Epoch ||
			p.hasDesired && (!p.reconciled || st.Epoch != p.epoch || len(p.dirty) > 0 || p.rawPending()))
		p.mu.Unlock()
		var retry <-chan time.Time
		if work {
			p.mu.Lock()
			res, err := p.pass(ctx)
			p.mu.Unlock()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			switch {
			case err == nil && res.Pending == 0:
				bo = p.cfg.RetryMin
			default:
				if err != nil && !errors.Is(err, ErrNotPrimary) {
					p.log.Warn("Background sync incomplete; retrying", zap.Error(err), zap.Int("pending", res.Pending),
						zap.Duration("after", bo))
				}
				retry = time.After(bo)
				bo = min(bo*2, p.cfg.RetryMax)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-retry:
		}
	}
}

func (p *Programmer) rawPending() bool {
	for _, l := range p.rawDeletes {
		if len(l) > 0 {
			return true
		}
	}
	return false
}

// SyncError reports entries a pass could not install, by table and code.
type SyncError struct {
	// Failures counts failed entries by table (or action profile) and gRPC
	// code.
	Failures map[string]map[codes.Code]int
	// TableFull lists the tables and profiles that refused inserts as full.
	TableFull []string
	// Examples holds one message per table and code.
	Examples []string
	// Fatal is set when the pass stopped early (not primary, target gone).
	Fatal error
	// Held is set when the pass stopped after a stage whose updates kept
	// failing transiently: the later stages wait for it (write order).
	Held bool
}

func (e *SyncError) Error() string {
	var parts []string
	tables := make([]string, 0, len(e.Failures))
	for t := range e.Failures {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		var cs []string
		for c, n := range e.Failures[t] {
			cs = append(cs, fmt.Sprintf("%d %s", n, c))
		}
		sort.Strings(cs)
		parts = append(parts, fmt.Sprintf("%s: %s", t, strings.Join(cs, ", ")))
	}
	msg := "programmer: entries not installed: " + strings.Join(parts, "; ")
	if len(e.TableFull) > 0 {
		msg += fmt.Sprintf(" (full: %s)", strings.Join(e.TableFull, ", "))
	}
	if len(e.Examples) > 0 {
		msg += fmt.Sprintf(" (e.g. %s)", e.Examples[0])
	}
	if e.Fatal != nil {
		msg += fmt.Sprintf("; stopped: %v", e.Fatal)
	}
	if e.Held {
		msg += "; later write stages held back until these succeed"
	}
	return msg
}

func (e *SyncError) Unwrap() error { return e.Fatal }

func (e *SyncError) add(table string, c codes.Code, example string) {
	if e.Failures == nil {
		e.Failures = map[string]map[codes.Code]int{}
	}
	if e.Failures[table] == nil {
		e.Failures[table] = map[codes.Code]int{}
	}
	if e.Failures[table][c] == 0 {
		e.Examples = append(e.Examples, example)
	}
	e.Failures[table][c]++
	if c == codes.ResourceExhausted && !contains(e.TableFull, table) {
		e.TableFull = append(e.TableFull, table)
	}
}

func (e *SyncError) empty() bool { return len(e.Failures) == 0 && e.Fatal == nil && !e.Held }

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// WaitReady blocks until the client is primary and the target runs our
// pipeline (ensuring it if Run is not), and, once a desired state has been
// given, until the target has been reconciled; or until ctx is done.
func (p *Programmer) WaitReady(ctx context.Context) error {
	for {
		changed := p.target.Changed()
		if st := p.target.Status(); st.Primary {
			p.mu.Lock()
			var err error
			done := func() bool {
				if p.hasDesired {
					return p.reconciled && st.Epoch == p.epoch
				}
				return p.pipelineEpoch == st.Epoch
			}
			if !done() {
				_, err = p.pass(ctx)
			}
			ready := done()
			p.mu.Unlock()
			if ready {
				return nil
			}
			if err != nil && ctx.Err() == nil && !errors.Is(err, ErrNotPrimary) {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("programmer: waiting until ready: %w", ctx.Err())
		case <-changed:
		}
	}
}

// Stats is a summary for health checks and the ctl API.
type Stats struct {
	// Installed counts installed entries per table or action profile.
	Installed map[string]int
	// Pending counts entries waiting for a retry; Rejected those refused as
	// invalid.
	Pending, Rejected int
	// Ready is Ready(); Epoch the session the target was last reconciled in.
	Ready bool
	Epoch uint64
	// LastError is the error of the last pass (nil if it succeeded).
	LastError error
}

// Stats returns the programmer's current summary.
func (p *Programmer) Stats() Stats {
	ready := p.Ready()
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Stats{Installed: make(map[string]int, len(p.counts)), Pending: len(p.dirty), Rejected: p.nRejected,
		Ready: ready, Epoch: p.epoch, LastError: p.lastErr}
	for t, i := range p.counts {
		if n := p.countv[i]; n > 0 {
			st.Installed[t] = n
		}
	}
	return st
}
