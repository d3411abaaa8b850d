package model_test

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/e2e/felixsim"
	"github.com/projectcalico/calico/felix/proto"
)

var captures = []string{"basic.jsonl", "basic-resync.jsonl", "k8s-services.jsonl", "calico-tiers.jsonl"}

func loadCapture(t *testing.T, name string) *felixsim.Stream {
	t.Helper()
	s, err := felixsim.LoadStream(felixsim.CapturePath(name))
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	return s
}

// applyAll decodes msgs through the wire form (Marshal → model.Unmarshal → Apply) and fails on any
// invalid object or unknown payload.
func applyAll(t *testing.T, s *model.State, msgs []*proto.ToDataplane) {
	t.Helper()
	for _, m := range msgs {
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("seq %d: marshal: %v", m.SequenceNumber, err)
		}
		dec, err := model.Unmarshal(b)
		if err != nil {
			t.Fatalf("seq %d: %v", m.SequenceNumber, err)
		}
		if err := s.Apply(dec); err != nil {
			t.Fatalf("seq %d (%s): %v", m.SequenceNumber, model.PayloadName(dec), err)
		}
	}
}

func stateThrough(t *testing.T, capture, step string) *model.State {
	t.Helper()
	msgs, err := loadCapture(t, capture).Through(step)
	if err != nil {
		t.Fatal(err)
	}
	s := model.NewState()
	applyAll(t, s, msgs)
	return s
}

func TestEveryCaptureDecodesWithNoInvalidObjectsAndNoUnknownPayloads(t *testing.T) {
	seen := map[string]int{}
	for _, c := range captures {
		t.Run(c, func(t *testing.T) {
			st := loadCapture(t, c)
			msgs := st.Messages()
			if len(msgs) == 0 {
				t.Fatal("empty capture")
			}
			for _, m := range msgs {
				seen[model.PayloadName(m)]++
			}
			applyAll(t, model.NewState(), msgs)
		})
	}
	// The captures exercise these payloads; every one must be recognised by name.
	for name := range seen {
		if !slices.Contains(model.Payloads, name) {
			t.Errorf("payload %q seen in captures but not in model.Payloads", name)
		}
	}
	if seen["none"] != 0 {
		t.Errorf("%d messages without a known payload", seen["none"])
	}
}

func TestPayloadsListsEveryToDataplaneOneofField(t *testing.T) {
	// Every oneof wrapper type of the served proto must map to a distinct name listed in Payloads.
	_, _, _, wrappers := (&proto.ToDataplane{}).XXX_OneofFuncs()
	if len(wrappers) != len(model.Payloads) {
		t.Fatalf("proto has %d payloads, model.Payloads lists %d", len(wrappers), len(model.Payloads))
	}
	names := map[string]bool{}
	for _, w := range wrappers {
		msg := &proto.ToDataplane{}
		reflect.ValueOf(msg).Elem().FieldByName("Payload").Set(reflect.ValueOf(w))
		name := model.PayloadName(msg)
		if !slices.Contains(model.Payloads, name) || names[name] {
			t.Errorf("%T: name %q missing from Payloads or duplicated", w, name)
		}
		names[name] = true
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }

func wep(t *testing.T, s *model.State, workload string) *model.WorkloadEndpoint {
	t.Helper()
	w, ok := s.WorkloadEndpoints.Get(model.WorkloadEndpointKey{OrchestratorID: "k8s", WorkloadID: workload, EndpointID: "eth0"})
	if !ok {
		t.Fatalf("no workload endpoint %s; have %v", workload, s.WorkloadEndpoints.Keys())
	}
	return w
}

func ipset(t *testing.T, s *model.State, id string) *model.IPSet {
	t.Helper()
	set, ok := s.IPSets.Get(id)
	if !ok {
		t.Fatalf("no IP set %s", id)
	}
	return set
}

func policy(t *testing.T, s *model.State, name string) *model.Policy {
	t.Helper()
	p, ok := s.Policies.Get(model.PolicyKey{Tier: "default", Name: name})
	if !ok {
		t.Fatalf("no policy %s; have %v", name, s.Policies.Keys())
	}
	return p
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %s\n want %s", what, show(got), show(want))
	}
}

