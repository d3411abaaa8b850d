// Package p4parse reads the declarations of k8s.p4 that the control plane
// sees: typedefs, constants, header and struct field widths, and the tables,
// actions and externs of the main control.  It is deliberately small: it
// understands the subset of P4-16 that k8s.p4 uses for declarations and
// skips statement bodies.  It exists so that tests can compare the program
// with its committed P4Info, and so that the program's constants can be
// exported to Go.
package p4parse

import (
	"fmt"
	"math/big"
	"strings"
)

// MainControl is the control whose tables and actions the P4Info exposes.
const MainControl = "MainControlImpl"

// Program is the parsed declaration view of a P4 source file.
type Program struct {
	Typedefs       map[string]TypeRef
	Consts         []Const
	Composites     map[string]*Composite // headers and structs by name
	ControlParams  map[string]TypeRef    // parameters of the main control
	Locals         map[string]TypeRef    // control-local variables
	Actions        []*Action
	Tables         []*Table
	Counters       []*Counter
	DirectCounters []*Counter
	Profiles       []*Profile
	// ApplySites lists, per name, the source lines of the `<name>.apply()`
	// calls in the main control's apply block (one line per call site).
	ApplySites map[string][]int
}

// TypeRef is a type as written: a base name (bit, varbit, bool, or a named
// type) with a width for bit/varbit and type arguments for generics.
type TypeRef struct {
	Name  string
	Width int
	Args  []TypeRef
}

func (t TypeRef) String() string {
	if t.Name == "bit" || t.Name == "varbit" {
		return fmt.Sprintf("%s<%d>", t.Name, t.Width)
	}
	return t.Name
}

// Const is a top-level constant.
type Const struct {
	Name  string
	Type  TypeRef
	Width int // resolved bit width
	Value *big.Int
	Line  int
}

// Composite is a header or struct.
type Composite struct {
	Name   string
	Header bool
	Fields []Field
}

// Field is a header or struct field.
type Field struct {
	Name string
	Type TypeRef
}

// Annotation is an @annotation with its raw argument tokens.
type Annotation struct {
	Name string
	Args []string
}

// Action is an action of the main control.
type Action struct {
	Name        string
	ID          uint32
	Params      []Param
	Annotations []Annotation
	Line        int
}

// Param is an action parameter with its resolved width.
type Param struct {
	Name  string
	Type  TypeRef
	Width int
}

// Table is a table of the main control.
type Table struct {
	Name           string
	ID             uint32
	Keys           []Key
	Actions        []ActionRef
	DefaultAction  string // "" when not written (NoAction)
	ConstDefault   bool
	Size           int64
	HasSize        bool
	DirectCounter  string
	Implementation string
	AddOnMiss      bool
	Annotations    []Annotation
	Line           int
}

// Key is a table key element.
type Key struct {
	Expr      string // the expression as written, e.g. meta.src.port
	Name      string // control-plane name (@name, else Expr)
	MatchKind string
	Width     int
}

// ActionRef is an entry of a table's action list.
type ActionRef struct {
	Name        string
	Annotations []Annotation
}

// Counter is a Counter or DirectCounter instance.
type Counter struct {
	Name  string
	ID    uint32
	Type  string // Counter or DirectCounter
	Unit  string // PACKETS, BYTES or PACKETS_AND_BYTES
	Size  int64  // Counter only
	Table string // DirectCounter: the table that uses it
	Line  int
}

// Profile is an ActionProfile or ActionSelector instance.
type Profile struct {
	Name         string
	ID           uint32
	Selector     bool
	Size         int64
	OutputWidth  int64
	MaxGroupSize int64
	Annotations  []Annotation
	Line         int
}

