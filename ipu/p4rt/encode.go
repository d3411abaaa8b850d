package p4rt

import (
	"fmt"
	"math/bits"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"

	"github.com/calico-p4/calico-p4/p4src/entry"
)

// resolved is an entry checked against the P4Info, with every name turned
// into an id: what both encoders (proto messages and wire bytes) emit.
type resolved struct {
	entity    entityKind
	id        uint32 // table id, or action profile id
	isDefault bool
	priority  int32
	act       actKind
	actionID  uint32
	refID     uint32 // table entry → member or group id
	ownID     uint32 // member or group id
	members   []rmember
	maxSize   int32

	// Matches and params live in fixed arrays (no pointer into the
	// struct, so a resolved on the stack stays there), with overflow.
	nm, np int
	marr   [8]rmatch
	parr   [8]rparam
	mover  []rmatch
	pover  []rparam
}

func (r *resolved) addMatch(m rmatch) {
	if r.nm < len(r.marr) {
		r.marr[r.nm] = m
	} else {
		r.mover = append(r.mover, m)
	}
	r.nm++
}

func (r *resolved) match(i int) *rmatch {
	if i < len(r.marr) {
		return &r.marr[i]
	}
	return &r.mover[i-len(r.marr)]
}

func (r *resolved) addParam(p rparam) {
	if r.np < len(r.parr) {
		r.parr[r.np] = p
	} else {
		r.pover = append(r.pover, p)
	}
	r.np++
}

func (r *resolved) param(i int) *rparam {
	if i < len(r.parr) {
		return &r.parr[i]
	}
	return &r.pover[i-len(r.parr)]
}

type entityKind uint8

const (
	entTable  entityKind = 2 // p4.v1.Entity field numbers
	entMember entityKind = 3
	entGroup  entityKind = 4
)

type actKind uint8

const (
	actNone   actKind = 0
	actDirect actKind = 1 // p4.v1.TableAction field numbers
	actMember actKind = 2
	actGroup  actKind = 3
)

type rmatch struct {
	fieldID uint32
	kind    entry.MatchKind
	a, b    []byte // value / low; mask / high
	plen    int32
}

type rparam struct {
	id    uint32
	value []byte
}

type rmember struct {
	id     uint32
	weight int32
}

func invalid(e entry.Entry, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidEntry, e, fmt.Sprintf(format, args...))
}

// Encode validates e against the P4Info and returns its p4.v1.Entity, with
// member and group ids from ids. The result is the full entity (for INSERT
// and MODIFY; DELETE ignores the non-key parts).
func (in *Info) Encode(e entry.Entry, ids IDs) (*p4v1.Entity, error) {
	var r resolved
	if err := in.resolve(e, ids, &r); err != nil {
		return nil, err
	}
	return r.entity_(), nil
}

// Validate checks e against the P4Info without member/group ids.
func (in *Info) Validate(e entry.Entry) error {
	var r resolved
	return in.resolve(e, anyIDs{}, &r)
}

// anyIDs resolves every name to id 1, for validation.
type anyIDs struct{}

func (anyIDs) MemberID(string, string) (uint32, bool) { return 1, true }
func (anyIDs) GroupID(string, string) (uint32, bool)  { return 1, true }

// DefaultReset returns the entity that, sent as MODIFY, resets the default
// action of table to the program's.
func (in *Info) DefaultReset(table string) (*p4v1.Entity, error) {
	t, ok := in.tables[table]
	if !ok {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEntry, unknownName("table", table, in.tableNames))
	}
	return &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: t.ID, IsDefaultAction: true}}}, nil
}

func (in *Info) resolve(e entry.Entry, ids IDs, r *resolved) error {
	switch e.Kind {
	case entry.KindTable:
		return in.resolveTable(e, ids, r)
	case entry.KindDefault:
		return in.resolveDefault(e, r)
	case entry.KindMember:
		return in.resolveMember(e, ids, r)
	case entry.KindGroup:
		return in.resolveGroup(e, ids, r)
	}
	return invalid(e, "unknown kind")
}

func (in *Info) table(e entry.Entry) (*TableInfo, error) {
	t, ok := in.tables[e.Table]
	if !ok {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidEntry, e, unknownName("table", e.Table, in.tableNames))
	}
	return t, nil
}

