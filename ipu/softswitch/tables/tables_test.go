package tables

import (
	"bytes"
	"encoding/binary"
	"maps"
	"math/rand"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	p4cfg "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/prototext"
)

const (
	tExact   = 0x02000001
	tLPM     = 0x02000002
	tACL     = 0x02000003
	tECMP    = 0x02000005
	tOneShot = 0x02000007
	tIdle    = 0x02000008
	tCT      = 0x02000009

	aSetPort = 0x01000003
	aSetNhop = 0x01000004
	aPermit  = 0x01000005
	aDeny    = 0x01000006
	aCtHit   = 0x01000008
	pECMP    = 0x11000001
)

func testInfo(t testing.TB) *p4cfg.P4Info {
	t.Helper()
	b, err := os.ReadFile("../testdata/full.p4info.txtpb")
	if err != nil {
		t.Fatal(err)
	}
	info := &p4cfg.P4Info{}
	if err := prototext.Unmarshal(b, info); err != nil {
		t.Fatal(err)
	}
	return info
}

func newTestStore(t testing.TB, opts Options) *Store {
	t.Helper()
	s := NewStore(opts)
	if err := s.SetPipeline(p4.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, &p4.ForwardingPipelineConfig{P4Info: testInfo(t)}); err != nil {
		t.Fatal(err)
	}
	return s
}

func mustWrite(t testing.TB, s *Store, updates ...*p4.Update) {
	t.Helper()
	errs, err := s.Write(updates, p4.WriteRequest_CONTINUE_ON_ERROR)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("update %d: %v", i, e)
		}
	}
}

func upd(typ p4.Update_Type, te *p4.TableEntry) *p4.Update {
	return &p4.Update{Type: typ, Entity: &p4.Entity{Entity: &p4.Entity_TableEntry{TableEntry: te}}}
}

func be(v uint64, n int) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b[8-n:]
}

func setPort(port uint16) *p4.TableAction {
	return &p4.TableAction{Type: &p4.TableAction_Action{Action: &p4.Action{ActionId: aSetPort, Params: []*p4.Action_Param{{ParamId: 1, Value: be(uint64(port), 2)}}}}}
}

// refEntry is the reference model of one entry: value/mask per key byte, ranges, rank.
type refEntry struct {
	val, mask []byte
	lo, hi    map[int][2]uint64 // field offset → range (2-byte fields)
	rank      int32
	port      uint16
}

func (r *refEntry) matches(key []byte) bool {
	for i := range key {
		if key[i]&r.mask[i] != r.val[i] {
			return false
		}
	}
	for off, lh := range r.lo {
		v := uint64(binary.BigEndian.Uint16(key[off:]))
		if v < lh[0] || v > lh[1] {
			return false
		}
	}
	return true
}

func refLookup(es []*refEntry, key []byte) *refEntry {
	var best *refEntry
	for _, e := range es {
		if e.matches(key) && (best == nil || e.rank > best.rank) {
			best = e
		}
	}
	return best
}

func portOf(t *testing.T, st *State, e *Entry) uint16 {
	a := st.Resolve(e, 0)
	return uint16(U64(a.Param(0)))
}

func TestExactTableMatchesAMapUnderRandomInsertModifyDelete(t *testing.T) {
	s := newTestStore(t, Options{})
	rng := rand.New(rand.NewSource(1))
	ref := map[[8]byte]uint16{}
	keyOf := func(mac uint64, port uint16) (k [8]byte) {
		copy(k[:6], be(mac, 6))
		binary.BigEndian.PutUint16(k[6:], port)
		return k
	}
	entry := func(k [8]byte, p uint16) *p4.TableEntry {
		return &p4.TableEntry{TableId: tExact, Action: setPort(p), Match: []*p4.FieldMatch{
			{FieldId: 1, FieldMatchType: &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: k[:6]}}},
			{FieldId: 2, FieldMatchType: &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: k[6:]}}}}}
	}
	old := s.Load()
	for round := 0; round < 30; round++ {
		var ups []*p4.Update
		var want []codes.Code
		for i := 0; i < 50; i++ {
			k := keyOf(uint64(rng.Intn(300)), uint16(rng.Intn(2)))
			p := uint16(rng.Intn(511))
			_, exists := ref[k]
			switch rng.Intn(3) {
			case 0:
				ups = append(ups, upd(p4.Update_INSERT, entry(k, p)))
				if exists || len(ref) >= 1024 {
					want = append(want, codes.AlreadyExists)
					if !exists {
						want[len(want)-1] = codes.ResourceExhausted
					}
				} else {
					want = append(want, codes.OK)
					ref[k] = p
				}
			case 1:
				ups = append(ups, upd(p4.Update_MODIFY, entry(k, p)))
				if exists {
					want = append(want, codes.OK)
					ref[k] = p
				} else {
					want = append(want, codes.NotFound)
				}
			case 2:
				ups = append(ups, upd(p4.Update_DELETE, entry(k, 0)))
				if exists {
					want = append(want, codes.OK)
					delete(ref, k)
				} else {
					want = append(want, codes.NotFound)
				}
			}
		}
		errs, err := s.Write(ups, p4.WriteRequest_CONTINUE_ON_ERROR)
		if err != nil {
			t.Fatal(err)
		}
		for i := range errs {
			if CodeOf(errs[i]) != want[i] {
				t.Fatalf("round %d update %d: %v, want %v", round, i, errs[i], want[i])
			}
		}
		st := s.Load()
		tbl := st.TableByID(tExact)
		if tbl.Len() != len(ref) {
			t.Fatalf("round %d: %d entries, reference has %d", round, tbl.Len(), len(ref))
		}
		for mac := uint64(0); mac < 300; mac++ {
			for port := uint16(0); port < 2; port++ {
				k := keyOf(mac, port)
				e := st.Lookup(tbl, k[:])
				p, ok := ref[k]
				if ok != (e != nil) || (ok && portOf(t, st, e) != p) {
					t.Fatalf("round %d key %x: got %v, reference %v/%v", round, k, e, p, ok)
				}
			}
		}
	}
	if old.TableByID(tExact).Len() != 0 || old.Lookup(old.TableByID(tExact), make([]byte, 8)) != nil {
		t.Fatal("an old snapshot changed")
	}
}

