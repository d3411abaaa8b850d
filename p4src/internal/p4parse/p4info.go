package p4parse

import (
	"fmt"
	"sort"
	"strings"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
)

// P4Runtime id prefixes (P4Ids.Prefix).
const (
	PrefixAction        = 0x01
	PrefixTable         = 0x02
	PrefixActionProfile = 0x11
	PrefixCounter       = 0x12
	PrefixDirectCounter = 0x13
)

// NoActionName is core.p4's NoAction, which p4c names without a control prefix.
const NoActionName = "NoAction"

// JenkinsID returns the id p4c assigns to a symbol without @id: Jenkins'
// one-at-a-time hash of the name, low 24 bits, under the resource prefix.
// (p4c probes upwards on collisions; k8s.p4 pins every other id, so the
// only hashed id, NoAction's, cannot collide.)
func JenkinsID(prefix byte, name string) uint32 {
	var h uint32
	for i := 0; i < len(name); i++ {
		h += uint32(name[i])
		h += h << 10
		h ^= h >> 6
	}
	h += h << 3
	h ^= h >> 11
	h += h << 15
	return uint32(prefix)<<24 | h&0xffffff
}

// QualifiedName is the P4Info name of an object declared in the main control.
func QualifiedName(local string) string {
	if local == NoActionName {
		return NoActionName
	}
	return MainControl + "." + local
}

// Aliases computes P4Info aliases the way p4c does: the shortest suffix of
// dot-separated components that no other symbol shares.
func Aliases(names []string) map[string]string {
	count := map[string]int{}
	for _, n := range names {
		parts := strings.Split(n, ".")
		for i := range parts {
			count[strings.Join(parts[i:], ".")]++
		}
	}
	out := map[string]string{}
	for _, n := range names {
		parts := strings.Split(n, ".")
		alias := n
		for i := len(parts) - 1; i >= 0; i-- {
			s := strings.Join(parts[i:], ".")
			if count[s] < 2 {
				alias = s
				break
			}
		}
		out[n] = alias
	}
	return out
}

func matchType(kind string) (p4configv1.MatchField_MatchType, bool, error) {
	switch kind {
	case "exact":
		return p4configv1.MatchField_EXACT, true, nil
	case "lpm":
		return p4configv1.MatchField_LPM, true, nil
	case "ternary":
		return p4configv1.MatchField_TERNARY, true, nil
	case "range":
		return p4configv1.MatchField_RANGE, true, nil
	case "optional":
		return p4configv1.MatchField_OPTIONAL, true, nil
	case "selector":
		return 0, false, nil
	}
	return 0, false, fmt.Errorf("unknown match kind %q", kind)
}

func counterUnit(u string) (p4configv1.CounterSpec_Unit, error) {
	switch u {
	case "PACKETS":
		return p4configv1.CounterSpec_PACKETS, nil
	case "BYTES":
		return p4configv1.CounterSpec_BYTES, nil
	case "PACKETS_AND_BYTES":
		return p4configv1.CounterSpec_BOTH, nil
	}
	return 0, fmt.Errorf("unknown counter type %q", u)
}

func annotationText(a Annotation) string {
	if len(a.Args) == 0 {
		return "@" + a.Name
	}
	return "@" + a.Name + "(" + strings.Join(a.Args, ", ") + ")"
}

