package session

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gogoproto "github.com/gogo/protobuf/proto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/calico-p4/calico-p4/driver/infraapi"
	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/e2e/felixsim"
	"github.com/projectcalico/calico/felix/proto"
)

// hangGuard bounds every wait: only a hang guard, not a timing assertion.
const hangGuard = 30 * time.Second

// fakeConn is an in-memory driver connection.
type fakeConn struct {
	ctx    context.Context
	cancel context.CancelFunc
	in     chan *infraapi.DriverMessage
	mu     sync.Mutex
	outMsg []*proto.FromDataplane
	wake   chan struct{}
}

func newFakeConn(t *testing.T) *fakeConn {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &fakeConn{ctx: ctx, cancel: cancel, in: make(chan *infraapi.DriverMessage, 1024), wake: make(chan struct{})}
}

func (c *fakeConn) Context() context.Context { return c.ctx }

func (c *fakeConn) Recv() (*infraapi.DriverMessage, error) {
	select {
	case m, ok := <-c.in:
		if !ok {
			return nil, io.EOF
		}
		return m, nil
	case <-c.ctx.Done():
		return nil, status.Error(codes.Canceled, "context canceled")
	}
}

func (c *fakeConn) Send(m *infraapi.ManagerMessage) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range m.GetFromDataplane().GetFrames() {
		fd := &proto.FromDataplane{}
		if err := fd.Unmarshal(f); err != nil {
			return err
		}
		c.outMsg = append(c.outMsg, fd)
	}
	close(c.wake)
	c.wake = make(chan struct{})
	return nil
}

// waitOut waits until cond holds for the FromDataplane messages received so far.
func (c *fakeConn) waitOut(t *testing.T, what string, cond func([]*proto.FromDataplane) bool) []*proto.FromDataplane {
	t.Helper()
	deadline := time.After(hangGuard)
	for {
		c.mu.Lock()
		msgs := slices.Clone(c.outMsg)
		wake := c.wake
		c.mu.Unlock()
		if cond(msgs) {
			return msgs
		}
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; have %d messages: %v", what, len(msgs), msgs)
		}
	}
}

func (c *fakeConn) hello() {
	c.in <- &infraapi.DriverMessage{Msg: &infraapi.DriverMessage_Hello{Hello: &infraapi.Hello{ProtocolVersion: 1}}}
}

func (c *fakeConn) send(t *testing.T, msgs ...*proto.ToDataplane) {
	t.Helper()
	var frames [][]byte
	for _, m := range msgs {
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, b)
	}
	c.in <- &infraapi.DriverMessage{Msg: &infraapi.DriverMessage_ToDataplane{ToDataplane: &infraapi.Frames{Frames: frames}}}
}

func (c *fakeConn) sendRaw(frames ...[]byte) {
	c.in <- &infraapi.DriverMessage{Msg: &infraapi.DriverMessage_ToDataplane{ToDataplane: &infraapi.Frames{Frames: frames}}}
}

type harness struct {
	t   *testing.T
	m   *Manager
	rec *Recorder
}

