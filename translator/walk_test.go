package translator

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
	"github.com/calico-p4/calico-p4/translator/oracle"
)

// walker interprets the policy-program tables of an entry set the way k8s.p4 walks them (endpoint_policy
// → policy_list → policy_step → ipset_* → policy_rule), for one check. It is a test model of the P4 walk,
// independent of how the translator built the entries; the softswitch pipeline is the real one.
type walker struct {
	epPolicy map[[2]uint64]uint64        // (endpoint, stage) → list
	lists    map[[2]uint64]entry.Action  // (list, position) → action
	steps    map[uint64]entry.Action     // step → run_step
	rules    map[uint64][]entry.Entry    // step → policy_rule entries, highest priority first
	nets     map[uint64][]netip.Prefix   // set → NET members (both families)
	ports    map[uint64]map[portKey]bool // set → IP_AND_PORT members
}

type portKey struct {
	addr  netip.Addr
	proto uint8
	port  uint16
}

func bytesUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func matchOf(e entry.Entry, f p4src.MatchFieldName) (entry.Match, bool) {
	for _, m := range e.Match {
		if m.Field == string(f) {
			return m, true
		}
	}
	return entry.Match{}, false
}

func paramOf(a entry.Action, n p4src.ParamName) uint64 {
	for _, p := range a.Params {
		if p.Name == string(n) {
			return bytesUint(p.Value)
		}
	}
	return 0
}

func addrOf(b []byte, bits int) netip.Addr {
	a, err := p4src.DecodeAddr(b, bits)
	if err != nil {
		panic(err)
	}
	return a
}

func newWalker(set *entry.Set) *walker {
	w := &walker{epPolicy: map[[2]uint64]uint64{}, lists: map[[2]uint64]entry.Action{}, steps: map[uint64]entry.Action{},
		rules: map[uint64][]entry.Entry{}, nets: map[uint64][]netip.Prefix{}, ports: map[uint64]map[portKey]bool{}}
	ex := func(e entry.Entry, f p4src.MatchFieldName) uint64 {
		m, _ := matchOf(e, f)
		return bytesUint(m.Value)
	}
	for _, e := range set.All() {
		switch p4src.TableName(e.Table) {
		case p4src.TableEndpointPolicy:
			w.epPolicy[[2]uint64{ex(e, p4src.KeyEndpointPolicyEndpointID), ex(e, p4src.KeyEndpointPolicyStage)}] =
				paramOf(e.Action, p4src.ParamSetPolicyListListID)
		case p4src.TablePolicyList:
			w.lists[[2]uint64{ex(e, p4src.KeyPolicyListListID), ex(e, p4src.KeyPolicyListPosition)}] = e.Action
		case p4src.TablePolicyStep:
			w.steps[ex(e, p4src.KeyPolicyStepStepID)] = e.Action
		case p4src.TablePolicyRule:
			s := ex(e, p4src.KeyPolicyRuleStepID)
			w.rules[s] = append(w.rules[s], e)
		case p4src.TableIPSetNetV4, p4src.TableIPSetNetV6:
			bits := 32
			if p4src.TableName(e.Table) == p4src.TableIPSetNetV6 {
				bits = 128
			}
			set := ex(e, p4src.KeyIPSetNetV4SetID)
			var pfx netip.Prefix
			if m, ok := matchOf(e, p4src.KeyIPSetNetV4Addr); ok {
				pfx = netip.PrefixFrom(addrOf(m.Value, bits), int(m.PrefixLen))
			} else if bits == 32 {
				pfx = netip.MustParsePrefix("0.0.0.0/0")
			} else {
				pfx = netip.MustParsePrefix("::/0")
			}
			w.nets[set] = append(w.nets[set], pfx)
		case p4src.TableIPSetPortV4, p4src.TableIPSetPortV6:
			bits := 32
			if p4src.TableName(e.Table) == p4src.TableIPSetPortV6 {
				bits = 128
			}
			set := ex(e, p4src.KeyIPSetPortV4SetID)
			m, _ := matchOf(e, p4src.KeyIPSetPortV4Addr)
			k := portKey{addrOf(m.Value, bits), uint8(ex(e, p4src.KeyIPSetPortV4Protocol)), uint16(ex(e, p4src.KeyIPSetPortV4Port))}
			if w.ports[set] == nil {
				w.ports[set] = map[portKey]bool{}
			}
			w.ports[set][k] = true
		}
	}
	for s := range w.rules {
		slices.SortStableFunc(w.rules[s], func(a, b entry.Entry) int { return int(b.Priority) - int(a.Priority) })
	}
	return w
}

// walkResult is the outcome of one check.
type walkResult struct {
	verdict uint8 // p4src.VerdictAllow / Deny / Continue
	broken  bool  // a list or step the walk needed is missing
	steps   int   // steps run
	path    []string
}