// show renders a value readably (netip values as text, pointers followed).
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}

const (
	selFrontendEP = "s:Up_GutopGQk0lcR7OfV_vXQeMju2V-FhUYlR4Q"
	namedPort8080 = "n:cl9_Kgeu4H0OGLbhovVR3NBLUOZscKeMK1Mu4A"
	gnsExternal   = "s:FdFMF4URZJkEmjXXdMRL_HY04mjff8RkVoXhRg"
)

func TestBasicCaptureStepByStep(t *testing.T) {
	tests := []struct {
		step  string
		check func(t *testing.T, s *model.State)
	}{
		{"", func(t *testing.T, s *model.State) {
			c := s.Config()
			eq(t, "hostname", c.FelixHostname, "node1")
			eq(t, "reporting interval", c.ReportingInterval, 10*time.Second)
			eq(t, "raw keys", len(c.Raw), 16)
			eq(t, "raw DataplaneDriver", c.Raw["DataplaneDriver"], "/usr/local/bin/calico-p4-driver")
			eq(t, "env source", c.Sources[4].Config["felixhostname"], "node1")
			eq(t, "default endpoint-to-host action", c.DefaultEndpointToHostAction, "DROP")
			eq(t, "failsafe in (Felix default)", len(c.FailsafeInboundHostPorts), 9)
			hm, _ := s.HostMetadata.Get("node1")
			eq(t, "node1 v4", hm.IPv4Addr, mustAddr("192.168.122.11"))
			v46, _ := s.HostMetadataV4V6.Get("node1")
			eq(t, "node1 v4v6", v46.IPv4Addr, mustPrefix("192.168.122.11/24"))
			eq(t, "node1 labels", v46.Labels, map[string]string{"kubernetes.io/hostname": "node1"})
			e, ok := s.Encapsulation()
			eq(t, "encapsulation", e, model.Encapsulation{})
			eq(t, "encapsulation received", ok, true)
			_, ok = s.BGPConfig()
			eq(t, "no BGP config yet", ok, false)
		}},
		{"01 nodes: update node1 (labels, IPv6), create remote node2", func(t *testing.T, s *model.State) {
			v6, _ := s.HostMetadataV6.Get("node1")
			eq(t, "node1 v6", v6.IPv6Addr, mustAddr("fd00:122::11"))
			n2, _ := s.HostMetadataV4V6.Get("node2")
			eq(t, "node2", n2, &model.HostMetadataV4V6{Hostname: "node2", IPv4Addr: mustPrefix("192.168.122.12/24"),
				ASNumber: "64512", Labels: map[string]string{"kubernetes.io/hostname": "node2", "rack": "r2"}})
			n1, _ := s.HostMetadataV4V6.Get("node1")
			eq(t, "node1 v6 prefix keeps host bits", n1.IPv6Addr, mustPrefix("fd00:122::11/64"))
			eq(t, "host metadata", s.HostMetadata.Keys(), []string{"node1", "node2"})
		}},
		{"02 IP pools (no encapsulation)", func(t *testing.T, s *model.State) {
			p, _ := s.IPAMPools.Get("10.65.0.0-16")
			eq(t, "v4 pool", p, &model.IPAMPool{ID: "10.65.0.0-16", CIDR: mustPrefix("10.65.0.0/16"), Masquerade: true})
			p6, _ := s.IPAMPools.Get("fd00:65::-112")
			eq(t, "v6 pool", p6.CIDR, mustPrefix("fd00:65::/112"))
		}},
		{"03 profiles: prof-dev, namespace profile kns.default, service-account profile ksa.default.sa-frontend", func(t *testing.T, s *model.State) {
			ns, _ := s.Namespaces.Get("default")
			eq(t, "namespace labels", ns.Labels["team"], "blue")
			sa, _ := s.ServiceAccounts.Get(model.ServiceAccountKey{Namespace: "default", Name: "sa-frontend"})
			eq(t, "sa labels", sa.Labels["app"], "frontend")
		}},
		{"05 workload endpoints: 3 local on node1, 1 remote on node2", func(t *testing.T, s *model.State) {
			eq(t, "local endpoints", s.WorkloadEndpoints.Len(), 3)
			f1 := wep(t, s, "default/frontend-1")
			eq(t, "iface", f1.InterfaceName, "cali1f0000001")
			eq(t, "state", f1.State, "active")
			eq(t, "v4", f1.IPv4Nets, []netip.Prefix{mustPrefix("10.65.0.2/32")})
			eq(t, "profiles", f1.ProfileIDs, []string{"kns.default", "ksa.default.sa-frontend", "prof-dev"})
			eq(t, "no tiers", len(f1.Tiers), 0)
			if f1.MAC == nil {
				t.Error("frontend-1 has no MAC")
			}
			b1 := wep(t, s, "default/backend-1")
			eq(t, "backend v6", b1.IPv6Nets, []netip.Prefix{mustPrefix("fd00:65::3/128")})
			eq(t, "selector set", ipset(t, s, selFrontendEP).Nets(),
				[]netip.Prefix{mustPrefix("10.65.0.2/32"), mustPrefix("10.65.0.4/32")})
			pd, _ := s.Profiles.Get("prof-dev")
			eq(t, "prof-dev inbound", pd.InboundRules, []model.Rule{{Action: model.ActionAllow,
				SrcIPSetIDs: []string{selFrontendEP}, OriginalSrcSelector: "env == 'dev'", RuleID: "kpp4IGqEwHSyT9r1"}})
			ksa, _ := s.Profiles.Get("ksa.default.sa-frontend")
			eq(t, "empty profile", ksa, &model.Profile{Name: "ksa.default.sa-frontend"})
		}},
		{"06 GlobalNetworkPolicy gnp-frontend (selectors, named ports, not_*, icmp, http, SA match, metadata)", func(t *testing.T, s *model.State) {
			p := policy(t, s, "default.gnp-frontend")
			eq(t, "selector", p.OriginalSelector, `app == "frontend"`)
			eq(t, "namespace", p.Namespace, "")
			if len(p.InboundRules) != 6 || len(p.OutboundRules) != 3 {
				t.Fatalf("rules in=%d out=%d", len(p.InboundRules), len(p.OutboundRules))
			}
			tcp := &model.Protocol{Number: 6, Name: "tcp"}
			in := p.InboundRules
			eq(t, "rule 0", in[0], model.Rule{Action: model.ActionAllow, Protocol: tcp,
				DstPorts:             []model.PortRange{{80, 80}, {8000, 8100}},
				DstNamedPortIPSetIDs: []string{namedPort8080}, SrcIPSetIDs: []string{gnsExternal},
				OriginalSrcSelector: "role == 'external'", MetadataAnnotations: map[string]string{"rule-name": "allow-external-http"},
				RuleID: "TuCn7KKRlbuWj58T"})
			eq(t, "rule 1 SA match", in[1].SrcServiceAccountMatch, &model.ServiceAccountMatch{Names: []string{"sa-frontend"}})
			eq(t, "rule 1 HTTP match", in[1].HTTPMatch, &model.HTTPMatch{Methods: []string{"GET", "HEAD"},
				Paths: []model.HTTPPath{{Prefix: "/api"}, {Exact: "/healthz"}}})
			eq(t, "rule 2", in[2], model.Rule{Action: model.ActionAllow, IPVersion: model.IPVersion4,
				Protocol: &model.Protocol{Number: 1, Name: "icmp"}, SrcNets: []netip.Prefix{mustPrefix("10.0.0.0/8")},
				NotSrcNets: []netip.Prefix{mustPrefix("10.1.0.0/16")}, ICMP: &model.ICMPMatch{Type: 8, HasCode: true},
				RuleID: "bph5ipbTzNOabepA"})
			eq(t, "rule 3 not ports", in[3].NotSrcPorts, []model.PortRange{{1234, 1234}})
			eq(t, "rule 3 action", in[3].Action, model.ActionDeny)
			eq(t, "rule 3 not set", in[3].NotSrcIPSetIDs, []string{"s:QL5hieZDqLpDn8HEiauxHuEKQb1Ex9d3LSKt3g"})
			eq(t, "rule 4 not protocol", in[4].NotProtocol, &model.Protocol{Number: 17, Name: "udp"})
			eq(t, "rule 4 not dst net", in[4].NotDstNets, []netip.Prefix{mustPrefix("10.65.0.0/16")})
			eq(t, "rule 5", in[5].Action, model.ActionLog)
			eq(t, "rule 5 not icmp", in[5].NotICMP, &model.ICMPMatch{Type: 3})
			eq(t, "outbound 0 dst", in[0].DstPorts[1], model.PortRange{First: 8000, Last: 8100})
			eq(t, "outbound 2 pass", p.OutboundRules[2].Action, model.ActionNextTier)
			eq(t, "outbound 2 not dst", p.OutboundRules[2].NotDstNets, []netip.Prefix{mustPrefix("192.168.0.0/16")})
			eq(t, "named port set", ipset(t, s, namedPort8080).AddrPorts(), []model.AddrPort{
				{Addr: mustAddr("10.65.0.2"), Protocol: 6, Port: 8080},
				{Addr: mustAddr("10.65.0.4"), Protocol: 6, Port: 8080},
				{Addr: mustAddr("10.65.1.2"), Protocol: 6, Port: 8080}})
			eq(t, "mixed-family set", ipset(t, s, gnsExternal).Strings(), []string{"198.51.100.0/24", "2001:db8:100::/48"})
			f2 := wep(t, s, "default/frontend-2")
			eq(t, "frontend-2 tiers", f2.Tiers, []model.TierInfo{{Name: "default",
				IngressPolicies: []string{"default.gnp-frontend"}, EgressPolicies: []string{"default.gnp-frontend"}}})
			eq(t, "policy keys", f2.Tiers[0].IngressPolicyKeys(), []model.PolicyKey{{Tier: "default", Name: "default.gnp-frontend"}})
		}},
		{"07 NetworkPolicy default/np-backend (namespaced, namespaceSelector)", func(t *testing.T, s *model.State) {
			p := policy(t, s, "default/default.np-backend")
			eq(t, "namespace", p.Namespace, "default")
			eq(t, "udp named port set", ipset(t, s, "n:gxnSNdM6P_KsLqlOF3oc35jmt7lLVlUrsRjIug").Strings(),
				[]string{"10.65.0.3,udp:9100", "fd00:65::3,udp:9100"})
		}},
		{"08 HostEndpoint node1-eth0 + host policies (doNotTrack, preDNAT, applyOnForward)", func(t *testing.T, s *model.State) {
			h, ok := s.HostEndpoints.Get("node1-eth0")
			if !ok {
				t.Fatal("no host endpoint")
			}
			eq(t, "iface", h.InterfaceName, "eth0")
			eq(t, "not all-interfaces", h.AllInterfaces(), false)
			eq(t, "expected v4", h.ExpectedIPv4Addrs, []netip.Addr{mustAddr("192.168.122.11")})
			eq(t, "expected v6", h.ExpectedIPv6Addrs, []netip.Addr{mustAddr("fd00:122::11")})
			eq(t, "untracked", h.UntrackedTiers[0].IngressPolicies, []string{"default.host-untracked"})
			eq(t, "pre-DNAT", h.PreDNATTiers, []model.TierInfo{{Name: "default", IngressPolicies: []string{"default.host-prednat"}}})
			eq(t, "forward", h.ForwardTiers[0].EgressPolicies, []string{"default.host-forward"})
			eq(t, "normal", h.Tiers[0].IngressPolicies, []string{"default.host-forward"})
			eq(t, "untracked flag", policy(t, s, "default.host-untracked").Untracked, true)
			eq(t, "pre-DNAT flag", policy(t, s, "default.host-prednat").PreDNAT, true)
		}},
		{"09 BGPConfiguration default (service CIDRs -> GlobalBGPConfigUpdate)", func(t *testing.T, s *model.State) {
			b, ok := s.BGPConfig()
			eq(t, "present", ok, true)
			eq(t, "bgp", b, &model.BGPConfig{ServiceClusterCIDRs: []netip.Prefix{mustPrefix("10.96.0.0/12")},
				ServiceExternalCIDRs:     []netip.Prefix{mustPrefix("198.51.100.128/25")},
				ServiceLoadBalancerCIDRs: []netip.Prefix{mustPrefix("203.0.113.0/26")}})
		}},
		{"10 FelixConfiguration default: healthTimeoutOverrides (ConfigUpdate, no restart)", func(t *testing.T, s *model.State) {
			eq(t, "raw keys", len(s.Config().Raw), 20)
			eq(t, "pass-through", s.Config().Raw["HealthTimeoutOverrides"], "CalculationGraph=45s")
		}},
		{"13 update: change gnp-frontend rules (drop ICMP rules, add egress deny)", func(t *testing.T, s *model.State) {
			eq(t, "removed set", s.IPSets.Has("s:sJui6OTkNNML3ivRfglV1ihGqjP5US5EUTR4og"), false)
			p := policy(t, s, "default.gnp-frontend")
			eq(t, "rule counts", [2]int{len(p.InboundRules), len(p.OutboundRules)}, [2]int{1, 2})
		}},
		{"14 update: backend-1 gets an extra IP; prof-dev rules change", func(t *testing.T, s *model.State) {
			eq(t, "backend v4", wep(t, s, "default/backend-1").IPv4Nets,
				[]netip.Prefix{mustPrefix("10.65.0.3/32"), mustPrefix("10.65.0.5/32")})
			pd, _ := s.Profiles.Get("prof-dev")
			eq(t, "prof-dev protocol", pd.InboundRules[0].Protocol, &model.Protocol{Number: 6, Name: "tcp"})
		}},
		{"15 delete: workload frontend-2", func(t *testing.T, s *model.State) {
			eq(t, "endpoints", s.WorkloadEndpoints.Len(), 2)
			eq(t, "set shrank", ipset(t, s, selFrontendEP).Strings(),
				[]string{"10.65.0.2/32", "192.168.122.11/32", "fd00:122::11/128"})
		}},
		{"21 end", func(t *testing.T, s *model.State) {
			// Exactly what the last step leaves: node1's host metadata, the v4 pool, config, encapsulation and
			// the emptied BGP configuration. Nothing else.
			counts := s.Counts()
			want := map[model.Kind]int{model.KindHostMetadata: 1, model.KindHostMetadataV4V6: 1,
				model.KindIPAMPool: 1, model.KindConfig: 1, model.KindEncapsulation: 1, model.KindBGPConfig: 1}
			for _, k := range model.Kinds {
				eq(t, "count of "+k.String(), counts[k], want[k])
			}
			eq(t, "pool", s.IPAMPools.Keys(), []string{"10.65.0.0-16"})
			n1, _ := s.HostMetadataV4V6.Get("node1")
			eq(t, "node1 without v6", n1.IPv6Addr.IsValid(), false)
			b, _ := s.BGPConfig()
			eq(t, "emptied BGP config", b, &model.BGPConfig{})
		}},
	}
	for _, tc := range tests {
		name := tc.step
		if name == "" {
			name = "initial snapshot"
		}
		t.Run(name, func(t *testing.T) { tc.check(t, stateThrough(t, "basic.jsonl", tc.step)) })
	}
}

