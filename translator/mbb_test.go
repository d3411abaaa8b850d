package translator

import (
	"fmt"
	"testing"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
	"github.com/calico-p4/calico-p4/translator/internal/gen"
	"github.com/projectcalico/calico/felix/proto"
)

// stepOf is the step id an entry of the policy program is keyed by (policy_step, policy_rule), if any.
func stepOf(e entry.Entry) (uint64, bool) {
	switch e.Table {
	case string(p4src.TablePolicyStep):
		m, _ := matchOf(e, p4src.KeyPolicyStepStepID)
		return bytesUint(m.Value), true
	case string(p4src.TablePolicyRule):
		m, _ := matchOf(e, p4src.KeyPolicyRuleStepID)
		return bytesUint(m.Value), true
	}
	return 0, false
}

// checkMakeBeforeBreak fails unless going from old to cur rewrites nothing of the policy program in place:
// policy steps and rules are only inserted or deleted, and a step id's entries are identical in both sets
// or exist in one of them only (a changed program has new step ids); policy_list entries only switch the
// first step they enter (list ids name their content); endpoint_policy entries only switch to lists that
// exist in cur.
func checkMakeBeforeBreak(t *testing.T, what string, old, cur *entry.Set) {
	t.Helper()
	d := entry.Diff(old, cur)
	for _, e := range d.Modify {
		prev, _ := old.Get(e.Key())
		switch e.Table {
		case string(p4src.TablePolicyStep), string(p4src.TablePolicyRule), string(p4src.TablePolicyRuleStats):
			t.Fatalf("%s: modified in place:\n  %s\n→ %s", what, prev, e)
		case string(p4src.TablePolicyList):
			if prev.Action.Name != string(p4src.ActionRunPolicy) || e.Action.Name != string(p4src.ActionRunPolicy) ||
				paramOf(prev.Action, p4src.ParamRunPolicyNextTierPos) != paramOf(e.Action, p4src.ParamRunPolicyNextTierPos) {
				t.Fatalf("%s: a list changed in place (not only the step it enters):\n  %s\n→ %s", what, prev, e)
			}
		}
	}
	changed := map[uint64]bool{}
	for _, e := range append(append([]entry.Entry(nil), d.Insert...), d.Delete...) {
		if s, ok := stepOf(e); ok {
			changed[s] = true
		}
	}
	inOld, inCur := map[uint64]bool{}, map[uint64]bool{}
	for _, e := range old.All() {
		if s, ok := stepOf(e); ok {
			inOld[s] = true
		}
	}
	for _, e := range cur.All() {
		if s, ok := stepOf(e); ok {
			inCur[s] = true
		}
	}
	for s := range changed {
		if inOld[s] && inCur[s] {
			t.Fatalf("%s: step %d keeps its id but its entries change (a walk could see half of each version)", what, s)
		}
	}
	lists := map[uint64]bool{}
	for _, e := range cur.All() {
		if e.Table == string(p4src.TablePolicyList) {
			m, _ := matchOf(e, p4src.KeyPolicyListListID)
			lists[bytesUint(m.Value)] = true
		}
	}
	for _, e := range append(append([]entry.Entry(nil), d.Insert...), d.Modify...) {
		if e.Table == string(p4src.TableEndpointPolicy) && !lists[paramOf(e.Action, p4src.ParamSetPolicyListListID)] {
			t.Fatalf("%s: %s points at a list that does not exist", what, e)
		}
	}
}

