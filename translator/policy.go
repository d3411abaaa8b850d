package translator

import (
	"strconv"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// Directions of a rule list.
const (
	dirIn  = "in"
	dirOut = "out"
)

// progUnit owns the entries of one compiled rule list: a policy's or profile's inbound or outbound rules,
// or a synthetic list (failsafe ports).
//
// Make-before-break: its steps are named after the program's content, "<owner>@<version>/<i>" with version
// a hash of the program's entries (step ids written as their positions), so a changed program gets new step
// ids. Its new entries are written beside the old ones, the lists that run it switch to the new first step
// (one MODIFY of a policy_list entry per list), and the old version's entries are deleted — in that order by
// the programmer's write order (p4src.WriteOrder). A walk that entered the old version stays in it (steps
// only lead to steps of their own version); it never sees half of each. Rule ids ("<owner>/<rule index>",
// they key the per-rule counters), set ids and list ids do not depend on the version.
type progUnit struct {
	*unit
	prog    *program
	version uint64
	walk    int // prog.longestWalk()
	// names held in the id spaces (released on replace/removal).
	stepNames, ruleNames, setNames []string
	cidrSets                       []string // derived CIDR sets referenced (refcounted units)
	feliSets                       []string // Felix sets the steps look up
	refSets                        []string // every Felix set the rules name (re-translation on change)
	issues                         []Unsupported
}

// progOwner names the program of an object and direction.
func policyOwner(k model.PolicyKey, dir string) string {
	return "pol/" + k.Tier + "/" + k.Name + "/" + dir
}
func profileOwner(name, dir string) string { return "prof/" + name + "/" + dir }

// firstStep is the name of a program's entry step.
func firstStep(owner string) string { return owner + "/0" }

// translateProgram (re)compiles rules into the unit owned by owner. what is the human name used in
// reports ("policy default/x", "profile y").
func (t *Translator) translateProgram(owner, what string, rules []model.Rule) {
	pu := t.progs[owner]
	existed, oldWalk := pu != nil, 1
	if pu == nil {
		pu = &progUnit{unit: newUnit(owner)}
		t.progs[owner] = pu
	} else {
		oldWalk = pu.walk
	}
	prog := compileRuleList(rules, t.setInfo)
	pu.prog = prog
	pu.walk = prog.longestWalk()
	defer t.programChanged(owner, existed, oldWalk)

	oldSteps, oldRules, oldSets, oldCIDR, oldFelix := pu.stepNames, pu.ruleNames, pu.setNames, pu.cidrSets, pu.feliSets
	pu.ruleNames = pu.ruleNames[:0:0]
	ruleIDs := map[int]uint32{}
	for _, r := range prog.rules {
		name := owner + "/" + strconv.Itoa(r)
		pu.ruleNames = append(pu.ruleNames, name)
		ruleIDs[r] = t.acquire(t.ids.rule, name)
	}
	pu.setNames, pu.cidrSets, pu.feliSets = nil, nil, nil
	setIDs := map[setRef]uint32{}
	for _, s := range prog.sets {
		name := s.idName()
		pu.setNames = append(pu.setNames, name)
		setIDs[s] = t.acquire(t.ids.set, name)
		if s.cidrs != "" {
			pu.cidrSets = append(pu.cidrSets, s.cidrs)
			t.refCIDRSet(s.cidrs)
		} else {
			pu.feliSets = append(pu.feliSets, s.felix)
		}
	}
	// Every Felix set the rules name, usable or not (missing): a later IPSetUpdate, IPSetRemove or type
	// change re-translates this program.
	oldRefs := pu.refSets
	pu.refSets = referencedSets(rules)
	t.indexSetUsers(owner, oldRefs, pu.refSets)
	_ = oldFelix

	pu.version = programVersion(prog, setIDs, ruleIDs)
	stepIDs := make([]uint32, len(prog.steps))
	oldFirst := ""
	if len(oldSteps) > 0 {
		oldFirst = oldSteps[0]
	}
	pu.stepNames = make([]string, len(prog.steps))
	for i := range prog.steps {
		pu.stepNames[i] = versionedStep(owner, pu.version, i)
		stepIDs[i] = t.acquire(t.ids.step, pu.stepNames[i])
	}
	pu.replace(t.st, renderProgram(prog, stepIDs, setIDs, ruleIDs))
	if pu.stepNames[0] != oldFirst {
		// The lists that run the program switch to its new first step.
		t.rerenderListsOf(owner)
	}

	pu.issues = pu.issues[:0:0]
	for _, iss := range prog.issues {
		pu.issues = append(pu.issues, Unsupported{Feature: iss.feature, Owner: what, Detail: iss.detail,
			Rendering: iss.rendering})
	}

	// Release the names of the previous version (after acquiring the new ones: no churn for the names
	// both versions hold).
	for _, n := range oldSteps {
		t.release(t.ids.step, n)
	}
	for _, n := range oldRules {
		t.release(t.ids.rule, n)
	}
	for _, n := range oldSets {
		t.release(t.ids.set, n)
	}
	for _, c := range oldCIDR {
		t.unrefCIDRSet(c)
	}
}

// renderProgram renders a compiled program's policy_step, policy_rule and policy_rule_stats entries.
func renderProgram(prog *program, stepIDs []uint32, setIDs map[setRef]uint32, ruleIDs map[int]uint32) []entry.Entry {
	n := len(prog.steps) + len(prog.rules)
	for _, st := range prog.steps {
		n += len(st.ents)
	}
	ents := make([]entry.Entry, 0, n)
	stepID := func(i int) uint32 {
		if i < 0 {
			return 0
		}
		return stepIDs[i]
	}
	for i, st := range prog.steps {
		var setID uint32
		if !st.set.isZero() {
			setID = setIDs[st.set]
		}
		ents = append(ents, tableEntry(p4src.TablePolicyStep, 0,
			act(p4src.ActionRunStep,
				param(p4src.ParamRunStepLookup, u(uint64(st.lookup))),
				param(p4src.ParamRunStepSetID, u(uint64(setID))),
				param(p4src.ParamRunStepMissStep, u(uint64(stepID(st.miss))))),
			exact(p4src.KeyPolicyStepStepID, u(uint64(stepIDs[i])))))
		for _, e := range st.ents {
			ents = append(ents, ruleEntry(stepIDs[i], e, ruleIDs[e.rule], stepID(e.next)))
		}
	}
	for _, r := range prog.rules {
		ents = append(ents, tableEntry(p4src.TablePolicyRuleStats, 0, act(p4src.ActionCountRule),
			exact(p4src.KeyPolicyRuleStatsRuleID, u(uint64(ruleIDs[r])))))
	}
	return ents
}

// versionedStep names step i of version v of a program.
func versionedStep(owner string, v uint64, i int) string {
	return owner + "@" + strconv.FormatUint(v, 16) + "/" + strconv.Itoa(i)
}

// entryStep is the name of the step the lists running owner's program enter it by: the first step of its
// current version, or, while the program does not exist, the stable placeholder "<owner>/0" (an id without a
// policy_step entry: the walk ends in step_missing, a deny — fail closed).
func (t *Translator) entryStep(owner string) string {
	if pu := t.progs[owner]; pu != nil && len(pu.stepNames) > 0 {
		return pu.stepNames[0]
	}
	return firstStep(owner)
}

// programVersion is a 64-bit FNV-1a hash of everything renderProgram renders a program's entries from
// except the step ids (a step is named by its position): programs with equal versions have equal entries
// once their steps are given ids, so a program's version changes whenever any of its entries would.
func programVersion(prog *program, setIDs map[setRef]uint32, ruleIDs map[int]uint32) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	add := func(v uint64) {
		for i := 0; i < 8; i++ {
			h ^= v & 0xff
			h *= prime
			v >>= 8
		}
	}
	add(uint64(len(prog.steps)))
	for _, st := range prog.steps {
		var setID uint32
		if !st.set.isZero() {
			setID = setIDs[st.set]
		}
		add(uint64(st.lookup))
		add(uint64(setID))
		add(uint64(int64(st.miss)))
		add(uint64(len(st.ents)))
		for _, e := range st.ents {
			add(uint64(int64(e.prio)))
			add(uint64(int64(e.setHit)))
			add(uint64(e.ipver))
			add(uint64(e.proto.value)<<8 | uint64(e.proto.mask))
			add(uint64(e.sport.lo)<<16 | uint64(e.sport.hi))
			add(uint64(e.dport.lo)<<16 | uint64(e.dport.hi))
			add(uint64(e.icmpType.value)<<8 | uint64(e.icmpType.mask))
			add(uint64(e.icmpCode.value)<<8 | uint64(e.icmpCode.mask))
			add(uint64(e.act))
			add(uint64(ruleIDs[e.rule]))
			add(uint64(int64(e.next)))
		}
	}
	add(uint64(len(prog.rules)))
	for _, r := range prog.rules {
		add(uint64(ruleIDs[r]))
	}
	return h
}