// pnaWidths are the bit widths of the pna.p4 types k8s.p4 may use.
var pnaWidths = map[string]int{
	"PortId_t": 32, "PortIdUint_t": 32,
	"InterfaceId_t": 32, "InterfaceIdUint_t": 32,
	"MulticastGroup_t": 32, "MulticastGroupUint_t": 32,
	"MirrorSessionId_t": 16, "MirrorSessionIdUint_t": 16,
	"MirrorSlotId_t": 8, "MirrorSlotIdUint_t": 8,
	"ClassOfService_t": 8, "ClassOfServiceUint_t": 8,
	"PacketLength_t": 16, "PacketLengthUint_t": 16,
	"MulticastInstance_t": 16, "MulticastInstanceUint_t": 16,
	"Timestamp_t": 64, "TimestampUint_t": 64,
	"FlowId_t": 32, "FlowIdUint_t": 32,
	"ExpireTimeProfileId_t": 8, "ExpireTimeProfileIdUint_t": 8,
	"PassNumber_t": 3, "PassNumberUint_t": 3,
	"SecurityAssocId_t": 32, "SecurityAssocIdUint_t": 32,
	"bool": 1,
}

type parser struct {
	toks []token
	pos  int
	prog *Program
}

// Parse parses P4 source.
func Parse(src []byte) (*Program, error) {
	toks, err := lex(string(src))
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, prog: &Program{
		Typedefs:      map[string]TypeRef{},
		Composites:    map[string]*Composite{},
		ControlParams: map[string]TypeRef{},
		Locals:        map[string]TypeRef{},
		ApplySites:    map[string][]int{},
	}}
	if err := p.top(); err != nil {
		return nil, err
	}
	if err := p.prog.resolve(); err != nil {
		return nil, err
	}
	return p.prog, nil
}

func (p *parser) peek() token       { return p.toks[p.pos] }
func (p *parser) peekN(n int) token { return p.toks[min(p.pos+n, len(p.toks)-1)] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *parser) is(text string) bool { return p.peek().text == text && p.peek().kind != tokString }

func (p *parser) expect(text string) (token, error) {
	t := p.next()
	if t.text != text || t.kind == tokString {
		return t, fmt.Errorf("expected %q, found %v", text, t)
	}
	return t, nil
}

func (p *parser) ident() (token, error) {
	t := p.next()
	if t.kind != tokIdent {
		return t, fmt.Errorf("expected an identifier, found %v", t)
	}
	return t, nil
}

// skipBalanced skips from an opening bracket to its matching close.
func (p *parser) skipBalanced(open, close string) error {
	if _, err := p.expect(open); err != nil {
		return err
	}
	depth := 1
	for depth > 0 {
		t := p.next()
		switch {
		case t.kind == tokEOF:
			return fmt.Errorf("unbalanced %q", open)
		case t.kind == tokPunct && t.text == open:
			depth++
		case t.kind == tokPunct && t.text == close:
			depth--
		}
	}
	return nil
}

func (p *parser) skipTo(text string) error {
	for {
		t := p.next()
		if t.kind == tokEOF {
			return fmt.Errorf("expected %q before end of file", text)
		}
		if t.kind == tokPunct && t.text == "{" {
			p.pos--
			if err := p.skipBalanced("{", "}"); err != nil {
				return err
			}
			continue
		}
		if t.kind == tokPunct && t.text == "(" {
			p.pos--
			if err := p.skipBalanced("(", ")"); err != nil {
				return err
			}
			continue
		}
		if t.text == text && t.kind == tokPunct {
			return nil
		}
	}
}

func (p *parser) annotations() ([]Annotation, error) {
	var out []Annotation
	for p.is("@") {
		p.next()
		name, err := p.ident()
		if err != nil {
			return nil, err
		}
		a := Annotation{Name: name.text}
		if p.is("(") {
			p.next()
			depth := 1
			var cur []string
			for {
				t := p.next()
				if t.kind == tokEOF {
					return nil, fmt.Errorf("unterminated annotation @%s", name.text)
				}
				if t.kind == tokPunct && t.text == "(" {
					depth++
				}
				if t.kind == tokPunct && t.text == ")" {
					depth--
					if depth == 0 {
						break
					}
				}
				if depth == 1 && t.kind == tokPunct && t.text == "," {
					a.Args = append(a.Args, strings.Join(cur, ""))
					cur = nil
					continue
				}
				if t.kind == tokString {
					cur = append(cur, `"`+t.text+`"`)
				} else {
					cur = append(cur, t.text)
				}
			}
			if len(cur) > 0 {
				a.Args = append(a.Args, strings.Join(cur, ""))
			}
		}
		out = append(out, a)
	}
	return out, nil
}