// P4Info builds the P4Info p4c's PNA serializer (the one p4c-dpdk uses for
// --p4runtime-files) produces for the program's declarations.  It requires
// @id on every table, action, action profile, counter and direct counter.
func (prog *Program) P4Info() (*p4configv1.P4Info, error) {
	info := &p4configv1.P4Info{
		PkgInfo:  &p4configv1.PkgInfo{Arch: "pna"},
		TypeInfo: &p4configv1.P4TypeInfo{},
	}

	// Actions referenced by tables, in declaration order; NoAction last.
	used := map[string]bool{}
	for _, t := range prog.Tables {
		for _, r := range t.Actions {
			used[r.Name] = true
		}
		if t.DefaultAction != "" {
			used[t.DefaultAction] = true
		}
	}
	for name := range used {
		if name != NoActionName && prog.Action(name) == nil {
			return nil, fmt.Errorf("action %s is used by a table but not declared", name)
		}
	}
	var names []string
	actionIDs := map[string]uint32{}
	for _, a := range prog.Actions {
		if !used[a.Name] {
			return nil, fmt.Errorf("action %s (line %d) is in no table: p4c would drop it from the P4Info", a.Name, a.Line)
		}
		if a.ID>>24 != PrefixAction {
			return nil, fmt.Errorf("action %s: @id 0x%08x lacks the action prefix 0x01", a.Name, a.ID)
		}
		actionIDs[a.Name] = a.ID
		names = append(names, QualifiedName(a.Name))
	}
	if used[NoActionName] {
		actionIDs[NoActionName] = JenkinsID(PrefixAction, NoActionName)
		names = append(names, NoActionName)
	}
	tableIDs := map[string]uint32{}
	for _, t := range prog.Tables {
		if t.ID>>24 != PrefixTable {
			return nil, fmt.Errorf("table %s: @id 0x%08x lacks the table prefix 0x02", t.Name, t.ID)
		}
		tableIDs[t.Name] = t.ID
		names = append(names, QualifiedName(t.Name))
	}
	for _, pr := range prog.Profiles {
		if pr.ID>>24 != PrefixActionProfile {
			return nil, fmt.Errorf("action profile %s: @id 0x%08x lacks the prefix 0x11", pr.Name, pr.ID)
		}
		names = append(names, QualifiedName(pr.Name))
	}
	for _, c := range prog.Counters {
		if c.ID>>24 != PrefixCounter {
			return nil, fmt.Errorf("counter %s: @id 0x%08x lacks the prefix 0x12", c.Name, c.ID)
		}
		names = append(names, QualifiedName(c.Name))
	}
	for _, c := range prog.DirectCounters {
		if c.ID>>24 != PrefixDirectCounter {
			return nil, fmt.Errorf("direct counter %s: @id 0x%08x lacks the prefix 0x13", c.Name, c.ID)
		}
		names = append(names, QualifiedName(c.Name))
	}
	seen := map[uint32]string{}
	aliases := Aliases(names)
	pre := func(id uint32, local string, anns []Annotation, skip ...string) (*p4configv1.Preamble, error) {
		if other, dup := seen[id]; dup {
			return nil, fmt.Errorf("id 0x%08x used by both %s and %s", id, other, local)
		}
		seen[id] = local
		name := QualifiedName(local)
		p := &p4configv1.Preamble{Id: id, Name: name, Alias: aliases[name]}
	next:
		for _, a := range anns {
			if a.Name == "id" || a.Name == "name" || a.Name == "brief" || a.Name == "description" {
				continue
			}
			for _, s := range skip {
				if a.Name == s {
					continue next
				}
			}
			p.Annotations = append(p.Annotations, annotationText(a))
		}
		return p, nil
	}

	profileIDs := map[string]uint32{}
	for _, pr := range prog.Profiles {
		profileIDs[pr.Name] = pr.ID
	}
	directIDs := map[string]uint32{}
	for _, c := range prog.DirectCounters {
		directIDs[c.Name] = c.ID
	}

	for _, t := range prog.Tables {
		p, err := pre(t.ID, t.Name, t.Annotations)
		if err != nil {
			return nil, err
		}
		pt := &p4configv1.Table{Preamble: p, Size: 1024}
		if t.HasSize {
			pt.Size = t.Size
		}
		for i, k := range t.Keys {
			mt, exposed, err := matchType(k.MatchKind)
			if err != nil {
				return nil, fmt.Errorf("table %s: %w", t.Name, err)
			}
			if !exposed {
				continue
			}
			pt.MatchFields = append(pt.MatchFields, &p4configv1.MatchField{
				Id: uint32(i + 1), Name: k.Name, Bitwidth: int32(k.Width),
				Match: &p4configv1.MatchField_MatchType_{MatchType: mt},
			})
		}
		for _, r := range t.Actions {
			ref := &p4configv1.ActionRef{Id: actionIDs[r.Name]}
			for _, a := range r.Annotations {
				if a.Name == "id" || a.Name == "name" {
					continue
				}
				ref.Annotations = append(ref.Annotations, annotationText(a))
				switch a.Name {
				case "tableonly":
					ref.Scope = p4configv1.ActionRef_TABLE_ONLY
				case "defaultonly":
					ref.Scope = p4configv1.ActionRef_DEFAULT_ONLY
				}
			}
			pt.ActionRefs = append(pt.ActionRefs, ref)
		}
		def := t.DefaultAction
		if def == "" {
			def = NoActionName
			if !used[NoActionName] {
				return nil, fmt.Errorf("table %s: no default action and NoAction is not in its action list", t.Name)
			}
		}
		inList := false
		for _, r := range t.Actions {
			inList = inList || r.Name == def
		}
		if !inList {
			return nil, fmt.Errorf("table %s: default action %s is not in its action list", t.Name, def)
		}
		if t.ConstDefault {
			pt.ConstDefaultActionId = actionIDs[def]
		}
		pt.InitialDefaultAction = &p4configv1.TableActionCall{ActionId: actionIDs[def]}
		if t.Implementation != "" {
			id, ok := profileIDs[t.Implementation]
			if !ok {
				return nil, fmt.Errorf("table %s: unknown implementation %s", t.Name, t.Implementation)
			}
			pt.ImplementationId = id
		}
		if t.DirectCounter != "" {
			id, ok := directIDs[t.DirectCounter]
			if !ok {
				return nil, fmt.Errorf("table %s: unknown direct counter %s", t.Name, t.DirectCounter)
			}
			pt.DirectResourceIds = append(pt.DirectResourceIds, id)
		}
		info.Tables = append(info.Tables, pt)
	}

	for _, a := range prog.Actions {
		p, err := pre(a.ID, a.Name, a.Annotations)
		if err != nil {
			return nil, err
		}
		pa := &p4configv1.Action{Preamble: p}
		for i, prm := range a.Params {
			pa.Params = append(pa.Params, &p4configv1.Action_Param{Id: uint32(i + 1), Name: prm.Name, Bitwidth: int32(prm.Width)})
		}
		info.Actions = append(info.Actions, pa)
	}
	if used[NoActionName] {
		info.Actions = append(info.Actions, &p4configv1.Action{Preamble: &p4configv1.Preamble{
			Id: actionIDs[NoActionName], Name: NoActionName, Alias: aliases[NoActionName],
			Annotations: []string{`@noWarn("unused")`},
		}})
	}

	for _, pr := range prog.Profiles {
		p, err := pre(pr.ID, pr.Name, pr.Annotations, "max_group_size", "selector_size_semantics", "max_member_weight")
		if err != nil {
			return nil, err
		}
		ap := &p4configv1.ActionProfile{Preamble: p, WithSelector: pr.Selector, Size: pr.Size}
		if pr.Selector {
			ap.MaxGroupSize = int32(pr.MaxGroupSize)
		}
		for _, t := range prog.Tables {
			if t.Implementation == pr.Name {
				ap.TableIds = append(ap.TableIds, t.ID)
			}
		}
		sort.Slice(ap.TableIds, func(i, j int) bool { return ap.TableIds[i] < ap.TableIds[j] })
		info.ActionProfiles = append(info.ActionProfiles, ap)
	}

	for _, c := range prog.Counters {
		p, err := pre(c.ID, c.Name, nil)
		if err != nil {
			return nil, err
		}
		u, err := counterUnit(c.Unit)
		if err != nil {
			return nil, fmt.Errorf("counter %s: %w", c.Name, err)
		}
		info.Counters = append(info.Counters, &p4configv1.Counter{Preamble: p, Spec: &p4configv1.CounterSpec{Unit: u}, Size: c.Size})
	}
	for _, c := range prog.DirectCounters {
		p, err := pre(c.ID, c.Name, nil)
		if err != nil {
			return nil, err
		}
		u, err := counterUnit(c.Unit)
		if err != nil {
			return nil, fmt.Errorf("direct counter %s: %w", c.Name, err)
		}
		if c.Table == "" {
			return nil, fmt.Errorf("direct counter %s is attached to no table", c.Name)
		}
		info.DirectCounters = append(info.DirectCounters, &p4configv1.DirectCounter{
			Preamble: p, Spec: &p4configv1.CounterSpec{Unit: u}, DirectTableId: tableIDs[c.Table],
		})
	}
	return info, nil
}

