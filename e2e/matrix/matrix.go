package matrix

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/calico-p4/calico-p4/e2e/probe"
)

// Case is one column of probing: a protocol, a port (0 for ICMP) and an address family (4 or 6).
type Case struct {
	Proto  probe.Protocol
	Port   int
	Family int
}

// String renders a case as "tcp/80/v4", "icmp/v6" (ICMPv6), "udp/53/v6".
func (c Case) String() string {
	if c.Proto == probe.ICMP {
		return fmt.Sprintf("icmp/v%d", c.Family)
	}
	return fmt.Sprintf("%s/%d/v%d", c.Proto, c.Port, c.Family)
}

// ParseCase parses "tcp/80", "tcp/80/v6", "icmp", "icmpv6", "icmp/v6", "udp/53/v4". The family defaults to 4
// ("icmpv6" implies 6).
func ParseCase(s string) (Case, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	p, err := probe.ParseProtocol(parts[0])
	if err != nil {
		return Case{}, err
	}
	c := Case{Proto: p, Family: 4}
	if parts[0] == "icmpv6" || parts[0] == "icmp6" {
		c.Family = 6
	}
	rest := parts[1:]
	if p != probe.ICMP {
		if len(rest) == 0 {
			return Case{}, fmt.Errorf("case %q: %s needs a port", s, p)
		}
		port, err := strconv.Atoi(rest[0])
		if err != nil || port < 1 || port > 65535 {
			return Case{}, fmt.Errorf("case %q: bad port", s)
		}
		c.Port = port
		rest = rest[1:]
	}
	if len(rest) > 0 {
		switch rest[0] {
		case "v4", "4":
			c.Family = 4
		case "v6", "6":
			c.Family = 6
		default:
			return Case{}, fmt.Errorf("case %q: bad family %q", s, rest[0])
		}
		rest = rest[1:]
	}
	if len(rest) > 0 {
		return Case{}, fmt.Errorf("case %q: trailing %q", s, strings.Join(rest, "/"))
	}
	return c, nil
}

// Peer is a pod that probes and is probed.
type Peer struct {
	Name       string // e.g. "x/a"
	NetNS      string // namespace path
	IPv4, IPv6 netip.Addr
}

func (p Peer) addr(family int) netip.Addr {
	if family == 6 {
		return p.IPv6
	}
	return p.IPv4
}

// Table is a truth table over ordered pairs: Cells[from][to] = reachable. Pairs that are not applicable
// (self, or a peer without an address of the family) are absent.
type Table struct {
	Case  Case
	Peers []string
	Cells map[string]map[string]bool
}

// NewTable makes a table over peers with every applicable pair set to def.
func NewTable(c Case, peers []Peer, def bool) *Table {
	t := &Table{Case: c, Cells: map[string]map[string]bool{}}
	for _, p := range peers {
		t.Peers = append(t.Peers, p.Name)
	}
	for _, from := range peers {
		for _, to := range peers {
			if applicable(c, from, to) {
				t.Set(from.Name, to.Name, def)
			}
		}
	}
	return t
}

func applicable(c Case, from, to Peer) bool {
	return from.Name != to.Name && from.addr(c.Family).IsValid() && to.addr(c.Family).IsValid()
}

// Set sets one cell.
func (t *Table) Set(from, to string, v bool) {
	if t.Cells[from] == nil {
		t.Cells[from] = map[string]bool{}
	}
	t.Cells[from][to] = v
}

// Get returns a cell and whether it exists.
func (t *Table) Get(from, to string) (v, ok bool) {
	v, ok = t.Cells[from][to]
	return v, ok
}

// Mismatch is a pair whose observation differs from the expectation.
type Mismatch struct {
	From, To           string
	Expected, Observed bool
	Detail             string
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%s -> %s: expected %s, observed %s (%s)", m.From, m.To, word(m.Expected), word(m.Observed), m.Detail)
}

func word(b bool) string {
	if b {
		return "reachable"
	}
	return "blocked"
}

// Options tune a run.
type Options struct {
	Timeout     time.Duration // per attempt; default 1s
	Attempts    int           // default 2
	Parallelism int           // default 16
	// Sources, if set, gives every probe a source port / echo identifier of its own (see
	// probe.SourcePorts), so that no probe matches connection tracking left by an earlier one.
	Sources *probe.SourcePorts
}

