package oracle_test

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/translator/oracle"
	"github.com/projectcalico/calico/felix/proto"
)

func state(t *testing.T, msgs ...*proto.ToDataplane) *model.State {
	t.Helper()
	s := model.NewState()
	for _, m := range msgs {
		if err := s.Apply(m); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func policy(tier, name string, in []*proto.Rule) *proto.ToDataplane {
	return &proto.ToDataplane{Payload: &proto.ToDataplane_ActivePolicyUpdate{ActivePolicyUpdate: &proto.ActivePolicyUpdate{
		Id: &proto.PolicyID{Tier: tier, Name: name}, Policy: &proto.Policy{InboundRules: in}}}}
}

func profile(name string, in []*proto.Rule) *proto.ToDataplane {
	return &proto.ToDataplane{Payload: &proto.ToDataplane_ActiveProfileUpdate{ActiveProfileUpdate: &proto.ActiveProfileUpdate{
		Id: &proto.ProfileID{Name: name}, Profile: &proto.Profile{InboundRules: in, OutboundRules: []*proto.Rule{{Action: "allow"}}}}}}
}

func wep(id, addr string, profiles []string, tiers ...*proto.TierInfo) *proto.ToDataplane {
	return &proto.ToDataplane{Payload: &proto.ToDataplane_WorkloadEndpointUpdate{WorkloadEndpointUpdate: &proto.WorkloadEndpointUpdate{
		Id: &proto.WorkloadEndpointID{OrchestratorId: "k8s", WorkloadId: id, EndpointId: "eth0"},
		Endpoint: &proto.WorkloadEndpoint{State: "active", Name: "cali" + id, Mac: "0a:58:0a:41:00:02",
			Ipv4Nets: []string{addr + "/32"}, ProfileIds: profiles, Tiers: tiers}}}}
}

var (
	tcp  = &proto.Protocol{NumberOrName: &proto.Protocol_Name{Name: "tcp"}}
	port = func(p int32) []*proto.PortRange { return []*proto.PortRange{{First: p, Last: p}} }
	pkt  = func(src, dst string, proto uint8, dport uint16) oracle.Packet {
		return oracle.Packet{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Proto: proto, SrcPort: 40000, DstPort: dport}
	}
)

func TestChainsFollowFelixTiersProfilesAndRules(t *testing.T) {
	s := state(t,
		&proto.ToDataplane{Payload: &proto.ToDataplane_IpsetUpdate{IpsetUpdate: &proto.IPSetUpdate{Id: "n:web",
			Type: proto.IPSetUpdate_IP_AND_PORT, Members: []string{"10.65.0.3,tcp:8443"}}}},
		policy("sec", "sec.pass-web", []*proto.Rule{
			{Action: "log"},
			{Action: "deny", Protocol: tcp, DstPorts: port(23)},
			{Action: "next-tier", Protocol: tcp, DstPorts: port(80), DstNamedPortIpSetIds: []string{"n:web"}},
		}),
		policy("default", "v6-only-negation", []*proto.Rule{
			// NotSrcNet with only IPv6 CIDRs: Felix does not render the rule for IPv4 at all.
			{Action: "allow", NotSrcNet: []string{"fd00::/8"}},
		}),
		profile("deny-ssh", []*proto.Rule{{Action: "next-tier", Protocol: tcp, DstPorts: port(22)}, {Action: "deny", Protocol: tcp, DstPorts: port(22)}}),
		profile("allow-all", []*proto.Rule{{Action: "allow"}}),
	)
	tiers := []model.TierInfo{{Name: "sec", IngressPolicies: []string{"sec.pass-web"}},
		{Name: "default", IngressPolicies: []string{"v6-only-negation"}}}
	cases := []struct {
		name     string
		p        oracle.Packet
		profiles []string
		want     oracle.ChainResult
	}{
		{"deny rule after a log rule", pkt("10.0.0.1", "10.65.0.3", 6, 23), []string{"allow-all"}, oracle.ResultDeny},
		{"pass skips the rest of the tier; the next tier denies at its end", pkt("10.0.0.1", "10.65.0.3", 6, 80), []string{"allow-all"}, oracle.ResultDeny},
		{"named port is an alternative of the numeric port", pkt("10.0.0.1", "10.65.0.3", 6, 8443), []string{"allow-all"}, oracle.ResultDeny},
		{"no policy matches in tier sec: end of tier", pkt("10.0.0.1", "10.65.0.3", 17, 53), []string{"allow-all"}, oracle.ResultDeny},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, why := oracle.EvalChain(s, oracle.Normal, oracle.NoFailsafe, tiers, c.profiles, true, c.p)
			if got != c.want {
				t.Errorf("got %s (%s), want %s", got, why, c.want)
			}
		})
	}
	// Without tiers the profiles apply in order; pass moves to the next profile; none matching denies.
	for _, c := range []struct {
		name     string
		p        oracle.Packet
		profiles []string
		want     oracle.ChainResult
	}{
		{"pass in a profile continues with the next profile", pkt("10.0.0.1", "10.65.0.3", 6, 22), []string{"deny-ssh", "allow-all"}, oracle.ResultAllow},
		{"no profile matches", pkt("10.0.0.1", "10.65.0.3", 6, 80), []string{"deny-ssh"}, oracle.ResultDeny},
		{"no profile at all", pkt("10.0.0.1", "10.65.0.3", 6, 80), nil, oracle.ResultDeny},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, why := oracle.EvalChain(s, oracle.Normal, oracle.NoFailsafe, nil, c.profiles, true, c.p)
			if got != c.want {
				t.Errorf("got %s (%s), want %s", got, why, c.want)
			}
		})
	}
	// The IPv6-only negated CIDR: the rule exists for IPv6 only (v6 from outside fd00::/8 is allowed).
	v6 := oracle.Packet{Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("fd00:65::3"), Proto: 6, DstPort: 80}
	if got, _ := oracle.EvalChain(s, oracle.Normal, oracle.NoFailsafe, tiers[1:], nil, true, v6); got != oracle.ResultAllow {
		t.Errorf("IPv6 packet: got %s, want allow", got)
	}
	if got, _ := oracle.EvalChain(s, oracle.Normal, oracle.NoFailsafe, tiers[1:], nil, true, pkt("10.0.0.1", "10.65.0.3", 6, 80)); got != oracle.ResultDeny {
		t.Errorf("IPv4 packet: got %s, want deny (the rule does not exist for IPv4)", got)
	}
}

