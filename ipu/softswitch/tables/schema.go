package tables

import (
	"fmt"
	"sort"

	p4cfg "github.com/p4lang/p4runtime/go/p4/config/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// MatchKind is the match kind of one key field.
type MatchKind uint8

// Match kinds (the PSA/PNA ones P4Runtime knows).
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
	return "unknown"
}

// Scope is where an action may be used in a table (P4Info ActionRef.Scope).
type Scope uint8

// Action scopes.
const (
	ScopeTableAndDefault Scope = iota
	ScopeTableOnly
	ScopeDefaultOnly
)

// Schema is a compiled P4Info: every object the store serves, indexed for the write path and laid out
// for the fast path (fixed key and parameter layouts). A Schema is immutable once built.
type Schema struct {
	P4Info *p4cfg.P4Info

	Tables    []*TableInfo // index = TableInfo.Index
	Actions   []*ActionInfo
	Profiles  []*ProfileInfo // index = ProfileInfo.Index
	Counters  []*CounterInfo // indexed (not direct) counters; index = CounterInfo.Index
	Directs   []*DirectCounterInfo
	Registers []*RegisterInfo
	Digests   []*DigestInfo
	Meters    map[uint32]string // meter and direct meter ids (declared, not supported)
	ValueSets map[uint32]string

	// PacketIn and PacketOut describe the controller headers ("packet_in" / "packet_out"), nil if absent.
	PacketIn, PacketOut *ControllerHeaderInfo

	tableByID    map[uint32]*TableInfo
	tableByName  map[string]*TableInfo
	actionByID   map[uint32]*ActionInfo
	actionByName map[string]*ActionInfo
	profileByID  map[uint32]*ProfileInfo
	counterByID  map[uint32]*CounterInfo
	directByID   map[uint32]*DirectCounterInfo
	registerByID map[uint32]*RegisterInfo
	digestByID   map[uint32]*DigestInfo
}

// FieldInfo is one match field of a table and its place in the table's key buffer.
type FieldInfo struct {
	ID       uint32
	Name     string
	Bitwidth int
	Kind     MatchKind
	Offset   int // byte offset in the key buffer
	Width    int // bytes: (Bitwidth+7)/8, value right-aligned big-endian
}

// ActionRefInfo is an action a table may use, with its scope.
type ActionRefInfo struct {
	Action *ActionInfo
	Scope  Scope
}

// TableInfo describes one table. Keys are a fixed-width concatenation of the match fields in P4Info
// order, each big-endian in (Bitwidth+7)/8 bytes with unused high bits zero.
type TableInfo struct {
	Index   int
	ID      uint32
	Name    string
	Fields  []FieldInfo
	KeyLen  int
	Actions map[uint32]ActionRefInfo

	ConstDefaultActionID uint32
	InitialDefault       *p4cfg.TableActionCall // nil: NoAction semantics (no action, empty params)

	Profile       *ProfileInfo // nil for a direct table
	DirectCounter *DirectCounterInfo
	DirectMeterID uint32
	Size          int64
	IdleTimeout   bool // idle_timeout_behavior == NOTIFY_CONTROL
	IsConst       bool
	NeedsPriority bool // has a ternary, range or optional field
	LPMField      int  // index in Fields of the lpm field, -1 if none
	ExactOnly     bool // every field is exact (one hash lookup)

	fieldByID map[uint32]int
	validMask []byte // bits that belong to some field
	nRanges   int    // range fields (an entry has at most this many RangeChecks)
}

// Field returns the field with the given name, or nil.
func (t *TableInfo) Field(name string) *FieldInfo {
	for i := range t.Fields {
		if t.Fields[i].Name == name {
			return &t.Fields[i]
		}
	}
	return nil
}

// ParamInfo is one action parameter and its place in the action's parameter buffer.
type ParamInfo struct {
	ID       uint32
	Name     string
	Bitwidth int
	Offset   int
	Width    int
}

// ActionInfo describes one action. Parameters are laid out like keys: fixed width, P4Info order.
type ActionInfo struct {
	ID        uint32
	Name      string
	Params    []ParamInfo
	ParamsLen int
	paramByID map[uint32]int
}

