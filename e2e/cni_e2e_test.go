//go:build e2e

package e2e_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	cniproto "github.com/projectcalico/calico/cni-plugin/pkg/dataplane/grpc/proto"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/calico-p4/calico-p4/e2e/harness"
	"github.com/calico-p4/calico-p4/e2e/netnsutil"
	"github.com/calico-p4/calico-p4/e2e/scenario"
	"github.com/calico-p4/calico-p4/e2e/topology"
)

// cniScenario: three pods on one node, no policy (everything allowed).
const cniScenario = `
name: cni
localNode: node1
felixConfig: {ReportingIntervalSecs: "0"}
resources:
- kind: Node
  metadata: {name: node1}
  spec: {ipv4: 192.168.122.11/24, ipv6: "fd00:122::11/64"}
- kind: IPPool
  metadata: {name: default-ipv4}
  spec: {cidr: 10.65.0.0/16}
- kind: IPPool
  metadata: {name: default-ipv6}
  spec: {cidr: "fd00:65::/64"}
- {kind: Namespace, metadata: {name: "x"}}
- kind: Pod
  metadata: {name: a, namespace: "x"}
  spec: {ips: [10.65.0.11, "fd00:65::11"]}
- kind: Pod
  metadata: {name: b, namespace: "x"}
  spec: {ips: [10.65.0.12, "fd00:65::12"]}
- kind: Pod
  metadata: {name: c, namespace: "x"}
  spec: {ips: [10.65.0.13]}
`