func TestLPMTableReturnsTheLongestPrefixPerVRF(t *testing.T) {
	s := newTestStore(t, Options{})
	rng := rand.New(rand.NewSource(2))
	var ref []*refEntry
	seen := map[string]bool{}
	var ups []*p4.Update
	for len(ups) < 400 {
		vrf := uint16(rng.Intn(2))
		plen := rng.Intn(33)
		addr := uint32(0x0a000000) | uint32(rng.Intn(1<<16))<<8 | uint32(rng.Intn(256))
		if plen < 32 {
			addr &^= 1<<uint(32-plen) - 1
		}
		mask := uint32(0)
		if plen > 0 {
			mask = ^uint32(0) << uint(32-plen)
		}
		id := string(be(uint64(vrf), 2)) + string(be(uint64(addr), 4)) + string(rune(plen))
		if seen[id] {
			continue
		}
		seen[id] = true
		port := uint16(len(ups) + 1)
		r := &refEntry{val: append(be(uint64(vrf), 2), be(uint64(addr), 4)...), mask: append([]byte{0xff, 0xff}, be(uint64(mask), 4)...), rank: int32(plen), port: port}
		ref = append(ref, r)
		te := &p4.TableEntry{TableId: tLPM, Match: []*p4.FieldMatch{{FieldId: 1, FieldMatchType: &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: Canonical(be(uint64(vrf), 2))}}}},
			Action: &p4.TableAction{Type: &p4.TableAction_Action{Action: &p4.Action{ActionId: aSetNhop, Params: []*p4.Action_Param{
				{ParamId: 1, Value: []byte{1}}, {ParamId: 2, Value: Canonical(be(uint64(port), 2))}}}}}}
		if plen > 0 {
			te.Match = append(te.Match, &p4.FieldMatch{FieldId: 2, FieldMatchType: &p4.FieldMatch_Lpm{Lpm: &p4.FieldMatch_LPM{Value: Canonical(be(uint64(addr), 4)), PrefixLen: int32(plen)}}})
		}
		ups = append(ups, upd(p4.Update_INSERT, te))
	}
	mustWrite(t, s, ups...)
	st := s.Load()
	tbl := st.TableByID(tLPM)
	for i := 0; i < 20000; i++ {
		key := append(be(uint64(rng.Intn(2)), 2), be(uint64(0x0a000000|uint32(rng.Intn(1<<24))), 4)...)
		if i%3 == 0 { // keys that surely hit some prefix
			r := ref[rng.Intn(len(ref))]
			copy(key, r.val)
			key[5] |= byte(rng.Intn(256)) &^ r.mask[5]
		}
		want := refLookup(ref, key)
		got := st.Lookup(tbl, key)
		if (want == nil) != (got == nil) {
			t.Fatalf("key %x: got %v want %v", key, got, want)
		}
		if want != nil {
			if a := st.Resolve(got, 0); uint16(U64(a.Param(1))) != want.port {
				t.Fatalf("key %x: port %d, want %d (/%d)", key, U64(a.Param(1)), want.port, want.rank)
			}
		}
	}
}

