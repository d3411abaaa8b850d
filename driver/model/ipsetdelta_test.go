package model_test

import (
	"slices"
	"testing"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/projectcalico/calico/felix/proto"
)

func nets(ms []model.IPSetMember) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Net.String())
	}
	slices.Sort(out)
	return out
}

func TestIPSetDeltaIsTheNetMemberChangeSinceTheLastTakeChanges(t *testing.T) {
	s := model.NewState()
	mustApply(t, s, ipsetUpdate("s:a", proto.IPSetUpdate_NET, "10.0.0.0/24", "10.0.1.0/24"))
	s.TakeChanges()

	mustApply(t, s,
		ipsetDelta("s:a", []string{"10.0.2.0/24", "10.0.3.0/24"}, []string{"10.0.0.0/24"}),
		ipsetDelta("s:a", []string{"10.0.0.0/24"}, []string{"10.0.3.0/24", "10.0.1.0/24"}), // re-add, undo, remove
		ipsetDelta("s:a", []string{"10.0.2.0/24"}, nil),                                    // already there
	)
	c := s.TakeChanges()
	d, ok := c.IPSetDelta("s:a")
	if !ok {
		t.Fatal("no delta for a set changed only by deltas")
	}
	if got, want := nets(d.Added), []string{"10.0.2.0/24"}; !slices.Equal(got, want) {
		t.Errorf("added %v, want %v", got, want)
	}
	if got, want := nets(d.Removed), []string{"10.0.1.0/24"}; !slices.Equal(got, want) {
		t.Errorf("removed %v, want %v", got, want)
	}
	set, _ := s.IPSets.Get("s:a")
	var members []model.IPSetMember
	for m := range set.Members() {
		members = append(members, m)
	}
	if got, want := nets(members), []string{"10.0.0.0/24", "10.0.2.0/24"}; !slices.Equal(got, want) {
		t.Errorf("members %v, want %v", got, want)
	}
	if _, ok := s.TakeChanges().IPSetDelta("s:a"); ok {
		t.Error("a delta is reported again after TakeChanges")
	}
}

func TestIPSetDeltaIsNotOfferedWhenTheSetChangedOtherwise(t *testing.T) {
	tests := []struct {
		name string
		do   func(t *testing.T, s *model.State)
	}{
		{"full update after a delta", func(t *testing.T, s *model.State) {
			mustApply(t, s, ipsetDelta("s:a", []string{"10.9.0.0/16"}, nil),
				ipsetUpdate("s:a", proto.IPSetUpdate_NET, "10.8.0.0/16"))
		}},
		{"added in this period", func(t *testing.T, s *model.State) {
			mustApply(t, s, ipsetUpdate("s:b", proto.IPSetUpdate_NET), ipsetDelta("s:b", []string{"10.9.0.0/16"}, nil))
		}},
		{"restored changes", func(t *testing.T, s *model.State) {
			mustApply(t, s, ipsetDelta("s:a", []string{"10.9.0.0/16"}, nil))
			s.RestoreChanges(s.TakeChanges())
		}},
		{"replaced by a snapshot", func(t *testing.T, s *model.State) {
			next := model.NewState()
			mustApply(t, next, ipsetUpdate("s:a", proto.IPSetUpdate_NET, "10.0.0.0/24", "10.7.0.0/16"))
			s.Replace(next)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := model.NewState()
			mustApply(t, s, ipsetUpdate("s:a", proto.IPSetUpdate_NET, "10.0.0.0/24"))
			s.TakeChanges()
			tc.do(t, s)
			c := s.TakeChanges()
			for _, id := range []string{"s:a", "s:b"} {
				if _, ok := c.IPSetDelta(id); ok {
					t.Errorf("%s: delta offered", id)
				}
			}
		})
	}
}
