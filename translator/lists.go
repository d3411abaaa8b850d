package translator

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// chainKind is the kind of Felix endpoint chain a policy list implements (felix/rules/endpoints.go).
type chainKind uint8

const (
	// chainNormal: tiers (end of tier: deny), then profiles, then "drop if no profiles matched".
	chainNormal chainKind = iota
	// chainForward: applyOnForward tiers (end of tier: deny), no profiles; no verdict at the end.
	chainForward
	// chainUntracked, chainPreDNAT: tiers without end-of-tier drop, no profiles; no verdict at the end.
	chainUntracked
	chainPreDNAT
)

// listItem is one position of a policy list: run a program (by the name of its first step) or end.
type listItem struct {
	step     string
	nextTier int
	verdict  uint8
}

// listSpec is the content of a policy list; identical contents share one list (interning).
type listSpec []listItem

func (l listSpec) key() string {
	var sb strings.Builder
	for i, it := range l {
		if i > 0 {
			sb.WriteByte('|')
		}
		if it.step != "" {
			sb.WriteString("P:")
			sb.WriteString(it.step)
			sb.WriteByte('>')
			sb.WriteString(strconv.Itoa(it.nextTier))
		} else {
			sb.WriteString("E:")
			sb.WriteString(strconv.Itoa(int(it.verdict)))
		}
	}
	return sb.String()
}

// buildList lays out Felix's endpoint chain as a list: the failsafe program first (host endpoints), the
// tiers in order (within a tier the policies in order; a policy's pass continues after the tier), the
// profiles (normal chains; a profile's pass continues with the next profile) and the end. It returns nil
// for a forward chain without policies (Felix allows forwarded traffic then: no list, no verdict).
func buildList(kind chainKind, tiers []model.TierInfo, ingress bool, profiles []string, failsafe string) listSpec {
	dir := dirOut
	if ingress {
		dir = dirIn
	}
	var l listSpec
	if failsafe != "" {
		l = append(l, listItem{step: firstStep(failsafe)})
	}
	havePolicies := false
	for _, tier := range tiers {
		keys := tier.EgressPolicyKeys()
		if ingress {
			keys = tier.IngressPolicyKeys()
		}
		if len(keys) == 0 {
			continue
		}
		havePolicies = true
		start := len(l)
		for _, k := range keys {
			l = append(l, listItem{step: firstStep(policyOwner(k, dir))})
		}
		if kind == chainNormal || kind == chainForward {
			l = append(l, listItem{verdict: p4src.VerdictDeny})
		}
		for i := start; i < start+len(keys); i++ {
			l[i].nextTier = len(l)
		}
	}
	if kind == chainForward && !havePolicies {
		return nil
	}
	if kind == chainNormal {
		for _, p := range profiles {
			l = append(l, listItem{step: firstStep(profileOwner(p, dir)), nextTier: len(l) + 1})
		}
	}
	end := listItem{verdict: p4src.VerdictContinue}
	if kind == chainNormal {
		end.verdict = p4src.VerdictDeny
	}
	l = append(l, end)
	if failsafe != "" {
		l[0].nextTier = len(l) - 1 // a failsafe pass (untracked, pre-DNAT) ends the check with no verdict
	}
	return l
}

// listUnit owns the entries of one interned list. Its content (and so its id) names the programs it runs by
// their stable names ("<owner>/0"); its entries point at each program's current first step (entryStep), and
// are rendered again when a program changes version (make-before-break, see progUnit).
type listUnit struct {
	*unit
	spec  listSpec
	name  string
	id    uint32
	refs  int
	steps []string // the programs run, by stable name
	// entered holds, per position, the step name its entry enters (held in the step id space; "" for a
	// list end).
	entered []string
}

// refList takes a reference on the list with content l and returns its id.
func (t *Translator) refList(l listSpec) (string, uint32) {
	name := l.key()
	lu := t.lists[name]
	if lu != nil {
		lu.refs++
		return name, lu.id
	}
	lu = &listUnit{unit: newUnit("list/" + name), spec: l, name: name, refs: 1}
	lu.id = t.acquire(t.ids.list, name)
	for _, it := range l {
		if it.step != "" {
			lu.steps = append(lu.steps, it.step)
		}
	}
	t.renderList(lu)
	t.lists[name] = lu
	for _, st := range lu.steps {
		o := programOf(st)
		if t.progLists[o] == nil {
			t.progLists[o] = map[string]struct{}{}
		}
		t.progLists[o][name] = struct{}{}
	}
	t.updateListWalk(name)
	return name, lu.id
}

// renderList writes a new list's entries, each run_policy entering its program's current first step.
func (t *Translator) renderList(lu *listUnit) {
	lu.entered = make([]string, len(lu.spec))
	ents := make([]entry.Entry, 0, len(lu.spec))
	for pos, it := range lu.spec {
		if it.step != "" {
			lu.entered[pos] = t.entryStep(programOf(it.step))
			ents = append(ents, t.listEntry(lu, pos, t.acquire(t.ids.step, lu.entered[pos])))
			continue
		}
		ents = append(ents, tableEntry(p4src.TablePolicyList, 0,
			act(p4src.ActionListEnd, param(p4src.ParamListEndVerdict, u(uint64(it.verdict)))),
			exact(p4src.KeyPolicyListListID, u(uint64(lu.id))), exact(p4src.KeyPolicyListPosition, u(uint64(pos)))))
	}
	lu.replace(t.st, ents)
}

