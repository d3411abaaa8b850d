package p4rt

import (
	"errors"
	"fmt"
	"math/bits"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
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

func invalid(e entry.Entry, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidEntry, e, fmt.Sprintf(format, args...))
}

// Encode validates e against the P4Info and returns its p4.v1.Entity, with
// member and group ids from ids. The result is the full entity (for INSERT
// and MODIFY; DELETE ignores the non-key parts).
func (in *Info) Encode(e entry.Entry, ids IDs) (*p4v1.Entity, error) {
	switch e.Kind {
	case entry.KindTable:
		return in.encodeTable(e, ids)
	case entry.KindDefault:
		return in.encodeDefault(e)
	case entry.KindMember:
		return in.encodeMember(e, ids)
	case entry.KindGroup:
		return in.encodeGroup(e, ids)
	}
	return nil, invalid(e, "unknown kind")
}

// Validate checks e against the P4Info without member/group ids.
func (in *Info) Validate(e entry.Entry) error {
	_, err := in.Encode(e, anyIDs{})
	return err
}

// anyIDs resolves every name to id 1, for validation.
type anyIDs struct{}

func (anyIDs) MemberID(string, string) (uint32, bool) { return 1, true }
func (anyIDs) GroupID(string, string) (uint32, bool)  { return 1, true }

func (in *Info) table(e entry.Entry) (*TableInfo, error) {
	t, ok := in.tables[e.Table]
	if !ok {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidEntry, e, unknownName("table", e.Table, in.tableNames))
	}
	return t, nil
}

func (in *Info) encodeTable(e entry.Entry, ids IDs) (*p4v1.Entity, error) {
	t, err := in.table(e)
	if err != nil {
		return nil, err
	}
	if t.IsConst {
		return nil, invalid(e, "table %s is const", t.Name)
	}
	// One allocation for the nested messages of the entity.
	sh := &tableShell{}
	te := &sh.te
	te.TableId, te.Priority = t.ID, e.Priority
	sh.wrap.TableEntry = te
	sh.ent.Entity = &sh.wrap
	if t.NeedsPriority {
		if e.Priority <= 0 {
			return nil, invalid(e, "table %s has ternary, range or optional fields and needs a priority > 0", t.Name)
		}
	} else if e.Priority != 0 {
		return nil, invalid(e, "table %s has only exact and lpm fields and takes no priority", t.Name)
	}
	if te.Match, err = in.encodeMatch(e, t); err != nil {
		return nil, err
	}
	switch {
	case e.Member != "" || e.Group != "":
		if t.Profile == nil {
			return nil, invalid(e, "table %s is direct: it takes an action, not a member or group", t.Name)
		}
		if e.Group != "" {
			if !t.Profile.WithSelector {
				return nil, invalid(e, "table %s is implemented by action profile %s without a selector: no groups", t.Name, t.Profile.Name)
			}
			id, ok := ids.GroupID(t.Profile.Name, e.Group)
			if !ok {
				return nil, invalid(e, "group %q of %s has no id (not installed)", e.Group, t.Profile.Name)
			}
			sh.group.ActionProfileGroupId = id
			sh.ta.Type = &sh.group
			te.Action = &sh.ta
		} else {
			id, ok := ids.MemberID(t.Profile.Name, e.Member)
			if !ok {
				return nil, invalid(e, "member %q of %s has no id (not installed)", e.Member, t.Profile.Name)
			}
			sh.member.ActionProfileMemberId = id
			sh.ta.Type = &sh.member
			te.Action = &sh.ta
		}
	default:
		if t.Profile != nil {
			return nil, invalid(e, "table %s is implemented by action profile %s: it takes a member or group, not an action", t.Name, t.Profile.Name)
		}
		scope, ok := t.Actions[e.Action.Name]
		if !ok {
			return nil, invalid(e, "action %q is not an action of table %s", e.Action.Name, t.Name)
		}
		if scope == p4configv1.ActionRef_DEFAULT_ONLY {
			return nil, invalid(e, "action %s is default-only in table %s", e.Action.Name, t.Name)
		}
		if err := in.encodeActionInto(e, e.Action, &sh.act); err != nil {
			return nil, err
		}
		sh.direct.Action = &sh.act
		sh.ta.Type = &sh.direct
		te.Action = &sh.ta
	}
	return &sh.ent, nil
}

