//go:build e2e

package e2e_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"
	"time"

	"github.com/calico-p4/calico-p4/e2e/harness"
	"github.com/calico-p4/calico-p4/e2e/probe"
	"github.com/calico-p4/calico-p4/e2e/scenario"
	"github.com/calico-p4/calico-p4/e2e/topology"
	"github.com/calico-p4/calico-p4/ipu/softswitch/ports"
)

// Two nodes, each with its own manager, softswitch and Felix, joined by their uplinks; a VXLAN pool. Pods
// on different nodes reach each other through encapsulation on one softswitch and termination on the other,
// and policy applies on both ends.
func TestTwoNodesOverVXLAN(t *testing.T) {
	needRoot(t)
	s, err := scenario.Load("testdata/twonode/vxlan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, harness.Config{Scenario: s, HostPort: true, Nodes: []string{"node1", "node2"}})
	rs, err := c.RunAll(ctxFor(t, 5*time.Minute), s)
	for _, r := range rs {
		if r.Mismatches() > 0 {
			t.Errorf("%s", r)
		} else {
			t.Logf("%s: %d probes agree", r.Step, r.Probes())
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	// The packets really cross encapsulated: node1 sends x/a's packets for y/a out of its uplink inside
	// VXLAN (outer IPv4 node1 -> node2, UDP 4789), and node2 terminates the tunnel.
	tr, err := c.Trace(ctxFor(t, time.Minute), "node1", "x/a", "10.65.1.21", 80)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := hex.DecodeString(tr.OutputHex)
	if tr.Fate != "forward" || tr.OutPort != ports.IDForName(topology.UplinkIface) || len(out) < 50 ||
		out[14+9] != 17 || binary.BigEndian.Uint16(out[14+20+2:]) != 4789 ||
		!bytes.Equal(out[14+12:14+20], []byte{192, 168, 122, 11, 192, 168, 122, 12}) {
		t.Errorf("node1 does not send x/a -> y/a VXLAN-encapsulated out of its uplink:\n%s", tr.Text)
	}
	snap, err := harness.ReadTarget(ctxFor(t, time.Minute), c.Runs[1].Manager.P4RT)
	if err != nil {
		t.Fatal(err)
	}
	if n := snap.Counts()["MainControlImpl.tunnel_term_v4"]; n != 1 {
		t.Errorf("node2 has %d VXLAN tunnel terminations, want 1 (from node1)", n)
	}
}

// servicesAcrossNodes adds Services whose backends are the pods of node2 to the two-node cluster.
const servicesAcrossNodes = `
name: two-node-services
resources:
# remote: backends y/a and y/b on node2; NodePort 30090 with externalTrafficPolicy Cluster (masqueraded).
- kind: Service
  metadata: {name: remote, namespace: "y"}
  spec: {type: NodePort, clusterIPs: [10.96.0.70], ports: [{name: http, port: 8000, targetPort: 80, nodePort: 30090}]}
- kind: EndpointSlice
  metadata: {name: remote-1, namespace: "y", labels: {kubernetes.io/service-name: remote}}
  spec:
    addressType: IPv4
    ports: [{name: http, port: 80}]
    endpoints: [{addresses: [10.65.1.21], nodeName: node2}, {addresses: [10.65.1.22], nodeName: node2}]
# local: NodePort 30091 with externalTrafficPolicy Local, backend y/a on node2.
- kind: Service
  metadata: {name: local, namespace: "y"}
  spec: {type: NodePort, externalTrafficPolicy: Local, clusterIPs: [10.96.0.71],
         ports: [{name: http, port: 8000, targetPort: 80, nodePort: 30091}]}
- kind: EndpointSlice
  metadata: {name: local-1, namespace: "y", labels: {kubernetes.io/service-name: local}}
  spec:
    addressType: IPv4
    ports: [{name: http, port: 80}]
    endpoints: [{addresses: [10.65.1.21], nodeName: node2}]
`

// Services whose backends are on the other node: a ClusterIP is translated on the client's node and the
// packets cross in VXLAN; a node port reached from outside (node2's host) on node1 is masqueraded to node1's
// tunnel address, so the backend on node2 answers through node1, which undoes both translations (without the
// masquerade the reply would go straight to node2's host from the wrong address); externalTrafficPolicy
// Local serves node ports only on nodes with a local endpoint.
func TestServicesAcrossNodes(t *testing.T) {
	needRoot(t)
	base, err := scenario.Load("testdata/twonode/vxlan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base.Steps, base.Expect = nil, nil
	s, err := scenario.ParseWithBase(base, []byte(servicesAcrossNodes))
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, harness.Config{Scenario: s, HostPort: true, Nodes: []string{"node1", "node2"}})
	ctx := ctxFor(t, 3*time.Minute)
	if _, err := c.Load(ctx, s); err != nil {
		t.Fatal(err)
	}
	probeSvc := func(from, addr string, port int) harness.ServiceProbe {
		t.Helper()
		r, err := c.ProbeService(ctx, from, netip.MustParseAddr(addr), probe.TCP, port, 16, 1500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s -> %s:%d: %s", from, addr, port, r)
		return r
	}
	both := func(r harness.ServiceProbe) bool {
		return r.Failed == 0 && len(r.Responders) == 2 && r.Responders["y/a"] > 0 && r.Responders["y/b"] > 0
	}
	if r := probeSvc("x/a", "10.96.0.70", 8000); !both(r) {
		t.Errorf("a pod on node1 through the ClusterIP to node2's backends: %s", r)
	}
	if r := probeSvc("host/node2", "192.168.122.11", 30090); !both(r) {
		t.Errorf("node2's host through node1's node port to node2's backends (masqueraded): %s", r)
	}
	if r := probeSvc("x/a", "192.168.122.12", 30091); r.Failed > 0 || len(r.Responders) != 1 || r.Responders["y/a"] == 0 {
		t.Errorf("externalTrafficPolicy Local on the node with the endpoint: %s", r)
	}
	if r := probeSvc("x/b", "192.168.122.11", 30091); len(r.Responders) > 0 {
		t.Errorf("externalTrafficPolicy Local on a node without an endpoint answered: %s", r)
	}
}
