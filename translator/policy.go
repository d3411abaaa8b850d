package translator

import (
	"slices"
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
	t.translateCompiled(owner, what, rules, compileRuleList(rules, t.setInfo))
}

// translateCompiled is translateProgram with rules already compiled into prog.
func (t *Translator) translateCompiled(owner, what string, rules []model.Rule, prog *program) {
	pu := t.progs[owner]
	existed, oldWalk := pu != nil, 1
	if pu == nil {
		pu = &progUnit{unit: newUnit(owner)}
		t.progs[owner] = pu
	} else {
		oldWalk = pu.walk
	}
	pu.prog = prog
	pu.walk = prog.longestWalk()
	defer t.programChanged(owner, existed, oldWalk)

	oldSteps, oldRules, oldSets, oldCIDR, oldFelix := pu.stepNames, pu.ruleNames, pu.setNames, pu.cidrSets, pu.feliSets
	pu.ruleNames = numberedNames(owner+"/", len(prog.rules), func(i int) int { return prog.rules[i] })
	ruleIDs := make([]uint32, len(rules)) // by rule index; 0 for rules without entries (never read)
	for i, r := range prog.rules {
		ruleIDs[r] = t.acquire(t.ids.rule, pu.ruleNames[i])
	}
	pu.setNames, pu.cidrSets, pu.feliSets = make([]string, 0, len(prog.sets)), nil, nil
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
	pu.stepNames = numberedNames(versionPrefix(owner, pu.version), len(prog.steps), func(i int) int { return i })
	for i := range prog.steps {
		stepIDs[i] = t.acquire(t.ids.step, pu.stepNames[i])
	}
	ents := renderProgram(t.progEnts[:0], prog, stepIDs, setIDs, ruleIDs)
	pu.replace(t.st, ents)
	clear(ents) // scratch space: must not keep the entries' slabs alive
	t.progEnts = ents[:0]
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

// renderProgram renders a compiled program's policy_step, policy_rule and policy_rule_stats entries. A
// program's entries are replaced together, so their match fields, params and id bytes are cut from a few
// slabs of their own (a handful of allocations per program instead of several per entry).
//
// The entries are appended to ents (scratch space the caller may reuse once it has stored them).
func renderProgram(ents []entry.Entry, prog *program, stepIDs []uint32, setIDs map[setRef]uint32, ruleIDs []uint32) []entry.Entry {
	n, nm, np := len(prog.steps)+len(prog.rules), len(prog.steps)+len(prog.rules), 3*len(prog.steps)
	for _, st := range prog.steps {
		n += len(st.ents)
		for i := range st.ents {
			nm += st.ents[i].matchCount()
			np += 2
		}
	}
	ents = slices.Grow(ents, n)
	ms := make([]entry.Match, nm)
	ps := make([]entry.Param, np)
	take := func(k int) []entry.Match {
		r := ms[:0:k]
		ms = ms[k:]
		return r
	}
	takeP := func(k int) []entry.Param {
		r := ps[:k:k]
		ps = ps[k:]
		return r
	}
	// The canonical bytes of every id, once.
	ids := &idBytes{}
	stepB := make([][]byte, len(stepIDs))
	for i, id := range stepIDs {
		stepB[i] = ids.of(id)
	}
	stepOf := func(i int) []byte {
		if i < 0 {
			return u(0)
		}
		return stepB[i]
	}
	ruleB := make([][]byte, len(ruleIDs))
	for r := range ruleB {
		ruleB[r] = u(0)
	}
	for _, r := range prog.rules {
		ruleB[r] = ids.of(ruleIDs[r])
	}
	for i, st := range prog.steps {
		var setID uint32
		if !st.set.isZero() {
			setID = setIDs[st.set]
		}
		p := takeP(3)
		p[0] = param(p4src.ParamRunStepLookup, u(uint64(st.lookup)))
		p[1] = param(p4src.ParamRunStepMissStep, stepOf(st.miss))
		p[2] = param(p4src.ParamRunStepSetID, ids.of(setID))
		ents = append(ents, tableEntry(p4src.TablePolicyStep, 0, act(p4src.ActionRunStep, p...),
			append(take(1), exact(p4src.KeyPolicyStepStepID, stepB[i]))...))
		for _, e := range st.ents {
			rule := u(0)
			if e.rule >= 0 {
				rule = ruleB[e.rule]
			}
			ents = append(ents, ruleEntry(stepB[i], e, rule, stepOf(e.next), take(e.matchCount()), takeP))
		}
	}
	for _, r := range prog.rules {
		ents = append(ents, tableEntry(p4src.TablePolicyRuleStats, 0, act(p4src.ActionCountRule),
			append(take(1), exact(p4src.KeyPolicyRuleStatsRuleID, ruleB[r]))...))
	}
	return ents
}

// idBytes renders 32-bit ids as canonical byte strings cut from one buffer.
type idBytes struct{ buf []byte }

func (b *idBytes) of(id uint32) []byte {
	if id < 256 {
		return u(uint64(id))
	}
	if cap(b.buf)-len(b.buf) < 4 {
		b.buf = make([]byte, 0, 256)
	}
	l := len(b.buf)
	switch {
	case id >= 1<<24:
		b.buf = append(b.buf, byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<16:
		b.buf = append(b.buf, byte(id>>16), byte(id>>8), byte(id))
	default:
		b.buf = append(b.buf, byte(id>>8), byte(id))
	}
	return b.buf[l:len(b.buf):len(b.buf)]
}

// numberedNames returns the count names prefix + num(i), cut from one string (the names of a program are
// acquired and released together).
func numberedNames(prefix string, count int, num func(i int) int) []string {
	if count == 0 {
		return nil
	}
	buf := make([]byte, 0, count*(len(prefix)+3))
	ends := make([]int, count)
	for i := range count {
		buf = append(buf, prefix...)
		buf = strconv.AppendInt(buf, int64(num(i)), 10)
		ends[i] = len(buf)
	}
	all := string(buf)
	out := make([]string, count)
	start := 0
	for i, end := range ends {
		out[i] = all[start:end]
		start = end
	}
	return out
}

// versionedStep names step i of version v of a program.
func versionedStep(owner string, v uint64, i int) string {
	return versionPrefix(owner, v) + strconv.Itoa(i)
}

// versionPrefix is the common prefix of the step names of version v of a program: "<owner>@<v in hex>/".
func versionPrefix(owner string, v uint64) string {
	return owner + "@" + strconv.FormatUint(v, 16) + "/"
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
func programVersion(prog *program, setIDs map[setRef]uint32, ruleIDs []uint32) uint64 {
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
			var rule uint32
			if e.rule >= 0 {
				rule = ruleIDs[e.rule]
			}
			add(uint64(rule))
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

// matchCount is the number of match fields of e's policy_rule entry.
func (e *pentry) matchCount() int {
	n := 1
	if e.setHit >= 0 {
		n++
	}
	if e.ipver != 0 {
		n++
	}
	if e.proto.mask != 0 {
		n++
	}
	if e.sport != (portRange{0, 65535}) {
		n++
	}
	if e.dport != (portRange{0, 65535}) {
		n++
	}
	if e.icmpType.mask != 0 {
		n++
	}
	if e.icmpCode.mask != 0 {
		n++
	}
	return n
}

// ruleEntry renders one policy_rule entry: step, ruleID and next are canonical byte strings; its match
// fields are appended to ms (room for e.matchCount()), its params taken from params.
func ruleEntry(step []byte, e pentry, ruleID, next []byte, ms []entry.Match, params func(int) []entry.Param) entry.Entry {
	ms = append(ms, exact(p4src.KeyPolicyRuleStepID, step))
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
	one := func(n p4src.ParamName, v []byte) []entry.Param {
		p := params(1)
		p[0] = param(n, v)
		return p
	}
	var a entry.Action
	switch e.act {
	case actAllow:
		a = act(p4src.ActionRuleAllow, one(p4src.ParamRuleAllowRuleID, ruleID)...)
	case actDeny:
		a = act(p4src.ActionRuleDeny, one(p4src.ParamRuleDenyRuleID, ruleID)...)
	case actPass:
		a = act(p4src.ActionRulePass, one(p4src.ParamRulePassRuleID, ruleID)...)
	case actLog:
		p := params(2)
		p[0], p[1] = param(p4src.ParamRuleLogNextStep, next), param(p4src.ParamRuleLogRuleID, ruleID)
		a = act(p4src.ActionRuleLog, p...)
	case actGoto:
		a = act(p4src.ActionRuleGoto, one(p4src.ParamRuleGotoNextStep, next)...)
	}
	return tableEntry(p4src.TablePolicyRule, e.prio, a, ms...)
}

// referencedSets lists every Felix IP set id the rules name, without duplicates.
func referencedSets(rules []model.Rule) []string {
	var seen map[string]bool // only for many sets: a rule list names few
	var out []string
	for i := range rules {
		r := &rules[i]
		for _, l := range [][]string{r.SrcIPSetIDs, r.NotSrcIPSetIDs, r.DstIPSetIDs, r.NotDstIPSetIDs,
			r.SrcNamedPortIPSetIDs, r.NotSrcNamedPortIPSetIDs, r.DstNamedPortIPSetIDs, r.NotDstNamedPortIPSetIDs,
			r.DstIPPortSetIDs} {
			for _, id := range l {
				switch {
				case seen != nil:
					if !seen[id] {
						seen[id] = true
						out = append(out, id)
					}
				case !slices.Contains(out, id):
					out = append(out, id)
					if len(out) > 16 {
						seen = make(map[string]bool, 2*len(out))
						for _, o := range out {
							seen[o] = true
						}
					}
				}
			}
		}
	}
	return out
}
