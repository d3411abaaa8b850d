package programmer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"

	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// testOrder ranks the test P4Info's tables: ACL and the small table first, routes, then the two tables
// behind action profiles, the port classification last.
var testOrder = [][]string{
	{"ingress.acl", "ingress.small"},
	{"ingress.routes", "ingress.fixed"},
	{"ingress.services", "ingress.nat"},
	{"ingress.classify"},
}

func TestTableOrderIsCheckedAgainstTheP4Info(t *testing.T) {
	info := testInfo(t)
	for _, c := range []struct {
		name      string
		order     [][]string
		unmanaged []string
		err       string
	}{
		{"complete", testOrder, nil, ""},
		{"none", nil, nil, ""},
		{"unknown table", append([][]string{{"ingress.nope"}}, testOrder...), nil, "not a table"},
		{"table twice", append([][]string{{"ingress.acl"}}, testOrder...), nil, "at ranks"},
		{"table missing", testOrder[1:], nil, "no rank for [ingress.acl ingress.small]"},
		{"unmanaged tables need none", testOrder[1:], []string{"ingress.acl", "ingress.small"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(newFakeTarget(info), info, Config{TableOrder: c.order, UnmanagedTables: c.unmanaged})
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("New: %v, want %q", err, c.err)
			}
		})
	}
}

// updateStage is the stage (order.go) an update belongs to, from what the target received.
func updateStage(t testing.TB, p *Programmer, up *p4v1.Update) int {
	t.Helper()
	del := up.GetType() == p4v1.Update_DELETE
	switch x := up.GetEntity().GetEntity().(type) {
	case *p4v1.Entity_TableEntry:
		tb, ok := p.info.TableByID(x.TableEntry.GetTableId())
		if !ok {
			t.Fatalf("update of unknown table %d", x.TableEntry.GetTableId())
		}
		if x.TableEntry.GetIsDefaultAction() && x.TableEntry.GetAction() == nil {
			del = true // a default reset
		}
		return p.order.stage(entry.KindTable, tb.Name, del)
	case *p4v1.Entity_ActionProfileMember:
		ap, _ := p.info.ProfileByID(x.ActionProfileMember.GetActionProfileId())
		return p.order.stage(entry.KindMember, ap.Name, del)
	case *p4v1.Entity_ActionProfileGroup:
		ap, _ := p.info.ProfileByID(x.ActionProfileGroup.GetActionProfileId())
		return p.order.stage(entry.KindGroup, ap.Name, del)
	}
	t.Fatalf("unexpected update %v", up)
	return 0
}

func (f *fakeTarget) takeBatches() ([][]*p4v1.Update, []p4v1.WriteRequest_Atomicity) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, a := f.batches, f.atomicities
	f.batches, f.atomicities = nil, nil
	return b, a
}

// checkWriteOrder fails unless the batches of one pass follow the stages: the stage never goes back, and
// (ordered writes) no batch holds two stages.
func checkWriteOrder(t testing.TB, p *Programmer, batches [][]*p4v1.Update, oneStagePerBatch bool) {
	t.Helper()
	last := -1
	for bi, b := range batches {
		first := -1
		for _, up := range b {
			st := updateStage(t, p, up)
			if st < last {
				t.Fatalf("batch %d: %s (%s) written after %s", bi, describeUpdate(up), p.order.stageName(st), p.order.stageName(last))
			}
			if first < 0 {
				first = st
			} else if oneStagePerBatch && st != first {
				t.Fatalf("batch %d mixes %s and %s", bi, p.order.stageName(first), p.order.stageName(st))
			}
			last = st
		}
	}
}

func describeUpdate(up *p4v1.Update) string {
	kind := strings.TrimPrefix(fmt.Sprintf("%T", up.GetEntity().GetEntity()), "*v1.Entity_")
	return up.GetType().String() + " " + kind
}

// orderedSet is randomSet plus entries in every ranked table.
func orderedSet(t testing.TB, r *rand.Rand) *entry.Set {
	s := randomSet(t, r)
	for i := 0; i < r.IntN(4); i++ {
		s.Put(entry.Table("ingress.classify", 0, entry.Act("ingress.set_port", entry.P("port", u(uint64(r.IntN(3))))),
			entry.Exact("istd.input_port", u(uint64(r.IntN(5))))))
	}
	for i := 0; i < r.IntN(4); i++ {
		s.Put(entry.Table("ingress.acl", int32(1+r.IntN(3)), entry.Act("ingress.allow"),
			entry.Ternary("hdr.ipv4.protocol", u(uint64(r.IntN(3))), u(0xff))))
	}
	return s
}