func (p *parser) typeRef() (TypeRef, error) {
	name, err := p.ident()
	if err != nil {
		return TypeRef{}, err
	}
	t := TypeRef{Name: name.text}
	if !p.is("<") {
		return t, nil
	}
	p.next()
	if name.text == "bit" || name.text == "varbit" || name.text == "int" {
		v, err := p.expr()
		if err != nil {
			return t, err
		}
		w, err := p.prog.eval(v)
		if err != nil {
			return t, err
		}
		t.Width = int(w.Int64())
		if _, err := p.expect(">"); err != nil {
			return t, err
		}
		return t, nil
	}
	for {
		a, err := p.typeRef()
		if err != nil {
			return t, err
		}
		t.Args = append(t.Args, a)
		if p.is(",") {
			p.next()
			continue
		}
		if _, err := p.expect(">"); err != nil {
			return t, err
		}
		return t, nil
	}
}

// expr collects the tokens of a simple expression up to ; , ) or } at depth 0.
func (p *parser) expr() ([]token, error) {
	var out []token
	depth := 0
	for {
		t := p.peek()
		if t.kind == tokEOF {
			return nil, fmt.Errorf("unterminated expression")
		}
		if t.kind == tokPunct {
			switch t.text {
			case "(":
				depth++
			case ")":
				if depth == 0 {
					return out, nil
				}
				depth--
			case ";", ",", "}", ">":
				if depth == 0 {
					return out, nil
				}
			}
		}
		out = append(out, p.next())
	}
}

func (p *parser) top() error {
	for p.peek().kind != tokEOF {
		anns, err := p.annotations()
		if err != nil {
			return err
		}
		t := p.peek()
		switch t.text {
		case "typedef":
			p.next()
			ty, err := p.typeRef()
			if err != nil {
				return err
			}
			name, err := p.ident()
			if err != nil {
				return err
			}
			p.prog.Typedefs[name.text] = ty
			if _, err := p.expect(";"); err != nil {
				return err
			}
		case "const":
			p.next()
			ty, err := p.typeRef()
			if err != nil {
				return err
			}
			name, err := p.ident()
			if err != nil {
				return err
			}
			if _, err := p.expect("="); err != nil {
				return err
			}
			e, err := p.expr()
			if err != nil {
				return err
			}
			v, err := p.prog.eval(e)
			if err != nil {
				return fmt.Errorf("line %d: const %s: %w", name.line, name.text, err)
			}
			p.prog.Consts = append(p.prog.Consts, Const{Name: name.text, Type: ty, Value: v, Line: name.line})
			if _, err := p.expect(";"); err != nil {
				return err
			}
		case "header", "struct":
			p.next()
			name, err := p.ident()
			if err != nil {
				return err
			}
			c := &Composite{Name: name.text, Header: t.text == "header"}
			if _, err := p.expect("{"); err != nil {
				return err
			}
			for !p.is("}") {
				if _, err := p.annotations(); err != nil {
					return err
				}
				ft, err := p.typeRef()
				if err != nil {
					return fmt.Errorf("%s %s: %w", t.text, name.text, err)
				}
				fn, err := p.ident()
				if err != nil {
					return err
				}
				c.Fields = append(c.Fields, Field{Name: fn.text, Type: ft})
				if _, err := p.expect(";"); err != nil {
					return err
				}
			}
			p.next()
			p.prog.Composites[c.Name] = c
		case "control":
			p.next()
			name, err := p.ident()
			if err != nil {
				return err
			}
			if name.text != MainControl {
				if err := p.skipBalanced("(", ")"); err != nil {
					return err
				}
				if err := p.skipBalanced("{", "}"); err != nil {
					return err
				}
				continue
			}
			if err := p.mainControl(); err != nil {
				return fmt.Errorf("control %s: %w", MainControl, err)
			}
		case "parser":
			p.next()
			if _, err := p.ident(); err != nil {
				return err
			}
			if err := p.skipBalanced("(", ")"); err != nil {
				return err
			}
			if err := p.skipBalanced("{", "}"); err != nil {
				return err
			}
		default:
			// Functions, the package instantiation and anything else: skip
			// to the end of the declaration.
			for {
				tk := p.next()
				if tk.kind == tokEOF {
					return nil
				}
				if tk.kind == tokPunct && tk.text == ";" {
					break
				}
				if tk.kind == tokPunct && tk.text == "(" {
					p.pos--
					if err := p.skipBalanced("(", ")"); err != nil {
						return err
					}
					continue
				}
				if tk.kind == tokPunct && tk.text == "{" {
					p.pos--
					if err := p.skipBalanced("{", "}"); err != nil {
						return err
					}
					break
				}
			}
		}
		_ = anns
	}
	return nil
}

