package embedded

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/calico-p4/calico-p4/e2e/probe"
	"github.com/calico-p4/calico-p4/e2e/topology"
	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/ipu/softswitch/embedded/podnet"
	"github.com/calico-p4/calico-p4/ipu/softswitch/ports"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// env is a running softswitch with two attached pods in network namespaces, configured through a
// real P4Runtime client.
type env struct {
	sw     *Softswitch
	client *p4rt.Client
	topo   *topology.Topology
	pods   []podnet.Pod
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and veth/TAP interfaces (CI runs as root)")
	}
}

func startEnv(t *testing.T, iface topology.IfaceKind) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	log := zaptest.NewLogger(t)
	topo, err := topology.Create(ctx, topology.Config{Mode: topology.ModeAttach, Iface: iface, Log: log, Pods: []topology.PodSpec{
		{Name: "default/pod-a", IPv4: netip.MustParseAddr("10.65.0.2"), IPv6: netip.MustParseAddr("fd00:65::2")},
		{Name: "default/pod-b", IPv4: netip.MustParseAddr("10.65.0.3"), IPv6: netip.MustParseAddr("fd00:65::3")},
	}})
	if topo != nil {
		t.Cleanup(func() { _ = topo.Close() })
	}
	if err != nil {
		t.Fatalf("topology: %v", err)
	}
	e := &env{topo: topo}
	sw, err := New(ctx, Config{Logger: log, Registry: prometheus.NewRegistry(), RetryInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sw.Close() })
	e.sw = sw
	sock := filepath.Join(t.TempDir(), "p4rt.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = sw.Serve(lis) }()

	for i, p := range topo.Pods {
		name := p.HostIface
		spec := ports.Spec{Name: name, NetNS: p.Node.Path()}
		if iface == topology.TAP {
			name = "tap-" + p.Spec.Pod
			spec = ports.Spec{Name: name, Kind: ports.KindTAP, TAP: p.TAP}
		}
		if _, err := sw.Attach(ctx, spec); err != nil {
			t.Fatalf("attach %s: %v", name, err)
		}
		e.pods = append(e.pods, podnet.Pod{HostIface: name, MAC: p.MAC, IPv4: p.Spec.IPv4, IPv6: p.Spec.IPv6, Endpoint: uint32(101 + i)})
	}
	c, err := p4rt.Dial(ctx, p4rt.Config{Address: "unix://" + sock, DeviceID: 1, ElectionID: p4rt.Uint128{Low: 1}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.WaitPrimary(ctx); err != nil {
		t.Fatal(err)
	}
	e.client = c
	if err := podnet.Install(ctx, c, podnet.Entries(e.pods)); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) probe(t *testing.T, from int, to netip.Addr, proto probe.Protocol, port int, identity string) probe.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return probe.Do(ctx, probe.Request{FromNetNS: e.topo.Pods[from].Path(), To: to, Proto: proto, Port: port,
		Timeout: 2 * time.Second, Attempts: 3, Expect: identity})
}

func testPodToPod(t *testing.T, iface topology.IfaceKind) {
	needRoot(t)
	e := startEnv(t, iface)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const open, denied = 8080, 9090
	srv, err := probe.Serve(ctx, e.topo.Pods[1].Path(), "pod-b", probe.Listen{TCP: []int{open, denied}, UDP: []int{open, denied}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	b := e.topo.Pods[1].Spec

	for _, tc := range []struct {
		name  string
		to    netip.Addr
		proto probe.Protocol
		port  int
	}{
		{"ICMP over IPv4", b.IPv4, probe.ICMP, 0},
		{"TCP over IPv4", b.IPv4, probe.TCP, open},
		{"UDP over IPv4", b.IPv4, probe.UDP, open},
		{"ICMPv6", b.IPv6, probe.ICMP, 0},
		{"TCP over IPv6", b.IPv6, probe.TCP, open},
		{"UDP over IPv6", b.IPv6, probe.UDP, open},
	} {
		id := "pod-b"
		if tc.proto == probe.ICMP {
			id = ""
		}
		if r := e.probe(t, 0, tc.to, tc.proto, tc.port, id); !r.OK {
			t.Errorf("%s from pod-a to pod-b: %v\nports: %+v", tc.name, r, e.sw.Dataplane.Ports())
		}
	}
	// Bulk TCP at full MSS both ways (GSO / checksum offload on the way).
	if err := bulkTCP(ctx, e.topo.Pods[0].Path(), e.topo.Pods[1].Path(), b.IPv4, 4<<20); err != nil {
		t.Errorf("bulk TCP: %v", err)
	}

	// A deny rule blocks new TCP flows to its port and nothing else.
	if err := podnet.Write(ctx, e.client, 1 /* INSERT */, []entry.Entry{podnet.DenyPort(6, denied)}); err != nil {
		t.Fatal(err)
	}
	if r := e.probe(t, 0, b.IPv4, probe.TCP, denied, "pod-b"); r.OK {
		t.Errorf("TCP to the denied port %d succeeded", denied)
	}
	if r := e.probe(t, 0, b.IPv6, probe.TCP, denied, "pod-b"); r.OK {
		t.Errorf("TCP over IPv6 to the denied port %d succeeded", denied)
	}
	if r := e.probe(t, 0, b.IPv4, probe.UDP, denied, "pod-b"); !r.OK {
		t.Errorf("UDP to port %d (only TCP is denied): %v", denied, r)
	}
	if r := e.probe(t, 0, b.IPv4, probe.TCP, open, "pod-b"); !r.OK {
		t.Errorf("TCP to the open port after the deny: %v", r)
	}
	// The trace shows why.
	if st := e.sw.Pipeline.Stats(); st.Dropped == 0 {
		t.Errorf("no packet dropped by the pipeline after the deny: %+v", st)
	}
}

func TestPodsTalkThroughTheSoftswitchOverVeth(t *testing.T) { testPodToPod(t, topology.Veth) }

func TestPodsTalkThroughTheSoftswitchOverTAP(t *testing.T) { testPodToPod(t, topology.TAP) }
