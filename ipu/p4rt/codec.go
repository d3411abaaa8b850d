package p4rt

import (
	"errors"
	"fmt"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/calico-p4/calico-p4/p4src/entry"
)

// IDs gives the numeric ids that the programmer allocated to symbolic member
// and group names.
type IDs interface {
	MemberID(profile, name string) (uint32, bool)
	GroupID(profile, name string) (uint32, bool)
}

// Names maps member and group ids read from a target back to names.
type Names interface {
	MemberName(profile string, id uint32) (string, bool)
	GroupName(profile string, id uint32) (string, bool)
}

// ErrInvalidEntry wraps every error that says an entry does not fit the
// P4Info.
var ErrInvalidEntry = errors.New("entry does not fit the P4Info")

// Decode turns an entity read from the target into a canonical entry, with
// names from the P4Info and member/group names from names. Direct counter
// data, meters, metadata and idle timeouts are ignored; entity types that are
// not table entries, members or groups are an error.
func (in *Info) Decode(ent *p4v1.Entity, names Names) (entry.Entry, error) {
	switch x := ent.GetEntity().(type) {
	case *p4v1.Entity_TableEntry:
		return in.decodeTable(x.TableEntry, names)
	case *p4v1.Entity_ActionProfileMember:
		m := x.ActionProfileMember
		p, ok := in.profilesByID[m.GetActionProfileId()]
		if !ok {
			return entry.Entry{}, fmt.Errorf("decode member: unknown action profile id %#x", m.GetActionProfileId())
		}
		name, ok := names.MemberName(p.Name, m.GetMemberId())
		if !ok {
			return entry.Entry{}, fmt.Errorf("decode member %d of %s: no name for it", m.GetMemberId(), p.Name)
		}
		a, err := in.decodeAction(m.GetAction())
		if err != nil {
			return entry.Entry{}, fmt.Errorf("decode member %d of %s: %w", m.GetMemberId(), p.Name, err)
		}
		return entry.Member(p.Name, name, a), nil
	case *p4v1.Entity_ActionProfileGroup:
		g := x.ActionProfileGroup
		p, ok := in.profilesByID[g.GetActionProfileId()]
		if !ok {
			return entry.Entry{}, fmt.Errorf("decode group: unknown action profile id %#x", g.GetActionProfileId())
		}
		name, ok := names.GroupName(p.Name, g.GetGroupId())
		if !ok {
			return entry.Entry{}, fmt.Errorf("decode group %d of %s: no name for it", g.GetGroupId(), p.Name)
		}
		ms := make([]entry.GroupMember, 0, len(g.GetMembers()))
		for _, m := range g.GetMembers() {
			mn, ok := names.MemberName(p.Name, m.GetMemberId())
			if !ok {
				return entry.Entry{}, fmt.Errorf("decode group %d of %s: no name for member %d", g.GetGroupId(), p.Name, m.GetMemberId())
			}
			if m.GetWatchPort() != nil || m.GetWatch() != 0 {
				return entry.Entry{}, fmt.Errorf("decode group %d of %s: member %d has a watch port (not used by calico-p4)", g.GetGroupId(), p.Name, m.GetMemberId())
			}
			ms = append(ms, entry.W(mn, m.GetWeight()))
		}
		return entry.Group(p.Name, name, ms...), nil
	}
	return entry.Entry{}, fmt.Errorf("decode: unsupported entity %T", ent.GetEntity())
}

