package programmer

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"go.uber.org/zap"

	"github.com/calico-p4/calico-p4/p4src/entry"
)

// reconcile makes sure the target runs our pipeline, then reads back every
// managed table and action profile and replaces what the programmer
// believes is installed with what is. Member and group ids are matched to
// desired names (by the table entries that point at them, then by content);
// what matches nothing desired keeps a stale name and is deleted by the next
// pass. Called with mu held.
func (p *Programmer) reconcile(ctx context.Context, epoch uint64) (err error) {
	start := time.Now()
	defer func() {
		p.m.reconcileSeconds.Observe(time.Since(start).Seconds())
		if err != nil {
			p.m.reconciles.WithLabelValues("error").Inc()
		} else {
			p.m.reconciles.WithLabelValues("ok").Inc()
		}
	}()
	pres, err := p.target.EnsurePipeline(ctx, p.cfg.Pipeline)
	if err != nil {
		return fmt.Errorf("programmer: pipeline: %w", err)
	}
	rb, err := p.readBack(ctx)
	if err != nil {
		return fmt.Errorf("programmer: read back: %w", err)
	}
	p.pipelineEpoch = epoch
	p.adopt(rb, epoch, string(pres), start)
	return nil
}

// adopt replaces what the programmer believes is installed with what rb
// says, matched to the desired state.
func (p *Programmer) adopt(rb *readBack, epoch uint64, pipeline string, start time.Time) {
	have, fresh, raw := p.match(rb)
	p.ids, p.rawDeletes = fresh, raw
	clear(p.countv)
	p.dirty = p.dirty[:0]
	p.nRejected = 0
	// Slots read back keep their desired value in place when it is what is
	// installed (setHave), so a reconcile of an unchanged target does not
	// copy every desired value aside.
	clear(p.trouble)
	for s := range p.allSlots() {
		s.dirty, s.blocked, s.rejected = false, false, false
		if e, ok := have[s.key]; ok {
			p.setHave(s, e)
		} else {
			p.dropHave(s)
		}
	}
	for k, e := range have {
		if s := p.slot(k); !s.installed {
			p.setHave(s, e)
		}
	}
	for s := range p.allSlots() {
		if s.installed && s.key.Kind() != entry.KindDefault {
			p.countv[s.count]++
		}
		if s.want == wantNone && !s.installed {
			p.remove(s)
			continue
		}
		p.markDirty(s)
	}
	p.epoch, p.reconciled = epoch, true
	nraw := 0
	for _, l := range raw {
		nraw += len(l)
	}
	p.log.Info("Reconciled with the target", zap.String("pipeline", pipeline), zap.Int("installed", len(have)),
		zap.Int("desired", p.desiredCount()), zap.Int("unreadable", nraw), zap.Uint64("epoch", epoch),
		zap.Duration("took", time.Since(start)))
}

type readBack struct {
	members  map[string][]*p4v1.ActionProfileMember // by profile name
	groups   map[string][]*p4v1.ActionProfileGroup
	tables   []*p4v1.TableEntry
	defaults []*p4v1.TableEntry
}