func TestTernaryRangeOptionalTableReturnsTheHighestPriorityMatch(t *testing.T) {
	s := newTestStore(t, Options{})
	rng := rand.New(rand.NewSource(3))
	// Key layout of ingress.acl: src(4) dst(4) dport(2) port(2) proto(1).
	var ref []*refEntry
	var ups []*p4.Update
	prios := rng.Perm(600)
	for i := 0; i < 600; i++ {
		r := &refEntry{val: make([]byte, 13), mask: make([]byte, 13), lo: map[int][2]uint64{}, rank: int32(prios[i] + 1)}
		te := &p4.TableEntry{TableId: tACL, Priority: r.rank}
		// src ternary (sometimes omitted)
		if rng.Intn(4) != 0 {
			m := []uint32{0xffffffff, 0xffffff00, 0xffff0000, 0x0000ff00}[rng.Intn(4)]
			v := uint32(0x0a000000|rng.Intn(1<<16)) & m
			copy(r.val[0:], be(uint64(v), 4))
			copy(r.mask[0:], be(uint64(m), 4))
			te.Match = append(te.Match, &p4.FieldMatch{FieldId: 1, FieldMatchType: &p4.FieldMatch_Ternary_{Ternary: &p4.FieldMatch_Ternary{Value: Canonical(be(uint64(v), 4)), Mask: Canonical(be(uint64(m), 4))}}})
		}
		// dst lpm (masked match in a priority table)
		if pl := []int{0, 8, 16, 24}[rng.Intn(4)]; pl > 0 {
			m := ^uint32(0) << uint(32-pl)
			v := uint32(0x0a000000|rng.Intn(1<<16)<<8) & m
			copy(r.val[4:], be(uint64(v), 4))
			copy(r.mask[4:], be(uint64(m), 4))
			te.Match = append(te.Match, &p4.FieldMatch{FieldId: 2, FieldMatchType: &p4.FieldMatch_Lpm{Lpm: &p4.FieldMatch_LPM{Value: Canonical(be(uint64(v), 4)), PrefixLen: int32(pl)}}})
		}
		// dport range: point, interval or omitted
		switch rng.Intn(3) {
		case 0:
			p := uint64(rng.Intn(100))
			copy(r.val[8:], be(p, 2))
			r.mask[8], r.mask[9] = 0xff, 0xff
			te.Match = append(te.Match, &p4.FieldMatch{FieldId: 3, FieldMatchType: &p4.FieldMatch_Range_{Range: &p4.FieldMatch_Range{Low: Canonical(be(p, 2)), High: Canonical(be(p, 2))}}})
		case 1:
			lo := uint64(rng.Intn(100))
			hi := lo + uint64(rng.Intn(50)) + 1
			r.lo[8] = [2]uint64{lo, hi}
			te.Match = append(te.Match, &p4.FieldMatch{FieldId: 3, FieldMatchType: &p4.FieldMatch_Range_{Range: &p4.FieldMatch_Range{Low: Canonical(be(lo, 2)), High: Canonical(be(hi, 2))}}})
		}
		// optional ingress port
		if rng.Intn(2) == 0 {
			p := uint64(rng.Intn(3))
			copy(r.val[10:], be(p, 2))
			r.mask[10], r.mask[11] = 0x01, 0xff
			te.Match = append(te.Match, &p4.FieldMatch{FieldId: 4, FieldMatchType: &p4.FieldMatch_Optional_{Optional: &p4.FieldMatch_Optional{Value: Canonical(be(p, 2))}}})
		}
		proto := []byte{6, 17}[rng.Intn(2)]
		r.val[12], r.mask[12] = proto, 0xff
		te.Match = append(te.Match, &p4.FieldMatch{FieldId: 5, FieldMatchType: &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: []byte{proto}}}})
		a := aPermit
		if rng.Intn(2) == 0 {
			a = aDeny
		}
		r.port = uint16(a)
		te.Action = &p4.TableAction{Type: &p4.TableAction_Action{Action: &p4.Action{ActionId: uint32(a)}}}
		ref = append(ref, r)
		ups = append(ups, upd(p4.Update_INSERT, te))
	}
	mustWrite(t, s, ups...)
	check := func(ref []*refEntry) {
		st := s.Load()
		tbl := st.TableByID(tACL)
		for i := 0; i < 20000; i++ {
			key := make([]byte, 13)
			if i%2 == 0 {
				r := ref[rng.Intn(len(ref))]
				for j := range key {
					key[j] = r.val[j] | byte(rng.Intn(256))&^r.mask[j]
				}
				for off, lh := range r.lo {
					copy(key[off:], be(lh[0]+uint64(rng.Intn(int(lh[1]-lh[0]+1))), 2))
				}
				key[10] &= 0x01
			} else {
				copy(key, be(uint64(0x0a000000|rng.Intn(1<<16)), 4))
				copy(key[4:], be(uint64(0x0a000000|rng.Intn(1<<24)), 4))
				copy(key[8:], be(uint64(rng.Intn(160)), 2))
				copy(key[10:], be(uint64(rng.Intn(3)), 2))
				key[12] = []byte{6, 17}[rng.Intn(2)]
			}
			want := refLookup(ref, key)
			got := st.Lookup(tbl, key)
			if (want == nil) != (got == nil) || (want != nil && got.Priority != want.rank) {
				t.Fatalf("key %x: got %+v, want %+v", key, got, want)
			}
		}
	}
	check(ref)
	// Delete half (including the highest priorities) and check again: upper bounds go stale safely.
	var dels []*p4.Update
	var kept []*refEntry
	for i, u := range ups {
		if ref[i].rank > 300 || i%3 == 0 {
			dels = append(dels, &p4.Update{Type: p4.Update_DELETE, Entity: u.Entity})
		} else {
			kept = append(kept, ref[i])
		}
	}
	mustWrite(t, s, dels...)
	if n := s.Load().TableByID(tACL).Len(); n != len(kept) {
		t.Fatalf("%d entries after deletes, want %d", n, len(kept))
	}
	check(kept)
}

func TestSnapshotsAreImmutableAndBatchesAtomic(t *testing.T) {
	s := newTestStore(t, Options{ChunkSize: 7})
	var ups []*p4.Update
	for i := 0; i < 100; i++ {
		ups = append(ups, upd(p4.Update_INSERT, &p4.TableEntry{TableId: tExact, Action: setPort(1), Match: []*p4.FieldMatch{
			{FieldId: 1, FieldMatchType: &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: be(uint64(i), 6)}}},
			{FieldId: 2, FieldMatchType: &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: []byte{1}}}}}}))
	}
	before := s.Load()
	rv := s.ReadView()
	mustWrite(t, s, ups[:50]...)
	if before.TableByID(tExact).Len() != 0 || rv.TableByID(tExact).Len() != 0 {
		t.Fatal("published snapshots changed")
	}
	if n := s.ReadView().TableByID(tExact).Len(); n != 50 {
		t.Fatalf("read view has %d", n)
	}
	// A failed ROLLBACK_ON_ERROR batch changes nothing.
	bad := append(append([]*p4.Update{}, ups[50:]...), ups[0]) // duplicate of an installed entry
	errs, err := s.Write(bad, p4.WriteRequest_ROLLBACK_ON_ERROR)
	if err != nil {
		t.Fatal(err)
	}
	if CodeOf(errs[len(errs)-1]) != codes.AlreadyExists || CodeOf(errs[0]) != codes.Aborted {
		t.Fatalf("errors %v / %v", errs[0], errs[len(errs)-1])
	}
	if n := s.Load().TableByID(tExact).Len(); n != 50 {
		t.Fatalf("rolled back batch left %d entries", n)
	}
	errs, err = s.Write(ups[50:], p4.WriteRequest_DATAPLANE_ATOMIC)
	if err != nil || errs[0] != nil {
		t.Fatal(err, errs[0])
	}
	if n := s.Load().TableByID(tExact).Len(); n != 100 {
		t.Fatalf("%d entries", n)
	}
}

