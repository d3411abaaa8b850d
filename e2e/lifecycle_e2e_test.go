//go:build e2e

package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/calico-p4/calico-p4/e2e/harness"
	"github.com/calico-p4/calico-p4/e2e/netnsutil"
	"github.com/calico-p4/calico-p4/e2e/scenario"
)

// lifecycleScenario is a small scenario on the conformance cluster: x's pods accept ingress from x only,
// then steps named by the tests.
const lifecycleScenario = `
name: lifecycle
resources:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: x-only, namespace: x}
  spec:
    podSelector: {}
    ingress: [{from: [{podSelector: {}}]}]
expect:
- {cases: [tcp/80, icmp, tcp/80/v6], default: allow, rules: ["deny * -> x/*", "allow x/* -> x/*"]}
steps:
- title: delete pod y/a
  delete: [{kind: Pod, namespace: "y", name: a}]
  expect:
  - {cases: [tcp/80, icmp], default: allow, rules: ["deny * -> x/*", "allow x/* -> x/*"]}
- title: deny all ingress in x
  apply:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: x-only, namespace: x}
    spec: {podSelector: {}, policyTypes: [Ingress]}
  expect:
  - {cases: [tcp/80, icmp], default: allow, rules: ["deny * -> x/*"]}
`

func lifecycle(t *testing.T, base *scenario.Scenario) *scenario.Scenario {
	t.Helper()
	s, err := scenario.ParseWithBase(base, []byte(lifecycleScenario))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// checkStep probes the current step against its expectations and fails on a mismatch.
func checkStep(t *testing.T, c *harness.Cluster) {
	t.Helper()
	r, err := c.Check(ctxFor(t, 2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if r.Mismatches() > 0 {
		t.Fatalf("%s", r)
	}
}

// targetWrites is the number of P4Runtime updates the target has received so far.
func targetWrites(t *testing.T, c *harness.Cluster) float64 {
	t.Helper()
	m, err := c.TargetMetrics(ctxFor(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Has("calico_p4_softswitch_write_updates_total") {
		t.Fatal("the target exports no calico_p4_softswitch_write_updates_total")
	}
	return m.Sum("calico_p4_softswitch_write_updates_total")
}

func readTarget(t *testing.T, c *harness.Cluster) *harness.Snapshot {
	t.Helper()
	s, err := harness.ReadTarget(ctxFor(t, 30*time.Second), c.P4RT())
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() == 0 {
		t.Fatal("the target holds no entries")
	}
	return s
}

// pingPair pings x/a -> x/b over both families every 10 ms while fn runs and requires every echo answered.
func pingAcross(t *testing.T, c *harness.Cluster, what string, fn func()) {
	t.Helper()
	a, b := c.Topo.Pod("x/a"), c.Topo.Pod("x/b")
	var pingers []*harness.Pinger
	for _, dst := range []netip.Addr{b.Spec.IPv4, b.Spec.IPv6} {
		p, err := harness.StartPing(a.Path(), dst, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		pingers = append(pingers, p)
	}
	time.Sleep(300 * time.Millisecond) // traffic flowing (and conntrack learned) before the event
	fn()
	time.Sleep(300 * time.Millisecond)
	for i, p := range pingers {
		st := p.Stop(2 * time.Second)
		t.Logf("ping %s across %s: %s", []string{"IPv4", "IPv6"}[i], what, st)
		if st.Sent < 20 {
			t.Errorf("ping %d: only %d echo requests sent", i, st.Sent)
		}
		if len(st.Lost) > 0 {
			t.Errorf("ping over %s lost packets across %s: %s (sequence numbers %v)", []string{"IPv4", "IPv6"}[i], what, st, st.Lost)
		}
	}
}

// A Felix restart (a new driver, the same model) is a new session whose snapshot equals what is
// programmed: an ongoing ping loses nothing and the target receives no write at all.
func TestFelixRestartLosesNoPacketAndRewritesNoEntry(t *testing.T) {
	base := loadBase(t)
	c := startCluster(t, harness.Config{Scenario: base, HostPort: true})
	if _, err := c.Load(ctxFor(t, 2*time.Minute), lifecycle(t, base)); err != nil {
		t.Fatal(err)
	}
	checkStep(t, c)
	before, writes := readTarget(t, c), targetWrites(t, c)
	pingAcross(t, c, "a Felix restart", func() {
		if err := c.RestartFelix(ctxFor(t, 2*time.Minute)); err != nil {
			t.Fatal(err)
		}
	})
	if w := targetWrites(t, c); w != writes {
		t.Errorf("the Felix restart wrote %v updates to the target, want none", w-writes)
	}
	if d := before.Diff(readTarget(t, c)); d != "" {
		t.Errorf("the target's entries changed across the Felix restart: %s", d)
	}
	checkStep(t, c)
}

// With a standalone softswitch the dataplane outlives the manager: a crashed manager's successor reads the
// target back at its first session's InSync and writes nothing, while traffic keeps flowing throughout.
func TestManagerRestartReconcilesByReadBackWhileTrafficFlows(t *testing.T) {
	base := loadBase(t)
	c := startCluster(t, harness.Config{Scenario: base, HostPort: true, Target: harness.TargetStandalone})
	if _, err := c.Load(ctxFor(t, 2*time.Minute), lifecycle(t, base)); err != nil {
		t.Fatal(err)
	}
	checkStep(t, c)
	before, writes := readTarget(t, c), targetWrites(t, c)
	pingAcross(t, c, "a manager crash and restart", func() {
		if err := c.RestartManager(ctxFor(t, time.Minute), true); err != nil {
			t.Fatal(err)
		}
		// Losing its manager ends the driver; Felix restarts and the new manager gets a session.
		if err := c.RestartFelix(ctxFor(t, 2*time.Minute)); err != nil {
			t.Fatal(err)
		}
	})
	if w := targetWrites(t, c); w != writes {
		t.Errorf("the restarted manager wrote %v updates, want none (read-back reconcile)", w-writes)
	}
	if d := before.Diff(readTarget(t, c)); d != "" {
		t.Errorf("the target's entries changed across the manager restart: %s", d)
	}
	mt, err := c.Manager.Scrape(ctxFor(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if mt.Sum("calico_p4_programmer_reconciles_total") < 1 {
		t.Errorf("the new manager reports no reconcile with the target")
	}
	checkStep(t, c)
	// The new manager programs the next changes.
	if _, err := c.Felix.NextStep(ctxFor(t, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	checkStep(t, c)
	if w := targetWrites(t, c); w == writes {
		t.Error("removing an endpoint after the restart wrote nothing")
	}
}

// Removing an endpoint removes every entry that names its port or its addresses (P4Runtime Read).
func TestEndpointRemovalRemovesItsEntries(t *testing.T) {
	base := loadBase(t)
	c := startCluster(t, harness.Config{Scenario: base, HostPort: true})
	if _, err := c.Load(ctxFor(t, 2*time.Minute), lifecycle(t, base)); err != nil {
		t.Fatal(err)
	}
	ya := c.Topo.Pod("y/a")
	refs := [][]byte{harness.PortValue(ya.HostIface), harness.AddrValue(ya.Spec.IPv4), harness.AddrValue(ya.Spec.IPv6)}
	before := readTarget(t, c)
	had := before.Referencing(refs...)
	if len(had) < 5 {
		t.Fatalf("before the removal only %d entries name y/a's port or addresses:\n%s", len(had), strings.Join(had, "\n"))
	}
	if _, err := c.Felix.NextStep(ctxFor(t, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	after := readTarget(t, c)
	if left := after.Referencing(refs...); len(left) > 0 {
		t.Errorf("after removing y/a, %d entries still name its port or addresses:\n%s", len(left), strings.Join(left, "\n"))
	}
	if after.Len() >= before.Len() {
		t.Errorf("the target holds %d entities after the removal, %d before", after.Len(), before.Len())
	}
	t.Logf("y/a had %d entries (%d → %d entities)", len(had), before.Len(), after.Len())
	checkStep(t, c)
}

// echoServer accepts TCP connections in a namespace and echoes lines back.
func echoServer(t *testing.T, nsPath string, port int) {
	t.Helper()
	lineServer(t, nsPath, port, func(line string) string { return line })
}

// lineServer serves TCP on port in a namespace, answering each line received with answer(line).
func lineServer(t *testing.T, nsPath string, port int, answer func(line string) string) {
	t.Helper()
	var ln net.Listener
	if err := netnsutil.DoPath(nsPath, func() error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := conn.Write([]byte(answer(line))); err != nil {
						return
					}
				}
			}()
		}
	}()
}

func dialFrom(nsPath string, to netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := netnsutil.DoPath(nsPath, func() error {
		var err error
		c, err = net.DialTimeout("tcp", to.String(), timeout)
		return err
	})
	return c, err
}

func exchange(c net.Conn, msg string) error {
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != msg+"\n" {
		return fmt.Errorf("echo %q, want %q", line, msg)
	}
	return nil
}

// A policy change from allow to deny keeps established connections (Felix's conntrack accepts
// established traffic before any policy) and refuses new ones; deleting the policy lets new ones in.
func TestPolicyChangeKeepsEstablishedTCPAndRefusesNewConnections(t *testing.T) {
	base := loadBase(t)
	c := startCluster(t, harness.Config{Scenario: base, HostPort: true})
	ctx := ctxFor(t, 3*time.Minute)
	if _, err := c.Load(ctx, lifecycle(t, base)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Felix.NextStep(ctx); err != nil { // delete pod y/a (not under test here)
		t.Fatal(err)
	}
	a, b := c.Topo.Pod("x/a"), c.Topo.Pod("x/b")
	const port = 9000
	echoServer(t, b.Path(), port)
	var conns []net.Conn
	for _, dst := range []netip.Addr{b.Spec.IPv4, b.Spec.IPv6} {
		conn, err := dialFrom(a.Path(), netip.AddrPortFrom(dst, port), 3*time.Second)
		if err != nil {
			t.Fatalf("connect x/a -> x/b %s while allowed: %v", dst, err)
		}
		t.Cleanup(func() { conn.Close() })
		if err := exchange(conn, "before"); err != nil {
			t.Fatalf("exchange before the change: %v", err)
		}
		conns = append(conns, conn)
	}
	if _, err := c.Felix.NextStep(ctx); err != nil { // deny all ingress in x
		t.Fatal(err)
	}
	for i, conn := range conns {
		for n := 0; n < 3; n++ {
			if err := exchange(conn, fmt.Sprintf("after-%d", n)); err != nil {
				t.Errorf("established connection %d broken by the policy change: %v", i, err)
				break
			}
		}
	}
	for _, dst := range []netip.Addr{b.Spec.IPv4, b.Spec.IPv6} {
		if conn, err := dialFrom(a.Path(), netip.AddrPortFrom(dst, port), 1500*time.Millisecond); err == nil {
			conn.Close()
			t.Errorf("a new connection x/a -> x/b %s succeeded after the deny", dst)
		}
	}
	checkStep(t, c)
}
