package translator

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
	"github.com/projectcalico/calico/felix/proto"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// render prints the entries of a translator readably: ids as the names they were derived from, addresses
// and MACs decoded, ports as interface names. One entry a line, sorted.
func render(t testing.TB, tr *Translator, ifaces ...string) string {
	t.Helper()
	info := p4info(t)
	portNames := map[uint64]string{}
	for _, n := range ifaces {
		if p, err := testPorts.PortID(n); err == nil {
			portNames[uint64(p)] = n
		}
	}
	idName := func(field string, v uint64) (string, bool) {
		var sp *idSpace
		prefix := ""
		switch field {
		case "endpoint_id":
			sp, prefix = tr.ids.ep, "ep:"
		case "list_id":
			sp, prefix = tr.ids.list, "list:"
		case "step_id", "first_step", "miss_step", "next_step":
			sp, prefix = tr.ids.step, "step:"
		case "set_id":
			sp, prefix = tr.ids.set, "set:"
		case "rule_id":
			sp, prefix = tr.ids.rule, "rule:"
		case "nexthop_id":
			sp, prefix = tr.ids.nh, "nh:"
		case "port", "peer_port":
			if n, ok := portNames[v]; ok {
				return "port:" + n, true
			}
			return "", false
		default:
			return "", false
		}
		if v == 0 {
			return "0", true
		}
		if n, ok := sp.Name(uint32(v)); ok {
			return prefix + n, true
		}
		return fmt.Sprintf("%s<unknown %#x>", prefix, v), true
	}
	value := func(field string, width int32, b []byte) string {
		v := bytesUint(b)
		if s, ok := idName(field, v); ok && width <= 64 {
			return s
		}
		switch {
		case width == 48:
			m, _ := p4src.DecodeMAC(b)
			return net.HardwareAddr(m).String()
		case (width == 32 || width == 128) && (strings.Contains(field, "addr")):
			return addrOf(b, int(width)).String()
		}
		return fmt.Sprint(v)
	}
	var lines []string
	for _, e := range tr.Entries().Sorted() {
		ti, ok := info.Table(e.Table)
		if !ok {
			t.Fatalf("unknown table %s", e.Table)
		}
		var sb strings.Builder
		sb.WriteString(strings.TrimPrefix(e.Table, "MainControlImpl."))
		sb.WriteByte('[')
		for i, m := range e.Match {
			if i > 0 {
				sb.WriteString(", ")
			}
			fi, _ := ti.Field(m.Field)
			sb.WriteString(m.Field)
			switch m.Kind {
			case entry.MatchLPM:
				fmt.Fprintf(&sb, "=%s/%d", value(m.Field, fi.Bitwidth, m.Value), m.PrefixLen)
			case entry.MatchTernary:
				fmt.Fprintf(&sb, "=%d&%#x", bytesUint(m.Value), bytesUint(m.Mask))
			case entry.MatchRange:
				fmt.Fprintf(&sb, "=%d..%d", bytesUint(m.Value), bytesUint(m.High))
			case entry.MatchOptional:
				fmt.Fprintf(&sb, "?=%d", bytesUint(m.Value))
			default:
				fmt.Fprintf(&sb, "=%s", value(m.Field, fi.Bitwidth, m.Value))
			}
		}
		sb.WriteByte(']')
		if e.Priority != 0 {
			fmt.Fprintf(&sb, " prio %d", e.Priority)
		}
		ai, _ := info.Action(e.Action.Name)
		fmt.Fprintf(&sb, " -> %s(", strings.TrimPrefix(e.Action.Name, "MainControlImpl."))
		for i, p := range e.Action.Params {
			if i > 0 {
				sb.WriteString(", ")
			}
			pi, _ := ai.Param(p.Name)
			fmt.Fprintf(&sb, "%s=%s", p.Name, value(p.Name, pi.Bitwidth, p.Value))
		}
		sb.WriteByte(')')
		lines = append(lines, sb.String())
	}
	return strings.Join(lines, "\n") + "\n"
}