func TestSelectorPicksMembersByWeightAndSkipsDownWatchPorts(t *testing.T) {
	s := newTestStore(t, Options{})
	mem := func(id uint32, port byte) *p4.Update {
		return &p4.Update{Type: p4.Update_INSERT, Entity: &p4.Entity{Entity: &p4.Entity_ActionProfileMember{ActionProfileMember: &p4.ActionProfileMember{
			ActionProfileId: pECMP, MemberId: id, Action: &p4.Action{ActionId: aSetNhop, Params: []*p4.Action_Param{{ParamId: 1, Value: []byte{byte(id)}}, {ParamId: 2, Value: []byte{port}}}}}}}}
	}
	mustWrite(t, s, mem(1, 1), mem(2, 2), mem(3, 3))
	mustWrite(t, s, &p4.Update{Type: p4.Update_INSERT, Entity: &p4.Entity{Entity: &p4.Entity_ActionProfileGroup{ActionProfileGroup: &p4.ActionProfileGroup{
		ActionProfileId: pECMP, GroupId: 1, MaxSize: 16, Members: []*p4.ActionProfileGroup_Member{
			{MemberId: 1, Weight: 1}, {MemberId: 2, Weight: 3, WatchKind: &p4.ActionProfileGroup_Member_WatchPort{WatchPort: []byte{7}}}, {MemberId: 3, Weight: 4}}}}}})
	mustWrite(t, s, upd(p4.Update_INSERT, &p4.TableEntry{TableId: tECMP, Match: []*p4.FieldMatch{{FieldId: 1, FieldMatchType: &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: []byte{10, 0, 0, 1}}}}},
		Action: &p4.TableAction{Type: &p4.TableAction_ActionProfileGroupId{ActionProfileGroupId: 1}}}))
	count := func() map[uint64]int {
		st := s.Load()
		e := st.Lookup(st.TableByID(tECMP), []byte{10, 0, 0, 1})
		n := map[uint64]int{}
		for h := uint32(0); h < 8000; h++ {
			n[U64(st.Resolve(e, h).Param(0))]++
		}
		return n
	}
	n := count()
	if n[1] != 1000 || n[2] != 3000 || n[3] != 4000 {
		t.Fatalf("weighted picks %v, want 1000/3000/4000", n)
	}
	s.SetPortDown(7, true)
	n = count()
	if n[2] != 0 || n[1] != 1600 || n[3] != 6400 {
		t.Fatalf("picks with member 2's watch port down %v", n)
	}
	s.SetPortDown(7, false)
	if n = count(); n[2] != 3000 {
		t.Fatalf("picks after port up %v", n)
	}
}

func TestLearnerTableLearnsAndExpiresByProfile(t *testing.T) {
	now := int64(1)
	s := newTestStore(t, Options{Now: func() int64 { return now }, Learners: map[string]LearnerConfig{
		"ingress.ct": {Profiles: []time.Duration{10 * time.Second, time.Minute}}}})
	st := s.Load()
	ct := st.TableByName("ingress.ct")
	key := func(i int) []byte {
		return append(append(be(uint64(0x0a000001), 4), be(uint64(0x0a000002), 4)...), append([]byte{6}, append(be(uint64(1000+i), 2), be(80, 2)...)...)...)
	}
	for i := 0; i < 3; i++ {
		if _, err := s.Learn(ct, key(i), aCtHit, []byte{byte(i)}, uint8(i%2)); err != nil {
			t.Fatal(err)
		}
	}
	again, err := s.Learn(ct, key(0), aCtHit, []byte{9}, 0)
	if err != nil || again.Action.Params[0] != 0 {
		t.Fatalf("second learn of the same key: %v %v", again, err)
	}
	if _, err := s.Learn(s.Load().TableByName("ingress.exact_tbl"), make([]byte, 8), aSetPort, []byte{0, 1}, 0); CodeOf(err) != codes.FailedPrecondition {
		t.Fatalf("learn into a non-learner table: %v", err)
	}
	st = s.Load()
	ct = st.TableByName("ingress.ct")
	if ct.Len() != 3 || st.Lookup(ct, key(1)) == nil {
		t.Fatalf("learned entries not visible: %d", ct.Len())
	}
	now += int64(9 * time.Second)
	st.Touch(ct, st.Lookup(ct, key(2)).Handle, now) // profile 0 but refreshed
	now += int64(2 * time.Second)
	res := s.Sweep()
	if res.Expired != 1 {
		t.Fatalf("expired %d, want 1 (key 0)", res.Expired)
	}
	st = s.Load()
	ct = st.TableByName("ingress.ct")
	if st.Lookup(ct, key(0)) != nil || st.Lookup(ct, key(1)) == nil || st.Lookup(ct, key(2)) == nil {
		t.Fatal("wrong entries expired")
	}
	// Learned entries are visible to P4Runtime reads.
	var n int
	if err := s.ReadView().Read(&p4.Entity{Entity: &p4.Entity_TableEntry{TableEntry: &p4.TableEntry{TableId: tCT}}}, func(*p4.Entity) error { n++; return nil }); err != nil || n != 2 {
		t.Fatalf("read %d learned entries: %v", n, err)
	}
}

