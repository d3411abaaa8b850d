package translator

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src"
)

// This file compiles one ordered rule list (a policy's or profile's inbound or outbound rules) into a
// program of steps (policy_step + policy_rule entries), following Felix's rule rendering
// (felix/rules/policy.go): see doc.go for the semantics and the encoding.

// Action kinds of a compiled policy_rule entry.
type actKind uint8

const (
	actAllow actKind = iota + 1
	actDeny
	actPass
	actLog
	actGoto
)

// setRef names an IP set a step looks up: a Felix IP set (by its id) or a set derived from a rule's own
// CIDR list (shared by every rule with the same list).
type setRef struct {
	felix string
	cidrs string // canonical, comma-separated CIDRs
}

func (r setRef) isZero() bool { return r.felix == "" && r.cidrs == "" }

// idName is the name of the set in the IP-set id space.
func (r setRef) idName() string {
	if r.felix != "" {
		return "felix/" + r.felix
	}
	return "cidr/" + r.cidrs
}

// cidrSetRef returns the derived set of a CIDR list (both families: a step's lookup only ever sees
// members of the packet's family).
func cidrSetRef(nets []netip.Prefix) setRef {
	ps := make([]string, 0, len(nets))
	for _, n := range nets {
		ps = append(ps, n.Masked().String())
	}
	slices.Sort(ps)
	ps = slices.Compact(ps)
	return setRef{cidrs: strings.Join(ps, ",")}
}

// program is a compiled rule list. Step 0 is the entry point; every step's targets have larger indexes, so
// the steps form a DAG in index order.
type program struct {
	steps []pstep
	// rules lists the indexes (in the source list) of the rules that have entries: each gets a rule id
	// and a policy_rule_stats entry.
	rules []int
	// sets lists the IP sets the steps look up (Felix sets and derived CIDR sets), without duplicates.
	sets []setRef
	// issues are the unsupported features found (one per rule and feature).
	issues []ruleIssue
}

type ruleIssue struct {
	rule      int
	feature   Feature
	detail    string
	rendering string
}

type pstep struct {
	lookup uint8
	set    setRef
	miss   int // step index, or -1: the policy did not match
	ents   []pentry
}

// pentry is one policy_rule entry before ids are known.
type pentry struct {
	prio     int32
	setHit   int8  // -1: any
	ipver    uint8 // 0: any
	proto    pattern8
	sport    portRange
	dport    portRange
	icmpType pattern8
	icmpCode pattern8
	act      actKind
	rule     int // source rule index (counted actions)
	next     int // step index (actLog, actGoto)
}

// setInfo tells the compiler whether an IP set exists and its type.
type setInfo func(id string) (model.IPSetType, bool)

// test is one IP-set condition of a rule: a lookup that must hit (want) or miss (!want); or, for a port
// group (ports OR named ports), several named-port lookups of which one must hit, or the numeric ranges.
type test struct {
	lookup uint8
	set    setRef
	want   bool
	// group: the named-port sets (lookup is LOOKUP_PORT_SRC/DST) and the numeric alternative.
	group     []setRef
	groupSrc  bool
	rangesAlt []portRange // nil: no numeric alternative
}

func (t test) isGroup() bool { return len(t.group) > 0 }

// stages is the number of lookups (steps) the test needs.
func (t test) stages() int {
	if t.isGroup() {
		return len(t.group)
	}
	return 1
}

// portProtos are the protocols whose ports k8s.p4 parses (policy_rule's src_port/dst_port are 0 for the
// others).
var portProtos = byteSetOf(model.ProtoTCP, model.ProtoUDP, model.ProtoSCTP)

// l4 is a rule's match on the fields policy_rule keys on, for one family.
type l4 struct {
	protos byteSet
	sports []portRange
	dports []portRange
	icmp   []icmpRect
}

func (a l4) empty() bool {
	return a.protos.empty() || len(a.sports) == 0 || len(a.dports) == 0 || len(a.icmp) == 0
}

func (a l4) equal(b l4) bool {
	if a.protos != b.protos || !slices.Equal(a.sports, b.sports) || !slices.Equal(a.dports, b.dports) ||
		len(a.icmp) != len(b.icmp) {
		return false
	}
	for i := range a.icmp {
		if a.icmp[i] != b.icmp[i] {
			return false
		}
	}
	return true
}

