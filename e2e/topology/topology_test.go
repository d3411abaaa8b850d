package topology_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/calico-p4/calico-p4/e2e/netnsutil"
	"github.com/calico-p4/calico-p4/e2e/probe"
	"github.com/calico-p4/calico-p4/e2e/topology"
)

func TestCalicoInterfaceNameMatchesRealFelixCaptures(t *testing.T) {
	// Names seen in ../shared/felix-streams/calico-tiers.jsonl and k8s-services.jsonl.
	cases := []struct{ ns, pod, want string }{
		{"x", "a", "cali456b416f2bf"},
		{"x", "b", "cali08041ab898a"},
		{"y", "a", "calidac200d72ba"},
		{"svc", "web-1", "cali275b44ebd30"},
		{"svc", "client", "cali0ffe008d07b"},
	}
	for _, c := range cases {
		if got := topology.CalicoInterfaceName("", c.ns, c.pod); got != c.want {
			t.Errorf("CalicoInterfaceName(%s/%s) = %s, want %s", c.ns, c.pod, got, c.want)
		}
		if n := len(topology.CalicoInterfaceName("", c.ns, c.pod)); n != topology.MaxIfaceName {
			t.Errorf("name length %d, want %d", n, topology.MaxIfaceName)
		}
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (CI runs as root)")
	}
}