func (p *parser) mainControl() error {
	if _, err := p.expect("("); err != nil {
		return err
	}
	for !p.is(")") {
		if p.is("in") || p.is("out") || p.is("inout") {
			p.next()
		}
		ty, err := p.typeRef()
		if err != nil {
			return err
		}
		name, err := p.ident()
		if err != nil {
			return err
		}
		p.prog.ControlParams[name.text] = ty
		if p.is(",") {
			p.next()
		}
	}
	p.next()
	if _, err := p.expect("{"); err != nil {
		return err
	}
	for {
		anns, err := p.annotations()
		if err != nil {
			return err
		}
		t := p.peek()
		switch {
		case t.text == "apply":
			p.next()
			start := p.pos
			if err := p.skipBalanced("{", "}"); err != nil {
				return err
			}
			p.recordApplySites(p.toks[start:p.pos])
			_, err := p.expect("}")
			return err
		case t.text == "action":
			if err := p.action(anns); err != nil {
				return err
			}
		case t.text == "table":
			if err := p.table(anns); err != nil {
				return err
			}
		case t.kind == tokIdent:
			if err := p.local(anns); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected %v", t)
		}
	}
}

// recordApplySites notes every `<name>.apply()` call among toks (also
// inside expressions such as `<name>.apply().hit`).
func (p *parser) recordApplySites(toks []token) {
	for i := 0; i+4 < len(toks); i++ {
		if toks[i].kind == tokIdent && toks[i+1].text == "." && toks[i+2].text == "apply" &&
			toks[i+3].text == "(" && toks[i+4].text == ")" {
			p.prog.ApplySites[toks[i].text] = append(p.prog.ApplySites[toks[i].text], toks[i].line)
		}
	}
}

func idOf(anns []Annotation) (uint32, bool, error) {
	for _, a := range anns {
		if a.Name == "id" {
			if len(a.Args) != 1 {
				return 0, false, fmt.Errorf("@id needs one argument")
			}
			v, ok := new(big.Int).SetString(a.Args[0], 0)
			if !ok || !v.IsUint64() || v.Uint64() > 0xffffffff {
				return 0, false, fmt.Errorf("bad @id(%s)", a.Args[0])
			}
			return uint32(v.Uint64()), true, nil
		}
	}
	return 0, false, nil
}

func (p *parser) action(anns []Annotation) error {
	p.next()
	name, err := p.ident()
	if err != nil {
		return err
	}
	id, _, err := idOf(anns)
	if err != nil {
		return fmt.Errorf("action %s: %w", name.text, err)
	}
	a := &Action{Name: name.text, ID: id, Annotations: anns, Line: name.line}
	if _, err := p.expect("("); err != nil {
		return err
	}
	for !p.is(")") {
		if p.is("in") || p.is("out") || p.is("inout") {
			return fmt.Errorf("action %s: directional parameters are not control-plane parameters", name.text)
		}
		if _, err := p.annotations(); err != nil {
			return err
		}
		ty, err := p.typeRef()
		if err != nil {
			return fmt.Errorf("action %s: %w", name.text, err)
		}
		pn, err := p.ident()
		if err != nil {
			return err
		}
		a.Params = append(a.Params, Param{Name: pn.text, Type: ty})
		if p.is(",") {
			p.next()
		}
	}
	p.next()
	if err := p.skipBalanced("{", "}"); err != nil {
		return err
	}
	p.prog.Actions = append(p.prog.Actions, a)
	return nil
}

