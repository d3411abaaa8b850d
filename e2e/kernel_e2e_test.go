//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/calico-p4/calico-p4/e2e/matrix"
	"github.com/calico-p4/calico-p4/e2e/probe"
	"github.com/calico-p4/calico-p4/e2e/topology"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (CI runs as root)")
	}
}

var kernelCases = []string{"tcp/80", "tcp/80/v6", "tcp/81", "udp/53", "udp/53/v6", "sctp/9999", "sctp/9999/v6", "icmp", "icmpv6"}

// setup creates the topology, starts a probe server in every pod and returns the matrix peers.
func setup(t *testing.T, cfg topology.Config) (*topology.Topology, []matrix.Peer) {
	t.Helper()
	ctx := context.Background()
	topo, err := topology.Create(ctx, cfg)
	if err != nil {
		t.Fatalf("create topology: %v", err)
	}
	t.Cleanup(func() {
		if err := topo.Close(); err != nil {
			t.Errorf("close topology: %v", err)
		}
	})
	var peers []matrix.Peer
	for _, p := range topo.Pods {
		srv, err := probe.Serve(ctx, p.Path(), p.Spec.Name, probe.Listen{TCP: []int{80, 81}, UDP: []int{53}, SCTP: []int{9999}})
		if err != nil {
			t.Fatalf("probe server: %v", err)
		}
		t.Cleanup(srv.Close)
		peers = append(peers, matrix.Peer{Name: p.Spec.Name, NetNS: p.Path(), IPv4: p.Spec.IPv4, IPv6: p.Spec.IPv6})
	}
	return topo, peers
}

func fourPods(node2 string) []topology.PodSpec {
	return []topology.PodSpec{
		{Name: "x/a", IPv4: netip.MustParseAddr("10.65.0.11"), IPv6: netip.MustParseAddr("fd00:65::11")},
		{Name: "x/b", IPv4: netip.MustParseAddr("10.65.0.12"), IPv6: netip.MustParseAddr("fd00:65::12")},
		{Name: "y/a", IPv4: netip.MustParseAddr("10.65.0.21"), IPv6: netip.MustParseAddr("fd00:65::21"), Node: node2},
		{Name: "y/b", IPv4: netip.MustParseAddr("10.65.0.22"), IPv6: netip.MustParseAddr("fd00:65::22"), Node: node2},
	}
}

// check runs every case against expect(case) and fails the test on any mismatch, printing the matrices.
func check(t *testing.T, peers []matrix.Peer, cases []string, expect func(matrix.Case) *matrix.Table) {
	t.Helper()
	ctx := context.Background()
	for _, s := range cases {
		c, err := matrix.ParseCase(s)
		if err != nil {
			t.Fatal(err)
		}
		if c.Proto == probe.SCTP {
			if ok, why := probe.SCTPSupported(peers[0].NetNS); !ok {
				t.Logf("%s skipped: %s", c, why)
				continue
			}
		}
		obs := matrix.Observe(ctx, c, peers, matrix.Options{Timeout: time.Second, Attempts: 3})
		var buf bytes.Buffer
		if mm := matrix.Report(&buf, expect(c), obs); len(mm) > 0 {
			t.Errorf("%s: %d mismatch(es)\n%s", c, len(mm), buf.String())
		} else {
			t.Logf("%s\n%s", c, buf.String())
		}
	}
}

func TestKernelModeFourPodsTwoNamespacesAllReachable(t *testing.T) {
	needRoot(t)
	_, peers := setup(t, topology.Config{Mode: topology.ModeKernel, Pods: fourPods("")})
	check(t, peers, kernelCases, func(c matrix.Case) *matrix.Table { return matrix.NewTable(c, peers, true) })
}

func TestKernelModeTwoNodesOverTheUplink(t *testing.T) {
	needRoot(t)
	_, peers := setup(t, topology.Config{Mode: topology.ModeKernel, Pods: fourPods("node2"),
		Nodes: []topology.NodeSpec{{Name: "node1"}, {Name: "node2"}}})
	check(t, peers, []string{"tcp/80", "tcp/80/v6", "udp/53", "icmp", "icmpv6"},
		func(c matrix.Case) *matrix.Table { return matrix.NewTable(c, peers, true) })
}

// The matrix must see a real block: removing the node's IPv4 route to y/b blocks every IPv4 case to and
// from it while IPv6 still flows.
func TestMatrixDetectsABlockedPod(t *testing.T) {
	needRoot(t)
	topo, peers := setup(t, topology.Config{Mode: topology.ModeKernel, Pods: fourPods("")})
	yb := topo.Pod("y/b")
	nl := yb.Node.Netlink()
	link, err := nl.LinkByName(yb.HostIface)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := nl.RouteList(link, netlink.FAMILY_V4)
	if err != nil || len(routes) != 1 {
		t.Fatalf("routes to y/b: %v %v", routes, err)
	}
	if err := nl.RouteDel(&routes[0]); err != nil {
		t.Fatal(err)
	}
	check(t, peers, []string{"tcp/80", "udp/53", "icmp", "icmpv6", "tcp/81/v6"}, func(c matrix.Case) *matrix.Table {
		tab := matrix.NewTable(c, peers, true)
		if c.Family == 4 {
			for _, p := range peers {
				if p.Name != "y/b" {
					tab.Set(p.Name, "y/b", false)
					tab.Set("y/b", p.Name, false)
				}
			}
		}
		return tab
	})
}
