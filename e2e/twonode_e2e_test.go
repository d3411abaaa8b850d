//go:build e2e

package e2e_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/calico-p4/calico-p4/e2e/harness"
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