// tableShell holds the nested messages of a table entry's entity, so that
// encoding one costs one allocation for all of them.
type tableShell struct {
	ent    p4v1.Entity
	wrap   p4v1.Entity_TableEntry
	te     p4v1.TableEntry
	ta     p4v1.TableAction
	direct p4v1.TableAction_Action
	member p4v1.TableAction_ActionProfileMemberId
	group  p4v1.TableAction_ActionProfileGroupId
	act    p4v1.Action
}

// Per-kind match shells: one allocation per match field.
type exactShell struct {
	fm p4v1.FieldMatch
	w  p4v1.FieldMatch_Exact_
	v  p4v1.FieldMatch_Exact
}
type lpmShell struct {
	fm p4v1.FieldMatch
	w  p4v1.FieldMatch_Lpm
	v  p4v1.FieldMatch_LPM
}
type ternaryShell struct {
	fm p4v1.FieldMatch
	w  p4v1.FieldMatch_Ternary_
	v  p4v1.FieldMatch_Ternary
}
type rangeShell struct {
	fm p4v1.FieldMatch
	w  p4v1.FieldMatch_Range_
	v  p4v1.FieldMatch_Range
}
type optionalShell struct {
	fm p4v1.FieldMatch
	w  p4v1.FieldMatch_Optional_
	v  p4v1.FieldMatch_Optional
}

func (in *Info) encodeMatch(e entry.Entry, t *TableInfo) ([]*p4v1.FieldMatch, error) {
	if len(e.Match) == 0 {
		for _, f := range t.Fields {
			if f.Kind == entry.MatchExact {
				return nil, invalid(e, "exact field %s of table %s is missing", f.Name, t.Name)
			}
		}
		return nil, nil
	}
	out := make([]*p4v1.FieldMatch, 0, len(e.Match))
	exact := 0
	for i := range e.Match {
		m := &e.Match[i]
		f, ok := t.fieldsByName[m.Field]
		if !ok {
			return nil, fmt.Errorf("%w: %s: table %s: %w", ErrInvalidEntry, e, t.Name,
				unknownName("match field", m.Field, fieldNames(t)))
		}
		if i > 0 && e.Match[i-1].Field == m.Field {
			return nil, invalid(e, "match field %s given twice", m.Field)
		}
		if f.Kind != m.Kind {
			return nil, invalid(e, "field %s is %s in the P4Info, not %s", f.Name, f.Kind, m.Kind)
		}
		if err := checkBytes(e, f.Name, "", m.Value, f.Bitwidth); err != nil {
			return nil, err
		}
		var fm *p4v1.FieldMatch
		switch m.Kind {
		case entry.MatchExact:
			exact++
			x := &exactShell{}
			x.v.Value = m.Value
			x.w.Exact = &x.v
			x.fm.FieldMatchType = &x.w
			fm = &x.fm
		case entry.MatchLPM:
			if m.PrefixLen <= 0 || (f.Bitwidth > 0 && m.PrefixLen > f.Bitwidth) {
				return nil, invalid(e, "field %s: prefix length %d outside 1..%d (omit the field for /0)", f.Name, m.PrefixLen, f.Bitwidth)
			}
			if f.Bitwidth > 0 && entry.BitLen(m.Value) > 0 && trailingZeros(m.Value) < int(f.Bitwidth-m.PrefixLen) {
				return nil, invalid(e, "field %s: value 0x%x has bits set beyond the /%d prefix", f.Name, m.Value, m.PrefixLen)
			}
			x := &lpmShell{}
			x.v.Value, x.v.PrefixLen = m.Value, m.PrefixLen
			x.w.Lpm = &x.v
			x.fm.FieldMatchType = &x.w
			fm = &x.fm
		case entry.MatchTernary:
			if err := checkBytes(e, f.Name, " mask", m.Mask, f.Bitwidth); err != nil {
				return nil, err
			}
			if entry.BitLen(m.Mask) == 0 {
				return nil, invalid(e, "field %s: ternary mask is zero (omit the field)", f.Name)
			}
			x := &ternaryShell{}
			x.v.Value, x.v.Mask = m.Value, m.Mask
			x.w.Ternary = &x.v
			x.fm.FieldMatchType = &x.w
			fm = &x.fm
		case entry.MatchRange:
			if err := checkBytes(e, f.Name, " high", m.High, f.Bitwidth); err != nil {
				return nil, err
			}
			if entry.BitLen(m.Value) == 0 && f.Bitwidth > 0 && isAllOnes(m.High, f.Bitwidth) {
				return nil, invalid(e, "field %s: range covers every value (omit the field)", f.Name)
			}
			x := &rangeShell{}
			x.v.Low, x.v.High = m.Value, m.High
			x.w.Range = &x.v
			x.fm.FieldMatchType = &x.w
			fm = &x.fm
		case entry.MatchOptional:
			x := &optionalShell{}
			x.v.Value = m.Value
			x.w.Optional = &x.v
			x.fm.FieldMatchType = &x.w
			fm = &x.fm
		default:
			return nil, invalid(e, "field %s: unknown match kind", f.Name)
		}
		fm.FieldId = f.ID
		out = append(out, fm)
	}
	if need := countExact(t); exact != need {
		for _, f := range t.Fields {
			if f.Kind == entry.MatchExact && !hasField(e, f.Name) {
				return nil, invalid(e, "exact field %s of table %s is missing", f.Name, t.Name)
			}
		}
	}
	return out, nil
}

