package model_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/projectcalico/calico/felix/proto"
	"google.golang.org/protobuf/encoding/protowire"
)

func wepUpdate(workload string, mutate func(*proto.WorkloadEndpoint)) *proto.ToDataplane {
	ep := &proto.WorkloadEndpoint{State: "active", Name: "cali0000000001", Mac: "ee:ee:ee:ee:00:01",
		Ipv4Nets: []string{"10.65.0.2/32"}, ProfileIds: []string{"kns.default"}}
	if mutate != nil {
		mutate(ep)
	}
	return &proto.ToDataplane{Payload: &proto.ToDataplane_WorkloadEndpointUpdate{WorkloadEndpointUpdate: &proto.WorkloadEndpointUpdate{
		Id: &proto.WorkloadEndpointID{OrchestratorId: "k8s", WorkloadId: workload, EndpointId: "eth0"}, Endpoint: ep}}}
}

func policyUpdate(name string, rules ...*proto.Rule) *proto.ToDataplane {
	return &proto.ToDataplane{Payload: &proto.ToDataplane_ActivePolicyUpdate{ActivePolicyUpdate: &proto.ActivePolicyUpdate{
		Id: &proto.PolicyID{Tier: "default", Name: name}, Policy: &proto.Policy{InboundRules: rules}}}}
}

func ipsetUpdate(id string, typ proto.IPSetUpdate_IPSetType, members ...string) *proto.ToDataplane {
	return &proto.ToDataplane{Payload: &proto.ToDataplane_IpsetUpdate{IpsetUpdate: &proto.IPSetUpdate{Id: id, Type: typ, Members: members}}}
}

func ipsetDelta(id string, added, removed []string) *proto.ToDataplane {
	return &proto.ToDataplane{Payload: &proto.ToDataplane_IpsetDeltaUpdate{IpsetDeltaUpdate: &proto.IPSetDeltaUpdate{
		Id: id, AddedMembers: added, RemovedMembers: removed}}}
}

func mustApply(t *testing.T, s *model.State, msgs ...*proto.ToDataplane) {
	t.Helper()
	for _, m := range msgs {
		if err := s.Apply(m); err != nil {
			t.Fatalf("%s: %v", model.PayloadName(m), err)
		}
	}
}