// golden compares got with testdata/<name>.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		wl, gl := strings.Split(string(want), "\n"), strings.Split(got, "\n")
		var diff []string
		for _, l := range gl {
			if !slices.Contains(wl, l) {
				diff = append(diff, "+ "+l)
			}
		}
		for _, l := range wl {
			if !slices.Contains(gl, l) {
				diff = append(diff, "- "+l)
			}
		}
		if len(diff) > 40 {
			diff = append(diff[:40], "...")
		}
		t.Errorf("%s differs from the golden file (run with -update after checking):\n%s", path, strings.Join(diff, "\n"))
	}
}

var captureIfaces = []string{"cp4host0", "cp4up0", "cali1f0000001", "cali1b0000001", "cali1f0000002",
	"cali456b416f2bf", "cali08041ab898a", "calidac200d72ba"}

// TestGoldenCaptures: the entries of the real Felix captures at their most interesting steps.
func TestGoldenCaptures(t *testing.T) {
	cases := []struct{ capture, step, name string }{
		{"basic.jsonl", "05 workload endpoints: 3 local on node1, 1 remote on node2", "basic-05-workloads"},
		{"basic.jsonl", "06 GlobalNetworkPolicy gnp-frontend (selectors, named ports, not_*, icmp, http, SA match, metadata)", "basic-06-gnp-frontend"},
		{"basic.jsonl", "08 HostEndpoint node1-eth0 + host policies (doNotTrack, preDNAT, applyOnForward)", "basic-08-host-endpoint"},
		{"calico-tiers.jsonl", "08 HostEndpoint node1-eth0 (expectedIPs) + GNPs preDNAT (order 10), doNotTrack (order 20), applyOnForward (order 30)", "tiers-08-host-endpoint"},
		{"calico-tiers.jsonl", "10 update GlobalNetworkSet trusted-nets: nets -> [192.0.2.0/25, 203.0.113.0/24]", "tiers-10-netset-delta"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msgs, err := loadCapture(t, c.capture).Through(c.step)
			if err != nil {
				t.Fatal(err)
			}
			s := stateOf(t, msgs)
			tr := New(testPorts, testNode())
			res := tr.Apply(s, model.Changes{Resync: true})
			checkEncodes(t, res.Entries)
			got := render(t, tr, captureIfaces...)
			got += "\n# report\n" + res.Report.String() + "\n"
			golden(t, c.name, got)
		})
	}
}

// Hand-written models: messages for one feature each.
func msgWEP(id, iface, mac string, v4, v6 []string, profiles []string, tiers ...*proto.TierInfo) *proto.ToDataplane {
	return &proto.ToDataplane{Payload: &proto.ToDataplane_WorkloadEndpointUpdate{WorkloadEndpointUpdate: &proto.WorkloadEndpointUpdate{
		Id: &proto.WorkloadEndpointID{OrchestratorId: "k8s", WorkloadId: id, EndpointId: "eth0"},
		Endpoint: &proto.WorkloadEndpoint{State: "active", Name: iface, Mac: mac, Ipv4Nets: v4, Ipv6Nets: v6,
			ProfileIds: profiles, Tiers: tiers}}}}
}

func msgPolicy(tier, name string, in, out []*proto.Rule) *proto.ToDataplane {
	return &proto.ToDataplane{Payload: &proto.ToDataplane_ActivePolicyUpdate{ActivePolicyUpdate: &proto.ActivePolicyUpdate{
		Id: &proto.PolicyID{Tier: tier, Name: name}, Policy: &proto.Policy{InboundRules: in, OutboundRules: out}}}}
}

func msgProfile(name string, in, out []*proto.Rule) *proto.ToDataplane {
	return &proto.ToDataplane{Payload: &proto.ToDataplane_ActiveProfileUpdate{ActiveProfileUpdate: &proto.ActiveProfileUpdate{
		Id: &proto.ProfileID{Name: name}, Profile: &proto.Profile{InboundRules: in, OutboundRules: out}}}}
}

func msgSet(id string, typ proto.IPSetUpdate_IPSetType, members ...string) *proto.ToDataplane {
	return &proto.ToDataplane{Payload: &proto.ToDataplane_IpsetUpdate{IpsetUpdate: &proto.IPSetUpdate{Id: id, Type: typ, Members: members}}}
}

