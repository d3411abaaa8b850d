package programmer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"

	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

const testP4Info = "../p4rt/testdata/test.p4info.txtpb"

func testInfo(t testing.TB) *p4rt.Info {
	t.Helper()
	pi, err := p4rt.LoadP4Info(testP4Info)
	if err != nil {
		t.Fatal(err)
	}
	in, err := p4rt.NewInfo(pi)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func newTestProgrammer(t testing.TB, target Target, info *p4rt.Info, cfg Config) *Programmer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t)
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = time.Millisecond
	}
	p, err := New(target, info, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var u = entry.Uint

func route(vrf, dst uint64, plen int, port uint64) entry.Entry {
	return entry.Table("ingress.routes", 0, entry.Act("ingress.set_nexthop", entry.P("port", u(port)), entry.P("dmac", u(0xee))),
		entry.Exact("meta.vrf", u(vrf)), entry.LPM("hdr.ipv4.dst_addr", u(dst), plen))
}

func backend(name string, addr uint64) entry.Entry {
	return entry.Member("ingress.backends", name, entry.Act("ingress.dnat", entry.P("addr", u(addr)), entry.P("port", u(8080))))
}

func service(vip uint64, group string) entry.Entry {
	return entry.TableGroup("ingress.services", 0, group, entry.Exact("hdr.ipv4.dst_addr", u(vip)), entry.Exact("meta.dst_port", u(80)))
}

func mustSet(t testing.TB, es ...entry.Entry) *entry.Set {
	t.Helper()
	s, err := entry.NewSet(es...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func baseSet(t testing.TB) *entry.Set {
	return mustSet(t,
		route(0, 0x0a000000, 8, 1), route(0, 0x0a010000, 16, 2), route(1, 0, 0, 3),
		entry.Table("ingress.acl", 10, entry.Act("ingress.allow"), entry.Ternary("hdr.ipv4.protocol", u(6), u(0xff)), entry.Range("meta.dst_port", u(80), u(90))),
		entry.Default("ingress.routes", entry.Act("NoAction")),
		backend("web/a", 0x0a000001), backend("web/b", 0x0a000002), backend("db/a", 0x0a000003),
		entry.Group("ingress.backends", "web", entry.W("web/a", 1), entry.W("web/b", 1)),
		entry.Group("ingress.backends", "db", entry.W("db/a", 1)),
		service(0x0a600001, "web"), service(0x0a600002, "db"),
	)
}

// targetState decodes the target's content with the programmer's ids.
func targetState(t testing.TB, p *Programmer, f *fakeTarget) *entry.Set {
	t.Helper()
	s := mustSet(t)
	var ents []*p4v1.Entity
	f.mu.Lock()
	for _, te := range f.tables {
		ents = append(ents, &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}})
	}
	for _, m := range f.members {
		ents = append(ents, &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileMember{ActionProfileMember: m}})
	}
	for _, g := range f.groups {
		ents = append(ents, &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileGroup{ActionProfileGroup: g}})
	}
	f.mu.Unlock()
	for _, ent := range ents {
		e, err := p.info.Decode(ent, p.ids)
		if err != nil {
			t.Fatalf("target holds something the programmer cannot name: %v", err)
		}
		if e.Kind == entry.KindDefault {
			if init, ok := p.info.InitialDefault(e.Table); ok && init.Equal(e) {
				continue
			}
		}
		if _, err := s.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// withoutInitialDefaults drops default entries equal to the program's.
func withoutInitialDefaults(info *p4rt.Info, s *entry.Set) *entry.Set {
	out := s.Clone()
	for k, e := range s.All() {
		if init, ok := info.InitialDefault(e.Table); e.Kind == entry.KindDefault && ok && init.Equal(e) {
			out.Delete(k)
		}
	}
	return out
}

func requireEqual(t testing.TB, got, want *entry.Set) {
	t.Helper()
	if !got.Equal(want) {
		d := entry.Diff(want, got)
		t.Fatalf("target differs from desired:\nmissing %v\nextra %v\ndifferent %v", d.Delete, d.Insert, d.Modify)
	}
}

func TestSyncInstallsEverythingAndASecondSyncSendsNothing(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	p := newTestProgrammer(t, f, info, Config{})
	ctx := context.Background()
	want := baseSet(t)
	res, err := p.Sync(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != want.Len()-1 || res.Modified != 1 || !res.Reconciled { // the default action is a MODIFY
		t.Fatalf("first Sync: %+v, want %d inserts and a modify after a reconcile", res, want.Len()-1)
	}
	requireEqual(t, targetState(t, p, f), withoutInitialDefaults(info, want))
	f.takeUpdates()
	// Same set object, and an equal new set object: nothing to send.
	for _, s := range []*entry.Set{want, baseSet(t)} {
		res, err = p.Sync(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(f.takeUpdates()); n != 0 || res.Writes != 0 {
			t.Fatalf("idempotent Sync sent %d updates (%+v)", n, res)
		}
	}
}

func TestSyncOrdersByDependency(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	p := newTestProgrammer(t, f, info, Config{})
	ctx := context.Background()
	if _, err := p.Sync(ctx, baseSet(t)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	batches := f.batches
	f.batches = nil
	f.mu.Unlock()
	// Every batch holds one kind of entity, members before groups before
	// tables.
	rank := func(u *p4v1.Update) int {
		switch u.GetEntity().GetEntity().(type) {
		case *p4v1.Entity_ActionProfileMember:
			return 0
		case *p4v1.Entity_ActionProfileGroup:
			return 1
		}
		return 2
	}
	last := -1
	for _, b := range batches {
		r := rank(b[0])
		for _, u := range b {
			if rank(u) != r {
				t.Fatalf("batch mixes dependent entity kinds: %v", b)
			}
		}
		if r < last {
			t.Fatalf("batch of rank %d after rank %d", r, last)
		}
		last = r
	}

	// Replace the web backends: new member in, group modified, table entry
	// repointed, old things out - in that order.
	next := baseSet(t)
	next.Delete(backend("web/a", 0).Key())
	next.Delete(entry.Group("ingress.backends", "db").Key())
	next.Delete(backend("db/a", 0).Key())
	next.Put(backend("web/c", 0x0a000009))
	next.Put(entry.Group("ingress.backends", "web", entry.W("web/b", 1), entry.W("web/c", 2)))
	next.Put(service(0x0a600002, "web"))
	res, err := p.Sync(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, u := range f.takeUpdates() {
		kind := fmt.Sprintf("%T", u.GetEntity().GetEntity())
		kind = strings.TrimPrefix(kind, "*v1.Entity_")
		seq = append(seq, u.GetType().String()+" "+kind)
	}
	want := []string{
		"INSERT ActionProfileMember", "MODIFY ActionProfileGroup", "MODIFY TableEntry",
		"DELETE ActionProfileGroup", "DELETE ActionProfileMember", "DELETE ActionProfileMember",
	}
	if strings.Join(seq, ",") != strings.Join(want, ",") {
		t.Fatalf("updates %v\nwant    %v", seq, want)
	}
	if res.Inserted != 1 || res.Modified != 2 || res.Deleted != 3 {
		t.Fatalf("result %+v", res)
	}
	requireEqual(t, targetState(t, p, f), withoutInitialDefaults(info, next))
}

func TestChangedActionIsOneModify(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	p := newTestProgrammer(t, f, info, Config{})
	ctx := context.Background()
	s := baseSet(t)
	if _, err := p.Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	f.takeUpdates()
	s.Put(route(0, 0x0a000000, 8, 42))
	s.Put(backend("web/a", 0x0b000001))
	if _, err := p.Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	ups := f.takeUpdates()
	if len(ups) != 2 || ups[0].GetType() != p4v1.Update_MODIFY || ups[1].GetType() != p4v1.Update_MODIFY {
		t.Fatalf("want two MODIFYs, got %v", ups)
	}
}

func TestTableFullInstallsTheRestAndRetriesLater(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	p := newTestProgrammer(t, f, info, Config{BatchSize: 3})
	ctx := context.Background()
	small := func(k uint64) entry.Entry {
		return entry.Table("ingress.small", 0, entry.Act("ingress.set_port", entry.P("port", u(k))), entry.Exact("meta.key", u(k)))
	}
	s := mustSet(t, route(0, 0x0a000000, 8, 1))
	for k := uint64(0); k < 6; k++ { // ingress.small holds 4
		s.Put(small(k))
	}
	res, err := p.Sync(ctx, s)
	var se *SyncError
	if !errors.As(err, &se) || len(se.TableFull) != 1 || se.TableFull[0] != "ingress.small" ||
		se.Failures["ingress.small"][codes.ResourceExhausted] != 2 {
		t.Fatalf("Sync error = %v, want ingress.small full for 2 entries", err)
	}
	if res.Inserted != 5 || res.Pending != 2 {
		t.Fatalf("result %+v, want 5 inserted and 2 pending", res)
	}
	if p.InSync() {
		t.Fatal("InSync with pending entries")
	}
	if st := p.Stats(); st.Pending != 2 || st.Installed["ingress.small"] != 4 || st.Installed["ingress.routes"] != 1 || st.LastError == nil {
		t.Fatalf("Stats = %+v", st)
	}
	// Room appears (two installed entries are no longer desired): the next
	// pass installs exactly the two that failed.
	installed := p.Installed()
	removed := 0
	for k := uint64(0); k < 6 && removed < 2; k++ {
		if installed.Has(small(k).Key()) {
			s.Delete(small(k).Key())
			removed++
		}
	}
	f.takeUpdates()
	res, err = p.Sync(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 2 || res.Deleted != 2 || !p.InSync() {
		t.Fatalf("retry result %+v", res)
	}
	requireEqual(t, targetState(t, p, f), s)
}

func TestTransientErrorsAreRetriedWithoutResendingSuccesses(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	p := newTestProgrammer(t, f, info, Config{})
	failures := map[string]int{}
	f.inject = func(up *p4v1.Update) codes.Code {
		k := tableKey(up.GetEntity().GetTableEntry())
		if up.GetEntity().GetTableEntry().GetTableId() == 33554434 && failures[k] < 2 { // routes: fail twice
			failures[k]++
			return codes.Unavailable
		}
		return codes.OK
	}
	s := baseSet(t)
	if _, err := p.Sync(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	sent := map[string]int{}
	for _, up := range f.takeUpdates() {
		if te := up.GetEntity().GetTableEntry(); te != nil && !te.GetIsDefaultAction() {
			sent[tableKey(te)]++
		}
	}
	for k, n := range sent {
		if failures[k] > 0 && n != 3 || failures[k] == 0 && n != 1 {
			t.Fatalf("entry sent %d times after %d transient failures", n, failures[k])
		}
	}
	requireEqual(t, targetState(t, p, f), withoutInitialDefaults(info, s))
}

func TestNotPrimaryWritesNothingThenCatchesUp(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	f.setStatus(false, 0)
	p := newTestProgrammer(t, f, info, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := baseSet(t)
	if _, err := p.Sync(ctx, s); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("Sync while backup = %v, want ErrNotPrimary", err)
	}
	if len(f.takeUpdates()) != 0 || p.Ready() {
		t.Fatal("a backup wrote or says it is ready")
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	f.setStatus(true, 1)
	deadline := time.After(30 * time.Second)
	for !p.Ready() || !p.InSync() {
		select {
		case <-deadline:
			t.Fatal("Run did not apply the desired state after becoming primary")
		case <-time.After(5 * time.Millisecond):
		}
	}
	requireEqual(t, targetState(t, p, f), withoutInitialDefaults(info, s))
	cancel()
	<-done
}

func TestRestartedManagerReconcilesWithZeroWrites(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	ctx := context.Background()
	first := newTestProgrammer(t, f, info, Config{})
	if _, err := first.Sync(ctx, baseSet(t)); err != nil {
		t.Fatal(err)
	}
	f.takeUpdates()
	second := newTestProgrammer(t, f, info, Config{})
	res, err := second.Sync(ctx, baseSet(t))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reconciled || res.Writes != 0 || len(f.takeUpdates()) != 0 {
		t.Fatalf("restart reconcile wrote: %+v", res)
	}
	requireEqual(t, second.Installed(), withoutInitialDefaults(info, baseSet(t)))
}

func TestReconcileDeletesWhatIsNotDesiredAndFixesWhatChanged(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	ctx := context.Background()
	first := newTestProgrammer(t, f, info, Config{})
	if _, err := first.Sync(ctx, baseSet(t)); err != nil {
		t.Fatal(err)
	}
	// While the manager is down, desired changes: a backend moves, a route
	// and the db service go away.
	next := baseSet(t)
	next.Put(backend("web/b", 0x0a0000ff))
	next.Delete(route(0, 0x0a010000, 16, 0).Key())
	next.Delete(service(0x0a600002, "").Key())
	next.Delete(entry.Group("ingress.backends", "db").Key())
	next.Delete(backend("db/a", 0).Key())
	f.takeUpdates()
	second := newTestProgrammer(t, f, info, Config{})
	res, err := second.Sync(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	// The changed backend is make-before-break: a new member, the group
	// repointed, the old member deleted (with the route, the db service,
	// its group and member).
	if res.Inserted != 1 || res.Modified != 1 || res.Deleted != 5 {
		t.Fatalf("result %+v, want 1 insert, 1 modify and 5 deletes", res)
	}
	requireEqual(t, targetState(t, second, f), withoutInitialDefaults(info, next))
}

func TestInvalidEntriesAreRejectedOnceAndTheRestInstalled(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	p := newTestProgrammer(t, f, info, Config{})
	ctx := context.Background()
	bad := entry.Table("ingress.routes", 0, entry.Act("ingress.allow"), entry.Exact("meta.vrf", u(9))) // not a routes action
	s := baseSet(t)
	s.Put(bad)
	_, err := p.Sync(ctx, s)
	if err != nil {
		t.Fatalf("a P4Info rejection is reported through Rejected, not a Sync failure: %v", err)
	}
	if rej := p.Rejected(); len(rej) != 1 || rej[bad.Key()] == nil {
		t.Fatalf("Rejected = %v", rej)
	}
	want := withoutInitialDefaults(info, s)
	want.Delete(bad.Key())
	requireEqual(t, targetState(t, p, f), want)
	f.takeUpdates()
	if res, _ := p.Sync(ctx, s); res.Writes != 0 || res.Rejected != 1 {
		t.Fatalf("rejected entry was retried: %+v", res)
	}
	// Fixing it installs it.
	s.Delete(bad.Key())
	s.Put(entry.Table("ingress.routes", 0, entry.Act("ingress.drop"), entry.Exact("meta.vrf", u(9))))
	if res, err := p.Sync(ctx, s); err != nil || res.Inserted != 1 || res.Rejected != 0 {
		t.Fatalf("fixed entry: %+v, %v", res, err)
	}
}

func TestDefaultActionsAreSetAndReset(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	p := newTestProgrammer(t, f, info, Config{})
	ctx := context.Background()
	s := mustSet(t, entry.Default("ingress.classify", entry.Act("ingress.set_port", entry.P("port", u(5)))))
	if res, err := p.Sync(ctx, s); err != nil || res.Modified != 1 {
		t.Fatalf("set default: %+v %v", res, err)
	}
	s.Delete(entry.Default("ingress.classify", entry.Act("x")).Key())
	res, err := p.Sync(ctx, s)
	if err != nil || res.Modified != 1 {
		t.Fatalf("reset default: %+v %v", res, err)
	}
	ups := f.takeUpdates()
	last := ups[len(ups)-1].GetEntity().GetTableEntry()
	if !last.GetIsDefaultAction() || last.GetAction() != nil {
		t.Fatalf("reset sent %v", last)
	}
	// Desiring the program's own default writes nothing.
	s.Put(entry.Default("ingress.classify", entry.Act("ingress.drop")))
	if res, err := p.Sync(ctx, s); err != nil || res.Writes != 0 {
		t.Fatalf("program default: %+v %v", res, err)
	}
}

// randomSet draws a desired set from a small universe, so that successive
// sets overlap, share members between groups and move references around.
func randomSet(t testing.TB, r *rand.Rand) *entry.Set {
	s := mustSet(t)
	nMembers := r.IntN(8)
	var members []string
	for i := 0; i < nMembers; i++ {
		name := fmt.Sprint("m", r.IntN(10))
		if !slices.Contains(members, name) {
			members = append(members, name)
		}
		s.Put(backend(name, uint64(r.IntN(3)+1))) // contents collide on purpose
	}
	var groups []string
	for i := 0; i < r.IntN(4); i++ {
		name := fmt.Sprint("g", r.IntN(5))
		var ms []entry.GroupMember
		for _, m := range members {
			if r.IntN(2) == 0 {
				ms = append(ms, entry.W(m, 1+r.Int32N(3)))
			}
		}
		groups = append(groups, name)
		if _, err := s.Put(entry.Group("ingress.backends", name, ms...)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < r.IntN(6); i++ {
		vip := uint64(r.IntN(6) + 1)
		switch {
		case len(groups) > 0 && r.IntN(2) == 0:
			s.Put(service(vip, groups[r.IntN(len(groups))]))
		case len(members) > 0:
			s.Put(entry.TableMember("ingress.services", 0, members[r.IntN(len(members))],
				entry.Exact("hdr.ipv4.dst_addr", u(vip)), entry.Exact("meta.dst_port", u(80))))
		}
	}
	for i := 0; i < r.IntN(10); i++ {
		s.Put(route(uint64(r.IntN(2)), uint64(r.IntN(4))<<24, 8, uint64(r.IntN(3))))
	}
	if r.IntN(2) == 0 {
		s.Put(entry.Default("ingress.routes", entry.Act([]string{"ingress.drop", "NoAction"}[r.IntN(2)])))
	}
	return s
}

func TestRandomSequencesOfDesiredSetsConverge(t *testing.T) {
	info := testInfo(t)
	for seed := uint64(0); seed < 30; seed++ {
		r := rand.New(rand.NewPCG(seed, 99))
		f := newFakeTarget(info)
		p := newTestProgrammer(t, f, info, Config{BatchSize: 1 + r.IntN(5)})
		ctx := context.Background()
		var last *entry.Set
		for step := 0; step < 25; step++ {
			last = randomSet(t, r)
			if r.IntN(5) == 0 { // a manager restart now and then
				p = newTestProgrammer(t, f, info, Config{BatchSize: 1 + r.IntN(5)})
			}
			if _, err := p.Sync(ctx, last); err != nil {
				var se *SyncError
				errors.As(err, &se)
				t.Fatalf("seed %d step %d: %v\n%v\n%s", seed, step, err, se.Examples, last)
			}
			requireEqual(t, targetState(t, p, f), withoutInitialDefaults(info, last))
		}
	}
}

func TestNothingIsWrittenBeforeTheFirstSync(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	ctx := context.Background()
	first := newTestProgrammer(t, f, info, Config{})
	if _, err := first.Sync(ctx, baseSet(t)); err != nil {
		t.Fatal(err)
	}
	f.takeUpdates()
	// A restarted manager that is ready (reconciled) but has no desired
	// state yet must leave the target alone, even with Run going.
	second := newTestProgrammer(t, f, info, Config{})
	if err := second.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- second.Run(rctx) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	<-done
	if ups := f.takeUpdates(); len(ups) != 0 {
		t.Fatalf("a programmer without desired state wrote %d updates", len(ups))
	}
}

// Entries written or removed behind the programmer's back (same session, no
// reconcile): an insert that meets ALREADY_EXISTS is compared and adopted
// or modified; a delete that meets NOT_FOUND is done.
func TestSurprisesFromTheTargetAreAbsorbed(t *testing.T) {
	info := testInfo(t)
	f := newFakeTarget(info)
	p := newTestProgrammer(t, f, info, Config{})
	ctx := context.Background()
	s := baseSet(t)
	if _, err := p.Sync(ctx, s); err != nil {
		t.Fatal(err)
	}
	same := route(2, 0x0b000000, 8, 1)
	other := route(2, 0x0c000000, 8, 1)
	otherOnTarget := route(2, 0x0c000000, 8, 9)
	gone := route(0, 0x0a000000, 8, 1)
	// Someone else writes two routes and deletes one of ours.
	for _, w := range []struct {
		typ p4v1.Update_Type
		e   entry.Entry
	}{{p4v1.Update_INSERT, same}, {p4v1.Update_INSERT, otherOnTarget}, {p4v1.Update_DELETE, gone}} {
		ent, err := info.Encode(w.e, p.ids)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Write(ctx, []*p4v1.Update{{Type: w.typ, Entity: ent}}); err != nil {
			t.Fatal(err)
		}
	}
	f.takeUpdates()
	s.Put(same)
	s.Put(other)
	s.Delete(gone.Key())
	res, err := p.Sync(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, up := range f.takeUpdates() {
		types = append(types, up.GetType().String())
	}
	// INSERT same (exists, equal: adopted), INSERT other (exists, differs),
	// DELETE gone (not found: fine), then MODIFY other.
	slices.Sort(types)
	if strings.Join(types, ",") != "DELETE,INSERT,INSERT,MODIFY" {
		t.Fatalf("updates sent: %v", types)
	}
	if res.Inserted != 1 || res.Modified != 1 || res.Deleted != 1 || !p.InSync() {
		t.Fatalf("result %+v", res)
	}
	requireEqual(t, targetState(t, p, f), withoutInitialDefaults(info, s))
}