func TestIdleTimeoutSweepReportsIdleEntriesAndRestartsTheirTimer(t *testing.T) {
	now := int64(1)
	s := newTestStore(t, Options{Now: func() int64 { return now }})
	mustWrite(t, s, upd(p4.Update_INSERT, &p4.TableEntry{TableId: tIdle, IdleTimeoutNs: int64(time.Second), Action: setPort(1),
		Match: []*p4.FieldMatch{{FieldId: 1, FieldMatchType: &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: []byte{1}}}}}}),
		upd(p4.Update_INSERT, &p4.TableEntry{TableId: tIdle, Action: setPort(1),
			Match: []*p4.FieldMatch{{FieldId: 1, FieldMatchType: &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: []byte{2}}}}}}))
	now += int64(500 * time.Millisecond)
	if r := s.Sweep(); len(r.Idle) != 0 {
		t.Fatalf("idle too early: %v", r.Idle)
	}
	now += int64(600 * time.Millisecond)
	r := s.Sweep()
	if len(r.Idle) != 1 || !bytes.Equal(r.Idle[0].Entry.Key, []byte{0, 0, 0, 1}) {
		t.Fatalf("idle %v", r.Idle)
	}
	if r := s.Sweep(); len(r.Idle) != 0 {
		t.Fatal("timer not restarted after a notification")
	}
	st := s.Load()
	tbl := st.TableByID(tIdle)
	now += int64(900 * time.Millisecond)
	st.Touch(tbl, st.Lookup(tbl, []byte{0, 0, 0, 1}).Handle, now)
	now += int64(900 * time.Millisecond)
	if r := s.Sweep(); len(r.Idle) != 0 {
		t.Fatal("a touched entry was reported idle")
	}
}

func TestCountersSumWorkerShardsAndHonourControlPlaneSets(t *testing.T) {
	s := newTestStore(t, Options{Workers: 4})
	mustWrite(t, s, upd(p4.Update_INSERT, &p4.TableEntry{TableId: tExact, Action: setPort(1), Match: []*p4.FieldMatch{
		{FieldId: 1, FieldMatchType: &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: []byte{1}}}},
		{FieldId: 2, FieldMatchType: &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: []byte{1}}}}},
		CounterData: &p4.CounterData{PacketCount: 100, ByteCount: 1000}}))
	st := s.Load()
	tbl := st.TableByID(tExact)
	e := st.Lookup(tbl, []byte{0, 0, 0, 0, 0, 1, 0, 1})
	for w := 0; w < 4; w++ {
		for i := 0; i < 10; i++ {
			st.AddDirect(w, tbl, e.Handle, 64)
		}
	}
	if v := st.DirectCounter(tbl, e.Handle); v.Packets != 140 || v.Bytes != 1000+40*64 {
		t.Fatalf("direct counter %+v", v)
	}
	ci := st.CounterIndex("ingress.port_pkts")
	st.AddCounter(0, ci, 7, 100)
	st.AddCounter(3, ci, 7, 50)
	st.AddCounter(1, ci, 100000, 1) // out of range: ignored
	if v := st.Counter(ci, 7); v.Packets != 2 || v.Bytes != 150 {
		t.Fatalf("indexed counter %+v", v)
	}
	mustWrite(t, s, &p4.Update{Type: p4.Update_MODIFY, Entity: &p4.Entity{Entity: &p4.Entity_CounterEntry{CounterEntry: &p4.CounterEntry{
		CounterId: 0x12000001, Index: &p4.Index{Index: 7}, Data: &p4.CounterData{}}}}})
	st.AddCounter(2, ci, 7, 10)
	if v := st.Counter(ci, 7); v.Packets != 1 || v.Bytes != 10 {
		t.Fatalf("indexed counter after reset %+v", v)
	}
}

func TestHamtSurvivesCollisionsAndShrinks(t *testing.T) {
	var m hamt[int]
	gen := uint64(1)
	// Force hashes sharing long prefixes (same low bits) and exact collisions.
	for i := 0; i < 2000; i++ {
		h := uint64(i%7) << 60 // many equal low bits
		if i%5 == 0 {
			h = 42 // full collisions
		}
		h |= uint64(i/5) << 5
		v := i
		m.update(gen, h, 1, func(old []int, owned bool) []int { return append(append([]int(nil), old...), v) })
		if i%100 == 0 {
			gen++
		}
	}
	if m.n != 2000 {
		t.Fatalf("n=%d", m.n)
	}
	seen := 0
	m.each(func(int) bool { seen++; return true })
	if seen != 2000 {
		t.Fatalf("each saw %d", seen)
	}
	for i := 0; i < 2000; i++ {
		h := uint64(i%7) << 60
		if i%5 == 0 {
			h = 42
		}
		h |= uint64(i/5) << 5
		v := i
		found := false
		for _, x := range m.get(h) {
			found = found || x == v
		}
		if !found {
			t.Fatalf("value %d lost", i)
		}
		m.update(gen, h, -1, func(old []int, owned bool) []int {
			var out []int
			for _, x := range old {
				if x != v {
					out = append(out, x)
				}
			}
			return out
		})
	}
	if m.n != 0 || m.root.len() != 0 {
		t.Fatalf("not empty: n=%d kids=%d", m.n, m.root.len())
	}
}