// variant is the L4 match of a rule for ip_version ipver (0: both families).
type variant struct {
	ipver uint8
	m     l4
	// pats caches patterns() once the variant is final (see compileRule).
	pats []pentry
}

// maxProduct bounds the entries of one rule variant: sport × dport products above it are refused (the
// rule keeps its ports in two chained steps instead; see doc.go).
const maxProduct = 64

// patterns expands a variant into entry templates (product of the covers). srcOnly/dstOnly restrict which
// port dimension is used (for chained port steps).
//
// The result may be shared: callers must not modify it.
func (v variant) patterns() []pentry {
	if v.pats != nil {
		return v.pats
	}
	protos := v.m.protos.cover()
	icmps := icmpCover(v.m.icmp)
	out := make([]pentry, 0, len(protos)*len(v.m.sports)*len(v.m.dports)*len(icmps))
	for _, p := range protos {
		for _, s := range v.m.sports {
			for _, d := range v.m.dports {
				for _, ic := range icmps {
					out = append(out, pentry{setHit: -1, ipver: v.ipver, proto: p, sport: s, dport: d,
						icmpType: ic.typ, icmpCode: ic.code})
				}
			}
		}
	}
	return out
}

// compiledRule is one rule after normalisation.
type compiledRule struct {
	index    int
	action   actKind
	tests    []test
	variants []variant
	// rangeVariants: the variants of the numeric alternative of the last test when it is a port group.
	rangeVariants []variant
	// preVariants: small L4 pre-checks added to chained (non-final) lookups to leave early.
	pre []variant
}

// compileRuleList compiles rules into a program.
func compileRuleList(rules []model.Rule, sets setInfo) *program {
	p := &program{}
	crs := make([]compiledRule, 0, len(rules))
	for i := range rules {
		cr, ok := compileRule(i, &rules[i], sets, p)
		if ok {
			crs = append(crs, cr)
		}
	}
	buildSteps(p, crs)
	addGuard(p, crs)
	for _, st := range p.steps {
		if !st.set.isZero() && !slices.Contains(p.sets, st.set) {
			p.sets = append(p.sets, st.set)
		}
	}
	return p
}

// ruleExists reports whether Felix renders the rule for family v (FilterRuleToIPVersion): the rule's
// ip_version must allow it, and every CIDR list (negated ones included) that is not empty must keep at
// least one CIDR of the family.
func ruleExists(r *model.Rule, v uint8) bool {
	if r.IPVersion != model.IPVersionAny && uint8(r.IPVersion) != v {
		return false
	}
	for _, nets := range [][]netip.Prefix{r.SrcNets, r.NotSrcNets, r.DstNets, r.NotDstNets} {
		if len(nets) == 0 {
			continue
		}
		keep := false
		for _, n := range nets {
			if n.Addr().Is4() == (v == 4) {
				keep = true
				break
			}
		}
		if !keep {
			return false
		}
	}
	return true
}

func toRanges(in []model.PortRange) []portRange {
	out := make([]portRange, 0, len(in))
	for _, r := range in {
		out = append(out, portRange{r.First, r.Last})
	}
	return normalizePorts(out)
}

func toICMP(m *model.ICMPMatch) *icmpMatch {
	if m == nil {
		return nil
	}
	return &icmpMatch{typ: m.Type, code: m.Code, hasCode: m.HasCode}
}

