package softswitch_test

import (
	"testing"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/calico-p4/calico-p4/ipu/softswitch"
)

func arbCode(a *p4.MasterArbitrationUpdate) codes.Code { return codes.Code(a.GetStatus().GetCode()) }

func TestArbitrationPrimaryBackupTakeoverAndClose(t *testing.T) {
	h := newHarness(t)
	a := h.openStream()
	a.arbitrate(eid(10), "")
	if u := a.nextArbitration(); arbCode(u) != codes.OK || u.ElectionId.GetLow() != 10 {
		t.Fatalf("first controller: %v", u)
	}
	a.commit()

	// A lower id joins as backup: only it is told (ALREADY_EXISTS, highest id 10).
	b := h.openStream()
	b.arbitrate(eid(5), "")
	if u := b.nextArbitration(); arbCode(u) != codes.AlreadyExists || u.ElectionId.GetLow() != 10 {
		t.Fatalf("backup: %v", u)
	}
	if err := b.writeAtomic(p4.WriteRequest_CONTINUE_ON_ERROR, ins(exactEntry(1, 1))); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("backup write: %v, want PERMISSION_DENIED", err)
	}
	if err := b.setPipeline(p4.SetForwardingPipelineConfigRequest_VERIFY, &p4.ForwardingPipelineConfig{P4Info: h.info}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("backup SetForwardingPipelineConfig: %v, want PERMISSION_DENIED", err)
	}
	a.mustWrite(ins(exactEntry(1, 1)))

	// A higher id takes over: everyone is told; the old primary can no longer write.
	c := h.openStream()
	c.arbitrate(eid(20), "")
	if u := c.nextArbitration(); arbCode(u) != codes.OK || u.ElectionId.GetLow() != 20 {
		t.Fatalf("new primary: %v", u)
	}
	for name, ct := range map[string]*controller{"old primary": a, "backup": b} {
		if u := ct.nextArbitration(); arbCode(u) != codes.AlreadyExists || u.ElectionId.GetLow() != 20 {
			t.Fatalf("%s after takeover: %v", name, u)
		}
	}
	if err := a.writeAtomic(p4.WriteRequest_CONTINUE_ON_ERROR, ins(exactEntry(2, 1))); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("old primary write: %v", err)
	}
	c.mustWrite(ins(exactEntry(2, 1)))

	// The primary's stream closes: the others learn there is no primary (NOT_FOUND), and a backup with a
	// lower id does not become primary by itself.
	c.cancel()
	for name, ct := range map[string]*controller{"a": a, "b": b} {
		if u := ct.nextArbitration(); arbCode(u) != codes.NotFound || u.ElectionId.GetLow() != 20 {
			t.Fatalf("%s after primary closed: %v", name, u)
		}
	}
	if err := a.writeAtomic(p4.WriteRequest_CONTINUE_ON_ERROR, ins(exactEntry(3, 1))); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("write with no primary: %v", err)
	}
	a.arbitrate(eid(10), "")
	if u := a.nextArbitration(); arbCode(u) != codes.NotFound {
		t.Fatalf("re-arbitration below the highest id: %v", u)
	}
	// Re-arbitrating with an id >= the highest seen takes over.
	b.arbitrate(eid(21), "")
	for name, ct := range map[string]*controller{"b": b, "a": a} {
		want := codes.AlreadyExists
		if ct == b {
			want = codes.OK
		}
		if u := ct.nextArbitration(); arbCode(u) != want || u.ElectionId.GetLow() != 21 {
			t.Fatalf("%s after b took over: %v", name, u)
		}
	}
	b.mustWrite(ins(exactEntry(3, 1)))
	if got := h.mustRead(entTE(&p4.TableEntry{TableId: tExact})); len(got) != 3 {
		t.Fatalf("%d entries, want 3", len(got))
	}
}

