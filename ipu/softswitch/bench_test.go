package softswitch_test

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	p4 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
)

// routeEntry is a /32 route of ingress.lpm_tbl (vrf 1), unique per i.
func routeEntry(i int) *p4.Entity {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], 0x0a000000+uint32(i))
	return te(tLPM, 0, &p4.TableAction{Type: &p4.TableAction_Action{Action: &p4.Action{ActionId: aSetNhop, Params: []*p4.Action_Param{
		param(1, a[:]...), param(2, byte(i%250+1))}}}}, exact(1, 1), lpm(2, 32, tables.Canonical(a[:])...))
}

// rawCodec sends pre-encoded request bytes (so the benchmark's own request building and heap do not
// count against the server) and decodes responses as protobuf.
type rawCodec struct{}

type rawMsg []byte

func (rawCodec) Marshal(v any) ([]byte, error) {
	if r, ok := v.(rawMsg); ok {
		return r, nil
	}
	return proto.Marshal(v.(proto.Message))
}
func (rawCodec) Unmarshal(b []byte, v any) error { return proto.Unmarshal(b, v.(proto.Message)) }
func (rawCodec) Name() string                    { return "proto" }

// BenchmarkWrite measures table-entry inserts over real gRPC (unix socket) with batches of 1, 100 and
// 1000 updates: the WriteRequests are encoded before the timer starts, so the figure is the server's
// cost (transport, decode, validation, insert, publish); ns/op is per entry, entries/s is reported.
// The table is refilled from empty (VERIFY_AND_COMMIT, timer stopped) every 200k entries.
func BenchmarkWrite(b *testing.B) {
	for _, batch := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			h := newHarness(b)
			ct := h.primary(1)
			ct.commit()
			const per = 200000
			var reqs []rawMsg
			for off := 0; off < per; off += batch {
				req := &p4.WriteRequest{DeviceId: deviceID, ElectionId: ct.election}
				for i := off; i < off+batch; i++ {
					req.Updates = append(req.Updates, ins(routeEntry(i)))
				}
				raw, err := proto.Marshal(req)
				if err != nil {
					b.Fatal(err)
				}
				reqs = append(reqs, raw)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var paused time.Duration
			resp := &p4.WriteResponse{}
			for done := 0; done < b.N; done += batch {
				r := (done / batch) % len(reqs)
				if done > 0 && r == 0 {
					b.StopTimer()
					p := time.Now()
					ct.commit()
					paused += time.Since(p)
					b.StartTimer()
				}
				if err := h.conn.Invoke(ctx(b), "/p4.v1.P4Runtime/Write", reqs[r], resp, grpc.ForceCodec(rawCodec{})); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/(time.Since(start)-paused).Seconds(), "entries/s")
		})
	}
}

// BenchmarkWriteEndToEnd is BenchmarkWrite/batch=1000 with the client building and encoding each
// request inside the timed loop (client and server share the process and its cores).
func BenchmarkWriteEndToEnd(b *testing.B) {
	h := newHarness(b)
	ct := h.primary(1)
	ct.commit()
	const per, batch = 200000, 1000
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var paused time.Duration
	for done := 0; done < b.N; done += batch {
		off := done % per
		if done > 0 && off == 0 {
			b.StopTimer()
			p := time.Now()
			ct.commit()
			paused += time.Since(p)
			b.StartTimer()
		}
		ups := make([]*p4.Update, 0, batch)
		for i := off; i < off+batch; i++ {
			ups = append(ups, ins(routeEntry(i)))
		}
		if err := ct.writeAtomic(p4.WriteRequest_CONTINUE_ON_ERROR, ups...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/(time.Since(start)-paused).Seconds(), "entries/s")
}

// BenchmarkRead100k reads back a 100k-entry table over gRPC (streamed in chunks); ns/op is per read of
// the whole table.
func BenchmarkRead100k(b *testing.B) {
	h := newHarness(b)
	ct := h.primary(1)
	ct.commit()
	const n = 100000
	for off := 0; off < n; off += 10000 {
		ups := make([]*p4.Update, 0, 10000)
		for i := off; i < off+10000; i++ {
			ups = append(ups, ins(routeEntry(i)))
		}
		ct.mustWrite(ups...)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := h.read(entTE(&p4.TableEntry{TableId: tLPM}))
		if err != nil || len(got) != n {
			b.Fatalf("read %d entries: %v", len(got), err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
