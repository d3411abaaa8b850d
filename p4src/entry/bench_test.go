package entry

import (
	"testing"
)

func benchEntries(n int) []Entry {
	out := make([]Entry, n)
	for i := range out {
		out[i] = Table("ingress.routes", 0, Act("set_nexthop", P("port", Uint(uint64(i%64))), P("dmac", Uint(0xeeeeeeeeeeee))),
			LPM("hdr.ipv4.dst", Uint(uint64(0x0a000000+i<<8)), 24), Exact("vrf", Uint(1)))
	}
	return out
}

func BenchmarkSetPut100k(b *testing.B) {
	es := benchEntries(100_000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var s Set
		for _, e := range es {
			if _, err := s.Put(e); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(es))/b.Elapsed().Seconds(), "entries/s")
}

func BenchmarkDiff100kOnePercent(b *testing.B) {
	es := benchEntries(100_000)
	from, _ := NewSet(es...)
	to := from.Clone()
	for i := 0; i < 1000; i++ {
		to.Put(Table("ingress.routes", 0, Act("drop"), es[i*100].Match...))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if d := Diff(from, to); d.Len() != 1000 {
			b.Fatal(d.Len())
		}
	}
}