// compileRule normalises one rule; ok is false when the rule can never match (or is omitted as
// unsupported).
func compileRule(i int, r *model.Rule, sets setInfo, p *program) (compiledRule, bool) {
	cr := compiledRule{index: i}
	switch r.Action {
	case model.ActionAllow:
		cr.action = actAllow
	case model.ActionDeny:
		cr.action = actDeny
	case model.ActionNextTier:
		cr.action = actPass
	case model.ActionLog:
		cr.action = actLog
	default:
		return cr, false
	}
	e4, e6 := ruleExists(r, 4), ruleExists(r, 6)
	if !e4 && !e6 {
		return cr, false
	}

	// Unsupported parts. Fail-safe rendering: a deny rule is kept without the part it cannot evaluate
	// (it denies at least what Felix+L7 would); any other rule is omitted (never matches), which is what
	// Felix would do if it ignored the rule.
	var problems []string
	var features []Feature
	failsafe := func(f Feature, detail string) {
		problems = append(problems, detail)
		features = append(features, f)
	}
	if r.HTTPMatch != nil {
		failsafe(FeatureHTTPMatch, fmt.Sprintf("rule %d: HTTP match (methods %v, %d paths)", i,
			r.HTTPMatch.Methods, len(r.HTTPMatch.Paths)))
	}
	numericPorts := len(r.SrcPorts)+len(r.NotSrcPorts)+len(r.DstPorts)+len(r.NotDstPorts) > 0
	dropPorts := false
	if numericPorts && r.Protocol != nil && !portProtos.has(r.Protocol.Number) &&
		(r.Protocol.Number == model.ProtoUDPLite || r.Protocol.Number == 33 /* DCCP */) {
		failsafe(FeaturePortsOnProtocol, fmt.Sprintf("rule %d: ports on protocol %s", i, r.Protocol))
		dropPorts = true
	}

	// IP-set references: every set must exist with a type fitting where it is used. A dangling reference
	// is unsupported (fail-safe rendering below); a deny rule keeps its other conditions and treats the
	// dangling one as satisfied.
	var bad []string
	okAddr := func(id string) bool {
		t, ok := sets(id)
		if !ok || (t != model.IPSetTypeNet && t != model.IPSetTypeIP) {
			bad = append(bad, id)
			return false
		}
		return true
	}
	okPort := func(id string) bool {
		t, ok := sets(id)
		if !ok || t != model.IPSetTypeIPAndPort {
			bad = append(bad, id)
			return false
		}
		return true
	}
	var pos, neg []test
	if len(r.SrcNets) > 0 {
		pos = append(pos, test{lookup: p4src.LookupNetSrc, set: cidrSetRef(r.SrcNets), want: true})
	}
	if len(r.DstNets) > 0 {
		pos = append(pos, test{lookup: p4src.LookupNetDst, set: cidrSetRef(r.DstNets), want: true})
	}
	addTests := func(dst *[]test, ids []string, lookup uint8, want bool, ok func(string) bool) {
		for _, id := range ids {
			if ok(id) {
				*dst = append(*dst, test{lookup: lookup, set: setRef{felix: id}, want: want})
			}
		}
	}
	addTests(&pos, r.SrcIPSetIDs, p4src.LookupNetSrc, true, okAddr)
	addTests(&pos, r.DstIPSetIDs, p4src.LookupNetDst, true, okAddr)
	addTests(&pos, r.DstIPPortSetIDs, p4src.LookupPortDst, true, okPort)
	if len(r.NotSrcNets) > 0 {
		neg = append(neg, test{lookup: p4src.LookupNetSrc, set: cidrSetRef(r.NotSrcNets)})
	}
	if len(r.NotDstNets) > 0 {
		neg = append(neg, test{lookup: p4src.LookupNetDst, set: cidrSetRef(r.NotDstNets)})
	}
	addTests(&neg, r.NotSrcIPSetIDs, p4src.LookupNetSrc, false, okAddr)
	addTests(&neg, r.NotDstIPSetIDs, p4src.LookupNetDst, false, okAddr)
	addTests(&neg, r.NotSrcNamedPortIPSetIDs, p4src.LookupPortSrc, false, okPort)
	addTests(&neg, r.NotDstNamedPortIPSetIDs, p4src.LookupPortDst, false, okPort)

	srcPorts, dstPorts := toRanges(r.SrcPorts), toRanges(r.DstPorts)
	notSrcPorts, notDstPorts := toRanges(r.NotSrcPorts), toRanges(r.NotDstPorts)
	if dropPorts {
		srcPorts, dstPorts, notSrcPorts, notDstPorts = nil, nil, nil, nil
	}
	// Port groups: numeric ranges OR named ports (any matches). A group with a dangling named-port set
	// is dropped whole (treated as satisfied: fail-safe for deny; other rules are omitted anyway).
	var groups []test
	srcInL4, dstInL4 := srcPorts, dstPorts
	group := func(ids []string, ranges []portRange, src bool) (g *test, dropped bool) {
		if len(ids) == 0 {
			return nil, false
		}
		t := test{lookup: p4src.LookupPortDst, groupSrc: src, rangesAlt: ranges}
		if src {
			t.lookup = p4src.LookupPortSrc
		}
		allOK := true
		for _, id := range ids {
			if okPort(id) {
				t.group = append(t.group, setRef{felix: id})
			} else {
				allOK = false
			}
		}
		if !allOK {
			return nil, true
		}
		t.group = dedupeRefs(t.group)
		return &t, false
	}
	if g, dropped := group(r.SrcNamedPortIPSetIDs, srcPorts, true); dropped {
		srcInL4 = nil
	} else if g != nil {
		groups = append(groups, *g)
		srcInL4 = nil
	}
	if g, dropped := group(r.DstNamedPortIPSetIDs, dstPorts, false); dropped {
		dstInL4 = nil
	} else if g != nil {
		groups = append(groups, *g)
		dstInL4 = nil
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		failsafe(FeatureDanglingIPSet, fmt.Sprintf("rule %d: IP sets %s missing or of the wrong type", i,
			strings.Join(slices.Compact(bad), ", ")))
	}

	// Report, and apply the fail-safe rendering.
	if len(features) > 0 {
		rendering := "rule omitted (never matches)"
		if cr.action == actDeny {
			rendering = "deny rule kept without the unsupported match (denies a superset)"
		}
		for k, f := range features {
			p.issues = append(p.issues, ruleIssue{rule: i, feature: f, detail: problems[k], rendering: rendering})
		}
		if cr.action != actDeny {
			return cr, false
		}
	}

	tests := append(append(dedupeTests(pos), dedupeTests(neg)...), groups...)
	// A set that must both hit and miss: the rule never matches.
	for _, a := range tests {
		for _, b := range tests {
			if !a.isGroup() && !b.isGroup() && a.lookup == b.lookup && a.set == b.set && a.want != b.want {
				return cr, false
			}
		}
	}
	cr.tests = tests

	// L4 variants per family.
	var icmpPos, icmpNeg = toICMP(r.ICMP), toICMP(r.NotICMP)
	mk := func(v uint8, sports, dports []portRange, needPorts bool) (l4, bool) {
		m := l4{protos: fullByteSet(), sports: fullPorts, dports: fullPorts}
		if r.Protocol != nil {
			m.protos = byteSetOf(r.Protocol.Number)
		}
		if r.NotProtocol != nil {
			m.protos = m.protos.without(r.NotProtocol.Number)
		}
		if needPorts || len(sports) > 0 || len(dports) > 0 || len(notSrcPorts) > 0 || len(notDstPorts) > 0 {
			m.protos = m.protos.and(portProtos)
		}
		if icmpPos != nil || icmpNeg != nil {
			ip := model.ProtoICMP
			if v == 6 {
				ip = model.ProtoICMPv6
			}
			m.protos = m.protos.and(byteSetOf(ip))
		}
		if len(sports) > 0 {
			m.sports = sports
		}
		if len(dports) > 0 {
			m.dports = dports
		}
		m.sports = subtractPorts(m.sports, notSrcPorts)
		m.dports = subtractPorts(m.dports, notDstPorts)
		m.icmp = icmpSet(icmpPos, icmpNeg)
		return m, !m.empty()
	}
	variantsOf := func(sports, dports []portRange, needPorts bool) []variant {
		var vs []variant
		var m4, m6 l4
		ok4, ok6 := false, false
		if e4 {
			m4, ok4 = mk(4, sports, dports, needPorts)
		}
		if e6 {
			m6, ok6 = mk(6, sports, dports, needPorts)
		}
		switch {
		case ok4 && ok6 && m4.equal(m6):
			vs = append(vs, variant{ipver: 0, m: m4})
		default:
			if ok4 {
				vs = append(vs, variant{ipver: 4, m: m4})
			}
			if ok6 {
				vs = append(vs, variant{ipver: 6, m: m6})
			}
		}
		return vs
	}
	cr.variants = variantsOf(srcInL4, dstInL4, false)
	if len(tests) > 0 {
		last := tests[len(tests)-1]
		if last.isGroup() && last.rangesAlt != nil {
			if last.groupSrc {
				cr.rangeVariants = variantsOf(last.rangesAlt, dstInL4, true)
			} else {
				cr.rangeVariants = variantsOf(srcInL4, last.rangesAlt, true)
			}
		}
	}
	// Could the rule match at all? Through the main variants, or the last group's numeric alternative.
	if len(cr.variants) == 0 && len(cr.rangeVariants) == 0 {
		return cr, false
	}
	// Keep port products bounded (see maxProduct). Only the main variants can have both dimensions
	// restricted by lists: a port group takes its dimension out of them.
	for _, v := range cr.variants {
		if len(v.m.sports)*len(v.m.dports) > maxProduct {
			splitPorts(&cr)
			break
		}
	}
	// The variants are final: compute their patterns once.
	for i := range cr.variants {
		cr.variants[i].pats = cr.variants[i].patterns()
	}
	for i := range cr.rangeVariants {
		cr.rangeVariants[i].pats = cr.rangeVariants[i].patterns()
	}
	// An early-exit pre-check for chained lookups, when it is cheap.
	n := 0
	for _, v := range cr.variants {
		n += len(v.patterns())
	}
	if n > 0 && n <= 4 {
		cr.pre = cr.variants
	}
	return cr, true
}