func (p *Programmer) readBack(ctx context.Context) (*readBack, error) {
	var req []*p4v1.Entity
	for _, name := range p.info.TableNames() {
		t, _ := p.info.Table(name)
		if p.unmanaged[name] || t.IsConst {
			continue
		}
		req = append(req, &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: t.ID}}})
		if t.Profile == nil && !t.ConstDefault {
			req = append(req, &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: t.ID, IsDefaultAction: true}}})
		}
	}
	for _, name := range p.info.ProfileNames() {
		ap, _ := p.info.Profile(name)
		req = append(req, &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileMember{ActionProfileMember: &p4v1.ActionProfileMember{ActionProfileId: ap.ID}}})
		if ap.WithSelector {
			req = append(req, &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileGroup{ActionProfileGroup: &p4v1.ActionProfileGroup{ActionProfileId: ap.ID}}})
		}
	}
	rb := &readBack{members: map[string][]*p4v1.ActionProfileMember{}, groups: map[string][]*p4v1.ActionProfileGroup{}}
	err := p.target.Read(ctx, req, func(ent *p4v1.Entity) error {
		switch x := ent.GetEntity().(type) {
		case *p4v1.Entity_TableEntry:
			te := x.TableEntry
			if t, ok := p.info.TableByID(te.GetTableId()); !ok || p.unmanaged[t.Name] || t.IsConst {
				return nil
			}
			if te.GetIsDefaultAction() {
				rb.defaults = append(rb.defaults, te)
			} else {
				rb.tables = append(rb.tables, te)
			}
		case *p4v1.Entity_ActionProfileMember:
			if ap, ok := p.info.ProfileByID(x.ActionProfileMember.GetActionProfileId()); ok {
				rb.members[ap.Name] = append(rb.members[ap.Name], x.ActionProfileMember)
			}
		case *p4v1.Entity_ActionProfileGroup:
			if ap, ok := p.info.ProfileByID(x.ActionProfileGroup.GetActionProfileId()); ok {
				rb.groups[ap.Name] = append(rb.groups[ap.Name], x.ActionProfileGroup)
			}
		}
		return nil
	})
	return rb, err
}

// names resolves ids through fresh where known and to stale names otherwise.
type names struct{ x *ids }

func (n names) MemberName(profile string, id uint32) (string, bool) {
	if s, ok := n.x.MemberName(profile, id); ok {
		return s, true
	}
	return staleName(id), true
}

func (n names) GroupName(profile string, id uint32) (string, bool) {
	if s, ok := n.x.GroupName(profile, id); ok {
		return s, true
	}
	return staleName(id), true
}

// pairing matches installed ids of one profile to desired names.
type pairing struct {
	byName map[string]uint32
	byID   map[uint32]string
}

func newPairing() *pairing { return &pairing{byName: map[string]uint32{}, byID: map[uint32]string{}} }

func (pr *pairing) pair(name string, id uint32) bool {
	if _, ok := pr.byName[name]; ok {
		return false
	}
	if _, ok := pr.byID[id]; ok {
		return false
	}
	pr.byName[name], pr.byID[id] = id, name
	return true
}

