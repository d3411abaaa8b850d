// Command demo (make demo) shows calico-p4 end to end on this machine with real processes and real
// packets: network-namespace pods in two namespaces, the real calico-p4-manager with the embedded softswitch
// in the node's namespace, the Felix emulator exec'ing the real calico-p4-driver and replaying a scenario
// (the Felix stream a real Felix would send for demo.yaml), and after each step the reachability matrix
// probed between every pair of pods and compared with what Calico's semantics expect. Then the target's
// table occupancy (P4Runtime Read), a trace of a denied packet, and where to scrape the metrics.
// Everything it creates is removed on exit, Ctrl-C included. Needs root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/projectcalico/calico/felix/proto"

	"github.com/calico-p4/calico-p4/e2e/harness"
	"github.com/calico-p4/calico-p4/e2e/probe"
	"github.com/calico-p4/calico-p4/e2e/scenario"
)

func main() {
	bin := flag.String("bin", "bin", "directory with the calico-p4 binaries (make build)")
	file := flag.String("scenario", "hack/demo/demo.yaml", "the scenario to replay")
	hold := flag.Bool("hold", false, "keep everything running at the end until Ctrl-C (to scrape metrics, run calico-p4ctl)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *file, *hold); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Println("\ninterrupted")
		} else {
			fmt.Fprintf(os.Stderr, "\ndemo: %v\n", err)
		}
		os.Exit(1)
	}
}

// Terminal styles (empty when stdout is not a terminal).
var bold, green, red, dim, reset = "\033[1m", "\033[32m", "\033[31m", "\033[2m", "\033[0m"

func init() {
	if fi, err := os.Stdout.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		bold, green, red, dim, reset = "", "", "", "", ""
	}
}

func run(ctx context.Context, binDir, file string, hold bool) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root (it creates network namespaces)")
	}
	abs, err := filepath.Abs(binDir)
	if err != nil {
		return err
	}
	s, err := scenario.Load(file)
	if err != nil {
		return err
	}
	start := time.Now()
	fmt.Printf("%scalico-p4 demo%s — Felix stream → calico-p4-driver → calico-p4-manager → P4Runtime → embedded softswitch → pods\n\n", bold, reset)
	c, err := harness.Start(ctx, harness.Config{Bin: harness.Binaries{Dir: abs}, Scenario: s, HostPort: true,
		Listen: &probe.Listen{TCP: []int{8080, 81}}})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Printf("\ncleaning up (processes, namespaces) … ")
		if cerr := c.Close(); cerr != nil {
			fmt.Println("error:", cerr)
		} else {
			fmt.Println("done.")
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			fmt.Printf("%s\n", c.Logs())
		}
	}()

	fmt.Printf("node %s: namespace %s, host stack %s on %s (port %s of the softswitch)\n", c.Node.Spec.Name,
		c.Node.NetNS, addrs(c.Node.Spec.IPv4.Addr().String(), c.Node.Spec.IPv6.Addr().String()), "cp4host1", c.Node.HostPort)
	for _, p := range c.Topo.Pods {
		fmt.Printf("  pod %-14s %-12s %-14s eth0 %s, host end %s\n", p.Spec.Name, p.Spec.IPv4, p.Spec.IPv6, p.MAC, p.HostIface)
	}
	fmt.Printf("calico-p4-manager (pid %d): --target embedded, P4Runtime %s, metrics %s inside the node namespace\n\n",
		c.Manager.PID(), c.Manager.P4RT, c.Manager.MetricsAddr)

	t0 := time.Now()
	st, err := c.Load(ctx, s)
	if err != nil {
		return err
	}
	var mismatches int
	show := func(title string, msgs int, took time.Duration) error {
		fmt.Printf("%s%s%s\n", bold, title, reset)
		fmt.Printf("  %sFelix sent %d messages (driver pid %d); the manager applied them in %v%s\n", dim, msgs,
			c.Felix.Driver().PID(), took.Round(time.Millisecond), reset)
		r, err := c.Check(ctx)
		if err != nil {
			return err
		}
		printResult(r)
		mismatches += r.Mismatches()
		return nil
	}
	if err := show("Felix's snapshot (InSync): no policy — Calico's namespace profiles allow everything",
		countMsgs(st, 0), time.Since(t0)); err != nil {
		return err
	}
	for i := 1; i <= len(s.Steps); i++ {
		t0 := time.Now()
		title, err := c.Felix.NextStep(ctx)
		if err != nil {
			return err
		}
		if err := show(title, countMsgs(st, i), time.Since(t0)); err != nil {
			return err
		}
	}

	snap, err := harness.ReadTarget(ctx, c.Manager.P4RT)
	if err != nil {
		return err
	}
	fmt.Printf("%sTable occupancy%s (P4Runtime Read of the target: %d control-plane entities)\n", bold, reset, snap.Len())
	counts := snap.Counts()
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("  %-36s %4d\n", strings.TrimPrefix(n, "MainControlImpl."), counts[n])
	}

	trace(ctx, c, abs)
	if err := metrics(ctx, c); err != nil {
		return err
	}
	up := 0
	for _, r := range c.Felix.Replies() {
		if u, ok := r.Payload.(*proto.FromDataplane_WorkloadEndpointStatusUpdate); ok && u.WorkloadEndpointStatusUpdate.GetStatus().GetStatus() == "up" {
			up++
		}
	}
	fmt.Printf("\nFelix received %d FromDataplane messages (%d workload endpoint status \"up\").\n", len(c.Felix.Replies()), up)
	if mismatches > 0 {
		fmt.Printf("%s%d probe(s) disagreed with Calico's expected reachability%s\n", red, mismatches, reset)
	} else {
		fmt.Printf("%sEvery probe agreed with Calico's expected reachability.%s Total time %v.\n", green, reset,
			time.Since(start).Round(100*time.Millisecond))
	}
	if hold {
		fmt.Printf("\nholding until Ctrl-C; e.g.\n  ip netns exec %s curl -s http://%s/metrics | grep ^calico_p4_\n"+
			"  ip netns exec %s %s/calico-p4ctl --ctl %s ports list\n", c.Node.NetNS, c.Manager.MetricsAddr,
			c.Node.NetNS, abs, c.Manager.MetricsAddr)
		<-ctx.Done()
	}
	if mismatches > 0 {
		return fmt.Errorf("%d mismatches", mismatches)
	}
	return nil
}