func msgConfig(kv ...string) *proto.ToDataplane {
	cfg := map[string]string{"FelixHostname": "node1"}
	for i := 0; i+1 < len(kv); i += 2 {
		cfg[kv[i]] = kv[i+1]
	}
	return &proto.ToDataplane{Payload: &proto.ToDataplane_ConfigUpdate{ConfigUpdate: &proto.ConfigUpdate{Config: cfg}}}
}

func tcp() *proto.Protocol { return &proto.Protocol{NumberOrName: &proto.Protocol_Name{Name: "tcp"}} }
func udp() *proto.Protocol { return &proto.Protocol{NumberOrName: &proto.Protocol_Name{Name: "udp"}} }
func ports(rs ...int32) []*proto.PortRange {
	var out []*proto.PortRange
	for i := 0; i+1 < len(rs); i += 2 {
		out = append(out, &proto.PortRange{First: rs[i], Last: rs[i+1]})
	}
	return out
}

func node1Meta() []*proto.ToDataplane {
	return []*proto.ToDataplane{
		{Payload: &proto.ToDataplane_HostMetadataV4V6Update{HostMetadataV4V6Update: &proto.HostMetadataV4V6Update{
			Hostname: "node1", Ipv4Addr: "192.168.122.11/24", Ipv6Addr: "fd00:122::11/64"}}},
		{Payload: &proto.ToDataplane_IpamPoolUpdate{IpamPoolUpdate: &proto.IPAMPoolUpdate{Id: "p4",
			Pool: &proto.IPAMPool{Cidr: "10.65.0.0/16", Masquerade: true, VxlanMode: "always"}}}},
	}
}

