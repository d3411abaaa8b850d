package session

import (
	"errors"
	"net"
	"testing"

	"github.com/projectcalico/calico/felix/proto"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/calico-p4/calico-p4/driver/model"
)

// A workload endpoint Felix sends without a MAC (Kubernetes datastore) is "error" until the CNI server
// supplies its pod's MAC; that input alone triggers an apply at once (not at the failed apply's retry
// time, here 10 minutes away), the endpoint goes "up", and the pod interface survives a Felix restart.
func TestPodMACFromTheCNIServerTurnsAnEndpointInErrorUp(t *testing.T) {
	const iface = "cali0123456789a"
	noMAC := errors.New("no MAC")
	h := newHarness(t, func(_ int, desired *model.State, _ model.Changes) error {
		errs := map[model.WorkloadEndpointKey]error{}
		for k, ep := range desired.WorkloadEndpoints.All() {
			if desired.WorkloadMAC(ep) == nil {
				errs[k] = noMAC
			}
		}
		if len(errs) > 0 {
			return &EndpointErrors{Workloads: errs}
		}
		return nil
	})
	c, _ := h.start()
	cfg := &proto.ToDataplane{Payload: &proto.ToDataplane_ConfigUpdate{ConfigUpdate: &proto.ConfigUpdate{
		Config: map[string]string{model.OptApplyRetrySecs: "600"}}}}
	wep := &proto.ToDataplane{Payload: &proto.ToDataplane_WorkloadEndpointUpdate{WorkloadEndpointUpdate: &proto.WorkloadEndpointUpdate{
		Id:       &proto.WorkloadEndpointID{OrchestratorId: "k8s", WorkloadId: "default/pod-a", EndpointId: "eth0"},
		Endpoint: &proto.WorkloadEndpoint{State: "active", Name: iface, Ipv4Nets: []string{"10.65.0.9/32"}}}}}
	last := func(msgs []*proto.FromDataplane) string {
		st := ""
		for _, m := range msgs {
			if u := m.GetWorkloadEndpointStatusUpdate(); u != nil && u.Id.WorkloadId == "default/pod-a" {
				st = u.Status.Status
			}
		}
		return st
	}
	c.send(t, cfg, wep, inSync)
	c.waitOut(t, "status error without a MAC", func(m []*proto.FromDataplane) bool { return last(m) == "error" })

	mac, _ := net.ParseMAC("0a:58:0a:41:00:09")
	h.m.SetPodInterface(&model.PodInterface{HostInterface: iface, MAC: mac})
	c.waitOut(t, "status up once the CNI server's MAC arrived", func(m []*proto.FromDataplane) bool { return last(m) == "up" })
	calls := h.rec.Applies()
	if got := calls[len(calls)-1].Changes.PodInterfaces.Get(iface); got != model.Added {
		t.Errorf("the apply after the pod interface lists it as %v, want added", got)
	}

	// An invalid pod interface is counted and removes the previous version (fail closed).
	h.m.SetPodInterface(&model.PodInterface{HostInterface: iface, MAC: net.HardwareAddr{1, 2, 3}})
	if got := testutil.ToFloat64(h.m.metrics.invalid.WithLabelValues(model.KindPodInterface.String())); got != 1 {
		t.Errorf("invalid pod interfaces counted %v, want 1", got)
	}
	c.waitOut(t, "status error after the invalid pod interface", func(m []*proto.FromDataplane) bool { return last(m) == "error" })
	h.m.SetPodInterface(&model.PodInterface{HostInterface: iface, MAC: mac})
	c.waitOut(t, "status up again", func(m []*proto.FromDataplane) bool { return last(m) == "up" })

	// A new Felix session (a snapshot without pod interfaces) keeps it.
	c2, _ := h.start()
	c2.send(t, cfg, wep, inSync)
	c2.waitOut(t, "status up in the new session", func(m []*proto.FromDataplane) bool { return last(m) == "up" })
	if got := h.m.DesiredSnapshot().PodInterfaces.Len(); got != 1 {
		t.Errorf("after a Felix restart the desired state has %d pod interfaces, want 1", got)
	}

	// Removing it puts the endpoint back in error.
	h.m.RemovePodInterface(iface)
	c2.waitOut(t, "status error after the removal", func(m []*proto.FromDataplane) bool { return last(m) == "error" })
}
