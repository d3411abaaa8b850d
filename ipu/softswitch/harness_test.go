package softswitch_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	p4cfg "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/calico-p4/calico-p4/ipu/softswitch"
	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
)

const deviceID = 1

// Test P4Info ids (testdata/full.p4info.txtpb).
const (
	tExact        = 0x02000001
	tLPM          = 0x02000002
	tACL          = 0x02000003
	tConstDefault = 0x02000004
	tECMP         = 0x02000005
	tProfile      = 0x02000006
	tOneShot      = 0x02000007
	tIdle         = 0x02000008
	tCT           = 0x02000009
	tKeyless      = 0x0200000a
	tConst        = 0x0200000b
	tSmall        = 0x0200000c

	aNoAction    = 0x01000001
	aDrop        = 0x01000002
	aSetPort     = 0x01000003
	aSetNhop     = 0x01000004
	aPermit      = 0x01000005
	aDeny        = 0x01000006
	aDefaultDeny = 0x01000007
	aCtHit       = 0x01000008
	aCtLearn     = 0x01000009

	pECMP    = 0x11000001
	pPlain   = 0x11000002
	pMembers = 0x11000003

	cPortPkts = 0x12000001
	dcExact   = 0x13000001
	dcACL     = 0x13000002
	mMeter    = 0x14000001
	rReg32    = 0x16000001
	rSigned   = 0x16000002
	rWide     = 0x16000003
	dgMac     = 0x17000001
)

func loadP4Info(t testing.TB, name string) *p4cfg.P4Info {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	info := &p4cfg.P4Info{}
	if err := prototext.Unmarshal(b, info); err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
	return info
}

// harness is a server on a unix socket with a real gRPC client.
type harness struct {
	t    testing.TB
	srv  *softswitch.Server
	conn *grpc.ClientConn
	c    p4.P4RuntimeClient
	info *p4cfg.P4Info
	reg  *prometheus.Registry
}

type harnessOpt func(*softswitch.Config)

func newHarness(t testing.TB, opts ...harnessOpt) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := softswitch.Config{DeviceID: deviceID, Registry: reg, SweepInterval: 20 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := softswitch.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "p4rt.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20), grpc.MaxCallSendMsgSize(256<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after Stop")
		}
	})
	return &harness{t: t, srv: srv, conn: conn, c: p4.NewP4RuntimeClient(conn), info: loadP4Info(t, "full.p4info.txtpb"), reg: reg}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// controller is one client's StreamChannel.
type controller struct {
	h        *harness
	stream   p4.P4Runtime_StreamChannelClient
	cancel   context.CancelFunc
	election *p4.Uint128
	role     string
	msgs     chan *p4.StreamMessageResponse
	end      chan error
}

func (h *harness) openStream() *controller {
	h.t.Helper()
	c, cancel := context.WithCancel(context.Background())
	s, err := h.c.StreamChannel(c)
	if err != nil {
		h.t.Fatal(err)
	}
	ct := &controller{h: h, stream: s, cancel: cancel, msgs: make(chan *p4.StreamMessageResponse, 1024), end: make(chan error, 1)}
	go func() {
		for {
			m, err := s.Recv()
			if err != nil {
				ct.end <- err
				close(ct.msgs)
				return
			}
			ct.msgs <- m
		}
	}()
	h.t.Cleanup(cancel)
	return ct
}

// arbitrate sends an arbitration update (election nil: unset).
func (ct *controller) arbitrate(election *p4.Uint128, role string) {
	ct.h.t.Helper()
	ct.election, ct.role = election, role
	u := &p4.MasterArbitrationUpdate{DeviceId: deviceID, ElectionId: election}
	if role != "" {
		u.Role = &p4.Role{Name: role}
	}
	if err := ct.stream.Send(&p4.StreamMessageRequest{Update: &p4.StreamMessageRequest_Arbitration{Arbitration: u}}); err != nil {
		ct.h.t.Fatal(err)
	}
}

// next returns the next stream message (failing the test after a generous hang guard).
func (ct *controller) next() *p4.StreamMessageResponse {
	ct.h.t.Helper()
	select {
	case m, ok := <-ct.msgs:
		if !ok {
			ct.h.t.Fatalf("stream ended: %v", <-ct.end)
		}
		return m
	case <-time.After(30 * time.Second):
		ct.h.t.Fatal("no stream message within 30s")
	}
	return nil
}