func TestK8sServicesCapture(t *testing.T) {
	s := stateThrough(t, "k8s-services.jsonl", "14 Calico NetworkPolicy svc/client-egress (ingress from service web; egress to services web, svc/multi (TCP), multi without namespace (UDP), then deny) selecting app=client")
	svc := func(name string) *model.Service {
		v, ok := s.Services.Get(model.ServiceKey{Namespace: "svc", Name: name})
		if !ok {
			t.Fatalf("no service svc/%s", name)
		}
		return v
	}
	eq(t, "multi ports", svc("multi").Ports, []model.ServicePort{
		{Protocol: 6, ProtocolName: "TCP", Port: 80}, {Protocol: 6, ProtocolName: "TCP", Port: 443},
		{Protocol: 17, ProtocolName: "UDP", Port: 53}, {Protocol: 6, ProtocolName: "TCP", Port: 53},
		{Protocol: 132, ProtocolName: "SCTP", Port: 9999}})
	eq(t, "dual", svc("dual").ClusterIPs, []netip.Addr{mustAddr("10.96.0.20"), mustAddr("fd00:10:96::20")})
	eq(t, "nodeport", svc("web-np").Ports[0].NodePort, uint16(30080))
	lb := svc("web-lb")
	eq(t, "lb", [2]any{lb.Type, lb.LoadBalancerIP}, [2]any{"LoadBalancer", mustAddr("203.0.113.10")})
	eq(t, "external IPs", svc("web-ext").ExternalIPs, []netip.Addr{mustAddr("198.51.100.7"), mustAddr("198.51.100.8")})
	h := svc("web-headless")
	eq(t, "headless", [2]any{h.Headless, len(h.ClusterIPs)}, [2]any{true, 0})
	en := svc("ext-name")
	eq(t, "external name", [3]any{en.Type, len(en.ClusterIPs), len(en.Ports)}, [3]any{"ExternalName", 0, 0})
	eq(t, "svc set", ipset(t, s, "svc:pIGNvhueJEzDlmACxZK_NOMkosaOyStwqTLyMw").Type, model.IPSetTypeIPAndPort)
	eq(t, "sctp member", ipset(t, s, "svc:pu14petKfc4-9pnoRaIquoQzjPxALInw1t1bxQ").ContainsAddrPort(
		model.AddrPort{Addr: mustAddr("10.65.0.51"), Protocol: model.ProtoSCTP, Port: 9999}), true)
	p := policy(t, s, "svc/default.client-egress")
	var ipPortSets []string
	for _, r := range p.OutboundRules {
		ipPortSets = append(ipPortSets, r.DstIPPortSetIDs...)
	}
	if len(ipPortSets) == 0 {
		t.Error("client-egress has no dst_ip_port_set_ids")
	}
	b, _ := s.BGPConfig()
	eq(t, "bgp v6", b.ServiceClusterCIDRs, []netip.Prefix{mustPrefix("10.96.0.0/16"), mustPrefix("fd00:10:96::/112")})

	// The end of the capture: deleted services are gone, the rest remain.
	end := stateThrough(t, "k8s-services.jsonl", "end")
	eq(t, "services at end", end.Services.Keys(), []model.ServiceKey{
		{Namespace: "default", Name: "kubernetes"}, {Namespace: "svc", Name: "dual"},
		{Namespace: "svc", Name: "multi"}, {Namespace: "svc", Name: "web-affinity"},
		{Namespace: "svc", Name: "web-ext"}, {Namespace: "svc", Name: "web-itp"},
		{Namespace: "svc", Name: "web-lb"}, {Namespace: "svc", Name: "web-np"}})
	web, _ := end.Services.Get(model.ServiceKey{Namespace: "svc", Name: "web-np"})
	eq(t, "web-np became ClusterIP", [2]any{web.Type, web.Ports[0].NodePort}, [2]any{"ClusterIP", uint16(0)})
	eq(t, "no IP sets at end", end.IPSets.Len(), 0)
	eq(t, "no policies at end", end.Policies.Len(), 0)
}