// Sort orders every repeated top-level list of a P4Info by id, so that two
// P4Infos that differ only in order compare equal.
func Sort(info *p4configv1.P4Info) {
	sort.SliceStable(info.Tables, func(i, j int) bool { return info.Tables[i].Preamble.Id < info.Tables[j].Preamble.Id })
	sort.SliceStable(info.Actions, func(i, j int) bool { return info.Actions[i].Preamble.Id < info.Actions[j].Preamble.Id })
	sort.SliceStable(info.ActionProfiles, func(i, j int) bool {
		return info.ActionProfiles[i].Preamble.Id < info.ActionProfiles[j].Preamble.Id
	})
	sort.SliceStable(info.Counters, func(i, j int) bool { return info.Counters[i].Preamble.Id < info.Counters[j].Preamble.Id })
	sort.SliceStable(info.DirectCounters, func(i, j int) bool {
		return info.DirectCounters[i].Preamble.Id < info.DirectCounters[j].Preamble.Id
	})
	sort.SliceStable(info.Digests, func(i, j int) bool { return info.Digests[i].Preamble.Id < info.Digests[j].Preamble.Id })
	sort.SliceStable(info.Meters, func(i, j int) bool { return info.Meters[i].Preamble.Id < info.Meters[j].Preamble.Id })
	sort.SliceStable(info.Registers, func(i, j int) bool { return info.Registers[i].Preamble.Id < info.Registers[j].Preamble.Id })
}
