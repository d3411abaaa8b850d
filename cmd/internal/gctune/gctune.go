package gctune

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// DefaultGCPercent is the binaries' default GC percentage (Go's is 100); see the package doc.
const DefaultGCPercent = 200

// Flags are the GC settings of a binary.
type Flags struct {
	GCPercent   int
	MemoryLimit string

	fs *pflag.FlagSet
}

// AddFlags registers --gc-percent and --memory-limit on fs.
func (f *Flags) AddFlags(fs *pflag.FlagSet) {
	f.fs = fs
	fs.IntVar(&f.GCPercent, "gc-percent", DefaultGCPercent,
		"Go GC target percentage (GOGC): a cycle starts when the heap has grown by this much since the last one; "+
			"higher: fewer cycles (less CPU and less latency from marking a large live heap), larger peak heap; "+
			"negative: collect only at --memory-limit. The GOGC environment variable wins over the default")
	fs.StringVar(&f.MemoryLimit, "memory-limit", "auto",
		"Go soft memory limit (GOMEMLIMIT), e.g. 1GiB or 800MiB; auto: 90% of the cgroup memory limit when there is "+
			"one; none: no limit. The GOMEMLIMIT environment variable wins over the default")
}

// Applied says what Apply set (-1 / 0: left as it was).
type Applied struct {
	GCPercent   int
	MemoryLimit int64
	Source      string // "flags", "environment" or a mix, for the log line
}

// Apply sets the GC percentage and memory limit from the flags, unless the environment sets them and the
// flag was not given.
func (f *Flags) Apply() (Applied, error) {
	a := Applied{GCPercent: -1}
	var src []string
	if _, env := os.LookupEnv("GOGC"); env && !f.changed("gc-percent") {
		src = append(src, "GOGC from the environment")
	} else {
		debug.SetGCPercent(f.GCPercent)
		a.GCPercent = f.GCPercent
		src = append(src, "--gc-percent")
	}
	if _, env := os.LookupEnv("GOMEMLIMIT"); env && !f.changed("memory-limit") {
		src = append(src, "GOMEMLIMIT from the environment")
	} else {
		lim, err := f.limit()
		if err != nil {
			return a, err
		}
		if lim > 0 {
			debug.SetMemoryLimit(lim)
			a.MemoryLimit = lim
			src = append(src, "--memory-limit")
		}
	}
	a.Source = strings.Join(src, ", ")
	return a, nil
}

func (f *Flags) changed(name string) bool {
	return f.fs != nil && f.fs.Changed(name)
}

// limit resolves --memory-limit to bytes (0: no limit).
func (f *Flags) limit() (int64, error) {
	switch v := strings.TrimSpace(f.MemoryLimit); v {
	case "", "none":
		return 0, nil
	case "auto":
		if c := cgroupLimit(); c > 0 {
			return c / 10 * 9, nil
		}
		return 0, nil
	default:
		n, err := ParseBytes(v)
		if err != nil {
			return 0, fmt.Errorf("--memory-limit: %w", err)
		}
		return n, nil
	}
}

// ParseBytes reads a byte size: a number with an optional B, KiB, MiB, GiB or TiB suffix (as GOMEMLIMIT).
func ParseBytes(s string) (int64, error) {
	mult := int64(1)
	num := s
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = n, u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a positive size (e.g. 1GiB, 800MiB, 1073741824)", s)
	}
	return n * mult, nil
}

// cgroupLimits are where the container's memory limit is found (cgroup v2, then v1).
var cgroupLimits = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// cgroupLimit returns the cgroup memory limit in bytes, or 0 when there is none.
func cgroupLimit() int64 {
	for _, p := range cgroupLimits {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= 1<<62 { // cgroup v1 reports "no limit" as a huge number
			return 0
		}
		return n
	}
	return 0
}