func (p *parser) table(anns []Annotation) error {
	p.next()
	name, err := p.ident()
	if err != nil {
		return err
	}
	id, _, err := idOf(anns)
	if err != nil {
		return fmt.Errorf("table %s: %w", name.text, err)
	}
	t := &Table{Name: name.text, ID: id, Annotations: anns, Line: name.line}
	if _, err := p.expect("{"); err != nil {
		return err
	}
	for !p.is("}") {
		isConst := false
		if p.is("const") {
			p.next()
			isConst = true
		}
		prop, err := p.ident()
		if err != nil {
			return fmt.Errorf("table %s: %w", name.text, err)
		}
		if _, err := p.expect("="); err != nil {
			return fmt.Errorf("table %s: %w", name.text, err)
		}
		switch prop.text {
		case "key":
			if _, err := p.expect("{"); err != nil {
				return err
			}
			for !p.is("}") {
				var parts []string
				for !p.is(":") {
					tk := p.next()
					if tk.kind == tokEOF {
						return fmt.Errorf("table %s: unterminated key", name.text)
					}
					parts = append(parts, tk.text)
				}
				p.next()
				kind, err := p.ident()
				if err != nil {
					return err
				}
				kanns, err := p.annotations()
				if err != nil {
					return err
				}
				k := Key{Expr: strings.Join(parts, ""), MatchKind: kind.text}
				k.Name = k.Expr
				for _, a := range kanns {
					if a.Name == "name" && len(a.Args) == 1 {
						k.Name = strings.Trim(a.Args[0], `"`)
					}
				}
				t.Keys = append(t.Keys, k)
				if _, err := p.expect(";"); err != nil {
					return fmt.Errorf("table %s key: %w", name.text, err)
				}
			}
			p.next()
		case "actions":
			if _, err := p.expect("{"); err != nil {
				return err
			}
			for !p.is("}") {
				aanns, err := p.annotations()
				if err != nil {
					return err
				}
				an, err := p.ident()
				if err != nil {
					return err
				}
				if p.is("(") {
					if err := p.skipBalanced("(", ")"); err != nil {
						return err
					}
				}
				t.Actions = append(t.Actions, ActionRef{Name: an.text, Annotations: aanns})
				if _, err := p.expect(";"); err != nil {
					return fmt.Errorf("table %s actions: %w", name.text, err)
				}
			}
			p.next()
		case "default_action":
			an, err := p.ident()
			if err != nil {
				return err
			}
			if p.is("(") {
				p.next()
				if !p.is(")") {
					return fmt.Errorf("table %s: default actions with arguments are not supported by this parser", name.text)
				}
				p.next()
			}
			t.DefaultAction = an.text
			t.ConstDefault = isConst
			if _, err := p.expect(";"); err != nil {
				return err
			}
		case "size":
			e, err := p.expr()
			if err != nil {
				return err
			}
			v, err := p.prog.eval(e)
			if err != nil {
				return fmt.Errorf("table %s size: %w", name.text, err)
			}
			t.Size, t.HasSize = v.Int64(), true
			if _, err := p.expect(";"); err != nil {
				return err
			}
		default:
			e, err := p.expr()
			if err != nil {
				return err
			}
			val := ""
			if len(e) == 1 {
				val = e[0].text
			}
			switch prop.text {
			case "pna_direct_counter":
				t.DirectCounter = val
			case "pna_implementation":
				t.Implementation = val
			case "add_on_miss":
				t.AddOnMiss = val == "true"
			}
			if _, err := p.expect(";"); err != nil {
				return fmt.Errorf("table %s property %s: %w", name.text, prop.text, err)
			}
		}
	}
	p.next()
	p.prog.Tables = append(p.prog.Tables, t)
	return nil
}

