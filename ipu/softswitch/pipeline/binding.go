package pipeline

import (
	"fmt"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"

	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
	"github.com/calico-p4/calico-p4/p4src"
)

// tableRef names a table of k8s.p4.
type tableRef uint8

const (
	tPortEndpoint tableRef = iota
	tSourceGuardV4
	tSourceGuardV6
	tARPResponder
	tNDResponder
	tTunnelTermV4
	tTunnelTermV6
	tCTOrigV4
	tCTReplyV4
	tCTOrigV6
	tCTReplyV6
	tAffinityV4
	tAffinityV6
	tServiceV4
	tServiceV6
	tNAT1to1V4
	tNAT1to1V6
	tRouteV4
	tRouteV6
	tNexthop
	tNATOutgoingV4
	tNATOutgoingV6
	tSNATAddressV4
	tSNATAddressV6
	tEndpointPolicy
	tPolicyList
	tPolicyStep
	tIPSetNetV4
	tIPSetNetV6
	tIPSetPortV4
	tIPSetPortV6
	tPolicyRule
	tPolicyRuleStats
	numTables
)

var tableNames = [numTables]p4src.TableName{
	tPortEndpoint:    p4src.TablePortEndpoint,
	tSourceGuardV4:   p4src.TableSourceGuardV4,
	tSourceGuardV6:   p4src.TableSourceGuardV6,
	tARPResponder:    p4src.TableARPResponder,
	tNDResponder:     p4src.TableNDResponder,
	tTunnelTermV4:    p4src.TableTunnelTermV4,
	tTunnelTermV6:    p4src.TableTunnelTermV6,
	tCTOrigV4:        p4src.TableCTOrigV4,
	tCTReplyV4:       p4src.TableCTReplyV4,
	tCTOrigV6:        p4src.TableCTOrigV6,
	tCTReplyV6:       p4src.TableCTReplyV6,
	tAffinityV4:      p4src.TableAffinityV4,
	tAffinityV6:      p4src.TableAffinityV6,
	tServiceV4:       p4src.TableServiceV4,
	tServiceV6:       p4src.TableServiceV6,
	tNAT1to1V4:       p4src.TableNAT1to1V4,
	tNAT1to1V6:       p4src.TableNAT1to1V6,
	tRouteV4:         p4src.TableRouteV4,
	tRouteV6:         p4src.TableRouteV6,
	tNexthop:         p4src.TableNexthop,
	tNATOutgoingV4:   p4src.TableNATOutgoingV4,
	tNATOutgoingV6:   p4src.TableNATOutgoingV6,
	tSNATAddressV4:   p4src.TableSNATAddressV4,
	tSNATAddressV6:   p4src.TableSNATAddressV6,
	tEndpointPolicy:  p4src.TableEndpointPolicy,
	tPolicyList:      p4src.TablePolicyList,
	tPolicyStep:      p4src.TablePolicyStep,
	tIPSetNetV4:      p4src.TableIPSetNetV4,
	tIPSetNetV6:      p4src.TableIPSetNetV6,
	tIPSetPortV4:     p4src.TableIPSetPortV4,
	tIPSetPortV6:     p4src.TableIPSetPortV6,
	tPolicyRule:      p4src.TablePolicyRule,
	tPolicyRuleStats: p4src.TablePolicyRuleStats,
}

// learnerTables are k8s.p4's add_on_miss tables.
var learnerTables = []tableRef{tCTOrigV4, tCTReplyV4, tCTOrigV6, tCTReplyV6, tAffinityV4, tAffinityV6}

// binding ties the pipeline to one committed Schema: table indexes, checked to have exactly k8s.p4's
// ids, key layouts and action parameter layouts, so that the controls can build keys and read
// parameters at fixed offsets.
type binding struct {
	schema      *tables.Schema
	idx         [numTables]int
	dropCounter int
	err         error
}

// bind checks schema against the embedded k8s.p4 P4Info and records table indexes. A schema of
// another program (the server is generic) yields a binding with err set: packets are then dropped.
func bind(schema *tables.Schema, want *p4configv1.P4Info) *binding {
	b := &binding{schema: schema}
	if schema == nil {
		b.err = fmt.Errorf("no forwarding pipeline config")
		return b
	}
	fail := func(format string, args ...any) *binding {
		b.err = fmt.Errorf("the pipeline config is not %s: "+format, append([]any{p4src.ProgramName}, args...)...)
		return b
	}
	for _, wa := range want.Actions {
		a := schema.ActionByName(wa.Preamble.Name)
		if a == nil || a.ID != wa.Preamble.Id {
			return fail("action %s missing or renumbered", wa.Preamble.Name)
		}
		if len(a.Params) != len(wa.Params) {
			return fail("action %s has %d parameters, want %d", a.Name, len(a.Params), len(wa.Params))
		}
		off := 0
		for i, wp := range wa.Params {
			p := a.Params[i]
			if p.Name != wp.Name || p.Bitwidth != int(wp.Bitwidth) || p.Offset != off {
				return fail("action %s parameter %d is %s/%d, want %s/%d", a.Name, i, p.Name, p.Bitwidth, wp.Name, wp.Bitwidth)
			}
			off += p.Width
		}
	}
	for _, wt := range want.Tables {
		t := schema.TableByName(wt.Preamble.Name)
		if t == nil || t.ID != wt.Preamble.Id {
			return fail("table %s missing or renumbered", wt.Preamble.Name)
		}
		if len(t.Fields) != len(wt.MatchFields) {
			return fail("table %s has %d match fields, want %d", t.Name, len(t.Fields), len(wt.MatchFields))
		}
		off := 0
		for i, wf := range wt.MatchFields {
			f := t.Fields[i]
			if f.Name != wf.Name || f.Bitwidth != int(wf.Bitwidth) || f.Offset != off {
				return fail("table %s match field %d is %s/%d, want %s/%d", t.Name, i, f.Name, f.Bitwidth, wf.Name, wf.Bitwidth)
			}
			off += f.Width
		}
	}
	for r := tableRef(0); r < numTables; r++ {
		t := schema.TableByName(string(tableNames[r]))
		if t == nil {
			return fail("table %s missing", tableNames[r])
		}
		b.idx[r] = t.Index
	}
	b.dropCounter = -1
	for _, c := range schema.Counters {
		if c.Name == string(p4src.CounterDropCounter) {
			b.dropCounter = c.Index
		}
	}
	if b.dropCounter < 0 {
		return fail("counter %s missing", p4src.CounterDropCounter)
	}
	return b
}
