//go:build e2e

package e2e_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calico-p4/calico-p4/e2e/harness"
	"github.com/calico-p4/calico-p4/e2e/netnsutil"
	"github.com/calico-p4/calico-p4/e2e/probe"
	"github.com/calico-p4/calico-p4/e2e/scenario"
)

// servicesScenario adds Services and EndpointSlices to the conformance cluster (pods x/a … z/c serve TCP
// 22, 80, 81, 8080 and UDP 53, 80, 81, answering with their name). The backends reach the manager
// through its Kubernetes watch (the harness writes them to its --services-file); Felix gets the
// ServiceUpdates the compiler derives, as a real Felix would.
const servicesScenario = `
name: services
resources:
# web: dual-stack ClusterIP, TCP 8000 -> 80 and UDP 5353 -> 53, backends x/a and x/b.
- kind: Service
  metadata: {name: web, namespace: x}
  spec:
    ipFamilyPolicy: RequireDualStack
    clusterIPs: [10.96.0.10, "fd00:10:96::10"]
    ports: [{name: http, port: 8000, targetPort: 80}, {name: dns, port: 5353, protocol: UDP, targetPort: 53}]
- kind: EndpointSlice
  metadata: {name: web-4, namespace: x, labels: {kubernetes.io/service-name: web}}
  spec:
    addressType: IPv4
    ports: [{name: http, port: 80}, {name: dns, port: 53, protocol: UDP}]
    endpoints: [{addresses: [10.65.0.11], nodeName: node1}, {addresses: [10.65.0.12], nodeName: node1}]
- kind: EndpointSlice
  metadata: {name: web-6, namespace: x, labels: {kubernetes.io/service-name: web}}
  spec:
    addressType: IPv6
    ports: [{name: http, port: 80}, {name: dns, port: 53, protocol: UDP}]
    endpoints: [{addresses: ["fd00:65::11"], nodeName: node1}, {addresses: ["fd00:65::12"], nodeName: node1}]
# v6only: a single-stack IPv6 service, backend y/c.
- kind: Service
  metadata: {name: v6only, namespace: "y"}
  spec: {ipFamilies: [IPv6], clusterIPs: ["fd00:10:96::50"], ports: [{name: http, port: 8000, targetPort: 80}]}
- kind: EndpointSlice
  metadata: {name: v6only-1, namespace: "y", labels: {kubernetes.io/service-name: v6only}}
  spec: {addressType: IPv6, ports: [{name: http, port: 80}], endpoints: [{addresses: ["fd00:65::23"], nodeName: node1}]}
# np: NodePort 30080 (externalTrafficPolicy Cluster), backends y/a and y/b.
- kind: Service
  metadata: {name: np, namespace: "y"}
  spec: {type: NodePort, clusterIPs: [10.96.0.20], ports: [{name: http, port: 8000, targetPort: 80, nodePort: 30080}]}
- kind: EndpointSlice
  metadata: {name: np-1, namespace: "y", labels: {kubernetes.io/service-name: np}}
  spec:
    addressType: IPv4
    ports: [{name: http, port: 80}]
    endpoints: [{addresses: [10.65.0.21], nodeName: node1}, {addresses: [10.65.0.22], nodeName: node1}]
# empty: no endpoints at all.
- kind: Service
  metadata: {name: empty, namespace: z}
  spec: {clusterIPs: [10.96.0.30], ports: [{name: http, port: 8000, targetPort: 80}, {name: dns, port: 5353, protocol: UDP, targetPort: 53}]}
# sticky: ClientIP affinity over z's three pods.
- kind: Service
  metadata: {name: sticky, namespace: z}
  spec: {clusterIPs: [10.96.0.40], sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 300}},
         ports: [{name: http, port: 8000, targetPort: 80}]}
- kind: EndpointSlice
  metadata: {name: sticky-1, namespace: z, labels: {kubernetes.io/service-name: sticky}}
  spec:
    addressType: IPv4
    ports: [{name: http, port: 80}]
    endpoints: [{addresses: [10.65.0.31]}, {addresses: [10.65.0.32]}, {addresses: [10.65.0.33]}]
# echo: TCP 9000 on x/a and x/b (the test runs echo servers there).
- kind: Service
  metadata: {name: echo, namespace: x}
  spec: {clusterIPs: [10.96.0.60], ports: [{name: echo, port: 9000}]}
- kind: EndpointSlice
  metadata: {name: echo-1, namespace: x, labels: {kubernetes.io/service-name: echo}}
  spec:
    addressType: IPv4
    ports: [{name: echo, port: 9000}]
    endpoints: [{addresses: [10.65.0.11], nodeName: node1}, {addresses: [10.65.0.12], nodeName: node1}]
steps:
- title: policies on np's backends (y/a denies all ingress; y/b admits TCP 80 only)
  apply:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: a-deny, namespace: "y"}
    spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Ingress]}
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: b-port-80, namespace: "y"}
    spec:
      podSelector: {matchLabels: {pod: b}}
      ingress: [{ports: [{port: 80, protocol: TCP}]}]
- title: x/b leaves echo (an established connection to it stays)
  apply:
  - kind: EndpointSlice
    metadata: {name: echo-1, namespace: x, labels: {kubernetes.io/service-name: echo}}
    spec:
      addressType: IPv4
      ports: [{name: echo, port: 9000}]
      endpoints: [{addresses: [10.65.0.11], nodeName: node1}]
`