func hasField(e entry.Entry, name string) bool {
	for _, m := range e.Match {
		if m.Field == name {
			return true
		}
	}
	return false
}

func countExact(t *TableInfo) int {
	n := 0
	for _, f := range t.Fields {
		if f.Kind == entry.MatchExact {
			n++
		}
	}
	return n
}

func fieldNames(t *TableInfo) []string {
	out := make([]string, len(t.Fields))
	for i, f := range t.Fields {
		out[i] = f.Name
	}
	return out
}

func checkBytes(e entry.Entry, what, what2 string, b []byte, width int32) error {
	if entry.IsCanonical(b) && (width <= 0 || entry.BitLen(b) <= int(width)) {
		return nil
	}
	what += what2
	if !entry.IsCanonical(b) {
		if len(b) == 0 {
			return invalid(e, "%s: empty byte string", what)
		}
		return invalid(e, "%s: non-canonical byte string 0x%x", what, b)
	}
	if width > 0 && entry.BitLen(b) > int(width) {
		return invalid(e, "%s: value 0x%x does not fit in %d bits", what, b, width)
	}
	return nil
}

func trailingZeros(b []byte) int {
	n := 0
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return n + bits.TrailingZeros8(b[i])
		}
		n += 8
	}
	return n
}

func isAllOnes(b []byte, width int32) bool {
	if entry.BitLen(b) != int(width) {
		return false
	}
	return trailingZeros(complement(b)) >= int(width)
}

func complement(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[i] = ^b[i]
	}
	return out
}

func (in *Info) encodeAction(e entry.Entry, act entry.Action) (*p4v1.Action, error) {
	out := &p4v1.Action{}
	if err := in.encodeActionInto(e, act, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (in *Info) encodeActionInto(e entry.Entry, act entry.Action, out *p4v1.Action) error {
	a, ok := in.actions[act.Name]
	if !ok {
		return fmt.Errorf("%w: %s: %w", ErrInvalidEntry, e, unknownName("action", act.Name, nil))
	}
	if len(act.Params) != len(a.Params) {
		for _, p := range a.Params {
			if !hasParam(act, p.Name) {
				return invalid(e, "action %s: param %s is missing", a.Name, p.Name)
			}
		}
	}
	out.ActionId = a.ID
	if len(act.Params) == 0 {
		return nil
	}
	params := make([]p4v1.Action_Param, len(act.Params))
	out.Params = make([]*p4v1.Action_Param, len(act.Params))
	for i := range act.Params {
		p := &act.Params[i]
		pi, ok := a.paramsByName[p.Name]
		if !ok {
			return invalid(e, "action %s has no param %q", a.Name, p.Name)
		}
		if i > 0 && act.Params[i-1].Name == p.Name {
			return invalid(e, "action %s: param %s given twice", a.Name, p.Name)
		}
		if !entry.IsCanonical(p.Value) || (pi.Bitwidth > 0 && entry.BitLen(p.Value) > int(pi.Bitwidth)) {
			return checkBytes(e, "param ", p.Name, p.Value, pi.Bitwidth)
		}
		params[i].ParamId, params[i].Value = pi.ID, p.Value
		out.Params[i] = &params[i]
	}
	return nil
}

func hasParam(a entry.Action, name string) bool {
	for _, p := range a.Params {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (in *Info) encodeDefault(e entry.Entry) (*p4v1.Entity, error) {
	t, err := in.table(e)
	if err != nil {
		return nil, err
	}
	if t.ConstDefault {
		return nil, invalid(e, "table %s has a const default action", t.Name)
	}
	if t.Profile != nil {
		return nil, invalid(e, "table %s is indirect: P4Runtime fixes its default action", t.Name)
	}
	scope, ok := t.Actions[e.Action.Name]
	if !ok {
		return nil, invalid(e, "action %q is not an action of table %s", e.Action.Name, t.Name)
	}
	if scope == p4configv1.ActionRef_TABLE_ONLY {
		return nil, invalid(e, "action %s is table-only in table %s: not a default action", e.Action.Name, t.Name)
	}
	a, err := in.encodeAction(e, e.Action)
	if err != nil {
		return nil, err
	}
	return &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{
		TableId: t.ID, IsDefaultAction: true,
		Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: a}},
	}}}, nil
}