func addrs(a ...string) string { return strings.Join(a, ", ") }

// countMsgs counts the messages of the snapshot (step 0) or of step i of a compiled stream.
func countMsgs(st *scenario.Stream, step int) int {
	n, cur := 0, 0
	for _, it := range st.Items {
		if it.Msg == nil {
			cur++
			continue
		}
		if cur == step {
			n++
		}
	}
	return n
}

// printResult prints each probed case's observed matrix and whether it equals the expected one.
func printResult(r *harness.StepResult) {
	for _, t := range r.Tables {
		var b strings.Builder
		t.Observed.Table.Write(&b, "")
		lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")[1:]
		verdict := green + "= expected" + reset
		if len(t.Mismatches) > 0 {
			verdict = fmt.Sprintf("%s%d mismatch(es)%s", red, len(t.Mismatches), reset)
		}
		fmt.Printf("  %s (rows: from, columns: to; . reachable, X blocked) %s\n", t.Expected.Case, verdict)
		for _, l := range lines {
			fmt.Printf("    %s\n", l)
		}
		for _, m := range t.Mismatches {
			fmt.Printf("    %smismatch %s%s\n", red, m, reset)
		}
	}
	for _, s := range r.Skipped {
		fmt.Printf("  skipped %s\n", s)
	}
	fmt.Println()
}

// trace asks the softswitch why web/client cannot reach data/db (a dry run through the live tables).
func trace(ctx context.Context, c *harness.Cluster, bin string) {
	from, to := c.Topo.Pod("web/client"), c.Topo.Pod("data/db")
	if from == nil || to == nil {
		return
	}
	out, err := harness.RunIn(ctx, c.Node.Path(), filepath.Join(bin, "calico-p4ctl"), "--ctl", c.Manager.MetricsAddr,
		"trace", "--in-port", from.HostIface, "--src", from.Spec.IPv4.String(), "--dst", to.Spec.IPv4.String(),
		"--proto", "tcp", "--dport", "8080", "--src-mac", from.MAC.String())
	fmt.Printf("\n%sWhy web/client cannot open TCP 8080 on data/db%s (calico-p4ctl trace: a dry run through the live tables)\n", bold, reset)
	if err != nil {
		fmt.Printf("  trace failed: %v\n%s", err, out)
		return
	}
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		fmt.Printf("  %s\n", l)
	}
}

// metrics prints where the manager's metrics are and a few of them.
func metrics(ctx context.Context, c *harness.Cluster) error {
	m, err := c.Manager.Scrape(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("\n%sMetrics%s: http://%s/metrics inside the node namespace — while it runs (make demo DEMO_HOLD=1):\n"+
		"  ip netns exec %s curl -s http://%s/metrics | grep ^calico_p4_\n", bold, reset, c.Manager.MetricsAddr,
		c.Node.NetNS, c.Manager.MetricsAddr)
	for _, x := range []struct{ name, label, value string }{
		{"calico_p4_sessions_total", "", ""},
		{"calico_p4_felix_applied_sequence_number", "", ""},
		{"calico_p4_apply_batches_total", "result", "ok"},
		{"calico_p4_apply_batches_total", "result", "error"},
		{"calico_p4_programmer_installed_entries", "", ""},
		{"calico_p4_softswitch_write_updates_total", "", ""},
		{"calico_p4_ready", "", ""},
	} {
		var v float64
		label := ""
		if x.label != "" {
			v = m.Sum(x.name, x.label, x.value)
			label = fmt.Sprintf("{%s=%q}", x.label, x.value)
		} else {
			v = m.Sum(x.name)
		}
		fmt.Printf("  %-58s %v\n", x.name+label, v)
	}
	fmt.Printf("  %-58s %v\n", "calico_p4_pipeline_packets_total", m.Sum("calico_p4_pipeline_packets_total"))
	results := m.ByLabel("calico_p4_pipeline_results_total", "result")
	var keys []string
	for k := range results {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("  %-58s %v\n", fmt.Sprintf("calico_p4_pipeline_results_total{result=%q}", k), results[k])
	}
	return nil
}
