package cni

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/projectcalico/calico/cni-plugin/pkg/dataplane/grpc/proto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/calico-p4/calico-p4/driver/model"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and veth pairs (CI runs as root)")
	}
}

func suffix(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// namedNS creates /run/netns/<name> (removed at cleanup) and returns its path.
func namedNS(t *testing.T, name string) string {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread that entered the new namespace is discarded
		h, err := netns.NewNamed(name)
		if err == nil {
			h.Close()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("creating netns %s: %v", name, err)
	}
	t.Cleanup(func() { _ = netns.DeleteNamed(name) })
	return filepath.Join("/run/netns", name)
}

func handleAt(t *testing.T, path string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// recSink records the pod interfaces handed over.
type recSink struct {
	mu sync.Mutex
	m  map[string]net.HardwareAddr
}

func (r *recSink) SetPodInterface(p *model.PodInterface) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[p.HostInterface] = p.MAC
}

func (r *recSink) RemovePodInterface(h string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, h)
}

func (r *recSink) get(h string) net.HardwareAddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[h]
}

type fixture struct {
	node, sfx string
	nodeNL    *netlink.Handle
	srv       *Server
	sink      *recSink
	metrics   *Metrics
	client    proto.CniDataplaneClient
}

// newFixture serves a Server (host ends into a test node namespace) on a temp unix socket over gRPC.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	needRoot(t)
	f := &fixture{sfx: suffix(t), sink: &recSink{m: map[string]net.HardwareAddr{}}}
	f.node = namedNS(t, "cp4cni-"+f.sfx+"-node")
	f.nodeNL = handleAt(t, f.node)
	f.srv, f.metrics = f.newServer(t)
	sock := filepath.Join(t.TempDir(), "cni.sock")
	lis, err := Listen("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v, want 0600", fi.Mode(), err)
	}
	g := grpc.NewServer()
	f.srv.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f.client = proto.NewCniDataplaneClient(conn)
	return f
}

func (f *fixture) newServer(t *testing.T) (*Server, *Metrics) {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Sink: f.sink, Metrics: m, HostNetNS: f.node})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, m
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard only
	t.Cleanup(cancel)
	return c
}

func (f *fixture) addReq(pod, host string) *proto.AddRequest {
	return &proto.AddRequest{InterfaceName: "eth0", Netns: pod, DesiredHostInterfaceName: host,
		Settings:         &proto.ContainerSettings{Mtu: 1400},
		ContainerIps:     []*proto.IPConfig{{Address: "10.65.0.2/32", Gateway: "<nil>"}, {Address: "fd00:65::2/128", Gateway: "<nil>"}},
		ContainerRoutes:  []string{"0.0.0.0/0", "::/0"},
		Workload:         &proto.WorkloadIDs{Namespace: "ns", Pod: "pod"},
		DataplaneOptions: map[string]string{"type": "grpc", "socket": "unix:///x"}}
}

