package softswitch_test

import (
	"io"
	"sort"
	"testing"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/calico-p4/calico-p4/ipu/softswitch"
)

// key renders an entity deterministically, for set comparisons. Match fields are compared as a set
// (P4Runtime does not require servers to keep their order), so they are sorted by field id first.
func key(t testing.TB, e *p4.Entity) string {
	e = proto.Clone(e).(*p4.Entity)
	for _, te := range []*p4.TableEntry{e.GetTableEntry(), e.GetDirectCounterEntry().GetTableEntry()} {
		if te != nil {
			sort.Slice(te.Match, func(i, j int) bool { return te.Match[i].FieldId < te.Match[j].FieldId })
		}
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sameSet fails unless got and want hold the same entities (order ignored).
func sameSet(t testing.TB, what string, got, want []*p4.Entity) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: read %d entities, want %d\ngot:  %v\nwant: %v", what, len(got), len(want), got, want)
	}
	g := make([]string, len(got))
	w := make([]string, len(want))
	for i := range got {
		g[i], w[i] = key(t, got[i]), key(t, want[i])
	}
	sort.Strings(g)
	sort.Strings(w)
	for i := range g {
		if g[i] != w[i] {
			t.Fatalf("%s: read %v\nwant %v", what, got, want)
		}
	}
}

func TestReadAfterWriteOfEveryEntityType(t *testing.T) {
	h := newHarness(t)
	ct := h.primary(1)
	ct.commit()

	exactE := withTE(exactEntry(5, 3), func(t *p4.TableEntry) { t.Metadata = []byte("m"); t.ControllerMetadata = 77 })
	lpmE := te(tLPM, 0, act(aSetNhop, param(1, 10, 0, 0, 1), param(2, 2)), exact(1, 1), lpm(2, 24, 10, 1, 2, 0))
	lpmDontCare := te(tLPM, 0, act(aDrop), exact(1, 2))
	aclE := aclEntry(9, act(aDeny), tern(1, []byte{10, 0, 0, 0}, []byte{0xff, 0, 0, 0}), lpm(2, 16, 10, 1, 0, 0),
		rng(3, []byte{80}, []byte{0x01, 0xbb}), opt(4, 1))
	aclPoint := aclEntry(8, act(aPermit), rng(3, []byte{22}, []byte{22}))
	idleE := withTE(te(tIdle, 0, setPort, exact(1, 10, 0, 0, 9)), func(t *p4.TableEntry) { t.IdleTimeoutNs = 5e9 })
	m1 := member(pECMP, 1, nhop(1, 1))
	m2 := member(pECMP, 2, nhop(2, 2))
	g1 := group(pECMP, 10, 8, gm(1, 2), &p4.ActionProfileGroup_Member{MemberId: 2, Weight: 3, WatchKind: &p4.ActionProfileGroup_Member_WatchPort{WatchPort: []byte{0x01, 0x02}}})
	ecmpG := ecmpEntry(1, groupAct(10))
	ecmpM := ecmpEntry(2, memberAct(2))
	pm := member(pPlain, 4, &p4.Action{ActionId: aSetPort, Params: []*p4.Action_Param{param(1, 4)}})
	profE := te(tProfile, 0, memberAct(4), exact(1, 7))
	osE := oneShotEntry(3, oneShot(osa(1, 2), &p4.ActionProfileAction{Action: nhop(2, 2), Weight: 1, WatchKind: &p4.ActionProfileAction_WatchPort{WatchPort: []byte{7}}}))
	def := defaultEntry(tACL, act(aDeny))
	dg := digest(dgMac, &p4.DigestEntry_Config{MaxTimeoutNs: 1e6, MaxListSize: 10, AckTimeoutNs: 1e9})
	ct.mustWrite(ins(exactE), ins(lpmE), ins(lpmDontCare), ins(aclE), ins(aclPoint), ins(idleE), ins(m1), ins(m2), ins(pm), ins(dg), mod(def))
	ct.mustWrite(ins(g1), ins(ecmpM), ins(profE), ins(osE))
	ct.mustWrite(ins(ecmpG), mod(counterEntry(cPortPkts, idx(3), 11)), mod(register(rReg32, idx(2), bits(1, 2, 3, 4))),
		mod(register(rSigned, idx(1), bits(0xff, 0x9d))), mod(register(rWide, idx(1), bits(1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1))),
		mod(directCounter(exactEntry(5, 3), 5)))

	sameSet(t, "exact", h.mustRead(entTE(&p4.TableEntry{TableId: tExact})), []*p4.Entity{exactE})
	sameSet(t, "lpm", h.mustRead(entTE(&p4.TableEntry{TableId: tLPM})), []*p4.Entity{lpmE, lpmDontCare})
	sameSet(t, "acl", h.mustRead(entTE(&p4.TableEntry{TableId: tACL})), []*p4.Entity{aclE, aclPoint})
	sameSet(t, "idle", h.mustRead(entTE(&p4.TableEntry{TableId: tIdle})), []*p4.Entity{idleE})
	sameSet(t, "ecmp", h.mustRead(entTE(&p4.TableEntry{TableId: tECMP})), []*p4.Entity{ecmpG, ecmpM})
	sameSet(t, "profile", h.mustRead(entTE(&p4.TableEntry{TableId: tProfile})), []*p4.Entity{profE})
	sameSet(t, "one-shot", h.mustRead(entTE(&p4.TableEntry{TableId: tOneShot})), []*p4.Entity{osE})
	sameSet(t, "members", h.mustRead(member(pECMP, 0, nil)), []*p4.Entity{m1, m2})
	sameSet(t, "all members", h.mustRead(member(0, 0, nil)), []*p4.Entity{m1, m2, pm})
	sameSet(t, "one member", h.mustRead(member(pECMP, 2, nil)), []*p4.Entity{m2})
	sameSet(t, "groups", h.mustRead(group(0, 0, 0)), []*p4.Entity{g1})
	sameSet(t, "digest", h.mustRead(digest(0, nil)), []*p4.Entity{dg})
	wantDef := withTE(defaultEntry(tACL, act(aDeny)), func(*p4.TableEntry) {})
	sameSet(t, "default entry", h.mustRead(withTE(defaultEntry(tACL, nil), func(*p4.TableEntry) {})), []*p4.Entity{wantDef})

	c := h.mustRead(counterEntry(cPortPkts, idx(3), 0))
	if len(c) != 1 || c[0].GetCounterEntry().GetData().GetPacketCount() != 11 {
		t.Fatalf("counter: %v", c)
	}
	if all := h.mustRead(counterEntry(cPortPkts, nil, 0)); len(all) != 512 {
		t.Fatalf("counter wildcard read %d cells", len(all))
	}
	regs := h.mustRead(register(rReg32, idx(2), nil), register(rSigned, idx(1), nil), register(rWide, idx(1), nil), register(rReg32, idx(0), nil))
	wantRegs := []*p4.P4Data{bits(1, 2, 3, 4), bits(0x9d), bits(1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), bits(0)}
	for i, r := range regs {
		if !proto.Equal(r.GetRegisterEntry().GetData(), wantRegs[i]) {
			t.Fatalf("register read %d: %v, want %v", i, r, wantRegs[i])
		}
	}
	if all := h.mustRead(register(0, nil, nil)); len(all) != 16+4+2 {
		t.Fatalf("all registers: %d cells", len(all))
	}
	dc := h.mustRead(directCounter(exactEntry(5, 3), 0))
	if len(dc) != 1 || dc[0].GetDirectCounterEntry().GetData().GetPacketCount() != 5 {
		t.Fatalf("direct counter: %v", dc)
	}
	withCounter := h.mustRead(entTE(&p4.TableEntry{TableId: tExact, CounterData: &p4.CounterData{}}))
	if withCounter[0].GetTableEntry().GetCounterData().GetPacketCount() != 5 {
		t.Fatalf("counter_data in a table read: %v", withCounter[0])
	}
	hits := h.mustRead(entTE(&p4.TableEntry{TableId: tIdle, TimeSinceLastHit: &p4.TableEntry_IdleTimeout{}}))
	if hits[0].GetTableEntry().GetTimeSinceLastHit() == nil {
		t.Fatalf("time_since_last_hit not returned: %v", hits[0])
	}
}