func TestCalicoTiersCapture(t *testing.T) {
	s := stateThrough(t, "calico-tiers.jsonl", "09 re-order: security-pass-deny order 100 -> 1500 (now after the k8s policy)")
	xa := wep(t, s, "x/a")
	eq(t, "x/a ingress order", xa.Tiers[0].IngressPolicies, []string{"default.sa-and-ns-match",
		"x/default.allow-partners", "x/knp.default.default-deny-ingress", "default.security-pass-deny"})
	eq(t, "deny-all k8s policy has no rules", len(policy(t, s, "x/knp.default.default-deny-ingress").InboundRules), 0)
	spd := policy(t, s, "default.security-pass-deny")
	var actions []model.Action
	for _, r := range spd.InboundRules {
		actions = append(actions, r.Action)
	}
	if !slices.Contains(actions, model.ActionNextTier) {
		t.Errorf("security-pass-deny inbound actions %v lack next-tier", actions)
	}
	h, _ := s.HostEndpoints.Get("node1-eth0")
	eq(t, "hep egress", h.Tiers[0].EgressPolicies, []string{"default.hep-forward", "default.allow-dns"})

	end := stateThrough(t, "calico-tiers.jsonl", "end")
	eq(t, "no policies at end", end.Policies.Len(), 0)
	eq(t, "no host endpoints at end", end.HostEndpoints.Len(), 0)
	eq(t, "x/a has no tiers at end", len(wep(t, end, "x/a").Tiers), 0)
}

