package translator

import (
	"testing"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/projectcalico/calico/felix/proto"
)

// forwardView is what the entries say about a workload's "*" host endpoint forward policy: the flags of
// its port_endpoint entry (port) and of its nh_local next hop (by endpoint id), and the lists its
// endpoint_policy entries select at STAGE_FORWARD_INGRESS and STAGE_FORWARD_EGRESS (0: none).
func forwardView(tr *Translator, epID, port uint32) (portFlags, nhFlags uint8, in, out uint32) {
	param := func(ps []entryParam, name string) (uint64, bool) {
		for _, p := range ps {
			if p.name == name {
				return p.v, true
			}
		}
		return 0, false
	}
	for _, e := range tr.Entries().Sorted() {
		var ps []entryParam
		for _, p := range e.Action.Params {
			ps = append(ps, entryParam{string(p.Name), beUint(p.Value)})
		}
		switch string(e.Table) {
		case string(p4src.TablePortEndpoint):
			if beUint(e.Match[0].Value) == uint64(port) {
				f, _ := param(ps, string(p4src.ParamSetEndpointFlags))
				portFlags = uint8(f)
			}
		case string(p4src.TableNexthop):
			if string(e.Action.Name) != string(p4src.ActionNHLocal) {
				continue
			}
			if id, _ := param(ps, string(p4src.ParamNHLocalEndpointID)); id == uint64(epID) {
				f, _ := param(ps, string(p4src.ParamNHLocalFlags))
				nhFlags = uint8(f)
			}
		case string(p4src.TableEndpointPolicy):
			var ep, stage uint64
			for _, m := range e.Match {
				switch string(m.Field) {
				case string(p4src.KeyEndpointPolicyEndpointID):
					ep = beUint(m.Value)
				case string(p4src.KeyEndpointPolicyStage):
					stage = beUint(m.Value)
				}
			}
			if ep != uint64(epID) {
				continue
			}
			switch uint8(stage) {
			case p4src.StageForwardIngress:
				in = uint32(ps[0].v)
			case p4src.StageForwardEgress:
				out = uint32(ps[0].v)
			}
		}
	}
	return portFlags, nhFlags, in, out
}

type entryParam struct {
	name string
	v    uint64
}

// TestAllInterfacesForwardPolicyRunsOnWorkloads: a "*" host endpoint's applyOnForward policy gives every
// workload EP_FLAG_HEP_FORWARD and the "*" endpoint's forward list per direction that has policy — on
// port_endpoint for the ingress list (traffic from the workload), on the workload's next hop for the
// egress list (traffic to it), the same interned lists as the uplink's; a direction without policy, a "*"
// endpoint without forward policy, or none at all: nothing — incrementally as from scratch.
func TestAllInterfacesForwardPolicyRunsOnWorkloads(t *testing.T) {
	k := model.WorkloadEndpointKey{OrchestratorID: "k8s", WorkloadID: "ns/a", EndpointID: "eth0"}
	port, _ := testPorts.PortID("calia")
	wep := &proto.ToDataplane{Payload: &proto.ToDataplane_WorkloadEndpointUpdate{WorkloadEndpointUpdate: &proto.WorkloadEndpointUpdate{
		Id: &proto.WorkloadEndpointID{OrchestratorId: "k8s", WorkloadId: "ns/a", EndpointId: "eth0"},
		Endpoint: &proto.WorkloadEndpoint{State: "active", Name: "calia", Mac: "0a:58:0a:41:00:02",
			Ipv4Nets: []string{"10.65.0.2/32"}}}}}
	pol := &proto.ToDataplane{Payload: &proto.ToDataplane_ActivePolicyUpdate{ActivePolicyUpdate: &proto.ActivePolicyUpdate{
		Id: &proto.PolicyID{Tier: "default", Name: "deny-81"}, Policy: &proto.Policy{
			InboundRules:  []*proto.Rule{{Action: "deny", DstPorts: []*proto.PortRange{{First: 81, Last: 81}}}},
			OutboundRules: []*proto.Rule{{Action: "deny", DstPorts: []*proto.PortRange{{First: 81, Last: 81}}}}}}}}
	star := func(id string, in, out bool) *proto.ToDataplane {
		h := &proto.HostEndpoint{Name: "*"}
		if in || out {
			ti := &proto.TierInfo{Name: "default"}
			if in {
				ti.IngressPolicies = []string{"deny-81"}
			}
			if out {
				ti.EgressPolicies = []string{"deny-81"}
			}
			h.ForwardTiers = []*proto.TierInfo{ti}
		}
		return &proto.ToDataplane{Payload: &proto.ToDataplane_HostEndpointUpdate{HostEndpointUpdate: &proto.HostEndpointUpdate{
			Id: &proto.HostEndpointID{EndpointId: id}, Endpoint: h}}}
	}
	remove := func(id string) *proto.ToDataplane {
		return &proto.ToDataplane{Payload: &proto.ToDataplane_HostEndpointRemove{HostEndpointRemove: &proto.HostEndpointRemove{
			Id: &proto.HostEndpointID{EndpointId: id}}}}
	}

	live := model.NewState()
	applyMsgs(t, live, wep, pol)
	tr := New(testPorts, testNode())
	tr.Apply(live.Clone(), live.TakeChanges())
	for i, step := range []struct {
		msg     *proto.ToDataplane
		in, out bool
	}{
		{star("node1-auto", true, true), true, true},
		{star("node1-auto", true, false), true, false},
		{star("node1-auto", false, true), false, true},
		{star("node1-auto", false, false), false, false},
		{star("node1-auto", true, true), true, true},
		// A larger "*" endpoint without forward policy is not the one in use; once the smaller one goes,
		// it is (no forward policy: nothing).
		{star("node2-auto", false, false), true, true},
		{remove("node1-auto"), false, false},
		{star("node1-auto", false, true), false, true},
		{remove("node1-auto"), false, false},
	} {
		applyMsgs(t, live, step.msg)
		changes := live.TakeChanges()
		res := tr.Apply(live.Clone(), changes)
		fresh := Translate(live.Clone(), testPorts, testNode())
		if !res.Entries.Equal(fresh.Entries) {
			t.Fatalf("step %d (%s): incremental and fresh translations differ:%s", i, changes, diffSets(res.Entries, fresh.Entries))
		}
		epID := tr.epID(wepOwner(k))
		pf, nf, in, out := forwardView(tr, epID, port)
		if got := pf&p4src.EPFlagHepForward != 0; got != step.in || pf&p4src.EPFlagPolicy == 0 {
			t.Errorf("step %d: port_endpoint flags %#x, want EP_FLAG_HEP_FORWARD %v (and EP_FLAG_POLICY)", i, pf, step.in)
		}
		if got := nf&p4src.EPFlagHepForward != 0; got != step.out || nf&p4src.EPFlagPolicy == 0 {
			t.Errorf("step %d: nh_local flags %#x, want EP_FLAG_HEP_FORWARD %v (and EP_FLAG_POLICY)", i, nf, step.out)
		}
		if (in != 0) != step.in || (out != 0) != step.out {
			t.Errorf("step %d: forward lists in=%d out=%d, want in: %v, out: %v", i, in, out, step.in, step.out)
		}
		// The same (interned) lists as the uplink's, which the "*" endpoint covers.
		_, _, upIn, upOut := forwardView(tr, tr.epID(epUplink), 0)
		if upIn != in || upOut != out {
			t.Errorf("step %d: workload forward lists %d/%d, the uplink's %d/%d: want the same", i, in, out, upIn, upOut)
		}
	}
}