// check walks the list of (endpoint, stage) for packet p, as seen by the check (addresses after DNAT).
func (w *walker) check(ep uint32, stage uint8, p oracle.Packet) walkResult {
	var r walkResult
	list, ok := w.epPolicy[[2]uint64{uint64(ep), uint64(stage)}]
	if !ok {
		r.verdict = p4src.VerdictContinue
		r.path = append(r.path, "no_policy")
		return r
	}
	var sport, dport uint16
	if p.HasPorts() {
		sport, dport = p.SrcPort, p.DstPort
	}
	var icmpType, icmpCode uint8
	if p.Proto == oracle.ProtoICMP || p.Proto == oracle.ProtoICMPv6 {
		icmpType, icmpCode = p.ICMPType, p.ICMPCode
	}
	ipver := uint64(4)
	if p.Src.Is6() {
		ipver = 6
	}
	pos := uint64(0)
	for guard := 0; guard < 10000; guard++ {
		a, ok := w.lists[[2]uint64{list, pos}]
		if !ok {
			r.verdict, r.broken = p4src.VerdictDeny, true
			r.path = append(r.path, fmt.Sprintf("list_missing(%d,%d)", list, pos))
			return r
		}
		if a.Name == string(p4src.ActionListEnd) {
			r.verdict = uint8(paramOf(a, p4src.ParamListEndVerdict))
			r.path = append(r.path, fmt.Sprintf("list_end(%d)", r.verdict))
			return r
		}
		step := paramOf(a, p4src.ParamRunPolicyFirstStep)
		tierNext := paramOf(a, p4src.ParamRunPolicyNextTierPos)
		next := pos + 1
	steps:
		for {
			sa, ok := w.steps[step]
			if !ok {
				r.verdict, r.broken = p4src.VerdictDeny, true
				r.path = append(r.path, fmt.Sprintf("step_missing(%d)", step))
				return r
			}
			r.steps++
			lookup := uint8(paramOf(sa, p4src.ParamRunStepLookup))
			set := paramOf(sa, p4src.ParamRunStepSetID)
			miss := paramOf(sa, p4src.ParamRunStepMissStep)
			hit := false
			switch lookup {
			case p4src.LookupNetSrc, p4src.LookupNetDst:
				addr := p.Src
				if lookup == p4src.LookupNetDst {
					addr = p.Dst
				}
				for _, n := range w.nets[set] {
					if n.Addr().Is4() == addr.Is4() && n.Contains(addr) {
						hit = true
					}
				}
			case p4src.LookupPortSrc:
				hit = w.ports[set][portKey{p.Src, p.Proto, sport}]
			case p4src.LookupPortDst:
				hit = w.ports[set][portKey{p.Dst, p.Proto, dport}]
			}
			var matched *entry.Entry
			for i := range w.rules[step] {
				e := &w.rules[step][i]
				if ruleEntryMatches(e, hit, ipver, p.Proto, sport, dport, icmpType, icmpCode) {
					matched = e
					break
				}
			}
			if matched == nil {
				r.path = append(r.path, fmt.Sprintf("step %d: no match", step))
				if miss != 0 {
					step = miss
					continue
				}
				pos = next
				break steps
			}
			r.path = append(r.path, fmt.Sprintf("step %d: %s", step, matched.Action.Name))
			switch p4src.ActionName(matched.Action.Name) {
			case p4src.ActionRuleAllow:
				r.verdict = p4src.VerdictAllow
				return r
			case p4src.ActionRuleDeny:
				r.verdict = p4src.VerdictDeny
				return r
			case p4src.ActionRulePass:
				pos = tierNext
				break steps
			case p4src.ActionRuleLog:
				step = paramOf(matched.Action, p4src.ParamRuleLogNextStep)
			case p4src.ActionRuleGoto:
				step = paramOf(matched.Action, p4src.ParamRuleGotoNextStep)
			default:
				panic("unknown rule action " + matched.Action.Name)
			}
		}
	}
	panic("walk does not end")
}

func ruleEntryMatches(e *entry.Entry, hit bool, ipver uint64, proto uint8, sport, dport uint16, icmpType, icmpCode uint8) bool {
	for _, m := range e.Match {
		var v uint64
		switch p4src.MatchFieldName(m.Field) {
		case p4src.KeyPolicyRuleStepID:
			continue
		case p4src.KeyPolicyRuleSetHit:
			if hit {
				v = 1
			}
		case p4src.KeyPolicyRuleIPVersion:
			v = ipver
		case p4src.KeyPolicyRuleProtocol:
			v = uint64(proto)
		case p4src.KeyPolicyRuleSrcPort:
			v = uint64(sport)
		case p4src.KeyPolicyRuleDstPort:
			v = uint64(dport)
		case p4src.KeyPolicyRuleICMPType:
			v = uint64(icmpType)
		case p4src.KeyPolicyRuleICMPCode:
			v = uint64(icmpCode)
		default:
			panic("unknown field " + m.Field)
		}
		switch m.Kind {
		case entry.MatchOptional, entry.MatchExact:
			if v != bytesUint(m.Value) {
				return false
			}
		case entry.MatchTernary:
			if v&bytesUint(m.Mask) != bytesUint(m.Value) {
				return false
			}
		case entry.MatchRange:
			if v < bytesUint(m.Value) || v > bytesUint(m.High) {
				return false
			}
		}
	}
	return true
}