func TestInvalidContentRejectsOnlyThatObject(t *testing.T) {
	tests := []struct {
		name    string
		msg     *proto.ToDataplane
		kind    model.Kind
		errText string
		// gone reports whether the object is absent after the rejection.
		gone func(s *model.State) bool
	}{
		{"bad CIDR in a rule", policyUpdate("p", &proto.Rule{Action: "allow", SrcNet: []string{"10.0.0.0/33"}}),
			model.KindPolicy, "invalid CIDR", func(s *model.State) bool { return !s.Policies.Has(model.PolicyKey{Tier: "default", Name: "p"}) }},
		{"port out of range", policyUpdate("p", &proto.Rule{Action: "allow", DstPorts: []*proto.PortRange{{First: 80, Last: 70000}}}),
			model.KindPolicy, "out of range", func(s *model.State) bool { return !s.Policies.Has(model.PolicyKey{Tier: "default", Name: "p"}) }},
		{"reversed port range", policyUpdate("p", &proto.Rule{Action: "allow", DstPorts: []*proto.PortRange{{First: 90, Last: 80}}}),
			model.KindPolicy, "first > last", func(s *model.State) bool { return !s.Policies.Has(model.PolicyKey{Tier: "default", Name: "p"}) }},
		{"unknown action", policyUpdate("p", &proto.Rule{Action: "teleport"}),
			model.KindPolicy, "unknown action", func(s *model.State) bool { return !s.Policies.Has(model.PolicyKey{Tier: "default", Name: "p"}) }},
		{"unknown protocol name", policyUpdate("p", &proto.Rule{Action: "allow", Protocol: &proto.Protocol{NumberOrName: &proto.Protocol_Name{Name: "quic"}}}),
			model.KindPolicy, "unknown protocol", func(s *model.State) bool { return !s.Policies.Has(model.PolicyKey{Tier: "default", Name: "p"}) }},
		{"protocol number out of range", policyUpdate("p", &proto.Rule{Action: "allow", Protocol: &proto.Protocol{NumberOrName: &proto.Protocol_Number{Number: 256}}}),
			model.KindPolicy, "out of range", func(s *model.State) bool { return !s.Policies.Has(model.PolicyKey{Tier: "default", Name: "p"}) }},
		{"ICMP type out of range", policyUpdate("p", &proto.Rule{Action: "allow", Icmp: &proto.Rule_IcmpType{IcmpType: 300}}),
			model.KindPolicy, "out of range", func(s *model.State) bool { return !s.Policies.Has(model.PolicyKey{Tier: "default", Name: "p"}) }},
		{"bad ip version", policyUpdate("p", &proto.Rule{Action: "allow", IpVersion: 5}),
			model.KindPolicy, "ip_version", func(s *model.State) bool { return !s.Policies.Has(model.PolicyKey{Tier: "default", Name: "p"}) }},
		{"workload with IPv6 in ipv4_nets", wepUpdate("ns/a", func(ep *proto.WorkloadEndpoint) { ep.Ipv4Nets = []string{"fd00::1/128"} }),
			model.KindWorkloadEndpoint, "not an IPv4", func(s *model.State) bool { return s.WorkloadEndpoints.Len() == 1 }},
		{"workload with a bad MAC", wepUpdate("ns/a", func(ep *proto.WorkloadEndpoint) { ep.Mac = "zz:zz" }),
			model.KindWorkloadEndpoint, "invalid MAC", func(s *model.State) bool { return s.WorkloadEndpoints.Len() == 1 }},
		{"workload without interface", wepUpdate("ns/a", func(ep *proto.WorkloadEndpoint) { ep.Name = "" }),
			model.KindWorkloadEndpoint, "interface", func(s *model.State) bool { return s.WorkloadEndpoints.Len() == 1 }},
		{"workload with a bad spoofing prefix", wepUpdate("ns/a", func(ep *proto.WorkloadEndpoint) { ep.AllowSpoofedSourcePrefixes = []string{"nope"} }),
			model.KindWorkloadEndpoint, "allow_spoofed", func(s *model.State) bool { return s.WorkloadEndpoints.Len() == 1 }},
		{"workload with mixed-family NAT", wepUpdate("ns/a", func(ep *proto.WorkloadEndpoint) {
			ep.Ipv4Nat = []*proto.NatInfo{{ExtIp: "203.0.113.1", IntIp: "fd00::1"}}
		}), model.KindWorkloadEndpoint, "ipv4_nat", func(s *model.State) bool { return s.WorkloadEndpoints.Len() == 1 }},
		{"route with a bad dst", &proto.ToDataplane{Payload: &proto.ToDataplane_RouteUpdate{RouteUpdate: &proto.RouteUpdate{Dst: "10.0.0.0/99"}}},
			model.KindRoute, "invalid CIDR", func(s *model.State) bool { return s.Routes.Len() == 0 }},
		{"service with a bad cluster IP", &proto.ToDataplane{Payload: &proto.ToDataplane_ServiceUpdate{ServiceUpdate: &proto.ServiceUpdate{
			Name: "web", Namespace: "svc", ClusterIps: []string{"10.96.0.300"}}}},
			model.KindService, "cluster_ips", func(s *model.State) bool { return s.Services.Len() == 0 }},
		{"pool with an unknown VXLAN mode", &proto.ToDataplane{Payload: &proto.ToDataplane_IpamPoolUpdate{IpamPoolUpdate: &proto.IPAMPoolUpdate{
			Id: "x", Pool: &proto.IPAMPool{Cidr: "10.0.0.0/16", VxlanMode: "sometimes"}}}},
			model.KindIPAMPool, "vxlan_mode", func(s *model.State) bool { return s.IPAMPools.Len() == 0 }},
		{"IP set of an unknown type", ipsetUpdate("s:x", 7, "10.0.0.1"), model.KindIPSet, "unknown IP set type",
			func(s *model.State) bool { return !s.IPSets.Has("s:x") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := model.NewState()
			// A valid neighbour that must survive, and a valid earlier version where the key allows one.
			mustApply(t, s, wepUpdate("ns/other", nil), ipsetUpdate("s:x", proto.IPSetUpdate_NET, "10.0.0.0/8"),
				policyUpdate("p", &proto.Rule{Action: "allow"}))
			err := s.Apply(tc.msg)
			ies := model.InvalidErrors(err)
			if len(ies) != 1 {
				t.Fatalf("want one InvalidError, got %v", err)
			}
			if ies[0].Kind != tc.kind || !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("got %v (kind %s), want kind %s and %q", err, ies[0].Kind, tc.kind, tc.errText)
			}
			if !tc.gone(s) {
				t.Error("the invalid object (or its earlier version) is still in the state")
			}
			if !s.WorkloadEndpoints.Has(model.WorkloadEndpointKey{OrchestratorID: "k8s", WorkloadID: "ns/other", EndpointID: "eth0"}) {
				t.Error("a valid neighbour was lost")
			}
		})
	}
}

