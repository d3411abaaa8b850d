package embedded

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/calico-p4/calico-p4/e2e/netnsutil"
	"github.com/calico-p4/calico-p4/e2e/probe"
	"github.com/calico-p4/calico-p4/e2e/topology"
	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/ipu/softswitch/embedded/podnet"
	"github.com/calico-p4/calico-p4/ipu/softswitch/ports"
)

// Ports attached (and entries written) before their interfaces exist start forwarding when the
// interfaces appear.
func TestPortsAttachedBeforeTheirInterfacesExist(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := zaptest.NewLogger(t)
	specs := []topology.PodSpec{
		{Name: "late/pod-a", IPv4: netip.MustParseAddr("10.65.0.2")},
		{Name: "late/pod-b", IPv4: netip.MustParseAddr("10.65.0.3")},
	}
	runID := topology.NewRunID()
	nodeNS := netnsutil.Path(topology.NamePrefix + runID + "-node-node1")

	sw, err := New(ctx, Config{Logger: log, Registry: prometheus.NewRegistry(), RetryInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sw.Close() })
	sock := filepath.Join(t.TempDir(), "p4rt.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = sw.Serve(lis) }()
	var pods []podnet.Pod
	for i, s := range specs {
		s.MAC = net.HardwareAddr{0x0a, 0x58, 0x0a, 0x41, 0, byte(2 + i)}
		specs[i] = s
		name := topology.CalicoInterfaceName("", "late", s.Name[len("late/"):])
		if _, err := sw.Attach(ctx, ports.Spec{Name: name, NetNS: nodeNS}); err != nil {
			t.Fatalf("attach before the interface exists: %v", err)
		}
		pods = append(pods, podnet.Pod{HostIface: name, MAC: s.MAC, IPv4: s.IPv4, Endpoint: uint32(101 + i)})
	}
	for _, p := range sw.Dataplane.Ports() {
		if p.State != ports.StatePending {
			t.Fatalf("port %s is %s before its interface exists", p.Spec.Name, p.State)
		}
	}
	c, err := p4rt.Dial(ctx, p4rt.Config{Address: "unix://" + sock, DeviceID: 1, ElectionID: p4rt.Uint128{Low: 1}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.WaitPrimary(ctx); err != nil {
		t.Fatal(err)
	}
	if err := podnet.Install(ctx, c, podnet.Entries(pods)); err != nil {
		t.Fatal(err)
	}

	topo, err := topology.Create(ctx, topology.Config{Mode: topology.ModeAttach, RunID: runID, Log: log, Pods: specs})
	if topo != nil {
		t.Cleanup(func() { _ = topo.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	if topo.Pods[0].HostIface != pods[0].HostIface || topo.Nodes[0].Path() != nodeNS {
		t.Fatalf("topology names differ from the ones attached: %s@%s", topo.Pods[0].HostIface, topo.Nodes[0].Path())
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		up := 0
		for _, p := range sw.Dataplane.Ports() {
			if p.State == ports.StateUp {
				up++
			}
		}
		if up == len(pods) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ports not up after their interfaces appeared: %+v", sw.Dataplane.Ports())
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := probe.Do(ctx, probe.Request{FromNetNS: topo.Pods[0].Path(), To: specs[1].IPv4, Proto: probe.ICMP, Timeout: 2 * time.Second, Attempts: 3})
	if !r.OK {
		t.Fatalf("ping pod-a -> pod-b: %v", r)
	}
}
