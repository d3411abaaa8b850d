package programmer

import (
	"fmt"

	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// Stages. A pass writes its updates in stages, in order; each stage is a barrier (its Write RPCs complete,
// retries included, before the next stage starts), since a target may apply the updates of one batch in
// any order and, unless the write is atomic, packets see a batch's updates one by one.
//
// With Config.TableOrder of n ranks (none: one rank holding every table) the stages are
//
//	for rank 0 … n-1:   member inserts/modifies, group inserts/modifies, table entry inserts/modifies
//	                    and default actions — of that rank's action profiles and tables;
//	for rank n-1 … 0:   table entry deletes and default resets, group deletes, member deletes.
//
// An action profile has the rank of the (lowest ranked) table it implements.
type writeOrder struct {
	ranks int
	rank  map[string]int // table or action profile → rank
}

// newWriteOrder checks tableOrder against the P4Info: every table it names exists, none twice, and every
// table the programmer writes (not unmanaged, not const) has a rank.
func newWriteOrder(info *p4rt.Info, tableOrder [][]string, unmanaged map[string]bool) (writeOrder, error) {
	o := writeOrder{ranks: 1, rank: map[string]int{}}
	if len(tableOrder) == 0 {
		return o, nil
	}
	o.ranks = len(tableOrder)
	for r, tables := range tableOrder {
		for _, name := range tables {
			if _, ok := info.Table(name); !ok {
				return o, fmt.Errorf("programmer: table order: %q is not a table of the P4Info", name)
			}
			if prev, dup := o.rank[name]; dup {
				return o, fmt.Errorf("programmer: table order: %q is at ranks %d and %d", name, prev, r)
			}
			o.rank[name] = r
		}
	}
	var missing []string
	for _, name := range info.TableNames() {
		t, _ := info.Table(name)
		if _, ok := o.rank[name]; !ok && !unmanaged[name] && !t.IsConst {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return o, fmt.Errorf("programmer: table order: no rank for %v (every table the programmer writes needs one)", missing)
	}
	for _, name := range info.TableNames() {
		t, _ := info.Table(name)
		r, ok := o.rank[name]
		if !ok || t.Profile == nil {
			continue
		}
		if cur, seen := o.rank[t.Profile.Name]; !seen || r < cur {
			o.rank[t.Profile.Name] = r
		}
	}
	return o, nil
}

// numStages is the number of stages of a pass.
func (o writeOrder) numStages() int { return 6 * o.ranks }

// firstDelete is the first delete stage.
func (o writeOrder) firstDelete() int { return 3 * o.ranks }

// stage of an update of an entry of kind in container (a table, or an action profile for members and
// groups); del for deletes and default resets.
func (o writeOrder) stage(kind entry.Kind, container string, del bool) int {
	r := o.rank[container] // 0 without an order
	sub := 2
	switch kind {
	case entry.KindMember:
		sub = 0
	case entry.KindGroup:
		sub = 1
	}
	if !del {
		return 3*r + sub
	}
	return 3*o.ranks + 3*(o.ranks-1-r) + (2 - sub)
}

// stageName describes a stage in logs and errors.
func (o writeOrder) stageName(st int) string {
	del := st >= o.firstDelete()
	var r, sub int
	if !del {
		r, sub = st/3, st%3
	} else {
		d := st - o.firstDelete()
		r, sub = o.ranks-1-d/3, 2-d%3
	}
	what := [3]string{"members", "groups", "table entries"}[sub]
	if del {
		return fmt.Sprintf("rank %d %s deletes", r, what)
	}
	return fmt.Sprintf("rank %d %s", r, what)
}
