package tables

import (
	"bytes"
	"time"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// SetPipeline implements SetForwardingPipelineConfig's actions (P4Runtime §14) on the store.
//
//   - VERIFY: compile the P4Info; nothing changes.
//   - VERIFY_AND_SAVE: the config becomes the one Read and Write refer to, with empty state; the data
//     plane keeps forwarding with the previous config until COMMIT.
//   - VERIFY_AND_COMMIT: the config replaces the running one; all forwarding state is cleared.
//   - COMMIT: the saved config, with the writes made since it was saved, becomes the running one.
//   - RECONCILE_AND_COMMIT: the config replaces the running one keeping the state of every object
//     that exists in both (same id and name, same key layout): table entries (with direct counters),
//     modified default entries, members, groups, counters, registers, digest configs. State of objects
//     absent from the new config is dropped. If kept state does not validate against the new config,
//     nothing changes and INVALID_ARGUMENT is returned.
func (s *Store) SetPipeline(action p4.SetForwardingPipelineConfigRequest_Action, cfg *p4.ForwardingPipelineConfig) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if action == p4.SetForwardingPipelineConfigRequest_COMMIT {
		if cfg != nil {
			return errf(codes.InvalidArgument, "COMMIT takes no config")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.pending == nil {
			return errf(codes.NotFound, "no saved config to commit")
		}
		st := s.pending
		s.pending = nil
		s.commit(st)
		return nil
	}
	switch action {
	case p4.SetForwardingPipelineConfigRequest_VERIFY, p4.SetForwardingPipelineConfigRequest_VERIFY_AND_SAVE,
		p4.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, p4.SetForwardingPipelineConfigRequest_RECONCILE_AND_COMMIT:
	default:
		return errf(codes.InvalidArgument, "unknown pipeline config action %v", action)
	}
	if cfg == nil || cfg.P4Info == nil {
		return errf(codes.InvalidArgument, "%v needs a config with a p4info", action)
	}
	schema, err := Compile(cfg.P4Info)
	if err != nil {
		return err
	}
	if action == p4.SetForwardingPipelineConfigRequest_VERIFY {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.newState(schema, s.nextGen())
	if cfg.Cookie != nil {
		st.cookie = proto.Clone(cfg.Cookie).(*p4.ForwardingPipelineConfig_Cookie)
	}
	st.devCfg = bytes.Clone(cfg.P4DeviceConfig)
	switch action {
	case p4.SetForwardingPipelineConfigRequest_VERIFY_AND_SAVE:
		s.pending = st
		s.rv.Store(st)
		return nil
	case p4.SetForwardingPipelineConfigRequest_RECONCILE_AND_COMMIT:
		st, err = s.migrate(s.controlBase(), st)
		if err != nil {
			return err
		}
	}
	s.pending = nil
	s.commit(st)
	return nil
}

func (s *Store) commit(st *State) {
	s.dp.Store(st)
	s.rv.Store(st)
	for _, f := range s.listeners {
		f(st)
	}
}

// migrate copies the state of old into the fresh state n (RECONCILE_AND_COMMIT), as a sequence of
// writes validated against the new config.
func (s *Store) migrate(old, n *State) (*State, error) {
	if old.Schema == nil {
		return n, nil
	}
	tx := s.begin(n)
	fail := func(what string, err error) error {
		tx.rollback()
		return errf(codes.InvalidArgument, "RECONCILE_AND_COMMIT cannot keep %s: %v", what, err)
	}
	insert := func(ent *p4.Entity) *Error {
		return tx.apply(&p4.Update{Type: p4.Update_INSERT, Entity: ent})
	}
	// Members, then groups, then entries (dependency order).
	for _, op := range old.profiles {
		np := n.Schema.Profile(op.Info.ID)
		if np == nil || np.Name != op.Info.Name {
			continue
		}
		var err error
		_ = old.readMembers(&p4.ActionProfileMember{ActionProfileId: op.Info.ID}, func(e *p4.Entity) error {
			if ierr := insert(e); ierr != nil {
				err = ierr
				return ierr
			}
			return nil
		})
		if err != nil {
			return nil, fail("action profile "+op.Info.Name, err)
		}
		_ = old.readGroups(&p4.ActionProfileGroup{ActionProfileId: op.Info.ID}, func(e *p4.Entity) error {
			if ierr := insert(e); ierr != nil {
				err = ierr
				return ierr
			}
			return nil
		})
		if err != nil {
			return nil, fail("action profile "+op.Info.Name, err)
		}
	}
	for _, ot := range old.tables {
		nti := n.Schema.Table(ot.Info.ID)
		if nti == nil || nti.Name != ot.Info.Name {
			continue
		}
		if !sameKeyLayout(ot.Info, nti) {
			if ot.count > 0 {
				return nil, fail("table "+ot.Info.Name, errf(codes.InvalidArgument, "its match fields changed"))
			}
			continue
		}
		var err error
		old.Each(ot, func(e *Entry) bool {
			te := old.encodeEntry(ot, e, ot.Info.DirectCounter != nil && nti.DirectCounter != nil, false, 0)
			te.IsConst = false
			if ierr := insert(&p4.Entity{Entity: &p4.Entity_TableEntry{TableEntry: te}}); ierr != nil {
				err = ierr
				return false
			}
			if e.Learned || e.IsConst {
				nt := tx.st.ownTable(nti.Index)
				k := e.clone()
				k.Table = nti
				if ne := nt.find(k); ne != nil {
					c := ne.clone()
					c.Learned, c.IsConst = e.Learned, e.IsConst
					nt.put(tx.st.gen, c, true)
					if ch := nt.rt.chunk(c.Handle); ch != nil {
						if och := ot.rt.chunk(e.Handle); och != nil {
							ch.profile[c.Handle&chunkMask].Store(och.profile[e.Handle&chunkMask].Load())
						}
					}
				}
			}
			return true
		})
		if err != nil {
			return nil, fail("table "+ot.Info.Name, err)
		}
		initial := s.initialDefault(ot, 0)
		if d := ot.def; d.Action.ID != initial.Action.ID || !bytes.Equal(d.Action.Params, initial.Action.Params) || len(d.Metadata) > 0 || d.ControllerMetadata != 0 {
			te := old.encodeEntry(ot, d, false, false, 0)
			if ierr := tx.apply(&p4.Update{Type: p4.Update_MODIFY, Entity: &p4.Entity{Entity: &p4.Entity_TableEntry{TableEntry: te}}}); ierr != nil {
				return nil, fail("the default entry of table "+ot.Info.Name, ierr)
			}
		}
		if ot.Info.DirectCounter != nil && nti.DirectCounter != nil {
			nt := tx.st.tables[nti.Index]
			nt.rt.setCounter(nt.def.Handle, ot.rt.counter(ot.def.Handle))
		}
	}
	for _, oc := range old.Schema.Counters {
		nc := n.Schema.Counter(oc.ID)
		if nc == nil || nc.Name != oc.Name {
			continue
		}
		oa, na := old.rt.counters[oc.Index], n.rt.counters[nc.Index]
		for i := 0; i < int(min(oc.Size, nc.Size)); i++ {
			na.set(i, oa.get(i))
		}
	}
	for _, or := range old.Schema.Registers {
		nr := n.Schema.Register(or.ID)
		if nr == nil || nr.Name != or.Name || !proto.Equal(nr.TypeSpec, or.TypeSpec) {
			continue
		}
		oa, na := old.rt.registers[or.Index], n.rt.registers[nr.Index]
		for i := 0; i < int(min(or.Size, nr.Size)); i++ {
			na.store(i, oa.load(i))
		}
	}
	for id, cfg := range old.digests {
		if d := n.Schema.Digest(id); d != nil && d.Name == old.Schema.Digest(id).Name {
			tx.st.digests[id] = cfg
		}
	}
	tx.st.portDown = old.portDown
	tx.finish()
	return tx.st, nil
}

// Learn inserts an entry from the data plane into learner table t (PNA add_on_miss): key (KeyLen
// bytes), the action and its parameters (ActionInfo layout), and the expire-time profile. If another
// worker learned the same key first, the existing entry is returned. Errors: the table is not a learner
// or not exact-match, the action is not allowed, the table is full (RESOURCE_EXHAUSTED). Learn takes
// the store lock; a control-plane batch releases it between chunks of ChunkSize updates, so a learn
// waits at most one chunk (ROLLBACK_ON_ERROR / DATAPLANE_ATOMIC batches hold it for their whole length).
func (s *Store) Learn(t *Table, key []byte, actionID uint32, params []byte, profile uint8) (*Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.learnLocked(t, key, actionID, params, profile)
}

// TryLearn is Learn without waiting: it returns ErrBusy if the store lock is held.
func (s *Store) TryLearn(t *Table, key []byte, actionID uint32, params []byte, profile uint8) (*Entry, error) {
	if !s.mu.TryLock() {
		return nil, ErrBusy
	}
	defer s.mu.Unlock()
	return s.learnLocked(t, key, actionID, params, profile)
}

func (s *Store) learnLocked(t *Table, key []byte, actionID uint32, params []byte, profile uint8) (*Entry, error) {
	base := s.dp.Load()
	ti := t.Info
	if base.Schema == nil || ti.Index >= len(base.tables) || base.tables[ti.Index].Info != ti {
		return nil, errf(codes.FailedPrecondition, "table %q is not part of the running pipeline config", ti.Name)
	}
	if t.rt.learner == nil {
		return nil, errf(codes.FailedPrecondition, "table %q is not a learner table", ti.Name)
	}
	if !ti.ExactOnly {
		return nil, errf(codes.FailedPrecondition, "learner table %q must be exact-match", ti.Name)
	}
	if len(key) != ti.KeyLen {
		return nil, errf(codes.InvalidArgument, "table %q: key of %d bytes, want %d", ti.Name, len(key), ti.KeyLen)
	}
	ref, ok := ti.Actions[actionID]
	if !ok || ref.Scope == ScopeDefaultOnly {
		return nil, errf(codes.InvalidArgument, "table %q: action %#x cannot be learned", ti.Name, actionID)
	}
	if len(params) != ref.Action.ParamsLen {
		return nil, errf(codes.InvalidArgument, "table %q: action %q params of %d bytes, want %d", ti.Name, ref.Action.Name, len(params), ref.Action.ParamsLen)
	}
	cur := base.tables[ti.Index]
	e := &Entry{Table: ti, Mask: ti.validMask, Kind: ActDirect, Learned: true}
	e.newKey(ti.KeyLen)
	for i := range key {
		e.Key[i] = key[i] & ti.validMask[i]
	}
	if old := cur.find(e); old != nil {
		if cur.live == nil {
			old = latest(old)
		}
		return old, nil
	}
	if ti.Size > 0 && int64(cur.Len()) >= ti.Size {
		return nil, errf(codes.ResourceExhausted, "learner table %q is full (%d entries)", ti.Name, ti.Size)
	}
	e.Action = Action{ID: actionID, Info: ref.Action, Params: bytes.Clone(params)}
	if cur.live != nil {
		// The common case: no snapshot, no path copy; the entry is visible to every reader at once.
		e.Handle = cur.rt.alloc(s.opts.Now(), int64(s.opts.HandleGrace))
		if c := cur.rt.chunk(e.Handle); c != nil {
			c.profile[e.Handle&chunkMask].Store(uint32(profile))
		}
		cur.live.insert(e)
		return e, nil
	}
	tx := s.begin(base)
	nt := tx.st.ownTable(ti.Index)
	e.Handle = tx.alloc(nt)
	if c := nt.rt.chunk(e.Handle); c != nil {
		c.profile[e.Handle&chunkMask].Store(uint32(profile))
	}
	nt.put(tx.st.gen, e, false)
	tx.finish()
	s.publishData(tx.st)
	tx.cutVersions() // slab compaction may have retired identities
	return e, nil
}

// SetLearner configures (or, with nil, unconfigures) table name as a learner table, now and for every
// later pipeline config.
func (s *Store) SetLearner(name string, cfg *LearnerConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cfg == nil {
		delete(s.opts.Learners, name)
	} else {
		s.opts.Learners[name] = *cfg
	}
	for _, st := range []*State{s.dp.Load(), s.pending} {
		if st == nil || st.Schema == nil {
			continue
		}
		t := st.TableByName(name)
		if t == nil {
			continue
		}
		if cfg == nil {
			t.rt.learner = nil
		} else {
			c := *cfg
			t.rt.learner = &c
		}
		if !t.Info.ExactOnly || (cfg != nil) == (t.live != nil) {
			continue
		}
		// Move the entries between the snapshot structure and a live table.
		n := st.derive(s.nextGen())
		nt := n.ownTable(t.Info.Index)
		var ents []*Entry
		t.each(func(e *Entry) bool { ents = append(ents, latest(e)); return true })
		nt.tuples, nt.count, nt.live = nil, 0, nil
		if cfg != nil {
			nt.live = newLiveTable(s.seed, t.Info.validMask)
		}
		for _, e := range ents {
			nt.put(n.gen, e.clone(), false)
		}
		if st == s.pending {
			s.pending = n
			s.rv.Store(n)
		} else {
			s.publishData(n)
		}
	}
}

// IdleEntry is an entry whose idle timeout expired (for an IdleTimeoutNotification).
type IdleEntry struct {
	Table *Table
	Entry *Entry
}

// SweepResult is what one Sweep found.
type SweepResult struct {
	Idle    []IdleEntry // NOTIFY_CONTROL entries idle for at least their idle_timeout_ns (timers reset)
	Expired int         // learned entries deleted because their expire-time profile elapsed
	// Collapsed counts modified entries folded back into one slot (Options.CollapseBudget).
	Collapsed int
}

// Sweep scans the running tables: entries of NOTIFY_CONTROL tables idle for their idle_timeout_ns are
// returned (and their timer restarted, P4Runtime §16.4), learned entries of learner tables whose
// profile timeout elapsed since their last Touch are deleted. Call it periodically (the server does).
func (s *Store) Sweep() SweepResult {
	var res SweepResult
	st := s.dp.Load()
	if st.Schema == nil {
		return res
	}
	now := s.opts.Now()
	type victim struct {
		t *Table
		e *Entry
	}
	var victims []victim
	for _, t := range st.tables {
		lc := t.rt.learner
		if !t.Info.IdleTimeout && lc == nil {
			continue
		}
		t.each(func(e0 *Entry) bool {
			e := st.version(e0)
			c := t.rt.chunk(e.Handle)
			if c == nil {
				return true
			}
			i := e.Handle & chunkMask
			last := c.lastHit[i].Load()
			if e.Learned && lc != nil {
				p := int(c.profile[i].Load())
				if p < len(lc.Profiles) && lc.Profiles[p] > 0 && time.Duration(now-last) >= lc.Profiles[p] {
					victims = append(victims, victim{t, e0}) // the identity: compared below
				}
				return true
			}
			if t.Info.IdleTimeout && e.IdleTimeoutNs > 0 && now-last >= e.IdleTimeoutNs {
				c.lastHit[i].Store(now)
				res.Idle = append(res.Idle, IdleEntry{Table: t, Entry: e})
			}
			return true
		})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	base := s.dp.Load()
	if base.Schema != st.Schema || (len(victims) == 0 && !s.collapseDue(base)) {
		return res
	}
	tx := s.begin(base)
	for _, v := range victims {
		nt := tx.st.ownTable(v.t.Info.Index)
		cur := nt.find(v.e)
		if cur != v.e { // replaced or deleted meanwhile
			continue
		}
		c := nt.rt.chunk(cur.Handle)
		p := int(c.profile[cur.Handle&chunkMask].Load())
		lc := nt.rt.learner
		if lc == nil || p >= len(lc.Profiles) || lc.Profiles[p] <= 0 || time.Duration(now-c.lastHit[cur.Handle&chunkMask].Load()) < lc.Profiles[p] {
			continue // refreshed since the scan
		}
		nt.remove(tx.st.gen, cur)
		tx.retire(cur)
		tx.died(cur)
		if h := latest(cur); h != cur {
			tx.died(h)
		}
		tx.released = append(tx.released, handleRec{nt.rt, cur.Handle})
		res.Expired++
	}
	if s.opts.CollapseBudget > 0 {
		res.Collapsed = tx.collapse(s.opts.CollapseBudget, s.opts.CollapseAge)
	}
	if res.Expired == 0 && res.Collapsed == 0 {
		return res // nothing changed: nothing to publish
	}
	tx.finish()
	s.publishData(tx.st)
	tx.cutVersions()
	return res
}

// collapseDue reports whether some table of st has an identity versioned long enough to collapse
// (under mu).
func (s *Store) collapseDue(st *State) bool {
	if s.opts.CollapseBudget <= 0 {
		return false
	}
	now := s.opts.Now()
	for _, t := range st.tables {
		if v := t.rt.versioned; len(v) > 0 && now-v[0].at >= int64(s.opts.CollapseAge) {
			return true
		}
	}
	return false
}
