package programmer

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/calico-p4/calico-p4/ipu/p4rt"
)

// fakeTarget is an in-memory P4Runtime target for unit tests that need to
// inject failures the real softswitch does not produce (per-update
// UNAVAILABLE, a lost primary in the middle of a pass). It enforces what the
// programmer's ordering must respect: references to members and groups must
// exist, members and groups in use cannot be deleted, duplicate inserts and
// missing modifies fail, and tables have their P4Info size. The integration
// tests run against the real server.
type fakeTarget struct {
	info *p4rt.Info

	mu      sync.Mutex
	st      p4rt.Status
	waiters []chan struct{}
	tables  map[string]*p4v1.TableEntry // by key
	members map[[2]uint32]*p4v1.ActionProfileMember
	groups  map[[2]uint32]*p4v1.ActionProfileGroup
	// inject, if set, may fail an update before it is applied.
	inject func(u *p4v1.Update) codes.Code
	// batches records every Write's updates, atomicities its atomicity.
	batches     [][]*p4v1.Update
	atomicities []p4v1.WriteRequest_Atomicity
	// refuseAtomic makes atomic writes fail with UNIMPLEMENTED.
	refuseAtomic bool
	pipeline     int
}

func newFakeTarget(info *p4rt.Info) *fakeTarget {
	f := &fakeTarget{info: info, st: p4rt.Status{Connected: true, Primary: true, Epoch: 1}}
	f.reset()
	return f
}

func (f *fakeTarget) reset() {
	f.tables = map[string]*p4v1.TableEntry{}
	f.members = map[[2]uint32]*p4v1.ActionProfileMember{}
	f.groups = map[[2]uint32]*p4v1.ActionProfileGroup{}
}

func (f *fakeTarget) setStatus(primary bool, epoch uint64) {
	f.mu.Lock()
	f.st.Primary, f.st.Epoch = primary, epoch
	ws := f.waiters
	f.waiters = nil
	f.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
}

func (f *fakeTarget) Status() p4rt.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeTarget) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan struct{})
	f.waiters = append(f.waiters, ch)
	return ch
}

func (f *fakeTarget) EnsurePipeline(context.Context, p4rt.Pipeline) (p4rt.PipelineResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pipeline++
	return p4rt.PipelineUnchanged, nil
}

func tableKey(te *p4v1.TableEntry) string {
	m := slices.Clone(te.GetMatch())
	slices.SortFunc(m, func(a, b *p4v1.FieldMatch) int { return int(a.GetFieldId()) - int(b.GetFieldId()) })
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(&p4v1.TableEntry{TableId: te.GetTableId(), Match: m,
		Priority: te.GetPriority(), IsDefaultAction: te.GetIsDefaultAction()})
	return string(b)
}

func (f *fakeTarget) WriteEncoded(ctx context.Context, b []byte, n int, atomicity p4v1.WriteRequest_Atomicity) error {
	req := &p4v1.WriteRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		return err
	}
	if len(req.Updates) != n {
		return fmt.Errorf("fake: %d updates encoded, %d announced", len(req.Updates), n)
	}
	return f.WriteWith(ctx, req.Updates, atomicity)
}

func (f *fakeTarget) Write(ctx context.Context, updates []*p4v1.Update) error {
	return f.WriteWith(ctx, updates, p4v1.WriteRequest_CONTINUE_ON_ERROR)
}

// WriteWith applies updates; an atomic write (ROLLBACK_ON_ERROR,
// DATAPLANE_ATOMIC) changes nothing if an update fails, the others are then
// reported ABORTED.
func (f *fakeTarget) WriteWith(ctx context.Context, updates []*p4v1.Update, atomicity p4v1.WriteRequest_Atomicity) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.st.Primary {
		return p4rt.ErrNotPrimary
	}
	atomic := atomicity != p4v1.WriteRequest_CONTINUE_ON_ERROR
	if atomic && f.refuseAtomic {
		return &p4rt.WriteError{Code: codes.Unimplemented, Message: "atomicity not supported"}
	}
	f.batches = append(f.batches, updates)
	f.atomicities = append(f.atomicities, atomicity)
	var saved fakeState
	if atomic {
		saved = f.save()
	}
	codesOut := make([]codes.Code, len(updates))
	failed := false
	for i, u := range updates {
		c := codes.OK
		if f.inject != nil {
			c = f.inject(u)
		}
		if c == codes.OK {
			c = f.apply(u)
		}
		codesOut[i] = c
		failed = failed || c != codes.OK
	}
	if !failed {
		return nil
	}
	if atomic {
		f.tables, f.members, f.groups = saved.tables, saved.members, saved.groups
		for i, c := range codesOut {
			if c == codes.OK {
				codesOut[i] = codes.Aborted
			}
		}
	}
	we := &p4rt.WriteError{Code: codes.Unknown}
	for _, c := range codesOut {
		we.Updates = append(we.Updates, p4rt.UpdateStatus{Code: c, Message: c.String()})
	}
	return we
}

type fakeState struct {
	tables  map[string]*p4v1.TableEntry
	members map[[2]uint32]*p4v1.ActionProfileMember
	groups  map[[2]uint32]*p4v1.ActionProfileGroup
}

func (f *fakeTarget) save() fakeState {
	return fakeState{maps.Clone(f.tables), maps.Clone(f.members), maps.Clone(f.groups)}
}

func (f *fakeTarget) memberUsed(prof, id uint32) bool {
	for _, g := range f.groups {
		if g.GetActionProfileId() != prof {
			continue
		}
		for _, m := range g.GetMembers() {
			if m.GetMemberId() == id {
				return true
			}
		}
	}
	for _, te := range f.tables {
		if t, _ := f.info.TableByID(te.GetTableId()); t.Profile != nil && t.Profile.ID == prof && te.GetAction().GetActionProfileMemberId() == id {
			return true
		}
	}
	return false
}