func TestInvalidIPSetMembersAreSkippedAndTheRestKept(t *testing.T) {
	s := model.NewState()
	err := s.Apply(ipsetUpdate("n:x", proto.IPSetUpdate_IP_AND_PORT, "10.0.0.1,tcp:80", "10.0.0.2,icmp:0",
		"10.0.0.3,tcp:99999", "garbage", "fd00::1,udp:53"))
	if n := len(model.InvalidErrors(err)); n != 3 {
		t.Fatalf("want 3 skipped members, got %d: %v", n, err)
	}
	set := ipset(t, s, "n:x")
	eq(t, "members", set.Strings(), []string{"10.0.0.1,tcp:80", "fd00::1,udp:53"})

	err = s.Apply(ipsetDelta("n:x", []string{"10.0.0.9,sctp:7", "bad"}, []string{"10.0.0.1,tcp:80"}))
	eq(t, "delta errors", len(model.InvalidErrors(err)), 1)
	eq(t, "after delta", ipset(t, s, "n:x").Strings(), []string{"10.0.0.9,sctp:7", "fd00::1,udp:53"})

	err = s.Apply(ipsetDelta("s:unknown", []string{"10.0.0.1/32"}, nil))
	if ies := model.InvalidErrors(err); len(ies) != 1 || ies[0].Kind != model.KindIPSet {
		t.Errorf("delta for an unknown set: got %v", err)
	}
}

func TestIPSetMemberTypes(t *testing.T) {
	s := model.NewState()
	mustApply(t, s,
		ipsetUpdate("ip", proto.IPSetUpdate_IP, "10.0.0.2", "fd00::2", "10.0.0.1"),
		ipsetUpdate("net", proto.IPSetUpdate_NET, "10.1.2.3/8", "10.0.0.7", "fd00::/64"))
	eq(t, "IP members", ipset(t, s, "ip").Addrs(), []netip.Addr{mustAddr("10.0.0.1"), mustAddr("10.0.0.2"), mustAddr("fd00::2")})
	eq(t, "NET members are masked; a bare IP is a host prefix", ipset(t, s, "net").Nets(),
		[]netip.Prefix{mustPrefix("10.0.0.0/8"), mustPrefix("10.0.0.7/32"), mustPrefix("fd00::/64")})
	eq(t, "typed accessors of other types are nil", ipset(t, s, "net").Addrs() == nil, true)
	eq(t, "contains", ipset(t, s, "ip").ContainsAddr(mustAddr("fd00::2")), true)
}

func TestIPSetDeltaAppliesAdditionsThenRemovalsLikeFelix(t *testing.T) {
	s := model.NewState()
	mustApply(t, s, ipsetUpdate("s", proto.IPSetUpdate_NET, "10.0.0.1/32"),
		ipsetDelta("s", []string{"10.0.0.2/32"}, []string{"10.0.0.2/32"}))
	eq(t, "member in both lists ends removed", ipset(t, s, "s").Strings(), []string{"10.0.0.1/32"})
}