// TestGoldenFeatures: hand-written models, one feature each, with their exact entries.
func TestGoldenFeatures(t *testing.T) {
	wepA := func(tiers ...*proto.TierInfo) *proto.ToDataplane {
		return msgWEP("ns/a", "calia", "0a:58:0a:41:00:02", []string{"10.65.0.2/32"}, []string{"fd00:65::2/128"},
			[]string{"kns.ns"}, tiers...)
	}
	allowProf := msgProfile("kns.ns", []*proto.Rule{{Action: "allow"}}, []*proto.Rule{{Action: "allow"}})
	cases := []struct {
		name string
		msgs []*proto.ToDataplane
	}{
		{"workload-profile-only", []*proto.ToDataplane{msgConfig(), allowProf, wepA()}},
		{"workload-down-no-mac", []*proto.ToDataplane{msgConfig(), allowProf,
			{Payload: &proto.ToDataplane_WorkloadEndpointUpdate{WorkloadEndpointUpdate: &proto.WorkloadEndpointUpdate{
				Id:       &proto.WorkloadEndpointID{OrchestratorId: "k8s", WorkloadId: "ns/down", EndpointId: "eth0"},
				Endpoint: &proto.WorkloadEndpoint{State: "down", Name: "calidown", Mac: "0a:58:0a:41:00:09", Ipv4Nets: []string{"10.65.0.9/32"}}}}},
			msgWEP("ns/nomac", "calinomac", "", []string{"10.65.0.8/32"}, nil, []string{"kns.ns"}),
			msgWEP("ns/noport", "missing0", "0a:58:0a:41:00:07", []string{"10.65.0.7/32"}, nil, []string{"kns.ns"}),
		}},
		{"tiers-pass-log", []*proto.ToDataplane{msgConfig(), allowProf,
			msgPolicy("security", "sec.block", []*proto.Rule{
				{Action: "deny", Protocol: tcp(), DstNet: []string{"169.254.169.254/32"}, DstPorts: ports(80, 80)},
				{Action: "log", Protocol: udp()},
				{Action: "next-tier"}}, nil),
			msgPolicy("default", "allow-web", []*proto.Rule{
				{Action: "allow", Protocol: tcp(), DstPorts: ports(80, 80, 8000, 8100), NotDstPorts: ports(8080, 8080)}}, nil),
			wepA(&proto.TierInfo{Name: "security", IngressPolicies: []string{"sec.block"}},
				&proto.TierInfo{Name: "default", IngressPolicies: []string{"allow-web"}}),
		}},
		{"sets-named-ports-negations", []*proto.ToDataplane{msgConfig(), allowProf,
			msgSet("s:front", proto.IPSetUpdate_NET, "10.65.0.3/32", "fd00:65::3/128"),
			msgSet("s:ext", proto.IPSetUpdate_IP, "198.51.100.7", "2001:db8::7"),
			msgSet("n:metrics", proto.IPSetUpdate_IP_AND_PORT, "10.65.0.2,tcp:9090", "fd00:65::2,tcp:9090"),
			msgPolicy("default", "np", []*proto.Rule{
				{Action: "allow", Protocol: tcp(), SrcIpSetIds: []string{"s:front"}, DstPorts: ports(8080, 8080),
					DstNamedPortIpSetIds: []string{"n:metrics"}},
				{Action: "deny", NotSrcIpSetIds: []string{"s:ext"}, NotSrcNet: []string{"10.0.0.0/8"}, SrcNet: []string{"0.0.0.0/0"}},
				{Action: "allow", IpVersion: proto.IPVersion_IPV4, Protocol: &proto.Protocol{NumberOrName: &proto.Protocol_Name{Name: "icmp"}},
					Icmp: &proto.Rule_IcmpTypeCode{IcmpTypeCode: &proto.IcmpTypeAndCode{Type: 8, Code: 0}}},
				{Action: "allow", NotProtocol: udp(), NotIcmp: &proto.Rule_NotIcmpType{NotIcmpType: 3}},
			}, nil),
			wepA(&proto.TierInfo{Name: "default", IngressPolicies: []string{"np"}}),
		}},
		{"http-and-dangling-failsafe", []*proto.ToDataplane{msgConfig(), allowProf,
			msgPolicy("default", "l7", []*proto.Rule{
				{Action: "allow", Protocol: tcp(), HttpMatch: &proto.HTTPMatch{Methods: []string{"GET"}}},
				{Action: "deny", Protocol: tcp(), DstPorts: ports(22, 22), HttpMatch: &proto.HTTPMatch{Methods: []string{"POST"}}},
				{Action: "deny", SrcIpSetIds: []string{"s:missing"}, Protocol: udp()},
				{Action: "allow", SrcIpSetIds: []string{"s:missing"}},
			}, nil),
			wepA(&proto.TierInfo{Name: "default", IngressPolicies: []string{"l7"}}),
		}},
		{"host-endpoint-failsafe-endpoint-to-host", append(node1Meta(),
			msgConfig("DefaultEndpointToHostAction", "ACCEPT", "FailsafeInboundHostPorts", "tcp:22,udp:10.0.0.0/8:68",
				"FailsafeOutboundHostPorts", "udp:53"),
			allowProf, wepA(),
			msgPolicy("default", "host-in", []*proto.Rule{{Action: "allow", Protocol: tcp(), DstPorts: ports(443, 443)}}, nil),
			msgPolicy("default", "raw", []*proto.Rule{{Action: "deny", Protocol: udp()}}, []*proto.Rule{{Action: "allow"}}),
			msgPolicy("default", "pre", []*proto.Rule{{Action: "deny", SrcNet: []string{"203.0.113.0/24"}}}, nil),
			msgPolicy("default", "fwd", []*proto.Rule{{Action: "allow", Protocol: tcp()}}, nil),
			&proto.ToDataplane{Payload: &proto.ToDataplane_HostEndpointUpdate{HostEndpointUpdate: &proto.HostEndpointUpdate{
				Id: &proto.HostEndpointID{EndpointId: "node1-eth0"},
				Endpoint: &proto.HostEndpoint{Name: "eth0", ProfileIds: []string{"kns.ns"},
					Tiers:          []*proto.TierInfo{{Name: "default", IngressPolicies: []string{"host-in"}}},
					UntrackedTiers: []*proto.TierInfo{{Name: "default", IngressPolicies: []string{"raw"}, EgressPolicies: []string{"raw"}}},
					PreDnatTiers:   []*proto.TierInfo{{Name: "default", IngressPolicies: []string{"pre"}}},
					ForwardTiers:   []*proto.TierInfo{{Name: "default", IngressPolicies: []string{"fwd"}}}}}}},
		)},
		{"routes-vxlan-ipip-natoutgoing", append(node1Meta(), msgConfig(),
			&proto.ToDataplane{Payload: &proto.ToDataplane_Encapsulation{Encapsulation: &proto.Encapsulation{VxlanEnabled: true, IpipEnabled: true}}},
			&proto.ToDataplane{Payload: &proto.ToDataplane_HostMetadataUpdate{HostMetadataUpdate: &proto.HostMetadataUpdate{Hostname: "node3", Ipv4Addr: "10.0.3.13"}}},
			&proto.ToDataplane{Payload: &proto.ToDataplane_VtepUpdate{VtepUpdate: &proto.VXLANTunnelEndpointUpdate{Node: "node1",
				Mac: "66:00:00:00:00:01", Ipv4Addr: "10.65.0.0", ParentDeviceIp: "192.168.122.11"}}},
			&proto.ToDataplane{Payload: &proto.ToDataplane_VtepUpdate{VtepUpdate: &proto.VXLANTunnelEndpointUpdate{Node: "node2",
				Mac: "66:00:00:00:00:02", Ipv4Addr: "10.65.1.0", ParentDeviceIp: "192.168.122.12"}}},
			&proto.ToDataplane{Payload: &proto.ToDataplane_RouteUpdate{RouteUpdate: &proto.RouteUpdate{Type: proto.RouteType_CIDR_INFO,
				IpPoolType: proto.IPPoolType_VXLAN, Dst: "10.65.0.0/16", NatOutgoing: true}}},
			&proto.ToDataplane{Payload: &proto.ToDataplane_RouteUpdate{RouteUpdate: &proto.RouteUpdate{Type: proto.RouteType_REMOTE_WORKLOAD,
				IpPoolType: proto.IPPoolType_VXLAN, Dst: "10.65.1.0/26", DstNodeName: "node2", DstNodeIp: "192.168.122.12",
				TunnelType: &proto.TunnelType{Vxlan: true}}}},
			&proto.ToDataplane{Payload: &proto.ToDataplane_RouteUpdate{RouteUpdate: &proto.RouteUpdate{Type: proto.RouteType_REMOTE_WORKLOAD,
				IpPoolType: proto.IPPoolType_IPIP, Dst: "10.65.3.0/26", DstNodeName: "node3", DstNodeIp: "10.0.3.13"}}},
			&proto.ToDataplane{Payload: &proto.ToDataplane_RouteUpdate{RouteUpdate: &proto.RouteUpdate{Type: proto.RouteType_REMOTE_WORKLOAD,
				IpPoolType: proto.IPPoolType_IPIP, Dst: "10.65.2.0/26", DstNodeName: "node2", DstNodeIp: "192.168.122.12", SameSubnet: true}}},
			&proto.ToDataplane{Payload: &proto.ToDataplane_RouteUpdate{RouteUpdate: &proto.RouteUpdate{Type: proto.RouteType_LOCAL_WORKLOAD,
				IpPoolType: proto.IPPoolType_VXLAN, Dst: "10.65.0.0/26", DstNodeName: "node1"}}},
			&proto.ToDataplane{Payload: &proto.ToDataplane_RouteUpdate{RouteUpdate: &proto.RouteUpdate{Type: proto.RouteType_REMOTE_HOST,
				Dst: "192.168.122.12/32", DstNodeName: "node2", DstNodeIp: "192.168.122.12"}}},
			&proto.ToDataplane{Payload: &proto.ToDataplane_RouteUpdate{RouteUpdate: &proto.RouteUpdate{Type: proto.RouteType_LOCAL_TUNNEL,
				IpPoolType: proto.IPPoolType_VXLAN, Dst: "10.65.0.0/32", DstNodeName: "node1", TunnelType: &proto.TunnelType{Vxlan: true}}}},
			&proto.ToDataplane{Payload: &proto.ToDataplane_WireguardEndpointUpdate{WireguardEndpointUpdate: &proto.WireguardEndpointUpdate{
				Hostname: "node2", PublicKey: "k2", InterfaceIpv4Addr: "10.65.1.1"}}},
			allowProf, wepA(),
		)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := stateOf(t, c.msgs)
			tr := New(testPorts, testNode())
			res := tr.Apply(s, model.Changes{Resync: true})
			checkEncodes(t, res.Entries)
			got := render(t, tr, "cp4host0", "cp4up0", "calia", "calidown", "calinomac")
			got += "\n# report\n" + res.Report.String() + "\n"
			golden(t, "feature-"+c.name, got)
		})
	}
}
