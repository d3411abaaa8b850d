package translator

import (
	"testing"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/projectcalico/calico/felix/proto"
)

func beUint(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

// policyView is what the entries say about an endpoint's pre-DNAT policy: the flags of the port_endpoint
// entry of port (0: not looked up) and the list its endpoint_policy entry at STAGE_PREDNAT_INGRESS
// selects (0: none).
func policyView(tr *Translator, epID, port uint32) (flags uint8, prednatList uint32) {
	for _, e := range tr.Entries().Sorted() {
		switch string(e.Table) {
		case string(p4src.TablePortEndpoint):
			if port != 0 && beUint(e.Match[0].Value) == uint64(port) {
				for _, p := range e.Action.Params {
					if string(p.Name) == string(p4src.ParamSetEndpointFlags) {
						flags = uint8(beUint(p.Value))
					}
				}
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
			if ep == uint64(epID) && stage == uint64(p4src.StagePrednatIngress) {
				prednatList = uint32(beUint(e.Action.Params[0].Value))
			}
		}
	}
	return flags, prednatList
}

// TestAllInterfacesPreDNATPolicyRunsOnWorkloads: a "*" host endpoint with pre-DNAT policy gives every
// workload EP_FLAG_PREDNAT and the uplink's pre-DNAT list; without pre-DNAT policy, or once it is removed,
// nothing — incrementally as from scratch.
func TestAllInterfacesPreDNATPolicyRunsOnWorkloads(t *testing.T) {
	k := model.WorkloadEndpointKey{OrchestratorID: "k8s", WorkloadID: "ns/a", EndpointID: "eth0"}
	port, _ := testPorts.PortID("calia")
	wep := &proto.ToDataplane{Payload: &proto.ToDataplane_WorkloadEndpointUpdate{WorkloadEndpointUpdate: &proto.WorkloadEndpointUpdate{
		Id: &proto.WorkloadEndpointID{OrchestratorId: "k8s", WorkloadId: "ns/a", EndpointId: "eth0"},
		Endpoint: &proto.WorkloadEndpoint{State: "active", Name: "calia", Mac: "0a:58:0a:41:00:02",
			Ipv4Nets: []string{"10.65.0.2/32"}}}}}
	pol := &proto.ToDataplane{Payload: &proto.ToDataplane_ActivePolicyUpdate{ActivePolicyUpdate: &proto.ActivePolicyUpdate{
		Id: &proto.PolicyID{Tier: "default", Name: "deny-81"}, Policy: &proto.Policy{
			InboundRules: []*proto.Rule{{Action: "deny", DstPorts: []*proto.PortRange{{First: 81, Last: 81}}}}}}}}
	star := func(preDNAT bool) *proto.ToDataplane {
		h := &proto.HostEndpoint{Name: "*"}
		if preDNAT {
			h.PreDnatTiers = []*proto.TierInfo{{Name: "default", IngressPolicies: []string{"deny-81"}}}
		}
		return &proto.ToDataplane{Payload: &proto.ToDataplane_HostEndpointUpdate{HostEndpointUpdate: &proto.HostEndpointUpdate{
			Id: &proto.HostEndpointID{EndpointId: "node1-auto"}, Endpoint: h}}}
	}
	remove := &proto.ToDataplane{Payload: &proto.ToDataplane_HostEndpointRemove{HostEndpointRemove: &proto.HostEndpointRemove{
		Id: &proto.HostEndpointID{EndpointId: "node1-auto"}}}}

	live := model.NewState()
	applyMsgs(t, live, wep, pol)
	tr := New(testPorts, testNode())
	tr.Apply(live.Clone(), live.TakeChanges())
	for i, step := range []struct {
		msg     *proto.ToDataplane
		prednat bool
	}{{star(true), true}, {star(false), false}, {star(true), true}, {remove, false}} {
		applyMsgs(t, live, step.msg)
		changes := live.TakeChanges()
		res := tr.Apply(live.Clone(), changes)
		fresh := Translate(live.Clone(), testPorts, testNode())
		if !res.Entries.Equal(fresh.Entries) {
			t.Fatalf("step %d (%s): incremental and fresh translations differ:%s", i, changes, diffSets(res.Entries, fresh.Entries))
		}
		flags, list := policyView(tr, tr.epID(wepOwner(k)), port)
		if got := flags&p4src.EPFlagPrednat != 0; got != step.prednat || flags&p4src.EPFlagPolicy == 0 {
			t.Errorf("step %d: workload flags %#x, want EP_FLAG_PREDNAT %v (and EP_FLAG_POLICY)", i, flags, step.prednat)
		}
		if (list != 0) != step.prednat {
			t.Errorf("step %d: workload pre-DNAT list %d, want one: %v", i, list, step.prednat)
		}
		// The same (interned) list as the uplink's, which the "*" endpoint covers.
		if _, up := policyView(tr, tr.epID(epUplink), 0); up != list {
			t.Errorf("step %d: workload pre-DNAT list %d, the uplink's %d: want the same", i, list, up)
		}
	}
}