// listEntry is the run_policy entry of position pos entering step id sid.
func (t *Translator) listEntry(lu *listUnit, pos int, sid uint32) entry.Entry {
	return tableEntry(p4src.TablePolicyList, 0,
		act(p4src.ActionRunPolicy, param(p4src.ParamRunPolicyFirstStep, u(uint64(sid))),
			param(p4src.ParamRunPolicyNextTierPos, u(uint64(lu.spec[pos].nextTier)))),
		exact(p4src.KeyPolicyListListID, u(uint64(lu.id))), exact(p4src.KeyPolicyListPosition, u(uint64(pos))))
}

// rerenderListsOf switches the positions of the lists that run owner's program to its current entry step
// (one entry per position: the make-before-break switch).
func (t *Translator) rerenderListsOf(owner string) {
	stable := firstStep(owner)
	name := t.entryStep(owner)
	for ln := range t.progLists[owner] {
		lu := t.lists[ln]
		if lu == nil {
			continue
		}
		for pos, it := range lu.spec {
			if it.step != stable || lu.entered[pos] == name {
				continue
			}
			old := lu.entered[pos]
			lu.entered[pos] = name
			e := t.listEntry(lu, pos, t.acquire(t.ids.step, name))
			t.st.put(lu.owner, e.Key(), e)
			t.release(t.ids.step, old)
		}
	}
}

// unrefList drops a reference taken by refList.
func (t *Translator) unrefList(name string) {
	lu := t.lists[name]
	if lu == nil {
		return
	}
	lu.refs--
	if lu.refs > 0 {
		return
	}
	lu.clear(t.st)
	for _, s := range lu.entered {
		if s != "" {
			t.release(t.ids.step, s)
		}
	}
	for _, s := range lu.steps {
		if m := t.progLists[programOf(s)]; m != nil {
			delete(m, name)
			if len(m) == 0 {
				delete(t.progLists, programOf(s))
			}
		}
	}
	t.release(t.ids.list, name)
	delete(t.lists, name)
	delete(t.listOver, name)
}

// encapDrop is the program Felix puts at the start of every workload's from-wl chain (endpoints.go,
// endpointIptablesChain): unless AllowVXLANPacketsFromWorkloads / AllowIPIPPacketsFromWorkloads, VXLAN
// (UDP to the VXLAN port) and IP-in-IP packets sent by workloads are dropped before any policy.
const encapDrop = "encap-drop"

func encapDropRules(cfg *model.Config) []model.Rule {
	var rules []model.Rule
	if !rawBool(cfg, "AllowVXLANPacketsFromWorkloads") {
		rules = append(rules, model.Rule{Action: model.ActionDeny, Protocol: &model.Protocol{Number: model.ProtoUDP},
			DstPorts: []model.PortRange{{First: uint16(cfg.VXLANPort), Last: uint16(cfg.VXLANPort)}}})
	}
	if !rawBool(cfg, "AllowIPIPPacketsFromWorkloads") {
		rules = append(rules, model.Rule{Action: model.ActionDeny, Protocol: &model.Protocol{Number: 4}})
	}
	return rules
}

// rawBool reads a boolean Felix parameter the model does not parse (default false).
func rawBool(cfg *model.Config, key string) bool {
	for k, v := range cfg.Raw {
		if strings.EqualFold(k, key) {
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "true", "1", "yes", "y", "t":
				return true
			}
		}
	}
	return false
}

// failsafe programs: Felix's failsafe chains as rule lists (felix/rules/static.go, failsafeInChain and
// failsafeOutChain). The filter-table chains accept; the raw (untracked) and mangle (pre-DNAT) ones only
// skip the rest of that table, so they pass to the end of the list (no verdict).
const (
	failsafeFilterIn  = "failsafe/filter-in"
	failsafeFilterOut = "failsafe/filter-out"
	failsafeRawIn     = "failsafe/raw-in"
	failsafeRawOut    = "failsafe/raw-out"
	failsafeMangleIn  = "failsafe/mangle-in"
)

func failsafeRules(which string, cfg *model.Config) []model.Rule {
	var rules []model.Rule
	add := func(ports []model.ProtoPort, action model.Action, dstPort, peerIsSrc bool) {
		for _, pp := range ports {
			num, ok := model.ProtocolNumber(pp.Protocol)
			if !ok {
				continue
			}
			r := model.Rule{Action: action, Protocol: &model.Protocol{Number: num, Name: pp.Protocol}}
			pr := []model.PortRange{{First: pp.Port, Last: pp.Port}}
			if dstPort {
				r.DstPorts = pr
			} else {
				r.SrcPorts = pr
			}
			if pp.Net.IsValid() {
				if peerIsSrc {
					r.SrcNets = []netip.Prefix{pp.Net}
				} else {
					r.DstNets = []netip.Prefix{pp.Net}
				}
			}
			rules = append(rules, r)
		}
	}
	in, out := cfg.FailsafeInboundHostPorts, cfg.FailsafeOutboundHostPorts
	switch which {
	case failsafeFilterIn:
		add(in, model.ActionAllow, true, true)
	case failsafeFilterOut:
		add(out, model.ActionAllow, true, false)
	case failsafeRawIn:
		add(in, model.ActionNextTier, true, true)
		add(out, model.ActionNextTier, false, true)
	case failsafeRawOut:
		add(out, model.ActionNextTier, true, false)
		add(in, model.ActionNextTier, false, false)
	case failsafeMangleIn:
		add(in, model.ActionNextTier, true, true)
	}
	return rules
}
