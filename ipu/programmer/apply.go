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

// Phases, in the order they are sent. Each phase is a barrier: its Write
// RPCs complete before the next phase starts, since P4Runtime may apply the
// updates of one batch in any order.
const (
	phMembers       = iota // member inserts and modifies
	phGroups               // group inserts and modifies
	phTables               // table entry inserts and modifies, default actions
	phTableDeletes         // table entry deletes, default action resets
	phGroupDeletes         // group deletes
	phMemberDeletes        // member deletes
	numPhases
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
	key entry.Key
	typ opType
	// e is the entry written (insert, modify) or deleted.
	e entry.Entry
	// reset: MODIFY of a default entry back to the program's default.
	reset bool
	// converted is set once an insert became a modify or the reverse.
	converted bool
	// allocated: a member or group id was allocated for this insert.
	allocated bool
}

func phaseOf(o *op) int {
	del := o.typ == opDelete || o.reset
	switch o.e.Kind {
	case entry.KindMember:
		if del {
			return phMemberDeletes
		}
		return phMembers
	case entry.KindGroup:
		if del {
			return phGroupDeletes
		}
		return phGroups
	}
	if del {
		return phTableDeletes
	}
	return phTables
}

// plan returns the update that converges key k, or nil when want and have
// agree (or k cannot be written).
func (p *Programmer) plan(k entry.Key) *op {
	w, inW := p.want[k]
	h, inH := p.have[k]
	if inW && k.Kind() != entry.KindMember && k.Kind() != entry.KindGroup && p.unmanaged[k.Container()] {
		p.reject(k, w, fmt.Errorf("table %s is not managed by the programmer", k.Container()))
		return nil
	}
	if k.Kind() == entry.KindDefault {
		init, hasInit := p.info.InitialDefault(k.Container())
		cur, tgt := h, w
		curSet, tgtSet := inH, inW
		if !curSet && hasInit {
			cur, curSet = init, true
		}
		if !tgtSet && hasInit {
			tgt, tgtSet = init, true
		}
		if curSet == tgtSet && (!curSet || cur.Equal(tgt)) {
			return nil
		}
		if inW {
			return &op{key: k, typ: opModify, e: w}
		}
		return &op{key: k, typ: opModify, e: h, reset: true}
	}
	switch {
	case inW && !inH:
		return &op{key: k, typ: opInsert, e: w}
	case inW && inH && !w.Equal(h):
		return &op{key: k, typ: opModify, e: w}
	case !inW && inH:
		return &op{key: k, typ: opDelete, e: h}
	}
	return nil
}

func (p *Programmer) reject(k entry.Key, e entry.Entry, err error) {
	p.rejected[k] = err
	delete(p.dirty, k)
	delete(p.blocked, k)
	p.log.Error("Entry rejected; it stays out of the target until its desired value changes",
		zap.String("table", e.Container()), zap.Stringer("entry", e), zap.Error(err))
}

// process writes the dirty keys, phase by phase. Called with mu held.
func (p *Programmer) process(ctx context.Context, res *Result) error {
	deletedBefore := res.Deleted
	var phases [numPhases][]*op
	for k := range p.dirty {
		o := p.plan(k)
		if o == nil {
			if _, rej := p.rejected[k]; !rej {
				delete(p.dirty, k)
				delete(p.blocked, k)
			}
			continue
		}
		ph := phaseOf(o)
		phases[ph] = append(phases[ph], o)
	}
	se := &SyncError{}
	full := p.runPhases(ctx, &phases, res, se)
	if full && se.Fatal == nil && res.Deleted > deletedBefore {
		// Inserts met a full table while deletes were pending behind them
		// (make-before-break order): the deletes made room, so plan again.
		clear(se.Failures)
		se.TableFull, se.Examples = nil, nil
		var again [numPhases][]*op
		for k := range p.dirty {
			if o := p.plan(k); o != nil {
				again[phaseOf(o)] = append(again[phaseOf(o)], o)
			}
		}
		p.runPhases(ctx, &again, res, se)
	}
	if len(p.blocked) > 0 {
		for k, why := range p.blocked {
			se.add(k.Container(), codes.FailedPrecondition, fmt.Sprintf("%s: %s", k, why))
		}
	}
	if se.empty() {
		return nil
	}
	return se
}

