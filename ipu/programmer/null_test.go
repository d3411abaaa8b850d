package programmer

import (
	"context"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

type nullTarget struct{ *fakeTarget }

func (nullTarget) WriteEncoded(context.Context, []byte, int, p4v1.WriteRequest_Atomicity) error {
	return nil
}

// BenchmarkSyncFull100kNullTarget: the programmer's own cost of a full sync
// (diff, plan, encode, marshal), with a target that accepts everything.
func BenchmarkSyncFull100kNullTarget(b *testing.B) {
	info := testInfo(b)
	f := newFakeTarget(info)
	p := newTestProgrammer(b, nullTarget{f}, info, Config{})
	full := benchSet(b, 100_000)
	empty := mustSet(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		p.Sync(ctx, empty)
		b.StartTimer()
		if _, err := p.Sync(ctx, full); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(full.Len()*b.N)/b.Elapsed().Seconds(), "entries/s")
}
