package programmer

import (
	"context"
	"errors"
	"fmt"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"

	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// aitem is one update of an atomic pass: an op, or a raw delete from a reconcile, with its stage.
type aitem struct {
	o     *op
	raw   *p4v1.Entity
	stage int
}

// errAtomicRefused: the target does not implement DATAPLANE_ATOMIC writes.
var errAtomicRefused = errors.New("programmer: target refused DATAPLANE_ATOMIC writes")

// runAtomic writes the stages' updates (and the reconcile's raw deletes), in stage order, as DATAPLANE_ATOMIC
// writes of at most Config.MaxAtomicBytes each: usually one write per pass, so packets see the old state or
// the new one. A write that fails is sent again without the updates that failed for good (table full,
// rejected; nothing of a failed atomic write is applied) until it is applied; one that keeps failing
// transiently holds back the writes after it. ok is false when the target refused atomic writes: rest holds
// what is left to write, by stage, for the ordered path.
//
// A pass into a target holding nothing of ours (a first sync, a restarted target) has no old state to
// protect: any prefix of the write order is self-consistent (nothing is admitted before what it relies
// on), so it goes in chunks of emptyTargetChunkBytes, the next one encoded while the previous one is on the
// wire (still sent one after the other).
func (p *Programmer) runAtomic(ctx context.Context, stages [][]*op, res *Result, se *SyncError) (rest [][]*op, ok bool) {
	seq := p.scratch.seq[:0]
	defer func() {
		if cap(seq) <= maxScratchItems {
			clear(seq)
			p.scratch.seq = seq[:0]
		}
	}()
	for st := range stages {
		for _, raw := range p.rawDeletes[st] {
			seq = append(seq, aitem{raw: raw, stage: st})
		}
		p.rawDeletes[st] = nil
		for _, o := range stages[st] {
			seq = append(seq, aitem{o: o, stage: st})
		}
	}
	if len(seq) == 0 {
		return nil, true
	}
	limit := p.cfg.MaxAtomicBytes
	if p.installedNothing() {
		limit = min(limit, emptyTargetChunkBytes)
	}
	stats := newUpdateStats()
	defer stats.flush(p.m)
	p.pendingRefs = map[entry.Key]bool{}
	defer func() { p.pendingRefs = nil }()
	giveBack := func(from []aitem) {
		for _, it := range from {
			if it.raw != nil {
				p.rawDeletes[it.stage] = append(p.rawDeletes[it.stage], it.raw)
			}
		}
	}
	cur := p.encodeAtomic(seq, limit)
	pos, chunks := cur.used, 0
	for {
		// Send this chunk; encode the next one meanwhile.
		done := make(chan error, 1)
		if len(cur.items) > 0 {
			go func(c atomicWrite) {
				start := time.Now()
				err := p.target.WriteEncoded(ctx, c.buf, len(c.items), p4v1.WriteRequest_DATAPLANE_ATOMIC)
				p.m.batchDuration.Observe(time.Since(start).Seconds())
				done <- err
			}(cur)
		}
		var next atomicWrite
		if pos < len(seq) {
			next = p.encodeAtomic(seq[pos:], limit)
		}
		var err error
		if len(cur.items) > 0 {
			err = p.atomicResult(ctx, cur, <-done, res, se, stats)
			chunks++
		}
		p.scratch.put(cur) // written (or given up): its bytes and items are no longer used
		if errors.Is(err, errAtomicRefused) {
			p.dropAtomic(next.items)
			rest = make([][]*op, len(stages))
			for _, it := range seq[pos-cur.used:] {
				if it.raw != nil {
					p.rawDeletes[it.stage] = append(p.rawDeletes[it.stage], it.raw)
				} else if !it.o.done {
					rest[it.stage] = append(rest[it.stage], it.o)
				}
			}
			return rest, false
		}
		if err != nil {
			p.dropAtomic(next.items)
			giveBack(seq[pos+next.used:])
			if errors.Is(err, errHeld) {
				se.Held = true
				p.log.Warn("Atomic write incomplete; the writes after it wait for it", zap.Int("left", len(seq)-pos))
			} else {
				se.Fatal = err
			}
			return nil, true
		}
		if next.used == 0 {
			break
		}
		cur = next
		pos += cur.used
	}
	if chunks > 1 {
		p.log.Info("Pass written as ordered atomic chunks", zap.Int("updates", len(seq)), zap.Int("writes", chunks),
			zap.Int("max_bytes", limit))
	}
	return nil, true
}

// emptyTargetChunkBytes is the size of the atomic writes of a pass into a target that holds nothing of ours.
const emptyTargetChunkBytes = 2 << 20

// installedNothing reports whether no entry is installed.
func (p *Programmer) installedNothing() bool {
	for _, n := range p.countv {
		if n > 0 {
			return false
		}
	}
	for _, raw := range p.rawDeletes {
		if len(raw) > 0 {
			return false
		}
	}
	return true
}

// atomicWrite is one encoded atomic write.
type atomicWrite struct {
	buf   []byte
	items []aitem
	used  int // items of the pass it went through
}

// encodeAtomic encodes items of seq in order into one atomic write of up to limit bytes (0: no limit); items
// that cannot be sent now are skipped (blocked ones stay dirty, invalid ones are rejected). Members and
// groups it writes are added to p.pendingRefs so that entries after them may refer to them.
func (p *Programmer) encodeAtomic(seq []aitem, limit int) atomicWrite {
	w := p.scratch.take()
	for w.used < len(seq) {
		if limit > 0 && len(w.items) > 0 && len(w.buf) >= limit {
			break
		}
		it := seq[w.used]
		w.used++
		if it.raw != nil {
			b, err := p4rt.AppendRawUpdate(w.buf, p4v1.Update_DELETE, it.raw)
			if err != nil {
				continue
			}
			w.buf = b
			w.items = append(w.items, it)
			continue
		}
		if it.o.done {
			continue
		}
		b, ok := p.appendOp(w.buf, it.o)
		if !ok {
			continue
		}
		w.buf = b
		w.items = append(w.items, it)
		if k := it.o.e.Kind; (k == entry.KindMember || k == entry.KindGroup) && it.o.typ != opDelete {
			p.pendingRefs[it.o.key] = true
		}
	}
	return w
}

// atomicResult handles the outcome err of atomic write w, sending w again without what failed for good until
// it is applied.
func (p *Programmer) atomicResult(ctx context.Context, w atomicWrite, err error, res *Result, se *SyncError, stats *updateStats) error {
	bo := p.cfg.RetryMin
	items := w.items
	for attempt := 1; ; {
		if !errors.Is(err, ErrNotPrimary) {
			res.Writes++
			p.m.writes.Inc()
		}
		var we *p4rt.WriteError
		var again []aitem
		transient := false
		switch {
		case err == nil:
			for _, it := range items {
				if it.o != nil {
					p.applied(it.o, res, stats)
				}
			}
			return nil
		case errors.Is(err, ErrNotPrimary) || ctx.Err() != nil:
			p.dropAtomic(items)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		case errors.As(err, &we) && len(we.Updates) == len(items):
			keep := make([]bool, len(items))
			progress := false
			var exists []*op
			for i, u := range we.Updates {
				it := items[i]
				if u.Code == codes.Aborted {
					keep[i] = true // not applied because another update failed
					continue
				}
				progress = true
				if it.raw != nil {
					if u.Code != codes.OK && u.Code != codes.NotFound {
						p.rawDeletes[it.stage] = append(p.rawDeletes[it.stage], it.raw)
						se.add("(unreadable entries)", u.Code, u.Message)
					}
					continue
				}
				switch p.outcome(it.o, u, res, se, stats) {
				case retryNow:
					keep[i] = true
				case retryLater:
					keep[i], transient = true, true
				case compare:
					keep[i] = true
					exists = append(exists, it.o)
				}
			}
			if len(exists) > 0 {
				p.compareExisting(ctx, exists, res) // equal ones are adopted (done), the others become modifies
			}
			for i, it := range items {
				if keep[i] && (it.o == nil || !it.o.done) {
					again = append(again, it)
				}
			}
			if !progress {
				transient = true // every update ABORTED: nothing to act on, try again later
			}
		case errors.As(err, &we) && len(we.Updates) == 0 && we.Code == codes.Unimplemented:
			p.atomicRefused = true
			p.log.Warn("The target does not implement DATAPLANE_ATOMIC writes; writing in dependency order instead",
				zap.Error(err))
			for _, it := range items {
				if it.o != nil {
					p.release(it.o)
				}
			}
			return errAtomicRefused
		default:
			// The whole RPC failed: nothing of an atomic write was applied.
			p.log.Warn("Atomic write failed as a whole; will retry", zap.Error(err), zap.Int("updates", len(items)))
			again, transient = items, true
		}
		if len(again) == 0 {
			return nil
		}
		if transient {
			if attempt >= p.cfg.MaxAttempts {
				for _, it := range again {
					if it.raw != nil {
						p.rawDeletes[it.stage] = append(p.rawDeletes[it.stage], it.raw)
						continue
					}
					se.add(it.o.e.Container(), codes.Unavailable, fmt.Sprintf("%s %s: gave up after %d attempts", it.o.typ, it.o.e, attempt))
					p.release(it.o)
				}
				return errHeld
			}
			attempt++
			select {
			case <-ctx.Done():
				p.dropAtomic(again)
				return ctx.Err()
			case <-time.After(bo):
			}
			bo = min(bo*2, p.cfg.RetryMax)
		}
		w = p.encodeAtomic(again, 0)
		items = w.items
		if len(items) == 0 {
			return nil
		}
		start := time.Now()
		err = p.target.WriteEncoded(ctx, w.buf, len(items), p4v1.WriteRequest_DATAPLANE_ATOMIC)
		p.m.batchDuration.Observe(time.Since(start).Seconds())
	}
}

// dropAtomic gives up items that were not applied: ids allocated for inserts are released (their keys stay
// dirty), raw deletes wait for the next pass.
func (p *Programmer) dropAtomic(items []aitem) {
	for _, it := range items {
		if it.raw != nil {
			p.rawDeletes[it.stage] = append(p.rawDeletes[it.stage], it.raw)
		} else {
			p.release(it.o)
		}
	}
}

// encodeScratch keeps the buffers of the last atomic writes for the next ones (a pass encodes one
// chunk while the previous is on the wire: two sets), so an incremental pass does not grow and drop a
// fresh buffer each time. Owned by the goroutine holding Programmer.mu.
type encodeScratch struct {
	bufs  [][]byte
	items [][]aitem
	seq   []aitem
	// ops and stages are planAll's op slab and stage lists.
	ops    []op
	stages [][]*op
}

// Bounds of what encodeScratch keeps (a 2 MiB chunk of an empty-target pass fits).
const (
	maxScratchBytes = 4 << 20
	maxScratchItems = 1 << 16
)

func (sc *encodeScratch) take() atomicWrite {
	var w atomicWrite
	if n := len(sc.bufs); n > 0 {
		w.buf, sc.bufs = sc.bufs[n-1][:0], sc.bufs[:n-1]
	}
	if n := len(sc.items); n > 0 {
		w.items, sc.items = sc.items[n-1][:0], sc.items[:n-1]
	}
	return w
}

// put takes back w's buffers: w.buf must no longer be referenced (WriteEncoded copies it into the
// request, and the write has returned).
func (sc *encodeScratch) put(w atomicWrite) {
	if c := cap(w.buf); c > 0 && c <= maxScratchBytes && len(sc.bufs) < 2 {
		sc.bufs = append(sc.bufs, w.buf[:0])
	}
	if c := cap(w.items); c > 0 && c <= maxScratchItems && len(sc.items) < 2 {
		clear(w.items)
		sc.items = append(sc.items, w.items[:0])
	}
}