func TestPathsFollowFelixTables(t *testing.T) {
	node := oracle.Node{Name: "node1", Addresses: []netip.Addr{netip.MustParseAddr("192.168.122.11")}, Uplink: "eth0"}
	denyAll := profile("deny-all", []*proto.Rule{{Action: "deny"}})
	hep := func(mut func(*proto.HostEndpoint)) *proto.ToDataplane {
		h := &proto.HostEndpoint{Name: "eth0", ProfileIds: []string{"deny-all"}}
		mut(h)
		return &proto.ToDataplane{Payload: &proto.ToDataplane_HostEndpointUpdate{HostEndpointUpdate: &proto.HostEndpointUpdate{
			Id: &proto.HostEndpointID{EndpointId: "h"}, Endpoint: h}}}
	}
	allowPol := policy("default", "allow", []*proto.Rule{{Action: "allow"}})
	podA := model.WorkloadEndpointKey{OrchestratorID: "k8s", WorkloadID: "a", EndpointID: "eth0"}
	cfg := func(kv ...string) *proto.ToDataplane {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return &proto.ToDataplane{Payload: &proto.ToDataplane_ConfigUpdate{ConfigUpdate: &proto.ConfigUpdate{Config: m}}}
	}
	cases := []struct {
		name string
		msgs []*proto.ToDataplane
		in   oracle.Ingress
		p    oracle.Packet
		want bool
	}{
		{"host to a workload: no policy (Felix's OUTPUT chain returns for workload interfaces)",
			[]*proto.ToDataplane{denyAll, wep("a", "10.65.0.2", []string{"deny-all"})},
			oracle.Ingress{Host: true}, pkt("192.168.122.11", "10.65.0.2", 6, 80), true},
		{"traffic the host forwards to a workload (a source that is not the node's) runs the workload's ingress policy",
			[]*proto.ToDataplane{denyAll, wep("a", "10.65.0.2", []string{"deny-all"})},
			oracle.Ingress{Host: true}, pkt("172.16.0.9", "10.65.0.2", 6, 80), false},
		{"traffic the host forwards out of the uplink runs applyOnForward egress policy, not the host's egress policy",
			[]*proto.ToDataplane{profile("allow-all", []*proto.Rule{{Action: "allow"}}), hep(func(h *proto.HostEndpoint) {
				h.ProfileIds = []string{"allow-all"}
				h.ForwardTiers = []*proto.TierInfo{{Name: "default", EgressPolicies: []string{"deny"}}}
			}), policy("default", "deny", []*proto.Rule{{Action: "deny"}})},
			oracle.Ingress{Host: true}, pkt("172.16.0.9", "8.8.8.8", 6, 80), false},
		{"the host's own traffic out of the uplink runs the host endpoint's egress policy, not applyOnForward",
			[]*proto.ToDataplane{profile("allow-all", []*proto.Rule{{Action: "allow"}}), hep(func(h *proto.HostEndpoint) {
				h.ProfileIds = []string{"allow-all"}
				h.ForwardTiers = []*proto.TierInfo{{Name: "default", EgressPolicies: []string{"deny"}}}
			}), policy("default", "deny", []*proto.Rule{{Action: "deny"}})},
			oracle.Ingress{Host: true}, pkt("192.168.122.11", "8.8.8.8", 6, 80), true},
		{"workload to host: egress policy, then DefaultEndpointToHostAction DROP (default)",
			[]*proto.ToDataplane{allowPol, profile("allow-all", []*proto.Rule{{Action: "allow"}}), wep("a", "10.65.0.2", []string{"allow-all"})},
			oracle.Ingress{Workload: &podA}, pkt("10.65.0.2", "192.168.122.11", 6, 80), false},
		{"workload to host with ACCEPT",
			[]*proto.ToDataplane{cfg("DefaultEndpointToHostAction", "ACCEPT"), profile("allow-all", []*proto.Rule{{Action: "allow"}}), wep("a", "10.65.0.2", []string{"allow-all"})},
			oracle.Ingress{Workload: &podA}, pkt("10.65.0.2", "192.168.122.11", 6, 80), true},
		{"spoofed source from a workload",
			[]*proto.ToDataplane{profile("allow-all", []*proto.Rule{{Action: "allow"}}), wep("a", "10.65.0.2", []string{"allow-all"})},
			oracle.Ingress{Workload: &podA}, pkt("10.65.0.9", "8.8.8.8", 6, 80), false},
		{"host endpoint without policy denies traffic to the host, except failsafe ports",
			[]*proto.ToDataplane{denyAll, hep(func(*proto.HostEndpoint) {})},
			oracle.Ingress{Iface: "eth0"}, pkt("10.0.0.1", "192.168.122.11", 6, 22), true},
		{"host endpoint without policy denies traffic to the host",
			[]*proto.ToDataplane{denyAll, hep(func(*proto.HostEndpoint) {})},
			oracle.Ingress{Iface: "eth0"}, pkt("10.0.0.1", "192.168.122.11", 6, 80), false},
		{"pre-DNAT allow skips the host endpoint's normal ingress policy",
			[]*proto.ToDataplane{denyAll, allowPol, hep(func(h *proto.HostEndpoint) {
				h.PreDnatTiers = []*proto.TierInfo{{Name: "default", IngressPolicies: []string{"allow"}}}
			})},
			oracle.Ingress{Iface: "eth0"}, pkt("10.0.0.1", "192.168.122.11", 6, 80), true},
		{"untracked allow towards a workload still runs the workload's ingress policy",
			[]*proto.ToDataplane{denyAll, allowPol, wep("a", "10.65.0.2", []string{"deny-all"}), hep(func(h *proto.HostEndpoint) {
				h.UntrackedTiers = []*proto.TierInfo{{Name: "default", IngressPolicies: []string{"allow"}}}
			})},
			oracle.Ingress{Iface: "eth0"}, pkt("10.0.0.1", "10.65.0.2", 6, 80), false},
		{"forwarded traffic without applyOnForward policy is allowed (then the workload's policy)",
			[]*proto.ToDataplane{denyAll, profile("allow-all", []*proto.Rule{{Action: "allow"}}), wep("a", "10.65.0.2", []string{"allow-all"}), hep(func(*proto.HostEndpoint) {})},
			oracle.Ingress{Iface: "eth0"}, pkt("10.0.0.1", "10.65.0.2", 6, 80), true},
		{"established traffic skips policy",
			[]*proto.ToDataplane{denyAll, wep("a", "10.65.0.2", []string{"deny-all"})},
			oracle.Ingress{Iface: "eth0"}, oracle.Packet{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.65.0.2"), Proto: 6, SrcPort: 80, DstPort: 40000, CT: oracle.CTEstablished}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := state(t, c.msgs...)
			got, to := oracle.Evaluate(s, node, c.in, c.p)
			if got.Allowed != c.want {
				t.Errorf("%s → %s: allowed=%v (%s), want %v", c.in, to, got.Allowed, got.Why, c.want)
			}
		})
	}
}