func (in *Info) resolveTable(e entry.Entry, ids IDs, r *resolved) error {
	t, err := in.table(e)
	if err != nil {
		return err
	}
	if t.IsConst {
		return invalid(e, "table %s is const", t.Name)
	}
	r.entity, r.id, r.priority = entTable, t.ID, e.Priority
	if t.NeedsPriority {
		if e.Priority <= 0 {
			return invalid(e, "table %s has ternary, range or optional fields and needs a priority > 0", t.Name)
		}
	} else if e.Priority != 0 {
		return invalid(e, "table %s has only exact and lpm fields and takes no priority", t.Name)
	}
	if err := in.resolveMatch(e, t, r); err != nil {
		return err
	}
	switch {
	case e.Member != "" || e.Group != "":
		if t.Profile == nil {
			return invalid(e, "table %s is direct: it takes an action, not a member or group", t.Name)
		}
		if e.Group != "" {
			if !t.Profile.WithSelector {
				return invalid(e, "table %s is implemented by action profile %s without a selector: no groups", t.Name, t.Profile.Name)
			}
			id, ok := ids.GroupID(t.Profile.Name, e.Group)
			if !ok {
				return invalid(e, "group %q of %s has no id (not installed)", e.Group, t.Profile.Name)
			}
			r.act, r.refID = actGroup, id
		} else {
			id, ok := ids.MemberID(t.Profile.Name, e.Member)
			if !ok {
				return invalid(e, "member %q of %s has no id (not installed)", e.Member, t.Profile.Name)
			}
			r.act, r.refID = actMember, id
		}
	default:
		if t.Profile != nil {
			return invalid(e, "table %s is implemented by action profile %s: it takes a member or group, not an action", t.Name, t.Profile.Name)
		}
		scope, ok := t.Actions[e.Action.Name]
		if !ok {
			return invalid(e, "action %q is not an action of table %s", e.Action.Name, t.Name)
		}
		if scope == p4configv1.ActionRef_DEFAULT_ONLY {
			return invalid(e, "action %s is default-only in table %s", e.Action.Name, t.Name)
		}
		if err := in.resolveAction(e, e.Action, r); err != nil {
			return err
		}
	}
	return nil
}

func (in *Info) resolveMatch(e entry.Entry, t *TableInfo, r *resolved) error {
	exact, next := 0, 0
	for i := range e.Match {
		m := &e.Match[i]
		f, ok := t.fieldNamed(m.Field, &next)
		if !ok {
			return fmt.Errorf("%w: %s: table %s: %w", ErrInvalidEntry, e, t.Name,
				unknownName("match field", m.Field, fieldNames(t)))
		}
		if i > 0 && e.Match[i-1].Field == m.Field {
			return invalid(e, "match field %s given twice", m.Field)
		}
		if f.Kind != m.Kind {
			return invalid(e, "field %s is %s in the P4Info, not %s", f.Name, f.Kind, m.Kind)
		}
		if err := checkBytes(e, f.Name, "", m.Value, f.Bitwidth); err != nil {
			return err
		}
		rm := rmatch{fieldID: f.ID, kind: m.Kind, a: m.Value}
		switch m.Kind {
		case entry.MatchExact:
			exact++
		case entry.MatchLPM:
			if m.PrefixLen <= 0 || (f.Bitwidth > 0 && m.PrefixLen > f.Bitwidth) {
				return invalid(e, "field %s: prefix length %d outside 1..%d (omit the field for /0)", f.Name, m.PrefixLen, f.Bitwidth)
			}
			if f.Bitwidth > 0 && entry.BitLen(m.Value) > 0 && trailingZeros(m.Value) < int(f.Bitwidth-m.PrefixLen) {
				return invalid(e, "field %s: value 0x%x has bits set beyond the /%d prefix", f.Name, m.Value, m.PrefixLen)
			}
			rm.plen = m.PrefixLen
		case entry.MatchTernary:
			if err := checkBytes(e, f.Name, " mask", m.Mask, f.Bitwidth); err != nil {
				return err
			}
			if entry.BitLen(m.Mask) == 0 {
				return invalid(e, "field %s: ternary mask is zero (omit the field)", f.Name)
			}
			rm.b = m.Mask
		case entry.MatchRange:
			if err := checkBytes(e, f.Name, " high", m.High, f.Bitwidth); err != nil {
				return err
			}
			if entry.BitLen(m.Value) == 0 && f.Bitwidth > 0 && isAllOnes(m.High, f.Bitwidth) {
				return invalid(e, "field %s: range covers every value (omit the field)", f.Name)
			}
			rm.b = m.High
		case entry.MatchOptional:
		default:
			return invalid(e, "field %s: unknown match kind", f.Name)
		}
		r.addMatch(rm)
	}
	if exact != t.nExact {
		for _, f := range t.Fields {
			if f.Kind == entry.MatchExact && !hasField(e, f.Name) {
				return invalid(e, "exact field %s of table %s is missing", f.Name, t.Name)
			}
		}
	}
	return nil
}

