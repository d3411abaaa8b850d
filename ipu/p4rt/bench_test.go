package p4rt

import (
	"testing"

	"github.com/calico-p4/calico-p4/p4src/entry"
)

func BenchmarkEncodeRoute(b *testing.B) {
	in := testInfo(b)
	e := entry.Table("ingress.routes", 0, entry.Act("ingress.set_nexthop", entry.P("port", entry.Uint(3)), entry.P("dmac", entry.Uint(0xeeeeeeeeeeee))),
		entry.Exact("meta.vrf", entry.Uint(1)), entry.LPM("hdr.ipv4.dst_addr", entry.Uint(0x0a000000), 8))
	ids := newFakeIDs()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := in.Encode(e, ids); err != nil {
			b.Fatal(err)
		}
	}
}