// TestRulesNamingMissingIPSetsAreFailSafe: a rule naming an IP set the model does not have (or has with a
// type that does not fit) is a state Felix never sends (its rule scanner removes a set only once no active
// rule names it); calico-p4 renders it fail-safe, and so does the oracle: allow, pass and log rules never
// match, deny rules treat the dangling condition as satisfied.
func TestRulesNamingMissingIPSetsAreFailSafe(t *testing.T) {
	s := state(t,
		&proto.ToDataplane{Payload: &proto.ToDataplane_IpsetUpdate{IpsetUpdate: &proto.IPSetUpdate{Id: "s:net",
			Type: proto.IPSetUpdate_NET, Members: []string{"10.1.0.0/16"}}}},
		&proto.ToDataplane{Payload: &proto.ToDataplane_IpsetUpdate{IpsetUpdate: &proto.IPSetUpdate{Id: "n:web",
			Type: proto.IPSetUpdate_IP_AND_PORT, Members: []string{"10.65.0.3,tcp:8443"}}}},
	)
	icmpEchoReply := oracle.Packet{Src: netip.MustParseAddr("192.168.122.11"), Dst: netip.MustParseAddr("192.168.122.12"),
		Proto: oracle.ProtoICMP, ICMPType: 0, ICMPCode: 3}
	cases := []struct {
		name string
		rule *proto.Rule
		p    oracle.Packet
		want bool
	}{
		// The case the hitless test found (seed 1002): an untracked egress allow whose only conditions
		// were a negated named-port set that had been removed and a negated NET set.
		{"allow with a missing negated named-port set never matches", &proto.Rule{Action: "allow",
			NotSrcNamedPortIpSetIds: []string{"n:gone"}, NotSrcIpSetIds: []string{"s:net"}}, icmpEchoReply, false},
		{"allow with a missing source set never matches", &proto.Rule{Action: "allow", SrcIpSetIds: []string{"s:gone"}},
			pkt("10.1.0.1", "10.65.0.3", 6, 80), false},
		{"pass with a missing negated set never matches", &proto.Rule{Action: "next-tier", NotDstIpSetIds: []string{"s:gone"}},
			pkt("10.1.0.1", "10.65.0.3", 6, 80), false},
		{"allow naming a NET set as a named port never matches", &proto.Rule{Action: "allow", DstNamedPortIpSetIds: []string{"s:net"}},
			pkt("10.1.0.1", "10.1.0.3", 6, 80), false},
		{"allow naming an IP_AND_PORT set as an address set never matches", &proto.Rule{Action: "allow", DstIpSetIds: []string{"n:web"}},
			pkt("10.1.0.1", "10.65.0.3", 6, 8443), false},
		{"deny with a missing set treats it as satisfied", &proto.Rule{Action: "deny", SrcIpSetIds: []string{"s:gone"}},
			pkt("10.9.0.1", "10.65.0.3", 6, 80), true},
		{"deny keeps its other conditions", &proto.Rule{Action: "deny", SrcIpSetIds: []string{"s:gone", "s:net"}},
			pkt("10.9.0.1", "10.65.0.3", 6, 80), false},
		{"deny with a missing named port: the whole port group is satisfied", &proto.Rule{Action: "deny",
			DstPorts: port(80), DstNamedPortIpSetIds: []string{"n:web", "n:gone"}}, pkt("10.9.0.1", "10.65.0.3", 6, 22), true},
		{"deny with a present set still matches by it", &proto.Rule{Action: "deny", NotSrcIpSetIds: []string{"s:net"}},
			pkt("10.1.0.1", "10.65.0.3", 6, 80), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := state(t, policy("default", "p", []*proto.Rule{c.rule}))
			pol, _ := m.Policies.Get(model.PolicyKey{Tier: "default", Name: "p"})
			if got := oracle.RuleMatches(s, &pol.InboundRules[0], c.p); got != c.want {
				t.Errorf("matches=%v, want %v (dangling: %v)", got, c.want, oracle.DanglingSets(s, &pol.InboundRules[0]))
			}
		})
	}
}

