package softswitch_test

import (
	"testing"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/calico-p4/calico-p4/ipu/softswitch"
)

func TestCapabilitiesReportsTheAPIVersion(t *testing.T) {
	h := newHarness(t)
	r, err := h.c.Capabilities(ctx(t), &p4.CapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r.P4RuntimeApiVersion != "1.4.1" {
		t.Fatalf("version %q", r.P4RuntimeApiVersion)
	}
}

func TestPipelineConfigIsReturnedPerResponseType(t *testing.T) {
	h := newHarness(t)
	r, err := h.c.GetForwardingPipelineConfig(ctx(t), &p4.GetForwardingPipelineConfigRequest{DeviceId: deviceID})
	if err != nil {
		t.Fatal(err)
	}
	if r.Config != nil {
		t.Fatalf("config before any SetForwardingPipelineConfig: %v", r.Config)
	}
	ct := h.primary(1)
	devCfg := []byte("opaque device config")
	if err := ct.setPipeline(p4.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, &p4.ForwardingPipelineConfig{
		P4Info: h.info, P4DeviceConfig: devCfg, Cookie: &p4.ForwardingPipelineConfig_Cookie{Cookie: 7}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rt                   p4.GetForwardingPipelineConfigRequest_ResponseType
		wantInfo, wantDevCfg bool
	}{
		{p4.GetForwardingPipelineConfigRequest_ALL, true, true},
		{p4.GetForwardingPipelineConfigRequest_COOKIE_ONLY, false, false},
		{p4.GetForwardingPipelineConfigRequest_P4INFO_AND_COOKIE, true, false},
		{p4.GetForwardingPipelineConfigRequest_DEVICE_CONFIG_AND_COOKIE, false, true},
	} {
		r, err := h.c.GetForwardingPipelineConfig(ctx(t), &p4.GetForwardingPipelineConfigRequest{DeviceId: deviceID, ResponseType: tc.rt})
		if err != nil {
			t.Fatalf("%v: %v", tc.rt, err)
		}
		c := r.Config
		if c.GetCookie().GetCookie() != 7 {
			t.Errorf("%v: cookie %v", tc.rt, c.GetCookie())
		}
		if got := c.P4Info != nil; got != tc.wantInfo {
			t.Errorf("%v: p4info present %v", tc.rt, got)
		}
		if tc.wantInfo && !proto.Equal(c.P4Info, h.info) {
			t.Errorf("%v: p4info differs from the one pushed", tc.rt)
		}
		if got := string(c.P4DeviceConfig); tc.wantDevCfg != (got == string(devCfg)) {
			t.Errorf("%v: device config %q", tc.rt, got)
		}
	}
	if _, err := h.c.GetForwardingPipelineConfig(ctx(t), &p4.GetForwardingPipelineConfigRequest{DeviceId: 99}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown device: %v", err)
	}
}

func TestWriteThenReadTableEntryRoundTrips(t *testing.T) {
	h := newHarness(t)
	ct := h.primary(1)
	ct.commit()
	e := exactEntry(5, 3)
	e.GetTableEntry().Metadata = []byte("cookie")
	ct.mustWrite(ins(e))
	got := h.mustRead(entTE(&p4.TableEntry{TableId: tExact}))
	if len(got) != 1 || !proto.Equal(got[0], e) {
		t.Fatalf("read %v, want %v", got, e)
	}
	st, tbl := h.table(tExact)
	key := []byte{0x02, 0, 0, 0, 0, 5, 0, 1}
	hit := st.Lookup(tbl, key)
	if hit == nil {
		t.Fatal("data plane lookup missed the written entry")
	}
	if a := st.Resolve(hit, 0); a.ID != aSetPort || a.Param(0)[1] != 3 {
		t.Fatalf("data plane action %v", a)
	}
}

func TestEntitySizeEstimateIsAnUpperBound(t *testing.T) {
	for _, e := range []*p4.Entity{
		routeEntry(5), exactEntry(1, 2), aclEntry(3, act(aDeny), tern(1, []byte{10, 0, 0, 0}, []byte{0xff, 0, 0, 0}), rng(3, []byte{1}, []byte{2}), opt(4, 1)),
		withTE(routeEntry(1), func(t *p4.TableEntry) {
			t.Metadata = make([]byte, 300)
			t.ControllerMetadata = 1 << 62
			t.Priority = -1
		}),
	} {
		if got, want := softswitch.EntitySize(e), proto.Size(e); got < want {
			t.Errorf("estimate %d below the encoded size %d for %v", got, want, e)
		}
	}
}