// runPhases runs the phases in order and reports whether a table was full.
func (p *Programmer) runPhases(ctx context.Context, phases *[numPhases][]*op, res *Result, se *SyncError) bool {
	for ph := 0; ph < numPhases; ph++ {
		if len(phases[ph]) == 0 && len(p.rawDeletes[ph]) == 0 {
			continue
		}
		if err := p.runPhase(ctx, ph, phases[ph], res, se); err != nil {
			se.Fatal = err
			// Later phases depend on this one; their keys stay dirty.
			for _, later := range phases[ph+1:] {
				for _, o := range later {
					p.dirty[o.key] = struct{}{}
				}
			}
			break
		}
	}
	return len(se.TableFull) > 0
}

// runPhase sends ops (and the phase's raw deletes) in batches, retrying
// what failed transiently or needs converting.
func (p *Programmer) runPhase(ctx context.Context, ph int, ops []*op, res *Result, se *SyncError) error {
	bo := p.cfg.RetryMin
	todo := ops
	raw := p.rawDeletes[ph]
	for attempt := 1; ; attempt++ {
		updates := make([]*p4v1.Update, 0, len(todo)+len(raw))
		sent := make([]*op, 0, len(todo)+len(raw))
		for _, o := range todo {
			ent := p.encode(o)
			if ent == nil {
				continue
			}
			updates = append(updates, &p4v1.Update{Type: o.sendType(), Entity: ent})
			sent = append(sent, o)
		}
		for _, ent := range raw {
			updates = append(updates, &p4v1.Update{Type: p4v1.Update_DELETE, Entity: ent})
			sent = append(sent, nil)
		}
		var retry, exists []*op
		var rawLeft []*p4v1.Entity
		transient := false
		for i := 0; i < len(updates); i += p.cfg.BatchSize {
			j := min(i+p.cfg.BatchSize, len(updates))
			start := time.Now()
			err := p.target.Write(ctx, updates[i:j])
			p.m.batchDuration.Observe(time.Since(start).Seconds())
			if !errors.Is(err, ErrNotPrimary) {
				res.Writes++
				p.m.writes.Inc()
			}
			var we *p4rt.WriteError
			switch {
			case err == nil:
				for _, o := range sent[i:j] {
					if o != nil {
						p.applied(o, res)
					}
				}
			case errors.Is(err, ErrNotPrimary):
				p.abandon(sent[i:])
				return err
			case errors.As(err, &we) && len(we.Updates) == j-i:
				for n, u := range we.Updates {
					o := sent[i+n]
					if o == nil {
						if u.Code != codes.OK && u.Code != codes.NotFound {
							rawLeft = append(rawLeft, updates[i+n].GetEntity())
							se.add("(unreadable entries)", u.Code, u.Message)
						}
						continue
					}
					switch p.outcome(o, u, res, se) {
					case retryNow:
						retry = append(retry, o)
					case retryLater:
						retry = append(retry, o)
						transient = true
					case compare:
						exists = append(exists, o)
					}
				}
			default:
				if ctx.Err() != nil {
					p.abandon(sent[i:])
					return ctx.Err()
				}
				// The whole RPC failed: the target may or may not have
				// applied it; retrying is safe (an insert that landed comes
				// back ALREADY_EXISTS, a delete NOT_FOUND).
				p.log.Warn("Write failed as a whole; will retry", zap.Error(err), zap.Int("updates", j-i))
				for _, o := range sent[i:j] {
					if o != nil {
						p.m.updateErrors.WithLabelValues(o.sendTypeName(), o.e.Container(), status.Code(err).String()).Inc()
						retry = append(retry, o)
					}
				}
				for n := i; n < j; n++ {
					if sent[n] == nil {
						rawLeft = append(rawLeft, updates[n].GetEntity())
					}
				}
				transient = true
			}
		}
		raw = nil
		p.rawDeletes[ph] = rawLeft
		if len(exists) > 0 {
			retry = append(retry, p.compareExisting(ctx, exists, res)...)
		}
		if len(retry) == 0 {
			return nil
		}
		if attempt >= p.cfg.MaxAttempts {
			for _, o := range retry {
				se.add(o.e.Container(), codes.Unavailable, fmt.Sprintf("%s %s: gave up after %d attempts", o.typ, o.e, attempt))
				p.release(o)
			}
			return nil
		}
		if transient {
			select {
			case <-ctx.Done():
				p.abandon(nil)
				for _, o := range retry {
					p.release(o)
				}
				return ctx.Err()
			case <-time.After(bo):
			}
			bo = min(bo*2, p.cfg.RetryMax)
		}
		todo = retry
	}
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
	if _, installed := p.have[o.key]; installed {
		return
	}
	switch o.e.Kind {
	case entry.KindMember:
		space(p.ids.members, o.e.Profile).free(o.e.Name)
	case entry.KindGroup:
		space(p.ids.groups, o.e.Profile).free(o.e.Name)
	}
}