// local parses an extern instantiation or a variable declaration.
func (p *parser) local(anns []Annotation) error {
	ty, err := p.typeRef()
	if err != nil {
		return err
	}
	if !p.is("(") {
		name, err := p.ident()
		if err != nil {
			return err
		}
		p.prog.Locals[name.text] = ty
		return p.skipTo(";")
	}
	// Instantiation: collect the constructor arguments.
	p.next()
	var args [][]token
	for !p.is(")") {
		e, err := p.expr()
		if err != nil {
			return err
		}
		args = append(args, e)
		if p.is(",") {
			p.next()
		}
	}
	p.next()
	name, err := p.ident()
	if err != nil {
		return err
	}
	if _, err := p.expect(";"); err != nil {
		return err
	}
	id, hasID, err := idOf(anns)
	if err != nil {
		return fmt.Errorf("%s: %w", name.text, err)
	}
	argText := func(i int) string {
		if i >= len(args) {
			return ""
		}
		var s []string
		for _, t := range args[i] {
			s = append(s, t.text)
		}
		return strings.Join(s, "")
	}
	unit := func(s string) string { return strings.TrimPrefix(s, "PNA_CounterType_t.") }
	switch ty.Name {
	case "Counter":
		if len(args) != 2 {
			return fmt.Errorf("%s: Counter takes (size, type)", name.text)
		}
		size, err := p.prog.eval(args[0])
		if err != nil {
			return fmt.Errorf("%s: %w", name.text, err)
		}
		p.prog.Counters = append(p.prog.Counters, &Counter{Name: name.text, ID: id, Type: ty.Name,
			Unit: unit(argText(1)), Size: size.Int64(), Line: name.line})
	case "DirectCounter":
		if len(args) != 1 {
			return fmt.Errorf("%s: DirectCounter takes (type)", name.text)
		}
		p.prog.DirectCounters = append(p.prog.DirectCounters, &Counter{Name: name.text, ID: id, Type: ty.Name,
			Unit: unit(argText(0)), Line: name.line})
	case "ActionSelector", "ActionProfile":
		pr := &Profile{Name: name.text, ID: id, Selector: ty.Name == "ActionSelector", Annotations: anns, Line: name.line}
		sizeArg := 0
		if pr.Selector {
			if len(args) != 3 {
				return fmt.Errorf("%s: ActionSelector takes (algorithm, size, output width)", name.text)
			}
			sizeArg = 1
			w, err := p.prog.eval(args[2])
			if err != nil {
				return err
			}
			pr.OutputWidth = w.Int64()
		}
		size, err := p.prog.eval(args[sizeArg])
		if err != nil {
			return fmt.Errorf("%s: %w", name.text, err)
		}
		pr.Size = size.Int64()
		for _, a := range anns {
			if a.Name == "max_group_size" && len(a.Args) == 1 {
				v, ok := new(big.Int).SetString(a.Args[0], 0)
				if !ok {
					return fmt.Errorf("%s: bad @max_group_size", name.text)
				}
				pr.MaxGroupSize = v.Int64()
			}
		}
		p.prog.Profiles = append(p.prog.Profiles, pr)
	default:
		if hasID {
			return fmt.Errorf("%s: @id on an extern this parser does not know (%s)", name.text, ty.Name)
		}
	}
	return nil
}

// eval evaluates a constant expression: literals (with width prefixes),
// constant names, casts and parentheses.
func (prog *Program) eval(toks []token) (*big.Int, error) {
	if len(toks) == 0 {
		return nil, fmt.Errorf("empty expression")
	}
	// Strip casts: ( Type ) expr
	for len(toks) > 3 && toks[0].text == "(" && toks[1].kind == tokIdent && toks[2].text == ")" {
		toks = toks[3:]
	}
	for len(toks) > 6 && toks[0].text == "(" && toks[1].kind == tokIdent && toks[2].text == "<" && toks[5].text == ")" {
		toks = toks[6:] // (bit<N>) expr
	}
	if len(toks) >= 2 && toks[0].text == "(" && toks[len(toks)-1].text == ")" {
		return prog.eval(toks[1 : len(toks)-1])
	}
	if len(toks) != 1 {
		var s []string
		for _, t := range toks {
			s = append(s, t.text)
		}
		return nil, fmt.Errorf("unsupported constant expression %q", strings.Join(s, " "))
	}
	t := toks[0]
	switch t.kind {
	case tokNumber:
		return parseNumber(t.text)
	case tokIdent:
		for _, c := range prog.Consts {
			if c.Name == t.text {
				return new(big.Int).Set(c.Value), nil
			}
		}
		if t.text == "true" {
			return big.NewInt(1), nil
		}
		if t.text == "false" {
			return big.NewInt(0), nil
		}
		return nil, fmt.Errorf("unknown constant %s", t.text)
	}
	return nil, fmt.Errorf("unsupported constant %v", t)
}