func TestBytestringsAcceptPaddingAndRejectOverflow(t *testing.T) {
	cases := []struct {
		in     []byte
		width  int
		strict bool
		want   codes.Code
		out    []byte
	}{
		{[]byte{0x63}, 8, false, codes.OK, []byte{0x63}},
		{[]byte{0x00, 0x63}, 16, false, codes.OK, []byte{0x00, 0x63}},
		{[]byte{0x00, 0x00, 0x63}, 12, false, codes.OK, []byte{0x00, 0x63}},
		{[]byte{0x00, 0x63}, 12, true, codes.InvalidArgument, nil},
		{[]byte{0x01, 0x63}, 8, false, codes.OutOfRange, nil},
		{[]byte{}, 8, false, codes.OutOfRange, nil},
		{[]byte{0x10, 0x63}, 12, false, codes.OutOfRange, nil},
		{[]byte{0x01, 0x00, 0x63}, 16, false, codes.OutOfRange, nil},
		{[]byte{0x01, 0xff}, 9, false, codes.OK, []byte{0x01, 0xff}},
		{[]byte{0x02, 0x00}, 9, false, codes.OutOfRange, nil},
	}
	for _, c := range cases {
		dst := make([]byte, (c.width+7)/8)
		err := putBits(dst, c.in, c.width, c.strict, desc{a: "v"})
		if got := CodeOf(errOrNil(err)); got != c.want {
			t.Errorf("putBits(%x, %d, strict=%v) = %v, want %v", c.in, c.width, c.strict, err, c.want)
			continue
		}
		if c.out != nil && !bytes.Equal(dst, c.out) {
			t.Errorf("putBits(%x, %d) = %x, want %x", c.in, c.width, dst, c.out)
		}
	}
	for _, c := range []struct{ v, want []byte }{{[]byte{0, 0, 5}, []byte{5}}, {[]byte{0, 0}, []byte{0}}, {[]byte{1, 0}, []byte{1, 0}}} {
		if got := Canonical(c.v); !bytes.Equal(got, c.want) {
			t.Errorf("Canonical(%x) = %x", c.v, got)
		}
	}
	for _, c := range []struct {
		in   []byte
		w    int
		want codes.Code
		back []byte
	}{
		{[]byte{0x9d}, 8, codes.OK, []byte{0x9d}},
		{[]byte{0xff, 0x9d}, 8, codes.OK, []byte{0x9d}},
		{[]byte{0x00, 0x9d}, 8, codes.OutOfRange, nil},
		{[]byte{0xfd, 0x1d}, 12, codes.OK, []byte{0xfd, 0x1d}},
		{[]byte{0x8d, 0x1d}, 12, codes.OutOfRange, nil},
		{[]byte{0x00, 0x00}, 16, codes.OK, []byte{0x00}},
	} {
		u, err := decodeSigned(c.in, c.w, "v")
		if CodeOf(errOrNil(err)) != c.want {
			t.Errorf("decodeSigned(%x, %d) = %v, want %v", c.in, c.w, err, c.want)
			continue
		}
		if c.back != nil && !bytes.Equal(encodeSigned(u, c.w), c.back) {
			t.Errorf("encodeSigned(decodeSigned(%x)) = %x, want %x", c.in, encodeSigned(u, c.w), c.back)
		}
	}
}

func errOrNil(e *Error) error {
	if e == nil {
		return nil
	}
	return e
}

// TestReadersNeverSeeAHalfAppliedAtomicBatch runs lock-free lookups while batches insert and delete
// pairs of entries atomically: a reader sees both entries of a pair or neither (run with -race).
func TestReadersNeverSeeAHalfAppliedAtomicBatch(t *testing.T) {
	s := newTestStore(t, Options{})
	pair := func(i int, typ p4.Update_Type) []*p4.Update {
		var ups []*p4.Update
		for _, port := range []byte{1, 2} {
			ups = append(ups, upd(typ, &p4.TableEntry{TableId: tExact, Action: setPort(1), Match: []*p4.FieldMatch{
				{FieldId: 1, FieldMatchType: &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: be(uint64(i), 6)}}},
				{FieldId: 2, FieldMatchType: &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: []byte{port}}}}}}))
		}
		return ups
	}
	stop := make(chan struct{})
	fail := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		k1, k2 := make([]byte, 8), make([]byte, 8)
		for {
			select {
			case <-stop:
				return
			default:
			}
			st := s.Load()
			tbl := st.TableByID(tExact)
			for i := 0; i < 8; i++ {
				copy(k1, be(uint64(i), 6))
				copy(k2, be(uint64(i), 6))
				k1[7], k2[7] = 1, 2
				if (st.Lookup(tbl, k1) == nil) != (st.Lookup(tbl, k2) == nil) {
					select {
					case fail <- "half a pair visible":
					default:
					}
					return
				}
			}
		}
	}()
	for round := 0; round < 300; round++ {
		i := round % 8
		typ := p4.Update_INSERT
		if (round/8)%2 == 1 {
			typ = p4.Update_DELETE
		}
		errs, err := s.Write(pair(i, typ), p4.WriteRequest_DATAPLANE_ATOMIC)
		if err != nil || errs[0] != nil || errs[1] != nil {
			t.Fatal(err, errs)
		}
	}
	close(stop)
	<-done
	select {
	case msg := <-fail:
		t.Fatal(msg)
	default:
	}
}