// TestAllInterfacesHostEndpointAndEndpointToHostAction pins Felix's semantics for an all-interfaces ("*")
// host endpoint (felix/fv/ep_to_host_action_test.go, felix/rules/static.go): on host interfaces it is the
// host endpoint (its normal policy after the failsafe ports), but workload-to-host traffic never runs its
// normal policy — cali-INPUT sends packets from workload interfaces to cali-wl-to-host, which ends with
// DefaultEndpointToHostAction: DROP drops, ACCEPT accepts and RETURN returns to the INPUT chain after
// cali-INPUT (the host's own rules, here none), skipping the host endpoint dispatch.
func TestAllInterfacesHostEndpointAndEndpointToHostAction(t *testing.T) {
	node := oracle.Node{Name: "node1", Addresses: []netip.Addr{netip.MustParseAddr("192.168.122.11")}, Uplink: "eth0"}
	podA := model.WorkloadEndpointKey{OrchestratorID: "k8s", WorkloadID: "a", EndpointID: "eth0"}
	web := &proto.ToDataplane{Payload: &proto.ToDataplane_ActivePolicyUpdate{ActivePolicyUpdate: &proto.ActivePolicyUpdate{
		Id: &proto.PolicyID{Tier: "default", Name: "default.hep-web"}, Policy: &proto.Policy{
			InboundRules: []*proto.Rule{{Action: "allow", Protocol: tcp, DstPorts: port(80)}}}}}}
	star := &proto.ToDataplane{Payload: &proto.ToDataplane_HostEndpointUpdate{HostEndpointUpdate: &proto.HostEndpointUpdate{
		Id: &proto.HostEndpointID{EndpointId: "node1-auto"}, Endpoint: &proto.HostEndpoint{Name: "*",
			ExpectedIpv4Addrs: []string{"192.168.122.11"},
			Tiers:             []*proto.TierInfo{{Name: "default", IngressPolicies: []string{"default.hep-web"}, EgressPolicies: []string{"default.hep-web"}}}}}}}
	allowAll := profile("allow-all", []*proto.Rule{{Action: "allow"}})
	cfg := func(action string) *proto.ToDataplane {
		return &proto.ToDataplane{Payload: &proto.ToDataplane_ConfigUpdate{ConfigUpdate: &proto.ConfigUpdate{
			Config: map[string]string{"DefaultEndpointToHostAction": action}}}}
	}
	fromPod, fromUplink, fromHost := oracle.Ingress{Workload: &podA}, oracle.Ingress{Iface: "eth0"}, oracle.Ingress{Host: true}
	cases := []struct {
		action string
		in     oracle.Ingress
		p      oracle.Packet
		want   bool
	}{
		{"RETURN", fromPod, pkt("10.65.0.2", "192.168.122.11", 6, 80), true},
		{"RETURN", fromPod, pkt("10.65.0.2", "192.168.122.11", 6, 81), true}, // the host endpoint's policy would deny it
		{"ACCEPT", fromPod, pkt("10.65.0.2", "192.168.122.11", 6, 81), true},
		{"DROP", fromPod, pkt("10.65.0.2", "192.168.122.11", 6, 80), false}, // the host endpoint's policy would allow it
		{"DROP", fromPod, pkt("10.65.0.2", "192.168.122.11", 6, 22), false}, // failsafe ports are for host interfaces
		{"RETURN", fromUplink, pkt("192.168.122.1", "192.168.122.11", 6, 80), true},
		{"RETURN", fromUplink, pkt("192.168.122.1", "192.168.122.11", 6, 81), false},
		{"RETURN", fromUplink, pkt("192.168.122.1", "192.168.122.11", 6, 22), true}, // failsafe inbound
		{"RETURN", fromHost, pkt("192.168.122.11", "192.168.122.1", 6, 80), false},  // no egress rule
		{"RETURN", fromHost, pkt("192.168.122.11", "192.168.122.1", 17, 53), true},  // failsafe outbound
		{"RETURN", fromHost, pkt("192.168.122.11", "10.65.0.2", 6, 81), true},       // host to workload: no policy
		{"RETURN", fromPod, pkt("10.65.0.2", "192.168.122.1", 6, 81), true},         // forwarded: no applyOnForward policy
		{"RETURN", fromUplink, pkt("192.168.122.1", "10.65.0.2", 6, 81), true},      // forwarded to a workload
	}
	for _, c := range cases {
		t.Run(c.action+" "+c.in.String()+" "+c.p.Dst.String()+":"+strconv.Itoa(int(c.p.DstPort)), func(t *testing.T) {
			s := state(t, cfg(c.action), allowAll, web, star, wep("a", "10.65.0.2", []string{"allow-all"}))
			got, to := oracle.Evaluate(s, node, c.in, c.p)
			if got.Allowed != c.want {
				t.Errorf("%s → %s: allowed=%v (%s), want %v", c.in, to, got.Allowed, got.Why, c.want)
			}
		})
	}
}