func TestReadWildcardsAndFilters(t *testing.T) {
	h := newHarness(t)
	ct := h.primary(1)
	ct.commit()
	a := aclEntry(5, act(aDeny), opt(4, 1))
	b := aclEntry(6, act(aPermit), opt(4, 1))
	c := withTE(aclEntry(7, act(aDeny), opt(4, 2)), func(t *p4.TableEntry) { t.Metadata = []byte("x"); t.ControllerMetadata = 3 })
	e := exactEntry(1, 1)
	ct.mustWrite(ins(a), ins(b), ins(c), ins(e))
	cases := []struct {
		name string
		q    *p4.Entity
		want []*p4.Entity
	}{
		{"all tables", entTE(&p4.TableEntry{}), []*p4.Entity{a, b, c, e}},
		{"one table", entTE(&p4.TableEntry{TableId: tACL}), []*p4.Entity{a, b, c}},
		{"priority", entTE(&p4.TableEntry{TableId: tACL, Priority: 6}), []*p4.Entity{b}},
		{"action", entTE(&p4.TableEntry{TableId: tACL, Action: act(aDeny)}), []*p4.Entity{a, c}},
		{"metadata", entTE(&p4.TableEntry{TableId: tACL, Metadata: []byte("x")}), []*p4.Entity{c}},
		{"controller metadata", entTE(&p4.TableEntry{TableId: tACL, ControllerMetadata: 3}), []*p4.Entity{c}},
		{"exact key", entTE(&p4.TableEntry{TableId: tACL, Priority: 5, Match: []*p4.FieldMatch{exact(5, 6), opt(4, 1)}}), []*p4.Entity{a}},
		{"key at any priority", entTE(&p4.TableEntry{TableId: tACL, Match: []*p4.FieldMatch{exact(5, 6), opt(4, 1)}}), []*p4.Entity{a, b}},
		{"missing key", entTE(&p4.TableEntry{TableId: tACL, Priority: 5, Match: []*p4.FieldMatch{exact(5, 17)}}), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { sameSet(t, tc.name, h.mustRead(tc.q), tc.want) })
	}
	// Several requests in one Read, one of them invalid: entities of the others, then UNKNOWN with
	// one p4.v1.Error per request.
	got, err := h.read(entTE(&p4.TableEntry{TableId: tExact}), entTE(&p4.TableEntry{TableId: 0x0200ffff}), &p4.Entity{})
	if len(got) != 1 {
		t.Fatalf("entities before the error: %v", got)
	}
	st := status.Convert(err)
	if st.Code() != codes.Unknown || len(st.Details()) != 3 {
		t.Fatalf("read error %v", err)
	}
	for i, want := range []codes.Code{codes.OK, codes.NotFound, codes.InvalidArgument} {
		if c := codes.Code(st.Details()[i].(*p4.Error).CanonicalCode); c != want {
			t.Fatalf("request %d: %v, want %v", i, c, want)
		}
	}
	if _, err := h.c.Read(ctx(t), &p4.ReadRequest{DeviceId: 5, Entities: []*p4.Entity{entTE(&p4.TableEntry{})}}); err == nil {
		rc, _ := h.c.Read(ctx(t), &p4.ReadRequest{DeviceId: 5, Entities: []*p4.Entity{entTE(&p4.TableEntry{})}})
		if _, err := rc.Recv(); status.Code(err) != codes.NotFound {
			t.Fatalf("read of an unknown device: %v", err)
		}
	}
}

