package programmer

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// benchSet builds n entries: 80% LPM routes, 15% ternary/range ACL entries,
// and services (a member per backend, a group per service of 4 backends, a
// table entry per service) for the rest.
func benchSet(b *testing.B, n int) *entry.Set {
	s := mustSet(b)
	nRoutes, nACL := n*80/100, n*15/100
	for i := 0; i < nRoutes; i++ {
		s.Put(route(uint64(i%4), uint64(0x0a000000+i<<8), 24, uint64(i%64)))
	}
	for i := 0; i < nACL; i++ {
		s.Put(entry.Table("ingress.acl", int32(1+i), entry.Act("ingress.allow"),
			entry.Ternary("hdr.ipv4.protocol", u(uint64(i%256)), u(0xff)), entry.Range("meta.dst_port", u(uint64(i%1000)), u(uint64(i%1000+10)))))
	}
	for svc := 0; s.Len() < n; svc++ {
		g := fmt.Sprintf("svc/ns/s%d/tcp/80", svc)
		var ms []entry.GroupMember
		for be := 0; be < 4; be++ {
			name := fmt.Sprintf("%s/10.1.%d.%d", g, svc/256, be)
			s.Put(backend(name, uint64(0x0a010000+svc*4+be)))
			ms = append(ms, entry.W(name, 1))
		}
		s.Put(entry.Group("ingress.backends", g, ms...))
		s.Put(service(uint64(0x0a600000+svc), g))
	}
	return s
}

func benchProgrammer(b *testing.B, mode WriteMode) *Programmer {
	return benchProgrammerMode(b, startTarget(b, "").addr, 1, mode)
}

func benchProgrammerOn(b *testing.B, addr string, election uint64) *Programmer {
	return benchProgrammerMode(b, addr, election, WriteModeAuto)
}

// benchModes are the write modes the Sync benchmarks run in: atomic (the
// embedded target's default) and ordered (stage by stage, as for P4-DPDK),
// both with the test program's table order.
var benchModes = []WriteMode{WriteModeAtomic, WriteModeOrdered}

