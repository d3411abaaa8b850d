package translator

import (
	"testing"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src/entry"
	"github.com/calico-p4/calico-p4/translator/internal/gen"
)

func setMembers(s *model.State) func(string) []string {
	return func(id string) []string {
		if set, ok := s.IPSets.Get(id); ok {
			return set.Strings()
		}
		return nil
	}
}

// diffSets describes how two sets differ (a few keys).
func diffSets(a, b *entry.Set) string {
	d := entry.Diff(a, b)
	out := ""
	for i, e := range d.Insert {
		if i < 3 {
			out += "\n  only in fresh: " + e.String()
		}
	}
	for i, e := range d.Modify {
		if i < 3 {
			old, _ := a.Get(e.Key())
			out += "\n  incremental:   " + old.String() + "\n  fresh:         " + e.String()
		}
	}
	for i, e := range d.Delete {
		if i < 3 {
			out += "\n  only in incremental: " + e.String()
		}
	}
	return out
}

// TestIncrementalTranslationEqualsAFreshOne: applying random change sequences incrementally gives the same
// entries (ids included) and the same report as translating the resulting model from scratch.
func TestIncrementalTranslationEqualsAFreshOne(t *testing.T) {
	seed := firstSeed(t)
	steps := 0
	for i := 0; i < *flagModels; i++ {
		g := gen.New(seed + uint64(i))
		live := model.NewState()
		applyMsgs(t, live, g.Model()...)
		tr := New(testPorts, genNode())
		tr.Apply(live.Clone(), live.TakeChanges())
		for j := 0; j < 25; j++ {
			for _, m := range g.Change(setMembers(live)) {
				if err := live.Apply(m); err != nil {
					t.Fatalf("seed %d, change %d: %s: %v", seed+uint64(i), j, model.PayloadName(m), err)
				}
			}
			changes := live.TakeChanges()
			res := tr.Apply(live.Clone(), changes)
			fresh := Translate(live.Clone(), testPorts, genNode())
			steps++
			if !res.Entries.Equal(fresh.Entries) {
				t.Fatalf("seed %d, change %d (%s): incremental and fresh translations differ:%s", seed+uint64(i), j,
					changes, diffSets(res.Entries, fresh.Entries))
			}
			if a, b := res.Report.String(), fresh.Report.String(); a != b {
				t.Fatalf("seed %d, change %d (%s): reports differ:\nincremental: %s\nfresh: %s", seed+uint64(i), j, changes, a, b)
			}
			checkEncodes(t, res.Entries)
		}
	}
	t.Logf("%d change batches", steps)
}
