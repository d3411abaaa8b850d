package translator

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
	"github.com/projectcalico/calico/felix/proto"
)

// localNexthopMACs returns the destination MACs of the local next hops in set.
func localNexthopMACs(set *entry.Set) []net.HardwareAddr {
	var out []net.HardwareAddr
	for _, e := range set.All() {
		if e.Table != string(p4src.TableNexthop) || e.Action.Name != string(p4src.ActionNHLocal) {
			continue
		}
		for _, p := range e.Action.Params {
			if p.Name == string(p4src.ParamNHLocalDstMAC) {
				out = append(out, net.HardwareAddr(p.Value))
			}
		}
	}
	return out
}

// TestWorkloadWithoutMACTakesTheCNIServersMAC: an endpoint Felix sends without a MAC (Kubernetes datastore)
// is in error until the CNI server's pod interface gives its MAC; then it is delivered with that MAC, the
// incremental translation equals a fresh one, and removing the pod interface puts it back in error. Felix's
// own MAC wins over the CNI server's.
func TestWorkloadWithoutMACTakesTheCNIServersMAC(t *testing.T) {
	const iface = "cali0123456789a"
	key := model.WorkloadEndpointKey{OrchestratorID: "k8s", WorkloadID: "ns/pod", EndpointID: "eth0"}
	cniMAC, felixMAC := mac("0a:58:0a:41:00:02"), mac("0a:58:0a:41:00:99")
	live := stateOf(t, []*proto.ToDataplane{
		msgConfig(),
		msgWEP("ns/pod", iface, "", []string{"10.65.0.2/32"}, []string{"fd00:65::2/128"}, nil),
	})
	tr := New(testPorts, testNode())
	check := func(step string, wantMAC net.HardwareAddr) {
		t.Helper()
		changes := live.TakeChanges()
		res := tr.Apply(live.Clone(), changes)
		fresh := Translate(live.Clone(), testPorts, testNode())
		if !res.Entries.Equal(fresh.Entries) {
			t.Fatalf("%s (%s): incremental and fresh translations differ:%s", step, changes, diffSets(res.Entries, fresh.Entries))
		}
		checkEncodes(t, res.Entries)
		err := res.Report.Workloads[key]
		macs := localNexthopMACs(res.Entries)
		if wantMAC == nil {
			if err == nil || !strings.Contains(err.Error(), "no MAC") {
				t.Errorf("%s: endpoint error = %v, want a missing MAC", step, err)
			}
			if len(macs) != 0 {
				t.Errorf("%s: local next hops %v, want none", step, macs)
			}
			return
		}
		if err != nil {
			t.Errorf("%s: endpoint error = %v, want none", step, err)
		}
		if len(macs) != 1 || !bytes.Equal(macs[0], wantMAC) {
			t.Errorf("%s: local next hop MACs %v, want [%v]", step, macs, wantMAC)
		}
	}
	check("endpoint without a MAC", nil)

	if err := live.SetPodInterface(&model.PodInterface{HostInterface: "caliother00000", MAC: cniMAC}); err != nil {
		t.Fatal(err)
	}
	check("another interface's MAC", nil)

	if err := live.SetPodInterface(&model.PodInterface{HostInterface: iface, MAC: cniMAC}); err != nil {
		t.Fatal(err)
	}
	check("the CNI server's MAC arrives", cniMAC)

	applyMsgs(t, live, msgWEP("ns/pod", iface, felixMAC.String(), []string{"10.65.0.2/32"}, []string{"fd00:65::2/128"}, nil))
	check("Felix's own MAC", felixMAC)

	applyMsgs(t, live, msgWEP("ns/pod", iface, "", []string{"10.65.0.2/32"}, []string{"fd00:65::2/128"}, nil))
	check("Felix's MAC gone again", cniMAC)

	if !live.RemovePodInterface(iface) {
		t.Fatal("RemovePodInterface: not there")
	}
	check("the pod interface removed", nil)
}

func TestPodInterfaceValidation(t *testing.T) {
	for _, c := range []struct {
		name string
		p    model.PodInterface
		ok   bool
	}{
		{"valid", model.PodInterface{HostInterface: "cali0123456789a", MAC: mac("0a:58:0a:41:00:02")}, true},
		{"name too long", model.PodInterface{HostInterface: "cali0123456789ab", MAC: mac("0a:58:0a:41:00:02")}, false},
		{"empty name", model.PodInterface{MAC: mac("0a:58:0a:41:00:02")}, false},
		{"slash in name", model.PodInterface{HostInterface: "cali/x", MAC: mac("0a:58:0a:41:00:02")}, false},
		{"multicast MAC", model.PodInterface{HostInterface: "cali1", MAC: mac("01:00:5e:00:00:01")}, false},
		{"zero MAC", model.PodInterface{HostInterface: "cali1", MAC: mac("00:00:00:00:00:00")}, false},
		{"long MAC", model.PodInterface{HostInterface: "cali1", MAC: mac("00:00:00:00:fe:80:00:00")}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := model.NewState()
			err := s.SetPodInterface(&c.p)
			if (err == nil) != c.ok {
				t.Fatalf("SetPodInterface(%+v) = %v, want ok=%v", c.p, err, c.ok)
			}
			if s.PodInterfaces.Has(c.p.HostInterface) != c.ok {
				t.Fatalf("stored = %v, want %v", !c.ok, c.ok)
			}
		})
	}
}