// parseNumber parses P4 integer literals: 10, 0x0a, 8w10, 16w0x0800, 0b101.
func parseNumber(s string) (*big.Int, error) {
	s = strings.ReplaceAll(s, "_", "")
	if i := strings.IndexAny(s, "ws"); i > 0 && !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		s = s[i+1:]
	}
	v, ok := new(big.Int).SetString(s, 0)
	if !ok {
		return nil, fmt.Errorf("bad number %q", s)
	}
	return v, nil
}

// Width returns the bit width of a type reference (bit/varbit/typedef/PNA type).
func (prog *Program) Width(t TypeRef) (int, error) {
	for i := 0; i < 16; i++ {
		switch t.Name {
		case "bit", "varbit", "int":
			return t.Width, nil
		}
		if w, ok := pnaWidths[t.Name]; ok {
			return w, nil
		}
		td, ok := prog.Typedefs[t.Name]
		if !ok {
			return 0, fmt.Errorf("type %s has no width", t.Name)
		}
		t = td
	}
	return 0, fmt.Errorf("typedef loop at %s", t.Name)
}

// ExprWidth resolves a dotted member expression (meta.src.port, hdr.arp.target_ip,
// a control local) to its width.
func (prog *Program) ExprWidth(expr string) (int, error) {
	parts := strings.Split(expr, ".")
	var t TypeRef
	if pt, ok := prog.ControlParams[parts[0]]; ok {
		t = pt
	} else if lt, ok := prog.Locals[parts[0]]; ok {
		t = lt
	} else {
		return 0, fmt.Errorf("%s: unknown name %s", expr, parts[0])
	}
	for _, f := range parts[1:] {
		c, ok := prog.Composites[t.Name]
		if !ok {
			return 0, fmt.Errorf("%s: %s is not a header or struct", expr, t.Name)
		}
		found := false
		for _, fld := range c.Fields {
			if fld.Name == f {
				t = fld.Type
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("%s: %s has no field %s", expr, c.Name, f)
		}
	}
	return prog.Width(t)
}

func (prog *Program) resolve() error {
	for i := range prog.Consts {
		w, err := prog.Width(prog.Consts[i].Type)
		if err != nil {
			return fmt.Errorf("const %s: %w", prog.Consts[i].Name, err)
		}
		prog.Consts[i].Width = w
	}
	for _, a := range prog.Actions {
		for i := range a.Params {
			w, err := prog.Width(a.Params[i].Type)
			if err != nil {
				return fmt.Errorf("action %s param %s: %w", a.Name, a.Params[i].Name, err)
			}
			a.Params[i].Width = w
		}
	}
	for _, t := range prog.Tables {
		for i := range t.Keys {
			w, err := prog.ExprWidth(t.Keys[i].Expr)
			if err != nil {
				return fmt.Errorf("table %s key: %w", t.Name, err)
			}
			t.Keys[i].Width = w
		}
		if t.DirectCounter != "" {
			for _, c := range prog.DirectCounters {
				if c.Name == t.DirectCounter {
					c.Table = t.Name
				}
			}
		}
	}
	return nil
}

// Action returns the action with that name, or nil.
func (prog *Program) Action(name string) *Action {
	for _, a := range prog.Actions {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Table returns the table with that name, or nil.
func (prog *Program) Table(name string) *Table {
	for _, t := range prog.Tables {
		if t.Name == name {
			return t
		}
	}
	return nil
}