func hasField(e entry.Entry, name string) bool {
	for _, m := range e.Match {
		if m.Field == name {
			return true
		}
	}
	return false
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
	return invalid(e, "%s: value 0x%x does not fit in %d bits", what, b, width)
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
	for i := len(b) - 1; i >= 0; i-- {
		need := byte(0xff)
		if rem := int(width) - (len(b)-1-i)*8; rem < 8 {
			need = byte(1<<rem) - 1
		}
		if b[i]&need != need {
			return false
		}
	}
	return true
}

func (in *Info) resolveAction(e entry.Entry, act entry.Action, r *resolved) error {
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
	r.act, r.actionID = actDirect, a.ID
	next := 0
	for i := range act.Params {
		p := &act.Params[i]
		pi, ok := a.paramNamed(p.Name, &next)
		if !ok {
			return invalid(e, "action %s has no param %q", a.Name, p.Name)
		}
		if i > 0 && act.Params[i-1].Name == p.Name {
			return invalid(e, "action %s: param %s given twice", a.Name, p.Name)
		}
		if !entry.IsCanonical(p.Value) || (pi.Bitwidth > 0 && entry.BitLen(p.Value) > int(pi.Bitwidth)) {
			return checkBytes(e, "param ", p.Name, p.Value, pi.Bitwidth)
		}
		r.addParam(rparam{id: pi.ID, value: p.Value})
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

func (in *Info) resolveDefault(e entry.Entry, r *resolved) error {
	t, err := in.table(e)
	if err != nil {
		return err
	}
	if t.ConstDefault {
		return invalid(e, "table %s has a const default action", t.Name)
	}
	if t.Profile != nil {
		return invalid(e, "table %s is indirect: P4Runtime fixes its default action", t.Name)
	}
	scope, ok := t.Actions[e.Action.Name]
	if !ok {
		return invalid(e, "action %q is not an action of table %s", e.Action.Name, t.Name)
	}
	if scope == p4configv1.ActionRef_TABLE_ONLY {
		return invalid(e, "action %s is table-only in table %s: not a default action", e.Action.Name, t.Name)
	}
	r.entity, r.id, r.isDefault = entTable, t.ID, true
	return in.resolveAction(e, e.Action, r)
}

func (in *Info) profile(e entry.Entry) (*ProfileInfo, error) {
	p, ok := in.profiles[e.Profile]
	if !ok {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidEntry, e, unknownName("action profile", e.Profile, in.profileNames))
	}
	return p, nil
}

func (in *Info) resolveMember(e entry.Entry, ids IDs, r *resolved) error {
	p, err := in.profile(e)
	if err != nil {
		return err
	}
	if !p.Actions[e.Action.Name] {
		return invalid(e, "action %q is not usable by members of %s", e.Action.Name, p.Name)
	}
	if err := in.resolveAction(e, e.Action, r); err != nil {
		return err
	}
	id, ok := ids.MemberID(p.Name, e.Name)
	if !ok || id == 0 {
		return invalid(e, "member has no id")
	}
	r.entity, r.id, r.ownID = entMember, p.ID, id
	return nil
}

func (in *Info) resolveGroup(e entry.Entry, ids IDs, r *resolved) error {
	p, err := in.profile(e)
	if err != nil {
		return err
	}
	if !p.WithSelector {
		return invalid(e, "action profile %s has no selector: no groups", p.Name)
	}
	id, ok := ids.GroupID(p.Name, e.Name)
	if !ok || id == 0 {
		return invalid(e, "group has no id")
	}
	r.entity, r.id, r.ownID, r.maxSize = entGroup, p.ID, id, p.MaxGroupSize
	r.members = make([]rmember, 0, len(e.Members))
	size := int64(0)
	for i, m := range e.Members {
		if m.Weight <= 0 {
			return invalid(e, "member %q: weight %d must be positive", m.Member, m.Weight)
		}
		if i > 0 && e.Members[i-1].Member == m.Member {
			return invalid(e, "member %q listed twice", m.Member)
		}
		mid, ok := ids.MemberID(p.Name, m.Member)
		if !ok {
			return invalid(e, "member %q has no id (not installed)", m.Member)
		}
		if p.SumOfMembers {
			size++
		} else {
			size += int64(m.Weight)
		}
		r.members = append(r.members, rmember{id: mid, weight: m.Weight})
	}
	if p.MaxGroupSize > 0 && size > int64(p.MaxGroupSize) {
		return invalid(e, "group size %d exceeds max_group_size %d of %s", size, p.MaxGroupSize, p.Name)
	}
	return nil
}

// entity_ builds the p4.v1.Entity (nested messages in few allocations).
func (r *resolved) entity_() *p4v1.Entity {
	switch r.entity {
	case entMember:
		m := &memberShell{}
		m.m.ActionProfileId, m.m.MemberId = r.id, r.ownID
		r.fillAction(&m.a)
		m.m.Action = &m.a
		m.w.ActionProfileMember = &m.m
		m.ent.Entity = &m.w
		return &m.ent
	case entGroup:
		g := &p4v1.ActionProfileGroup{ActionProfileId: r.id, GroupId: r.ownID, MaxSize: r.maxSize}
		if len(r.members) > 0 {
			ms := make([]p4v1.ActionProfileGroup_Member, len(r.members))
			g.Members = make([]*p4v1.ActionProfileGroup_Member, len(r.members))
			for i, m := range r.members {
				ms[i].MemberId, ms[i].Weight = m.id, m.weight
				g.Members[i] = &ms[i]
			}
		}
		return &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileGroup{ActionProfileGroup: g}}
	}
	sh := &tableShell{}
	te := &sh.te
	te.TableId, te.Priority, te.IsDefaultAction = r.id, r.priority, r.isDefault
	sh.wrap.TableEntry = te
	sh.ent.Entity = &sh.wrap
	if r.nm > 0 {
		te.Match = make([]*p4v1.FieldMatch, r.nm)
		for i := 0; i < r.nm; i++ {
			te.Match[i] = r.match(i).proto()
		}
	}
	switch r.act {
	case actDirect:
		r.fillAction(&sh.act)
		sh.direct.Action = &sh.act
		sh.ta.Type = &sh.direct
		te.Action = &sh.ta
	case actMember:
		sh.member.ActionProfileMemberId = r.refID
		sh.ta.Type = &sh.member
		te.Action = &sh.ta
	case actGroup:
		sh.group.ActionProfileGroupId = r.refID
		sh.ta.Type = &sh.group
		te.Action = &sh.ta
	}
	return &sh.ent
}

