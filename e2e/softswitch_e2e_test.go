//go:build e2e

package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/calico-p4/calico-p4/e2e/harness"
	"github.com/calico-p4/calico-p4/e2e/scenario"
)

var bins harness.Binaries

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		os.Exit(m.Run()) // every test skips
	}
	b, cleanup, err := harness.FindBinaries()
	if err != nil {
		println("e2e: " + err.Error())
		os.Exit(1)
	}
	bins = b
	code := m.Run()
	cleanup()
	os.Exit(code)
}

const conformanceDir = "testdata/conformance"

func loadBase(t *testing.T) *scenario.Scenario {
	t.Helper()
	s, err := scenario.Load(filepath.Join(conformanceDir, "base.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// conformanceCases loads every case file (all but base.yaml) on top of the base cluster.
func conformanceCases(t *testing.T, base *scenario.Scenario) []*scenario.Scenario {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(conformanceDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var out []*scenario.Scenario
	for _, f := range files {
		if filepath.Base(f) == "base.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := scenario.ParseWithBase(base, b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, s)
	}
	return out
}

func startCluster(t *testing.T, cfg harness.Config) *harness.Cluster {
	t.Helper()
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg.Bin = bins
	c, err := harness.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("process logs:\n%s", c.Logs())
			hold(t, c)
		}
		if err := c.Close(); err != nil {
			t.Errorf("close cluster: %v", err)
		}
	})
	return c
}

// Every conformance case on one shared node: each case is a new Felix session (driver restart with the
// case's stream), each checked step's observed matrix must equal the expected one.
func TestConformance(t *testing.T) {
	needRoot(t)
	base := loadBase(t)
	cases := conformanceCases(t, base)
	c := startCluster(t, harness.Config{Scenario: base, HostPort: true, External: true})
	for _, s := range cases {
		t.Run(s.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			rs, err := c.RunAll(ctx, s)
			for _, r := range rs {
				if r.Mismatches() > 0 {
					t.Errorf("%s", r)
				} else {
					t.Logf("%s: %d probes agree", r.Step, r.Probes())
				}
				for _, sk := range r.Skipped {
					t.Logf("%s: skipped %s", r.Step, sk)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// hold keeps a failed cluster alive for inspection when CP4_E2E_HOLD is set (a duration, e.g. 10m).
func hold(t *testing.T, c *harness.Cluster) {
	d, err := time.ParseDuration(os.Getenv("CP4_E2E_HOLD"))
	if err != nil || d <= 0 {
		return
	}
	t.Logf("holding the cluster for %v: node netns %s, manager metrics/ctl %s (inside it), P4Runtime %s",
		d, c.Node.Path(), c.Manager.MetricsAddr, c.Manager.P4RT)
	time.Sleep(d)
}