// Pods are created as in a real deployment: the Calico CNI plugin's gRPC dataplane calls the manager's
// CNI server (Add), which makes the veth pairs; Felix (the Kubernetes datastore) then sends workload
// endpoints without a MAC. The manager takes the MACs from its CNI server: the endpoints are "up" and the
// pods reach each other through the softswitch over both families. Del removes a pod's interfaces.
func TestPodsAddedThroughTheCNIServerWithoutMACsFromFelix(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute) // a hang guard only
	defer cancel()
	sc, err := scenario.Parse([]byte(cniScenario))
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := sc.Nodes(0)
	if err != nil {
		t.Fatal(err)
	}
	pods, err := sc.Pods(0)
	if err != nil {
		t.Fatal(err)
	}

	// The node only: its pods come from the CNI server.
	topo, err := topology.Create(ctx, topology.Config{Mode: topology.ModeAttach,
		Nodes: []topology.NodeSpec{{Name: nodes[0].Name, IPv4: nodes[0].IPv4, IPv6: nodes[0].IPv6}}})
	if err != nil {
		t.Fatalf("create topology: %v", err)
	}
	t.Cleanup(func() {
		if err := topo.Close(); err != nil {
			t.Errorf("close topology: %v", err)
		}
	})
	node := topo.Nodes[0]
	dir, err := os.MkdirTemp("", "cp4cni")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	mgr, err := harness.StartManager(ctx, harness.ManagerConfig{Bin: bins, NetNS: node.Path(), Dir: dir})
	if err != nil {
		t.Fatalf("start manager: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("manager log:\n%s", mgr.Log())
		}
		mgr.Kill()
	})
	conn, err := grpc.NewClient(mgr.CNI, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cni := cniproto.NewCniDataplaneClient(conn)

	// CNI ADD for every pod, as the plugin sends it.
	paths := map[string]string{}
	for i, p := range pods {
		name := fmt.Sprintf("cp4e2e-%s-cni%d", topo.RunID, i)
		h, err := netnsutil.CreateNamed(name)
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
		t.Cleanup(func() { _ = netnsutil.DeleteNamed(name) })
		paths[p.Name] = netnsutil.Path(name)
		req := &cniproto.AddRequest{InterfaceName: "eth0", Netns: paths[p.Name], DesiredHostInterfaceName: p.HostIface,
			Settings:         &cniproto.ContainerSettings{Mtu: 1500},
			ContainerRoutes:  []string{"0.0.0.0/0", "::/0"},
			Workload:         &cniproto.WorkloadIDs{Namespace: p.Namespace, Pod: p.Pod, Name: p.Name, Endpoint: "eth0", Orchestrator: "k8s"},
			DataplaneOptions: map[string]string{"type": "grpc", "socket": mgr.CNI}}
		for _, a := range []netip.Addr{p.IPv4, p.IPv6} {
			if a.IsValid() {
				req.ContainerIps = append(req.ContainerIps, &cniproto.IPConfig{Address: netip.PrefixFrom(a, a.BitLen()).String(), Gateway: "<nil>"})
			}
		}
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		rep, err := cni.Add(rctx, req)
		rcancel()
		if err != nil || !rep.Successful {
			t.Fatalf("CNI add %s: %v %+v", p.Name, err, rep)
		}
		mac, err := net.ParseMAC(rep.ContainerMac)
		if err != nil || rep.HostInterfaceName != p.HostIface {
			t.Fatalf("CNI add %s: reply %+v (%v)", p.Name, rep, err)
		}
		if got := linkMAC(t, paths[p.Name], "eth0"); got != mac.String() {
			t.Fatalf("CNI add %s: container_mac %s, the pod's eth0 has %s", p.Name, mac, got)
		}
	}

	// Felix with the Kubernetes datastore: workload endpoints without a MAC.
	st, err := scenario.Compile(sc)
	if err != nil {
		t.Fatal(err)
	}
	weps := 0
	for _, it := range st.Items {
		if u := it.Msg.GetWorkloadEndpointUpdate(); u != nil {
			weps++
			if u.Endpoint.Mac != "" {
				t.Fatalf("the stream's endpoint %s carries a MAC", u.Id.WorkloadId)
			}
		}
	}
	if weps != len(pods) {
		t.Fatalf("the stream has %d workload endpoints, want %d", weps, len(pods))
	}
	felix, err := harness.StartFelix(ctx, bins, mgr, st, nil)
	if err != nil {
		t.Fatalf("felix: %v", err)
	}
	t.Cleanup(func() { _ = felix.Stop() })
	status := map[string]string{}
	for _, r := range felix.Replies() {
		if u := r.GetWorkloadEndpointStatusUpdate(); u != nil {
			status[u.Id.WorkloadId] = u.Status.Status
		}
	}
	for _, p := range pods {
		if status[p.Name] != "up" {
			t.Errorf("endpoint %s is %q, want up (statuses %v)", p.Name, status[p.Name], status)
		}
	}

	// Pods reach each other through the softswitch (its ARP/ND answers, the MACs from the CNI server).
	for _, c := range []struct {
		from, to string
		v6       bool
	}{{"x/a", "x/b", false}, {"x/b", "x/a", true}, {"x/c", "x/a", false}, {"x/a", "x/b", true}} {
		var dst netip.Addr
		for _, p := range pods {
			if p.Name == c.to {
				dst = p.IPv4
				if c.v6 {
					dst = p.IPv6
				}
			}
		}
		pg, err := harness.StartPing(paths[c.from], dst, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		waitUntil(wctx, func() bool { return pg.Stats().Received >= 5 })
		wcancel()
		s := pg.Stop(2 * time.Second)
		if s.Received < 5 {
			t.Errorf("ping %s -> %s (%s): %s, want at least 5 replies", c.from, c.to, dst, s)
		}
	}

	// CNI DEL removes the pod's interfaces (and is idempotent).
	b := "x/b"
	var bHost string
	for _, p := range pods {
		if p.Name == b {
			bHost = p.HostIface
		}
	}
	for i := range 2 {
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		rep, err := cni.Del(rctx, &cniproto.DelRequest{InterfaceName: "eth0", Netns: paths[b]})
		rcancel()
		if err != nil || !rep.Successful {
			t.Fatalf("CNI del #%d %s: %v %+v", i+1, b, err, rep)
		}
	}
	if _, err := node.Netlink().LinkByName(bHost); err == nil {
		t.Errorf("host end %s still exists after CNI del", bHost)
	}
	m, err := mgr.Scrape(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Sum("calico_p4_cni_requests_total"); got != float64(len(pods)+2) {
		t.Errorf("calico_p4_cni_requests_total sums to %v, want %d", got, len(pods)+2)
	}
}

func linkMAC(t *testing.T, nsPath, name string) string {
	t.Helper()
	h, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	l, err := nl.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ToLower(l.Attrs().HardwareAddr.String())
}

// waitUntil polls cond every 50 ms until it holds or ctx ends.
func waitUntil(ctx context.Context, cond func() bool) {
	for !cond() && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}
