package programmer

import (
	"context"
	"errors"
	"fmt"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

type opType uint8

const (
	opInsert opType = iota + 1
	opModify
	opDelete
)

func (t opType) String() string {
	switch t {
	case opInsert:
		return "insert"
	case opModify:
		return "modify"
	case opDelete:
		return "delete"
	}
	return "?"
}

func (t opType) proto() p4v1.Update_Type {
	switch t {
	case opInsert:
		return p4v1.Update_INSERT
	case opModify:
		return p4v1.Update_MODIFY
	}
	return p4v1.Update_DELETE
}

// op is one planned update.
type op struct {
	s   *slot
	key entry.Key
	typ opType
	// e is the entry written (insert, modify) or deleted: &val.
	e *entry.Entry
	// val is the slot's desired value (fromWant) or its installed value (a
	// delete, a default's reset), unpacked for the pass.
	val entry.Entry
	// fromWant: val is the slot's desired value.
	fromWant bool
	// reset: MODIFY of a default entry back to the program's default.
	reset bool
	// converted is set once an insert became a modify or the reverse.
	converted bool
	// allocated: a member or group id was allocated for this insert.
	allocated bool
	// done: applied, or rejected; anything else stays dirty.
	done bool
}

// stageOf is the stage (order.go) of o.
func (p *Programmer) stageOf(o *op) int {
	return p.order.stage(o.e.Kind, o.e.Container(), o.typ == opDelete || o.reset)
}

// plan fills o with the update that converges slot s; false when want and
// have agree (or s cannot be written). o must not move afterwards (o.e
// points at o.val).
func (p *Programmer) plan(o *op, s *slot) bool {
	k := s.key
	*o = op{s: s, key: k}
	if s.want == wantHave {
		return false // desired as installed
	}
	// A desired value kept apart from the installed one differs from it
	// (setWant, setHave keep it so): no need to compare.
	if w, ok := p.wantOf(s, &p.unpacked); ok {
		o.val, o.e, o.fromWant = w, &o.val, true
	}
	if o.fromWant && k.Kind() != entry.KindMember && k.Kind() != entry.KindGroup && p.unmanaged[k.Container()] {
		p.reject(o, o.e, fmt.Errorf("table %s is not managed by the programmer", k.Container()))
		return false
	}
	if k.Kind() == entry.KindDefault {
		return p.planDefault(o, s)
	}
	switch {
	case o.fromWant && !s.installed:
		o.typ = opInsert
	case o.fromWant:
		o.typ = opModify
	case s.installed:
		o.typ, o.val, o.e = opDelete, p.haveOf(s, &p.unpacked), &o.val
	default:
		return false
	}
	return true
}

// planDefault is plan for a table's default entry, whose absence means the
// program's initial default.
func (p *Programmer) planDefault(o *op, s *slot) bool {
	init, hasInit := p.info.InitialDefault(s.key.Container())
	var cur, tgt *entry.Entry
	if s.installed {
		h := p.haveOf(s, &p.unpacked)
		cur = &h
	}
	if o.fromWant {
		tgt = o.e
	}
	if cur == nil && hasInit {
		cur = &init
	}
	if tgt == nil && hasInit {
		tgt = &init
	}
	if (cur == nil) == (tgt == nil) && (cur == nil || cur.Equal(*tgt)) {
		return false
	}
	o.typ = opModify
	if !o.fromWant {
		o.val, o.e, o.reset = p.haveOf(s, &p.unpacked), &o.val, true
	}
	return true
}

// planAll turns the dirty list into ops by stage (in one slab). The slab,
// the stage lists and the dirty list reuse the previous pass's (encodeScratch),
// which finish has released.
func (p *Programmer) planAll() ([][]*op, []op) {
	phases := p.scratch.stages
	if len(phases) != p.order.numStages() {
		phases = make([][]*op, p.order.numStages())
	}
	for i := range phases {
		phases[i] = phases[i][:0]
	}
	list := p.dirty
	slab := p.scratch.ops[:0]
	if cap(slab) < len(list) {
		slab = make([]op, 0, len(list)) // ops point into it: it must not grow
	}
	for _, s := range list {
		s.dirty = false
		slab = append(slab, op{})
		op := &slab[len(slab)-1]
		if !p.plan(op, s) {
			slab = slab[:len(slab)-1]
			p.setBlocked(s, "")
			p.forget(s)
			continue
		}
		st := p.stageOf(op)
		phases[st] = append(phases[st], op)
	}
	if cap(list) <= maxScratchItems {
		clear(list)
		p.dirty = list[:0]
	} else {
		p.dirty = nil
	}
	if cap(slab) <= maxScratchItems {
		p.scratch.ops, p.scratch.stages = slab, phases
	} else {
		p.scratch.ops, p.scratch.stages = nil, nil
	}
	return phases, slab
}

// finish puts every op of slab that was neither applied nor rejected back
// on the dirty list.
func (p *Programmer) finish(slab []op) {
	for i := range slab {
		if o := &slab[i]; !o.done {
			p.markDirty(o.s)
		}
	}
	// Both are reused by the next planAll: keep nothing alive meanwhile.
	clear(slab)
	p.unpacked.Reset()
	for _, ph := range p.scratch.stages {
		clear(ph[:cap(ph)])
	}
}

func (p *Programmer) reject(o *op, e *entry.Entry, err error) {
	o.done = true
	if !o.s.rejected {
		p.nRejected++
	}
	p.setRejected(o.s, err)
	p.setBlocked(o.s, "")
	p.log.Error("Entry rejected; it stays out of the target until its desired value changes",
		zap.String("table", e.Container()), zap.Stringer("entry", e), zap.Error(err))
}

// process writes the dirty keys, stage by stage. Called with mu held.
func (p *Programmer) process(ctx context.Context, res *Result) error {
	deletedBefore := res.Deleted
	stages, slab := p.planAll()
	se := &SyncError{}
	full := p.runStages(ctx, stages, res, se)
	p.finish(slab)
	if full && se.Fatal == nil && !se.Held && res.Deleted > deletedBefore {
		// Inserts met a full table while deletes were pending behind them
		// (make-before-break order): the deletes made room, so plan again.
		clear(se.Failures)
		se.TableFull, se.Examples = nil, nil
		again, slab2 := p.planAll()
		p.runStages(ctx, again, res, se)
		p.finish(slab2)
	}
	for _, s := range p.dirty {
		if s.blocked {
			se.add(s.key.Container(), codes.FailedPrecondition, fmt.Sprintf("%s: %s", s.key, p.trouble[s.key].blocked))
		}
	}
	if se.empty() {
		return nil
	}
	return se
}

// errHeld stops a pass after a stage some of whose updates are still
// failing transiently: later stages rely on it, so they wait (their keys stay
// dirty and Run retries them, in order, with backoff).
var errHeld = errors.New("programmer: stage incomplete; later stages held back")

// runStages runs the stages in order and reports whether a table was full.
func (p *Programmer) runStages(ctx context.Context, stages [][]*op, res *Result, se *SyncError) bool {
	if p.cfg.Atomic && !p.atomicRefused {
		rest, ok := p.runAtomic(ctx, stages, res, se)
		if ok {
			return len(se.TableFull) > 0
		}
		stages = rest // the target refused atomic writes: write what is left in order
	}
	wrote, waited := false, false
	for st := range stages {
		if len(stages[st]) == 0 && len(p.rawDeletes[st]) == 0 {
			continue
		}
		if st >= p.order.firstDelete() && wrote && !waited && p.cfg.DeleteGrace > 0 {
			waited = true
			select {
			case <-ctx.Done():
				se.Fatal = ctx.Err()
				return len(se.TableFull) > 0
			case <-time.After(p.cfg.DeleteGrace):
			}
		}
		before := res.Inserted + res.Modified
		if err := p.runPhase(ctx, st, stages[st], res, se); err != nil {
			// Later stages depend on this one; their ops stay undone, so
			// their keys stay dirty.
			if errors.Is(err, errHeld) {
				se.Held = true
				p.log.Warn("Write stage incomplete; later stages wait for it", zap.String("stage", p.order.stageName(st)))
			} else {
				se.Fatal = err
			}
			break
		}
		wrote = wrote || res.Inserted+res.Modified > before
	}
	return len(se.TableFull) > 0
}

// runPhase sends the ops of one stage (and the stage's raw deletes) in
// batches, retrying what failed transiently or needs converting. Batches of
// one stage are independent, so up to maxInFlight of them are on the wire at
// once while the next one is encoded.
func (p *Programmer) runPhase(ctx context.Context, ph int, ops []*op, res *Result, se *SyncError) error {
	bo := p.cfg.RetryMin
	todo := ops
	raw := p.rawDeletes[ph]
	for attempt := 1; ; attempt++ {
		r := p.sendAll(ctx, todo, raw, res, se)
		raw = nil
		p.rawDeletes[ph] = r.rawLeft
		if r.fatal != nil {
			return r.fatal
		}
		retry := r.retry
		if len(r.exists) > 0 {
			retry = append(retry, p.compareExisting(ctx, r.exists, res)...)
		}
		if len(retry) == 0 {
			return nil
		}
		if attempt >= p.cfg.MaxAttempts {
			for _, o := range retry {
				se.add(o.e.Container(), codes.Unavailable, fmt.Sprintf("%s %s: gave up after %d attempts", o.typ, o.e, attempt))
				p.release(o)
			}
			return errHeld
		}
		if r.transient {
			select {
			case <-ctx.Done():
				p.abandon(retry)
				return ctx.Err()
			case <-time.After(bo):
			}
			bo = min(bo*2, p.cfg.RetryMax)
		}
		todo = retry
	}
}

// maxInFlight bounds the concurrent Write RPCs of one phase.
const maxInFlight = 2

type sendResult struct {
	retry, exists []*op
	rawLeft       []*p4v1.Entity
	transient     bool
	fatal         error
}

type inflight struct {
	lo, hi int
	done   chan error
}

// item is one update of a pass: an op, or a raw delete from a reconcile.
type item struct {
	o   *op
	raw *p4v1.Entity
}

// sendAll encodes and sends ops and raw deletes once, handling each
// update's outcome. Updates are encoded straight into one buffer; batches
// are ranges of it.
func (p *Programmer) sendAll(ctx context.Context, todo []*op, raw []*p4v1.Entity, res *Result, se *SyncError) sendResult {
	var r sendResult
	n := len(todo) + len(raw)
	items := make([]item, 0, n)
	offs := make([]int, 1, n+1) // offs[i] is where item i starts in buf
	buf := make([]byte, 0, 64*n)
	for _, ent := range raw {
		b, err := p4rt.AppendRawUpdate(buf, p4v1.Update_DELETE, ent)
		if err != nil {
			continue
		}
		buf = b
		items = append(items, item{raw: ent})
		offs = append(offs, len(buf))
	}
	stats := newUpdateStats()
	defer stats.flush(p.m)
	var queue []inflight
	launched, next := 0, 0
	for {
		for r.fatal == nil && len(items)-launched < p.cfg.BatchSize && next < len(todo) {
			o := todo[next]
			next++
			if b, ok := p.appendOp(buf, o); ok {
				buf = b
				items = append(items, item{o: o})
				offs = append(offs, len(buf))
			}
		}
		ready := len(items) - launched
		if r.fatal == nil && ready > 0 && (ready >= p.cfg.BatchSize || next >= len(todo)) && len(queue) < maxInFlight {
			lo, hi := launched, launched+min(ready, p.cfg.BatchSize)
			body := buf[offs[lo]:offs[hi]]
			done := make(chan error, 1)
			go func() {
				start := time.Now()
				err := p.target.WriteEncoded(ctx, body, hi-lo, p4v1.WriteRequest_CONTINUE_ON_ERROR)
				p.m.batchDuration.Observe(time.Since(start).Seconds())
				done <- err
			}()
			queue = append(queue, inflight{lo: lo, hi: hi, done: done})
			launched = hi
			continue
		}
		if len(queue) == 0 {
			break
		}
		f := queue[0]
		queue = queue[1:]
		err := <-f.done
		p.handleBatch(ctx, err, items[f.lo:f.hi], &r, res, se, stats)
	}
	if r.fatal != nil {
		// Encoded but never sent: release their ids (their keys stay dirty,
		// as do those of ops never encoded).
		for _, it := range items[launched:] {
			if it.o != nil {
				p.release(it.o)
			} else {
				r.rawLeft = append(r.rawLeft, it.raw)
			}
		}
		p.abandon(r.retry)
		p.abandon(r.exists)
		r.retry, r.exists = nil, nil
	}
	return r
}

// handleBatch records the outcome of one Write.
func (p *Programmer) handleBatch(ctx context.Context, err error, items []item, r *sendResult, res *Result, se *SyncError, stats *updateStats) {
	if !errors.Is(err, ErrNotPrimary) {
		res.Writes++
		p.m.writes.Inc()
	}
	var we *p4rt.WriteError
	switch {
	case err == nil:
		for _, it := range items {
			if it.o != nil {
				p.applied(it.o, res, stats)
			}
		}
	case errors.Is(err, ErrNotPrimary) || ctx.Err() != nil:
		if r.fatal == nil {
			r.fatal = err
			if ctx.Err() != nil {
				r.fatal = ctx.Err()
			}
		}
		for _, it := range items {
			if it.o != nil {
				p.release(it.o)
			} else {
				r.rawLeft = append(r.rawLeft, it.raw)
			}
		}
	case errors.As(err, &we) && len(we.Updates) == len(items):
		for n, u := range we.Updates {
			it := items[n]
			if it.o == nil {
				if u.Code != codes.OK && u.Code != codes.NotFound {
					r.rawLeft = append(r.rawLeft, it.raw)
					se.add("(unreadable entries)", u.Code, u.Message)
				}
				continue
			}
			switch p.outcome(it.o, u, res, se, stats) {
			case retryNow:
				r.retry = append(r.retry, it.o)
			case retryLater:
				r.retry = append(r.retry, it.o)
				r.transient = true
			case compare:
				r.exists = append(r.exists, it.o)
			}
		}
	default:
		// The whole RPC failed: the target may or may not have applied it;
		// retrying is safe (an insert that landed comes back ALREADY_EXISTS,
		// a delete NOT_FOUND).
		p.log.Warn("Write failed as a whole; will retry", zap.Error(err), zap.Int("updates", len(items)))
		for _, it := range items {
			if it.o == nil {
				r.rawLeft = append(r.rawLeft, it.raw)
				continue
			}
			p.m.updateErrors.WithLabelValues(it.o.sendTypeName(), it.o.e.Container(), status.Code(err).String()).Inc()
			r.retry = append(r.retry, it.o)
		}
		r.transient = true
	}
}

// updateStats aggregates the per-update success counter so that a batch
// costs one metric update per (type, table) rather than per update. Updates
// come in runs of one type and table (write order): a run is counted apart
// and added to the map when it ends, not hashed per update.
type updateStats struct {
	n    map[[2]string]int
	last [2]string
	run  int
}

func newUpdateStats() *updateStats { return &updateStats{n: map[[2]string]int{}} }

func (s *updateStats) add(typ, table string) {
	if s.run > 0 && s.last[0] == typ && s.last[1] == table {
		s.run++
		return
	}
	s.endRun()
	s.last, s.run = [2]string{typ, table}, 1
}

func (s *updateStats) endRun() {
	if s.run > 0 {
		s.n[s.last] += s.run
		s.run = 0
	}
}

func (s *updateStats) flush(m *metrics) {
	s.endRun()
	for k, n := range s.n {
		m.updates.WithLabelValues(k[0], k[1]).Add(float64(n))
	}
	clear(s.n)
}

func (o *op) sendType() p4v1.Update_Type {
	if o.reset {
		return p4v1.Update_MODIFY
	}
	return o.typ.proto()
}

func (o *op) sendTypeName() string {
	if o.reset {
		return "reset"
	}
	return o.typ.String()
}

// abandon releases allocations of ops that were not sent.
func (p *Programmer) abandon(ops []*op) {
	for _, o := range ops {
		if o != nil {
			p.release(o)
		}
	}
}

// release frees an id allocated for an insert that did not happen.
func (p *Programmer) release(o *op) {
	if !o.allocated {
		return
	}
	o.allocated = false
	if o.s.installed {
		return
	}
	switch o.e.Kind {
	case entry.KindMember:
		space(p.ids.members, o.e.Profile).free(o.e.Name)
	case entry.KindGroup:
		space(p.ids.groups, o.e.Profile).free(o.e.Name)
	}
}

// appendOp encodes o onto b; ok is false when o cannot be sent now (a
// dependency is not installed: o stays dirty) or ever (invalid: o is
// rejected).
func (p *Programmer) appendOp(b []byte, o *op) (out []byte, ok bool) {
	if o.reset {
		out, err := p.info.AppendDefaultReset(b, o.e.Table)
		if err != nil {
			p.reject(o, o.e, err)
			return b, false
		}
		return out, true
	}
	if o.typ == opDelete {
		if !p.ownIDKnown(*o.e) {
			// Cannot happen for entries the programmer installed or read
			// back; never guess an id for a delete.
			p.log.Error("No id for an installed member or group; forgetting it", zap.String("table", o.e.Container()),
				zap.Stringer("entry", o.e))
			o.done = true
			p.dropHave(o.s)
			p.countv[o.s.count]--
			p.forget(o.s)
			return b, false
		}
		out, err := p.info.AppendUpdate(b, p4v1.Update_DELETE, *o.e, deleteIDs{p.ids}, true)
		if err != nil {
			p.log.Error("Cannot encode an installed entry for deletion", zap.String("table", o.e.Container()),
				zap.Stringer("entry", o.e), zap.Error(err))
			p.reject(o, o.e, err)
			return b, false
		}
		return out, true
	}
	if why := p.missingDependency(*o.e); why != "" {
		p.setBlocked(o.s, why)
		return b, false
	}
	p.setBlocked(o.s, "")
	if o.typ == opInsert {
		switch o.e.Kind {
		case entry.KindMember:
			space(p.ids.members, o.e.Profile).alloc(o.e.Name)
			o.allocated = true
		case entry.KindGroup:
			space(p.ids.groups, o.e.Profile).alloc(o.e.Name)
			o.allocated = true
		}
	}
	out, err := p.info.AppendUpdate(b, o.sendType(), *o.e, p.ids, false)
	if err != nil {
		p.release(o)
		p.m.updateErrors.WithLabelValues(o.typ.String(), o.e.Container(), "P4INFO").Inc()
		p.reject(o, o.e, err)
		return b, false
	}
	return out, true
}

func (p *Programmer) ownIDKnown(e entry.Entry) bool {
	switch e.Kind {
	case entry.KindMember:
		_, ok := p.ids.MemberID(e.Profile, e.Name)
		return ok
	case entry.KindGroup:
		_, ok := p.ids.GroupID(e.Profile, e.Name)
		return ok
	}
	return true
}

// missingDependency names the member or group o needs that is not installed.
func (p *Programmer) missingDependency(e entry.Entry) string {
	switch e.Kind {
	case entry.KindTable:
		kind, name, ok := e.References()
		if !ok {
			return ""
		}
		t, ok := p.info.Table(e.Table)
		if !ok || t.Profile == nil {
			return "" // the encoder explains
		}
		if !p.installedRef(kind, t.Profile.Name, name) {
			return fmt.Sprintf("waits for %s %q of %s", kind, name, t.Profile.Name)
		}
	case entry.KindGroup:
		for _, m := range e.Members {
			if !p.installedRef(entry.KindMember, e.Profile, m.Member) {
				return fmt.Sprintf("waits for member %q of %s", m.Member, e.Profile)
			}
		}
	}
	return ""
}

func (p *Programmer) installedRef(kind entry.Kind, profile, name string) bool {
	k := entry.Entry{Kind: kind, Profile: profile, Name: name}.Key()
	if p.pendingRefs[k] {
		return true // written earlier in the same atomic write
	}
	s := p.lookup(k)
	return s != nil && s.installed
}

type verdict uint8

const (
	done verdict = iota
	retryNow
	retryLater
	compare
)

// outcome handles one update's status from the target.
func (p *Programmer) outcome(o *op, u p4rt.UpdateStatus, res *Result, se *SyncError, stats *updateStats) verdict {
	if u.Code == codes.OK {
		p.applied(o, res, stats)
		return done
	}
	table := o.e.Container()
	p.m.updateErrors.WithLabelValues(o.sendTypeName(), table, u.Code.String()).Inc()
	switch {
	case u.Code == codes.AlreadyExists && o.typ == opInsert && !o.converted:
		if o.e.Kind == entry.KindTable {
			return compare
		}
		// Our id is taken on the target by something we did not know of:
		// we own the target, so make it ours.
		o.typ, o.converted = opModify, true
		return retryNow
	case u.Code == codes.NotFound && o.typ == opModify && !o.converted && !o.reset && o.e.Kind != entry.KindDefault:
		o.typ, o.converted = opInsert, true
		return retryNow
	case u.Code == codes.NotFound && o.typ == opDelete:
		p.applied(o, res, stats) // already gone
		return done
	case u.Code == codes.ResourceExhausted:
		p.m.tableFull.WithLabelValues(table).Inc()
		p.log.Warn("Table full: entry not installed, will retry", zap.String("table", table), zap.Stringer("entry", o.e))
		se.add(table, u.Code, fmt.Sprintf("%s %s: %s", o.typ, o.e, u.Message))
		p.release(o)
		return done
	case u.Code == codes.Unavailable || u.Code == codes.DeadlineExceeded || u.Code == codes.Aborted ||
		u.Code == codes.Internal || u.Code == codes.Unknown:
		return retryLater
	case u.Code == codes.FailedPrecondition || u.Code == codes.NotFound:
		// In use (delete) or a dependency missing on the target: retry on a
		// later pass once the rest has converged.
		se.add(table, u.Code, fmt.Sprintf("%s %s: %s", o.typ, o.e, u.Message))
		p.release(o)
		return done
	}
	se.add(table, u.Code, fmt.Sprintf("%s %s: %s", o.typ, o.e, u.Message))
	p.release(o)
	p.reject(o, o.e, fmt.Errorf("target refused %s: %s: %s", o.typ, u.Code, u.Message))
	return done
}

// applied records a successful update.
func (p *Programmer) applied(o *op, res *Result, stats *updateStats) {
	o.done = true
	o.allocated = false
	s := o.s
	p.setBlocked(s, "")
	if stats != nil {
		stats.add(o.sendTypeName(), o.e.Container())
	} else {
		p.m.updates.WithLabelValues(o.sendTypeName(), o.e.Container()).Inc()
	}
	if res != nil {
		switch {
		case o.typ == opDelete:
			res.Deleted++
		case o.typ == opInsert:
			res.Inserted++
		default:
			res.Modified++
		}
	}
	e := *o.e
	if e.Kind == entry.KindDefault {
		if init, ok := p.info.InitialDefault(e.Table); o.reset || (ok && init.Equal(e)) {
			p.dropHave(s)
		} else {
			p.setHave(s, e)
		}
		p.forget(s)
		return
	}
	if o.typ == opDelete {
		if s.installed {
			p.countv[s.count]--
		}
		p.dropHave(s)
		switch e.Kind {
		case entry.KindMember:
			space(p.ids.members, e.Profile).free(e.Name)
		case entry.KindGroup:
			space(p.ids.groups, e.Profile).free(e.Name)
		}
		p.forget(s)
		return
	}
	if !s.installed {
		p.countv[s.count]++
	}
	if s.want > 0 && o.fromWant {
		p.installWant(s) // the usual case: no comparison
	} else {
		p.setHave(s, e)
	}
}

// compareExisting reads back table entries whose insert met ALREADY_EXISTS:
// equal ones are adopted without a write, the others become modifies.
func (p *Programmer) compareExisting(ctx context.Context, ops []*op, res *Result) []*op {
	byKey := make(map[entry.Key]*op, len(ops))
	ents := make([]*p4v1.Entity, 0, len(ops))
	for _, o := range ops {
		ent, err := p.info.Encode(*o.e, deleteIDs{p.ids})
		if err != nil {
			continue
		}
		ent.GetTableEntry().Action = nil
		ents = append(ents, ent)
		byKey[o.key] = o
	}
	err := p.target.Read(ctx, ents, func(ent *p4v1.Entity) error {
		e, err := p.info.Decode(ent, p.ids)
		if err != nil {
			return nil
		}
		if o, ok := byKey[e.Key()]; ok && o.e.Equal(e) {
			p.applied(o, res, nil)
			delete(byKey, o.key)
		}
		return nil
	})
	if err != nil {
		p.log.Warn("Reading back existing entries failed; modifying them", zap.Error(err))
	}
	var retry []*op
	for _, o := range ops {
		if _, left := byKey[o.key]; left {
			o.typ, o.converted = opModify, true
			retry = append(retry, o)
		}
	}
	return retry
}

// deleteIDs resolves like ids, but never fails for references (a DELETE
// ignores the action).
type deleteIDs struct{ *ids }

func (d deleteIDs) MemberID(profile, name string) (uint32, bool) {
	if id, ok := d.ids.MemberID(profile, name); ok {
		return id, true
	}
	return 1, true
}

func (d deleteIDs) GroupID(profile, name string) (uint32, bool) {
	if id, ok := d.ids.GroupID(profile, name); ok {
		return id, true
	}
	return 1, true
}
