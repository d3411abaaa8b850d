package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/calico-p4/calico-p4/e2e/matrix"
	"github.com/calico-p4/calico-p4/e2e/probe"
	"github.com/calico-p4/calico-p4/e2e/scenario"
)

func parseMAC(s string) (net.HardwareAddr, error) { return net.ParseMAC(s) }

// TableResult is one probed case: expected and observed.
type TableResult struct {
	Expected   *matrix.Table
	Observed   *matrix.Observation
	Mismatches []matrix.Mismatch
}

// StepResult is the outcome of probing one step.
type StepResult struct {
	Scenario string
	Step     string // "" for the snapshot
	Tables   []TableResult
	Skipped  []string // cases not probed, with the reason
}

// Mismatches counts the mismatching pairs of all tables.
func (r *StepResult) Mismatches() int {
	n := 0
	for _, t := range r.Tables {
		n += len(t.Mismatches)
	}
	return n
}

// Probes counts the pairs probed.
func (r *StepResult) Probes() int {
	n := 0
	for _, t := range r.Tables {
		for _, row := range t.Observed.Table.Cells {
			n += len(row)
		}
	}
	return n
}

// Write prints the step's matrices: every table when verbose, else only mismatching ones (with
// expected, observed, comparison and each failing probe's error).
func (r *StepResult) Write(w io.Writer, verbose bool) {
	step := r.Step
	if step == "" {
		step = "snapshot (InSync)"
	}
	fmt.Fprintf(w, "=== %s — %s: %d probes, %d mismatches\n", r.Scenario, step, r.Probes(), r.Mismatches())
	for _, t := range r.Tables {
		if !verbose && len(t.Mismatches) == 0 {
			continue
		}
		matrix.Report(w, t.Expected, t.Observed)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "  skipped %s\n", s)
	}
}

// String is Write(verbose=false).
func (r *StepResult) String() string {
	var b bytes.Buffer
	r.Write(&b, false)
	return b.String()
}

// Check probes the current step of the loaded stream against its expectations (the scenario's Expect for
// the snapshot, the step's Expect after a step). Every pair of every case is probed at once.
func (c *Cluster) Check(ctx context.Context) (*StepResult, error) {
	s := c.Felix.Stream().Scenario
	step := c.Felix.Step()
	res := &StepResult{Scenario: s.Name}
	if step > 0 {
		res.Step = s.Steps[step-1].Title
	}
	return res, c.check(ctx, res, step, s.Expectations(step))
}

// CheckExpectations probes the current step against the given expectations.
func (c *Cluster) CheckExpectations(ctx context.Context, exps []scenario.Expectation) (*StepResult, error) {
	s := c.Felix.Stream().Scenario
	res := &StepResult{Scenario: s.Name}
	if st := c.Felix.Step(); st > 0 {
		res.Step = s.Steps[st-1].Title
	}
	return res, c.check(ctx, res, c.Felix.Step(), exps)
}

