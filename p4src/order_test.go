package p4src

import (
	"slices"
	"testing"
)

// TestWriteOrderNamesEveryManagedTableOnce: every table of the P4Info that the control plane writes (all but
// the learner tables and const tables) has exactly one rank, and nothing else is listed.
func TestWriteOrderNamesEveryManagedTableOnce(t *testing.T) {
	info := MustP4Info()
	managed := map[string]bool{}
	for _, tb := range info.Tables {
		name := tb.GetPreamble().GetName()
		if tb.GetIsConstTable() || slices.Contains(LearnerTables, TableName(name)) {
			continue
		}
		managed[name] = true
	}
	seen := map[string]int{}
	for rank, tables := range WriteOrder {
		if len(tables) == 0 {
			t.Errorf("rank %d is empty", rank)
		}
		for _, tb := range tables {
			if r, dup := seen[string(tb)]; dup {
				t.Errorf("%s is at ranks %d and %d", tb, r, rank)
			}
			seen[string(tb)] = rank
			if !managed[string(tb)] {
				t.Errorf("%s (rank %d) is not a table the control plane writes", tb, rank)
			}
		}
	}
	for name := range managed {
		if _, ok := seen[name]; !ok {
			t.Errorf("%s has no place in WriteOrder: add it where what it relies on is written before it", name)
		}
	}
	if got := WriteOrderNames(); len(got) != len(WriteOrder) || got[0][0] != string(WriteOrder[0][0]) {
		t.Errorf("WriteOrderNames = %v", got)
	}
}

// TestWriteOrderPutsWhatIsReliedOnFirst spells out the dependencies of k8s.p4 that the order must respect
// (a ranks b: a is written before b, deleted after it).
func TestWriteOrderPutsWhatIsReliedOnFirst(t *testing.T) {
	rank := map[TableName]int{}
	for r, tables := range WriteOrder {
		for _, tb := range tables {
			rank[tb] = r
		}
	}
	before := [][2]TableName{
		{TableIPSetNetV4, TablePolicyStep}, {TableIPSetPortV6, TablePolicyStep},
		{TablePolicyRuleStats, TablePolicyRule}, {TablePolicyRule, TablePolicyStep},
		{TablePolicyStep, TablePolicyList}, {TablePolicyList, TableEndpointPolicy},
		{TableEndpointPolicy, TablePortEndpoint}, {TableEndpointPolicy, TableNexthop},
		{TableEndpointPolicy, TableTunnelTermV4}, {TableSNATAddressV4, TableNexthop},
		{TableNATOutgoingV6, TableRouteV6}, {TableNexthop, TableRouteV4}, {TableRouteV4, TableNAT1to1V4},
		{TableRouteV6, TableServiceV6}, {TableSourceGuardV4, TablePortEndpoint},
		{TableARPResponder, TablePortEndpoint}, {TableNDResponder, TablePortEndpoint},
		{TableTunnelTermV6, TablePortEndpoint},
	}
	for _, b := range before {
		if rank[b[0]] >= rank[b[1]] {
			t.Errorf("%s (rank %d) must be written before %s (rank %d)", b[0], rank[b[0]], b[1], rank[b[1]])
		}
	}
}