// TestChangesNeverRewriteThePolicyProgramInPlace: random models and random change batches (policies,
// profiles, endpoints, sets, host endpoints, routes): the entries of a changed program are new ones beside
// the old (make-before-break), lists only switch the step they enter, and a policy resent unchanged writes
// nothing.
func TestChangesNeverRewriteThePolicyProgramInPlace(t *testing.T) {
	seed := firstSeed(t)
	batches, switched := 0, 0
	for i := 0; i < *flagModels/3; i++ {
		g := gen.New(seed + uint64(i))
		live := model.NewState()
		applyMsgs(t, live, g.Model()...)
		tr := New(testPorts, genNode())
		res := tr.Apply(live.Clone(), live.TakeChanges())
		for j := 0; j < 20; j++ {
			old := res.Entries.Clone()
			msgs := g.Change(setMembers(live))
			for _, m := range msgs {
				if err := live.Apply(m); err != nil {
					t.Fatal(err)
				}
			}
			changes := live.TakeChanges()
			res = tr.Apply(live.Clone(), changes)
			what := fmt.Sprintf("seed %d, change %d (%s)", seed+uint64(i), j, changes)
			checkMakeBeforeBreak(t, what, old, res.Entries)
			for _, e := range entry.Diff(old, res.Entries).Modify {
				if e.Table == string(p4src.TablePolicyList) {
					switched++
				}
			}
			batches++
			// The same policies again, unchanged: nothing to write.
			last := map[string]*proto.ToDataplane{}
			for _, m := range msgs {
				switch {
				case m.GetActivePolicyUpdate() != nil:
					last["pol "+m.GetActivePolicyUpdate().GetId().String()] = m
				case m.GetActivePolicyRemove() != nil:
					delete(last, "pol "+m.GetActivePolicyRemove().GetId().String())
				case m.GetActiveProfileUpdate() != nil:
					last["prof "+m.GetActiveProfileUpdate().GetId().GetName()] = m
				case m.GetActiveProfileRemove() != nil:
					delete(last, "prof "+m.GetActiveProfileRemove().GetId().GetName())
				}
			}
			var again []*proto.ToDataplane
			for _, m := range last {
				again = append(again, m)
			}
			if len(again) > 0 {
				before := res.Entries.Clone()
				applyMsgs(t, live, again...)
				res = tr.Apply(live.Clone(), live.TakeChanges())
				if d := entry.Diff(before, res.Entries); len(d.Insert)+len(d.Modify)+len(d.Delete) > 0 {
					t.Fatalf("%s: the same policies again changed %d entries:%s", what, len(d.Insert)+len(d.Modify)+len(d.Delete),
						diffSets(before, res.Entries))
				}
			}
		}
	}
	t.Logf("%d change batches, %d list entries switched to a new program version", batches, switched)
}

// TestPolicyChangeWritesItsOwnEntriesAndOneSwitchPerList: one policy of a model changes: the writes are its
// new entries, one policy_list MODIFY per list running it, and the deletion of its old entries — nothing
// else; changing it back restores the original ids.
func TestPolicyChangeWritesItsOwnEntriesAndOneSwitchPerList(t *testing.T) {
	seed := firstSeed(t)
	for i := 0; i < *flagModels/3; i++ {
		g := gen.New(seed + uint64(i))
		live := model.NewState()
		msgs := g.Model()
		applyMsgs(t, live, msgs...)
		tr := New(testPorts, genNode())
		res := tr.Apply(live.Clone(), live.TakeChanges())
		tier := gen.Tiers[g.R.IntN(len(gen.Tiers))]
		pols := g.Policies(tier)
		if len(pols) == 0 {
			continue
		}
		name := pols[g.R.IntN(len(pols))]
		k := model.PolicyKey{Tier: tier, Name: name}
		var orig *proto.ToDataplane
		for _, m := range msgs {
			if u := m.GetActivePolicyUpdate(); u != nil && u.GetId().GetTier() == tier && u.GetId().GetName() == name {
				orig = m
			}
		}
		first := res.Entries.Clone()
		applyMsgs(t, live, g.Policy(tier, name))
		res = tr.Apply(live.Clone(), live.TakeChanges())
		what := fmt.Sprintf("seed %d: policy %s", seed+uint64(i), k)
		checkMakeBeforeBreak(t, what, first, res.Entries)
		d := entry.Diff(first, res.Entries)
		positions := 0 // run_policy entries that enter the policy (a list may run it at two positions)
		for _, dir := range []string{dirIn, dirOut} {
			for name := range tr.progLists[policyOwner(k, dir)] {
				for _, it := range tr.lists[name].spec {
					if it.step == firstStep(policyOwner(k, dir)) {
						positions++
					}
				}
			}
		}
		for _, e := range d.Modify {
			if e.Table != string(p4src.TablePolicyList) {
				t.Fatalf("%s: modified %s", what, e)
			}
		}
		if len(d.Modify) > positions {
			t.Fatalf("%s: %d list entries modified for %d list positions running it", what, len(d.Modify), positions)
		}
		for _, e := range append(append([]entry.Entry(nil), d.Insert...), d.Delete...) {
			switch e.Table {
			case string(p4src.TablePolicyStep), string(p4src.TablePolicyRule), string(p4src.TablePolicyRuleStats),
				string(p4src.TableIPSetNetV4), string(p4src.TableIPSetNetV6):
			default:
				t.Fatalf("%s: wrote %s", what, e)
			}
		}
		// Back to the original rules: the original entries, ids included.
		applyMsgs(t, live, orig)
		res = tr.Apply(live.Clone(), live.TakeChanges())
		if !res.Entries.Equal(first) {
			t.Fatalf("%s: changed back, the entries differ from the original:%s", what, diffSets(first, res.Entries))
		}
	}
}