// removeProgram deletes a program unit.
func (t *Translator) removeProgram(owner string) {
	pu := t.progs[owner]
	if pu == nil {
		return
	}
	pu.clear(t.st)
	delete(t.progs, owner)
	t.rerenderListsOf(owner) // back to the placeholder: fail closed
	for _, n := range pu.stepNames {
		t.release(t.ids.step, n)
	}
	for _, n := range pu.ruleNames {
		t.release(t.ids.rule, n)
	}
	for _, n := range pu.setNames {
		t.release(t.ids.set, n)
	}
	for _, c := range pu.cidrSets {
		t.unrefCIDRSet(c)
	}
	t.indexSetUsers(owner, pu.refSets, nil)
	t.programChanged(owner, true, pu.walk)
}

// ruleEntry renders one policy_rule entry.
func ruleEntry(step uint32, e pentry, ruleID, next uint32) entry.Entry {
	ms := make([]entry.Match, 0, 8)
	ms = append(ms, exact(p4src.KeyPolicyRuleStepID, u(uint64(step))))
	if e.setHit >= 0 {
		ms = append(ms, optional(p4src.KeyPolicyRuleSetHit, u(uint64(e.setHit))))
	}
	if e.ipver != 0 {
		ms = append(ms, optional(p4src.KeyPolicyRuleIPVersion, u(uint64(e.ipver))))
	}
	if e.proto.mask != 0 {
		ms = append(ms, ternary(p4src.KeyPolicyRuleProtocol, u(uint64(e.proto.value)), u(uint64(e.proto.mask))))
	}
	if e.sport != (portRange{0, 65535}) {
		ms = append(ms, rangeMatch(p4src.KeyPolicyRuleSrcPort, u(uint64(e.sport.lo)), u(uint64(e.sport.hi))))
	}
	if e.dport != (portRange{0, 65535}) {
		ms = append(ms, rangeMatch(p4src.KeyPolicyRuleDstPort, u(uint64(e.dport.lo)), u(uint64(e.dport.hi))))
	}
	if e.icmpType.mask != 0 {
		ms = append(ms, ternary(p4src.KeyPolicyRuleICMPType, u(uint64(e.icmpType.value)), u(uint64(e.icmpType.mask))))
	}
	if e.icmpCode.mask != 0 {
		ms = append(ms, ternary(p4src.KeyPolicyRuleICMPCode, u(uint64(e.icmpCode.value)), u(uint64(e.icmpCode.mask))))
	}
	var a entry.Action
	switch e.act {
	case actAllow:
		a = act(p4src.ActionRuleAllow, param(p4src.ParamRuleAllowRuleID, u(uint64(ruleID))))
	case actDeny:
		a = act(p4src.ActionRuleDeny, param(p4src.ParamRuleDenyRuleID, u(uint64(ruleID))))
	case actPass:
		a = act(p4src.ActionRulePass, param(p4src.ParamRulePassRuleID, u(uint64(ruleID))))
	case actLog:
		a = act(p4src.ActionRuleLog, param(p4src.ParamRuleLogRuleID, u(uint64(ruleID))),
			param(p4src.ParamRuleLogNextStep, u(uint64(next))))
	case actGoto:
		a = act(p4src.ActionRuleGoto, param(p4src.ParamRuleGotoNextStep, u(uint64(next))))
	}
	return tableEntry(p4src.TablePolicyRule, e.prio, a, ms...)
}

// referencedSets lists every Felix IP set id the rules name, without duplicates.
func referencedSets(rules []model.Rule) []string {
	seen := map[string]bool{}
	var out []string
	for i := range rules {
		r := &rules[i]
		for _, l := range [][]string{r.SrcIPSetIDs, r.NotSrcIPSetIDs, r.DstIPSetIDs, r.NotDstIPSetIDs,
			r.SrcNamedPortIPSetIDs, r.NotSrcNamedPortIPSetIDs, r.DstNamedPortIPSetIDs, r.NotDstNamedPortIPSetIDs,
			r.DstIPPortSetIDs} {
			for _, id := range l {
				if !seen[id] {
					seen[id] = true
					out = append(out, id)
				}
			}
		}
	}
	return out
}