// DefaultReset returns the entity that, sent as MODIFY, resets the default
// action of table to the program's.
func (in *Info) DefaultReset(table string) (*p4v1.Entity, error) {
	t, ok := in.tables[table]
	if !ok {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEntry, unknownName("table", table, in.tableNames))
	}
	return &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: t.ID, IsDefaultAction: true}}}, nil
}

func (in *Info) profile(e entry.Entry) (*ProfileInfo, error) {
	p, ok := in.profiles[e.Profile]
	if !ok {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidEntry, e, unknownName("action profile", e.Profile, in.profileNames))
	}
	return p, nil
}

func (in *Info) encodeMember(e entry.Entry, ids IDs) (*p4v1.Entity, error) {
	p, err := in.profile(e)
	if err != nil {
		return nil, err
	}
	if !p.Actions[e.Action.Name] {
		return nil, invalid(e, "action %q is not usable by members of %s", e.Action.Name, p.Name)
	}
	a, err := in.encodeAction(e, e.Action)
	if err != nil {
		return nil, err
	}
	id, ok := ids.MemberID(p.Name, e.Name)
	if !ok || id == 0 {
		return nil, invalid(e, "member has no id")
	}
	return &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileMember{ActionProfileMember: &p4v1.ActionProfileMember{
		ActionProfileId: p.ID, MemberId: id, Action: a,
	}}}, nil
}

func (in *Info) encodeGroup(e entry.Entry, ids IDs) (*p4v1.Entity, error) {
	p, err := in.profile(e)
	if err != nil {
		return nil, err
	}
	if !p.WithSelector {
		return nil, invalid(e, "action profile %s has no selector: no groups", p.Name)
	}
	id, ok := ids.GroupID(p.Name, e.Name)
	if !ok || id == 0 {
		return nil, invalid(e, "group has no id")
	}
	g := &p4v1.ActionProfileGroup{ActionProfileId: p.ID, GroupId: id, MaxSize: p.MaxGroupSize,
		Members: make([]*p4v1.ActionProfileGroup_Member, 0, len(e.Members))}
	size := int64(0)
	for i, m := range e.Members {
		if m.Weight <= 0 {
			return nil, invalid(e, "member %q: weight %d must be positive", m.Member, m.Weight)
		}
		if i > 0 && e.Members[i-1].Member == m.Member {
			return nil, invalid(e, "member %q listed twice", m.Member)
		}
		mid, ok := ids.MemberID(p.Name, m.Member)
		if !ok {
			return nil, invalid(e, "member %q has no id (not installed)", m.Member)
		}
		if p.SumOfMembers {
			size++
		} else {
			size += int64(m.Weight)
		}
		g.Members = append(g.Members, &p4v1.ActionProfileGroup_Member{MemberId: mid, Weight: m.Weight})
	}
	if p.MaxGroupSize > 0 && size > int64(p.MaxGroupSize) {
		return nil, invalid(e, "group size %d exceeds max_group_size %d of %s", size, p.MaxGroupSize, p.Name)
	}
	return &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileGroup{ActionProfileGroup: g}}, nil
}

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