func (f *fakeTarget) groupUsed(prof, id uint32) bool {
	for _, te := range f.tables {
		if t, _ := f.info.TableByID(te.GetTableId()); t.Profile != nil && t.Profile.ID == prof && te.GetAction().GetActionProfileGroupId() == id {
			return true
		}
	}
	return false
}

func (f *fakeTarget) tableCount(id uint32) int {
	n := 0
	for _, te := range f.tables {
		if te.GetTableId() == id && !te.GetIsDefaultAction() {
			n++
		}
	}
	return n
}

func (f *fakeTarget) apply(u *p4v1.Update) codes.Code {
	switch x := u.GetEntity().GetEntity().(type) {
	case *p4v1.Entity_TableEntry:
		te := x.TableEntry
		t, ok := f.info.TableByID(te.GetTableId())
		if !ok {
			return codes.NotFound
		}
		k := tableKey(te)
		_, exists := f.tables[k]
		if te.GetIsDefaultAction() {
			if u.GetType() != p4v1.Update_MODIFY {
				return codes.InvalidArgument
			}
			if te.GetAction() == nil {
				delete(f.tables, k)
			} else {
				f.tables[k] = te
			}
			return codes.OK
		}
		if u.GetType() != p4v1.Update_DELETE && t.Profile != nil {
			if id := te.GetAction().GetActionProfileMemberId(); id != 0 && f.members[[2]uint32{t.Profile.ID, id}] == nil {
				return codes.NotFound
			}
			if id := te.GetAction().GetActionProfileGroupId(); id != 0 && f.groups[[2]uint32{t.Profile.ID, id}] == nil {
				return codes.NotFound
			}
		}
		switch u.GetType() {
		case p4v1.Update_INSERT:
			if exists {
				return codes.AlreadyExists
			}
			if int64(f.tableCount(t.ID)) >= t.Size {
				return codes.ResourceExhausted
			}
			f.tables[k] = te
		case p4v1.Update_MODIFY:
			if !exists {
				return codes.NotFound
			}
			f.tables[k] = te
		case p4v1.Update_DELETE:
			if !exists {
				return codes.NotFound
			}
			delete(f.tables, k)
		}
	case *p4v1.Entity_ActionProfileMember:
		m := x.ActionProfileMember
		k := [2]uint32{m.GetActionProfileId(), m.GetMemberId()}
		_, exists := f.members[k]
		switch u.GetType() {
		case p4v1.Update_INSERT:
			if exists {
				return codes.AlreadyExists
			}
			f.members[k] = m
		case p4v1.Update_MODIFY:
			if !exists {
				return codes.NotFound
			}
			f.members[k] = m
		case p4v1.Update_DELETE:
			if !exists {
				return codes.NotFound
			}
			if f.memberUsed(k[0], k[1]) {
				return codes.FailedPrecondition
			}
			delete(f.members, k)
		}
	case *p4v1.Entity_ActionProfileGroup:
		g := x.ActionProfileGroup
		k := [2]uint32{g.GetActionProfileId(), g.GetGroupId()}
		_, exists := f.groups[k]
		if u.GetType() != p4v1.Update_DELETE {
			for _, m := range g.GetMembers() {
				if f.members[[2]uint32{k[0], m.GetMemberId()}] == nil {
					return codes.NotFound
				}
			}
		}
		switch u.GetType() {
		case p4v1.Update_INSERT:
			if exists {
				return codes.AlreadyExists
			}
			f.groups[k] = g
		case p4v1.Update_MODIFY:
			if !exists {
				return codes.NotFound
			}
			f.groups[k] = g
		case p4v1.Update_DELETE:
			if !exists {
				return codes.NotFound
			}
			if f.groupUsed(k[0], k[1]) {
				return codes.FailedPrecondition
			}
			delete(f.groups, k)
		}
	default:
		return codes.Unimplemented
	}
	return codes.OK
}

func (f *fakeTarget) Read(ctx context.Context, ents []*p4v1.Entity, fn func(*p4v1.Entity) error) error {
	f.mu.Lock()
	var out []*p4v1.Entity
	for _, q := range ents {
		switch x := q.GetEntity().(type) {
		case *p4v1.Entity_TableEntry:
			for _, te := range f.tables {
				if te.GetTableId() != x.TableEntry.GetTableId() || te.GetIsDefaultAction() != x.TableEntry.GetIsDefaultAction() {
					continue
				}
				if len(x.TableEntry.GetMatch()) > 0 && tableKey(te) != tableKey(x.TableEntry) {
					continue
				}
				out = append(out, &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}})
			}
		case *p4v1.Entity_ActionProfileMember:
			for k, m := range f.members {
				if k[0] == x.ActionProfileMember.GetActionProfileId() {
					out = append(out, &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileMember{ActionProfileMember: m}})
				}
			}
		case *p4v1.Entity_ActionProfileGroup:
			for k, g := range f.groups {
				if k[0] == x.ActionProfileGroup.GetActionProfileId() {
					out = append(out, &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileGroup{ActionProfileGroup: g}})
				}
			}
		default:
			f.mu.Unlock()
			return fmt.Errorf("fake: unsupported read %T", x)
		}
	}
	f.mu.Unlock()
	for _, e := range out {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// updates counts updates across all batches since the last call.
func (f *fakeTarget) takeUpdates() []*p4v1.Update {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*p4v1.Update
	for _, b := range f.batches {
		out = append(out, b...)
	}
	f.batches = nil
	return out
}