func TestCloneIsASnapshotThatLaterChangesDoNotTouch(t *testing.T) {
	s := model.NewState()
	mustApply(t, s, ipsetUpdate("s", proto.IPSetUpdate_NET, "10.0.0.1/32"), wepUpdate("ns/a", nil))
	snap := s.Clone()
	mustApply(t, s, ipsetDelta("s", []string{"10.0.0.2/32"}, nil), wepUpdate("ns/b", nil),
		&proto.ToDataplane{Payload: &proto.ToDataplane_WorkloadEndpointRemove{WorkloadEndpointRemove: &proto.WorkloadEndpointRemove{
			Id: &proto.WorkloadEndpointID{OrchestratorId: "k8s", WorkloadId: "ns/a", EndpointId: "eth0"}}}})
	eq(t, "snapshot set", ipset(t, snap, "s").Strings(), []string{"10.0.0.1/32"})
	eq(t, "live set", ipset(t, s, "s").Strings(), []string{"10.0.0.1/32", "10.0.0.2/32"})
	eq(t, "snapshot endpoints", snap.WorkloadEndpoints.Len(), 1)
	eq(t, "live endpoints", s.WorkloadEndpoints.Len(), 1)
	wep(t, snap, "ns/a")
	wep(t, s, "ns/b")

	// A second snapshot and more deltas: each snapshot keeps its own view.
	snap2 := s.Clone()
	mustApply(t, s, ipsetDelta("s", nil, []string{"10.0.0.1/32"}))
	mustApply(t, snap2, ipsetDelta("s", []string{"10.0.0.3/32"}, nil))
	eq(t, "snapshot 1", ipset(t, snap, "s").Strings(), []string{"10.0.0.1/32"})
	eq(t, "snapshot 2 (mutated on its own)", ipset(t, snap2, "s").Strings(), []string{"10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32"})
	eq(t, "live", ipset(t, s, "s").Strings(), []string{"10.0.0.2/32"})
	eq(t, "a snapshot starts without changes", snap2.PendingChanges(), 1)
}

func TestChangesReportNetEffectSinceTheLastTake(t *testing.T) {
	key := func(w string) model.WorkloadEndpointKey {
		return model.WorkloadEndpointKey{OrchestratorID: "k8s", WorkloadID: w, EndpointID: "eth0"}
	}
	remove := func(w string) *proto.ToDataplane {
		return &proto.ToDataplane{Payload: &proto.ToDataplane_WorkloadEndpointRemove{WorkloadEndpointRemove: &proto.WorkloadEndpointRemove{
			Id: &proto.WorkloadEndpointID{OrchestratorId: "k8s", WorkloadId: w, EndpointId: "eth0"}}}}
	}
	s := model.NewState()
	mustApply(t, s, wepUpdate("ns/kept", nil), wepUpdate("ns/changed", nil), wepUpdate("ns/removed", nil),
		wepUpdate("ns/readded", nil))
	ch := s.TakeChanges()
	eq(t, "first take: all added", len(ch.WorkloadEndpoints.Of(model.Added)), 4)

	mustApply(t, s,
		wepUpdate("ns/kept", nil), // identical resend: no change
		wepUpdate("ns/changed", func(ep *proto.WorkloadEndpoint) { ep.Ipv4Nets = []string{"10.65.0.9/32"} }),
		remove("ns/removed"),
		remove("ns/readded"), wepUpdate("ns/readded", nil), // removed and re-added identical: updated
		wepUpdate("ns/transient", nil), remove("ns/transient"), // added and removed: nothing
		wepUpdate("ns/new", nil))
	ch = s.TakeChanges()
	eq(t, "kept", ch.WorkloadEndpoints.Get(key("ns/kept")), model.Unchanged)
	eq(t, "changed", ch.WorkloadEndpoints.Get(key("ns/changed")), model.Updated)
	eq(t, "removed", ch.WorkloadEndpoints.Get(key("ns/removed")), model.Removed)
	eq(t, "readded", ch.WorkloadEndpoints.Get(key("ns/readded")), model.Updated)
	eq(t, "transient", ch.WorkloadEndpoints.Get(key("ns/transient")), model.Unchanged)
	eq(t, "new", ch.WorkloadEndpoints.Get(key("ns/new")), model.Added)
	eq(t, "sorted keys", ch.WorkloadEndpoints.Keys(), []model.WorkloadEndpointKey{key("ns/changed"), key("ns/new"),
		key("ns/readded"), key("ns/removed")})
	eq(t, "nothing left", s.TakeChanges().Empty(), true)
}