// encode turns o into an entity, or returns nil when o cannot be sent now
// (a dependency is not installed: o stays dirty) or ever (invalid: o is
// rejected).
func (p *Programmer) encode(o *op) *p4v1.Entity {
	if o.reset {
		ent, err := p.info.DefaultReset(o.e.Table)
		if err != nil {
			p.reject(o.key, o.e, err)
			return nil
		}
		return ent
	}
	if o.typ == opDelete {
		if !p.ownIDKnown(o.e) {
			// Cannot happen for entries the programmer installed or read
			// back; never guess an id for a delete.
			p.log.Error("No id for an installed member or group; forgetting it", zap.String("table", o.e.Container()),
				zap.Stringer("entry", o.e))
			delete(p.have, o.key)
			delete(p.dirty, o.key)
			return nil
		}
		ent, err := p.info.Encode(o.e, deleteIDs{p.ids})
		if err != nil {
			p.log.Error("Cannot encode an installed entry for deletion", zap.String("table", o.e.Container()),
				zap.Stringer("entry", o.e), zap.Error(err))
			p.rejected[o.key] = err
			delete(p.dirty, o.key)
			return nil
		}
		if te := ent.GetTableEntry(); te != nil {
			te.Action = nil // DELETE needs only the key
		}
		return ent
	}
	if why := p.missingDependency(o.e); why != "" {
		p.blocked[o.key] = why
		return nil
	}
	delete(p.blocked, o.key)
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
	ent, err := p.info.Encode(o.e, p.ids)
	if err != nil {
		p.release(o)
		p.m.updateErrors.WithLabelValues(o.typ.String(), o.e.Container(), "P4INFO").Inc()
		p.reject(o.key, o.e, err)
		return nil
	}
	return ent
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
	_, ok := p.have[entry.Entry{Kind: kind, Profile: profile, Name: name}.Key()]
	return ok
}

type verdict uint8

const (
	done verdict = iota
	retryNow
	retryLater
	compare
)

// outcome handles one update's status from the target.
func (p *Programmer) outcome(o *op, u p4rt.UpdateStatus, res *Result, se *SyncError) verdict {
	if u.Code == codes.OK {
		p.applied(o, res)
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
		p.applied(o, res) // already gone
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
	p.reject(o.key, o.e, fmt.Errorf("target refused %s: %s: %s", o.typ, u.Code, u.Message))
	return done
}

// applied records a successful update.
func (p *Programmer) applied(o *op, res *Result) {
	k := o.key
	delete(p.dirty, k)
	delete(p.blocked, k)
	o.allocated = false
	p.m.updates.WithLabelValues(o.sendTypeName(), o.e.Container()).Inc()
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
	if o.e.Kind == entry.KindDefault {
		if init, ok := p.info.InitialDefault(o.e.Table); o.reset || (ok && init.Equal(o.e)) {
			delete(p.have, k)
		} else {
			p.have[k] = o.e
		}
		return
	}
	_, had := p.have[k]
	if o.typ == opDelete {
		delete(p.have, k)
		if had {
			p.haveCount[o.e.Container()]--
		}
		switch o.e.Kind {
		case entry.KindMember:
			space(p.ids.members, o.e.Profile).free(o.e.Name)
		case entry.KindGroup:
			space(p.ids.groups, o.e.Profile).free(o.e.Name)
		}
		return
	}
	p.have[k] = o.e
	if !had {
		p.haveCount[o.e.Container()]++
	}
}

// compareExisting reads back table entries whose insert met ALREADY_EXISTS:
// equal ones are adopted without a write, the others become modifies.
func (p *Programmer) compareExisting(ctx context.Context, ops []*op, res *Result) []*op {
	byKey := make(map[entry.Key]*op, len(ops))
	ents := make([]*p4v1.Entity, 0, len(ops))
	for _, o := range ops {
		ent, err := p.info.Encode(o.e, deleteIDs{p.ids})
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
			p.applied(o, res)
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
