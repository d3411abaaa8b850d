package translator

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/projectcalico/calico/felix/proto"
)

// Scale of the issue-7 benchmark model.
const (
	benchLocal    = 250
	benchRemote   = 10000
	benchPolicies = 2000
	benchRules    = 10
	benchMembers  = 100000
	benchNodes    = 40
)

func v4(i int) string { return fmt.Sprintf("10.%d.%d.%d", 64+i>>16&0x3f, i>>8&0xff, i&0xff) }

// benchModel builds the issue-7 scale model: 250 local endpoints, 10k remote endpoints (in 40 nodes'
// VXLAN blocks), 2k policies of 10 rules (selector sets, CIDRs, ports, named ports), 100k IP-set members.
func benchModel(tb testing.TB) (*model.State, []*proto.ToDataplane) {
	var msgs []*proto.ToDataplane
	msgs = append(msgs, msgConfig("VXLANEnabled", "true"), node1Meta()[0], node1Meta()[1],
		&proto.ToDataplane{Payload: &proto.ToDataplane_Encapsulation{Encapsulation: &proto.Encapsulation{VxlanEnabled: true}}})
	for n := 0; n <= benchNodes; n++ {
		name := fmt.Sprintf("node%d", n+1)
		msgs = append(msgs, &proto.ToDataplane{Payload: &proto.ToDataplane_VtepUpdate{VtepUpdate: &proto.VXLANTunnelEndpointUpdate{
			Node: name, Mac: fmt.Sprintf("66:00:00:00:%02x:%02x", n>>8, n&0xff), Ipv4Addr: fmt.Sprintf("10.70.%d.0", n),
			ParentDeviceIp: fmt.Sprintf("192.168.%d.%d", 122+n/200, 11+n%200)}}})
	}
	// Remote endpoints: /26 blocks of the other nodes.
	for b := 0; b < benchRemote/64+1; b++ {
		msgs = append(msgs, &proto.ToDataplane{Payload: &proto.ToDataplane_RouteUpdate{RouteUpdate: &proto.RouteUpdate{
			Type: proto.RouteType_REMOTE_WORKLOAD, IpPoolType: proto.IPPoolType_VXLAN,
			Dst: fmt.Sprintf("%s/26", v4(4096+b*64)), DstNodeName: fmt.Sprintf("node%d", 2+b%benchNodes),
			TunnelType: &proto.TunnelType{Vxlan: true}}}})
	}
	// IP sets: 1000 selector sets of 90 members (remote and local endpoint addresses), 100 named-port sets
	// of 100 members: 100k members.
	nSel, nPort := 1000, 100
	perSel := (benchMembers - nPort*100) / nSel
	for s := 0; s < nSel; s++ {
		var m []string
		for j := 0; j < perSel; j++ {
			m = append(m, v4((s*perSel+j)%(benchRemote+benchLocal))+"/32")
		}
		msgs = append(msgs, msgSet(fmt.Sprintf("s:sel%d", s), proto.IPSetUpdate_NET, m...))
	}
	for s := 0; s < nPort; s++ {
		var m []string
		for j := 0; j < 100; j++ {
			m = append(m, fmt.Sprintf("%s,tcp:%d", v4((s*100+j)%(benchRemote+benchLocal)), 8000+s))
		}
		msgs = append(msgs, msgSet(fmt.Sprintf("n:port%d", s), proto.IPSetUpdate_IP_AND_PORT, m...))
	}
	for p := 0; p < benchPolicies; p++ {
		msgs = append(msgs, benchPolicy(p, 0))
	}
	msgs = append(msgs, msgProfile("kns.default", []*proto.Rule{{Action: "allow"}}, []*proto.Rule{{Action: "allow"}}))
	// Local endpoints: 10 ingress and 5 egress policies each.
	for w := 0; w < benchLocal; w++ {
		tier := &proto.TierInfo{Name: "default"}
		for k := 0; k < 10; k++ {
			tier.IngressPolicies = append(tier.IngressPolicies, fmt.Sprintf("pol%d", (w*7+k*13)%benchPolicies))
		}
		for k := 0; k < 5; k++ {
			tier.EgressPolicies = append(tier.EgressPolicies, fmt.Sprintf("pol%d", (w*11+k*17)%benchPolicies))
		}
		msgs = append(msgs, msgWEP(fmt.Sprintf("ns/pod%d", w), fmt.Sprintf("cali%011d", w),
			fmt.Sprintf("0a:58:0a:41:%02x:%02x", w>>8, w&0xff), []string{v4(w) + "/32"}, nil, []string{"kns.default"}, tier))
	}
	s := model.NewState()
	for _, m := range msgs {
		if err := s.Apply(m); err != nil {
			tb.Fatal(err)
		}
	}
	s.TakeChanges()
	return s, msgs
}