// TestOrderedWritesFollowTheTableOrder: random sequences of desired sets, in batches of 1–5 updates: every
// pass writes rank by rank (inserts and modifies up the ranks, members before groups before entries, then
// deletes down the ranks), no batch spans two stages, and the target ends equal to the desired set.
func TestOrderedWritesFollowTheTableOrder(t *testing.T) {
	info := testInfo(t)
	passes := 0
	for seed := uint64(0); seed < 30; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		f := newFakeTarget(info)
		p := newTestProgrammer(t, f, info, Config{BatchSize: 1 + r.IntN(5), TableOrder: testOrder})
		ctx := context.Background()
		for step := 0; step < 25; step++ {
			want := orderedSet(t, r)
			if _, err := p.Sync(ctx, want); err != nil {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
			batches, atomicity := f.takeBatches()
			for _, a := range atomicity {
				if a != p4v1.WriteRequest_CONTINUE_ON_ERROR {
					t.Fatalf("ordered programmer sent a %v write", a)
				}
			}
			checkWriteOrder(t, p, batches, true)
			requireEqual(t, targetState(t, p, f), withoutInitialDefaults(info, want))
			passes++
		}
	}
	t.Logf("%d passes", passes)
}

// TestDeletesGoDownTheRanks: removing everything detaches the classification first and deletes what it
// relied on last; adding it back writes it last.
func TestDeletesGoDownTheRanks(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	p := newTestProgrammer(t, f, info, Config{TableOrder: testOrder})
	ctx := context.Background()
	s := baseSet(t)
	s.Delete(entry.Default("ingress.routes", entry.Act("NoAction")).Key()) // same stage as the routes: order within a stage is free
	s.Put(entry.Table("ingress.classify", 0, entry.Act("ingress.set_port", entry.P("port", u(1))), entry.Exact("istd.input_port", u(9))))
	var seq []string
	name := func(up *p4v1.Update) string {
		switch x := up.GetEntity().GetEntity().(type) {
		case *p4v1.Entity_TableEntry:
			tb, _ := info.TableByID(x.TableEntry.GetTableId())
			if x.TableEntry.GetIsDefaultAction() {
				return up.GetType().String() + " default " + tb.Name
			}
			return up.GetType().String() + " " + tb.Name
		}
		return describeUpdate(up)
	}
	for _, want := range []*entry.Set{s, mustSet(t)} {
		if _, err := p.Sync(ctx, want); err != nil {
			t.Fatal(err)
		}
		batches, _ := f.takeBatches()
		checkWriteOrder(t, p, batches, true)
		for _, b := range batches {
			for _, up := range b {
				if n := name(up); len(seq) == 0 || seq[len(seq)-1] != n {
					seq = append(seq, n)
				}
			}
		}
	}
	want := []string{
		"INSERT ingress.acl", "INSERT ingress.routes", "INSERT ActionProfileMember", "INSERT ActionProfileGroup", "INSERT ingress.services", "INSERT ingress.classify",
		"DELETE ingress.classify", "DELETE ingress.services", "DELETE ActionProfileGroup", "DELETE ActionProfileMember",
		"DELETE ingress.routes", "DELETE ingress.acl",
	}
	if strings.Join(seq, "\n") != strings.Join(want, "\n") {
		t.Fatalf("write sequence:\n  %s\nwant:\n  %s", strings.Join(seq, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestAStageThatKeepsFailingHoldsBackTheLaterOnes: a route that keeps failing transiently stops the pass
// after the routes' stage (nothing of a higher rank, and no delete, is written), and Run writes the rest, in
// order, once the route goes through.
func TestAStageThatKeepsFailingHoldsBackTheLaterOnes(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	p := newTestProgrammer(t, f, info, Config{TableOrder: testOrder, MaxAttempts: 2})
	ctx := context.Background()
	old := mustSet(t, route(0, 0x0b000000, 8, 1))
	if _, err := p.Sync(ctx, old); err != nil {
		t.Fatal(err)
	}
	f.takeBatches()
	failing := true
	f.mu.Lock()
	f.inject = func(up *p4v1.Update) codes.Code {
		if failing && up.GetType() == p4v1.Update_INSERT && up.GetEntity().GetTableEntry().GetTableId() == 33554434 {
			return codes.Unavailable
		}
		return codes.OK
	}
	f.mu.Unlock()
	s := baseSet(t) // routes, services (rank 2) and the ACL (rank 0); the old route goes
	_, err := p.Sync(ctx, s)
	var se *SyncError
	if !errors.As(err, &se) || !se.Held {
		t.Fatalf("Sync: %v, want the pass held back", err)
	}
	routesStage := p.order.stage(entry.KindTable, "ingress.routes", false)
	batches, _ := f.takeBatches()
	for _, b := range batches {
		for _, up := range b {
			if st := updateStage(t, p, up); st > routesStage {
				t.Fatalf("%s (%s) written while routes keep failing", describeUpdate(up), p.order.stageName(st))
			}
		}
	}
	if !p.Installed().Has(entry.Table("ingress.acl", 10, entry.Act("ingress.allow"), entry.Ternary("hdr.ipv4.protocol", u(6), u(0xff)),
		entry.Range("meta.dst_port", u(80), u(90))).Key()) {
		t.Fatal("the ACL (rank 0) was not written")
	}
	f.mu.Lock()
	failing = false
	f.mu.Unlock()
	f.takeBatches()
	p.mu.Lock()
	_, err = p.pass(ctx) // what Run does on its next retry
	p.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	batches, _ = f.takeBatches()
	checkWriteOrder(t, p, batches, true)
	requireEqual(t, targetState(t, p, f), withoutInitialDefaults(info, s))
}

// TestAtomicPassIsOneWriteInWriteOrder: with atomic writes a pass is one DATAPLANE_ATOMIC write, its updates
// in write order, deletes last.
func TestAtomicPassIsOneWriteInWriteOrder(t *testing.T) {
	info := testInfo(t)
	for seed := uint64(0); seed < 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 11))
		f := newFakeTarget(info)
		p := newTestProgrammer(t, f, info, Config{TableOrder: testOrder, Atomic: true, BatchSize: 2})
		ctx := context.Background()
		for step := 0; step < 20; step++ {
			want := orderedSet(t, r)
			res, err := p.Sync(ctx, want)
			if err != nil {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
			batches, atomicity := f.takeBatches()
			if res.Inserted+res.Modified+res.Deleted > 0 && (len(batches) != 1 || atomicity[0] != p4v1.WriteRequest_DATAPLANE_ATOMIC) {
				t.Fatalf("seed %d step %d: %d writes (%v) for %+v, want one atomic write", seed, step, len(batches), atomicity, res)
			}
			checkWriteOrder(t, p, batches, false)
			requireEqual(t, targetState(t, p, f), withoutInitialDefaults(info, want))
		}
	}
}

// TestAtomicWriteIsSentAgainWithoutWhatFailed: a full table fails one update of an atomic write (nothing of it
// is applied); the write goes again without it, and the failure is reported.
func TestAtomicWriteIsSentAgainWithoutWhatFailed(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	p := newTestProgrammer(t, f, info, Config{TableOrder: testOrder, Atomic: true})
	small := func(k uint64) entry.Entry {
		return entry.Table("ingress.small", 0, entry.Act("ingress.set_port", entry.P("port", u(k))), entry.Exact("meta.key", u(k)))
	}
	s := baseSet(t)
	for k := uint64(0); k < 5; k++ { // ingress.small holds 4
		s.Put(small(k))
	}
	res, err := p.Sync(context.Background(), s)
	var se *SyncError
	if !errors.As(err, &se) || se.Failures["ingress.small"][codes.ResourceExhausted] != 1 {
		t.Fatalf("Sync: %v, want one entry of ingress.small not installed (full)", err)
	}
	batches, atomicity := f.takeBatches()
	if len(batches) != 2 || atomicity[0] != p4v1.WriteRequest_DATAPLANE_ATOMIC || atomicity[1] != p4v1.WriteRequest_DATAPLANE_ATOMIC ||
		len(batches[1]) != len(batches[0])-1 {
		t.Fatalf("writes of %d and %d updates (%v), want the first again without one", len(batches[0]), len(batches[len(batches)-1]), atomicity)
	}
	if res.Inserted != s.Len()-2 || res.Pending != 1 {
		t.Fatalf("result %+v", res)
	}
	got := targetState(t, p, f)
	if got.Len() != withoutInitialDefaults(info, s).Len()-1 {
		t.Fatalf("target holds %d entries, want all but one of %d", got.Len(), withoutInitialDefaults(info, s).Len())
	}
}

// TestLargeAtomicPassIsSplitIntoOrderedChunks: a pass larger than MaxAtomicBytes goes as several atomic
// writes, one after the other, in write order.
func TestLargeAtomicPassIsSplitIntoOrderedChunks(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	p := newTestProgrammer(t, f, info, Config{TableOrder: testOrder, Atomic: true, MaxAtomicBytes: 300})
	ctx := context.Background()
	s := baseSet(t)
	for i := uint64(0); i < 40; i++ {
		s.Put(route(2, i<<8, 24, 1))
	}
	if _, err := p.Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	batches, atomicity := f.takeBatches()
	if len(batches) < 3 {
		t.Fatalf("%d writes, want the pass split", len(batches))
	}
	for _, a := range atomicity {
		if a != p4v1.WriteRequest_DATAPLANE_ATOMIC {
			t.Fatalf("a %v write", a)
		}
	}
	checkWriteOrder(t, p, batches, false)
	requireEqual(t, targetState(t, p, f), withoutInitialDefaults(info, s))
}

// TestTargetRefusingAtomicWritesIsWrittenInOrder: a target that answers UNIMPLEMENTED to atomic writes is
// written stage by stage instead, from then on.
func TestTargetRefusingAtomicWritesIsWrittenInOrder(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	f.refuseAtomic = true
	p := newTestProgrammer(t, f, info, Config{TableOrder: testOrder, Atomic: true})
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 3))
	for step := 0; step < 5; step++ {
		want := orderedSet(t, r)
		if _, err := p.Sync(ctx, want); err != nil {
			t.Fatal(err)
		}
		batches, atomicity := f.takeBatches()
		for _, a := range atomicity {
			if a != p4v1.WriteRequest_CONTINUE_ON_ERROR {
				t.Fatalf("a %v write reached the target", a)
			}
		}
		checkWriteOrder(t, p, batches, true)
		requireEqual(t, targetState(t, p, f), withoutInitialDefaults(info, want))
	}
	if !p.atomicRefused {
		t.Fatal("not marked as refusing atomic writes")
	}
}