func TestArbitrationRejections(t *testing.T) {
	h := newHarness(t)
	a := h.primary(10)
	_ = a
	cases := []struct {
		name string
		send func(ct *controller)
		want codes.Code
	}{
		{"unknown device", func(ct *controller) {
			_ = ct.stream.Send(&p4.StreamMessageRequest{Update: &p4.StreamMessageRequest_Arbitration{Arbitration: &p4.MasterArbitrationUpdate{DeviceId: 99, ElectionId: eid(1)}}})
		}, codes.NotFound},
		{"election id in use", func(ct *controller) { ct.arbitrate(eid(10), "") }, codes.InvalidArgument},
		{"role config", func(ct *controller) {
			_ = ct.stream.Send(&p4.StreamMessageRequest{Update: &p4.StreamMessageRequest_Arbitration{Arbitration: &p4.MasterArbitrationUpdate{
				DeviceId: deviceID, ElectionId: eid(3), Role: &p4.Role{Name: "x", Config: &anypb.Any{TypeUrl: "type.googleapis.com/example.RoleConfig"}}}}})
		}, codes.InvalidArgument},
		{"role change", func(ct *controller) {
			ct.arbitrate(eid(2), "")
			ct.nextArbitration()
			ct.arbitrate(eid(2), "other")
		}, codes.FailedPrecondition},
		{"device change", func(ct *controller) {
			ct.arbitrate(eid(4), "")
			ct.nextArbitration()
			_ = ct.stream.Send(&p4.StreamMessageRequest{Update: &p4.StreamMessageRequest_Arbitration{Arbitration: &p4.MasterArbitrationUpdate{DeviceId: 99, ElectionId: eid(4)}}})
		}, codes.FailedPrecondition},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct := h.openStream()
			tc.send(ct)
			if got := ct.streamEnd(); got != tc.want {
				t.Fatalf("stream ended with %v, want %v", got, tc.want)
			}
		})
	}
}

func TestArbitrationRolesAreIndependent(t *testing.T) {
	h := newHarness(t)
	def := h.primary(1)
	def.commit()
	r := h.openStream()
	r.arbitrate(eid(1), "routing") // same id, different role: allowed
	if u := r.nextArbitration(); arbCode(u) != codes.OK || u.GetRole().GetName() != "routing" {
		t.Fatalf("routing role: %v", u)
	}
	r.mustWrite(ins(exactEntry(1, 1)))
	def.mustWrite(ins(exactEntry(2, 1)))
	// A write naming a role nobody arbitrated for: NOT_FOUND.
	_, err := h.c.Write(ctx(t), &p4.WriteRequest{DeviceId: deviceID, Role: "nope", ElectionId: eid(1), Updates: []*p4.Update{ins(exactEntry(3, 1))}})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("unknown role: %v", err)
	}
	// The routing primary's election id is not valid in the default role once ids differ.
	r2 := h.openStream()
	r2.arbitrate(eid(7), "routing")
	r2.nextArbitration()
	r.nextArbitration() // told it lost
	_, err = h.c.Write(ctx(t), &p4.WriteRequest{DeviceId: deviceID, ElectionId: eid(7), Updates: []*p4.Update{ins(exactEntry(4, 1))}})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("routing's id used in the default role: %v", err)
	}
	// An unset election id is always a backup.
	u := h.openStream()
	u.arbitrate(nil, "")
	if a := u.nextArbitration(); arbCode(a) != codes.AlreadyExists {
		t.Fatalf("unset election id: %v", a)
	}
}

func TestTooManyStreamsForARoleAreRefused(t *testing.T) {
	h := newHarness(t, func(c *softswitch.Config) { c.MaxStreamsPerRole = 2 })
	h.primary(1)
	b := h.openStream()
	b.arbitrate(eid(2), "")
	b.nextArbitration()
	c := h.openStream()
	c.arbitrate(eid(3), "")
	if got := c.streamEnd(); got != codes.ResourceExhausted {
		t.Fatalf("third stream: %v", got)
	}
	// Another role has its own budget.
	d := h.openStream()
	d.arbitrate(eid(3), "other")
	if u := d.nextArbitration(); arbCode(u) != codes.OK {
		t.Fatalf("other role: %v", u)
	}
}