func ctUpdate(typ p4.Update_Type, k []byte, flags byte) *p4.Update {
	var ms []*p4.FieldMatch
	for j, f := range [][2]int{{0, 4}, {4, 4}, {8, 1}, {9, 2}, {11, 2}} {
		ms = append(ms, &p4.FieldMatch{FieldId: uint32(j + 1), FieldMatchType: &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: Canonical(k[f[0] : f[0]+f[1]])}}})
	}
	return upd(typ, &p4.TableEntry{TableId: tCT, Match: ms,
		Action: &p4.TableAction{Type: &p4.TableAction_Action{Action: &p4.Action{ActionId: aCtHit, Params: []*p4.Action_Param{{ParamId: 1, Value: []byte{flags}}}}}}})
}

func TestLearnerTablesUnderControlPlaneWrites(t *testing.T) {
	s := newTestStore(t, Options{Learners: map[string]LearnerConfig{"ingress.ct": {Profiles: []time.Duration{time.Hour}}}})
	st := s.Load()
	ct := st.TableByName("ingress.ct")
	if !ct.Learner() {
		t.Fatal("ingress.ct is not live")
	}
	// Control-plane writes to a learner table: insert, modify, delete, and ROLLBACK undoes them.
	mustWrite(t, s, ctUpdate(p4.Update_INSERT, ctKey(1), 1))
	if e := s.Load().Lookup(s.Load().TableByName("ingress.ct"), ctKey(1)); e == nil || e.Action.Params[0] != 1 {
		t.Fatalf("control-plane insert: %v", e)
	}
	mustWrite(t, s, ctUpdate(p4.Update_MODIFY, ctKey(1), 2))
	errs, _ := s.Write([]*p4.Update{ctUpdate(p4.Update_INSERT, ctKey(2), 1), ctUpdate(p4.Update_DELETE, ctKey(1), 0), ctUpdate(p4.Update_INSERT, ctKey(3), 1), ctUpdate(p4.Update_INSERT, ctKey(3), 1)}, p4.WriteRequest_ROLLBACK_ON_ERROR)
	if CodeOf(errs[3]) != codes.AlreadyExists {
		t.Fatalf("rollback batch: %v", errs)
	}
	st = s.Load()
	tbl := st.TableByName("ingress.ct")
	if e := st.Lookup(tbl, ctKey(1)); e == nil || e.Action.Params[0] != 2 || st.Lookup(tbl, ctKey(2)) != nil || st.Lookup(tbl, ctKey(3)) != nil || tbl.Len() != 1 {
		t.Fatalf("rollback left %d entries, key1=%v", tbl.Len(), e)
	}
	errs, _ = s.Write([]*p4.Update{ctUpdate(p4.Update_INSERT, ctKey(2), 1)}, p4.WriteRequest_DATAPLANE_ATOMIC)
	if CodeOf(errs[0]) != codes.Unimplemented {
		t.Fatalf("DATAPLANE_ATOMIC on a learner table: %v", errs[0])
	}
	mustWrite(t, s, ctUpdate(p4.Update_DELETE, ctKey(1), 0))
	if s.Load().TableByName("ingress.ct").Len() != 0 {
		t.Fatal("delete left the entry")
	}
}

// TestConcurrentLearningLookupsAndSweeps runs workers that learn and look up flows while the control
// plane writes other tables and the sweeper expires flows (run with -race).
func TestConcurrentLearningLookupsAndSweeps(t *testing.T) {
	now := atomic.Int64{}
	now.Store(1)
	s := newTestStore(t, Options{Now: now.Load, Learners: map[string]LearnerConfig{"ingress.ct": {Profiles: []time.Duration{time.Second, time.Hour}}}})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 3000; i++ {
				k := ctKey(w*100000 + i%500)
				st := s.Load()
				ct := st.TableByName("ingress.ct")
				if e := st.Lookup(ct, k); e != nil {
					st.Touch(ct, e.Handle, now.Load())
					continue
				}
				if _, err := s.Learn(ct, k, aCtHit, []byte{byte(w)}, uint8(w%2)); err != nil {
					t.Error(err)
					return
				}
				// Flows of profile 1 (an hour) cannot expire during the test: they must be visible.
				if w%2 == 1 && s.Load().Lookup(s.Load().TableByName("ingress.ct"), k) == nil {
					t.Error("a learned flow is not visible")
					return
				}
			}
		}(w)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			mustWrite(t, s, lpmEntry(1, uint32(i), 32, 1))
			now.Add(int64(20 * time.Millisecond))
			s.Sweep()
		}
	}()
	wg.Wait()
	st := s.Load()
	ct := st.TableByName("ingress.ct")
	n := 0
	st.Each(ct, func(*Entry) bool { n++; return true })
	if n != ct.Len() || n > 2000 {
		t.Fatalf("Each saw %d, Len %d", n, ct.Len())
	}
}

func TestSetLearnerAfterCommitMovesEntries(t *testing.T) {
	s := newTestStore(t, Options{})
	mustWrite(t, s, ctUpdate(p4.Update_INSERT, ctKey(1), 1), ctUpdate(p4.Update_INSERT, ctKey(2), 1))
	s.SetLearner("ingress.ct", &LearnerConfig{Profiles: []time.Duration{time.Minute}})
	st := s.Load()
	ct := st.TableByName("ingress.ct")
	if !ct.Learner() || ct.Len() != 2 || st.Lookup(ct, ctKey(2)) == nil {
		t.Fatalf("after SetLearner: learner=%v len=%d", ct.Learner(), ct.Len())
	}
	if _, err := s.Learn(ct, ctKey(3), aCtHit, []byte{1}, 0); err != nil {
		t.Fatal(err)
	}
	s.SetLearner("ingress.ct", nil)
	st = s.Load()
	ct = st.TableByName("ingress.ct")
	if ct.Learner() || ct.Len() != 3 || st.Lookup(ct, ctKey(3)) == nil {
		t.Fatalf("after unsetting: learner=%v len=%d", ct.Learner(), ct.Len())
	}
}

