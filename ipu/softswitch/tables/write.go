package tables

import (
	"bytes"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// txn is one write transaction: it owns a derived State (edit generation st.gen) until commit.
type txn struct {
	s         *Store
	atomic    bool // DATAPLANE_ATOMIC: learner tables (changed live) are refused
	st        *State
	now       int64
	strict    bool
	allocated []handleRec
	released  []handleRec
	undo      []func()
	txnBooks           // slab entries installed and uninstalled by this transaction (slab.go)
	probe     Entry    // the decoded match of a MODIFY or DELETE (never installed)
	recs      []ovRec  // versions this transaction replaced (versions.go)
	updates   int      // how many updates the transaction applies (sizes recs)
	dead      []*Entry // identities this transaction took out of the trie with a version (versions.go)
	linked    bool     // recs are linked into the overlay chain (published)
}

type handleRec struct {
	rt *tableRuntime
	h  Handle
}

func (s *Store) begin(base *State) *txn {
	tx := &txn{s: s, st: base.derive(s.nextGen()), now: s.opts.Now(), strict: s.opts.RequireCanonical, txnBooks: s.books}
	s.books = txnBooks{}
	return tx
}

// returnBooks hands the emptied bookkeeping lists back to the store for the next transaction.
func (tx *txn) returnBooks() {
	clear(tx.borns)
	clear(tx.deaths)
	tx.s.books = txnBooks{tx.borns[:0], tx.deaths[:0]}
	tx.txnBooks = txnBooks{}
}

// finish makes the transaction's handle releases effective and links its overlay (the state is about
// to be published; call tx.cutVersions once it is).
func (tx *txn) finish() {
	tx.keepSlabBooks()
	tx.returnBooks()
	tx.linkOverlay()
	for _, r := range tx.released {
		r.rt.release(r.h, tx.now)
	}
}

// rollback undoes side effects outside the snapshot (handles, counter and register writes).
func (tx *txn) rollback() {
	tx.unpush()
	tx.returnBooks()
	for _, r := range tx.allocated {
		r.rt.unalloc(r.h)
	}
	for i := len(tx.undo) - 1; i >= 0; i-- {
		tx.undo[i]()
	}
}

func (tx *txn) addUndo(f func()) {
	if f != nil {
		tx.undo = append(tx.undo, f)
	}
}

func (tx *txn) alloc(t *Table) Handle {
	h := t.rt.alloc(tx.now, int64(tx.s.opts.HandleGrace))
	tx.allocated = append(tx.allocated, handleRec{t.rt, h})
	return h
}

// Write applies a batch of updates (P4Runtime Write, §12). It returns one error per update (nil for
// success; every error is an *Error), or a batch-level *Error when the batch could not be attempted
// (no pipeline config: FAILED_PRECONDITION; unknown atomicity: INVALID_ARGUMENT).
//
// CONTINUE_ON_ERROR applies every update; the data plane sees the batch chunk by chunk, reads see it
// once complete. ROLLBACK_ON_ERROR and DATAPLANE_ATOMIC are both implemented as one transaction
// published atomically: if any update fails nothing is applied, the failing updates carry their error
// and the others ABORTED.
func (s *Store) Write(updates []*p4.Update, atomicity p4.WriteRequest_Atomicity) ([]error, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	errs := make([]error, len(updates))
	switch atomicity {
	case p4.WriteRequest_CONTINUE_ON_ERROR:
		chunk := s.opts.ChunkSize
		for start := 0; start == 0 || start < len(updates); start += chunk {
			end := min(start+chunk, len(updates))
			s.mu.Lock()
			base := s.controlBase()
			if base.Schema == nil {
				s.mu.Unlock()
				return nil, errf(codes.FailedPrecondition, "no forwarding pipeline config")
			}
			tx := s.begin(base)
			tx.updates = end - start
			for i := start; i < end; i++ {
				if err := tx.apply(updates[i]); err != nil {
					errs[i] = err
				}
			}
			tx.finish()
			final := end >= len(updates)
			s.publishControl(tx.st, final)
			tx.cutVersions()
			s.inBatch = !final
			s.mu.Unlock()
			if final {
				break
			}
		}
		return errs, nil
	case p4.WriteRequest_ROLLBACK_ON_ERROR, p4.WriteRequest_DATAPLANE_ATOMIC:
		s.mu.Lock()
		defer s.mu.Unlock()
		base := s.controlBase()
		if base.Schema == nil {
			return nil, errf(codes.FailedPrecondition, "no forwarding pipeline config")
		}
		tx := s.begin(base)
		tx.updates = len(updates)
		tx.atomic = atomicity == p4.WriteRequest_DATAPLANE_ATOMIC
		failed := false
		for i, u := range updates {
			if err := tx.apply(u); err != nil {
				errs[i] = err
				failed = true
			}
		}
		if failed {
			tx.rollback()
			for i := range errs {
				if errs[i] == nil {
					errs[i] = errf(codes.Aborted, "not applied: another update of this %v batch failed", atomicity)
				}
			}
			return errs, nil
		}
		tx.finish()
		s.publishControl(tx.st, true)
		tx.cutVersions()
		return errs, nil
	default:
		return nil, errf(codes.InvalidArgument, "unknown atomicity %v", atomicity)
	}
}

// controlBase is the state control-plane writes apply to (under mu).
func (s *Store) controlBase() *State {
	if s.pending != nil {
		return s.pending
	}
	return s.dp.Load()
}

// publishControl publishes a control-plane state (under mu). final: the batch is complete.
func (s *Store) publishControl(st *State, final bool) {
	if s.pending != nil {
		s.pending = st
	} else {
		s.dp.Store(st)
	}
	if final {
		s.rv.Store(st)
	}
}

// publishData publishes a data-plane change (learning, expiry; under mu).
func (s *Store) publishData(st *State) {
	s.dp.Store(st)
	if s.pending == nil && !s.inBatch {
		s.rv.Store(st)
	}
}

func (tx *txn) apply(u *p4.Update) *Error {
	if u == nil || u.Entity == nil || u.Entity.Entity == nil {
		return errf(codes.InvalidArgument, "update without entity")
	}
	typ := u.Type
	if typ != p4.Update_INSERT && typ != p4.Update_MODIFY && typ != p4.Update_DELETE {
		return errf(codes.InvalidArgument, "update type %v", typ)
	}
	switch x := u.Entity.Entity.(type) {
	case *p4.Entity_TableEntry:
		return tx.tableEntry(typ, x.TableEntry)
	case *p4.Entity_ActionProfileMember:
		return tx.member(typ, x.ActionProfileMember)
	case *p4.Entity_ActionProfileGroup:
		return tx.group(typ, x.ActionProfileGroup)
	case *p4.Entity_CounterEntry:
		return tx.counterEntry(typ, x.CounterEntry)
	case *p4.Entity_DirectCounterEntry:
		return tx.directCounterEntry(typ, x.DirectCounterEntry)
	case *p4.Entity_RegisterEntry:
		return tx.registerEntry(typ, x.RegisterEntry)
	case *p4.Entity_DigestEntry:
		return tx.digestEntry(typ, x.DigestEntry)
	case *p4.Entity_MeterEntry, *p4.Entity_DirectMeterEntry:
		return errf(codes.Unimplemented, "meters are not supported by the embedded target")
	case *p4.Entity_PacketReplicationEngineEntry:
		return errf(codes.Unimplemented, "packet replication engine entries are not supported by the embedded target")
	case *p4.Entity_ValueSetEntry:
		return errf(codes.Unimplemented, "value sets are not supported by the embedded target")
	case *p4.Entity_ExternEntry:
		return errf(codes.Unimplemented, "extern entries are not supported by the embedded target")
	}
	return errf(codes.InvalidArgument, "unknown entity type")
}

func (tx *txn) lookupTable(id uint32) (*TableInfo, *Error) {
	if id == 0 {
		return nil, errf(codes.InvalidArgument, "table id 0")
	}
	ti := tx.st.Schema.Table(id)
	if ti == nil {
		return nil, errf(codes.NotFound, "unknown table id %#x", id)
	}
	return ti, nil
}

func (tx *txn) tableEntry(typ p4.Update_Type, te *p4.TableEntry) *Error {
	ti, err := tx.lookupTable(te.TableId)
	if err != nil {
		return err
	}
	if te.IsConst {
		return errf(codes.InvalidArgument, "table %q: is_const must be false in writes", ti.Name)
	}
	if typ != p4.Update_DELETE {
		if te.MeterConfig != nil || te.MeterCounterData != nil {
			return errf(codes.Unimplemented, "table %q: direct meters are not supported by the embedded target", ti.Name)
		}
		if te.TimeSinceLastHit != nil {
			return errf(codes.InvalidArgument, "table %q: time_since_last_hit must be unset in writes", ti.Name)
		}
		if te.IdleTimeoutNs < 0 {
			return errf(codes.InvalidArgument, "table %q: negative idle_timeout_ns", ti.Name)
		}
		if te.IdleTimeoutNs != 0 && (!ti.IdleTimeout || te.IsDefaultAction) {
			return errf(codes.InvalidArgument, "table %q: idle timeout is not supported for this table or entry", ti.Name)
		}
		if te.CounterData != nil && ti.DirectCounter == nil {
			return errf(codes.InvalidArgument, "table %q has no direct counter", ti.Name)
		}
		if c := te.CounterData; c != nil && (c.ByteCount < 0 || c.PacketCount < 0) {
			return errf(codes.InvalidArgument, "table %q: negative counter data", ti.Name)
		}
	}
	if te.IsDefaultAction {
		return tx.defaultEntry(typ, ti, te)
	}
	if typ == p4.Update_INSERT && len(ti.Fields) == 0 {
		return errf(codes.InvalidArgument, "table %q is keyless: only its default entry can be written", ti.Name)
	}
	if ti.IsConst && typ != p4.Update_MODIFY {
		return errf(codes.PermissionDenied, "table %q is const", ti.Name)
	}
	// An INSERT keeps the decoded entry; MODIFY and DELETE only look theirs up (a MODIFY installs a
	// copy of the old entry), so they decode into the transaction's probe.
	t := tx.st.tables[ti.Index]
	e := &tx.probe
	if typ == p4.Update_INSERT {
		e = tx.newEntry(t)
	}
	if err := decodeMatchInto(e, ti, te.Match, te.Priority, tx.strict); err != nil {
		return err
	}
	if t.live != nil && tx.atomic {
		return errf(codes.Unimplemented, "table %q is a learner table (changed live by the data plane): DATAPLANE_ATOMIC batches cannot include it", ti.Name)
	}
	old := t.find(e)
	switch typ {
	case p4.Update_INSERT:
		if old != nil {
			return errf(codes.AlreadyExists, "table %q: entry already exists", ti.Name)
		}
		if ti.Size > 0 && int64(t.Len()) >= ti.Size {
			return errf(codes.ResourceExhausted, "table %q is full (%d entries)", ti.Name, ti.Size)
		}
		if te.Action == nil {
			return errf(codes.InvalidArgument, "table %q: INSERT needs an action", ti.Name)
		}
		if err := tx.decodeTableAction(ti, te.Action, e); err != nil {
			return err
		}
		if err := tx.acquire(ti, e); err != nil {
			return err
		}
		e.Metadata = cloneBytes(te.Metadata)
		e.ControllerMetadata = te.ControllerMetadata
		e.IdleTimeoutNs = te.IdleTimeoutNs
		t = tx.st.ownTable(ti.Index)
		e.vgen = tx.st.gen
		e.Handle = tx.alloc(t)
		if c := te.CounterData; c != nil {
			t.rt.setCounter(e.Handle, CounterValue{Packets: uint64(c.PacketCount), Bytes: uint64(c.ByteCount)})
		}
		tx.addUndo(t.put(tx.st.gen, e, false))
		tx.born(e)
		return nil
	case p4.Update_MODIFY:
		if old == nil {
			return errf(codes.NotFound, "table %q: no such entry", ti.Name)
		}
		e0 := old // the identity in the trie
		if t.live == nil {
			old = latest(e0)
		}
		n := tx.newEntry(t)
		old.cloneInto(n)
		if ti.IsConst || old.IsConst {
			if te.Action != nil {
				return errf(codes.PermissionDenied, "table %q: const entries only allow direct resource changes", ti.Name)
			}
		} else {
			if te.Action != nil {
				if err := tx.decodeTableAction(ti, te.Action, n); err != nil {
					return err
				}
				if err := tx.acquire(ti, n); err != nil {
					return err
				}
				tx.releaseRefs(ti, old)
			}
			n.Metadata = cloneBytes(te.Metadata)
			n.ControllerMetadata = te.ControllerMetadata
			n.IdleTimeoutNs = te.IdleTimeoutNs
		}
		if c := te.CounterData; c != nil {
			tx.setDirect(t, n.Handle, c)
		}
		if t.live != nil {
			tx.addUndo(t.put(tx.st.gen, n, true))
			return nil
		}
		// A new version of the identity: no trie node changes (versions.go).
		tx.push(e0, old, n)
		tx.born(n)
		if old != e0 {
			tx.died(old) // the identity stays installed; a replaced version dies
		}
		return nil
	default: // DELETE
		if old == nil {
			return errf(codes.NotFound, "table %q: no such entry", ti.Name)
		}
		head := old
		if t.live == nil {
			head = latest(old)
		}
		if head.IsConst {
			return errf(codes.PermissionDenied, "table %q: entry is const", ti.Name)
		}
		tx.releaseRefs(ti, head)
		t = tx.st.ownTable(ti.Index)
		tx.addUndo(t.remove(tx.st.gen, old))
		tx.retire(old)
		tx.died(old)
		if head != old {
			tx.died(head)
		}
		tx.released = append(tx.released, handleRec{t.rt, old.Handle})
		return nil
	}
}

func (tx *txn) setDirect(t *Table, h Handle, c *p4.CounterData) {
	prev := t.rt.counter(h)
	rt := t.rt
	tx.undo = append(tx.undo, func() { rt.setCounter(h, prev) })
	rt.setCounter(h, CounterValue{Packets: uint64(c.PacketCount), Bytes: uint64(c.ByteCount)})
}

func (tx *txn) defaultEntry(typ p4.Update_Type, ti *TableInfo, te *p4.TableEntry) *Error {
	if typ != p4.Update_MODIFY {
		return errf(codes.InvalidArgument, "table %q: the default entry can only be modified", ti.Name)
	}
	if len(te.Match) > 0 || te.Priority != 0 {
		return errf(codes.InvalidArgument, "table %q: the default entry has no match and no priority", ti.Name)
	}
	t := tx.st.ownTable(ti.Index)
	old := t.def
	var n *Entry
	if te.Action != nil {
		if ti.ConstDefaultActionID != 0 || ti.Profile != nil {
			return errf(codes.PermissionDenied, "table %q: the default action is const", ti.Name)
		}
		a := te.Action.GetAction()
		if a == nil {
			return errf(codes.InvalidArgument, "table %q: the default entry takes a direct action", ti.Name)
		}
		act, err := decodeAction(a, ti.Actions, true, tx.strict, desc{"table", ti.Name, "default", "", ""}, nil)
		if err != nil {
			return err
		}
		n = old.clone()
		n.Action = act
		n.Metadata = cloneBytes(te.Metadata)
		n.ControllerMetadata = te.ControllerMetadata
	} else {
		n = tx.s.initialDefault(t, tx.now)
		if ti.ConstDefaultActionID != 0 || ti.Profile != nil {
			// Resetting a const default is a no-op; only direct resources may change.
			n.Metadata, n.ControllerMetadata = old.Metadata, old.ControllerMetadata
		}
	}
	if c := te.CounterData; c != nil {
		tx.setDirect(t, n.Handle, c)
	}
	t.def = n
	return nil
}

// decodeTableAction fills e's action from a TableAction, checking it against the table kind.
func (tx *txn) decodeTableAction(ti *TableInfo, ta *p4.TableAction, e *Entry) *Error {
	e.Action, e.MemberID, e.GroupID, e.OneShot, e.poff = Action{}, 0, 0, nil, 0
	switch x := ta.Type.(type) {
	case *p4.TableAction_Action:
		if ti.Profile != nil {
			return errf(codes.InvalidArgument, "table %q is implemented by action profile %q: use a member, group or action set", ti.Name, ti.Profile.Name)
		}
		act, err := decodeAction(x.Action, ti.Actions, false, tx.strict, desc{"table", ti.Name, "", "", ""}, e.paramSpace())
		if err != nil {
			return err
		}
		e.Kind, e.Action = ActDirect, act
		e.noteInlineParams()
	case *p4.TableAction_ActionProfileMemberId:
		if ti.Profile == nil {
			return errf(codes.InvalidArgument, "table %q is a direct table: use an action", ti.Name)
		}
		if x.ActionProfileMemberId == 0 {
			return errf(codes.InvalidArgument, "table %q: member id 0", ti.Name)
		}
		e.Kind, e.MemberID = ActMember, x.ActionProfileMemberId
	case *p4.TableAction_ActionProfileGroupId:
		if ti.Profile == nil || !ti.Profile.WithSelector {
			return errf(codes.InvalidArgument, "table %q has no action selector: groups are not allowed", ti.Name)
		}
		if x.ActionProfileGroupId == 0 {
			return errf(codes.InvalidArgument, "table %q: group id 0", ti.Name)
		}
		e.Kind, e.GroupID = ActGroup, x.ActionProfileGroupId
	case *p4.TableAction_ActionProfileActionSet:
		if ti.Profile == nil || !ti.Profile.WithSelector {
			return errf(codes.InvalidArgument, "table %q has no action selector: action sets are not allowed", ti.Name)
		}
		pi := ti.Profile
		os := &OneShot{}
		var sum int64
		for _, apa := range x.ActionProfileActionSet.GetActionProfileActions() {
			if apa.Action == nil {
				return errf(codes.InvalidArgument, "table %q: action set member without action", ti.Name)
			}
			act, err := decodeAction(apa.Action, pi.Actions, false, tx.strict, desc{"table", ti.Name, "action set", "", ""}, nil)
			if err != nil {
				return err
			}
			if apa.Weight <= 0 {
				return errf(codes.InvalidArgument, "table %q: action set weight must be > 0, got %d", ti.Name, apa.Weight)
			}
			if pi.SumOfMembers && pi.MaxMemberWeight > 0 && apa.Weight > pi.MaxMemberWeight {
				return errf(codes.InvalidArgument, "table %q: weight %d above max_member_weight %d", ti.Name, apa.Weight, pi.MaxMemberWeight)
			}
			_, isBytes := apa.WatchKind.(*p4.ActionProfileAction_WatchPort)
			port, kind, werr := decodeWatch(apa.GetWatchPort(), apa.GetWatch(), isBytes, tx.strict, desc{"table", ti.Name, "", "", ""})
			if werr != nil {
				return werr
			}
			os.Actions = append(os.Actions, act)
			os.Members = append(os.Members, GroupMember{Weight: apa.Weight, WatchPort: port, Watch: kind})
			sum += int64(apa.Weight)
		}
		if pi.SumOfMembers {
			os.size = int64(len(os.Members))
		} else {
			os.size = sum
		}
		if pi.MaxGroupSize > 0 && os.size > int64(pi.MaxGroupSize) {
			return errf(codes.InvalidArgument, "table %q: action set size %d above max_group_size %d", ti.Name, os.size, pi.MaxGroupSize)
		}
		if sum > 1<<31 {
			return errf(codes.InvalidArgument, "table %q: action set weights too large", ti.Name)
		}
		os.cum = cumulative(os.Members)
		e.Kind, e.OneShot = ActOneShot, os
	default:
		return errf(codes.InvalidArgument, "table %q: empty table action", ti.Name)
	}
	return nil
}

// acquire checks and takes the references e's action holds (members, groups, selector capacity).
func (tx *txn) acquire(ti *TableInfo, e *Entry) *Error {
	if ti.Profile == nil {
		return nil
	}
	p := tx.st.profiles[ti.Profile.Index]
	switch e.Kind {
	case ActMember:
		if p.oneShots > 0 {
			return errf(codes.InvalidArgument, "action profile %q is programmed with one-shot action sets", p.Info.Name)
		}
		if p.Member(e.MemberID) == nil {
			return errf(codes.NotFound, "action profile %q: no member %d", p.Info.Name, e.MemberID)
		}
		p = tx.st.ownProfile(ti.Profile.Index)
		p.ownMember(tx.st.gen, e.MemberID).entryRefs++
	case ActGroup:
		if p.oneShots > 0 {
			return errf(codes.InvalidArgument, "action profile %q is programmed with one-shot action sets", p.Info.Name)
		}
		if p.Group(e.GroupID) == nil {
			return errf(codes.NotFound, "action profile %q: no group %d", p.Info.Name, e.GroupID)
		}
		p = tx.st.ownProfile(ti.Profile.Index)
		p.ownGroup(tx.st.gen, e.GroupID).entryRefs++
	case ActOneShot:
		if p.members.n > 0 || p.nGroups > 0 {
			return errf(codes.InvalidArgument, "action profile %q is programmed with members and groups: one-shot action sets are not allowed", p.Info.Name)
		}
		if p.Info.Size > 0 && p.used+e.OneShot.size > p.Info.Size {
			return errf(codes.ResourceExhausted, "action selector %q is full", p.Info.Name)
		}
		p = tx.st.ownProfile(ti.Profile.Index)
		p.oneShots++
		p.used += e.OneShot.size
	}
	return nil
}

func (tx *txn) releaseRefs(ti *TableInfo, e *Entry) {
	if ti.Profile == nil {
		return
	}
	p := tx.st.ownProfile(ti.Profile.Index)
	switch e.Kind {
	case ActMember:
		if m := p.ownMember(tx.st.gen, e.MemberID); m != nil {
			m.entryRefs--
		}
	case ActGroup:
		if g := p.ownGroup(tx.st.gen, e.GroupID); g != nil {
			g.entryRefs--
		}
	case ActOneShot:
		p.oneShots--
		p.used -= e.OneShot.size
	}
}

func (tx *txn) lookupProfile(id uint32) (*Profile, *Error) {
	if id == 0 {
		return nil, errf(codes.InvalidArgument, "action profile id 0")
	}
	pi := tx.st.Schema.Profile(id)
	if pi == nil {
		return nil, errf(codes.NotFound, "unknown action profile id %#x", id)
	}
	return tx.st.profiles[pi.Index], nil
}

func (tx *txn) member(typ p4.Update_Type, m *p4.ActionProfileMember) *Error {
	p, err := tx.lookupProfile(m.ActionProfileId)
	if err != nil {
		return err
	}
	name := p.Info.Name
	if m.MemberId == 0 {
		return errf(codes.InvalidArgument, "action profile %q: member id 0", name)
	}
	old := p.Member(m.MemberId)
	switch typ {
	case p4.Update_INSERT, p4.Update_MODIFY:
		if typ == p4.Update_INSERT && old != nil {
			return errf(codes.AlreadyExists, "action profile %q: member %d exists", name, m.MemberId)
		}
		if typ == p4.Update_MODIFY && old == nil {
			return errf(codes.NotFound, "action profile %q: no member %d", name, m.MemberId)
		}
		if m.Action == nil {
			return errf(codes.InvalidArgument, "action profile %q: member %d needs an action", name, m.MemberId)
		}
		if p.oneShots > 0 {
			return errf(codes.InvalidArgument, "action profile %q is programmed with one-shot action sets", name)
		}
		act, aerr := decodeAction(m.Action, p.Info.Actions, false, tx.strict, desc{"action profile", name, "", "", ""}, nil)
		if aerr != nil {
			return aerr
		}
		if typ == p4.Update_INSERT && p.Info.Size > 0 && int64(p.members.n) >= p.Info.Size {
			return errf(codes.ResourceExhausted, "action profile %q is full (%d members)", name, p.Info.Size)
		}
		p = tx.st.ownProfile(p.Info.Index)
		nm := &Member{ID: m.MemberId, Action: act}
		if old != nil {
			nm.groupRefs, nm.entryRefs = old.groupRefs, old.entryRefs
		}
		p.putMember(tx.st.gen, nm, old == nil)
		return nil
	default:
		if old == nil {
			return errf(codes.NotFound, "action profile %q: no member %d", name, m.MemberId)
		}
		if old.groupRefs > 0 || old.entryRefs > 0 {
			return errf(codes.FailedPrecondition, "action profile %q: member %d is used by %d groups and %d entries", name, m.MemberId, old.groupRefs, old.entryRefs)
		}
		p = tx.st.ownProfile(p.Info.Index)
		p.delMember(tx.st.gen, m.MemberId)
		return nil
	}
}

func (tx *txn) group(typ p4.Update_Type, g *p4.ActionProfileGroup) *Error {
	p, err := tx.lookupProfile(g.ActionProfileId)
	if err != nil {
		return err
	}
	pi := p.Info
	if !pi.WithSelector {
		return errf(codes.InvalidArgument, "action profile %q has no selector: groups are not allowed", pi.Name)
	}
	if g.GroupId == 0 {
		return errf(codes.InvalidArgument, "action selector %q: group id 0", pi.Name)
	}
	old := p.Group(g.GroupId)
	if typ == p4.Update_DELETE {
		if old == nil {
			return errf(codes.NotFound, "action selector %q: no group %d", pi.Name, g.GroupId)
		}
		if old.entryRefs > 0 {
			return errf(codes.FailedPrecondition, "action selector %q: group %d is used by %d entries", pi.Name, g.GroupId, old.entryRefs)
		}
		p = tx.st.ownProfile(pi.Index)
		for _, gm := range old.Members {
			if m := p.ownMember(tx.st.gen, gm.ID); m != nil {
				m.groupRefs--
			}
		}
		p.used -= old.size
		p.delGroup(tx.st.gen, g.GroupId)
		return nil
	}
	if typ == p4.Update_INSERT && old != nil {
		return errf(codes.AlreadyExists, "action selector %q: group %d exists", pi.Name, g.GroupId)
	}
	if typ == p4.Update_MODIFY {
		if old == nil {
			return errf(codes.NotFound, "action selector %q: no group %d", pi.Name, g.GroupId)
		}
		if g.MaxSize != old.MaxSize {
			return errf(codes.InvalidArgument, "action selector %q: group %d max_size cannot change (%d → %d)", pi.Name, g.GroupId, old.MaxSize, g.MaxSize)
		}
	}
	if p.oneShots > 0 {
		return errf(codes.InvalidArgument, "action selector %q is programmed with one-shot action sets", pi.Name)
	}
	if g.MaxSize < 0 {
		return errf(codes.InvalidArgument, "action selector %q: negative max_size", pi.Name)
	}
	if pi.MaxGroupSize > 0 && (g.MaxSize == 0 || g.MaxSize > pi.MaxGroupSize) {
		return errf(codes.InvalidArgument, "action selector %q: max_size %d must be in 1..%d", pi.Name, g.MaxSize, pi.MaxGroupSize)
	}
	if pi.MaxGroupSize == 0 && pi.Size > 0 && int64(g.MaxSize) > pi.Size {
		return errf(codes.ResourceExhausted, "action selector %q: max_size %d above the target's %d", pi.Name, g.MaxSize, pi.Size)
	}
	ng := &Group{ID: g.GroupId, MaxSize: g.MaxSize}
	seen := map[uint32]bool{}
	var sum int64
	for _, gm := range g.Members {
		if gm.MemberId == 0 {
			return errf(codes.InvalidArgument, "action selector %q: member id 0", pi.Name)
		}
		if seen[gm.MemberId] {
			return errf(codes.InvalidArgument, "action selector %q: member %d listed twice", pi.Name, gm.MemberId)
		}
		seen[gm.MemberId] = true
		if gm.Weight <= 0 {
			return errf(codes.InvalidArgument, "action selector %q: member %d weight must be > 0, got %d", pi.Name, gm.MemberId, gm.Weight)
		}
		if pi.SumOfMembers && pi.MaxMemberWeight > 0 && gm.Weight > pi.MaxMemberWeight {
			return errf(codes.InvalidArgument, "action selector %q: member %d weight %d above max_member_weight %d", pi.Name, gm.MemberId, gm.Weight, pi.MaxMemberWeight)
		}
		if p.Member(gm.MemberId) == nil {
			return errf(codes.NotFound, "action selector %q: no member %d", pi.Name, gm.MemberId)
		}
		_, isBytes := gm.WatchKind.(*p4.ActionProfileGroup_Member_WatchPort)
		port, kind, werr := decodeWatch(gm.GetWatchPort(), gm.GetWatch(), isBytes, tx.strict, desc{"action selector", pi.Name, "", "", ""})
		if werr != nil {
			return werr
		}
		ng.Members = append(ng.Members, GroupMember{ID: gm.MemberId, Weight: gm.Weight, WatchPort: port, Watch: kind})
		sum += int64(gm.Weight)
	}
	if sum > 1<<31 {
		return errf(codes.InvalidArgument, "action selector %q: weights too large", pi.Name)
	}
	if pi.SumOfMembers {
		ng.size = int64(len(ng.Members))
	} else {
		ng.size = sum
	}
	limit := int64(g.MaxSize)
	if limit == 0 {
		limit = pi.Size
	}
	if limit > 0 && ng.size > limit {
		return errf(codes.ResourceExhausted, "action selector %q: group %d needs %d, max_size is %d", pi.Name, g.GroupId, ng.size, limit)
	}
	used := p.used + ng.size
	if old != nil {
		used -= old.size
	}
	if pi.Size > 0 && used > pi.Size {
		return errf(codes.ResourceExhausted, "action selector %q is full (%d of %d used)", pi.Name, p.used, pi.Size)
	}
	ng.cum = cumulative(ng.Members)
	p = tx.st.ownProfile(pi.Index)
	if old != nil {
		ng.entryRefs = old.entryRefs
		for _, gm := range old.Members {
			if m := p.ownMember(tx.st.gen, gm.ID); m != nil {
				m.groupRefs--
			}
		}
	}
	for _, gm := range ng.Members {
		p.ownMember(tx.st.gen, gm.ID).groupRefs++
	}
	p.used = used
	p.putGroup(tx.st.gen, ng, old == nil)
	return nil
}

func (tx *txn) counterEntry(typ p4.Update_Type, c *p4.CounterEntry) *Error {
	if typ != p4.Update_MODIFY {
		return errf(codes.InvalidArgument, "counter entries can only be modified")
	}
	if c.CounterId == 0 {
		return errf(codes.InvalidArgument, "counter id 0")
	}
	ci := tx.st.Schema.Counter(c.CounterId)
	if ci == nil {
		return errf(codes.NotFound, "unknown counter id %#x", c.CounterId)
	}
	lo, hi, err := indexRange(c.Index, ci.Size, "counter "+ci.Name)
	if err != nil {
		return err
	}
	if c.Data == nil {
		return nil
	}
	if c.Data.PacketCount < 0 || c.Data.ByteCount < 0 {
		return errf(codes.InvalidArgument, "counter %q: negative counter data", ci.Name)
	}
	a := tx.st.rt.counters[ci.Index]
	v := CounterValue{Packets: uint64(c.Data.PacketCount), Bytes: uint64(c.Data.ByteCount)}
	for i := lo; i < hi; i++ {
		prev := a.get(i)
		i := i
		tx.undo = append(tx.undo, func() { a.set(i, prev) })
		a.set(i, v)
	}
	return nil
}

func indexRange(idx *p4.Index, size int64, what string) (int, int, *Error) {
	if idx == nil {
		return 0, int(size), nil
	}
	if idx.Index < 0 {
		return 0, 0, errf(codes.InvalidArgument, "%s: negative index %d", what, idx.Index)
	}
	if idx.Index >= size {
		return 0, 0, errf(codes.OutOfRange, "%s: index %d beyond size %d", what, idx.Index, size)
	}
	return int(idx.Index), int(idx.Index) + 1, nil
}

func (tx *txn) directCounterEntry(typ p4.Update_Type, d *p4.DirectCounterEntry) *Error {
	if typ != p4.Update_MODIFY {
		return errf(codes.InvalidArgument, "direct counter entries can only be modified")
	}
	e, t, err := tx.st.findForDirect(d.TableEntry, tx.strict)
	if err != nil {
		return err
	}
	if d.Data == nil {
		return nil
	}
	if d.Data.PacketCount < 0 || d.Data.ByteCount < 0 {
		return errf(codes.InvalidArgument, "direct counter: negative counter data")
	}
	tx.setDirect(t, e.Handle, d.Data)
	return nil
}

// findForDirect finds the entry a DirectCounterEntry names.
func (st *State) findForDirect(te *p4.TableEntry, strict bool) (*Entry, *Table, *Error) {
	if te == nil {
		return nil, nil, errf(codes.InvalidArgument, "direct counter entry without table_entry")
	}
	if te.TableId == 0 {
		return nil, nil, errf(codes.InvalidArgument, "table id 0")
	}
	ti := st.Schema.Table(te.TableId)
	if ti == nil {
		return nil, nil, errf(codes.NotFound, "unknown table id %#x", te.TableId)
	}
	if ti.DirectCounter == nil {
		return nil, nil, errf(codes.InvalidArgument, "table %q has no direct counter", ti.Name)
	}
	t := st.tables[ti.Index]
	if te.IsDefaultAction {
		return t.def, t, nil
	}
	k, err := decodeMatch(ti, te.Match, te.Priority, strict)
	if err != nil {
		return nil, nil, err
	}
	e := t.find(k)
	if e == nil {
		return nil, nil, errf(codes.NotFound, "table %q: no such entry", ti.Name)
	}
	return e, t, nil
}

func (tx *txn) registerEntry(typ p4.Update_Type, r *p4.RegisterEntry) *Error {
	if typ != p4.Update_MODIFY {
		return errf(codes.InvalidArgument, "register entries can only be modified")
	}
	if r.RegisterId == 0 {
		return errf(codes.InvalidArgument, "register id 0")
	}
	ri := tx.st.Schema.Register(r.RegisterId)
	if ri == nil {
		return errf(codes.NotFound, "unknown register id %#x", r.RegisterId)
	}
	lo, hi, err := indexRange(r.Index, int64(ri.Size), "register "+ri.Name)
	if err != nil {
		return err
	}
	if r.Data == nil {
		return errf(codes.InvalidArgument, "register %q: data is required", ri.Name)
	}
	a := tx.st.rt.registers[ri.Index]
	val, verr := a.decode(r.Data, tx.strict)
	if verr != nil {
		return verr
	}
	for i := lo; i < hi; i++ {
		prev := a.load(i)
		i := i
		tx.undo = append(tx.undo, func() { a.store(i, prev) })
		a.store(i, val)
	}
	return nil
}

func (tx *txn) digestEntry(typ p4.Update_Type, d *p4.DigestEntry) *Error {
	if d.DigestId == 0 {
		return errf(codes.InvalidArgument, "digest id 0")
	}
	di := tx.st.Schema.Digest(d.DigestId)
	if di == nil {
		return errf(codes.NotFound, "unknown digest id %#x", d.DigestId)
	}
	cur := tx.st.digests[d.DigestId]
	switch typ {
	case p4.Update_INSERT:
		if cur != nil {
			return errf(codes.AlreadyExists, "digest %q is already configured", di.Name)
		}
	case p4.Update_MODIFY:
		if cur == nil {
			return errf(codes.NotFound, "digest %q is not configured", di.Name)
		}
	case p4.Update_DELETE:
		if cur == nil {
			return errf(codes.NotFound, "digest %q is not configured", di.Name)
		}
	}
	var cfg *p4.DigestEntry_Config
	if typ != p4.Update_DELETE {
		if d.Config == nil {
			return errf(codes.InvalidArgument, "digest %q: config is required", di.Name)
		}
		if d.Config.MaxTimeoutNs < 0 || d.Config.MaxListSize < 0 || d.Config.AckTimeoutNs < 0 {
			return errf(codes.InvalidArgument, "digest %q: negative config values", di.Name)
		}
		cfg = proto.Clone(d.Config).(*p4.DigestEntry_Config)
	}
	m := make(map[uint32]*p4.DigestEntry_Config, len(tx.st.digests)+1)
	for k, v := range tx.st.digests {
		m[k] = v
	}
	if cfg == nil {
		delete(m, d.DigestId)
	} else {
		m[d.DigestId] = cfg
	}
	tx.st.digests = m
	return nil
}

func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}