func TestReadBeforePipelineConfigFails(t *testing.T) {
	h := newHarness(t)
	if _, err := h.read(entTE(&p4.TableEntry{})); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("read before config: %v", err)
	}
}

func TestReadStreamsInChunks(t *testing.T) {
	h := newHarness(t, func(c *softswitch.Config) { c.ReadChunkEntities = 10 })
	ct := h.primary(1)
	ct.commit()
	var ups []*p4.Update
	for i := 0; i < 95; i++ {
		ups = append(ups, ins(routeEntry(i)))
	}
	ct.mustWrite(ups...)
	rc, err := h.c.Read(ctx(t), &p4.ReadRequest{DeviceId: deviceID, Entities: []*p4.Entity{entTE(&p4.TableEntry{TableId: tLPM})}})
	if err != nil {
		t.Fatal(err)
	}
	msgs, total := 0, 0
	for {
		r, err := rc.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		msgs++
		total += len(r.Entities)
		if len(r.Entities) > 10 {
			t.Fatalf("a response with %d entities", len(r.Entities))
		}
	}
	if msgs != 10 || total != 95 {
		t.Fatalf("%d responses with %d entities, want 10 with 95", msgs, total)
	}
}

func TestLargeBatchIsWrittenAndReadBackIntact(t *testing.T) {
	if testing.Short() {
		t.Skip("100k entries")
	}
	h := newHarness(t)
	ct := h.primary(1)
	ct.commit()
	const n = 100000
	ups := make([]*p4.Update, n)
	want := make([]*p4.Entity, n)
	for i := range ups {
		want[i] = routeEntry(i)
		ups[i] = ins(want[i])
	}
	ct.mustWrite(ups...)
	sameSet(t, "100k", h.mustRead(entTE(&p4.TableEntry{TableId: tLPM})), want)
	// The data plane sees every one of them.
	st, tbl := h.table(tLPM)
	if tbl.Len() != n {
		t.Fatalf("data plane has %d entries", tbl.Len())
	}
	for i := 0; i < n; i += 997 {
		key := []byte{0, 1, 10, byte(i >> 16), byte(i >> 8), byte(i)}
		e := st.Lookup(tbl, key)
		if e == nil || st.Resolve(e, 0).Param(1)[1] != byte(i%250+1) {
			t.Fatalf("lookup of entry %d: %v", i, e)
		}
	}
}

func TestNonCanonicalWritesReadBackCanonical(t *testing.T) {
	h := newHarness(t)
	ct := h.primary(1)
	ct.commit()
	ct.mustWrite(ins(te(tLPM, 0, act(aSetNhop, param(1, 0, 0, 0, 0, 7), param(2, 0, 2)), exact(1, 0, 1), lpm(2, 8, 0, 10, 0, 0, 0))))
	want := te(tLPM, 0, act(aSetNhop, param(1, 7), param(2, 2)), exact(1, 1), lpm(2, 8, 10, 0, 0, 0))
	sameSet(t, "canonical", h.mustRead(entTE(&p4.TableEntry{TableId: tLPM})), []*p4.Entity{want})
}

func TestRequireCanonicalRejectsPaddedBytestrings(t *testing.T) {
	h := newHarness(t, func(c *softswitch.Config) { c.StoreOptions.RequireCanonical = true })
	ct := h.primary(1)
	ct.commit()
	got := ct.write(ins(te(tLPM, 0, act(aDrop), exact(1, 0, 1))), ins(te(tLPM, 0, act(aDrop), exact(1, 1))))
	if got[0] != codes.InvalidArgument || got[1] != codes.OK {
		t.Fatalf("codes %v", got)
	}
}
