package matrix

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/calico-p4/calico-p4/e2e/probe"
)

func TestParseCase(t *testing.T) {
	cases := []struct {
		in   string
		want Case
		err  bool
	}{
		{in: "tcp/80", want: Case{probe.TCP, 80, 4}},
		{in: "TCP/80/v6", want: Case{probe.TCP, 80, 6}},
		{in: "udp/53/4", want: Case{probe.UDP, 53, 4}},
		{in: "sctp/9999", want: Case{probe.SCTP, 9999, 4}},
		{in: "icmp", want: Case{probe.ICMP, 0, 4}},
		{in: "icmpv6", want: Case{probe.ICMP, 0, 6}},
		{in: "icmp/v6", want: Case{probe.ICMP, 0, 6}},
		{in: "tcp", err: true},
		{in: "tcp/0", err: true},
		{in: "tcp/70000", err: true},
		{in: "tcp/80/v5", err: true},
		{in: "gre/1", err: true},
		{in: "tcp/80/v4/x", err: true},
	}
	for _, c := range cases {
		got, err := ParseCase(c.in)
		if (err != nil) != c.err {
			t.Errorf("ParseCase(%q) error = %v, want error %v", c.in, err, c.err)
			continue
		}
		if err == nil && got != c.want {
			t.Errorf("ParseCase(%q) = %+v, want %+v", c.in, got, c.want)
		}
		if err == nil {
			if back, _ := ParseCase(got.String()); back != got {
				t.Errorf("round trip of %q via %q gave %+v", c.in, got.String(), back)
			}
		}
	}
}

func peers() []Peer {
	return []Peer{
		{Name: "x/a", IPv4: netip.MustParseAddr("10.0.0.1"), IPv6: netip.MustParseAddr("fd00::1")},
		{Name: "x/b", IPv4: netip.MustParseAddr("10.0.0.2")},
		{Name: "y/a", IPv4: netip.MustParseAddr("10.0.0.3"), IPv6: netip.MustParseAddr("fd00::3")},
	}
}

func TestTablesSkipSelfAndMissingFamilies(t *testing.T) {
	v6 := NewTable(Case{probe.TCP, 80, 6}, peers(), true)
	if _, ok := v6.Get("x/a", "x/b"); ok {
		t.Error("x/b has no IPv6 address but has a v6 cell")
	}
	if _, ok := v6.Get("x/a", "x/a"); ok {
		t.Error("self pair present")
	}
	if v, ok := v6.Get("x/a", "y/a"); !ok || !v {
		t.Error("x/a -> y/a v6 missing or false")
	}
}

func TestCompareAndReportMarkMismatches(t *testing.T) {
	c := Case{probe.TCP, 80, 4}
	exp := NewTable(c, peers(), true)
	exp.Set("y/a", "x/a", false)
	obs := &Observation{Table: NewTable(c, peers(), true), Results: map[string]map[string]probe.Result{}}
	obs.Table.Set("x/a", "x/b", false) // expected reachable, observed blocked
	mm := Compare(exp, obs)
	if len(mm) != 2 {
		t.Fatalf("mismatches %v, want 2", mm)
	}
	var buf bytes.Buffer
	Report(&buf, exp, obs)
	out := buf.String()
	for _, want := range []string{"Expected tcp/80/v4:", "Observed tcp/80/v4:", "Comparison tcp/80/v4 (X = mismatch):",
		"mismatch x/a -> x/b: expected reachable, observed blocked", "mismatch y/a -> x/a: expected blocked, observed reachable"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// The comparison row of x/a: self "-", x/b mismatch "X", y/a agreement ".".
	lines := strings.Split(out, "\n")
	var cmpRow string
	inCmp := false
	for _, l := range lines {
		if strings.HasPrefix(l, "Comparison") {
			inCmp = true
		}
		if inCmp && strings.HasPrefix(l, "x/a") {
			cmpRow = l
			break
		}
	}
	if f := strings.Fields(cmpRow); len(f) != 4 || f[1] != "-" || f[2] != "X" || f[3] != "." {
		t.Errorf("comparison row for x/a = %q, want \"x/a - X .\"", cmpRow)
	}
	if len(Compare(exp, &Observation{Table: exp})) != 0 {
		t.Error("a table compared with itself has mismatches")
	}
}