// TestWriteModeFollowsTheProfile: the embedded target is written atomically, the others in order.
func TestWriteModeFollowsTheProfile(t *testing.T) {
	for _, c := range []struct {
		mode    WriteMode
		profile p4rt.TargetProfile
		atomic  bool
	}{
		{WriteModeAuto, p4rt.ProfileEmbedded, true},
		{WriteModeAuto, p4rt.ProfileP4DPDK, false},
		{WriteModeAuto, p4rt.ProfileIPUES2K, false},
		{WriteModeOrdered, p4rt.ProfileEmbedded, false},
		{WriteModeAtomic, p4rt.ProfileP4DPDK, true},
	} {
		if got := c.mode.atomic(c.profile); got != c.atomic {
			t.Errorf("mode %q on %s: atomic %v, want %v", c.mode, c.profile, got, c.atomic)
		}
	}
}

// TestOrderedPassWaitsBetweenTheSwitchAndTheDeletes: with DeleteGrace, an ordered pass that modified
// something does not delete before the grace is over (an hour here: the pass is cancelled while waiting, with
// its inserts written and its deletes not).
func TestOrderedPassWaitsBetweenTheSwitchAndTheDeletes(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	p := newTestProgrammer(t, f, info, Config{TableOrder: testOrder, DeleteGrace: time.Hour})
	old := mustSet(t, route(0, 0x0b000000, 8, 1), route(0, 0x0c000000, 8, 1))
	if _, err := p.Sync(context.Background(), old); err != nil {
		t.Fatal(err) // nothing deleted: no wait
	}
	f.takeBatches()
	next := mustSet(t, route(0, 0x0b000000, 8, 2), route(0, 0x0d000000, 8, 1))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Sync(ctx, next)
		done <- err
	}()
	for {
		f.mu.Lock()
		n := len(f.batches)
		f.mu.Unlock()
		if n > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Sync returned %v without waiting", err)
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Sync: %v, want cancelled while waiting", err)
	}
	batches, _ := f.takeBatches()
	for _, b := range batches {
		for _, up := range b {
			if up.GetType() == p4v1.Update_DELETE {
				t.Fatalf("deleted before the grace was over: %v", up)
			}
		}
	}
	if len(batches) == 0 {
		t.Fatal("nothing written before the wait")
	}
}