// identityEcho serves TCP on port in a namespace: each line is answered with "<identity> <line>".
func identityEcho(t *testing.T, nsPath, identity string, port int) {
	t.Helper()
	lineServer(t, nsPath, port, func(line string) string { return identity + " " + line })
}

// ask sends one line on an echo connection and returns who answered.
func ask(c net.Conn, msg string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	who, rest, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	if rest != msg {
		return "", fmt.Errorf("echo %q, want %q", rest, msg)
	}
	return who, nil
}

// Services end to end on the embedded softswitch: Felix's ServiceUpdates plus the manager's own watch of
// Services and EndpointSlices, real connections from pods, the host and a client outside the node.
func TestServicesEndToEnd(t *testing.T) {
	base := loadBase(t)
	s, err := scenario.ParseWithBase(base, []byte(servicesScenario))
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, harness.Config{Scenario: base, HostPort: true, External: true})
	ctx := ctxFor(t, 5*time.Minute)
	if _, err := c.Load(ctx, s); err != nil {
		t.Fatal(err)
	}
	// The host reaches services as on a node whose host port is its NIC (an IPU's host function): its route
	// to the service CIDRs points at the router, so its packets cross the pipeline, which translates them.
	// (The harness's on-link default route would make the host ARP for each service address.)
	for _, r := range [][]string{{"10.96.0.0/16", "192.168.122.1"}, {"fd00:10:96::/64", "fd00:122::1"}} {
		if out, err := harness.RunIn(ctx, c.Node.Path(), "ip", "route", "add", r[0], "via", r[1]); err != nil {
			t.Fatalf("ip route add %s via %s: %v\n%s", r[0], r[1], err, out)
		}
	}
	const timeout = 1500 * time.Millisecond
	probeSvc := func(t *testing.T, from, addr string, proto probe.Protocol, port, n int) harness.ServiceProbe {
		t.Helper()
		r, err := c.ProbeService(ctx, from, netip.MustParseAddr(addr), proto, port, n, timeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s -> %s %s/%d: %s", from, addr, proto, port, r)
		return r
	}
	// exactly checks that the connections were answered by exactly the backends in want (each at least
	// once), none failing.
	exactly := func(t *testing.T, r harness.ServiceProbe, want ...string) {
		t.Helper()
		if r.Failed > 0 {
			t.Errorf("%d connections failed (last: %v)", r.Failed, r.LastErr)
		}
		if len(r.Responders) != len(want) {
			t.Errorf("answered by %v, want each of %v", r.Responders, want)
		}
		for _, w := range want {
			if r.Responders[w] == 0 {
				t.Errorf("answered by %v, want each of %v", r.Responders, want)
				return
			}
		}
	}

	t.Run("ClusterIP load-balances over its backends: TCP and UDP, IPv4 and IPv6, from a pod and from the host", func(t *testing.T) {
		exactly(t, probeSvc(t, "y/c", "10.96.0.10", probe.TCP, 8000, 24), "x/a", "x/b")
		exactly(t, probeSvc(t, "y/c", "fd00:10:96::10", probe.TCP, 8000, 24), "x/a", "x/b")
		exactly(t, probeSvc(t, "z/a", "10.96.0.10", probe.UDP, 5353, 24), "x/a", "x/b")
		exactly(t, probeSvc(t, c.HostPeer(), "10.96.0.10", probe.TCP, 8000, 24), "x/a", "x/b")
		exactly(t, probeSvc(t, c.HostPeer(), "fd00:10:96::10", probe.TCP, 8000, 24), "x/a", "x/b")
		// A backend reaching its own service is the hairpin case (not masqueraded: see p4src/README.md).
	})
	t.Run("a single-stack IPv6 service", func(t *testing.T) {
		exactly(t, probeSvc(t, "x/a", "fd00:10:96::50", probe.TCP, 8000, 8), "y/c")
	})
	t.Run("NodePort from the client outside the node, on the uplink", func(t *testing.T) {
		exactly(t, probeSvc(t, c.ExternalPeer(), "192.168.122.11", probe.TCP, 30080, 24), "y/a", "y/b")
		// and the same service by its cluster IP from a pod
		exactly(t, probeSvc(t, "x/a", "10.96.0.20", probe.TCP, 8000, 24), "y/a", "y/b")
	})
	t.Run("no endpoints: refused at once with ICMP port unreachable (ECONNREFUSED), TCP and UDP", func(t *testing.T) {
		r := probeSvc(t, "x/a", "10.96.0.30", probe.TCP, 8000, 4)
		if len(r.Responders) > 0 || r.Failed != 4 {
			t.Errorf("a service without endpoints answered: %s", r)
		}
		// A dropped SYN would end in the (generous) dial timeout; the reject ends it with ECONNREFUSED.
		client := c.Topo.Pod("x/a")
		if conn, err := dialFrom(client.Path(), netip.MustParseAddrPort("10.96.0.30:8000"), 20*time.Second); err == nil {
			conn.Close()
			t.Errorf("TCP connect to the empty service succeeded")
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("TCP connect to the empty service: %v, want ECONNREFUSED", err)
		}
		// UDP: the ICMP port unreachable surfaces as ECONNREFUSED on a connected socket.
		err := netnsutil.DoPath(client.Path(), func() error {
			conn, err := net.Dial("udp", "10.96.0.30:5353")
			if err != nil {
				return err
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := conn.Write([]byte("probe")); err != nil {
				return err
			}
			_, err = conn.Read(make([]byte, 64))
			return err
		})
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("UDP probe of the empty service: %v, want ECONNREFUSED (ICMP port unreachable)", err)
		}
		tr, err := c.Trace(ctx, "node1", "x/a", "10.96.0.30", 8000)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Fate != "reject" || tr.DropReason != "DROP_NO_SERVICE_BACKEND" || tr.OutPort == 0 {
			t.Errorf("trace of a SYN to the empty service: fate %s, reason %s\n%s", tr.Fate, tr.DropReason, tr.Text)
		}
	})
	t.Run("session affinity sticks to one backend per client", func(t *testing.T) {
		// The first connection alone: concurrent first SYNs of one client can each miss the affinity
		// table before the other's entry is learned (on different pollers), as two first SYNs can pass
		// kube-proxy's "recent" check on two CPUs; affinity holds from the first learned entry on.
		for _, client := range []string{"x/a", "y/a", "x/c"} {
			first := probeSvc(t, client, "10.96.0.40", probe.TCP, 8000, 1)
			if len(first.Responders) != 1 || first.Failed > 0 {
				t.Errorf("client %s: first connection %s, want an answer", client, first)
				continue
			}
			r := probeSvc(t, client, "10.96.0.40", probe.TCP, 8000, 12)
			for backend := range first.Responders {
				if r.Failed > 0 || len(r.Responders) != 1 || r.Responders[backend] != 12 {
					t.Errorf("client %s: %s after a first connection to %s, want every connection there", client, r, backend)
				}
			}
		}
	})

	// Echo servers on echo's backends, and established connections through the service to both.
	xa, xb := c.Topo.Pod("x/a"), c.Topo.Pod("x/b")
	identityEcho(t, xa.Path(), "x/a", 9000)
	identityEcho(t, xb.Path(), "x/b", 9000)
	client := c.Topo.Pod("y/a")
	conns := map[string]net.Conn{}
	for i := 0; i < 40 && len(conns) < 2; i++ {
		conn, err := dialFrom(client.Path(), netip.MustParseAddrPort("10.96.0.60:9000"), 3*time.Second)
		if err != nil {
			t.Fatalf("connect to the echo service: %v", err)
		}
		who, err := ask(conn, "hello")
		if err != nil {
			t.Fatalf("echo through the service: %v", err)
		}
		if _, dup := conns[who]; dup {
			conn.Close()
			continue
		}
		conns[who] = conn
		t.Cleanup(func() { conn.Close() })
	}
	if len(conns) != 2 {
		t.Fatalf("40 connections to the echo service reached only %v", conns)
	}

	t.Run("policy applies to the translated packet (backend address and target port)", func(t *testing.T) {
		if _, err := c.NextStep(ctx); err != nil {
			t.Fatal(err)
		}
		// y/a denies every ingress: its share of the connections fails; y/b admits TCP 80 only — the
		// target port, not the service's 8000 — so its share is answered.
		r := probeSvc(t, "x/a", "10.96.0.20", probe.TCP, 8000, 24)
		if r.Responders["y/b"] == 0 || r.Responders["y/a"] > 0 || len(r.Responders) != 1 || r.Failed == 0 {
			t.Errorf("through the service: %s; want answers from y/b only and failures (connections sent to y/a)", r)
		}
		r = probeSvc(t, c.ExternalPeer(), "192.168.122.11", probe.TCP, 30080, 24)
		if r.Responders["y/b"] == 0 || len(r.Responders) != 1 || r.Failed == 0 {
			t.Errorf("through the node port: %s; want answers from y/b only and failures", r)
		}
	})
	t.Run("a backend removed while a connection is established keeps its connection", func(t *testing.T) {
		if _, err := c.NextStep(ctx); err != nil { // x/b leaves echo
			t.Fatal(err)
		}
		for who, conn := range conns {
			for i := 0; i < 3; i++ {
				got, err := ask(conn, fmt.Sprintf("after-%d", i))
				if err != nil || got != who {
					t.Errorf("the established connection to %s: %q, %v", who, got, err)
					break
				}
			}
		}
		// New connections reach x/a only.
		for i := 0; i < 12; i++ {
			conn, err := dialFrom(client.Path(), netip.MustParseAddrPort("10.96.0.60:9000"), 3*time.Second)
			if err != nil {
				t.Fatalf("a new connection to the echo service: %v", err)
			}
			who, err := ask(conn, "new")
			conn.Close()
			if err != nil || who != "x/a" {
				t.Errorf("a new connection after x/b left: %q, %v", who, err)
			}
		}
	})
	// Felix's view carried the services too (ServiceUpdate); the dataplane reports nothing unsupported.
	m, err := c.Manager.Scrape(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Sum("calico_p4_services_watched"); got != 6 {
		t.Errorf("calico_p4_services_watched = %v, want 6", got)
	}
}
