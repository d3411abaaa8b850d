package p4rt

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/calico-p4/calico-p4/p4src/entry"
)

// Info indexes a P4Info by name and by id for the encoder and decoder. It is
// immutable once built and safe for concurrent use.
type Info struct {
	p4info *p4configv1.P4Info

	tables       map[string]*TableInfo
	tablesByID   map[uint32]*TableInfo
	actions      map[string]*ActionInfo
	actionsByID  map[uint32]*ActionInfo
	profiles     map[string]*ProfileInfo
	profilesByID map[uint32]*ProfileInfo
	tableNames   []string
	profileNames []string
}

// TableInfo describes one table.
type TableInfo struct {
	ID     uint32
	Name   string
	Fields []*FieldInfo // in P4Info order
	// NeedsPriority is true when the table has a ternary, range or optional
	// field.
	NeedsPriority bool
	// Actions maps action name to its scope in this table.
	Actions map[string]p4configv1.ActionRef_Scope
	// ConstDefault is set when the default action cannot be changed.
	ConstDefault bool
	// InitialDefault is the program's default action (nil if none declared).
	InitialDefault *p4configv1.TableActionCall
	// Profile is the action profile implementing the table (nil for a direct
	// table).
	Profile *ProfileInfo
	Size    int64
	IsConst bool

	nExact       int
	fieldsByName map[string]*FieldInfo
	sortedFields []*FieldInfo // by name: the order of a canonical entry's matches
	fieldsByID   map[uint32]*FieldInfo
}

// FieldInfo describes one match field.
type FieldInfo struct {
	ID       uint32
	Name     string
	Bitwidth int32
	Kind     entry.MatchKind
}

// ActionInfo describes one action.
type ActionInfo struct {
	ID     uint32
	Name   string
	Params []*ParamInfo // in P4Info order

	paramsByName map[string]*ParamInfo
	paramsByID   map[uint32]*ParamInfo
	sortedParams []*ParamInfo // by name: the order of a canonical action's params
}

// ParamInfo describes one action parameter.
type ParamInfo struct {
	ID       uint32
	Name     string
	Bitwidth int32
}

// ProfileInfo describes an action profile or selector.
type ProfileInfo struct {
	ID           uint32
	Name         string
	WithSelector bool
	Size         int64
	MaxGroupSize int32
	// SumOfMembers is true when max_group_size bounds the number of members
	// rather than the sum of their weights.
	SumOfMembers bool
	Tables       []*TableInfo
	// Actions usable by members: the actions of the tables it implements
	// (excluding DEFAULT_ONLY ones).
	Actions map[string]bool
}