// nextArbitration returns the next arbitration update, skipping other messages.
func (ct *controller) nextArbitration() *p4.MasterArbitrationUpdate {
	ct.h.t.Helper()
	for {
		if a := ct.next().GetArbitration(); a != nil {
			return a
		}
	}
}

// streamEnd waits for the stream to end and returns its status code.
func (ct *controller) streamEnd() codes.Code {
	ct.h.t.Helper()
	for {
		select {
		case _, ok := <-ct.msgs:
			if !ok {
				err := <-ct.end
				if errors.Is(err, io.EOF) {
					return codes.OK
				}
				return status.Code(err)
			}
		case <-time.After(30 * time.Second):
			ct.h.t.Fatal("stream did not end within 30s")
		}
	}
}

func eid(v uint64) *p4.Uint128 { return &p4.Uint128{Low: v} }

// primary opens a stream and becomes primary with the given election id.
func (h *harness) primary(election uint64) *controller {
	h.t.Helper()
	ct := h.openStream()
	ct.arbitrate(eid(election), "")
	a := ct.nextArbitration()
	if a.Status.GetCode() != int32(codes.OK) {
		h.t.Fatalf("not primary: %v", a)
	}
	return ct
}

func (ct *controller) setPipeline(action p4.SetForwardingPipelineConfigRequest_Action, cfg *p4.ForwardingPipelineConfig) error {
	_, err := ct.h.c.SetForwardingPipelineConfig(ctx(ct.h.t), &p4.SetForwardingPipelineConfigRequest{
		DeviceId: deviceID, Role: ct.role, ElectionId: ct.election, Action: action, Config: cfg})
	return err
}

// commit pushes the test P4Info with VERIFY_AND_COMMIT (clearing all state).
func (ct *controller) commit() {
	ct.h.t.Helper()
	if err := ct.setPipeline(p4.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, &p4.ForwardingPipelineConfig{P4Info: ct.h.info, Cookie: &p4.ForwardingPipelineConfig_Cookie{Cookie: 42}}); err != nil {
		ct.h.t.Fatal(err)
	}
}

// write sends a batch and returns the RPC error.
func (ct *controller) writeAtomic(atom p4.WriteRequest_Atomicity, updates ...*p4.Update) error {
	_, err := ct.h.c.Write(ctx(ct.h.t), &p4.WriteRequest{DeviceId: deviceID, Role: ct.role, ElectionId: ct.election, Updates: updates, Atomicity: atom})
	return err
}

// codesOf extracts the per-update codes of a Write error (all OK for nil).
func codesOf(t testing.TB, err error, n int) []codes.Code {
	t.Helper()
	out := make([]codes.Code, n)
	if err == nil {
		return out
	}
	st := status.Convert(err)
	if st.Code() != codes.Unknown {
		t.Fatalf("batch error %v, want UNKNOWN with per-update details", err)
	}
	det := st.Details()
	if len(det) != n {
		t.Fatalf("%d details for %d updates: %v", len(det), n, err)
	}
	for i, d := range det {
		pe, ok := d.(*p4.Error)
		if !ok {
			t.Fatalf("detail %d is %T", i, d)
		}
		out[i] = codes.Code(pe.CanonicalCode)
	}
	return out
}

// write sends updates with CONTINUE_ON_ERROR and returns the per-update codes.
func (ct *controller) write(updates ...*p4.Update) []codes.Code {
	ct.h.t.Helper()
	return codesOf(ct.h.t, ct.writeAtomic(p4.WriteRequest_CONTINUE_ON_ERROR, updates...), len(updates))
}

// mustWrite fails the test unless every update succeeds.
func (ct *controller) mustWrite(updates ...*p4.Update) {
	ct.h.t.Helper()
	if err := ct.writeAtomic(p4.WriteRequest_CONTINUE_ON_ERROR, updates...); err != nil {
		ct.h.t.Fatalf("write: %v", err)
	}
}

func (h *harness) read(entities ...*p4.Entity) ([]*p4.Entity, error) {
	rc, err := h.c.Read(ctx(h.t), &p4.ReadRequest{DeviceId: deviceID, Entities: entities})
	if err != nil {
		return nil, err
	}
	var out []*p4.Entity
	for {
		r, err := rc.Recv()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, r.Entities...)
	}
}

func (h *harness) mustRead(entities ...*p4.Entity) []*p4.Entity {
	h.t.Helper()
	out, err := h.read(entities...)
	if err != nil {
		h.t.Fatalf("read: %v", err)
	}
	return out
}

