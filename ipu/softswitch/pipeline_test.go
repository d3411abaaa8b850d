package softswitch_test

import (
	"testing"

	p4cfg "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func TestSetForwardingPipelineConfigErrors(t *testing.T) {
	h := newHarness(t)
	ct := h.primary(1)
	dup := proto.Clone(h.info).(*p4cfg.P4Info)
	dup.Actions[1].Preamble.Id = dup.Actions[0].Preamble.Id
	badRef := proto.Clone(h.info).(*p4cfg.P4Info)
	badRef.Tables[0].ActionRefs = append(badRef.Tables[0].ActionRefs, &p4cfg.ActionRef{Id: 0x0100ffff})
	badMatch := proto.Clone(h.info).(*p4cfg.P4Info)
	badMatch.Tables[0].MatchFields[0].Match = &p4cfg.MatchField_OtherMatchType{OtherMatchType: "fancy"}
	cases := []struct {
		name   string
		action p4.SetForwardingPipelineConfigRequest_Action
		cfg    *p4.ForwardingPipelineConfig
		want   codes.Code
	}{
		{"verify without config", p4.SetForwardingPipelineConfigRequest_VERIFY, nil, codes.InvalidArgument},
		{"commit without a saved config", p4.SetForwardingPipelineConfigRequest_COMMIT, nil, codes.NotFound},
		{"commit with a config", p4.SetForwardingPipelineConfigRequest_COMMIT, &p4.ForwardingPipelineConfig{P4Info: h.info}, codes.InvalidArgument},
		{"unspecified action", p4.SetForwardingPipelineConfigRequest_UNSPECIFIED, &p4.ForwardingPipelineConfig{P4Info: h.info}, codes.InvalidArgument},
		{"duplicate ids", p4.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, &p4.ForwardingPipelineConfig{P4Info: dup}, codes.InvalidArgument},
		{"unknown action reference", p4.SetForwardingPipelineConfigRequest_VERIFY, &p4.ForwardingPipelineConfig{P4Info: badRef}, codes.InvalidArgument},
		{"unsupported match kind", p4.SetForwardingPipelineConfigRequest_VERIFY, &p4.ForwardingPipelineConfig{P4Info: badMatch}, codes.InvalidArgument},
		{"verify", p4.SetForwardingPipelineConfigRequest_VERIFY, &p4.ForwardingPipelineConfig{P4Info: h.info}, codes.OK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := ct.setPipeline(tc.action, tc.cfg); status.Code(err) != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// VERIFY changed nothing.
	if r, _ := h.c.GetForwardingPipelineConfig(ctx(t), &p4.GetForwardingPipelineConfigRequest{DeviceId: deviceID}); r.Config != nil {
		t.Fatal("VERIFY installed a config")
	}
	_, err := h.c.SetForwardingPipelineConfig(ctx(t), &p4.SetForwardingPipelineConfigRequest{DeviceId: 3, ElectionId: eid(1),
		Action: p4.SetForwardingPipelineConfigRequest_VERIFY, Config: &p4.ForwardingPipelineConfig{P4Info: h.info}})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("unknown device: %v", err)
	}
}

func TestVerifyAndSaveThenCommit(t *testing.T) {
	h := newHarness(t)
	ct := h.primary(1)
	ct.commit()
	ct.mustWrite(ins(exactEntry(1, 1)))
	if err := ct.setPipeline(p4.SetForwardingPipelineConfigRequest_VERIFY_AND_SAVE, &p4.ForwardingPipelineConfig{P4Info: h.info, Cookie: &p4.ForwardingPipelineConfig_Cookie{Cookie: 2}}); err != nil {
		t.Fatal(err)
	}
	// Reads and writes now refer to the saved config (empty); the data plane still runs the old state.
	if n := len(h.mustRead(entTE(&p4.TableEntry{}))); n != 0 {
		t.Fatalf("saved config shows %d entries", n)
	}
	ct.mustWrite(ins(exactEntry(2, 1)))
	if st, tbl := h.table(tExact); tbl.Len() != 1 || st.Lookup(tbl, []byte{2, 0, 0, 0, 0, 1, 0, 1}) == nil {
		t.Fatal("the data plane changed before COMMIT")
	}
	if err := ct.setPipeline(p4.SetForwardingPipelineConfigRequest_COMMIT, nil); err != nil {
		t.Fatal(err)
	}
	st, tbl := h.table(tExact)
	if tbl.Len() != 1 || st.Lookup(tbl, []byte{2, 0, 0, 0, 0, 2, 0, 1}) == nil {
		t.Fatal("COMMIT did not realize the writes made since VERIFY_AND_SAVE")
	}
	r, _ := h.c.GetForwardingPipelineConfig(ctx(t), &p4.GetForwardingPipelineConfigRequest{DeviceId: deviceID, ResponseType: p4.GetForwardingPipelineConfigRequest_COOKIE_ONLY})
	if r.Config.GetCookie().GetCookie() != 2 {
		t.Fatalf("cookie after commit: %v", r.Config)
	}
}

func TestReconcileAndCommitKeepsSurvivingState(t *testing.T) {
	h := newHarness(t)
	ct := h.primary(1)
	ct.commit()
	m := member(pECMP, 1, nhop(1, 1))
	g := group(pECMP, 5, 4, gm(1, 2))
	ecmp := ecmpEntry(1, groupAct(5))
	ex := withTE(exactEntry(1, 1), func(t *p4.TableEntry) { t.CounterData = &p4.CounterData{PacketCount: 12} })
	lp := te(tLPM, 0, act(aDrop), exact(1, 1))
	ct.mustWrite(ins(m), ins(ex), ins(lp), mod(defaultEntry(tACL, act(aDeny))), mod(counterEntry(cPortPkts, idx(4), 8)), mod(register(rReg32, idx(1), bits(9))))
	ct.mustWrite(ins(g))
	ct.mustWrite(ins(ecmp))

	// The new config drops ingress.lpm_tbl and keeps everything else.
	next := proto.Clone(h.info).(*p4cfg.P4Info)
	for i, tb := range next.Tables {
		if tb.Preamble.Id == tLPM {
			next.Tables = append(next.Tables[:i], next.Tables[i+1:]...)
			break
		}
	}
	next.PkgInfo.Version = "2"
	if err := ct.setPipeline(p4.SetForwardingPipelineConfigRequest_RECONCILE_AND_COMMIT, &p4.ForwardingPipelineConfig{P4Info: next}); err != nil {
		t.Fatal(err)
	}
	sameSet(t, "entries kept", h.mustRead(entTE(&p4.TableEntry{})), []*p4.Entity{exactEntry(1, 1), ecmp})
	sameSet(t, "members kept", h.mustRead(member(0, 0, nil)), []*p4.Entity{m})
	sameSet(t, "groups kept", h.mustRead(group(0, 0, 0)), []*p4.Entity{g})
	if d := h.mustRead(defaultEntry(tACL, nil)); d[0].GetTableEntry().GetAction().GetAction().GetActionId() != aDeny {
		t.Fatalf("modified default entry lost: %v", d)
	}
	if c := h.mustRead(counterEntry(cPortPkts, idx(4), 0)); c[0].GetCounterEntry().GetData().GetPacketCount() != 8 {
		t.Fatalf("counter lost: %v", c)
	}
	if dc := h.mustRead(directCounter(exactEntry(1, 1), 0)); dc[0].GetDirectCounterEntry().GetData().GetPacketCount() != 12 {
		t.Fatalf("direct counter lost: %v", dc)
	}
	if r := h.mustRead(register(rReg32, idx(1), nil)); !proto.Equal(r[0].GetRegisterEntry().GetData(), bits(9)) {
		t.Fatalf("register lost: %v", r)
	}
	st, tbl := h.table(tECMP)
	if e := st.Lookup(tbl, []byte{10, 0, 0, 1}); e == nil || st.Resolve(e, 0) == nil {
		t.Fatal("the data plane lost the group entry")
	}

	// A config in which kept state does not validate is refused, and nothing changes.
	narrow := proto.Clone(next).(*p4cfg.P4Info)
	for _, tb := range narrow.Tables {
		if tb.Preamble.Id == tExact {
			tb.MatchFields[1].Bitwidth = 4 // meta.port 9 → 4 bits: 1 still fits, key layout changes
		}
	}
	if err := ct.setPipeline(p4.SetForwardingPipelineConfigRequest_RECONCILE_AND_COMMIT, &p4.ForwardingPipelineConfig{P4Info: narrow}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("reconcile with a changed key layout: %v", err)
	}
	sameSet(t, "state after a refused reconcile", h.mustRead(entTE(&p4.TableEntry{})), []*p4.Entity{exactEntry(1, 1), ecmp})
}
