package p4parse

import (
	"fmt"
	"strings"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// Check parses a P4 program and a P4Info in text format and reports every
// difference between the P4Info the program's declarations imply and the
// given one: missing or extra objects, and objects whose names, ids, match
// fields, widths, match kinds, action lists, scopes, defaults, parameters,
// sizes, implementations or counters differ.  Order does not matter.  It
// also refuses a program with a table that is not applied at exactly one
// site (CheckApplySites).
func Check(program, p4infoText []byte) error {
	prog, err := Parse(program)
	if err != nil {
		return fmt.Errorf("program: %w", err)
	}
	if err := prog.CheckApplySites(); err != nil {
		return fmt.Errorf("program: %w", err)
	}
	want, err := prog.P4Info()
	if err != nil {
		return fmt.Errorf("program: %w", err)
	}
	got := &p4configv1.P4Info{}
	if err := prototext.Unmarshal(p4infoText, got); err != nil {
		return fmt.Errorf("P4Info: %w", err)
	}
	return Diff(want, got)
}

// CheckApplySites reports every table of the main control that is not
// applied at exactly one site.  Several p4c backends refuse a table with
// more than one application site (bmv2: "invoked multiple times"; see p4c
// issues #457, #986, #1394) and p4c-dpdk's behaviour is not established, so
// k8s.p4 keeps one `<table>.apply()` per table and reaches it from every pass
// that needs the table.  A table applied nowhere would be dropped by p4c.
func (prog *Program) CheckApplySites() error {
	var problems []string
	for _, t := range prog.Tables {
		switch sites := prog.ApplySites[t.Name]; len(sites) {
		case 1:
		case 0:
			problems = append(problems, fmt.Sprintf("table %s (line %d) is never applied", t.Name, t.Line))
		default:
			lines := make([]string, len(sites))
			for i, l := range sites {
				lines[i] = fmt.Sprint(l)
			}
			problems = append(problems, fmt.Sprintf("table %s is applied at %d sites (lines %s); p4c backends need exactly one",
				t.Name, len(sites), strings.Join(lines, ", ")))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("apply sites: %s", strings.Join(problems, "; "))
}

type object struct {
	kind string
	msg  proto.Message
}

func objects(info *p4configv1.P4Info) map[string]object {
	out := map[string]object{}
	add := func(kind, name string, m proto.Message) { out[kind+" "+name] = object{kind, m} }
	for _, t := range info.Tables {
		add("table", t.GetPreamble().GetName(), t)
	}
	for _, a := range info.Actions {
		add("action", a.GetPreamble().GetName(), a)
	}
	for _, p := range info.ActionProfiles {
		add("action profile", p.GetPreamble().GetName(), p)
	}
	for _, c := range info.Counters {
		add("counter", c.GetPreamble().GetName(), c)
	}
	for _, c := range info.DirectCounters {
		add("direct counter", c.GetPreamble().GetName(), c)
	}
	for _, m := range info.Meters {
		add("meter", m.GetPreamble().GetName(), m)
	}
	for _, m := range info.DirectMeters {
		add("direct meter", m.GetPreamble().GetName(), m)
	}
	for _, r := range info.Registers {
		add("register", r.GetPreamble().GetName(), r)
	}
	for _, d := range info.Digests {
		add("digest", d.GetPreamble().GetName(), d)
	}
	for _, e := range info.Externs {
		add("extern", e.GetExternTypeName(), e)
	}
	for _, c := range info.ControllerPacketMetadata {
		add("controller header", c.GetPreamble().GetName(), c)
	}
	for _, v := range info.ValueSets {
		add("value set", v.GetPreamble().GetName(), v)
	}
	return out
}

// Diff compares two P4Infos object by object; nil when they are equal up to
// the order of their lists.
func Diff(want, got *p4configv1.P4Info) error {
	var problems []string
	w, g := objects(want), objects(got)
	for k, wo := range w {
		go_, ok := g[k]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is declared by the program but missing from the P4Info:\n%s", k, indent(FormatText(wo.msg))))
			continue
		}
		if !proto.Equal(wo.msg, go_.msg) {
			problems = append(problems, fmt.Sprintf("%s differs.\nprogram implies:\n%s\nP4Info has:\n%s", k, indent(FormatText(wo.msg)), indent(FormatText(go_.msg))))
		}
	}
	for k, gobj := range g {
		if _, ok := w[k]; !ok {
			problems = append(problems, fmt.Sprintf("%s is in the P4Info but not declared by the program:\n%s", k, indent(FormatText(gobj.msg))))
		}
	}
	if !proto.Equal(want.GetPkgInfo(), got.GetPkgInfo()) {
		problems = append(problems, fmt.Sprintf("pkg_info differs: program implies %v, P4Info has %v", want.GetPkgInfo(), got.GetPkgInfo()))
	}
	if !proto.Equal(want.GetTypeInfo(), got.GetTypeInfo()) {
		problems = append(problems, "type_info differs")
	}
	// Anything else (order aside) the per-object view would miss.
	ws, gs := proto.Clone(want).(*p4configv1.P4Info), proto.Clone(got).(*p4configv1.P4Info)
	Sort(ws)
	Sort(gs)
	if len(problems) == 0 && !proto.Equal(ws, gs) {
		problems = append(problems, "the P4Infos differ outside tables, actions, profiles and counters")
	}
	if len(problems) == 0 {
		return nil
	}
	sortStrings(problems)
	return fmt.Errorf("k8s.p4 and its P4Info disagree (%d problems):\n%s", len(problems), strings.Join(problems, "\n"))
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