// Observation is the observed table and each probe's result.
type Observation struct {
	Table   *Table
	Results map[string]map[string]probe.Result
}

// Observe probes every applicable pair for case c. Servers must already listen on c's port in every peer.
// Probes expect the destination's name as the responder, so a misrouted reply counts as not reachable.
func Observe(ctx context.Context, c Case, peers []Peer, opt Options) *Observation {
	if opt.Parallelism <= 0 {
		opt.Parallelism = 16
	}
	obs := &Observation{Table: NewTable(c, peers, false), Results: map[string]map[string]probe.Result{}}
	type job struct{ from, to Peer }
	jobs := make(chan job)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < opt.Parallelism; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				req := probe.Request{FromNetNS: j.from.NetNS, To: j.to.addr(c.Family), Proto: c.Proto,
					Port: c.Port, Timeout: opt.Timeout, Attempts: opt.Attempts, Expect: j.to.Name}
				opt.Sources.Fill(&req, j.from.addr(c.Family))
				res := probe.Do(ctx, req)
				mu.Lock()
				obs.Table.Set(j.from.Name, j.to.Name, res.OK)
				if obs.Results[j.from.Name] == nil {
					obs.Results[j.from.Name] = map[string]probe.Result{}
				}
				obs.Results[j.from.Name][j.to.Name] = res
				mu.Unlock()
			}
		}()
	}
	for _, from := range peers {
		for _, to := range peers {
			if applicable(c, from, to) {
				jobs <- job{from, to}
			}
		}
	}
	close(jobs)
	wg.Wait()
	return obs
}

// Compare lists the pairs where observed differs from expected (pairs missing from either are mismatches too).
func Compare(expected *Table, obs *Observation) []Mismatch {
	var out []Mismatch
	seen := map[[2]string]bool{}
	for from, row := range expected.Cells {
		for to, want := range row {
			seen[[2]string{from, to}] = true
			got, ok := obs.Table.Get(from, to)
			if !ok {
				out = append(out, Mismatch{From: from, To: to, Expected: want, Detail: "not probed"})
				continue
			}
			if got != want {
				out = append(out, Mismatch{From: from, To: to, Expected: want, Observed: got, Detail: obs.Results[from][to].String()})
			}
		}
	}
	for from, row := range obs.Table.Cells {
		for to, got := range row {
			if !seen[[2]string{from, to}] {
				out = append(out, Mismatch{From: from, To: to, Observed: got, Detail: "no expectation"})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		return out[i].To < out[j].To
	})
	return out
}

// Write prints a table the way the Kubernetes netpol e2e does: rows are sources, columns destinations,
// "." reachable, "X" blocked, "-" not applicable.
func (t *Table) Write(w io.Writer, title string) {
	t.write(w, title, func(from, to string) string {
		v, ok := t.Get(from, to)
		switch {
		case !ok:
			return "-"
		case v:
			return "."
		default:
			return "X"
		}
	})
}

func (t *Table) write(w io.Writer, title string, cell func(from, to string) string) {
	fmt.Fprintf(w, "%s\n", title)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprint(tw, "-\t")
	for _, to := range t.Peers {
		fmt.Fprintf(tw, "%s\t", to)
	}
	fmt.Fprintln(tw)
	for _, from := range t.Peers {
		fmt.Fprintf(tw, "%s\t", from)
		for _, to := range t.Peers {
			fmt.Fprintf(tw, "%s\t", cell(from, to))
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
}

// Report prints expected, observed and the comparison ("." agree, "X" mismatch) for one case, then the
// mismatches with each failing probe's error.
func Report(w io.Writer, expected *Table, obs *Observation) []Mismatch {
	c := expected.Case
	expected.Write(w, fmt.Sprintf("Expected %s:", c))
	obs.Table.Write(w, fmt.Sprintf("Observed %s:", c))
	mm := Compare(expected, obs)
	bad := map[[2]string]bool{}
	for _, m := range mm {
		bad[[2]string{m.From, m.To}] = true
	}
	expected.write(w, fmt.Sprintf("Comparison %s (X = mismatch):", c), func(from, to string) string {
		if bad[[2]string{from, to}] {
			return "X"
		}
		if _, ok := expected.Get(from, to); !ok {
			return "-"
		}
		return "."
	})
	for _, m := range mm {
		fmt.Fprintf(w, "  mismatch %s\n", m)
	}
	return mm
}
