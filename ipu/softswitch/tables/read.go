package tables

import (
	"bytes"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// Read answers one P4Runtime read request entity against snapshot st (P4Runtime §13): wildcards as the
// spec defines them for each entity type. emit is called for every entity found; an error from emit
// stops the read and is returned. Request errors are *Error.
func (st *State) Read(ent *p4.Entity, emit func(*p4.Entity) error) error {
	if ent == nil || ent.Entity == nil {
		return errf(codes.InvalidArgument, "read of an empty entity")
	}
	if st.Schema == nil {
		return errf(codes.FailedPrecondition, "no forwarding pipeline config")
	}
	switch x := ent.Entity.(type) {
	case *p4.Entity_TableEntry:
		return st.readTable(x.TableEntry, emit)
	case *p4.Entity_ActionProfileMember:
		return st.readMembers(x.ActionProfileMember, emit)
	case *p4.Entity_ActionProfileGroup:
		return st.readGroups(x.ActionProfileGroup, emit)
	case *p4.Entity_CounterEntry:
		return st.readCounters(x.CounterEntry, emit)
	case *p4.Entity_DirectCounterEntry:
		return st.readDirect(x.DirectCounterEntry, emit)
	case *p4.Entity_RegisterEntry:
		return st.readRegisters(x.RegisterEntry, emit)
	case *p4.Entity_DigestEntry:
		return st.readDigests(x.DigestEntry, emit)
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

func (st *State) readTable(q *p4.TableEntry, emit func(*p4.Entity) error) error {
	if q == nil {
		q = &p4.TableEntry{}
	}
	wantCounter := q.CounterData != nil
	wantHit := q.TimeSinceLastHit != nil
	now := st.store.opts.Now()
	if q.TableId == 0 {
		if len(q.Match) > 0 || q.Action != nil || q.Priority != 0 || q.ControllerMetadata != 0 || len(q.Metadata) > 0 {
			return errf(codes.InvalidArgument, "a read of all tables (table_id 0) takes no other filter")
		}
		for _, t := range st.tables {
			if err := st.readOneTable(t, q, wantCounter, wantHit, now, emit); err != nil {
				return err
			}
		}
		return nil
	}
	ti := st.Schema.Table(q.TableId)
	if ti == nil {
		return errf(codes.NotFound, "unknown table id %#x", q.TableId)
	}
	return st.readOneTable(st.tables[ti.Index], q, wantCounter, wantHit, now, emit)
}

func (st *State) readOneTable(t *Table, q *p4.TableEntry, wantCounter, wantHit bool, now int64, emit func(*p4.Entity) error) error {
	send := func(e *Entry) error {
		return emit(&p4.Entity{Entity: &p4.Entity_TableEntry{TableEntry: st.encodeEntry(t, e, wantCounter, wantHit, now)}})
	}
	if q.IsDefaultAction {
		if len(q.Match) > 0 || q.Priority != 0 {
			return errf(codes.InvalidArgument, "table %q: the default entry has no match and no priority", t.Info.Name)
		}
		return send(t.def)
	}
	filter := func(e *Entry) bool {
		if q.Priority != 0 && e.Priority != q.Priority {
			return false
		}
		if q.ControllerMetadata != 0 && e.ControllerMetadata != q.ControllerMetadata {
			return false
		}
		if len(q.Metadata) > 0 && !bytes.Equal(e.Metadata, q.Metadata) {
			return false
		}
		if a := q.Action.GetAction(); a != nil && a.ActionId != 0 && (e.Kind != ActDirect || e.Action.ID != a.ActionId) {
			return false
		}
		return true
	}
	if len(q.Match) > 0 {
		prio := q.Priority
		if t.Info.NeedsPriority && prio == 0 {
			prio = 1 // decode the match only; priority filtered below
		}
		k, err := decodeMatch(t.Info, q.Match, prio, false)
		if err != nil {
			return err
		}
		if t.Info.NeedsPriority && q.Priority == 0 {
			var found []*Entry
			st.Each(t, func(e *Entry) bool {
				if bytes.Equal(e.Mask, k.Mask) && bytes.Equal(e.Key, k.Key) && sameRanges(e, k) && filter(e) {
					found = append(found, e)
				}
				return true
			})
			for _, e := range found {
				if err := send(e); err != nil {
					return err
				}
			}
			return nil
		}
		if e := t.find(k); e != nil && filter(st.version(e)) {
			return send(st.version(e))
		}
		return nil
	}
	var err error
	st.Each(t, func(e *Entry) bool {
		if filter(e) {
			err = send(e)
		}
		return err == nil
	})
	return err
}

func sameRanges(a, b *Entry) bool { return a.sameMatch(b) }

// EncodeEntry renders an installed entry, as st sees it, as a P4Runtime TableEntry (canonical
// bytestrings).
func (st *State) EncodeEntry(t *Table, e *Entry) *p4.TableEntry {
	return st.encodeEntry(t, e, t.Info.DirectCounter != nil, false, 0)
}

func (st *State) encodeEntry(t *Table, e *Entry, wantCounter, wantHit bool, now int64) *p4.TableEntry {
	e = st.version(e)
	out := &p4.TableEntry{
		TableId:            t.Info.ID,
		Priority:           e.Priority,
		Metadata:           cloneBytes(e.Metadata),
		ControllerMetadata: e.ControllerMetadata,
		IdleTimeoutNs:      e.IdleTimeoutNs,
		IsDefaultAction:    e.IsDefault,
	}
	if !e.IsDefault {
		out.Match = encodeMatch(e)
		out.IsConst = e.IsConst || t.Info.IsConst
	}
	switch e.Kind {
	case ActDirect:
		if e.Action.ID != 0 {
			out.Action = &p4.TableAction{Type: &p4.TableAction_Action{Action: encodeAction(&e.Action)}}
		}
	case ActMember:
		out.Action = &p4.TableAction{Type: &p4.TableAction_ActionProfileMemberId{ActionProfileMemberId: e.MemberID}}
	case ActGroup:
		out.Action = &p4.TableAction{Type: &p4.TableAction_ActionProfileGroupId{ActionProfileGroupId: e.GroupID}}
	case ActOneShot:
		set := &p4.ActionProfileActionSet{}
		for i := range e.OneShot.Actions {
			apa := &p4.ActionProfileAction{Action: encodeAction(&e.OneShot.Actions[i]), Weight: e.OneShot.Members[i].Weight}
			encodeWatchAction(&e.OneShot.Members[i], apa)
			set.ActionProfileActions = append(set.ActionProfileActions, apa)
		}
		out.Action = &p4.TableAction{Type: &p4.TableAction_ActionProfileActionSet{ActionProfileActionSet: set}}
	}
	if wantCounter && t.Info.DirectCounter != nil {
		v := t.rt.counter(e.Handle)
		out.CounterData = &p4.CounterData{PacketCount: int64(v.Packets), ByteCount: int64(v.Bytes)}
	}
	if wantHit {
		var elapsed int64
		if c := t.rt.chunk(e.Handle); c != nil {
			elapsed = now - c.lastHit[e.Handle&chunkMask].Load()
			if elapsed < 0 {
				elapsed = 0
			}
		}
		out.TimeSinceLastHit = &p4.TableEntry_IdleTimeout{ElapsedNs: elapsed}
	}
	return out
}

func (st *State) profilesFor(id uint32) ([]*Profile, error) {
	if id == 0 {
		return st.profiles, nil
	}
	pi := st.Schema.Profile(id)
	if pi == nil {
		return nil, errf(codes.NotFound, "unknown action profile id %#x", id)
	}
	return []*Profile{st.profiles[pi.Index]}, nil
}

func (st *State) readMembers(q *p4.ActionProfileMember, emit func(*p4.Entity) error) error {
	ps, err := st.profilesFor(q.ActionProfileId)
	if err != nil {
		return err
	}
	for _, p := range ps {
		send := func(m *Member) error {
			return emit(&p4.Entity{Entity: &p4.Entity_ActionProfileMember{ActionProfileMember: &p4.ActionProfileMember{
				ActionProfileId: p.Info.ID, MemberId: m.ID, Action: encodeAction(&m.Action)}}})
		}
		if q.MemberId != 0 {
			if q.ActionProfileId == 0 {
				return errf(codes.InvalidArgument, "member id without action profile id")
			}
			if m := p.Member(q.MemberId); m != nil {
				return send(m)
			}
			return nil
		}
		var err error
		p.EachMember(func(m *Member) bool { err = send(m); return err == nil })
		if err != nil {
			return err
		}
	}
	return nil
}

func (st *State) readGroups(q *p4.ActionProfileGroup, emit func(*p4.Entity) error) error {
	ps, err := st.profilesFor(q.ActionProfileId)
	if err != nil {
		return err
	}
	for _, p := range ps {
		send := func(g *Group) error {
			out := &p4.ActionProfileGroup{ActionProfileId: p.Info.ID, GroupId: g.ID, MaxSize: g.MaxSize}
			for i := range g.Members {
				gm := &p4.ActionProfileGroup_Member{MemberId: g.Members[i].ID, Weight: g.Members[i].Weight}
				encodeWatchGroup(&g.Members[i], gm)
				out.Members = append(out.Members, gm)
			}
			return emit(&p4.Entity{Entity: &p4.Entity_ActionProfileGroup{ActionProfileGroup: out}})
		}
		if q.GroupId != 0 {
			if q.ActionProfileId == 0 {
				return errf(codes.InvalidArgument, "group id without action profile id")
			}
			if g := p.Group(q.GroupId); g != nil {
				return send(g)
			}
			return nil
		}
		var err error
		p.EachGroup(func(g *Group) bool { err = send(g); return err == nil })
		if err != nil {
			return err
		}
	}
	return nil
}

func (st *State) readCounters(q *p4.CounterEntry, emit func(*p4.Entity) error) error {
	cs := st.Schema.Counters
	if q.CounterId != 0 {
		ci := st.Schema.Counter(q.CounterId)
		if ci == nil {
			return errf(codes.NotFound, "unknown counter id %#x", q.CounterId)
		}
		cs = []*CounterInfo{ci}
	}
	for _, ci := range cs {
		idx := q.Index
		if q.CounterId == 0 {
			idx = nil
		}
		lo, hi, err := indexRange(idx, ci.Size, "counter "+ci.Name)
		if err != nil {
			return err
		}
		a := st.rt.counters[ci.Index]
		for i := lo; i < hi; i++ {
			v := a.get(i)
			if err := emit(&p4.Entity{Entity: &p4.Entity_CounterEntry{CounterEntry: &p4.CounterEntry{
				CounterId: ci.ID, Index: &p4.Index{Index: int64(i)},
				Data: &p4.CounterData{PacketCount: int64(v.Packets), ByteCount: int64(v.Bytes)}}}}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (st *State) readDirect(q *p4.DirectCounterEntry, emit func(*p4.Entity) error) error {
	send := func(t *Table, e *Entry) error {
		v := t.rt.counter(e.Handle)
		te := st.encodeEntry(t, e, false, false, 0)
		return emit(&p4.Entity{Entity: &p4.Entity_DirectCounterEntry{DirectCounterEntry: &p4.DirectCounterEntry{
			TableEntry: te, Data: &p4.CounterData{PacketCount: int64(v.Packets), ByteCount: int64(v.Bytes)}}}})
	}
	all := func(t *Table) error {
		var err error
		st.Each(t, func(e *Entry) bool { err = send(t, e); return err == nil })
		return err
	}
	te := q.TableEntry
	if te == nil || te.TableId == 0 {
		for _, t := range st.tables {
			if t.Info.DirectCounter == nil {
				continue
			}
			if err := all(t); err != nil {
				return err
			}
		}
		return nil
	}
	ti := st.Schema.Table(te.TableId)
	if ti == nil {
		return errf(codes.NotFound, "unknown table id %#x", te.TableId)
	}
	if ti.DirectCounter == nil {
		return errf(codes.InvalidArgument, "table %q has no direct counter", ti.Name)
	}
	t := st.tables[ti.Index]
	if !te.IsDefaultAction && len(te.Match) == 0 {
		return all(t)
	}
	e, _, err := st.findForDirect(te, false)
	if err != nil {
		return err
	}
	return send(t, e)
}

func (st *State) readRegisters(q *p4.RegisterEntry, emit func(*p4.Entity) error) error {
	rs := st.Schema.Registers
	if q.RegisterId != 0 {
		ri := st.Schema.Register(q.RegisterId)
		if ri == nil {
			return errf(codes.NotFound, "unknown register id %#x", q.RegisterId)
		}
		rs = []*RegisterInfo{ri}
	}
	for _, ri := range rs {
		idx := q.Index
		if q.RegisterId == 0 {
			idx = nil
		}
		lo, hi, err := indexRange(idx, int64(ri.Size), "register "+ri.Name)
		if err != nil {
			return err
		}
		a := st.rt.registers[ri.Index]
		for i := lo; i < hi; i++ {
			if err := emit(&p4.Entity{Entity: &p4.Entity_RegisterEntry{RegisterEntry: &p4.RegisterEntry{
				RegisterId: ri.ID, Index: &p4.Index{Index: int64(i)}, Data: a.encode(a.load(i))}}}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (st *State) readDigests(q *p4.DigestEntry, emit func(*p4.Entity) error) error {
	ds := st.Schema.Digests
	if q.DigestId != 0 {
		di := st.Schema.Digest(q.DigestId)
		if di == nil {
			return errf(codes.NotFound, "unknown digest id %#x", q.DigestId)
		}
		ds = []*DigestInfo{di}
	}
	for _, di := range ds {
		cfg := st.digests[di.ID]
		if cfg == nil {
			continue
		}
		if err := emit(&p4.Entity{Entity: &p4.Entity_DigestEntry{DigestEntry: &p4.DigestEntry{
			DigestId: di.ID, Config: proto.Clone(cfg).(*p4.DigestEntry_Config)}}}); err != nil {
			return err
		}
	}
	return nil
}