// splitPorts moves a rule's source port ranges into a test of their own (a LOOKUP_NONE step whose entries
// are the ranges), so that the final step holds |dport ranges| entries instead of |sport| × |dport|. The
// source ranges are the same for both families (port constraints do not depend on the family).
func splitPorts(cr *compiledRule) {
	sports := cr.variants[0].m.sports
	for i := range cr.variants {
		cr.variants[i].m.sports = fullPorts
	}
	tests := []test{{lookup: p4src.LookupNone, want: true, rangesAlt: sports}}
	if len(cr.tests) == 0 {
		// A condition-free last test holds the final entries.
		cr.tests = append(tests, test{lookup: p4src.LookupNone, want: true})
		return
	}
	cr.tests = append(tests, cr.tests...)
}

func dedupeTests(ts []test) []test {
	var out []test
	for _, t := range ts {
		dup := false
		for _, o := range out {
			if o.lookup == t.lookup && o.set == t.set && o.want == t.want {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, t)
		}
	}
	return out
}

func dedupeRefs(rs []setRef) []setRef {
	var out []setRef
	for _, r := range rs {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// Priorities: the entries of rule i have priority prioBase - i, so earlier rules win within a step.
const prioBase = 1 << 24

// builder lays rules out in steps (see doc.go, "Policy encoding").
type builder struct {
	p *program
}

func (b *builder) newStep() int {
	b.p.steps = append(b.p.steps, pstep{miss: -1})
	return len(b.p.steps) - 1
}

func (b *builder) st(i int) *pstep { return &b.p.steps[i] }

// compatible reports whether a lookup can run in step i (whose earlier entries ignore set_hit when it has
// no lookup yet).
func (b *builder) compatible(i int, lookup uint8, set setRef) bool {
	s := b.st(i)
	return s.lookup == p4src.LookupNone && s.set.isZero() || s.lookup == lookup && s.set == set
}

func buildSteps(p *program, crs []compiledRule) {
	b := &builder{p: p}
	open := b.newStep()
	for _, cr := range crs {
		prio := int32(prioBase - cr.index)
		hasEntries := false
		// emit adds the rule's action entries for variants to step s.
		emit := func(s int, vs []variant, setHit int8, next int) {
			for _, v := range vs {
				for _, e := range v.patterns() {
					e.prio, e.setHit, e.act, e.rule, e.next = prio, setHit, cr.action, cr.index, next
					b.st(s).ents = append(b.st(s).ents, e)
					hasEntries = true
				}
			}
		}
		// final emits the rule's action entries in step s, whose lookup is the rule's last test.
		final := func(s int, t *test, first bool, next int) {
			switch {
			case t == nil || t.lookup == p4src.LookupNone:
				emit(s, cr.variants, -1, next)
			case t.isGroup():
				emit(s, cr.variants, 1, next)
				if first && t.rangesAlt != nil {
					emit(s, cr.rangeVariants, -1, next)
				}
			case t.want:
				emit(s, cr.variants, 1, next)
			default:
				emit(s, cr.variants, 0, next)
			}
		}

		// Lay out the tests' stages: one step each; the first may share the open step.
		type stage struct {
			t     *test
			alt   int // group alternative
			step  int
			first bool // first stage of its test
			last  bool // a stage of the last test
		}
		var stages []stage
		for ti := range cr.tests {
			t := &cr.tests[ti]
			for a := 0; a < t.stages(); a++ {
				stages = append(stages, stage{t: t, alt: a, first: a == 0, last: ti == len(cr.tests)-1})
			}
		}
		lookupOf := func(sg stage) (uint8, setRef) {
			if sg.t.isGroup() {
				return sg.t.lookup, sg.t.group[sg.alt]
			}
			return sg.t.lookup, sg.t.set
		}

		// A rule with no lookup, or one lookup that is its last test, joins the open step: when it does
		// not match, the entries of the rules after it in the same step are tried next.
		if len(stages) <= 1 && cr.action != actLog {
			var t *test
			if len(stages) == 1 {
				l, st := lookupOf(stages[0])
				if !b.compatible(open, l, st) {
					nx := b.newStep()
					b.st(open).miss = nx
					open = nx
				}
				b.st(open).lookup, b.st(open).set = l, st
				t = stages[0].t
			}
			final(open, t, true, 0)
			if hasEntries {
				p.rules = append(p.rules, cr.index)
			}
			continue
		}

		// Otherwise the rule ends the open step: its first lookup shares the open step, the others get
		// steps of their own, and every failure (and a log rule's continuation) goes to a new step holding
		// the rules after it.
		if len(stages) > 0 {
			l0, s0 := lookupOf(stages[0])
			if !b.compatible(open, l0, s0) {
				nx := b.newStep()
				b.st(open).miss = nx
				open = nx
			}
			stages[0].step = open
			b.st(open).lookup, b.st(open).set = l0, s0
			for k := 1; k < len(stages); k++ {
				stages[k].step = b.newStep()
				l, st := lookupOf(stages[k])
				b.st(stages[k].step).lookup, b.st(stages[k].step).set = l, st
			}
		}
		next := b.newStep()
		if len(stages) == 0 {
			// A log rule without lookups.
			final(open, nil, true, next)
			b.st(open).miss = next
		}
		for k, sg := range stages {
			s := sg.step
			fail := next
			if sg.t.isGroup() && sg.alt+1 < sg.t.stages() {
				fail = stages[k+1].step
			}
			b.st(s).miss = fail
			if sg.last {
				final(s, sg.t, sg.first, next)
				continue
			}
			succ := -1
			for j := k + 1; j < len(stages); j++ {
				if stages[j].first {
					succ = stages[j].step
					break
				}
			}
			switch {
			case sg.t.lookup == p4src.LookupNone:
				// The split source-port test.
				for _, r := range sg.t.rangesAlt {
					b.st(s).ents = append(b.st(s).ents, pentry{prio: prio, setHit: -1, sport: r,
						dport: portRange{0, 65535}, act: actGoto, rule: cr.index, next: succ})
				}
			case sg.t.isGroup():
				emitGoto(b, s, cr, prio, 1, succ)
				if sg.first && sg.t.rangesAlt != nil {
					for _, r := range sg.t.rangesAlt {
						for _, pp := range portProtos.cover() {
							e := pentry{prio: prio, setHit: -1, proto: pp, sport: portRange{0, 65535},
								dport: portRange{0, 65535}, act: actGoto, rule: cr.index, next: succ}
							if sg.t.groupSrc {
								e.sport = r
							} else {
								e.dport = r
							}
							b.st(s).ents = append(b.st(s).ents, e)
						}
					}
				}
			case sg.t.want:
				emitGoto(b, s, cr, prio, 1, succ)
			default:
				emitGoto(b, s, cr, prio, 0, succ)
			}
		}
		if hasEntries {
			p.rules = append(p.rules, cr.index)
		}
		open = next
	}
}

// maxGuard bounds the entries of a policy's guard step.
const maxGuard = 16

// addGuard puts a guard step in front of a program of several steps whose rules all restrict the fields
// policy_rule keys on (protocol, ports, ICMP, IP version): the union of the rules' L4 patterns, which any
// matching packet must match, continues to the program; anything else leaves the policy at once (no
// match). A flow the policy cannot concern then costs one pass instead of a walk of every step (Kubernetes
// policies mostly name their ports), at the price of one more pass for the flows it may concern.
func addGuard(p *program, crs []compiledRule) {
	if len(p.steps) < 3 || len(crs) == 0 {
		return
	}
	// The union of the patterns, destination port ranges merged per (family, protocol, source ports, ICMP).
	type group struct {
		ipver      uint8
		proto      pattern8
		sport      portRange
		itype, ico pattern8
	}
	dports := map[group][]portRange{}
	var order []group
	for _, cr := range crs {
		for _, v := range cr.variants {
			if v.m.protos.count() == 256 && v.m.sports[0] == (portRange{0, 65535}) &&
				len(v.m.sports) == 1 && len(v.m.dports) == 1 && v.m.dports[0] == (portRange{0, 65535}) &&
				len(v.m.icmp) == 1 && v.m.icmp[0].types.count() == 256 && v.m.icmp[0].codes.count() == 256 {
				return // a rule that can match any packet (of a family): a guard would not help
			}
			for _, e := range v.patterns() {
				g := group{e.ipver, e.proto, e.sport, e.icmpType, e.icmpCode}
				if _, ok := dports[g]; !ok {
					order = append(order, g)
				}
				dports[g] = append(dports[g], e.dport)
			}
		}
	}
	var guard []pentry
	for _, g := range order {
		for _, d := range normalizePorts(dports[g]) {
			guard = append(guard, pentry{prio: prioBase + 1, setHit: -1, ipver: g.ipver, proto: g.proto, sport: g.sport,
				dport: d, icmpType: g.itype, icmpCode: g.ico, act: actGoto, rule: -1, next: 1})
			if len(guard) > maxGuard {
				return
			}
		}
	}
	// Shift the program by one step and put the guard first.
	for i := range p.steps {
		st := &p.steps[i]
		if st.miss >= 0 {
			st.miss++
		}
		for j := range st.ents {
			if st.ents[j].act == actLog || st.ents[j].act == actGoto {
				st.ents[j].next++
			}
		}
	}
	p.steps = slices.Insert(p.steps, 0, pstep{lookup: p4src.LookupNone, miss: -1, ents: guard})
}

// emitGoto adds the success entries of a chained (non-final) lookup: set_hit as wanted, plus the rule's
// cheap L4 pre-check when it has one.
func emitGoto(b *builder, s int, cr compiledRule, prio int32, hit int8, succ int) {
	if len(cr.pre) == 0 {
		b.st(s).ents = append(b.st(s).ents, pentry{prio: prio, setHit: hit, sport: portRange{0, 65535},
			dport: portRange{0, 65535}, act: actGoto, rule: cr.index, next: succ})
		return
	}
	for _, v := range cr.pre {
		for _, e := range v.patterns() {
			e.prio, e.setHit, e.act, e.rule, e.next = prio, hit, actGoto, cr.index, succ
			b.st(s).ents = append(b.st(s).ents, e)
		}
	}
}

// longestWalk is the largest number of steps a packet can visit in the program (passes of the pipeline).
func (p *program) longestWalk() int {
	n := len(p.steps)
	depth := make([]int, n)
	for i := n - 1; i >= 0; i-- {
		d := 1
		st := &p.steps[i]
		visit := func(t int) {
			if t > i && t < n && 1+depth[t] > d {
				d = 1 + depth[t]
			}
		}
		visit(st.miss)
		for _, e := range st.ents {
			if e.act == actLog || e.act == actGoto {
				visit(e.next)
			}
		}
		depth[i] = d
	}
	if n == 0 {
		return 0
	}
	return depth[0]
}