func benchProgrammerMode(b *testing.B, addr string, election uint64, mode WriteMode) *Programmer {
	p, err := Open(testCtx(b), Options{Address: addr, ElectionID: p4rt.Uint128{Low: election}, P4InfoPath: testP4Info,
		TableOrder: testOrder, WriteMode: mode, DeleteGrace: -1, Logger: zap.NewNop(), Registry: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	if err := p.WaitReady(testCtx(b)); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkSyncFull100k: a full Sync of 100k entries into an empty embedded
// target over gRPC (unix socket), end to end: diff, encode, batched writes,
// target validation and apply.
func BenchmarkSyncFull100k(b *testing.B) {
	for _, mode := range benchModes {
		b.Run("mode="+string(mode), func(b *testing.B) { benchSyncFull(b, mode) })
	}
}

func benchSyncFull(b *testing.B, mode WriteMode) {
	const n = 100_000
	p := benchProgrammer(b, mode)
	full := benchSet(b, n)
	empty := mustSet(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := p.Sync(ctx, empty); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := p.Sync(ctx, full)
		if err != nil {
			b.Fatal(err)
		}
		if res.Inserted != full.Len() {
			b.Fatalf("inserted %d", res.Inserted)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkSyncIncremental1Percent: 100k entries installed; each iteration
// changes 1% of them (1000 route actions) in the same Set and Syncs. Reports
// the latency distribution of the incremental Sync.
func BenchmarkSyncIncremental1Percent(b *testing.B) {
	for _, mode := range benchModes {
		b.Run("mode="+string(mode), func(b *testing.B) { benchSyncIncremental(b, mode) })
	}
}

func benchSyncIncremental(b *testing.B, mode WriteMode) {
	const n, change = 100_000, 1000
	p := benchProgrammer(b, mode)
	s := benchSet(b, n)
	ctx := context.Background()
	if _, err := p.Sync(ctx, s); err != nil {
		b.Fatal(err)
	}
	live := measureLiveHeap()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		base := (i * change) % (n * 80 / 100)
		for j := 0; j < change; j++ {
			k := (base + j) % (n * 80 / 100)
			// A new next-hop MAC every iteration: always a real change. Built canonical (fields and
			// params sorted by name), as the translator builds its entries: Put then has nothing to copy.
			s.Put(entry.Table("ingress.routes", 0, entry.Act("ingress.set_nexthop", entry.P("dmac", u(uint64(0x1000+i))), entry.P("port", u(uint64(k%64)))),
				entry.LPM("hdr.ipv4.dst_addr", u(uint64(0x0a000000+k<<8)), 24), entry.Exact("meta.vrf", u(uint64(k%4)))))
		}
		b.StartTimer()
		start := time.Now()
		res, err := p.Sync(ctx, s)
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if res.Modified != change || res.Writes != 1 {
			b.Fatalf("incremental Sync %d: %+v", i, res)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
	live.report(b)
}

// liveHeap is what a GC cycle has to mark once a benchmark's setup is done
// (desired set, programmer state and the in-process target's tables): the
// live heap, its objects, and the shortest of three forced collections. The
// incremental p99 is bounded by how long a cycle's mark phase overlaps syncs,
// and that grows with these figures, not with the garbage of one sync.
type liveHeap struct {
	bytes, objects uint64
	gc             time.Duration
}

func measureLiveHeap() liveHeap {
	runtime.GC()
	var best time.Duration
	for range 3 {
		start := time.Now()
		runtime.GC()
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return liveHeap{bytes: ms.HeapAlloc, objects: ms.HeapObjects, gc: best}
}

// report adds the figures to the benchmark's (after ResetTimer, which drops
// reported metrics).
func (h liveHeap) report(b *testing.B) {
	b.ReportMetric(float64(h.bytes)/(1<<20), "live-MB")
	b.ReportMetric(float64(h.objects)/1000, "live-kobjs")
	b.ReportMetric(float64(h.gc.Microseconds())/1000, "gc-ms")
}

// BenchmarkReconcile100k: a manager restart against a target holding 100k
// entries, from dialing to in sync: arbitration, pipeline check, read back
// everything, match it to the desired state, write nothing.
func BenchmarkReconcile100k(b *testing.B) {
	const n = 100_000
	rt := startTarget(b, "")
	first := benchProgrammerOn(b, rt.addr, 1)
	s := benchSet(b, n)
	ctx := context.Background()
	if _, err := first.Sync(ctx, s); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := benchProgrammerOn(b, rt.addr, uint64(2+i))
		res, err := p.Sync(ctx, s)
		if err != nil {
			b.Fatal(err)
		}
		if res.Writes != 0 {
			b.Fatalf("restart reconcile wrote: %+v", res)
		}
		b.StopTimer()
		p.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkStateLiveHeap100k: what the programmer's own per-key state adds
// to a GC cycle once 100k entries are installed: the live heap and objects
// it holds, and the forced collection's time with it minus without it (the
// state dropped, the desired set and the target kept). Wall time is the
// shortest of the runs; CPU is the process's CPU time per collection, less
// sensitive to a loaded machine.
func BenchmarkStateLiveHeap100k(b *testing.B) {
	p := benchProgrammer(b, WriteModeAtomic)
	s := benchSet(b, 100_000)
	if _, err := p.Sync(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	with := measureGC()
	p.mu.Lock()
	p.slots, p.slab, p.wants, p.trouble = newIndex(), arena[slot]{}, arena[entry.Packed]{}, map[entry.Key]slotTrouble{}
	p.mu.Unlock()
	without := measureGC()
	runtime.KeepAlive(s)
	b.ReportMetric(float64(with.bytes-without.bytes)/(1<<20), "state-MB")
	b.ReportMetric(float64(with.objects-without.objects)/1000, "state-kobjs")
	b.ReportMetric(float64((with.gc-without.gc).Microseconds())/1000, "state-gc-ms")
	b.ReportMetric(float64((with.cpu-without.cpu).Microseconds())/1000, "state-gc-cpu-ms")
}

type gcCost struct {
	bytes, objects uint64
	gc, cpu        time.Duration
}

// measureGC forces 20 collections: the shortest wall time and the mean
// process CPU time of one, and the live heap after them.
func measureGC() gcCost {
	const n = 20
	runtime.GC()
	var best time.Duration
	cpu0 := processCPU()
	for range n {
		start := time.Now()
		runtime.GC()
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
	}
	cpu := (processCPU() - cpu0) / n
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return gcCost{bytes: ms.HeapAlloc, objects: ms.HeapObjects, gc: best, cpu: cpu}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
