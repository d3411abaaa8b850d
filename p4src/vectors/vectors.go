// Package vectors parses the behaviour vectors of k8s.p4 (p4src/testdata/*.vec):
// table entries to write, packets to send, and what must come out.  Names
// are resolved against the committed P4Info and the program's constants, and
// entries are built as P4Runtime entities, so a target under test can write
// them as they are.  The format is documented in p4src/README.md ("Vector
// format").
//
// It must not run packets: running the vectors against a pipeline is the
// job of that pipeline's tests (ipu/softswitch/pipeline).
package vectors

import (
	"bufio"
	"bytes"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/internal/p4parse"
)

// File is one parsed vector file.
type File struct {
	Path  string
	Ports map[string]uint32 // declared port names
	Setup []Op              // writes before the first case; every case starts from them
	Cases []*Case
}

// Case is a named sequence of writes and packets, run in order on a target
// that holds exactly the file's setup when the case starts.
type Case struct {
	Name string
	Pos  string // file:line
	Ops  []Op
}

// Op is a write or a packet.
type Op struct {
	Pos    string
	Write  *Write
	Packet *Packet
}

// Write is one P4Runtime update.
type Write struct {
	Type    p4v1.Update_Type
	Entity  *p4v1.Entity
	Table   string // full name of the table written, if a table entry
	Profile string // full name of the action profile, if a member or group
	Action  string // full name of the action the entry or member runs, if any
	Text    string // the line as written
}

// Packet is a packet sent into the pipeline and what must result.
type Packet struct {
	Port     uint32
	PortName string
	Data     []byte
	Text     string
	Expect   []Expectation
}

// ExpectKind says what an expectation checks.
type ExpectKind int

const (
	// ExpectOutput: a packet equal to Data leaves on Port.
	ExpectOutput ExpectKind = iota + 1
	// ExpectDrop: the packet is dropped and drop_counter[Reason] counts it.
	ExpectDrop
	// ExpectApplied: while the packet was processed (any pass), Table ran
	// Action (an entry's action or its default action).
	ExpectApplied
)

// Expectation is one "expect" line.
type Expectation struct {
	Kind       ExpectKind
	Pos        string
	Port       uint32
	PortName   string
	Data       []byte
	Text       string
	Reason     uint8
	ReasonName string
	Table      string // full names
	Action     string
}

// Spec resolves names against the P4Info and the program's constants.
type Spec struct {
	Info     *p4configv1.P4Info
	consts   map[string]*big.Int
	tables   map[string]*p4configv1.Table
	actions  map[string]*p4configv1.Action
	actionID map[uint32]*p4configv1.Action
	profiles map[string]*p4configv1.ActionProfile
}

// NewSpec builds a Spec from the embedded program and P4Info.
func NewSpec() (*Spec, error) {
	info, err := p4src.P4Info()
	if err != nil {
		return nil, err
	}
	prog, err := p4parse.Parse(p4src.Program())
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", p4src.ProgramName, err)
	}
	s := &Spec{Info: info, consts: map[string]*big.Int{}, tables: map[string]*p4configv1.Table{},
		actions: map[string]*p4configv1.Action{}, actionID: map[uint32]*p4configv1.Action{},
		profiles: map[string]*p4configv1.ActionProfile{}}
	for _, c := range prog.Consts {
		s.consts[c.Name] = c.Value
	}
	for _, t := range info.Tables {
		s.tables[t.Preamble.Name] = t
		s.tables[t.Preamble.Alias] = t
	}
	for _, a := range info.Actions {
		s.actions[a.Preamble.Name] = a
		s.actions[a.Preamble.Alias] = a
		s.actionID[a.Preamble.Id] = a
	}
	for _, p := range info.ActionProfiles {
		s.profiles[p.Preamble.Name] = p
		s.profiles[p.Preamble.Alias] = p
	}
	return s, nil
}