func (c *Cluster) check(ctx context.Context, res *StepResult, step int, exps []scenario.Expectation) error {
	all, special, err := c.Peers(step)
	if err != nil {
		return err
	}
	var tables []*matrix.Table
	var peersOf [][]matrix.Peer
	for _, e := range exps {
		var peers []matrix.Peer
		for i, p := range all {
			if e.Selects(p.Name, special[i]) {
				peers = append(peers, p)
			}
		}
		ts, err := e.Tables(peers)
		if err != nil {
			return fmt.Errorf("scenario %s step %d: %w", res.Scenario, step, err)
		}
		for _, t := range ts {
			if t.Case.Proto == probe.SCTP && c.sctp != "" {
				res.Skipped = append(res.Skipped, fmt.Sprintf("%s: %s", t.Case, c.sctp))
				continue
			}
			if !c.listens(t.Case) {
				return fmt.Errorf("scenario %s: case %s: the probe servers do not listen on that port", res.Scenario, t.Case)
			}
			tables = append(tables, t)
			peersOf = append(peersOf, peers)
		}
	}
	res.Tables = make([]TableResult, len(tables))
	var wg sync.WaitGroup
	for i, t := range tables {
		wg.Add(1)
		go func() {
			defer wg.Done()
			obs := matrix.Observe(ctx, t.Case, peersOf[i], c.Config.Probe)
			c.reprobe(ctx, t, obs, peersOf[i])
			res.Tables[i] = TableResult{Expected: t, Observed: obs, Mismatches: matrix.Compare(t, obs)}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// reprobe gives pairs that were expected reachable but failed a second, slower chance (a loaded machine
// can delay a first packet past the short timeout). A pair expected blocked that answered is never
// re-probed: an answer is proof.
func (c *Cluster) reprobe(ctx context.Context, want *matrix.Table, obs *matrix.Observation, peers []matrix.Peer) {
	byName := map[string]matrix.Peer{}
	for _, p := range peers {
		byName[p.Name] = p
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, m := range matrix.Compare(want, obs) {
		if !m.Expected || m.Observed {
			continue
		}
		from, to := byName[m.From], byName[m.To]
		if from.Name == "" || to.Name == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := to.IPv4
			if want.Case.Family == 6 {
				dst = to.IPv6
			}
			src := from.IPv4
			if want.Case.Family == 6 {
				src = from.IPv6
			}
			req := probe.Request{FromNetNS: from.NetNS, To: dst, Proto: want.Case.Proto, Port: want.Case.Port,
				Timeout: 3 * time.Second, Attempts: 2, Expect: to.Name}
			c.Config.Probe.Sources.Fill(&req, src)
			r := probe.Do(ctx, req)
			mu.Lock()
			defer mu.Unlock()
			obs.Table.Set(from.Name, to.Name, r.OK)
			obs.Results[from.Name][to.Name] = r
		}()
	}
	wg.Wait()
}

func (c *Cluster) listens(cs matrix.Case) bool {
	var ports []int
	switch cs.Proto {
	case probe.ICMP:
		return true
	case probe.TCP:
		ports = c.Config.Listen.TCP
	case probe.UDP:
		ports = c.Config.Listen.UDP
	case probe.SCTP:
		ports = c.Config.Listen.SCTP
	}
	for _, p := range ports {
		if p == cs.Port {
			return true
		}
	}
	return false
}

// RunAll loads a scenario (a new Felix session), checks the snapshot and every step; it returns each
// checked step's result (steps without expectations are applied, not probed).
func (c *Cluster) RunAll(ctx context.Context, s *scenario.Scenario) ([]*StepResult, error) {
	if _, err := c.Load(ctx, s); err != nil {
		return nil, err
	}
	var out []*StepResult
	for i := 0; ; i++ {
		if i > 0 {
			if _, err := c.NextStep(ctx); err != nil {
				return out, err
			}
		}
		if len(s.Expectations(i)) > 0 {
			r, err := c.Check(ctx)
			if err != nil {
				return out, err
			}
			out = append(out, r)
		}
		if i == len(s.Steps) {
			return out, nil
		}
	}
}

// Summary is a one-line summary of step results.
func Summary(rs []*StepResult) string {
	var probes, mism int
	var bad []string
	for _, r := range rs {
		probes += r.Probes()
		mism += r.Mismatches()
		if r.Mismatches() > 0 {
			bad = append(bad, r.Step)
		}
	}
	s := fmt.Sprintf("%d steps checked, %d probes, %d mismatches", len(rs), probes, mism)
	if len(bad) > 0 {
		s += " (in: " + strings.Join(bad, "; ") + ")"
	}
	return s
}

// Trace asks a node's embedded softswitch (the manager's ctl API) for a dry run of a TCP SYN from a pod to
// dst:port, through calico-p4ctl; it returns the result.
func (c *Cluster) Trace(ctx context.Context, node, fromPod string, dst string, port int) (*TraceResult, error) {
	r := c.run(node)
	if r == nil {
		return nil, fmt.Errorf("no node %s", node)
	}
	p := c.Topo.Pod(fromPod)
	if p == nil {
		return nil, fmt.Errorf("no pod %s", fromPod)
	}
	out, err := RunIn(ctx, r.Node.Path(), c.Config.Bin.Path(CtlBin), "--ctl", r.Manager.MetricsAddr, "trace", "--json",
		"--in-port", p.HostIface, "--src", p.Spec.IPv4.String(), "--dst", dst, "--proto", "tcp",
		"--dport", strconv.Itoa(port), "--src-mac", p.MAC.String())
	if err != nil {
		return nil, fmt.Errorf("calico-p4ctl trace: %w\n%s", err, out)
	}
	var tr TraceResult
	if err := json.Unmarshal(out, &tr); err != nil {
		return nil, fmt.Errorf("calico-p4ctl trace output: %w\n%s", err, out)
	}
	return &tr, nil
}

// TraceResult is calico-p4ctl's JSON trace.
type TraceResult struct {
	Text       string `json:"text"`
	Fate       string `json:"fate"`
	OutPort    uint32 `json:"out_port"`
	DropReason string `json:"drop_reason"`
	OutputHex  string `json:"output_hex"`
}
