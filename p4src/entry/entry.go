package entry

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Kind says which P4Runtime entity an Entry is. The numeric order is the
// dependency order: members before the groups that contain them, groups
// before the table entries that point at them.
type Kind uint8

const (
	// KindMember is an action-profile member: a named action instance.
	KindMember Kind = iota + 1
	// KindGroup is an action-profile (selector) group of named members.
	KindGroup
	// KindTable is a table entry: match fields, priority and an action or a
	// member/group reference.
	KindTable
	// KindDefault is the default action of a table (P4Runtime MODIFY only).
	KindDefault
)

func (k Kind) String() string {
	switch k {
	case KindMember:
		return "member"
	case KindGroup:
		return "group"
	case KindTable:
		return "table"
	case KindDefault:
		return "default"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MatchKind is the match type of one match field, as in the P4Info.
type MatchKind uint8

const (
	MatchExact MatchKind = iota + 1
	MatchLPM
	MatchTernary
	MatchRange
	MatchOptional
)

func (k MatchKind) String() string {
	switch k {
	case MatchExact:
		return "exact"
	case MatchLPM:
		return "lpm"
	case MatchTernary:
		return "ternary"
	case MatchRange:
		return "range"
	case MatchOptional:
		return "optional"
	}
	return fmt.Sprintf("match(%d)", uint8(k))
}

// Match is the value of one match field, named as in the P4Info. A field
// that is "don't care" (ternary mask 0, lpm prefix 0, optional or range
// wildcard) is omitted from the entry, as P4Runtime requires.
type Match struct {
	Field string
	Kind  MatchKind
	// Value is the exact, lpm, ternary or optional value, or the low end of a
	// range.
	Value []byte
	// Mask is the ternary mask.
	Mask []byte
	// High is the high end of a range.
	High []byte
	// PrefixLen is the lpm prefix length in bits.
	PrefixLen int32
}

// Param is one action parameter, named as in the P4Info.
type Param struct {
	Name  string
	Value []byte
}

// Action is an action instance: the P4Info action name and every parameter.
type Action struct {
	Name   string
	Params []Param
}

// GroupMember is one member of a group, referred to by its symbolic name.
type GroupMember struct {
	Member string
	Weight int32
}

// Entry is one piece of forwarding state. Build entries with the
// constructors (Table, TableMember, TableGroup, Default, Member, Group),
// which return canonical values; treat an Entry as immutable once built.
type Entry struct {
	Kind Kind
	// Table is the P4Info table name (KindTable, KindDefault).
	Table string
	// Profile is the P4Info action-profile name (KindMember, KindGroup).
	Profile string
	// Name is the symbolic name of a member or group (KindMember, KindGroup).
	Name string
	// Match holds the match fields of a table entry, sorted by field name.
	Match []Match
	// Priority of a table entry (required by tables with ternary, range or
	// optional fields, zero otherwise).
	Priority int32
	// Action is the action of a direct table entry, a default action or a
	// member.
	Action Action
	// Member is the symbolic name of the member a table entry points at
	// (indirect tables).
	Member string
	// Group is the symbolic name of the group a table entry points at
	// (tables implemented by an action selector).
	Group string
	// Members are a group's members, sorted by member name.
	Members []GroupMember
}

// Exact is an exact match of field on v.
func Exact(field string, v []byte) Match {
	return Match{Field: field, Kind: MatchExact, Value: Canonical(v)}
}

// LPM is a longest-prefix match of field on the first prefixLen bits of v.
// v must already have the bits beyond the prefix cleared (the field width,
// which this package does not know, decides where they are); the encoder
// checks it.
func LPM(field string, v []byte, prefixLen int) Match {
	return Match{Field: field, Kind: MatchLPM, Value: Canonical(v), PrefixLen: int32(prefixLen)}
}

// Ternary matches field on the bits of v selected by mask; bits of v outside
// mask are cleared.
func Ternary(field string, v, mask []byte) Match {
	return Match{Field: field, Kind: MatchTernary, Value: and(v, mask), Mask: Canonical(mask)}
}

// Range matches field on lo..hi inclusive.
func Range(field string, lo, hi []byte) Match {
	return Match{Field: field, Kind: MatchRange, Value: Canonical(lo), High: Canonical(hi)}
}

// Optional matches field on exactly v (omit the field for a wildcard).
func Optional(field string, v []byte) Match {
	return Match{Field: field, Kind: MatchOptional, Value: Canonical(v)}
}

// P is an action parameter.
func P(name string, v []byte) Param { return Param{Name: name, Value: Canonical(v)} }

// Act is an action instance with its parameters (sorted by name).
func Act(name string, params ...Param) Action {
	a := Action{Name: name, Params: slices.Clone(params)}
	for i := range a.Params {
		a.Params[i].Value = Canonical(a.Params[i].Value)
	}
	sortParams(a.Params)
	return a
}

// W is a group member with its weight.
func W(member string, weight int32) GroupMember { return GroupMember{Member: member, Weight: weight} }

// Table is an entry of a direct table.
func Table(table string, priority int32, action Action, match ...Match) Entry {
	return Entry{Kind: KindTable, Table: table, Priority: priority, Action: action, Match: match}.Canonical()
}

// TableMember is an entry of an indirect table pointing at a member.
func TableMember(table string, priority int32, member string, match ...Match) Entry {
	return Entry{Kind: KindTable, Table: table, Priority: priority, Member: member, Match: match}.Canonical()
}

// TableGroup is an entry of a selector table pointing at a group.
func TableGroup(table string, priority int32, group string, match ...Match) Entry {
	return Entry{Kind: KindTable, Table: table, Priority: priority, Group: group, Match: match}.Canonical()
}

// Default is the default action of table.
func Default(table string, action Action) Entry {
	return Entry{Kind: KindDefault, Table: table, Action: action}.Canonical()
}

// Member is an action-profile member called name.
func Member(profile, name string, action Action) Entry {
	return Entry{Kind: KindMember, Profile: profile, Name: name, Action: action}.Canonical()
}

// Group is an action-selector group called name.
func Group(profile, name string, members ...GroupMember) Entry {
	return Entry{Kind: KindGroup, Profile: profile, Name: name, Members: members}.Canonical()
}

// Container is the name of the table or action profile the entry lives in.
func (e Entry) Container() string {
	if e.Kind == KindMember || e.Kind == KindGroup {
		return e.Profile
	}
	return e.Table
}

// Canonical returns e with match fields sorted by name, "don't care" matches
// (ternary mask 0, lpm prefix length 0) dropped, params and group members
// sorted by name, and byte strings canonical. It returns e itself, without
// copying, when e is already canonical. The result never shares slices that
// it had to change with e.
func (e Entry) Canonical() Entry {
	if e.isCanonical() {
		return e
	}
	out := e
	if !matchCanonical(e.Match) {
		out.Match = canonicalMatch(e.Match)
	}
	if !paramsCanonical(e.Action.Params) {
		out.Action.Params = slices.Clone(e.Action.Params)
		for i := range out.Action.Params {
			out.Action.Params[i].Value = canonicalShared(out.Action.Params[i].Value)
		}
		sortParams(out.Action.Params)
	}
	if !membersSorted(e.Members) {
		out.Members = slices.Clone(e.Members)
		slices.SortStableFunc(out.Members, func(a, b GroupMember) int { return strings.Compare(a.Member, b.Member) })
	}
	return out
}

// canonicalMatch returns a canonical copy of match: sorted by field, "don't care" matches dropped, byte
// strings canonical (shared with match where they already are).
func canonicalMatch(match []Match) []Match {
	out := make([]Match, 0, len(match))
	for _, m := range match {
		m.Value = canonicalShared(m.Value)
		switch m.Kind {
		case MatchTernary:
			if isZero(m.Mask) {
				continue
			}
			m.Mask = canonicalShared(m.Mask)
			if !maskedEqual(m.Value, m.Mask) {
				m.Value = and(m.Value, m.Mask)
			}
		case MatchLPM:
			if m.PrefixLen == 0 && isZero(m.Value) {
				continue
			}
		case MatchRange:
			m.High = canonicalShared(m.High)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil
	}
	slices.SortStableFunc(out, func(a, b Match) int { return strings.Compare(a.Field, b.Field) })
	return out
}

// canonicalShared returns b itself when it is canonical (or empty), else a canonical copy: Canonical
// shares what it need not change.
func canonicalShared(b []byte) []byte {
	if len(b) == 0 || IsCanonical(b) {
		return b
	}
	return Canonical(b)
}

func sortParams(p []Param) {
	slices.SortStableFunc(p, func(a, b Param) int { return strings.Compare(a.Name, b.Name) })
}

func (e Entry) isCanonical() bool {
	return matchCanonical(e.Match) && paramsCanonical(e.Action.Params) && membersSorted(e.Members)
}

// matchCanonical reports whether match needs no change to be canonical.
func matchCanonical(match []Match) bool {
	if match != nil && len(match) == 0 {
		return false
	}
	for i, m := range match {
		if i > 0 && match[i-1].Field > m.Field {
			return false
		}
		if !IsCanonical(m.Value) && len(m.Value) != 0 {
			return false
		}
		switch m.Kind {
		case MatchTernary:
			if isZero(m.Mask) || !IsCanonical(m.Mask) || !maskedEqual(m.Value, m.Mask) {
				return false
			}
		case MatchLPM:
			if m.PrefixLen == 0 && isZero(m.Value) {
				return false
			}
		case MatchRange:
			if !IsCanonical(m.High) && len(m.High) != 0 {
				return false
			}
		}
	}
	return true
}

// paramsCanonical reports whether params are sorted by name with canonical values.
func paramsCanonical(params []Param) bool {
	for i, p := range params {
		if i > 0 && params[i-1].Name > p.Name {
			return false
		}
		if !IsCanonical(p.Value) && len(p.Value) != 0 {
			return false
		}
	}
	return true
}

func membersSorted(members []GroupMember) bool {
	for i := 1; i < len(members); i++ {
		if members[i-1].Member > members[i].Member {
			return false
		}
	}
	return true
}

// Validate reports structural errors that need no P4Info: missing names,
// fields that do not belong to the kind, duplicate or empty match fields,
// params and group members, inconsistent match values, non-canonical bytes.
func (e Entry) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	// badBytes reports a non-canonical byte string. Callers test IsCanonical first: Validate runs for every
	// entry a translation produces, and the common path must not allocate (format arguments would).
	badBytes := func(b []byte, what string, args ...any) {
		w := fmt.Sprintf(what, args...)
		if len(b) == 0 {
			bad("%s: empty byte string", w)
		} else {
			bad("%s: non-canonical byte string %x (leading zero bytes)", w, b)
		}
	}
	checkAction := func() {
		if e.Action.Name == "" {
			bad("no action")
		}
		for i, p := range e.Action.Params {
			if p.Name == "" {
				bad("action %s: param %d has no name", e.Action.Name, i)
			}
			if i > 0 && e.Action.Params[i-1].Name >= p.Name {
				bad("action %s: params not sorted or duplicate %q", e.Action.Name, p.Name)
			}
			if !IsCanonical(p.Value) {
				badBytes(p.Value, "action %s param %s", e.Action.Name, p.Name)
			}
		}
	}
	noAction := func() {
		if e.Action.Name != "" || len(e.Action.Params) > 0 {
			bad("%s entry cannot have an action", e.Kind)
		}
	}
	noMatch := func() {
		if len(e.Match) > 0 || e.Priority != 0 {
			bad("%s entry cannot have match fields or a priority", e.Kind)
		}
	}
	noRefs := func() {
		if e.Member != "" || e.Group != "" {
			bad("%s entry cannot reference a member or group", e.Kind)
		}
	}
	noMembers := func() {
		if len(e.Members) > 0 {
			bad("%s entry cannot have group members", e.Kind)
		}
	}
	switch e.Kind {
	case KindTable, KindDefault:
		if e.Table == "" {
			bad("%s entry has no table", e.Kind)
		}
		if e.Profile != "" || e.Name != "" {
			bad("%s entry cannot have a profile or name", e.Kind)
		}
		noMembers()
		if e.Kind == KindDefault {
			noMatch()
			noRefs()
			checkAction()
			break
		}
		if e.Priority < 0 {
			bad("negative priority %d", e.Priority)
		}
		refs := 0
		if e.Action.Name != "" || len(e.Action.Params) > 0 {
			refs++
			checkAction()
		}
		if e.Member != "" {
			refs++
		}
		if e.Group != "" {
			refs++
		}
		if refs != 1 {
			bad("table entry needs exactly one of action, member or group (has %d)", refs)
		}
		for i, m := range e.Match {
			if m.Field == "" {
				bad("match field %d has no name", i)
			}
			if i > 0 && e.Match[i-1].Field >= m.Field {
				bad("%s: match fields not sorted or duplicate", fieldName(m.Field))
			}
			if !IsCanonical(m.Value) {
				badBytes(m.Value, "match field %q value", m.Field)
			}
			switch m.Kind {
			case MatchExact, MatchOptional:
				if m.Mask != nil || m.High != nil || m.PrefixLen != 0 {
					bad("%s: %s match with mask, high or prefix length", fieldName(m.Field), m.Kind)
				}
			case MatchLPM:
				if m.PrefixLen <= 0 {
					bad("%s: lpm prefix length %d (omit the field for a wildcard)", fieldName(m.Field), m.PrefixLen)
				}
				if m.Mask != nil || m.High != nil {
					bad("%s: lpm match with mask or high", fieldName(m.Field))
				}
			case MatchTernary:
				if !IsCanonical(m.Mask) {
					badBytes(m.Mask, "match field %q mask", m.Field)
				}
				if isZero(m.Mask) {
					bad("%s: ternary mask is zero (omit the field for a wildcard)", fieldName(m.Field))
				} else if !bytes.Equal(and(m.Value, m.Mask), m.Value) {
					bad("%s: ternary value %x has bits outside mask %x", fieldName(m.Field), m.Value, m.Mask)
				}
				if m.High != nil || m.PrefixLen != 0 {
					bad("%s: ternary match with high or prefix length", fieldName(m.Field))
				}
			case MatchRange:
				if !IsCanonical(m.High) {
					badBytes(m.High, "match field %q high", m.Field)
				}
				if compareUint(m.Value, m.High) > 0 {
					bad("%s: range low %x above high %x", fieldName(m.Field), m.Value, m.High)
				}
				if m.Mask != nil || m.PrefixLen != 0 {
					bad("%s: range match with mask or prefix length", fieldName(m.Field))
				}
			default:
				bad("%s: unknown match kind %d", fieldName(m.Field), m.Kind)
			}
		}
	case KindMember:
		if e.Profile == "" || e.Name == "" {
			bad("member needs a profile and a name")
		}
		if e.Table != "" {
			bad("member cannot have a table")
		}
		noMatch()
		noRefs()
		noMembers()
		checkAction()
	case KindGroup:
		if e.Profile == "" || e.Name == "" {
			bad("group needs a profile and a name")
		}
		if e.Table != "" {
			bad("group cannot have a table")
		}
		noMatch()
		noRefs()
		noAction()
		for i, m := range e.Members {
			if m.Member == "" {
				bad("group member %d has no name", i)
			}
			if m.Weight <= 0 {
				bad("group member %q: weight %d must be positive", m.Member, m.Weight)
			}
			if i > 0 && e.Members[i-1].Member >= m.Member {
				bad("group member %q: not sorted or duplicate", m.Member)
			}
		}
	default:
		bad("unknown kind %d", e.Kind)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid entry %s: %w", e, errors.Join(errs...))
	}
	return nil
}

// Equal reports whether e and o are the same value. Both should be
// canonical (every constructor returns canonical entries).
func (e Entry) Equal(o Entry) bool {
	if e.Kind != o.Kind || e.Table != o.Table || e.Profile != o.Profile || e.Name != o.Name ||
		e.Priority != o.Priority || e.Member != o.Member || e.Group != o.Group ||
		len(e.Match) != len(o.Match) || len(e.Members) != len(o.Members) || !e.Action.Equal(o.Action) {
		return false
	}
	for i := range e.Match {
		a, b := &e.Match[i], &o.Match[i]
		if a.Field != b.Field || a.Kind != b.Kind || a.PrefixLen != b.PrefixLen ||
			!bytes.Equal(a.Value, b.Value) || !bytes.Equal(a.Mask, b.Mask) || !bytes.Equal(a.High, b.High) {
			return false
		}
	}
	for i := range e.Members {
		if e.Members[i] != o.Members[i] {
			return false
		}
	}
	return true
}

// Equal reports whether two actions have the same name and params.
func (a Action) Equal(o Action) bool {
	if a.Name != o.Name || len(a.Params) != len(o.Params) {
		return false
	}
	for i := range a.Params {
		if a.Params[i].Name != o.Params[i].Name || !bytes.Equal(a.Params[i].Value, o.Params[i].Value) {
			return false
		}
	}
	return true
}

// References returns the symbolic member or group name a table entry points
// at, with the kind of the referenced entry; ok is false for entries that
// reference nothing. (A group's members are listed in Members.)
func (e Entry) References() (kind Kind, name string, ok bool) {
	switch {
	case e.Kind != KindTable:
		return 0, "", false
	case e.Member != "":
		return KindMember, e.Member, true
	case e.Group != "":
		return KindGroup, e.Group, true
	}
	return 0, "", false
}

// fieldName quotes a match field name for an error message.
func fieldName(f string) string { return fmt.Sprintf("match field %q", f) }