// Builders.

func ins(e *p4.Entity) *p4.Update { return &p4.Update{Type: p4.Update_INSERT, Entity: e} }
func mod(e *p4.Entity) *p4.Update { return &p4.Update{Type: p4.Update_MODIFY, Entity: e} }
func del(e *p4.Entity) *p4.Update { return &p4.Update{Type: p4.Update_DELETE, Entity: e} }

func entTE(te *p4.TableEntry) *p4.Entity {
	return &p4.Entity{Entity: &p4.Entity_TableEntry{TableEntry: te}}
}

func exact(id uint32, v ...byte) *p4.FieldMatch {
	return &p4.FieldMatch{FieldId: id, FieldMatchType: &p4.FieldMatch_Exact_{Exact: &p4.FieldMatch_Exact{Value: v}}}
}
func lpm(id uint32, plen int32, v ...byte) *p4.FieldMatch {
	return &p4.FieldMatch{FieldId: id, FieldMatchType: &p4.FieldMatch_Lpm{Lpm: &p4.FieldMatch_LPM{Value: v, PrefixLen: plen}}}
}
func tern(id uint32, v, m []byte) *p4.FieldMatch {
	return &p4.FieldMatch{FieldId: id, FieldMatchType: &p4.FieldMatch_Ternary_{Ternary: &p4.FieldMatch_Ternary{Value: v, Mask: m}}}
}
func rng(id uint32, lo, hi []byte) *p4.FieldMatch {
	return &p4.FieldMatch{FieldId: id, FieldMatchType: &p4.FieldMatch_Range_{Range: &p4.FieldMatch_Range{Low: lo, High: hi}}}
}
func opt(id uint32, v ...byte) *p4.FieldMatch {
	return &p4.FieldMatch{FieldId: id, FieldMatchType: &p4.FieldMatch_Optional_{Optional: &p4.FieldMatch_Optional{Value: v}}}
}

func param(id uint32, v ...byte) *p4.Action_Param { return &p4.Action_Param{ParamId: id, Value: v} }

func act(id uint32, params ...*p4.Action_Param) *p4.TableAction {
	return &p4.TableAction{Type: &p4.TableAction_Action{Action: &p4.Action{ActionId: id, Params: params}}}
}
func memberAct(id uint32) *p4.TableAction {
	return &p4.TableAction{Type: &p4.TableAction_ActionProfileMemberId{ActionProfileMemberId: id}}
}
func groupAct(id uint32) *p4.TableAction {
	return &p4.TableAction{Type: &p4.TableAction_ActionProfileGroupId{ActionProfileGroupId: id}}
}

func te(table uint32, prio int32, a *p4.TableAction, ms ...*p4.FieldMatch) *p4.Entity {
	return entTE(&p4.TableEntry{TableId: table, Priority: prio, Action: a, Match: ms})
}

// exactEntry is an entry of ingress.exact_tbl: dst MAC (last byte v), port 1 → set_port(port).
func exactEntry(v byte, port byte) *p4.Entity {
	return te(tExact, 0, act(aSetPort, param(1, port)), exact(1, 0x02, 0, 0, 0, 0, v), exact(2, 1))
}

func member(profile, id uint32, a *p4.Action) *p4.Entity {
	return &p4.Entity{Entity: &p4.Entity_ActionProfileMember{ActionProfileMember: &p4.ActionProfileMember{ActionProfileId: profile, MemberId: id, Action: a}}}
}

func group(profile, id uint32, maxSize int32, members ...*p4.ActionProfileGroup_Member) *p4.Entity {
	return &p4.Entity{Entity: &p4.Entity_ActionProfileGroup{ActionProfileGroup: &p4.ActionProfileGroup{ActionProfileId: profile, GroupId: id, MaxSize: maxSize, Members: members}}}
}

func gm(id uint32, weight int32) *p4.ActionProfileGroup_Member {
	return &p4.ActionProfileGroup_Member{MemberId: id, Weight: weight}
}

func nhop(n byte, port byte) *p4.Action {
	return &p4.Action{ActionId: aSetNhop, Params: []*p4.Action_Param{param(1, 10, 0, 0, n), param(2, port)}}
}

// lookupKey is a helper for data-plane checks: the running snapshot's table by id.
func (h *harness) table(id uint32) (*tables.State, *tables.Table) {
	st := h.srv.Store().Load()
	return st, st.TableByID(id)
}

func codeOf(err error) codes.Code { return status.Code(err) }