// TestAllInterfacesPreDNATPolicyCoversEveryInterface: Felix's mangle PREROUTING dispatches every interface
// without a pre-DNAT host endpoint of its own — workload interfaces included — to the "*" endpoint's
// pre-DNAT chain (felix/rules/dispatch.go, endpoint_mgr.go; its FV ep_to_host_action_test.go).
func TestAllInterfacesPreDNATPolicyCoversEveryInterface(t *testing.T) {
	node := oracle.Node{Name: "node1", Addresses: []netip.Addr{netip.MustParseAddr("192.168.122.11")}, Uplink: "eth0"}
	podA := model.WorkloadEndpointKey{OrchestratorID: "k8s", WorkloadID: "a", EndpointID: "eth0"}
	hepMsg := func(id string, h *proto.HostEndpoint) *proto.ToDataplane {
		return &proto.ToDataplane{Payload: &proto.ToDataplane_HostEndpointUpdate{HostEndpointUpdate: &proto.HostEndpointUpdate{
			Id: &proto.HostEndpointID{EndpointId: id}, Endpoint: h}}}
	}
	deny81 := policy("default", "deny-81", []*proto.Rule{{Action: "deny", Protocol: tcp, DstPorts: port(81)}})
	allow82 := policy("default", "allow-82", []*proto.Rule{{Action: "allow", Protocol: tcp, DstPorts: port(82)}})
	preDNAT := []*proto.TierInfo{{Name: "default", IngressPolicies: []string{"deny-81", "allow-82"}}}
	allowAll := profile("allow-all", []*proto.Rule{{Action: "allow"}})
	denyAll := &proto.ToDataplane{Payload: &proto.ToDataplane_ActiveProfileUpdate{ActiveProfileUpdate: &proto.ActiveProfileUpdate{
		Id: &proto.ProfileID{Name: "deny-all"}, Profile: &proto.Profile{InboundRules: []*proto.Rule{{Action: "deny"}},
			OutboundRules: []*proto.Rule{{Action: "deny"}}}}}}
	accept := &proto.ToDataplane{Payload: &proto.ToDataplane_ConfigUpdate{ConfigUpdate: &proto.ConfigUpdate{
		Config: map[string]string{"DefaultEndpointToHostAction": "ACCEPT"}}}}
	star := hepMsg("node1-auto", &proto.HostEndpoint{Name: "*", ProfileIds: []string{"allow-all"}, PreDnatTiers: preDNAT})
	starNoPreDNAT := hepMsg("node1-auto", &proto.HostEndpoint{Name: "*", ProfileIds: []string{"allow-all"}})
	named := hepMsg("a-eth0", &proto.HostEndpoint{Name: "eth0", ProfileIds: []string{"allow-all"}})
	fromPod, fromUplink := oracle.Ingress{Workload: &podA}, oracle.Ingress{Iface: "eth0"}
	cases := []struct {
		name string
		msgs []*proto.ToDataplane
		wl   string // the workload's profile
		in   oracle.Ingress
		p    oracle.Packet
		want bool
	}{
		{"denies pod to host", []*proto.ToDataplane{star}, "allow-all", fromPod, pkt("10.65.0.2", "192.168.122.11", 6, 81), false},
		{"denies pod to pod", []*proto.ToDataplane{star}, "allow-all", fromPod, pkt("10.65.0.2", "10.65.0.2", 6, 81), false},
		{"denies pod to the outside", []*proto.ToDataplane{star}, "allow-all", fromPod, pkt("10.65.0.2", "8.8.8.8", 6, 81), false},
		{"no verdict: the workload's own policy decides", []*proto.ToDataplane{star}, "allow-all", fromPod, pkt("10.65.0.2", "192.168.122.11", 6, 80), true},
		{"a pre-DNAT allow does not skip the workload's egress policy", []*proto.ToDataplane{star}, "deny-all", fromPod, pkt("10.65.0.2", "8.8.8.8", 6, 82), false},
		{"a pre-DNAT allow does not skip the workload's egress policy to the host", []*proto.ToDataplane{star}, "deny-all", fromPod, pkt("10.65.0.2", "192.168.122.11", 6, 82), false},
		{"without pre-DNAT policy the * endpoint has no effect", []*proto.ToDataplane{starNoPreDNAT}, "allow-all", fromPod, pkt("10.65.0.2", "192.168.122.11", 6, 81), true},
		{"a named endpoint without pre-DNAT policy gets the * one's", []*proto.ToDataplane{named, star}, "allow-all", fromUplink, pkt("192.168.122.1", "10.65.0.2", 6, 81), false},
		{"a named endpoint with pre-DNAT policy keeps its own", []*proto.ToDataplane{
			hepMsg("a-eth0", &proto.HostEndpoint{Name: "eth0", ProfileIds: []string{"allow-all"},
				PreDnatTiers: []*proto.TierInfo{{Name: "default", IngressPolicies: []string{"allow-82"}}}}), star},
			"allow-all", fromUplink, pkt("192.168.122.1", "10.65.0.2", 6, 81), true},
		{"the host's own traffic has no pre-DNAT policy", []*proto.ToDataplane{star}, "allow-all", oracle.Ingress{Host: true}, pkt("192.168.122.11", "10.65.0.2", 6, 81), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msgs := append([]*proto.ToDataplane{accept, allowAll, denyAll, deny81, allow82, wep("a", "10.65.0.2", []string{c.wl})}, c.msgs...)
			s := state(t, msgs...)
			got, to := oracle.Evaluate(s, node, c.in, c.p)
			if got.Allowed != c.want {
				t.Errorf("%s → %s: allowed=%v (%s), want %v", c.in, to, got.Allowed, got.Why, c.want)
			}
		})
	}
}

