// Package gctune applies the Go garbage collector settings of the long-lived binaries (calico-p4-manager,
// calico-p4-softswitch): their --gc-percent and --memory-limit flags.
//
// Why: the manager holds its desired state, the programmer's installed state and (with the embedded
// target) the softswitch's tables in one heap, ≈ 130–200 MiB at 100k entries. Every GC cycle marks all of
// it, ≈ 0.3–0.5 s of one core on a shared 2-vCPU node, and a P4Runtime sync that runs during marking is
// slowed by assists and by the mark workers taking CPU (docs/benchmarks.md). With Go's default GOGC=100 a
// cycle starts after the program allocates as much as the live heap; a higher percentage makes cycles
// proportionally rarer at the cost of a larger peak heap (≈ (1 + percent/100) × live). The memory limit
// (default: 90% of the container's cgroup memory limit, when there is one) keeps that peak below what the
// node allows: near the limit the runtime collects as often as it needs to.
//
// It owns nothing else: no I/O beyond reading the cgroup limit, no global state beyond the runtime's.
// The GOGC and GOMEMLIMIT environment variables win over the flags' defaults (not over flags given
// explicitly), so an operator can still tune a deployed binary without changing its arguments.
package gctune
