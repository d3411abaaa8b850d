package programmer

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// k8sLearnerTables are filled by the data plane (add_on_miss), never by
// the programmer.
var k8sLearnerTables = []string{
	"MainControlImpl.ct_orig_v4", "MainControlImpl.ct_reply_v4", "MainControlImpl.ct_orig_v6",
	"MainControlImpl.ct_reply_v6", "MainControlImpl.affinity_v4", "MainControlImpl.affinity_v6",
}

// topBit is a canonical byte string with only bit w-1 set.
func topBit(w int32) []byte {
	b := make([]byte, (w+7)/8)
	b[0] = 1 << ((w - 1) % 8)
	return b
}

// oneEntryPerTable builds, from the P4Info alone, a valid entry for every
// table the programmer manages (with a member, and a group where there is a
// selector, for indirect tables).
func oneEntryPerTable(t *testing.T, info *p4rt.Info, skip []string) *entry.Set {
	s := mustSet(t)
	for _, name := range info.TableNames() {
		tbl, _ := info.Table(name)
		if slices.Contains(skip, name) || tbl.IsConst {
			continue
		}
		var ms []entry.Match
		for _, f := range tbl.Fields {
			switch f.Kind {
			case entry.MatchExact:
				ms = append(ms, entry.Exact(f.Name, entry.Uint(1)))
			case entry.MatchLPM:
				ms = append(ms, entry.LPM(f.Name, topBit(f.Bitwidth), 1))
			case entry.MatchTernary:
				ms = append(ms, entry.Ternary(f.Name, entry.Uint(1), entry.Uint(1)))
			case entry.MatchRange:
				ms = append(ms, entry.Range(f.Name, entry.Uint(1), entry.Uint(1)))
			case entry.MatchOptional:
				ms = append(ms, entry.Optional(f.Name, entry.Uint(1)))
			}
		}
		var actions []string
		for a, scope := range tbl.Actions {
			if scope != p4configv1.ActionRef_DEFAULT_ONLY {
				actions = append(actions, a)
			}
		}
		sort.Strings(actions)
		if len(actions) == 0 {
			continue
		}
		ai, _ := info.Action(actions[0])
		var ps []entry.Param
		for _, p := range ai.Params {
			ps = append(ps, entry.P(p.Name, entry.Uint(1)))
		}
		act := entry.Act(ai.Name, ps...)
		prio := int32(0)
		if tbl.NeedsPriority {
			prio = 1
		}
		var e entry.Entry
		switch {
		case tbl.Profile == nil:
			e = entry.Table(name, prio, act, ms...)
		case tbl.Profile.WithSelector:
			s.Put(entry.Member(tbl.Profile.Name, name+"/m", act))
			s.Put(entry.Group(tbl.Profile.Name, name+"/g", entry.W(name+"/m", 1)))
			e = entry.TableGroup(name, prio, name+"/g", ms...)
		default:
			s.Put(entry.Member(tbl.Profile.Name, name+"/m", act))
			e = entry.TableMember(name, prio, name+"/m", ms...)
		}
		if _, err := s.Put(e); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return s
}

// The project's own P4Info, through the encoder, into the softswitch: every
// table the programmer manages takes an entry, and a restarted manager
// writes nothing.
func TestK8sP4InfoProgramsTheSoftswitch(t *testing.T) {
	rt := startTarget(t, "")
	ctx := testCtx(t)
	open := func(election uint64) *Programmer {
		p, err := Open(ctx, Options{Address: rt.addr, ElectionID: p4rt.Uint128{Low: election}, P4Info: p4src.MustP4Info(),
			UnmanagedTables: k8sLearnerTables, Logger: zaptest.NewLogger(t), Registry: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		if err := p.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := open(1)
	want := oneEntryPerTable(t, p.info, k8sLearnerTables)
	if want.Len() < 20 {
		t.Fatalf("only %d entries generated from the k8s P4Info", want.Len())
	}
	res, err := p.Sync(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if rej := p.Rejected(); len(rej) > 0 {
		var msgs []string
		for k, err := range rej {
			msgs = append(msgs, k.String()+": "+err.Error())
		}
		sort.Strings(msgs)
		t.Fatalf("%d entries rejected:\n%s", len(rej), strings.Join(msgs, "\n"))
	}
	if res.Inserted != want.Len() {
		t.Fatalf("%+v, want %d inserts", res, want.Len())
	}
	requireEqual(t, readTarget(t, p), want)
	p.Close()
	before := rt.updatesSeen()
	again := open(2)
	if res, err := again.Sync(context.Background(), want); err != nil || res.Writes != 0 || rt.updatesSeen() != before {
		t.Fatalf("restart with the k8s P4Info: %+v, %v", res, err)
	}
}