func TestCreateRejectsBadConfigs(t *testing.T) {
	needRoot(t)
	v4 := netip.MustParseAddr("10.65.0.11")
	cases := []struct {
		name string
		cfg  topology.Config
		want string
	}{
		{"duplicate pod", topology.Config{Pods: []topology.PodSpec{{Name: "x/a", IPv4: v4}, {Name: "x/a", IPv4: netip.MustParseAddr("10.65.0.12")}}}, "duplicate"},
		{"duplicate address", topology.Config{Pods: []topology.PodSpec{{Name: "x/a", IPv4: v4}, {Name: "x/b", IPv4: v4}}}, "already used"},
		{"no address", topology.Config{Pods: []topology.PodSpec{{Name: "x/a"}}}, "needs an IPv4"},
		{"v6 in v4 field", topology.Config{Pods: []topology.PodSpec{{Name: "x/a", IPv4: netip.MustParseAddr("fd00::1")}}}, "family"},
		{"long iface", topology.Config{Pods: []topology.PodSpec{{Name: "x/a", IPv4: v4, HostIface: "cali0123456789abcdef"}}}, "invalid interface name"},
		{"unknown node", topology.Config{Pods: []topology.PodSpec{{Name: "x/a", IPv4: v4, Node: "nodeX"}}}, "unknown node"},
		{"tap in kernel mode", topology.Config{Mode: topology.ModeKernel, Iface: topology.TAP}, "kernel mode needs veth"},
		{"three nodes", topology.Config{Nodes: []topology.NodeSpec{{Name: "a"}, {Name: "b"}, {Name: "c"}}}, "at most two"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			topo, err := topology.Create(context.Background(), c.cfg)
			if err == nil {
				topo.Close()
				t.Fatal("Create succeeded, want error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

func create(t *testing.T, cfg topology.Config) *topology.Topology {
	t.Helper()
	topo, err := topology.Create(context.Background(), cfg)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() {
		if err := topo.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return topo
}

func twoPods() []topology.PodSpec {
	return []topology.PodSpec{
		{Name: "x/a", IPv4: netip.MustParseAddr("10.65.0.11"), IPv6: netip.MustParseAddr("fd00:65::11")},
		{Name: "y/a", IPv4: netip.MustParseAddr("10.65.0.21"), IPv6: netip.MustParseAddr("fd00:65::21")},
	}
}

func TestKernelModeRoutesLikeCalicoAndCleansUp(t *testing.T) {
	needRoot(t)
	topo, err := topology.Create(context.Background(), topology.Config{Mode: topology.ModeKernel, Pods: twoPods()})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			topo.Close()
		}
	})
	a, b := topo.Pod("x/a"), topo.Pod("y/a")
	if a.HostIface != "cali456b416f2bf" {
		t.Errorf("host iface %s, want Calico's name cali456b416f2bf", a.HostIface)
	}
	// Pod side: default routes via Calico's gateways, no permanent neighbour entries.
	routes, err := a.Netlink().RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var gw4, gw6 bool
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			gw4 = gw4 || r.Gw.Equal(topology.GatewayV4)
			gw6 = gw6 || r.Gw.Equal(topology.GatewayV6)
		}
	}
	if !gw4 || !gw6 {
		t.Errorf("pod default routes via gateways: v4 %v v6 %v; routes %v", gw4, gw6, routes)
	}
	// Node side: host end has Calico's MAC and proxy ARP on.
	link, err := a.Node.Netlink().LinkByName(a.HostIface)
	if err != nil {
		t.Fatal(err)
	}
	if link.Attrs().HardwareAddr.String() != topology.HostMAC.String() {
		t.Errorf("host end MAC %s, want %s", link.Attrs().HardwareAddr, topology.HostMAC)
	}
	// Traffic flows both families, both directions, and the right pod answers.
	ctx := context.Background()
	for _, p := range []*topology.Pod{a, b} {
		srv, err := probe.Serve(ctx, p.Path(), p.Spec.Name, probe.Listen{TCP: []int{8080}, UDP: []int{5353}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
	}
	for _, req := range []probe.Request{
		{FromNetNS: a.Path(), To: b.Spec.IPv4, Proto: probe.TCP, Port: 8080, Expect: "y/a"},
		{FromNetNS: b.Path(), To: a.Spec.IPv6, Proto: probe.UDP, Port: 5353, Expect: "x/a"},
		{FromNetNS: a.Path(), To: b.Spec.IPv6, Proto: probe.ICMP},
		{FromNetNS: b.Path(), To: a.Spec.IPv4, Proto: probe.ICMP},
	} {
		req.Timeout, req.Attempts = 2*time.Second, 3
		if res := probe.Do(ctx, req); !res.OK {
			t.Errorf("%s %s:%d: %v", req.Proto, req.To, req.Port, res)
		}
	}
	// Neighbours were learnt dynamically, never installed as permanent entries.
	neighs, err := a.Netlink().NeighList(0, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range neighs {
		if n.State&netlink.NUD_PERMANENT != 0 {
			t.Errorf("static neighbour in pod: %v", n)
		}
	}
	names := topo.Namespaces()
	if err := topo.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	closed = true
	for _, n := range names {
		if _, err := os.Stat(netnsutil.Path(n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s still exists after Close", n)
		}
	}
}

func TestAttachModeLeavesForwardingToTheDataplane(t *testing.T) {
	needRoot(t)
	topo := create(t, topology.Config{Mode: topology.ModeAttach, Pods: twoPods()})
	a, b := topo.Pod("x/a"), topo.Pod("y/a")
	v, err := getSysctl(a.Node, "net/ipv6/conf/"+a.HostIface+"/disable_ipv6")
	if err != nil || v != "1" {
		t.Errorf("host end disable_ipv6 = %q (%v), want 1", v, err)
	}
	// Nothing forwards yet: a probe must fail.
	res := probe.Do(context.Background(), probe.Request{FromNetNS: a.Path(), To: b.Spec.IPv4, Proto: probe.ICMP,
		Timeout: 300 * time.Millisecond, Attempts: 1})
	if res.OK {
		t.Fatal("ICMP got through with no dataplane attached")
	}
}

func getSysctl(n *topology.Node, key string) (string, error) {
	var v string
	err := n.Do(func() error {
		b, err := os.ReadFile("/proc/sys/" + key)
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

func TestTAPPodSendsItsFramesToTheTAPDescriptor(t *testing.T) {
	needRoot(t)
	topo := create(t, topology.Config{Iface: topology.TAP, Pods: twoPods()[:1]})
	p := topo.Pod("x/a")
	if p.TAP == nil {
		t.Fatal("no TAP descriptor")
	}
	// A probe makes the pod resolve its gateway: the ARP request must come out of the TAP fd.
	go probe.Do(context.Background(), probe.Request{FromNetNS: p.Path(), To: netip.MustParseAddr("10.65.0.99"),
		Proto: probe.ICMP, Timeout: 2 * time.Second, Attempts: 1})
	fd := int(p.TAP.Fd())
	buf := make([]byte, 2048)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, _ := unix.Poll(pfd, 200); n <= 0 {
			continue
		}
		n, err := unix.Read(fd, buf)
		if err != nil {
			t.Fatalf("read tap: %v", err)
		}
		// Ethernet: ethertype 0x0806 (ARP), ARP target protocol address at bytes 38..41.
		if n >= 42 && buf[12] == 0x08 && buf[13] == 0x06 && netip.AddrFrom4([4]byte(buf[38:42])) == netip.MustParseAddr("169.254.1.1") {
			return
		}
	}
	t.Fatal("no ARP request for 169.254.1.1 seen on the TAP descriptor")
}

func TestSweepRemovesOnlyDeadRuns(t *testing.T) {
	needRoot(t)
	live := create(t, topology.Config{Pods: twoPods()[:1]})
	// A crashed run: a namespace with our prefix and no live registry entry.
	dead := topology.NamePrefix + "0badc0de-pod-x-a"
	if h, err := netnsutil.CreateNamed(dead); err != nil {
		t.Fatal(err)
	} else {
		h.Close()
	}
	t.Cleanup(func() { _ = netnsutil.DeleteNamed(dead) })
	removed, err := topology.Sweep(nil)
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	found := false
	for _, r := range removed {
		if r == dead {
			found = true
		}
		if strings.Contains(r, live.RunID) {
			t.Errorf("sweep removed %s of a live run", r)
		}
	}
	if !found {
		t.Errorf("sweep did not remove %s (removed %v)", dead, removed)
	}
	for _, n := range live.Namespaces() {
		if _, err := os.Stat(netnsutil.Path(n)); err != nil {
			t.Errorf("live namespace %s gone: %v", n, err)
		}
	}
}

// In attach mode the node kernel must not deliver a pod's packets itself: with a host port the node has
// addresses, and a pod that already knows its gateway's MAC must still not reach them without a dataplane.
func TestAttachModeNodeKernelIgnoresFramesOnDataplanePorts(t *testing.T) {
	needRoot(t)
	topo := create(t, topology.Config{Mode: topology.ModeAttach, Pods: twoPods()[:1], HostPort: true,
		External: &topology.ExternalSpec{}})
	a := topo.Pod("x/a")
	node := topo.Nodes[0]
	if node.HostPort != topology.HostPortIface || node.Uplink != topology.UplinkIface {
		t.Fatalf("node ports: host %q uplink %q", node.HostPort, node.Uplink)
	}
	ctx := context.Background()
	srv, err := probe.Serve(ctx, node.Path(), "host", probe.Listen{TCP: []int{8080}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	// The gateway's MAC, as the dataplane would have answered.
	link, err := a.Netlink().LinkByName(topology.PodIface)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Netlink().NeighAdd(&netlink.Neigh{LinkIndex: link.Attrs().Index, Family: netlink.FAMILY_V4,
		State: netlink.NUD_PERMANENT, IP: topology.GatewayV4, HardwareAddr: topology.HostMAC}); err != nil {
		t.Fatal(err)
	}
	// Return routes that bypass the (absent) dataplane, so that only the inbound half is under test.
	for _, r := range []struct {
		dst   string
		iface string
	}{{"10.65.0.11/32", a.HostIface}, {"192.168.122.1/32", topology.UplinkIface}} {
		l, err := node.Netlink().LinkByName(r.iface)
		if err != nil {
			t.Fatal(err)
		}
		_, dst, _ := net.ParseCIDR(r.dst)
		if err := node.Netlink().RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Scope: netlink.SCOPE_LINK}); err != nil {
			t.Fatal(err)
		}
	}
	nodeAddr := topology.DefaultNodes[0].IPv4.Addr()
	for _, from := range []struct{ name, ns string }{{"pod", a.Path()}, {"external peer", topo.External().Path()}} {
		res := probe.Do(ctx, probe.Request{FromNetNS: from.ns, To: nodeAddr, Proto: probe.TCP, Port: 8080,
			Timeout: 500 * time.Millisecond, Attempts: 2})
		if res.OK {
			t.Errorf("the %s reached the node's address %s with no dataplane attached", from.name, nodeAddr)
		}
	}
	for _, iface := range []string{a.HostIface, topology.HostPortIface, topology.UplinkIface} {
		if v, err := getSysctl(node, "net/ipv4/conf/"+iface+"/arp_ignore"); err != nil || v != "8" {
			t.Errorf("%s arp_ignore = %q (%v), want 8", iface, v, err)
		}
	}
}