// Param returns the parameter with the given name, or nil.
func (a *ActionInfo) Param(name string) *ParamInfo {
	for i := range a.Params {
		if a.Params[i].Name == name {
			return &a.Params[i]
		}
	}
	return nil
}

// ProfileInfo describes an action profile or selector.
type ProfileInfo struct {
	Index           int
	ID              uint32
	Name            string
	TableIDs        []uint32
	WithSelector    bool
	Size            int64
	MaxGroupSize    int32
	SumOfMembers    bool // selector_size_semantics: sum_of_members (else sum_of_weights)
	MaxMemberWeight int32
	Actions         map[uint32]ActionRefInfo // actions of the tables it implements
}

// CounterUnit says what a counter counts.
type CounterUnit = p4cfg.CounterSpec_Unit

// CounterInfo describes an indexed counter array.
type CounterInfo struct {
	Index int
	ID    uint32
	Name  string
	Unit  CounterUnit
	Size  int64
}

// DirectCounterInfo describes a direct counter.
type DirectCounterInfo struct {
	ID      uint32
	Name    string
	Unit    CounterUnit
	TableID uint32
}

// RegisterInfo describes a register array. Bitwidth > 0 for bit<W>/int<W> registers (stored as
// fixed-width cells the pipeline can read and write atomically); other types are stored as P4Data.
type RegisterInfo struct {
	Index    int
	ID       uint32
	Name     string
	Size     int32
	TypeSpec *p4cfg.P4DataTypeSpec
	Bitwidth int
	Signed   bool
}

// DigestInfo describes a digest.
type DigestInfo struct {
	ID       uint32
	Name     string
	TypeSpec *p4cfg.P4DataTypeSpec
}

// ControllerHeaderInfo describes the packet_in or packet_out controller header.
type ControllerHeaderInfo struct {
	ID       uint32
	Name     string
	Metadata []PacketMetadataInfo
}

// PacketMetadataInfo is one field of a controller header.
type PacketMetadataInfo struct {
	ID       uint32
	Name     string
	Bitwidth int
}

// Find returns the metadata with the given name, or nil.
func (h *ControllerHeaderInfo) Find(name string) *PacketMetadataInfo {
	if h == nil {
		return nil
	}
	for i := range h.Metadata {
		if h.Metadata[i].Name == name {
			return &h.Metadata[i]
		}
	}
	return nil
}

// Table returns the table with the given ID, or nil.
func (s *Schema) Table(id uint32) *TableInfo { return s.tableByID[id] }

// TableByName returns the table with the given fully qualified name (or alias), or nil.
func (s *Schema) TableByName(name string) *TableInfo { return s.tableByName[name] }

// Action returns the action with the given ID, or nil.
func (s *Schema) Action(id uint32) *ActionInfo { return s.actionByID[id] }

// ActionByName returns the action with the given name (or alias), or nil.
func (s *Schema) ActionByName(name string) *ActionInfo { return s.actionByName[name] }

// Profile returns the action profile with the given ID, or nil.
func (s *Schema) Profile(id uint32) *ProfileInfo { return s.profileByID[id] }

// Counter returns the indexed counter with the given ID, or nil.
func (s *Schema) Counter(id uint32) *CounterInfo { return s.counterByID[id] }

// DirectCounter returns the direct counter with the given ID, or nil.
func (s *Schema) DirectCounter(id uint32) *DirectCounterInfo { return s.directByID[id] }

// Register returns the register with the given ID, or nil.
func (s *Schema) Register(id uint32) *RegisterInfo { return s.registerByID[id] }

// Digest returns the digest with the given ID, or nil.
func (s *Schema) Digest(id uint32) *DigestInfo { return s.digestByID[id] }