func (r *resolved) fillAction(a *p4v1.Action) {
	a.ActionId = r.actionID
	if r.np == 0 {
		return
	}
	ps := make([]p4v1.Action_Param, r.np)
	a.Params = make([]*p4v1.Action_Param, r.np)
	for i := range ps {
		p := r.param(i)
		ps[i].ParamId, ps[i].Value = p.id, p.value
		a.Params[i] = &ps[i]
	}
}

func (m *rmatch) proto() *p4v1.FieldMatch {
	switch m.kind {
	case entry.MatchExact:
		x := &exactShell{}
		x.v.Value = m.a
		x.w.Exact = &x.v
		x.fm.FieldMatchType = &x.w
		x.fm.FieldId = m.fieldID
		return &x.fm
	case entry.MatchLPM:
		x := &lpmShell{}
		x.v.Value, x.v.PrefixLen = m.a, m.plen
		x.w.Lpm = &x.v
		x.fm.FieldMatchType = &x.w
		x.fm.FieldId = m.fieldID
		return &x.fm
	case entry.MatchTernary:
		x := &ternaryShell{}
		x.v.Value, x.v.Mask = m.a, m.b
		x.w.Ternary = &x.v
		x.fm.FieldMatchType = &x.w
		x.fm.FieldId = m.fieldID
		return &x.fm
	case entry.MatchRange:
		x := &rangeShell{}
		x.v.Low, x.v.High = m.a, m.b
		x.w.Range = &x.v
		x.fm.FieldMatchType = &x.w
		x.fm.FieldId = m.fieldID
		return &x.fm
	}
	x := &optionalShell{}
	x.v.Value = m.a
	x.w.Optional = &x.v
	x.fm.FieldMatchType = &x.w
	x.fm.FieldId = m.fieldID
	return &x.fm
}

// Shells hold nested messages so that one allocation builds several.
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

type memberShell struct {
	ent p4v1.Entity
	w   p4v1.Entity_ActionProfileMember
	m   p4v1.ActionProfileMember
	a   p4v1.Action
}

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

func protoMarshal(m *p4v1.Update) ([]byte, error) { return proto.Marshal(m) }

// fieldNamed is t.fieldsByName[name] for names asked in sorted order (a canonical entry's matches): it
// walks t.sortedFields from *next instead of hashing the name; out of order it falls back to the map.
func (t *TableInfo) fieldNamed(name string, next *int) (*FieldInfo, bool) {
	for ; *next < len(t.sortedFields); *next++ {
		f := t.sortedFields[*next]
		if f.Name == name {
			*next++
			return f, true
		}
		if f.Name > name {
			break
		}
	}
	f, ok := t.fieldsByName[name]
	return f, ok
}

// paramNamed is fieldNamed for an action's params.
func (a *ActionInfo) paramNamed(name string, next *int) (*ParamInfo, bool) {
	for ; *next < len(a.sortedParams); *next++ {
		p := a.sortedParams[*next]
		if p.Name == name {
			*next++
			return p, true
		}
		if p.Name > name {
			break
		}
	}
	p, ok := a.paramsByName[name]
	return p, ok
}