// TestAllInterfacesForwardPolicyCoversWorkloadInterfaces: Felix's filter FORWARD chain runs the
// from-host-endpoint forward dispatch for every forwarded packet (unless the accept mark is set) before
// the from-wl dispatch, and the to-host-endpoint forward dispatch after the to-wl one; both default to the
// "*" endpoint's forward chains, so its applyOnForward policy applies to traffic forwarded from and to
// workload interfaces — pod to pod on the node included (felix/rules/static.go StaticFilterForwardChains,
// felix/rules/dispatch.go hostDispatchChains). A direction without forward policy allows.
func TestAllInterfacesForwardPolicyCoversWorkloadInterfaces(t *testing.T) {
	node := oracle.Node{Name: "node1", Addresses: []netip.Addr{netip.MustParseAddr("192.168.122.11")}, Uplink: "eth0"}
	podA := model.WorkloadEndpointKey{OrchestratorID: "k8s", WorkloadID: "a", EndpointID: "eth0"}
	hepMsg := func(id string, h *proto.HostEndpoint) *proto.ToDataplane {
		return &proto.ToDataplane{Payload: &proto.ToDataplane_HostEndpointUpdate{HostEndpointUpdate: &proto.HostEndpointUpdate{
			Id: &proto.HostEndpointID{EndpointId: id}, Endpoint: h}}}
	}
	// fwd: ingress rules deny TCP 81 (forward ingress: from the interface); egress rules deny TCP 82
	// (forward egress: to the interface); both allow anything else.
	fwd := &proto.ToDataplane{Payload: &proto.ToDataplane_ActivePolicyUpdate{ActivePolicyUpdate: &proto.ActivePolicyUpdate{
		Id: &proto.PolicyID{Tier: "default", Name: "fwd"}, Policy: &proto.Policy{
			InboundRules:  []*proto.Rule{{Action: "deny", Protocol: tcp, DstPorts: port(81)}, {Action: "allow"}},
			OutboundRules: []*proto.Rule{{Action: "deny", Protocol: tcp, DstPorts: port(82)}, {Action: "allow"}}}}}}
	allow83 := policy("default", "allow-83", []*proto.Rule{{Action: "allow", Protocol: tcp, DstPorts: port(83)}})
	allowAll := profile("allow-all", []*proto.Rule{{Action: "allow"}})
	accept := &proto.ToDataplane{Payload: &proto.ToDataplane_ConfigUpdate{ConfigUpdate: &proto.ConfigUpdate{
		Config: map[string]string{"DefaultEndpointToHostAction": "ACCEPT"}}}}
	both := []*proto.TierInfo{{Name: "default", IngressPolicies: []string{"fwd"}, EgressPolicies: []string{"fwd"}}}
	star := hepMsg("node1-auto", &proto.HostEndpoint{Name: "*", ProfileIds: []string{"allow-all"}, ForwardTiers: both})
	starIn := hepMsg("node1-auto", &proto.HostEndpoint{Name: "*", ProfileIds: []string{"allow-all"},
		ForwardTiers: []*proto.TierInfo{{Name: "default", IngressPolicies: []string{"fwd"}}}})
	starNoFwd := hepMsg("node1-auto", &proto.HostEndpoint{Name: "*", ProfileIds: []string{"allow-all"}})
	starPreDNAT := hepMsg("node1-auto", &proto.HostEndpoint{Name: "*", ProfileIds: []string{"allow-all"}, ForwardTiers: both,
		PreDnatTiers: []*proto.TierInfo{{Name: "default", IngressPolicies: []string{"allow-83"}}}})
	namedUplink := hepMsg("a-eth0", &proto.HostEndpoint{Name: "eth0", ProfileIds: []string{"allow-all"}})
	biggerStar := hepMsg("zz-auto", &proto.HostEndpoint{Name: "*", ProfileIds: []string{"allow-all"}})
	fromPod, fromUplink := oracle.Ingress{Workload: &podA}, oracle.Ingress{Iface: "eth0"}
	cases := []struct {
		name string
		msgs []*proto.ToDataplane
		in   oracle.Ingress
		p    oracle.Packet
		want bool
	}{
		{"forward ingress denies pod to pod", []*proto.ToDataplane{star}, fromPod, pkt("10.65.0.2", "10.65.0.3", 6, 81), false},
		{"forward ingress denies pod to the outside", []*proto.ToDataplane{star}, fromPod, pkt("10.65.0.2", "8.8.8.8", 6, 81), false},
		{"pod to host is not forwarded", []*proto.ToDataplane{star}, fromPod, pkt("10.65.0.2", "192.168.122.11", 6, 81), true},
		{"forward egress denies pod to pod", []*proto.ToDataplane{star}, fromPod, pkt("10.65.0.2", "10.65.0.3", 6, 82), false},
		{"forward egress denies the outside to a pod", []*proto.ToDataplane{star}, fromUplink, pkt("8.8.8.8", "10.65.0.3", 6, 82), false},
		{"forward egress denies traffic the host forwards to a pod", []*proto.ToDataplane{star}, oracle.Ingress{Host: true}, pkt("172.16.0.1", "10.65.0.3", 6, 82), false},
		{"the host's own traffic to a pod runs no forward policy", []*proto.ToDataplane{star}, oracle.Ingress{Host: true}, pkt("192.168.122.11", "10.65.0.3", 6, 82), true},
		{"forward egress of a pod going out is the uplink's, not the pod's", []*proto.ToDataplane{star}, fromPod, pkt("10.65.0.2", "8.8.8.8", 6, 82), false},
		{"other ports pass", []*proto.ToDataplane{star}, fromPod, pkt("10.65.0.2", "10.65.0.3", 6, 80), true},
		{"only the direction with policy applies", []*proto.ToDataplane{starIn}, fromPod, pkt("10.65.0.2", "10.65.0.3", 6, 82), true},
		{"without forward policy the * endpoint has no effect", []*proto.ToDataplane{starNoFwd}, fromPod, pkt("10.65.0.2", "10.65.0.3", 6, 81), true},
		{"a named uplink endpoint does not take workload interfaces", []*proto.ToDataplane{namedUplink, star}, fromPod, pkt("10.65.0.2", "10.65.0.3", 6, 81), false},
		{"a named uplink endpoint without forward policy allows pod to the outside", []*proto.ToDataplane{namedUplink, starIn}, fromPod, pkt("10.65.0.2", "8.8.8.8", 6, 82), true},
		{"the smallest * endpoint is the one in use", []*proto.ToDataplane{biggerStar, star}, fromPod, pkt("10.65.0.2", "10.65.0.3", 6, 81), false},
		{"a pre-DNAT allow skips the forward ingress check", []*proto.ToDataplane{starPreDNAT}, fromPod, pkt("10.65.0.2", "10.65.0.3", 6, 83), true},
		{"a pre-DNAT allow does not skip the forward egress check", []*proto.ToDataplane{starPreDNAT,
			hepMsg("node1-auto", &proto.HostEndpoint{Name: "*", ProfileIds: []string{"allow-all"},
				ForwardTiers: []*proto.TierInfo{{Name: "default", EgressPolicies: []string{"allow-83"}}},
				PreDnatTiers: []*proto.TierInfo{{Name: "default", IngressPolicies: []string{"allow-83"}}}})},
			fromPod, pkt("10.65.0.2", "10.65.0.3", 6, 82), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msgs := append([]*proto.ToDataplane{accept, allowAll, fwd, allow83,
				wep("a", "10.65.0.2", []string{"allow-all"}), wep("b", "10.65.0.3", []string{"allow-all"})}, c.msgs...)
			s := state(t, msgs...)
			got, to := oracle.Evaluate(s, node, c.in, c.p)
			if got.Allowed != c.want {
				t.Errorf("%s → %s: allowed=%v (%s), want %v", c.in, to, got.Allowed, got.Why, c.want)
			}
		})
	}
}