// Compile validates a P4Info and builds its Schema. Errors are *Error with INVALID_ARGUMENT: the
// P4Info is malformed or uses something this target cannot realize.
func Compile(info *p4cfg.P4Info) (*Schema, error) {
	if info == nil {
		return nil, errf(codes.InvalidArgument, "p4info is missing")
	}
	info = proto.Clone(info).(*p4cfg.P4Info)
	s := &Schema{
		P4Info:       info,
		Meters:       map[uint32]string{},
		ValueSets:    map[uint32]string{},
		tableByID:    map[uint32]*TableInfo{},
		tableByName:  map[string]*TableInfo{},
		actionByID:   map[uint32]*ActionInfo{},
		actionByName: map[string]*ActionInfo{},
		profileByID:  map[uint32]*ProfileInfo{},
		counterByID:  map[uint32]*CounterInfo{},
		directByID:   map[uint32]*DirectCounterInfo{},
		registerByID: map[uint32]*RegisterInfo{},
		digestByID:   map[uint32]*DigestInfo{},
	}
	ids := map[uint32]string{}
	claim := func(kind string, pre *p4cfg.Preamble) error {
		if pre == nil {
			return errf(codes.InvalidArgument, "%s without preamble", kind)
		}
		if pre.Id == 0 {
			return errf(codes.InvalidArgument, "%s %q has id 0", kind, pre.Name)
		}
		if pre.Name == "" {
			return errf(codes.InvalidArgument, "%s %#x has no name", kind, pre.Id)
		}
		if prev, ok := ids[pre.Id]; ok {
			return errf(codes.InvalidArgument, "id %#x used by both %s and %s %q", pre.Id, prev, kind, pre.Name)
		}
		ids[pre.Id] = kind + " " + pre.Name
		return nil
	}

	for _, a := range info.Actions {
		if err := claim("action", a.Preamble); err != nil {
			return nil, err
		}
		ai := &ActionInfo{ID: a.Preamble.Id, Name: a.Preamble.Name, paramByID: map[uint32]int{}}
		for _, p := range a.Params {
			if p.Id == 0 {
				return nil, errf(codes.InvalidArgument, "action %q: param %q has id 0", ai.Name, p.Name)
			}
			if _, dup := ai.paramByID[p.Id]; dup {
				return nil, errf(codes.InvalidArgument, "action %q: duplicate param id %d", ai.Name, p.Id)
			}
			if p.Bitwidth <= 0 {
				return nil, errf(codes.InvalidArgument, "action %q: param %q has bitwidth %d (translated types are not supported)", ai.Name, p.Name, p.Bitwidth)
			}
			w := int(p.Bitwidth+7) / 8
			ai.paramByID[p.Id] = len(ai.Params)
			ai.Params = append(ai.Params, ParamInfo{ID: p.Id, Name: p.Name, Bitwidth: int(p.Bitwidth), Offset: ai.ParamsLen, Width: w})
			ai.ParamsLen += w
		}
		s.Actions = append(s.Actions, ai)
		s.actionByID[ai.ID] = ai
		s.actionByName[ai.Name] = ai
		if al := a.Preamble.Alias; al != "" && s.actionByName[al] == nil {
			s.actionByName[al] = ai
		}
	}

	for _, dc := range info.DirectCounters {
		if err := claim("direct counter", dc.Preamble); err != nil {
			return nil, err
		}
		d := &DirectCounterInfo{ID: dc.Preamble.Id, Name: dc.Preamble.Name, Unit: dc.GetSpec().GetUnit(), TableID: dc.DirectTableId}
		s.Directs = append(s.Directs, d)
		s.directByID[d.ID] = d
	}
	for _, m := range info.Meters {
		if err := claim("meter", m.Preamble); err != nil {
			return nil, err
		}
		s.Meters[m.Preamble.Id] = m.Preamble.Name
	}
	for _, m := range info.DirectMeters {
		if err := claim("direct meter", m.Preamble); err != nil {
			return nil, err
		}
		s.Meters[m.Preamble.Id] = m.Preamble.Name
	}
	for _, v := range info.ValueSets {
		if err := claim("value set", v.Preamble); err != nil {
			return nil, err
		}
		s.ValueSets[v.Preamble.Id] = v.Preamble.Name
	}

	for _, ap := range info.ActionProfiles {
		if err := claim("action profile", ap.Preamble); err != nil {
			return nil, err
		}
		p := &ProfileInfo{
			Index: len(s.Profiles), ID: ap.Preamble.Id, Name: ap.Preamble.Name, TableIDs: ap.TableIds,
			WithSelector: ap.WithSelector, Size: ap.Size, MaxGroupSize: ap.MaxGroupSize,
			Actions: map[uint32]ActionRefInfo{},
		}
		if sm := ap.GetSumOfMembers(); sm != nil {
			p.SumOfMembers = true
			p.MaxMemberWeight = sm.MaxMemberWeight
		}
		if !p.WithSelector && (p.MaxGroupSize != 0 || ap.SelectorSizeSemantics != nil) {
			return nil, errf(codes.InvalidArgument, "action profile %q: group size settings on a profile without selector", p.Name)
		}
		if p.Size < 0 || p.MaxGroupSize < 0 || (p.Size > 0 && int64(p.MaxGroupSize) > p.Size) {
			return nil, errf(codes.InvalidArgument, "action profile %q: bad size %d / max_group_size %d", p.Name, p.Size, p.MaxGroupSize)
		}
		s.Profiles = append(s.Profiles, p)
		s.profileByID[p.ID] = p
	}

	for _, t := range info.Tables {
		if err := claim("table", t.Preamble); err != nil {
			return nil, err
		}
		ti := &TableInfo{
			Index: len(s.Tables), ID: t.Preamble.Id, Name: t.Preamble.Name, Actions: map[uint32]ActionRefInfo{},
			ConstDefaultActionID: t.ConstDefaultActionId, InitialDefault: t.InitialDefaultAction,
			Size: t.Size, IdleTimeout: t.IdleTimeoutBehavior == p4cfg.Table_NOTIFY_CONTROL,
			IsConst: t.IsConstTable, LPMField: -1, ExactOnly: true, fieldByID: map[uint32]int{},
		}
		if ti.Size < 0 {
			return nil, errf(codes.InvalidArgument, "table %q: negative size", ti.Name)
		}
		nLPM := 0
		for _, f := range t.MatchFields {
			if f.Id == 0 {
				return nil, errf(codes.InvalidArgument, "table %q: match field %q has id 0", ti.Name, f.Name)
			}
			if _, dup := ti.fieldByID[f.Id]; dup {
				return nil, errf(codes.InvalidArgument, "table %q: duplicate match field id %d", ti.Name, f.Id)
			}
			if f.Bitwidth <= 0 {
				return nil, errf(codes.InvalidArgument, "table %q: field %q has bitwidth %d (translated types are not supported)", ti.Name, f.Name, f.Bitwidth)
			}
			var k MatchKind
			switch f.GetMatchType() {
			case p4cfg.MatchField_EXACT:
				k = MatchExact
			case p4cfg.MatchField_LPM:
				k = MatchLPM
				nLPM++
				ti.LPMField = len(ti.Fields)
			case p4cfg.MatchField_TERNARY:
				k = MatchTernary
			case p4cfg.MatchField_RANGE:
				k = MatchRange
				ti.nRanges++
			case p4cfg.MatchField_OPTIONAL:
				k = MatchOptional
			default:
				return nil, errf(codes.InvalidArgument, "table %q: field %q has unsupported match type %v%s", ti.Name, f.Name, f.GetMatchType(), f.GetOtherMatchType())
			}
			if k != MatchExact {
				ti.ExactOnly = false
			}
			if k == MatchTernary || k == MatchRange || k == MatchOptional {
				ti.NeedsPriority = true
			}
			w := int(f.Bitwidth+7) / 8
			ti.fieldByID[f.Id] = len(ti.Fields)
			ti.Fields = append(ti.Fields, FieldInfo{ID: f.Id, Name: f.Name, Bitwidth: int(f.Bitwidth), Kind: k, Offset: ti.KeyLen, Width: w})
			ti.KeyLen += w
		}
		if nLPM > 1 && !ti.NeedsPriority {
			return nil, errf(codes.InvalidArgument, "table %q: more than one lpm field without a priority-bearing field", ti.Name)
		}
		if nLPM > 0 && ti.NeedsPriority {
			ti.LPMField = -1 // priorities order the entries; the lpm field is a masked match
		}
		ti.validMask = make([]byte, ti.KeyLen)
		for _, f := range ti.Fields {
			fillOnes(ti.validMask[f.Offset:f.Offset+f.Width], f.Bitwidth, f.Bitwidth)
		}
		for _, ref := range t.ActionRefs {
			a := s.actionByID[ref.Id]
			if a == nil {
				return nil, errf(codes.InvalidArgument, "table %q references unknown action %#x", ti.Name, ref.Id)
			}
			ti.Actions[ref.Id] = ActionRefInfo{Action: a, Scope: Scope(ref.Scope)}
		}
		if ti.ConstDefaultActionID != 0 {
			if _, ok := ti.Actions[ti.ConstDefaultActionID]; !ok {
				return nil, errf(codes.InvalidArgument, "table %q: const default action %#x is not one of its actions", ti.Name, ti.ConstDefaultActionID)
			}
		}
		if d := ti.InitialDefault; d != nil && d.ActionId != 0 {
			if _, ok := ti.Actions[d.ActionId]; !ok {
				return nil, errf(codes.InvalidArgument, "table %q: initial default action %#x is not one of its actions", ti.Name, d.ActionId)
			}
		}
		if t.ImplementationId != 0 {
			p := s.profileByID[t.ImplementationId]
			if p == nil {
				return nil, errf(codes.InvalidArgument, "table %q: implementation %#x is not an action profile", ti.Name, t.ImplementationId)
			}
			ti.Profile = p
			for id, r := range ti.Actions {
				p.Actions[id] = r
			}
		}
		for _, rid := range t.DirectResourceIds {
			if d := s.directByID[rid]; d != nil {
				if d.TableID != ti.ID {
					return nil, errf(codes.InvalidArgument, "table %q: direct counter %q belongs to table %#x", ti.Name, d.Name, d.TableID)
				}
				ti.DirectCounter = d
				continue
			}
			if _, ok := s.Meters[rid]; ok {
				ti.DirectMeterID = rid
				continue
			}
			return nil, errf(codes.InvalidArgument, "table %q: unknown direct resource %#x", ti.Name, rid)
		}
		s.Tables = append(s.Tables, ti)
		s.tableByID[ti.ID] = ti
		s.tableByName[ti.Name] = ti
		if al := t.Preamble.Alias; al != "" && s.tableByName[al] == nil {
			s.tableByName[al] = ti
		}
	}
	for _, d := range s.Directs {
		t := s.tableByID[d.TableID]
		if t == nil || t.DirectCounter != d {
			return nil, errf(codes.InvalidArgument, "direct counter %q: table %#x does not list it", d.Name, d.TableID)
		}
	}
	for _, p := range s.Profiles {
		if len(p.TableIDs) == 0 {
			continue
		}
		for _, tid := range p.TableIDs {
			t := s.tableByID[tid]
			if t == nil || t.Profile != p {
				return nil, errf(codes.InvalidArgument, "action profile %q: table %#x does not use it", p.Name, tid)
			}
		}
	}

	for _, c := range info.Counters {
		if err := claim("counter", c.Preamble); err != nil {
			return nil, err
		}
		if c.Size <= 0 || c.Size > 1<<26 {
			return nil, errf(codes.InvalidArgument, "counter %q: size %d not supported", c.Preamble.Name, c.Size)
		}
		ci := &CounterInfo{Index: len(s.Counters), ID: c.Preamble.Id, Name: c.Preamble.Name, Unit: c.GetSpec().GetUnit(), Size: c.Size}
		s.Counters = append(s.Counters, ci)
		s.counterByID[ci.ID] = ci
	}
	for _, r := range info.Registers {
		if err := claim("register", r.Preamble); err != nil {
			return nil, err
		}
		if r.Size <= 0 || r.Size > 1<<24 {
			return nil, errf(codes.InvalidArgument, "register %q: size %d not supported", r.Preamble.Name, r.Size)
		}
		ri := &RegisterInfo{Index: len(s.Registers), ID: r.Preamble.Id, Name: r.Preamble.Name, Size: r.Size, TypeSpec: r.TypeSpec}
		if bs := r.GetTypeSpec().GetBitstring(); bs != nil {
			switch {
			case bs.GetBit() != nil:
				ri.Bitwidth = int(bs.GetBit().Bitwidth)
			case bs.GetInt() != nil:
				ri.Bitwidth = int(bs.GetInt().Bitwidth)
				ri.Signed = true
			}
			if ri.Bitwidth <= 0 && bs.GetVarbit() == nil {
				return nil, errf(codes.InvalidArgument, "register %q: bad bitstring type", ri.Name)
			}
		} else if r.TypeSpec == nil {
			return nil, errf(codes.InvalidArgument, "register %q: no type_spec", ri.Name)
		}
		s.Registers = append(s.Registers, ri)
		s.registerByID[ri.ID] = ri
	}
	for _, d := range info.Digests {
		if err := claim("digest", d.Preamble); err != nil {
			return nil, err
		}
		if d.TypeSpec == nil {
			return nil, errf(codes.InvalidArgument, "digest %q: no type_spec", d.Preamble.Name)
		}
		di := &DigestInfo{ID: d.Preamble.Id, Name: d.Preamble.Name, TypeSpec: d.TypeSpec}
		s.Digests = append(s.Digests, di)
		s.digestByID[di.ID] = di
	}
	for _, h := range info.ControllerPacketMetadata {
		if err := claim("controller packet metadata", h.Preamble); err != nil {
			return nil, err
		}
		hi := &ControllerHeaderInfo{ID: h.Preamble.Id, Name: h.Preamble.Name}
		seen := map[uint32]bool{}
		for _, m := range h.Metadata {
			if m.Id == 0 || seen[m.Id] {
				return nil, errf(codes.InvalidArgument, "controller header %q: bad or duplicate metadata id %d", hi.Name, m.Id)
			}
			if m.Bitwidth <= 0 {
				return nil, errf(codes.InvalidArgument, "controller header %q: metadata %q has bitwidth %d (translated types are not supported)", hi.Name, m.Name, m.Bitwidth)
			}
			seen[m.Id] = true
			hi.Metadata = append(hi.Metadata, PacketMetadataInfo{ID: m.Id, Name: m.Name, Bitwidth: int(m.Bitwidth)})
		}
		switch hi.Name {
		case "packet_in":
			s.PacketIn = hi
		case "packet_out":
			s.PacketOut = hi
		default:
			return nil, errf(codes.InvalidArgument, "controller header %q: name must be packet_in or packet_out", hi.Name)
		}
	}
	for _, e := range info.Externs {
		for _, inst := range e.Instances {
			if err := claim("extern "+e.ExternTypeName, inst.Preamble); err != nil {
				return nil, err
			}
		}
	}
	sort.SliceStable(s.Digests, func(i, j int) bool { return s.Digests[i].ID < s.Digests[j].ID })
	return s, nil
}

// fillOnes sets the top n bits of a width-bit value stored right-aligned in b (big-endian).
func fillOnes(b []byte, width, n int) {
	lead := len(b)*8 - width // unused high bits
	for i := 0; i < n; i++ {
		bit := lead + i
		b[bit/8] |= 0x80 >> (bit % 8)
	}
}

// sameKeyLayout reports whether two tables have identical match fields (ids, names, kinds, widths).
func sameKeyLayout(a, b *TableInfo) bool {
	if len(a.Fields) != len(b.Fields) {
		return false
	}
	for i := range a.Fields {
		if a.Fields[i] != b.Fields[i] {
			return false
		}
	}
	return true
}

// String describes the table for logs.
func (t *TableInfo) String() string { return fmt.Sprintf("%s(%#x)", t.Name, t.ID) }