// NewInfo indexes p4info. It fails on duplicate names or ids and on
// references to ids the P4Info does not declare.
func NewInfo(p4info *p4configv1.P4Info) (*Info, error) {
	in := &Info{
		p4info:       proto.Clone(p4info).(*p4configv1.P4Info),
		tables:       map[string]*TableInfo{},
		tablesByID:   map[uint32]*TableInfo{},
		actions:      map[string]*ActionInfo{},
		actionsByID:  map[uint32]*ActionInfo{},
		profiles:     map[string]*ProfileInfo{},
		profilesByID: map[uint32]*ProfileInfo{},
	}
	for _, a := range p4info.GetActions() {
		ai := &ActionInfo{ID: a.GetPreamble().GetId(), Name: a.GetPreamble().GetName(),
			paramsByName: map[string]*ParamInfo{}, paramsByID: map[uint32]*ParamInfo{}}
		if ai.Name == "" || ai.ID == 0 {
			return nil, fmt.Errorf("p4info: action with empty name or zero id: %v", a.GetPreamble())
		}
		if _, dup := in.actions[ai.Name]; dup {
			return nil, fmt.Errorf("p4info: duplicate action name %q", ai.Name)
		}
		if _, dup := in.actionsByID[ai.ID]; dup {
			return nil, fmt.Errorf("p4info: duplicate action id %#x (%s)", ai.ID, ai.Name)
		}
		for _, p := range a.GetParams() {
			pi := &ParamInfo{ID: p.GetId(), Name: p.GetName(), Bitwidth: p.GetBitwidth()}
			if _, dup := ai.paramsByName[pi.Name]; dup {
				return nil, fmt.Errorf("p4info: action %s: duplicate param %q", ai.Name, pi.Name)
			}
			if _, dup := ai.paramsByID[pi.ID]; dup {
				return nil, fmt.Errorf("p4info: action %s: duplicate param id %d", ai.Name, pi.ID)
			}
			ai.Params = append(ai.Params, pi)
			ai.paramsByName[pi.Name] = pi
			ai.paramsByID[pi.ID] = pi
		}
		ai.sortedParams = slices.SortedFunc(slices.Values(ai.Params), func(a, b *ParamInfo) int { return strings.Compare(a.Name, b.Name) })
		in.actions[ai.Name] = ai
		in.actionsByID[ai.ID] = ai
	}
	for _, ap := range p4info.GetActionProfiles() {
		pi := &ProfileInfo{ID: ap.GetPreamble().GetId(), Name: ap.GetPreamble().GetName(),
			WithSelector: ap.GetWithSelector(), Size: ap.GetSize(), MaxGroupSize: ap.GetMaxGroupSize(),
			SumOfMembers: ap.GetSumOfMembers() != nil, Actions: map[string]bool{}}
		if pi.Name == "" || pi.ID == 0 {
			return nil, fmt.Errorf("p4info: action profile with empty name or zero id")
		}
		if _, dup := in.profiles[pi.Name]; dup {
			return nil, fmt.Errorf("p4info: duplicate action profile name %q", pi.Name)
		}
		if _, dup := in.profilesByID[pi.ID]; dup {
			return nil, fmt.Errorf("p4info: duplicate action profile id %#x", pi.ID)
		}
		in.profiles[pi.Name] = pi
		in.profilesByID[pi.ID] = pi
		in.profileNames = append(in.profileNames, pi.Name)
	}
	for _, t := range p4info.GetTables() {
		ti := &TableInfo{ID: t.GetPreamble().GetId(), Name: t.GetPreamble().GetName(),
			Actions: map[string]p4configv1.ActionRef_Scope{}, InitialDefault: t.GetInitialDefaultAction(),
			Size: t.GetSize(), IsConst: t.GetIsConstTable(),
			fieldsByName: map[string]*FieldInfo{}, fieldsByID: map[uint32]*FieldInfo{}}
		if ti.Name == "" || ti.ID == 0 {
			return nil, fmt.Errorf("p4info: table with empty name or zero id")
		}
		if _, dup := in.tables[ti.Name]; dup {
			return nil, fmt.Errorf("p4info: duplicate table name %q", ti.Name)
		}
		if _, dup := in.tablesByID[ti.ID]; dup {
			return nil, fmt.Errorf("p4info: duplicate table id %#x", ti.ID)
		}
		for _, mf := range t.GetMatchFields() {
			fi := &FieldInfo{ID: mf.GetId(), Name: mf.GetName(), Bitwidth: mf.GetBitwidth()}
			switch mf.GetMatchType() {
			case p4configv1.MatchField_EXACT:
				fi.Kind = entry.MatchExact
			case p4configv1.MatchField_LPM:
				fi.Kind = entry.MatchLPM
			case p4configv1.MatchField_TERNARY:
				fi.Kind = entry.MatchTernary
				ti.NeedsPriority = true
			case p4configv1.MatchField_RANGE:
				fi.Kind = entry.MatchRange
				ti.NeedsPriority = true
			case p4configv1.MatchField_OPTIONAL:
				fi.Kind = entry.MatchOptional
				ti.NeedsPriority = true
			default:
				return nil, fmt.Errorf("p4info: table %s field %s: unsupported match type %v %q",
					ti.Name, fi.Name, mf.GetMatchType(), mf.GetOtherMatchType())
			}
			if _, dup := ti.fieldsByName[fi.Name]; dup {
				return nil, fmt.Errorf("p4info: table %s: duplicate match field %q", ti.Name, fi.Name)
			}
			if _, dup := ti.fieldsByID[fi.ID]; dup {
				return nil, fmt.Errorf("p4info: table %s: duplicate match field id %d", ti.Name, fi.ID)
			}
			if fi.Kind == entry.MatchExact {
				ti.nExact++
			}
			ti.Fields = append(ti.Fields, fi)
			ti.fieldsByName[fi.Name] = fi
			ti.fieldsByID[fi.ID] = fi
		}
		ti.sortedFields = slices.SortedFunc(slices.Values(ti.Fields), func(a, b *FieldInfo) int { return strings.Compare(a.Name, b.Name) })
		for _, ar := range t.GetActionRefs() {
			a, ok := in.actionsByID[ar.GetId()]
			if !ok {
				return nil, fmt.Errorf("p4info: table %s refers to unknown action id %#x", ti.Name, ar.GetId())
			}
			ti.Actions[a.Name] = ar.GetScope()
		}
		if id := t.GetConstDefaultActionId(); id != 0 {
			ti.ConstDefault = true
		}
		if id := t.GetImplementationId(); id != 0 {
			p, ok := in.profilesByID[id]
			if !ok {
				return nil, fmt.Errorf("p4info: table %s: implementation %#x is not an action profile "+
					"(direct counters/meters are not implementations)", ti.Name, id)
			}
			ti.Profile = p
			p.Tables = append(p.Tables, ti)
			for name, scope := range ti.Actions {
				if scope != p4configv1.ActionRef_DEFAULT_ONLY {
					p.Actions[name] = true
				}
			}
		}
		in.tables[ti.Name] = ti
		in.tablesByID[ti.ID] = ti
		in.tableNames = append(in.tableNames, ti.Name)
	}
	sort.Strings(in.tableNames)
	sort.Strings(in.profileNames)
	return in, nil
}