func newHarness(t *testing.T, result func(n int, desired *model.State, changes model.Changes) error) *harness {
	rec := &Recorder{Result: result}
	m, err := NewManager(prometheus.NewRegistry(), WithApplier(rec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return &harness{t: t, m: m, rec: rec}
}

// start runs a session on a new connection; the returned channel yields Serve's result.
func (h *harness) start() (*fakeConn, chan error) {
	c := newFakeConn(h.t)
	done := make(chan error, 1)
	go func() { done <- h.m.Serve(c) }()
	c.hello()
	return c, done
}

func (h *harness) waitApplies(what string, cond func([]RecordedApply) bool) []RecordedApply {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	calls, err := h.rec.WaitFor(ctx, cond)
	if err != nil {
		h.t.Fatalf("%s: %v", what, err)
	}
	return calls
}

func atLeast(n int) func([]RecordedApply) bool {
	return func(c []RecordedApply) bool { return len(c) >= n }
}

func waitErr(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(hangGuard):
		t.Fatal("session did not end")
		return nil
	}
}

func capture(t *testing.T, name string) *felixsim.Stream {
	t.Helper()
	s, err := felixsim.LoadStream(felixsim.CapturePath(name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func through(t *testing.T, name, step string) []*proto.ToDataplane {
	t.Helper()
	msgs, err := capture(t, name).Through(step)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func withoutInSync(msgs []*proto.ToDataplane) []*proto.ToDataplane {
	return slices.DeleteFunc(slices.Clone(msgs), model.IsInSync)
}

var inSync = &proto.ToDataplane{Payload: &proto.ToDataplane_InSync{InSync: &proto.InSync{}}}

func TestNothingIsAppliedBeforeInSyncThenTheCompleteSnapshotIs(t *testing.T) {
	h := newHarness(t, nil)
	c, _ := h.start()
	snapshot := capture(t, "basic-resync.jsonl").Messages()
	// One message per gRPC message, InSync last.
	for _, m := range snapshot {
		c.send(t, m)
	}
	calls := h.waitApplies("the in-sync apply", atLeast(1))
	first := calls[0]
	if !first.Changes.Resync {
		t.Fatalf("first apply is not the in-sync hand-over: %v", first.Changes)
	}
	if got := first.Desired.WorkloadEndpoints.Len(); got != 3 {
		t.Errorf("desired state at in-sync has %d workload endpoints, want 3", got)
	}
	if got := first.Changes.IPSets.Len(); got != first.Desired.IPSets.Len() || got == 0 {
		t.Errorf("first apply lists %d IP set changes for %d sets", got, first.Desired.IPSets.Len())
	}
	waitFor(t, "ready after the in-sync apply", func() bool { ok, _ := h.m.Ready(); return ok })
}

func TestUpdatesAfterInSyncAreCoalescedWhileAnApplyRuns(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	h := newHarness(t, func(n int, _ *model.State, _ model.Changes) error {
		if n == 2 {
			<-release // hold the first incremental apply until the test has queued more
		}
		return nil
	})
	c, _ := h.start()
	msgs := through(t, "basic.jsonl", "")
	c.send(t, msgs...) // initial snapshot + InSync
	h.waitApplies("in-sync apply", atLeast(1))

	step01 := through(t, "basic.jsonl", "01 nodes: update node1 (labels, IPv6), create remote node2")[len(msgs):]
	c.send(t, step01[0]) // triggers apply 2, which blocks
	h.waitApplies("apply 2 started", atLeast(2))
	pools := through(t, "basic.jsonl", "02 IP pools (no encapsulation)")[len(msgs)+len(step01):]
	for _, m := range append(step01[1:], pools...) {
		c.send(t, m)
	}
	// Wait until the session has decoded all of them (deterministic: the message counter).
	want := float64(len(msgs) + len(step01) + len(pools))
	waitFor(t, "messages decoded", func() bool { return totalMessages(h.m) == want })
	once.Do(func() { close(release) })
	calls := h.waitApplies("apply 3", atLeast(3))
	third := calls[2].Changes
	if got, want := third.String(), "host_metadata:+1~0-0 host_metadata_v4v6:+1~1-0 ipam_pool:+2~0-0"; got != want {
		t.Errorf("apply 3 should coalesce node2 (v4, v4v6), the node1 v4v6 update and two pools:\n got  %s\n want %s", got, want)
	}
	if calls[1].Changes.IPAMPools.Len() != 0 {
		t.Errorf("apply 2 already had pools: %v", calls[1].Changes)
	}
	// The snapshot given to apply 2 was not disturbed by what arrived while it ran.
	if calls[1].Desired.IPAMPools.Len() != 0 {
		t.Errorf("apply 2's desired state changed under it: %d pools", calls[1].Desired.IPAMPools.Len())
	}
}

func totalMessages(m *Manager) float64 {
	n := 0.0
	for _, p := range model.Payloads {
		n += testutil.ToFloat64(m.metrics.messages.WithLabelValues(p))
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFelixRestartReplacesTheDesiredStateOnlyAtInSyncWithTrueDifferences(t *testing.T) {
	h := newHarness(t, nil)
	// Session 1: the state of basic.jsonl after step 15, then Felix dies.
	c1, done1 := h.start()
	c1.send(t, through(t, "basic.jsonl", "15 delete: workload frontend-2")...)
	h.waitApplies("session 1 applies", func(c []RecordedApply) bool {
		return len(c) > 0 && c[len(c)-1].Desired.WorkloadEndpoints.Len() == 2 && totalMessages(h.m) == 68
	})
	waitFor(t, "session 1 quiet", func() bool { return h.m.DesiredSnapshot().PendingChanges() == 0 })
	close(c1.in)
	if err := waitErr(t, done1); err != nil {
		t.Fatalf("session 1 ended with %v", err)
	}
	before := len(h.rec.Applies())

	// Session 2: a new Felix's full resync (the cluster as of step 10), InSync last.
	c2, _ := h.start()
	resync := capture(t, "basic-resync.jsonl").Messages()
	c2.send(t, withoutInSync(resync)...)
	waitFor(t, "resync decoded", func() bool { return totalMessages(h.m) == float64(68+len(resync)-1) })
	if n := len(h.rec.Applies()); n != before {
		t.Fatalf("%d applies during the new session's sync; the dataplane must be left alone until InSync", n-before)
	}
	if h.m.DesiredSnapshot().WorkloadEndpoints.Len() != 2 {
		t.Fatal("desired state changed before InSync")
	}
	c2.send(t, inSync)
	calls := h.waitApplies("resync apply", atLeast(before+1))
	ch := calls[before].Changes
	want := "resync ipset:+2~9-0 policy:+0~1-0 profile:+0~1-0 workload_endpoint:+1~1-0 config:+0~1-0"
	if ch.String() != want {
		t.Errorf("resync changes\n got  %s\n want %s", ch, want)
	}

	// And removals: a third Felix whose snapshot is nearly empty removes everything else at its InSync.
	c2.cancel()
	c3, _ := h.start()
	c3.send(t, through(t, "basic.jsonl", "")...) // config, node1, encapsulation, InSync
	calls = h.waitApplies("sweep apply", func(c []RecordedApply) bool {
		return len(c) > before+1 && c[len(c)-1].Changes.Resync
	})
	sweep := calls[len(calls)-1]
	if got := sweep.Changes.WorkloadEndpoints.Of(model.Removed); len(got) != 3 {
		t.Errorf("removed endpoints at InSync: %v", got)
	}
	if sweep.Desired.WorkloadEndpoints.Len()+sweep.Desired.Policies.Len()+sweep.Desired.IPSets.Len() != 0 {
		t.Errorf("swept state still has objects: %v", sweep.Desired.Counts())
	}
	// Felix gets removals for the endpoints the new snapshot lacks.
	c3.waitOut(t, "3 workload status removals", func(m []*proto.FromDataplane) bool {
		n := 0
		for _, x := range m {
			if x.GetWorkloadEndpointStatusRemove() != nil {
				n++
			}
		}
		return n == 3
	})
}

func TestEndpointStatusIsUpOnlyAfterASuccessfulApply(t *testing.T) {
	fail := true
	var mu sync.Mutex
	h := newHarness(t, func(n int, _ *model.State, _ model.Changes) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("target says no")
		}
		return nil
	})
	c, _ := h.start()
	cfg := &proto.ToDataplane{Payload: &proto.ToDataplane_ConfigUpdate{ConfigUpdate: &proto.ConfigUpdate{
		Config: map[string]string{"ReportingIntervalSecs": "0.05", model.OptApplyRetrySecs: "0.01"}}}}
	snapshot := withoutInSync(through(t, "basic.jsonl", "08 HostEndpoint node1-eth0 + host policies (doNotTrack, preDNAT, applyOnForward)"))
	c.send(t, append([]*proto.ToDataplane{cfg}, append(snapshot[1:], inSync)...)...)

	statuses := func(msgs []*proto.FromDataplane) map[string]string {
		out := map[string]string{}
		for _, m := range msgs {
			if u := m.GetWorkloadEndpointStatusUpdate(); u != nil {
				out[u.Id.WorkloadId] = u.Status.Status
			}
			if u := m.GetHostEndpointStatusUpdate(); u != nil {
				out["hep:"+u.Id.EndpointId] = u.Status.Status
			}
		}
		return out
	}
	c.waitOut(t, "error statuses", func(m []*proto.FromDataplane) bool {
		s := statuses(m)
		return s["default/frontend-1"] == "error" && s["hep:node1-eth0"] == "error"
	})
	if ok, _ := h.m.Ready(); ok {
		t.Error("ready although the apply failed")
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	msgs := c.waitOut(t, "up statuses after the retry", func(m []*proto.FromDataplane) bool {
		s := statuses(m)
		return s["default/frontend-1"] == "up" && s["default/frontend-2"] == "up" && s["default/backend-1"] == "up" &&
			s["hep:node1-eth0"] == "up"
	})
	waitFor(t, "ready", func() bool { ok, _ := h.m.Ready(); return ok })
	// Process status heartbeats keep coming at ReportingIntervalSecs.
	c.waitOut(t, "two process status updates", func(m []*proto.FromDataplane) bool {
		n := 0
		for _, x := range m {
			if p := x.GetProcessStatusUpdate(); p != nil {
				if _, err := time.Parse(time.RFC3339, p.IsoTimestamp); err != nil {
					t.Errorf("timestamp %q: %v", p.IsoTimestamp, err)
				}
				n++
			}
		}
		return n >= 2
	})
	// Sequence numbers increase.
	for i := 1; i < len(msgs); i++ {
		if msgs[i].SequenceNumber <= msgs[i-1].SequenceNumber {
			t.Fatalf("sequence numbers not increasing at %d", i)
		}
	}
	// The failed batch was retried with its changes (merged), not lost.
	calls := h.rec.Applies()
	if !calls[0].Changes.Resync || calls[0].Err == nil {
		t.Fatalf("first apply: %v %v", calls[0].Changes, calls[0].Err)
	}
	last := calls[len(calls)-1]
	if last.Err != nil {
		t.Fatal("last apply failed")
	}
	ok := false
	for _, c := range calls[1:] {
		if c.Err == nil && c.Changes.Resync && c.Changes.WorkloadEndpoints.Len() == 3 {
			ok = true
		}
	}
	if !ok {
		t.Error("no successful retry carried the in-sync hand-over's changes")
	}

	// Removing an endpoint sends a status removal.
	c.send(t, &proto.ToDataplane{Payload: &proto.ToDataplane_WorkloadEndpointRemove{WorkloadEndpointRemove: &proto.WorkloadEndpointRemove{
		Id: &proto.WorkloadEndpointID{OrchestratorId: "k8s", WorkloadId: "default/frontend-2", EndpointId: "eth0"}}}})
	c.waitOut(t, "status removal", func(m []*proto.FromDataplane) bool {
		for _, x := range m {
			if r := x.GetWorkloadEndpointStatusRemove(); r != nil && r.Id.WorkloadId == "default/frontend-2" {
				return true
			}
		}
		return false
	})
}

func TestPartialEndpointErrorsMarkOnlyThoseEndpoints(t *testing.T) {
	bad := model.WorkloadEndpointKey{OrchestratorID: "k8s", WorkloadID: "default/backend-1", EndpointID: "eth0"}
	h := newHarness(t, func(int, *model.State, model.Changes) error {
		return &EndpointErrors{Workloads: map[model.WorkloadEndpointKey]error{bad: errors.New("table full")}}
	})
	c, _ := h.start()
	c.send(t, capture(t, "basic-resync.jsonl").Messages()...)
	c.waitOut(t, "mixed statuses", func(m []*proto.FromDataplane) bool {
		s := map[string]string{}
		for _, x := range m {
			if u := x.GetWorkloadEndpointStatusUpdate(); u != nil {
				s[u.Id.WorkloadId] = u.Status.Status
			}
		}
		return s["default/backend-1"] == "error" && s["default/frontend-1"] == "up" && s["default/frontend-2"] == "up"
	})
}

func TestInvalidObjectsAreCountedAndRejectedEndpointsReportError(t *testing.T) {
	h := newHarness(t, nil)
	c, _ := h.start()
	c.send(t, through(t, "basic.jsonl", "")...)
	h.waitApplies("in sync", atLeast(1))
	badWEP := &proto.ToDataplane{Payload: &proto.ToDataplane_WorkloadEndpointUpdate{WorkloadEndpointUpdate: &proto.WorkloadEndpointUpdate{
		Id:       &proto.WorkloadEndpointID{OrchestratorId: "k8s", WorkloadId: "ns/bad", EndpointId: "eth0"},
		Endpoint: &proto.WorkloadEndpoint{Name: "calibad", Ipv4Nets: []string{"10.65.0.300/32"}}}}}
	badPolicy := &proto.ToDataplane{Payload: &proto.ToDataplane_ActivePolicyUpdate{ActivePolicyUpdate: &proto.ActivePolicyUpdate{
		Id: &proto.PolicyID{Tier: "default", Name: "p"}, Policy: &proto.Policy{InboundRules: []*proto.Rule{{Action: "jump"}}}}}}
	goodNS := &proto.ToDataplane{Payload: &proto.ToDataplane_NamespaceUpdate{NamespaceUpdate: &proto.NamespaceUpdate{
		Id: &proto.NamespaceID{Name: "ok"}}}}
	c.send(t, badWEP, badPolicy, goodNS)
	c.waitOut(t, "error status for the rejected endpoint", func(m []*proto.FromDataplane) bool {
		for _, x := range m {
			if u := x.GetWorkloadEndpointStatusUpdate(); u != nil && u.Id.WorkloadId == "ns/bad" && u.Status.Status == "error" {
				return true
			}
		}
		return false
	})
	waitFor(t, "namespace applied", func() bool { return h.m.DesiredSnapshot().Namespaces.Has("ok") })
	for kind, want := range map[string]float64{"workload_endpoint": 1, "policy": 1, "namespace": 0} {
		if got := testutil.ToFloat64(h.m.metrics.invalid.WithLabelValues(kind)); got != want {
			t.Errorf("invalid %s = %v, want %v", kind, got, want)
		}
	}
}

func TestUnknownPayloadsAreCountedAndTheSessionContinues(t *testing.T) {
	h := newHarness(t, nil)
	c, _ := h.start()
	c.send(t, through(t, "basic.jsonl", "")...)
	h.waitApplies("in sync", atLeast(1))
	unknown := []byte{0x78, 0x05, 0xba, 0x02, 0x00} // seq 5, field 39 (empty message)
	c.sendRaw(unknown, unknown)
	c.send(t, &proto.ToDataplane{Payload: &proto.ToDataplane_NamespaceUpdate{NamespaceUpdate: &proto.NamespaceUpdate{
		Id: &proto.NamespaceID{Name: "after"}}}})
	waitFor(t, "later message applied", func() bool { return h.m.DesiredSnapshot().Namespaces.Has("after") })
	if got := testutil.ToFloat64(h.m.metrics.unknown.WithLabelValues("field_39")); got != 2 {
		t.Errorf("unknown payloads = %v, want 2", got)
	}
}

func TestUndecodableFrameClosesTheSessionAndLeavesTheStateAlone(t *testing.T) {
	h := newHarness(t, nil)
	c, done := h.start()
	c.send(t, through(t, "basic.jsonl", "02 IP pools (no encapsulation)")...)
	waitFor(t, "pools applied", func() bool {
		calls := h.rec.Applies()
		return len(calls) > 0 && calls[len(calls)-1].Desired.IPAMPools.Len() == 2
	})
	before := h.m.DesiredSnapshot().Len()
	c.sendRaw([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}) // field 1 with an impossible length
	err := waitErr(t, done)
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("session ended with %v, want InvalidArgument", err)
	}
	if got := testutil.ToFloat64(h.m.metrics.framingErrors.WithLabelValues("undecodable")); got != 1 {
		t.Errorf("framing errors = %v", got)
	}
	if after := h.m.DesiredSnapshot().Len(); after != before {
		t.Errorf("desired state changed from %d to %d objects", before, after)
	}
	if ok, why := h.m.Ready(); !ok {
		t.Errorf("manager not ready after a session's framing error: %s", why)
	}
	// A new session works.
	c2, _ := h.start()
	c2.send(t, through(t, "basic.jsonl", "")...)
	h.waitApplies("new session in sync", func(c []RecordedApply) bool { return c[len(c)-1].Changes.Resync && len(c) > 1 })
}

func TestANewSessionReplacesTheCurrentOne(t *testing.T) {
	h := newHarness(t, nil)
	_, done1 := h.start()
	waitFor(t, "session 1 registered", func() bool { h.m.mu.Lock(); defer h.m.mu.Unlock(); return h.m.cur != nil })
	c2, _ := h.start()
	err := waitErr(t, done1)
	if status.Code(err) != codes.Aborted {
		t.Fatalf("replaced session ended with %v, want Aborted", err)
	}
	c2.send(t, through(t, "basic.jsonl", "")...)
	h.waitApplies("session 2 in sync", atLeast(1))
}

func TestHelloIsRequiredFirst(t *testing.T) {
	h := newHarness(t, nil)
	c := newFakeConn(t)
	c.send(t, inSync)
	if err := h.m.Serve(c); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v", err)
	}
}

func appliedSeq(m *Manager) float64 { return testutil.ToFloat64(m.metrics.appliedSeq) }

// The applied-sequence gauge tells an observer (the e2e harness, an operator) how far the dataplane has
// caught up with Felix: it moves only when an apply covering the message succeeded, stays put while an
// apply fails, covers messages that changed nothing, and starts again at -1 with each new session.
func TestAppliedSequenceNumberFollowsSuccessfulApplies(t *testing.T) {
	var fail atomic.Bool
	h := newHarness(t, func(_ int, _ *model.State, _ model.Changes) error {
		if fail.Load() {
			return errors.New("target refuses")
		}
		return nil
	})
	if got := appliedSeq(h.m); got != -1 {
		t.Fatalf("before any session: %v, want -1", got)
	}
	c, _ := h.start()
	msgs := through(t, "basic.jsonl", "")
	last := float64(msgs[len(msgs)-1].SequenceNumber)
	c.send(t, msgs...)
	waitFor(t, "the in-sync apply reflected", func() bool { return appliedSeq(h.m) == last })

	// A message that changes nothing (the same config again) is reflected without an apply.
	applies := len(h.rec.Applies())
	again := &proto.ToDataplane{SequenceNumber: uint64(last) + 1, Payload: msgs[0].Payload}
	c.send(t, again)
	waitFor(t, "the no-op message reflected", func() bool { return appliedSeq(h.m) == last+1 })
	if n := len(h.rec.Applies()); n != applies {
		t.Errorf("a message that changed nothing caused %d applies", n-applies)
	}

	// A failing apply leaves the gauge where it was.
	fail.Store(true)
	step := through(t, "basic.jsonl", "01 nodes: update node1 (labels, IPv6), create remote node2")[len(msgs):]
	for i, m := range step {
		m = gogoproto.Clone(m).(*proto.ToDataplane)
		m.SequenceNumber = uint64(last) + 2 + uint64(i)
		step[i] = m
	}
	c.send(t, step...)
	h.waitApplies("the failing apply", atLeast(applies+1))
	if got := appliedSeq(h.m); got != last+1 {
		t.Errorf("after a failed apply: %v, want %v", got, last+1)
	}
	fail.Store(false)
	waitFor(t, "the retried apply reflected", func() bool {
		return appliedSeq(h.m) == float64(step[len(step)-1].SequenceNumber)
	})

	// A new session starts from -1 until its own in-sync apply.
	h.start()
	waitFor(t, "reset by the new session", func() bool { return appliedSeq(h.m) == -1 })
}

// A workload endpoint whose Felix state is not "active" is programmed (its traffic dropped) and reported
// "down", as Felix's Linux dataplane reports it; back to "active" it is reported "up".
func TestEndpointInStateDownIsReportedDown(t *testing.T) {
	h := newHarness(t, func(int, *model.State, model.Changes) error { return nil })
	c, _ := h.start()
	wep := func(state string) *proto.ToDataplane {
		return &proto.ToDataplane{Payload: &proto.ToDataplane_WorkloadEndpointUpdate{WorkloadEndpointUpdate: &proto.WorkloadEndpointUpdate{
			Id:       &proto.WorkloadEndpointID{OrchestratorId: "k8s", WorkloadId: "default/pod-a", EndpointId: "eth0"},
			Endpoint: &proto.WorkloadEndpoint{State: state, Name: "cali0123456789a", Ipv4Nets: []string{"10.65.0.9/32"}}}}}
	}
	last := func(msgs []*proto.FromDataplane) string {
		st := ""
		for _, m := range msgs {
			if u := m.GetWorkloadEndpointStatusUpdate(); u != nil && u.Id.WorkloadId == "default/pod-a" {
				st = u.Status.Status
			}
		}
		return st
	}
	c.send(t, wep("down"), inSync)
	c.waitOut(t, "status down", func(m []*proto.FromDataplane) bool { return last(m) == "down" })
	c.send(t, wep("active"))
	c.waitOut(t, "status up", func(m []*proto.FromDataplane) bool { return last(m) == "up" })
}