// benchPolicy is policy p, version v: 10 rules mixing selector sets, CIDRs, port ranges, named ports,
// negations and ICMP.
func benchPolicy(p, v int) *proto.ToDataplane {
	var in, out []*proto.Rule
	for r := 0; r < benchRules; r++ {
		rule := &proto.Rule{Action: "allow", Protocol: tcp(), RuleId: fmt.Sprintf("r%d", r)}
		switch (r + v) % 5 {
		case 0:
			rule.SrcIpSetIds = []string{fmt.Sprintf("s:sel%d", (p+r)%1000)}
			rule.DstPorts = ports(int32(80+r), int32(80+r), 8000, 8100)
		case 1:
			rule.SrcIpSetIds = []string{fmt.Sprintf("s:sel%d", (p*3+r)%1000)}
			rule.DstNamedPortIpSetIds = []string{fmt.Sprintf("n:port%d", (p+r)%100)}
		case 2:
			rule.Protocol = udp()
			rule.SrcNet = []string{"10.64.0.0/16", fmt.Sprintf("172.%d.0.0/16", 16+r)}
			rule.DstPorts = ports(53, 53)
		case 3:
			rule.Action = "deny"
			rule.NotSrcIpSetIds = []string{fmt.Sprintf("s:sel%d", (p+7*r)%1000)}
			rule.NotDstPorts = ports(443, 443)
		case 4:
			rule.Protocol = &proto.Protocol{NumberOrName: &proto.Protocol_Name{Name: "icmp"}}
			rule.IpVersion = proto.IPVersion_IPV4
			rule.Icmp = &proto.Rule_IcmpType{IcmpType: 8}
		}
		in = append(in, rule)
		if r < benchRules/2 {
			out = append(out, rule)
		}
	}
	return msgPolicy("default", fmt.Sprintf("pol%d", p), in, out)
}

func benchOpts() Options {
	o := testNode()
	o.Node.Addresses = []netip.Prefix{netip.MustParsePrefix("192.168.122.11/24")}
	return o
}

// BenchmarkFullTranslation: the issue-7 scale model from scratch.
func BenchmarkFullTranslation(b *testing.B) {
	s, _ := benchModel(b)
	b.ReportAllocs()
	b.ResetTimer()
	var res Result
	for i := 0; i < b.N; i++ {
		res = Translate(s, testPorts, benchOpts())
	}
	b.StopTimer()
	b.ReportMetric(float64(res.Entries.Len()), "entries")
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
	runtime.KeepAlive(res)
	runtime.KeepAlive(s)
}

// BenchmarkPolicyChange: one policy's rules change (incremental).
func BenchmarkPolicyChange(b *testing.B) {
	s, _ := benchModel(b)
	tr := New(testPorts, benchOpts())
	tr.Apply(s, model.Changes{Resync: true})
	runtime.GC() // the setup's garbage is not the change's cost
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := s.Apply(benchPolicy(17, i%2+1)); err != nil {
			b.Fatal(err)
		}
		c := s.TakeChanges()
		b.StartTimer()
		tr.Apply(s, c)
	}
}

// BenchmarkIPSetDelta100: a delta of 100 members (50 added, 50 removed) to a 10k-member set.
func BenchmarkIPSetDelta100(b *testing.B) {
	s, _ := benchModel(b)
	var big []string
	for j := 0; j < 10000; j++ {
		big = append(big, v4(j)+"/32")
	}
	if err := s.Apply(msgSet("s:sel0", proto.IPSetUpdate_NET, big...)); err != nil {
		b.Fatal(err)
	}
	tr := New(testPorts, benchOpts())
	tr.Apply(s, model.Changes{Resync: true})
	s.TakeChanges()
	runtime.GC() // the setup's garbage is not the delta's cost
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		var add, rem []string
		for j := 0; j < 50; j++ {
			add = append(add, v4(20000+(i%2)*100+j)+"/32")
			rem = append(rem, v4(20000+((i+1)%2)*100+j)+"/32")
		}
		if err := s.Apply(&proto.ToDataplane{Payload: &proto.ToDataplane_IpsetDeltaUpdate{IpsetDeltaUpdate: &proto.IPSetDeltaUpdate{
			Id: "s:sel0", AddedMembers: add, RemovedMembers: rem}}}); err != nil {
			b.Fatal(err)
		}
		c := s.TakeChanges()
		b.StartTimer()
		tr.Apply(s, c)
	}
}
