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
func (p *Programmer) runAtomic(ctx context.Context, stages [][]*op, res *Result, se *SyncError) (rest [][]*op, ok bool) {
	var seq []aitem
	for st := range stages {
		for _, raw := range p.rawDeletes[st] {
			seq = append(seq, aitem{raw: raw, stage: st})
		}
		p.rawDeletes[st] = nil
		for _, o := range stages[st] {
			seq = append(seq, aitem{o: o, stage: st})
		}
	}
	stats := newUpdateStats()
	defer stats.flush(p.m)
	chunks := 0
	for pos := 0; pos < len(seq); {
		n, err := p.atomicChunk(ctx, seq[pos:], res, se, stats)
		if errors.Is(err, errAtomicRefused) {
			rest = make([][]*op, len(stages))
			for _, it := range seq[pos:] {
				if it.raw != nil {
					p.rawDeletes[it.stage] = append(p.rawDeletes[it.stage], it.raw)
				} else if !it.o.done {
					rest[it.stage] = append(rest[it.stage], it.o)
				}
			}
			return rest, false
		}
		chunks++
		pos += n
		if err != nil {
			for _, it := range seq[pos:] {
				if it.raw != nil {
					p.rawDeletes[it.stage] = append(p.rawDeletes[it.stage], it.raw)
				}
			}
			if errors.Is(err, errHeld) {
				se.Held = true
				p.log.Warn("Atomic write incomplete; the writes after it wait for it", zap.Int("left", len(seq)-pos))
			} else {
				se.Fatal = err
			}
			return nil, true
		}
	}
	if chunks > 1 {
		p.log.Info("Pass larger than one atomic write: written as ordered atomic chunks", zap.Int("updates", len(seq)),
			zap.Int("writes", chunks), zap.Int("max_bytes", p.cfg.MaxAtomicBytes))
	}
	return nil, true
}

// encodeAtomic encodes items in order into one atomic write (up to MaxAtomicBytes when limit is set); it
// returns the encoded updates, the items they are, and how many items of seq it went through (items that
// cannot be sent now are skipped: blocked ones stay dirty, invalid ones are rejected).
func (p *Programmer) encodeAtomic(seq []aitem, limit bool) (buf []byte, items []aitem, used int) {
	p.pendingRefs = map[entry.Key]bool{}
	defer func() { p.pendingRefs = nil }()
	for used < len(seq) {
		if limit && len(items) > 0 && len(buf) >= p.cfg.MaxAtomicBytes {
			break
		}
		it := seq[used]
		used++
		if it.raw != nil {
			b, err := p4rt.AppendRawUpdate(buf, p4v1.Update_DELETE, it.raw)
			if err != nil {
				continue
			}
			buf = b
			items = append(items, it)
			continue
		}
		if it.o.done {
			continue
		}
		b, ok := p.appendOp(buf, it.o)
		if !ok {
			continue
		}
		buf = b
		items = append(items, it)
		if k := it.o.e.Kind; (k == entry.KindMember || k == entry.KindGroup) && it.o.typ != opDelete {
			p.pendingRefs[it.o.key] = true
		}
	}
	return buf, items, used
}

// atomicChunk writes the next chunk of seq atomically (see runAtomic) and returns how many items of seq it
// covered.
func (p *Programmer) atomicChunk(ctx context.Context, seq []aitem, res *Result, se *SyncError, stats *updateStats) (int, error) {
	buf, items, used := p.encodeAtomic(seq, true)
	bo := p.cfg.RetryMin
	for attempt := 1; len(items) > 0; {
		start := time.Now()
		err := p.target.WriteEncoded(ctx, buf, len(items), p4v1.WriteRequest_DATAPLANE_ATOMIC)
		p.m.batchDuration.Observe(time.Since(start).Seconds())
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
			return used, nil
		case errors.Is(err, ErrNotPrimary) || ctx.Err() != nil:
			p.dropAtomic(items)
			if ctx.Err() != nil {
				return used, ctx.Err()
			}
			return used, err
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
			return 0, errAtomicRefused
		default:
			// The whole RPC failed: nothing of an atomic write was applied.
			p.log.Warn("Atomic write failed as a whole; will retry", zap.Error(err), zap.Int("updates", len(items)))
			again, transient = items, true
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
				return used, errHeld
			}
			attempt++
			select {
			case <-ctx.Done():
				p.dropAtomic(again)
				return used, ctx.Err()
			case <-time.After(bo):
			}
			bo = min(bo*2, p.cfg.RetryMax)
		}
		buf, items, _ = p.encodeAtomic(again, false)
	}
	return used, nil
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