func TestResyncSnapshotDiffersFromTheStateItReplacesOnlyInTrueDifferences(t *testing.T) {
	// basic-resync.jsonl is a fresh Felix's snapshot of the cluster of basic.jsonl after step 10. Replacing
	// that state with it must report only the config (another cluster GUID); replacing a later state must
	// report exactly the objects that differ.
	resync := loadCapture(t, "basic-resync.jsonl")
	tests := []struct {
		step string
		want string
	}{
		{"10 FelixConfiguration default: healthTimeoutOverrides (ConfigUpdate, no restart)", "resync config:+0~1-0"},
		{"15 delete: workload frontend-2", "resync ipset:+2~9-0 policy:+0~1-0 profile:+0~1-0 workload_endpoint:+1~1-0 config:+0~1-0"},
		{"21 end", "resync ipset:+12~0-0 policy:+5~0-0 profile:+3~0-0 workload_endpoint:+3~0-0 host_endpoint:+1~0-0 host_metadata:+1~0-0 host_metadata_v6:+1~0-0 host_metadata_v4v6:+1~1-0 ipam_pool:+1~0-0 namespace:+1~0-0 service_account:+1~0-0 config:+0~1-0 bgp_config:+0~1-0"},
	}
	for _, tc := range tests {
		t.Run(tc.step, func(t *testing.T) {
			live := stateThrough(t, "basic.jsonl", tc.step)
			live.TakeChanges()
			next := model.NewState()
			applyAll(t, next, resync.Messages())
			live.Replace(next)
			ch := live.TakeChanges()
			ch.Resync = true
			eq(t, "changes", ch.String(), tc.want)
		})
	}
	// And the other way round: after the resync snapshot, the end state of basic.jsonl removes things.
	live := model.NewState()
	applyAll(t, live, resync.Messages())
	live.TakeChanges()
	live.Replace(stateThrough(t, "basic.jsonl", "21 end"))
	ch := live.TakeChanges()
	eq(t, "removed endpoints", ch.WorkloadEndpoints.Of(model.Removed), []model.WorkloadEndpointKey{
		{OrchestratorID: "k8s", WorkloadID: "default/backend-1", EndpointID: "eth0"},
		{OrchestratorID: "k8s", WorkloadID: "default/frontend-1", EndpointID: "eth0"},
		{OrchestratorID: "k8s", WorkloadID: "default/frontend-2", EndpointID: "eth0"}})
	eq(t, "removed host endpoint", ch.HostEndpoints.Of(model.Removed), []string{"node1-eth0"})
	eq(t, "nothing added", len(ch.IPSets.Of(model.Added))+len(ch.Policies.Of(model.Added)), 0)
	eq(t, "state", live.WorkloadEndpoints.Len(), 0)
}