// match turns what was read into installed entries with names.
func (p *Programmer) match(rb *readBack) (map[entry.Key]entry.Entry, *ids, [][]*p4v1.Entity) {
	have := map[entry.Key]entry.Entry{}
	fresh := newIDs()
	raw := make([][]*p4v1.Entity, p.order.numStages())
	prov := names{newIDs()} // every id stale: for decoding before pairing

	// Desired members and groups by profile.
	wantMembers := map[string]map[string]entry.Entry{}
	wantGroups := map[string]map[string]entry.Entry{}
	for s := range p.allSlots() {
		if k := s.key.Kind(); s.want == wantNone || (k != entry.KindMember && k != entry.KindGroup) {
			continue
		}
		e, _ := p.wantOf(s, nil)
		switch e.Kind {
		case entry.KindMember:
			if wantMembers[e.Profile] == nil {
				wantMembers[e.Profile] = map[string]entry.Entry{}
			}
			wantMembers[e.Profile][e.Name] = e
		case entry.KindGroup:
			if wantGroups[e.Profile] == nil {
				wantGroups[e.Profile] = map[string]entry.Entry{}
			}
			wantGroups[e.Profile][e.Name] = e
		}
	}

	// Installed members and groups, decoded with provisional names.
	instMembers := map[string]map[uint32]entry.Entry{}
	for prof, ms := range rb.members {
		instMembers[prof] = map[uint32]entry.Entry{}
		for _, m := range ms {
			e, err := p.info.Decode(&p4v1.Entity{Entity: &p4v1.Entity_ActionProfileMember{ActionProfileMember: m}}, prov)
			if err != nil {
				p.log.Warn("Unreadable member on the target; deleting it", zap.String("table", prof), zap.Error(err))
				st := p.order.stage(entry.KindMember, prof, true)
				raw[st] = append(raw[st], deleteMember(m))
				continue
			}
			instMembers[prof][m.GetMemberId()] = e
		}
	}
	instGroups := map[string]map[uint32]*p4v1.ActionProfileGroup{}
	for prof, gs := range rb.groups {
		instGroups[prof] = map[uint32]*p4v1.ActionProfileGroup{}
		for _, g := range gs {
			instGroups[prof][g.GetGroupId()] = g
		}
	}

	// Installed table entries, with the ids they point at.
	type tref struct {
		e       entry.Entry
		key     entry.Key
		profile string
		member  uint32
		group   uint32
	}
	// Entries of indirect tables (they name members and groups) wait for
	// the pairing; the others are final.
	var trefs []tref
	for _, te := range rb.tables {
		e, err := p.info.Decode(&p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}, prov)
		if err != nil {
			t, _ := p.info.TableByID(te.GetTableId())
			p.log.Warn("Unreadable table entry on the target; deleting it", zap.String("table", t.Name), zap.Error(err))
			st := p.order.stage(entry.KindTable, t.Name, true)
			raw[st] = append(raw[st], &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{
				TableId: te.GetTableId(), Match: te.GetMatch(), Priority: te.GetPriority()}}})
			continue
		}
		t, _ := p.info.Table(e.Table)
		if t.Profile == nil {
			have[e.Key()] = e
			continue
		}
		trefs = append(trefs, tref{e: e, key: e.Key(), profile: t.Profile.Name,
			member: te.GetAction().GetActionProfileMemberId(), group: te.GetAction().GetActionProfileGroupId()})
	}
	slices.SortFunc(trefs, func(a, b tref) int { return strings.Compare(string(a.key), string(b.key)) })

	mp := map[string]*pairing{} // member pairings by profile
	gp := map[string]*pairing{}
	get := func(m map[string]*pairing, prof string) *pairing {
		if m[prof] == nil {
			m[prof] = newPairing()
		}
		return m[prof]
	}

	// 1. Groups pointed at by the same table entry key as desired.
	// 2. Their members, by content.
	// 3. Members pointed at by the same table entry key.
	for _, r := range trefs {
		ws := p.lookup(r.key)
		if ws == nil || ws.want == wantNone || r.profile == "" {
			continue
		}
		w, _ := p.wantOf(ws, nil)
		switch {
		case r.group != 0 && w.Group != "":
			g, ok := instGroups[r.profile][r.group]
			wg, wok := wantGroups[r.profile][w.Group]
			if !ok || !wok || !get(gp, r.profile).pair(w.Group, r.group) {
				continue
			}
			pairMembersOf(get(mp, r.profile), wg, g, wantMembers[r.profile], instMembers[r.profile])
		case r.member != 0 && w.Member != "":
			if _, ok := instMembers[r.profile][r.member]; !ok {
				continue
			}
			if _, ok := wantMembers[r.profile][w.Member]; ok {
				get(mp, r.profile).pair(w.Member, r.member)
			}
		}
	}
	// 4. Remaining members by content; the rest are stale.
	for prof, inst := range instMembers {
		pr := get(mp, prof)
		pairByContent(pr, wantMembers[prof], inst)
		sp := space(fresh.members, prof)
		for id, e := range inst {
			name, ok := pr.byID[id]
			if !ok {
				name = staleName(id)
			}
			sp.set(name, id)
			e.Name = name
			have[e.Key()] = e
		}
	}
	// 5. Groups, now that members have names: remaining ones by content.
	for prof, inst := range instGroups {
		decoded := map[uint32]entry.Entry{}
		for id, g := range inst {
			e, err := p.info.Decode(&p4v1.Entity{Entity: &p4v1.Entity_ActionProfileGroup{ActionProfileGroup: g}}, names{fresh})
			if err != nil {
				p.log.Warn("Unreadable group on the target; deleting it", zap.String("table", prof), zap.Error(err))
				st := p.order.stage(entry.KindGroup, prof, true)
				raw[st] = append(raw[st], &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileGroup{
					ActionProfileGroup: &p4v1.ActionProfileGroup{ActionProfileId: g.GetActionProfileId(), GroupId: id}}})
				continue
			}
			decoded[id] = e
		}
		pr := get(gp, prof)
		pairByContent(pr, wantGroups[prof], decoded)
		sp := space(fresh.groups, prof)
		for id, e := range decoded {
			name, ok := pr.byID[id]
			if !ok {
				name = staleName(id)
			}
			sp.set(name, id)
			e.Name = name
			have[e.Key()] = e
		}
	}
	// 6. Table entries with their references named.
	for _, r := range trefs {
		e := r.e
		if r.member != 0 {
			e.Member, _ = names{fresh}.MemberName(r.profile, r.member)
		}
		if r.group != 0 {
			e.Group, _ = names{fresh}.GroupName(r.profile, r.group)
		}
		have[r.key] = e
	}
	// 7. Default actions that differ from the program's.
	for _, te := range rb.defaults {
		e, err := p.info.Decode(&p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}, prov)
		if err != nil {
			continue // reset by the next pass if desired says so
		}
		if init, ok := p.info.InitialDefault(e.Table); ok && init.Equal(e) {
			continue
		}
		have[e.Key()] = e
	}
	return have, fresh, raw
}