// LoadP4Info reads a P4Info file: text format (.txt, .txtpb, .pb.txt) or
// binary protobuf otherwise.
func LoadP4Info(path string) (*p4configv1.P4Info, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read p4info: %w", err)
	}
	p := &p4configv1.P4Info{}
	if strings.HasSuffix(path, ".txt") || strings.HasSuffix(path, ".txtpb") || strings.HasSuffix(path, ".textproto") {
		err = prototext.Unmarshal(data, p)
	} else {
		err = proto.Unmarshal(data, p)
	}
	if err != nil {
		return nil, fmt.Errorf("parse p4info %s: %w", path, err)
	}
	return p, nil
}

// P4Info returns the indexed P4Info (do not modify it).
func (in *Info) P4Info() *p4configv1.P4Info { return in.p4info }

// Table returns the table called name.
func (in *Info) Table(name string) (*TableInfo, bool) {
	t, ok := in.tables[name]
	return t, ok
}

// TableByID returns the table with id.
func (in *Info) TableByID(id uint32) (*TableInfo, bool) {
	t, ok := in.tablesByID[id]
	return t, ok
}

// Action returns the action called name.
func (in *Info) Action(name string) (*ActionInfo, bool) {
	a, ok := in.actions[name]
	return a, ok
}

// Profile returns the action profile called name.
func (in *Info) Profile(name string) (*ProfileInfo, bool) {
	p, ok := in.profiles[name]
	return p, ok
}

// ProfileByID returns the action profile with id.
func (in *Info) ProfileByID(id uint32) (*ProfileInfo, bool) {
	p, ok := in.profilesByID[id]
	return p, ok
}

// TableNames lists every table name, sorted.
func (in *Info) TableNames() []string { return in.tableNames }

// ProfileNames lists every action-profile name, sorted.
func (in *Info) ProfileNames() []string { return in.profileNames }

// Field returns the match field called name.
func (t *TableInfo) Field(name string) (*FieldInfo, bool) {
	f, ok := t.fieldsByName[name]
	return f, ok
}

// Param returns the parameter called name.
func (a *ActionInfo) Param(name string) (*ParamInfo, bool) {
	p, ok := a.paramsByName[name]
	return p, ok
}

// unknownName builds an error for a name that is not in the P4Info, with a
// hint when the name is an alias (suffix) of a known name.
func unknownName(what, name string, known []string) error {
	var hints []string
	for _, k := range known {
		if strings.HasSuffix(k, "."+name) {
			hints = append(hints, k)
		}
	}
	if len(hints) > 0 {
		return fmt.Errorf("unknown %s %q (use the full P4Info name: %s)", what, name, strings.Join(hints, ", "))
	}
	return fmt.Errorf("unknown %s %q", what, name)
}
