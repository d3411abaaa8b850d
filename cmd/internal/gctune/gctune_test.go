package gctune

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/spf13/pflag"
)

func TestParseBytesReadsGOMEMLIMITSizes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "1073741824", want: 1 << 30},
		{in: "1GiB", want: 1 << 30},
		{in: "800MiB", want: 800 << 20},
		{in: "64KiB", want: 64 << 10},
		{in: "10B", want: 10},
		{in: "0", bad: true},
		{in: "-1GiB", bad: true},
		{in: "1GB", bad: true},
		{in: "lots", bad: true},
	} {
		got, err := ParseBytes(c.in)
		if c.bad != (err != nil) || (!c.bad && got != c.want) {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d (error: %v)", c.in, got, err, c.want, c.bad)
		}
	}
}

func TestAutoMemoryLimitIsNinetyPercentOfTheCgroupLimit(t *testing.T) {
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	saved := cgroupLimits
	t.Cleanup(func() { cgroupLimits = saved })
	for _, c := range []struct {
		name, content string
		want          int64
	}{
		{"v2", "1073741824\n", 1073741824 / 10 * 9},
		{"unlimited", "max\n", 0},
		{"v1-unlimited", "9223372036854771712\n", 0},
	} {
		cgroupLimits = []string{filepath.Join(dir, "missing"), write(c.name, c.content)}
		f := Flags{MemoryLimit: "auto"}
		if got, err := f.limit(); err != nil || got != c.want {
			t.Errorf("%s: limit %d, %v; want %d", c.name, got, err, c.want)
		}
	}
}

func TestApplySetsTheRuntimeUnlessTheEnvironmentDoes(t *testing.T) {
	prevPct := debug.SetGCPercent(100)
	prevLim := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(prevPct); debug.SetMemoryLimit(prevLim) })

	parse := func(args ...string) *Flags {
		f := &Flags{}
		fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
		f.AddFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return f
	}
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	t.Setenv("GOMEMLIMIT", "")
	os.Unsetenv("GOMEMLIMIT")
	a, err := parse("--gc-percent", "300", "--memory-limit", "512MiB").Apply()
	if err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != 300 || a.GCPercent != 300 {
		t.Errorf("GC percent %d (applied %d), want 300", got, a.GCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != 512<<20 || a.MemoryLimit != 512<<20 {
		t.Errorf("memory limit %d (applied %d), want 512MiB", got, a.MemoryLimit)
	}

	// The environment wins over the defaults, not over explicit flags.
	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetGCPercent(150)
	if a, err = parse().Apply(); err != nil || a.GCPercent != -1 || a.MemoryLimit != 0 {
		t.Errorf("defaults applied over the environment: %+v, %v", a, err)
	}
	if got := debug.SetGCPercent(150); got != 150 {
		t.Errorf("GC percent %d, want the environment's 150", got)
	}
	if a, err = parse("--gc-percent", "50").Apply(); err != nil || a.GCPercent != 50 {
		t.Errorf("explicit flag not applied: %+v, %v", a, err)
	}
	if _, err := parse("--memory-limit", "huge").Apply(); err == nil {
		t.Error("a bad --memory-limit was accepted")
	}
}