// Const returns the value of a program constant.
func (s *Spec) Const(name string) (*big.Int, bool) {
	v, ok := s.consts[name]
	return v, ok
}

// ParseDir parses every *.vec file of a directory, in name order.
func (s *Spec) ParseDir(dir string) ([]*File, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.vec"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []*File
	for _, p := range paths {
		f, err := s.ParseFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// ParseFile parses one vector file (and the files it includes).
func (s *Spec) ParseFile(path string) (*File, error) {
	f := &File{Path: path, Ports: map[string]uint32{}}
	st := &state{spec: s, file: f, included: map[string]bool{}}
	if err := st.parse(path, false); err != nil {
		return nil, err
	}
	if len(f.Cases) == 0 {
		return nil, fmt.Errorf("%s: no case", path)
	}
	for _, c := range f.Cases {
		if err := checkPackets(c.Ops); err != nil {
			return nil, fmt.Errorf("%s: case %s: %w", c.Pos, c.Name, err)
		}
	}
	return f, nil
}

func checkPackets(ops []Op) error {
	n := 0
	for _, op := range ops {
		if op.Packet == nil {
			continue
		}
		n++
		fate := 0
		for _, e := range op.Packet.Expect {
			if e.Kind == ExpectOutput || e.Kind == ExpectDrop {
				fate++
			}
		}
		if fate == 0 {
			return fmt.Errorf("%s: packet without an output or drop expectation", op.Pos)
		}
	}
	if n == 0 {
		return fmt.Errorf("no packet")
	}
	return nil
}

type state struct {
	spec     *Spec
	file     *File
	cur      *Case
	last     *Packet
	included map[string]bool
}

func (st *state) parse(path string, include bool) error {
	abs, _ := filepath.Abs(path)
	if st.included[abs] {
		return fmt.Errorf("%s: included twice", path)
	}
	st.included[abs] = true
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	lineNo, startLine := 0, 0
	var acc strings.Builder
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if acc.Len() == 0 {
			startLine = lineNo
		}
		if strings.HasSuffix(line, `\`) {
			acc.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		acc.WriteString(line)
		full := strings.TrimSpace(acc.String())
		acc.Reset()
		if full == "" {
			continue
		}
		pos := fmt.Sprintf("%s:%d", filepath.Base(path), startLine)
		if err := st.line(filepath.Dir(path), pos, full, include); err != nil {
			return fmt.Errorf("%s: %w", pos, err)
		}
	}
	if acc.Len() > 0 {
		return fmt.Errorf("%s: file ends with a continuation", path)
	}
	return sc.Err()
}

func (st *state) add(op Op) {
	if st.cur == nil {
		st.file.Setup = append(st.file.Setup, op)
	} else {
		st.cur.Ops = append(st.cur.Ops, op)
	}
}

func (st *state) line(dir, pos, line string, include bool) error {
	verb, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	switch verb {
	case "include":
		if st.cur != nil {
			return fmt.Errorf("include inside a case")
		}
		return st.parse(filepath.Join(dir, rest), true)
	case "port":
		f := strings.Fields(rest)
		if len(f) != 2 {
			return fmt.Errorf("port: want a name and an id")
		}
		if _, dup := st.file.Ports[f[0]]; dup {
			return fmt.Errorf("port %s declared twice", f[0])
		}
		v, err := parseNumber(f[1])
		if err != nil || !v.IsUint64() || v.Uint64() > 0xffffffff {
			return fmt.Errorf("port %s: bad id %q", f[0], f[1])
		}
		st.file.Ports[f[0]] = uint32(v.Uint64())
		return nil
	case "case":
		if include {
			return fmt.Errorf("an included file cannot declare cases")
		}
		if rest == "" {
			return fmt.Errorf("case needs a name")
		}
		for _, c := range st.file.Cases {
			if c.Name == rest {
				return fmt.Errorf("case %q declared twice", rest)
			}
		}
		st.cur = &Case{Name: rest, Pos: pos}
		st.file.Cases = append(st.file.Cases, st.cur)
		st.last = nil
		return nil
	case "add", "modify", "delete":
		w, err := st.write(verb, rest)
		if err != nil {
			return err
		}
		st.add(Op{Pos: pos, Write: w})
		st.last = nil
		return nil
	case "packet":
		if st.cur == nil {
			return fmt.Errorf("packet outside a case")
		}
		portText, desc, _ := strings.Cut(rest, " ")
		port, err := st.port(portText)
		if err != nil {
			return err
		}
		data, err := ParsePacket(desc)
		if err != nil {
			return err
		}
		p := &Packet{Port: port, PortName: portText, Data: data, Text: strings.TrimSpace(desc)}
		st.add(Op{Pos: pos, Packet: p})
		st.last = p
		return nil
	case "expect":
		if st.last == nil {
			return fmt.Errorf("expect without a packet before it")
		}
		e, err := st.expect(pos, rest)
		if err != nil {
			return err
		}
		st.last.Expect = append(st.last.Expect, *e)
		return nil
	}
	return fmt.Errorf("unknown statement %q", verb)
}

func (st *state) port(s string) (uint32, error) {
	if p, ok := st.file.Ports[s]; ok {
		return p, nil
	}
	v, err := parseNumber(s)
	if err != nil || !v.IsUint64() || v.Uint64() > 0xffffffff {
		return 0, fmt.Errorf("unknown port %q", s)
	}
	return uint32(v.Uint64()), nil
}

func (st *state) expect(pos, rest string) (*Expectation, error) {
	what, arg, _ := strings.Cut(rest, " ")
	arg = strings.TrimSpace(arg)
	switch what {
	case "drop":
		v, ok := st.spec.consts[arg]
		if !ok || !strings.HasPrefix(arg, "DROP_") {
			return nil, fmt.Errorf("expect drop: unknown reason %q (a DROP_* constant of k8s.p4)", arg)
		}
		return &Expectation{Kind: ExpectDrop, Pos: pos, Reason: uint8(v.Uint64()), ReasonName: arg}, nil
	case "applied":
		f := strings.Fields(arg)
		if len(f) != 2 {
			return nil, fmt.Errorf("expect applied: want a table and an action")
		}
		t, ok := st.spec.tables[f[0]]
		if !ok {
			return nil, fmt.Errorf("unknown table %q", f[0])
		}
		a, ok := st.spec.actions[f[1]]
		if !ok {
			return nil, fmt.Errorf("unknown action %q", f[1])
		}
		if ref := actionRef(t, a.Preamble.Id); ref == nil {
			return nil, fmt.Errorf("table %s cannot run action %s", f[0], f[1])
		}
		return &Expectation{Kind: ExpectApplied, Pos: pos, Table: t.Preamble.Name, Action: a.Preamble.Name}, nil
	default:
		port, err := st.port(what)
		if err != nil {
			return nil, err
		}
		data, err := ParsePacket(arg)
		if err != nil {
			return nil, err
		}
		return &Expectation{Kind: ExpectOutput, Pos: pos, Port: port, PortName: what, Data: data, Text: arg}, nil
	}
}

func actionRef(t *p4configv1.Table, id uint32) *p4configv1.ActionRef {
	for _, r := range t.ActionRefs {
		if r.Id == id {
			return r
		}
	}
	return nil
}

var updateTypes = map[string]p4v1.Update_Type{"add": p4v1.Update_INSERT, "modify": p4v1.Update_MODIFY, "delete": p4v1.Update_DELETE}

func (st *state) write(verb, rest string) (*Write, error) {
	w := &Write{Type: updateTypes[verb], Text: verb + " " + rest}
	first, tail, _ := strings.Cut(rest, " ")
	tail = strings.TrimSpace(tail)
	switch first {
	case "member":
		return w, st.member(w, tail)
	case "group":
		return w, st.group(w, tail)
	}
	t, ok := st.spec.tables[first]
	if !ok {
		return nil, fmt.Errorf("unknown table %q", first)
	}
	w.Table = t.Preamble.Name
	matchText, actionText, hasAction := strings.Cut(tail, "->")
	if verb == "delete" && hasAction {
		return nil, fmt.Errorf("delete takes no action")
	}
	if verb != "delete" && !hasAction {
		return nil, fmt.Errorf("%s %s: missing -> action", verb, first)
	}
	te := &p4v1.TableEntry{TableId: t.Preamble.Id}
	needsPriority := false
	for _, mf := range t.MatchFields {
		switch mf.GetMatchType() {
		case p4configv1.MatchField_TERNARY, p4configv1.MatchField_RANGE, p4configv1.MatchField_OPTIONAL:
			needsPriority = true
		}
	}
	seen := map[string]bool{}
	for _, tok := range strings.Fields(matchText) {
		k, v, ok := strings.Cut(tok, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not field=value", tok)
		}
		if k == "priority" {
			p, err := parseNumber(v)
			if err != nil || !p.IsInt64() || p.Int64() <= 0 || p.Int64() > 0x7fffffff {
				return nil, fmt.Errorf("bad priority %q", v)
			}
			te.Priority = int32(p.Int64())
			continue
		}
		var mf *p4configv1.MatchField
		for _, m := range t.MatchFields {
			if m.Name == k {
				mf = m
			}
		}
		if mf == nil {
			return nil, fmt.Errorf("table %s has no match field %q", first, k)
		}
		if seen[k] {
			return nil, fmt.Errorf("match field %s given twice", k)
		}
		seen[k] = true
		fm, err := st.fieldMatch(mf, v)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", first, k, err)
		}
		if fm != nil {
			te.Match = append(te.Match, fm)
		}
	}
	for _, mf := range t.MatchFields {
		if mf.GetMatchType() == p4configv1.MatchField_EXACT && !seen[mf.Name] {
			return nil, fmt.Errorf("%s: exact match field %s is missing", first, mf.Name)
		}
	}
	if needsPriority && te.Priority == 0 {
		return nil, fmt.Errorf("%s needs priority=N (it has ternary, range or optional fields)", first)
	}
	if !needsPriority && te.Priority != 0 {
		return nil, fmt.Errorf("%s takes no priority", first)
	}
	if hasAction {
		act, err := st.tableAction(t, strings.TrimSpace(actionText))
		if err != nil {
			return nil, err
		}
		te.Action = act
		if a := act.GetAction(); a != nil {
			w.Action = st.spec.actionID[a.ActionId].Preamble.Name
		}
	}
	w.Entity = &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}
	return w, nil
}

func (st *state) tableAction(t *p4configv1.Table, text string) (*p4v1.TableAction, error) {
	f := strings.Fields(text)
	if len(f) == 2 && (f[0] == "member" || f[0] == "group") {
		if t.ImplementationId == 0 {
			return nil, fmt.Errorf("table %s has no action profile", t.Preamble.Alias)
		}
		id, err := parseNumber(f[1])
		if err != nil || !id.IsUint64() || id.Uint64() == 0 || id.Uint64() > 0xffffffff {
			return nil, fmt.Errorf("bad %s id %q", f[0], f[1])
		}
		if f[0] == "member" {
			return &p4v1.TableAction{Type: &p4v1.TableAction_ActionProfileMemberId{ActionProfileMemberId: uint32(id.Uint64())}}, nil
		}
		return &p4v1.TableAction{Type: &p4v1.TableAction_ActionProfileGroupId{ActionProfileGroupId: uint32(id.Uint64())}}, nil
	}
	if t.ImplementationId != 0 {
		return nil, fmt.Errorf("table %s takes a member or group, not an action", t.Preamble.Alias)
	}
	a, err := st.action(text, []*p4configv1.Table{t})
	if err != nil {
		return nil, err
	}
	return &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: a}}, nil
}

// action parses name(param=value, ...) for an entry of the given tables.
func (st *state) action(text string, tables []*p4configv1.Table) (*p4v1.Action, error) {
	name, args := text, ""
	if i := strings.IndexByte(text, '('); i >= 0 {
		if !strings.HasSuffix(text, ")") {
			return nil, fmt.Errorf("action %q: missing )", text)
		}
		name, args = strings.TrimSpace(text[:i]), text[i+1:len(text)-1]
	}
	a, ok := st.spec.actions[name]
	if !ok {
		return nil, fmt.Errorf("unknown action %q", name)
	}
	for _, t := range tables {
		ref := actionRef(t, a.Preamble.Id)
		if ref == nil {
			return nil, fmt.Errorf("table %s cannot run action %s", t.Preamble.Alias, name)
		}
		if ref.Scope == p4configv1.ActionRef_DEFAULT_ONLY {
			return nil, fmt.Errorf("action %s is default-only in table %s", name, t.Preamble.Alias)
		}
	}
	out := &p4v1.Action{ActionId: a.Preamble.Id}
	given := map[string]string{}
	for _, kv := range strings.Split(args, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("action %s: %q is not param=value", name, kv)
		}
		k = strings.TrimSpace(k)
		if _, dup := given[k]; dup {
			return nil, fmt.Errorf("action %s: %s given twice", name, k)
		}
		given[k] = strings.TrimSpace(v)
	}
	for _, p := range a.Params {
		v, ok := given[p.Name]
		if !ok {
			return nil, fmt.Errorf("action %s: parameter %s is missing", name, p.Name)
		}
		delete(given, p.Name)
		b, err := st.value(v, int(p.Bitwidth))
		if err != nil {
			return nil, fmt.Errorf("action %s, %s: %w", name, p.Name, err)
		}
		out.Params = append(out.Params, &p4v1.Action_Param{ParamId: p.Id, Value: b})
	}
	for k := range given {
		return nil, fmt.Errorf("action %s has no parameter %s", name, k)
	}
	return out, nil
}

func (st *state) profile(name string) (*p4configv1.ActionProfile, []*p4configv1.Table, error) {
	p, ok := st.spec.profiles[name]
	if !ok {
		return nil, nil, fmt.Errorf("unknown action profile %q", name)
	}
	var tables []*p4configv1.Table
	for _, id := range p.TableIds {
		for _, t := range st.spec.Info.Tables {
			if t.Preamble.Id == id {
				tables = append(tables, t)
			}
		}
	}
	return p, tables, nil
}

// member: <profile> <id> [<action-call>]
func (st *state) member(w *Write, rest string) error {
	f := strings.SplitN(rest, " ", 3)
	if len(f) < 2 {
		return fmt.Errorf("member: want a profile, an id and (unless deleting) an action")
	}
	p, tables, err := st.profile(f[0])
	if err != nil {
		return err
	}
	w.Profile = p.Preamble.Name
	id, err := parseNumber(f[1])
	if err != nil || !id.IsUint64() || id.Uint64() == 0 || id.Uint64() > 0xffffffff {
		return fmt.Errorf("bad member id %q", f[1])
	}
	m := &p4v1.ActionProfileMember{ActionProfileId: p.Preamble.Id, MemberId: uint32(id.Uint64())}
	if w.Type != p4v1.Update_DELETE {
		if len(f) != 3 {
			return fmt.Errorf("member %s: missing action", f[1])
		}
		a, err := st.action(strings.TrimSpace(f[2]), tables)
		if err != nil {
			return err
		}
		m.Action = a
		w.Action = st.spec.actionID[a.ActionId].Preamble.Name
	} else if len(f) == 3 {
		return fmt.Errorf("delete member takes no action")
	}
	w.Entity = &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileMember{ActionProfileMember: m}}
	return nil
}

// group: <profile> <id> <member-id>...
func (st *state) group(w *Write, rest string) error {
	f := strings.Fields(rest)
	if len(f) < 2 {
		return fmt.Errorf("group: want a profile, an id and member ids")
	}
	p, _, err := st.profile(f[0])
	if err != nil {
		return err
	}
	if !p.WithSelector {
		return fmt.Errorf("action profile %s has no selector", f[0])
	}
	w.Profile = p.Preamble.Name
	id, err := parseNumber(f[1])
	if err != nil || !id.IsUint64() || id.Uint64() == 0 || id.Uint64() > 0xffffffff {
		return fmt.Errorf("bad group id %q", f[1])
	}
	g := &p4v1.ActionProfileGroup{ActionProfileId: p.Preamble.Id, GroupId: uint32(id.Uint64())}
	for _, ms := range f[2:] {
		m, err := parseNumber(ms)
		if err != nil || !m.IsUint64() || m.Uint64() == 0 || m.Uint64() > 0xffffffff {
			return fmt.Errorf("bad member id %q", ms)
		}
		g.Members = append(g.Members, &p4v1.ActionProfileGroup_Member{MemberId: uint32(m.Uint64()), Weight: 1})
	}
	if w.Type != p4v1.Update_DELETE && len(g.Members) == 0 {
		return fmt.Errorf("group %s has no member", f[1])
	}
	// P4Runtime 1.4 §9.2.3: with max_group_size set, a group's max_size must be in 1..max_group_size.
	g.MaxSize = p.MaxGroupSize
	if p.MaxGroupSize > 0 && len(g.Members) > int(p.MaxGroupSize) {
		return fmt.Errorf("group %s has %d members, max %d", f[1], len(g.Members), p.MaxGroupSize)
	}
	w.Entity = &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileGroup{ActionProfileGroup: g}}
	return nil
}

func (st *state) fieldMatch(mf *p4configv1.MatchField, v string) (*p4v1.FieldMatch, error) {
	w := int(mf.Bitwidth)
	fm := &p4v1.FieldMatch{FieldId: mf.Id}
	switch mf.GetMatchType() {
	case p4configv1.MatchField_EXACT:
		b, err := st.value(v, w)
		if err != nil {
			return nil, err
		}
		fm.FieldMatchType = &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: b}}
	case p4configv1.MatchField_OPTIONAL:
		if v == "*" {
			return nil, nil
		}
		b, err := st.value(v, w)
		if err != nil {
			return nil, err
		}
		fm.FieldMatchType = &p4v1.FieldMatch_Optional_{Optional: &p4v1.FieldMatch_Optional{Value: b}}
	case p4configv1.MatchField_LPM:
		if v == "*" {
			return nil, nil
		}
		addr, plenText, hasLen := strings.Cut(v, "/")
		val, err := st.number(addr, w)
		if err != nil {
			return nil, err
		}
		plen := w
		if hasLen {
			n, err := parseNumber(plenText)
			if err != nil || !n.IsInt64() || n.Int64() < 0 || n.Int64() > int64(w) {
				return nil, fmt.Errorf("bad prefix length %q", plenText)
			}
			plen = int(n.Int64())
		}
		if plen == 0 {
			return nil, nil // P4Runtime: a zero-length prefix is written by omitting the field
		}
		mask := new(big.Int).Lsh(big.NewInt(1), uint(w))
		mask.Sub(mask, new(big.Int).Lsh(big.NewInt(1), uint(w-plen)))
		if new(big.Int).AndNot(val, mask).Sign() != 0 {
			return nil, fmt.Errorf("%s has bits set beyond the prefix", v)
		}
		b, err := p4src.EncodeBig(val, w)
		if err != nil {
			return nil, err
		}
		fm.FieldMatchType = &p4v1.FieldMatch_Lpm{Lpm: &p4v1.FieldMatch_LPM{Value: b, PrefixLen: int32(plen)}}
	case p4configv1.MatchField_TERNARY:
		if v == "*" {
			return nil, nil
		}
		valText, maskText, hasMask := strings.Cut(v, "&&&")
		val, err := st.number(valText, w)
		if err != nil {
			return nil, err
		}
		mask := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(w)), big.NewInt(1))
		if hasMask {
			if mask, err = st.number(maskText, w); err != nil {
				return nil, err
			}
		}
		if mask.Sign() == 0 {
			return nil, nil
		}
		if new(big.Int).AndNot(val, mask).Sign() != 0 {
			return nil, fmt.Errorf("%s has value bits outside the mask", v)
		}
		vb, _ := p4src.EncodeBig(val, w)
		mb, _ := p4src.EncodeBig(mask, w)
		fm.FieldMatchType = &p4v1.FieldMatch_Ternary_{Ternary: &p4v1.FieldMatch_Ternary{Value: vb, Mask: mb}}
	case p4configv1.MatchField_RANGE:
		if v == "*" {
			return nil, nil
		}
		loText, hiText, isRange := strings.Cut(v, "..")
		if !isRange {
			hiText = loText
		}
		lo, err := st.number(loText, w)
		if err != nil {
			return nil, err
		}
		hi, err := st.number(hiText, w)
		if err != nil {
			return nil, err
		}
		if lo.Cmp(hi) > 0 {
			return nil, fmt.Errorf("empty range %s", v)
		}
		full := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(w)), big.NewInt(1))
		if lo.Sign() == 0 && hi.Cmp(full) == 0 {
			return nil, nil // the whole range is a don't-care
		}
		lb, _ := p4src.EncodeBig(lo, w)
		hb, _ := p4src.EncodeBig(hi, w)
		fm.FieldMatchType = &p4v1.FieldMatch_Range_{Range: &p4v1.FieldMatch_Range{Low: lb, High: hb}}
	default:
		return nil, fmt.Errorf("unsupported match type %v", mf.GetMatchType())
	}
	return fm, nil
}

func (st *state) value(v string, width int) ([]byte, error) {
	n, err := st.number(v, width)
	if err != nil {
		return nil, err
	}
	return p4src.EncodeBig(n, width)
}

// number parses a value for a field of the given width: a number, an IP
// address, a MAC address, a declared port, a program constant, or several
// of them joined with |.
func (st *state) number(v string, width int) (*big.Int, error) {
	if strings.Contains(v, "|") {
		out := new(big.Int)
		for _, part := range strings.Split(v, "|") {
			n, err := st.number(strings.TrimSpace(part), width)
			if err != nil {
				return nil, err
			}
			out.Or(out, n)
		}
		return out, nil
	}
	var n *big.Int
	if a, err := netip.ParseAddr(v); err == nil && (strings.Contains(v, ".") || strings.Contains(v, "::") || strings.Count(v, ":") == 7) {
		if (a.Is4() && width != 32) || (a.Is6() && width != 128) {
			return nil, fmt.Errorf("address %s for a %d-bit field", v, width)
		}
		n = new(big.Int).SetBytes(a.AsSlice())
	} else if mac, err := net.ParseMAC(v); err == nil && len(mac) == 6 {
		if width != 48 {
			return nil, fmt.Errorf("MAC %s for a %d-bit field", v, width)
		}
		n = new(big.Int).SetBytes(mac)
	} else if p, ok := st.file.Ports[v]; ok {
		n = new(big.Int).SetUint64(uint64(p))
	} else if c, ok := st.spec.consts[v]; ok {
		n = new(big.Int).Set(c)
	} else {
		x, err := parseNumber(v)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number, address, port or constant", v)
		}
		n = x
	}
	if n.Sign() < 0 || n.BitLen() > width {
		return nil, fmt.Errorf("%s does not fit in %d bits", v, width)
	}
	return n, nil
}

func parseNumber(s string) (*big.Int, error) {
	n, ok := new(big.Int).SetString(strings.ReplaceAll(s, "_", ""), 0)
	if !ok {
		return nil, fmt.Errorf("bad number %q", s)
	}
	return n, nil
}