// TestModifiedEntriesKeepOldSnapshotsParams: an entry's params live in its inline buffer; a MODIFY (with
// a new action, with metadata only, and one that fails) must leave the params every older snapshot sees.
func TestModifiedEntriesKeepOldSnapshotsParams(t *testing.T) {
	s := newTestStore(t, Options{})
	route := func(typ p4.Update_Type, port uint16, meta []byte) *p4.Update {
		u := lpmEntry(1, 0x0a000100, 24, port)
		u.Type = typ
		if port == 0 {
			u.GetEntity().GetTableEntry().Action = nil
		}
		u.GetEntity().GetTableEntry().Metadata = meta
		return u
	}
	key := []byte{0, 1, 10, 0, 1, 7}
	port := func(st *State) uint64 {
		e := st.Lookup(st.TableByID(tLPM), key)
		if e == nil {
			t.Fatal("route missing")
		}
		return U64(st.Resolve(e, 0).Param(1))
	}
	mustWrite(t, s, route(p4.Update_INSERT, 5, nil))
	s1 := s.Load()
	mustWrite(t, s, route(p4.Update_MODIFY, 6, nil))
	s2 := s.Load()
	mustWrite(t, s, route(p4.Update_MODIFY, 0, []byte("m"))) // no action: params carried over
	s3 := s.Load()
	for _, st := range []*State{s1, s2, s3} {
		// Params are in the entry's own buffer (one allocation per entry; no entry keeps another alive).
		if e := st.Lookup(st.TableByID(tLPM), key); e.poff == 0 || &e.Action.Params[0] != &e.kbuf[e.poff] {
			t.Errorf("entry params %p not inline (poff %d)", e.Action.Params, e.poff)
		}
	}
	mustWrite(t, s, route(p4.Update_MODIFY, 7, nil))
	bad := route(p4.Update_MODIFY, 8, nil)
	bad.GetEntity().GetTableEntry().Action.GetAction().Params[1].Value = []byte{1, 2, 3, 4} // wider than 9 bits
	if errs, err := s.Write([]*p4.Update{bad}, p4.WriteRequest_CONTINUE_ON_ERROR); err != nil || errs[0] == nil {
		t.Fatalf("a too wide param was accepted: %v %v", err, errs)
	}
	for _, c := range []struct {
		st   *State
		want uint64
	}{{s1, 5}, {s2, 6}, {s3, 6}, {s.Load(), 7}} {
		if got := port(c.st); got != c.want {
			t.Errorf("snapshot sees port %d, want %d", got, c.want)
		}
	}
}

func TestHamtOldVersionsKeepTheirContentsWhileLaterGenerationsEdit(t *testing.T) {
	// Every generation inserts, replaces and removes values; nodes and kid parts are shared between
	// generations, so a later edit must never show through an older version.
	type version struct {
		m     hamt[int]
		model map[uint64]int
	}
	hashOf := func(k int) uint64 {
		h := uint64(k) * 0x9e3779b97f4a7c15
		if k%11 == 0 {
			h &^= 0xffff // long shared low bits: deep paths and push-downs
		}
		return h
	}
	var m hamt[int]
	model := map[uint64]int{}
	var versions []version
	rng := uint64(1)
	next := func(n int) int {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return int(rng % uint64(n))
	}
	for gen := uint64(1); gen <= 60; gen++ {
		for i := 0; i < 300; i++ {
			k := next(3000)
			h := hashOf(k)
			v := int(gen)*10000 + i
			_, present := model[h]
			switch op := next(3); {
			case op == 0 && present: // remove
				m.update(gen, h, -1, func([]int, bool) []int { return nil })
				delete(model, h)
			case present: // replace, in place when owned
				m.update(gen, h, 0, func(old []int, owned bool) []int {
					if owned {
						old[0] = v
						return old
					}
					return []int{v}
				})
				model[h] = v
			default: // insert
				m.update(gen, h, 1, func([]int, bool) []int { return []int{v} })
				model[h] = v
			}
		}
		versions = append(versions, version{m: m, model: maps.Clone(model)})
	}
	for g, ver := range versions {
		if ver.m.n != len(ver.model) {
			t.Fatalf("generation %d: n=%d, want %d", g+1, ver.m.n, len(ver.model))
		}
		seen := 0
		ver.m.each(func(int) bool { seen++; return true })
		if seen != len(ver.model) {
			t.Fatalf("generation %d: each saw %d values, want %d", g+1, seen, len(ver.model))
		}
		for h, v := range ver.model {
			if got := ver.m.get(h); len(got) != 1 || got[0] != v {
				t.Fatalf("generation %d: hash %x holds %v, want [%d]", g+1, h, got, v)
			}
		}
		for k := 0; k < 3000; k++ {
			if _, ok := ver.model[hashOf(k)]; !ok && ver.m.get(hashOf(k)) != nil {
				t.Fatalf("generation %d: removed key %d still present", g+1, k)
			}
		}
	}
}