func TestRestoredChangesMergeWithLaterOnes(t *testing.T) {
	s := model.NewState()
	mustApply(t, s, ipsetUpdate("a", proto.IPSetUpdate_NET, "10.0.0.1/32"))
	failed := s.TakeChanges() // "a" added; pretend the apply failed
	mustApply(t, s, ipsetDelta("a", []string{"10.0.0.2/32"}, nil), ipsetUpdate("b", proto.IPSetUpdate_NET))
	s.RestoreChanges(failed)
	ch := s.TakeChanges()
	eq(t, "a is still added (never applied)", ch.IPSets.Get("a"), model.Added)
	eq(t, "b added", ch.IPSets.Get("b"), model.Added)

	// An object added in the failed batch and removed since: nothing to do at all.
	mustApply(t, s, ipsetUpdate("c", proto.IPSetUpdate_NET))
	failed = s.TakeChanges()
	mustApply(t, s, &proto.ToDataplane{Payload: &proto.ToDataplane_IpsetRemove{IpsetRemove: &proto.IPSetRemove{Id: "c"}}})
	s.RestoreChanges(failed)
	eq(t, "c", s.TakeChanges().IPSets.Get("c"), model.Unchanged)
}

func TestConfigParsesHonouredKeysWithFelixDefaults(t *testing.T) {
	c := model.DefaultConfig()
	eq(t, "default action", c.DefaultEndpointToHostAction, "DROP")
	eq(t, "default reporting", c.ReportingInterval, 30*time.Second)
	eq(t, "default VXLAN port/VNI/MTU", [3]int{c.VXLANPort, c.VXLANVNI, c.VXLANMTU}, [3]int{4789, 4096, 0})
	eq(t, "default prefixes", c.InterfacePrefixes, []string{"cali"})
	eq(t, "default IPv6", c.IPv6Support, true)
	eq(t, "default loop prevention", c.ServiceLoopPrevention, "Drop")
	eq(t, "default failsafe out", c.FailsafeOutboundHostPorts[0], model.ProtoPort{Protocol: "udp", Port: 53})
	eq(t, "unset VXLANEnabled", c.VXLANEnabled == nil, true)

	c, err := model.ParseConfig(map[string]string{
		"DefaultEndpointToHostAction": "accept",
		"FailsafeInboundHostPorts":    "tcp:22, udp:10.0.0.0/8:68, tcp:[fd00::/64]:179, 8080",
		"FailsafeOutboundHostPorts":   "none",
		"ReportingIntervalSecs":       "2.5",
		"VXLANEnabled":                "true",
		"IpInIpEnabled":               "false",
		"VXLANMTU":                    "1410",
		"VXLANPort":                   "8472",
		"VXLANVNI":                    "4097",
		"Ipv6Support":                 "false",
		"InterfacePrefix":             "cali,tap",
		"ServiceLoopPrevention":       "Reject",
		"NATOutgoingAddress":          "192.0.2.1",
		"calicop4endpointstatus":      "false",
		"calicop4applyretrysecs":      "0.5",
		"mydriveroption":              "foo",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "action", c.DefaultEndpointToHostAction, "ACCEPT")
	eq(t, "failsafe in", c.FailsafeInboundHostPorts, []model.ProtoPort{{Protocol: "tcp", Port: 22},
		{Protocol: "udp", Net: mustPrefix("10.0.0.0/8"), Port: 68}, {Protocol: "tcp", Net: mustPrefix("fd00::/64"), Port: 179},
		{Protocol: "tcp", Port: 8080}})
	eq(t, "failsafe out none", len(c.FailsafeOutboundHostPorts), 0)
	eq(t, "reporting", c.ReportingInterval, 2500*time.Millisecond)
	eq(t, "vxlan", *c.VXLANEnabled, true)
	eq(t, "ipip", *c.IPIPEnabled, false)
	eq(t, "vxlan numbers", [3]int{c.VXLANMTU, c.VXLANPort, c.VXLANVNI}, [3]int{1410, 8472, 4097})
	eq(t, "ipv6", c.IPv6Support, false)
	eq(t, "prefixes", c.InterfacePrefixes, []string{"cali", "tap"})
	eq(t, "loop", c.ServiceLoopPrevention, "Reject")
	eq(t, "nat address", c.NATOutgoingAddress, mustAddr("192.0.2.1"))
	eq(t, "endpoint status option", c.EndpointStatus, false)
	eq(t, "retry option", c.ApplyRetry, 500*time.Millisecond)
	eq(t, "driver options", c.DriverOptionNames(), []string{"calicop4applyretrysecs", "calicop4endpointstatus", "mydriveroption"})
	v, _ := c.DriverOption("MyDriverOption")
	eq(t, "driver option lookup", v, "foo")
}

func TestConfigInvalidValuesKeepDefaultsAndSayWhy(t *testing.T) {
	c, err := model.ParseConfig(map[string]string{
		"DefaultEndpointToHostAction": "none",
		"FailsafeInboundHostPorts":    "icmp:8",
		"ReportingIntervalSecs":       "soon",
		"VXLANPort":                   "70000",
		"InterfacePrefix":             "cali;rm -rf",
		"NATOutgoingAddress":          "fd00::1",
		"ServiceLoopPrevention":       "Maybe",
	}, nil)
	ies := model.InvalidErrors(err)
	if len(ies) != 7 {
		t.Fatalf("want 7 config errors, got %d: %v", len(ies), err)
	}
	for _, ie := range ies {
		if ie.Kind != model.KindConfig || ie.Key == "" {
			t.Errorf("bad error %+v", ie)
		}
	}
	eq(t, "action default", c.DefaultEndpointToHostAction, "DROP")
	eq(t, "failsafe default", len(c.FailsafeInboundHostPorts), 9)
	eq(t, "reporting default", c.ReportingInterval, 30*time.Second)
	eq(t, "port default", c.VXLANPort, 4789)
	eq(t, "prefix default", c.InterfacePrefixes, []string{"cali"})
	eq(t, "nat default", c.NATOutgoingAddress.IsValid(), false)
	eq(t, "loop default", c.ServiceLoopPrevention, "Drop")
}

func TestUnknownPayloadIsNamedByFieldNumber(t *testing.T) {
	var b []byte
	b = protowire.AppendTag(b, 15, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	b = protowire.AppendTag(b, 39, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte{0x0a, 0x01, 'x'})
	msg, err := model.Unmarshal(b)
	u, ok := model.IsUnknownPayload(err)
	if !ok || u.Type != "field_39" {
		t.Fatalf("got %v, want an unknown payload field_39", err)
	}
	eq(t, "sequence number still decoded", msg.SequenceNumber, uint64(7))
	if err := model.NewState().Apply(msg); err == nil {
		t.Error("Apply accepted a message without a payload")
	}

	if _, err := model.Unmarshal([]byte{0xff, 0xff, 0xff}); err == nil || errors.As(err, new(*model.UnknownPayloadError)) {
		t.Errorf("garbage: got %v, want an undecodable error", err)
	}
}

func TestRoutesVTEPsAndWireguardDecode(t *testing.T) {
	s := model.NewState()
	mustApply(t, s,
		&proto.ToDataplane{Payload: &proto.ToDataplane_RouteUpdate{RouteUpdate: &proto.RouteUpdate{
			Type: proto.RouteType_REMOTE_WORKLOAD, IpPoolType: proto.IPPoolType_VXLAN, Dst: "10.65.1.0/26",
			DstNodeName: "node2", DstNodeIp: "192.168.122.12", NatOutgoing: true, TunnelType: &proto.TunnelType{Vxlan: true}}}},
		&proto.ToDataplane{Payload: &proto.ToDataplane_RouteUpdate{RouteUpdate: &proto.RouteUpdate{
			Type: proto.RouteType_LOCAL_WORKLOAD, Dst: "10.65.0.2/32", LocalWorkload: true, SameSubnet: true}}},
		&proto.ToDataplane{Payload: &proto.ToDataplane_VtepUpdate{VtepUpdate: &proto.VXLANTunnelEndpointUpdate{
			Node: "node2", Mac: "66:aa:bb:cc:dd:ee", Ipv4Addr: "10.65.1.0", ParentDeviceIp: "192.168.122.12"}}},
		&proto.ToDataplane{Payload: &proto.ToDataplane_WireguardEndpointUpdate{WireguardEndpointUpdate: &proto.WireguardEndpointUpdate{
			Hostname: "node2", PublicKey: "k", InterfaceIpv4Addr: "10.65.1.1"}}},
		&proto.ToDataplane{Payload: &proto.ToDataplane_WireguardEndpointV6Update{WireguardEndpointV6Update: &proto.WireguardEndpointV6Update{
			Hostname: "node2", PublicKeyV6: "k6", InterfaceIpv6Addr: "fd00:65:1::1"}}},
	)
	r, _ := s.Routes.Get(mustPrefix("10.65.1.0/26"))
	eq(t, "remote route", r, &model.Route{Dst: mustPrefix("10.65.1.0/26"), Type: model.RouteRemoteWorkload,
		IPPoolType: model.PoolVXLAN, DstNodeName: "node2", DstNodeIP: mustAddr("192.168.122.12"), NATOutgoing: true,
		Tunnel: model.TunnelType{VXLAN: true}})
	eq(t, "route order", s.Routes.Keys(), []netip.Prefix{mustPrefix("10.65.0.2/32"), mustPrefix("10.65.1.0/26")})
	v, _ := s.VTEPs.Get("node2")
	eq(t, "vtep", [3]string{v.MAC.String(), v.IPv4Addr.String(), v.ParentDeviceIP.String()},
		[3]string{"66:aa:bb:cc:dd:ee", "10.65.1.0", "192.168.122.12"})
	w6, _ := s.WireguardEndpointsV6.Get("node2")
	eq(t, "wg6", w6.InterfaceIPv6Addr, mustAddr("fd00:65:1::1"))

	mustApply(t, s, &proto.ToDataplane{Payload: &proto.ToDataplane_RouteRemove{RouteRemove: &proto.RouteRemove{Dst: "10.65.1.0/26"}}},
		&proto.ToDataplane{Payload: &proto.ToDataplane_VtepRemove{VtepRemove: &proto.VXLANTunnelEndpointRemove{Node: "node2"}}},
		&proto.ToDataplane{Payload: &proto.ToDataplane_WireguardEndpointRemove{WireguardEndpointRemove: &proto.WireguardEndpointRemove{Hostname: "node2"}}},
		&proto.ToDataplane{Payload: &proto.ToDataplane_WireguardEndpointV6Remove{WireguardEndpointV6Remove: &proto.WireguardEndpointV6Remove{Hostname: "node2"}}})
	eq(t, "after removes", [4]int{s.Routes.Len(), s.VTEPs.Len(), s.WireguardEndpoints.Len(), s.WireguardEndpointsV6.Len()}, [4]int{1, 0, 0, 0})
}

func TestAllInterfacesHostEndpoint(t *testing.T) {
	s := model.NewState()
	mustApply(t, s, &proto.ToDataplane{Payload: &proto.ToDataplane_HostEndpointUpdate{HostEndpointUpdate: &proto.HostEndpointUpdate{
		Id: &proto.HostEndpointID{EndpointId: "all"}, Endpoint: &proto.HostEndpoint{Name: "*", ProfileIds: []string{"p"}}}}})
	h, _ := s.HostEndpoints.Get("all")
	eq(t, "all interfaces", h.AllInterfaces(), true)
}