func TestAddCreatesThePodInterfaceRetriesAreIdempotentAndDelRemovesIt(t *testing.T) {
	f := newFixture(t)
	pod := namedNS(t, "cp4cni-"+f.sfx+"-pod")
	podNL := handleAt(t, pod)
	host := "cali" + f.sfx

	rep, err := f.client.Add(ctx(t), f.addReq(pod, host))
	if err != nil || !rep.Successful {
		t.Fatalf("Add: %v %+v", err, rep)
	}
	if rep.HostInterfaceName != host {
		t.Errorf("host_interface_name %q, want %q", rep.HostInterfaceName, host)
	}
	mac, err := net.ParseMAC(rep.ContainerMac)
	if err != nil {
		t.Fatalf("container_mac %q: %v", rep.ContainerMac, err)
	}

	// The pod end.
	eth0, err := podNL.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if eth0.Type() != "veth" || eth0.Attrs().MTU != 1400 || eth0.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("pod eth0: type %s mtu %d flags %v, want an up veth with mtu 1400", eth0.Type(), eth0.Attrs().MTU, eth0.Attrs().Flags)
	}
	if eth0.Attrs().HardwareAddr.String() != mac.String() {
		t.Errorf("container_mac %v, pod eth0 has %v", mac, eth0.Attrs().HardwareAddr)
	}
	addrs, err := podNL.AddrList(eth0, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range addrs {
		if !a.IP.IsLinkLocalUnicast() {
			got = append(got, a.IPNet.String())
		}
	}
	if strings.Join(got, " ") != "10.65.0.2/32 fd00:65::2/128" {
		t.Errorf("pod addresses %v, want 10.65.0.2/32 fd00:65::2/128", got)
	}
	routes, err := podNL.RouteList(eth0, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var def4, def6 bool
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			switch {
			case r.Gw.Equal(GatewayV4) && r.Flags&int(netlink.FLAG_ONLINK) != 0:
				def4 = true
			case r.Gw.Equal(GatewayV6):
				def6 = true
			}
		}
	}
	if !def4 || !def6 {
		t.Errorf("pod routes %v: want default via 169.254.1.1 onlink (%v) and via fe80::ecee:eeff:feee:eeee (%v)", routes, def4, def6)
	}
	neighs, err := podNL.NeighList(eth0.Attrs().Index, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range neighs {
		if n.State&netlink.NUD_PERMANENT != 0 {
			t.Errorf("static neighbour entry %v in the pod: the pipeline answers ARP/ND", n)
		}
	}

	// The host end.
	hl, err := f.nodeNL.LinkByName(host)
	if err != nil {
		t.Fatal(err)
	}
	if hl.Type() != "veth" || hl.Attrs().Flags&net.FlagUp == 0 || hl.Attrs().MTU != 1400 {
		t.Errorf("host end: type %s flags %v mtu %d, want an up veth with mtu 1400", hl.Type(), hl.Attrs().Flags, hl.Attrs().MTU)
	}
	if a, _ := f.nodeNL.AddrList(hl, netlink.FAMILY_ALL); len(a) != 0 {
		t.Errorf("host end has addresses %v, want none", a)
	}
	if hl.Attrs().HardwareAddr.String() == "ee:ee:ee:ee:ee:ee" || hl.Attrs().HardwareAddr.String() == mac.String() {
		t.Errorf("host end MAC %v must differ from the gateway's and the pod's", hl.Attrs().HardwareAddr)
	}
	if got := f.sink.get(host); got.String() != mac.String() {
		t.Errorf("sink has %v for %s, want %v", got, host, mac)
	}

	// A retried Add returns the same pair.
	rep2, err := f.client.Add(ctx(t), f.addReq(pod, host))
	if err != nil || !rep2.Successful || rep2.ContainerMac != rep.ContainerMac || rep2.HostInterfaceName != host {
		t.Fatalf("retried Add: %v %+v, want success with MAC %s", err, rep2, rep.ContainerMac)
	}
	if hl2, err := f.nodeNL.LinkByName(host); err != nil || hl2.Attrs().Index != hl.Attrs().Index {
		t.Errorf("retried Add replaced the host end (%v)", err)
	}

	// A restarted server reads the pod MAC back from the host end.
	f.sink.RemovePodInterface(host)
	s2, _ := f.newServer(t)
	if n, err := s2.Rebuild(); err != nil || n != 1 {
		t.Fatalf("Rebuild: %d %v, want 1", n, err)
	}
	if got := f.sink.get(host); got.String() != mac.String() {
		t.Errorf("after Rebuild the sink has %v for %s, want %v", got, host, mac)
	}

	// Del removes both ends and the record; a second Del succeeds.
	for i := range 2 {
		drep, err := f.client.Del(ctx(t), &proto.DelRequest{InterfaceName: "eth0", Netns: pod})
		if err != nil || !drep.Successful {
			t.Fatalf("Del #%d: %v %+v", i+1, err, drep)
		}
	}
	if _, err := f.nodeNL.LinkByName(host); err == nil {
		t.Error("host end still exists after Del")
	}
	if _, err := podNL.LinkByName("eth0"); err == nil {
		t.Error("pod eth0 still exists after Del")
	}
	if got := f.sink.get(host); got != nil {
		t.Errorf("sink still has %v for %s after Del", got, host)
	}
	if got := testutil.ToFloat64(f.metrics.requests.WithLabelValues("add", "ok")); got != 2 {
		t.Errorf("add ok requests %v, want 2", got)
	}
	if got := testutil.ToFloat64(f.metrics.requests.WithLabelValues("del", "ok")); got != 2 {
		t.Errorf("del ok requests %v, want 2", got)
	}
}