func deleteMember(m *p4v1.ActionProfileMember) *p4v1.Entity {
	return &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileMember{ActionProfileMember: &p4v1.ActionProfileMember{
		ActionProfileId: m.GetActionProfileId(), MemberId: m.GetMemberId()}}}
}

// pairMembersOf pairs the members of a desired group with those of the
// installed group it was matched to, by content.
func pairMembersOf(pr *pairing, wg entry.Entry, g *p4v1.ActionProfileGroup, want map[string]entry.Entry, inst map[uint32]entry.Entry) {
	ws := map[string]entry.Entry{}
	for _, m := range wg.Members {
		if e, ok := want[m.Member]; ok {
			ws[m.Member] = e
		}
	}
	is := map[uint32]entry.Entry{}
	for _, m := range g.GetMembers() {
		if e, ok := inst[m.GetMemberId()]; ok {
			is[m.GetMemberId()] = e
		}
	}
	pairByContent(pr, ws, is)
}

// pairByContent pairs unpaired desired names with unpaired installed ids of
// equal content, deterministically (sorted names with sorted ids).
func pairByContent(pr *pairing, want map[string]entry.Entry, inst map[uint32]entry.Entry) {
	wantBy := map[string][]string{}
	for name, e := range want {
		if _, done := pr.byName[name]; !done {
			c := content(e)
			wantBy[c] = append(wantBy[c], name)
		}
	}
	instBy := map[string][]uint32{}
	for id, e := range inst {
		if _, done := pr.byID[id]; !done {
			c := content(e)
			instBy[c] = append(instBy[c], id)
		}
	}
	for c, ns := range wantBy {
		idl := instBy[c]
		if len(idl) == 0 {
			continue
		}
		slices.Sort(ns)
		slices.Sort(idl)
		for i := 0; i < len(ns) && i < len(idl); i++ {
			pr.pair(ns[i], idl[i])
		}
	}
}

// content is a member's action or a group's member list, without the name.
func content(e entry.Entry) string {
	var b []byte
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	switch e.Kind {
	case entry.KindMember:
		str(e.Action.Name)
		for _, p := range e.Action.Params {
			str(p.Name)
			str(string(p.Value))
		}
	case entry.KindGroup:
		for _, m := range e.Members {
			str(m.Member)
			b = binary.AppendUvarint(b, uint64(m.Weight))
		}
	}
	return string(b)
}

func (p *Programmer) desiredCount() int {
	n := 0
	for s := range p.allSlots() {
		if s.want != wantNone {
			n++
		}
	}
	return n
}