func (in *Info) decodeTable(te *p4v1.TableEntry, names Names) (entry.Entry, error) {
	t, ok := in.tablesByID[te.GetTableId()]
	if !ok {
		return entry.Entry{}, fmt.Errorf("decode table entry: unknown table id %#x", te.GetTableId())
	}
	if te.GetIsDefaultAction() {
		act, ok := te.GetAction().GetType().(*p4v1.TableAction_Action)
		if !ok {
			return entry.Entry{}, fmt.Errorf("decode default entry of %s: no direct action", t.Name)
		}
		a, err := in.decodeAction(act.Action)
		if err != nil {
			return entry.Entry{}, fmt.Errorf("decode default entry of %s: %w", t.Name, err)
		}
		return entry.Default(t.Name, a), nil
	}
	e := entry.Entry{Kind: entry.KindTable, Table: t.Name, Priority: te.GetPriority(), Match: make([]entry.Match, 0, len(te.GetMatch()))}
	for _, fm := range te.GetMatch() {
		f, ok := t.fieldsByID[fm.GetFieldId()]
		if !ok {
			return entry.Entry{}, fmt.Errorf("decode entry of %s: unknown match field id %d", t.Name, fm.GetFieldId())
		}
		var m entry.Match
		switch x := fm.GetFieldMatchType().(type) {
		case *p4v1.FieldMatch_Exact_:
			m = entry.Exact(f.Name, x.Exact.GetValue())
		case *p4v1.FieldMatch_Lpm:
			m = entry.LPM(f.Name, x.Lpm.GetValue(), int(x.Lpm.GetPrefixLen()))
		case *p4v1.FieldMatch_Ternary_:
			m = entry.Ternary(f.Name, x.Ternary.GetValue(), x.Ternary.GetMask())
		case *p4v1.FieldMatch_Range_:
			m = entry.Range(f.Name, x.Range.GetLow(), x.Range.GetHigh())
		case *p4v1.FieldMatch_Optional_:
			m = entry.Optional(f.Name, x.Optional.GetValue())
		default:
			return entry.Entry{}, fmt.Errorf("decode entry of %s: field %s has unsupported match %T", t.Name, f.Name, x)
		}
		e.Match = append(e.Match, m)
	}
	switch x := te.GetAction().GetType().(type) {
	case *p4v1.TableAction_Action:
		a, err := in.decodeAction(x.Action)
		if err != nil {
			return entry.Entry{}, fmt.Errorf("decode entry of %s: %w", t.Name, err)
		}
		e.Action = a
	case *p4v1.TableAction_ActionProfileMemberId:
		if t.Profile == nil {
			return entry.Entry{}, fmt.Errorf("decode entry of %s: member reference in a direct table", t.Name)
		}
		name, ok := names.MemberName(t.Profile.Name, x.ActionProfileMemberId)
		if !ok {
			return entry.Entry{}, fmt.Errorf("decode entry of %s: no name for member %d", t.Name, x.ActionProfileMemberId)
		}
		e.Member = name
	case *p4v1.TableAction_ActionProfileGroupId:
		if t.Profile == nil {
			return entry.Entry{}, fmt.Errorf("decode entry of %s: group reference in a direct table", t.Name)
		}
		name, ok := names.GroupName(t.Profile.Name, x.ActionProfileGroupId)
		if !ok {
			return entry.Entry{}, fmt.Errorf("decode entry of %s: no name for group %d", t.Name, x.ActionProfileGroupId)
		}
		e.Group = name
	default:
		return entry.Entry{}, fmt.Errorf("decode entry of %s: unsupported action %T", t.Name, x)
	}
	return e.Canonical(), nil
}

func (in *Info) decodeAction(pa *p4v1.Action) (entry.Action, error) {
	a, ok := in.actionsByID[pa.GetActionId()]
	if !ok {
		return entry.Action{}, fmt.Errorf("unknown action id %#x", pa.GetActionId())
	}
	out := entry.Action{Name: a.Name, Params: make([]entry.Param, 0, len(pa.GetParams()))}
	for _, p := range pa.GetParams() {
		pi, ok := a.paramsByID[p.GetParamId()]
		if !ok {
			return entry.Action{}, fmt.Errorf("action %s: unknown param id %d", a.Name, p.GetParamId())
		}
		out.Params = append(out.Params, entry.P(pi.Name, p.GetValue()))
	}
	return entry.Act(out.Name, out.Params...), nil
}

// InitialDefault returns the program's default action of table as an entry
// (ok=false when the P4Info declares none).
func (in *Info) InitialDefault(table string) (entry.Entry, bool) {
	t, ok := in.tables[table]
	if !ok || t.InitialDefault == nil {
		return entry.Entry{}, false
	}
	a, ok := in.actionsByID[t.InitialDefault.GetActionId()]
	if !ok {
		return entry.Entry{}, false
	}
	var ps []entry.Param
	for _, arg := range t.InitialDefault.GetArguments() {
		if pi, ok := a.paramsByID[arg.GetParamId()]; ok {
			ps = append(ps, entry.P(pi.Name, arg.GetValue()))
		}
	}
	return entry.Default(t.Name, entry.Act(a.Name, ps...)), true
}