func TestDelSucceedsWhenThePodNamespaceIsGone(t *testing.T) {
	f := newFixture(t)
	name := "cp4cni-" + f.sfx + "-gone"
	pod := namedNS(t, name)
	host := "cali" + f.sfx
	if rep, err := f.client.Add(ctx(t), f.addReq(pod, host)); err != nil || !rep.Successful {
		t.Fatalf("Add: %v %+v", err, rep)
	}
	if err := netns.DeleteNamed(name); err != nil {
		t.Fatal(err)
	}
	drep, err := f.client.Del(ctx(t), &proto.DelRequest{InterfaceName: "eth0", Netns: pod})
	if err != nil || !drep.Successful {
		t.Fatalf("Del: %v %+v", err, drep)
	}
	if _, err := f.nodeNL.LinkByName(host); err == nil {
		t.Error("host end still exists")
	}
	if f.sink.get(host) != nil {
		t.Error("the pod interface is still recorded")
	}
}

func TestBadAddRequestsAreRefusedWithAClearError(t *testing.T) {
	f := newFixture(t)
	pod := namedNS(t, "cp4cni-"+f.sfx+"-pod")
	podNL := handleAt(t, pod)
	host := "cali" + f.sfx
	// A host interface by that name that this server did not create.
	taken := "cp4tk" + f.sfx
	if err := f.nodeNL.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: taken}, PeerName: "cp4tp" + f.sfx}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		mut     func(r *proto.AddRequest)
		want    string
		invalid bool
	}{
		{"bad CIDR", func(r *proto.AddRequest) { r.ContainerIps[0].Address = "10.65.0.300/32" }, "not a CIDR", true},
		{"address without a prefix length", func(r *proto.AddRequest) { r.ContainerIps[0].Address = "10.65.0.2" }, "not a CIDR", true},
		{"bad route", func(r *proto.AddRequest) { r.ContainerRoutes = []string{"default"} }, "container_routes", true},
		{"no addresses", func(r *proto.AddRequest) { r.ContainerIps = nil }, "no container_ips", true},
		{"missing netns", func(r *proto.AddRequest) { r.Netns = "/run/netns/cp4cni-" + f.sfx + "-missing" }, "does not exist", true},
		{"no netns", func(r *proto.AddRequest) { r.Netns = "" }, "netns is empty", true},
		{"interface name too long", func(r *proto.AddRequest) { r.InterfaceName = "eth0123456789012" }, "longer than 15", true},
		{"host name too long", func(r *proto.AddRequest) { r.DesiredHostInterfaceName = "cali0123456789abc" }, "longer than 15", true},
		{"host name with a slash", func(r *proto.AddRequest) { r.DesiredHostInterfaceName = "cali/x" }, "invalid character", true},
		{"MTU out of range", func(r *proto.AddRequest) { r.Settings.Mtu = 20 }, "mtu", true},
		{"host name taken by another interface", func(r *proto.AddRequest) { r.DesiredHostInterfaceName = taken }, "not created by this server", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := f.addReq(pod, host)
			c.mut(req)
			rep, err := f.client.Add(ctx(t), req)
			if err != nil {
				t.Fatalf("Add: RPC error %v, want a reply", err)
			}
			if rep.Successful || !strings.Contains(rep.ErrorMessage, c.want) {
				t.Errorf("Add: %+v, want a failure mentioning %q", rep, c.want)
			}
			if _, err := podNL.LinkByName("eth0"); err == nil {
				t.Error("a refused Add created the pod interface")
			}
			if _, err := f.nodeNL.LinkByName(host); err == nil {
				t.Error("a refused Add created the host interface")
			}
		})
	}
	if got := testutil.ToFloat64(f.metrics.requests.WithLabelValues("add", "invalid")); got != 10 {
		t.Errorf("invalid add requests counted %v, want 10", got)
	}
	if got := testutil.ToFloat64(f.metrics.requests.WithLabelValues("add", "error")); got != 1 {
		t.Errorf("failed add requests counted %v, want 1", got)
	}
	rep, err := f.client.Del(ctx(t), &proto.DelRequest{InterfaceName: "", Netns: pod})
	if err != nil || rep.Successful || !strings.Contains(rep.ErrorMessage, "interface_name is empty") {
		t.Errorf("Del without an interface name: %v %+v, want a clear failure", err, rep)
	}
}
