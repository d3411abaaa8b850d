package scenario

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/gogo/protobuf/jsonpb"
	"github.com/projectcalico/calico/felix/proto"

	"github.com/calico-p4/calico-p4/e2e/matrix"
)

const base = `
name: t
resources:
- kind: Node
  metadata: {name: node1}
  spec: {ipv4: 192.168.122.11/24}
- {kind: Namespace, metadata: {name: x, labels: {team: a}}}
- {kind: Namespace, metadata: {name: z}}
- kind: Pod
  metadata: {name: a, namespace: x, labels: {app: web}}
  spec: {ips: [10.65.0.11, "fd00:65::11"], ports: [{name: http, port: 8080}]}
- kind: Pod
  metadata: {name: b, namespace: z, labels: {app: db}}
  spec: {ips: [10.65.0.21], ports: [{name: http, port: 9090, protocol: UDP}]}
- kind: Pod
  metadata: {name: r, namespace: x, labels: {app: web}}
  spec: {nodeName: node2, ips: [10.65.1.5], ports: [{name: http, port: 8081}]}
`

func compileYAML(t *testing.T, y string) *Stream {
	t.Helper()
	s, err := Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	st, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func last(st *Stream) *State { return st.States[len(st.States)-1] }

func TestKubernetesNetworkPolicyIsConvertedLikeCalicoKDD(t *testing.T) {
	st := compileYAML(t, base+`
steps:
- title: knp
  apply:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: allow-web, namespace: x}
    spec:
      podSelector: {matchLabels: {app: web}}
      policyTypes: [Ingress, Egress]
      ingress:
      - from:
        - namespaceSelector: {matchLabels: {team: a}}
          podSelector: {matchLabels: {app: web}}
        - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
        ports: [{port: 80}, {port: 81}, {port: 82}, {port: http}, {protocol: UDP, port: 53}, {port: 9000, endPort: 9100}]
      egress:
      - {}
`)
	p := last(st).Policies["default|x/knp.default.allow-web"]
	if p == nil {
		t.Fatalf("policy missing; have %v", keys(last(st).Policies))
	}
	if got, want := p.Policy.OriginalSelector, `((projectcalico.org/orchestrator == "k8s" && app == "web") && projectcalico.org/namespace == "x")`; got != want {
		t.Errorf("selector %s, want %s", got, want)
	}
	in := p.Policy.InboundRules
	// Protocols sorted (TCP, UDP) × 2 peers.
	if len(in) != 4 {
		t.Fatalf("%d inbound rules, want 4: %v", len(in), in)
	}
	tcpSel := in[0]
	if tcpSel.Protocol.GetName() != "tcp" || len(tcpSel.DstPorts) != 2 || tcpSel.DstPorts[0].First != 80 || tcpSel.DstPorts[0].Last != 82 ||
		tcpSel.DstPorts[1].First != 9000 || tcpSel.DstPorts[1].Last != 9100 {
		t.Errorf("tcp ports not merged into ranges: %v", tcpSel.DstPorts)
	}
	if len(tcpSel.DstNamedPortIpSetIds) != 1 || len(tcpSel.SrcIpSetIds) != 1 {
		t.Errorf("want one named-port set and one source set: %v", tcpSel)
	}
	if set := last(st).IPSets[tcpSel.SrcIpSetIds[0]]; set == nil || strings.Join(set.Members, ",") != "10.65.0.11/32,10.65.1.5/32,fd00:65::11/128" {
		t.Errorf("source set (web pods in team=a namespaces, all nodes) = %v", set)
	}
	if set := last(st).IPSets[tcpSel.DstNamedPortIpSetIds[0]]; set == nil || set.Type != proto.IPSetUpdate_IP_AND_PORT ||
		strings.Join(set.Members, ",") != "10.65.0.11,tcp:8080,10.65.1.5,tcp:8081,fd00:65::11,tcp:8080" {
		t.Errorf("named-port set = %v", set)
	}
	if ipb := in[1]; strings.Join(ipb.SrcNet, ",") != "10.0.0.0/8" || strings.Join(ipb.NotSrcNet, ",") != "10.1.0.0/16" {
		t.Errorf("ipBlock rule = %v", ipb)
	}
	if udp := in[2]; udp.Protocol.GetName() != "udp" || udp.DstPorts[0].First != 53 {
		t.Errorf("udp rule = %v", udp)
	}
	if out := p.Policy.OutboundRules; len(out) != 1 || out[0].Action != "allow" || out[0].Protocol != nil {
		t.Errorf("egress [{}] should be one allow-all rule: %v", out)
	}
	wep := last(st).WEPs["k8s/x/a/eth0"]
	if wep == nil || len(wep.Endpoint.Tiers) != 1 || wep.Endpoint.Tiers[0].IngressPolicies[0] != "x/knp.default.allow-web" ||
		wep.Endpoint.Tiers[0].EgressPolicies[0] != "x/knp.default.allow-web" {
		t.Errorf("x/a tiers = %v", wep)
	}
	if _, ok := last(st).WEPs["k8s/x/r/eth0"]; ok {
		t.Error("a pod on another node became a local endpoint")
	}
}

func keys[V any](m map[string]V) []string { return sortedKeys(m) }

func TestTiersAndOrderGiveFelixsPolicyLists(t *testing.T) {
	st := compileYAML(t, base+`
steps:
- title: tiers
  apply:
  - {kind: Tier, metadata: {name: security}, spec: {order: 100}}
  - {kind: Tier, metadata: {name: platform}, spec: {order: 50}}
  - kind: GlobalNetworkPolicy
    metadata: {name: sec-b}
    spec: {tier: security, order: 10, selector: all(), ingress: [{action: Pass}]}
  - kind: GlobalNetworkPolicy
    metadata: {name: sec-a}
    spec: {tier: security, order: 10, selector: all(), ingress: [{action: Deny}]}
  - kind: GlobalNetworkPolicy
    metadata: {name: plat}
    spec: {tier: platform, selector: app == 'web', egress: [{action: Allow}]}
  - kind: NetworkPolicy
    metadata: {name: np, namespace: x}
    spec: {order: 5, selector: all(), ingress: [{action: Allow, protocol: ICMP, icmp: {type: 8, code: 0}}]}
`)
	wep := last(st).WEPs["k8s/x/a/eth0"].Endpoint
	var got []string
	for _, ti := range wep.Tiers {
		got = append(got, ti.Name+":in="+strings.Join(ti.IngressPolicies, ",")+":out="+strings.Join(ti.EgressPolicies, ","))
	}
	want := []string{"platform:in=:out=platform.plat", "security:in=security.sec-a,security.sec-b:out=", "default:in=x/default.np:out="}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("tiers\n got %v\nwant %v", got, want)
	}
	p := last(st).Policies["security|security.sec-b"]
	if p == nil || p.Id.Tier != "security" || p.Policy.InboundRules[0].Action != "next-tier" {
		t.Errorf("security.sec-b = %v", p)
	}
	icmp := last(st).Policies["default|x/default.np"].Policy.InboundRules[0]
	if icmp.IpVersion != proto.IPVersion_IPV4 || icmp.GetIcmpTypeCode().GetType() != 8 {
		t.Errorf("icmp rule = %v", icmp)
	}
}

func TestDeltasFollowFelixFlushOrder(t *testing.T) {
	st := compileYAML(t, base+`
steps:
- title: add policy
  apply:
  - kind: GlobalNetworkPolicy
    metadata: {name: p}
    spec: {selector: app == 'web', ingress: [{action: Allow, source: {selector: app == 'db'}}]}
- title: relabel b
  apply:
  - kind: Pod
    metadata: {name: b, namespace: z, labels: {app: web}}
    spec: {ips: [10.65.0.21]}
- title: delete policy and pod a
  delete:
  - {kind: GlobalNetworkPolicy, name: p}
  - {kind: Pod, namespace: x, name: a}
`)
	var b bytes.Buffer
	if err := st.WriteJSONL(&b); err != nil {
		t.Fatal(err)
	}
	items, err := ReadJSONL(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != len(st.Items) {
		t.Fatalf("round trip %d items, want %d", len(items), len(st.Items))
	}
	segs := stepItems(items)
	kinds := func(ms []*proto.ToDataplane) string {
		var k []string
		for _, m := range ms {
			k = append(k, Kind(m))
		}
		return strings.Join(k, " ")
	}
	if got := kinds(segs[1]); got != "ipsetUpdate activePolicyUpdate workloadEndpointUpdate" {
		t.Errorf("step 1 kinds: %s", got)
	}
	// Relabelling b: it leaves the db set (a delta) and becomes selected (its endpoint update); a is unchanged.
	if got := kinds(segs[2]); got != "ipsetDeltaUpdate workloadEndpointUpdate" {
		t.Errorf("step 2 kinds: %s", got)
	}
	// b loses the policy, a goes away with the last local users of kns.x and ksa.x.default, then the policy
	// and its set.
	if got := kinds(segs[3]); got != "workloadEndpointUpdate workloadEndpointRemove activeProfileRemove activeProfileRemove activePolicyRemove ipsetRemove" {
		t.Errorf("step 3 kinds: %s", got)
	}
	if errs := checkDependencies(messages(items)); len(errs) > 0 {
		t.Errorf("dependency order: %v", errs)
	}
	for i, it := range items {
		if it.Msg != nil && i > 0 && it.Msg.SequenceNumber == 0 {
			t.Errorf("item %d has sequence number 0", i)
		}
	}
	first, _ := (&jsonpb.Marshaler{}).MarshalToString(items[0].Msg)
	if !strings.HasPrefix(first, `{"configUpdate":`) {
		t.Errorf("first line %s, want the ConfigUpdate with sequence number 0", first)
	}
}

func TestParseRejectsBadScenarios(t *testing.T) {
	cases := map[string]string{
		"unknown field":  "name: t\nresources:\n- {kind: Namespace, metadata: {name: x}, spec: {bogus: 1}}\n",
		"unknown kind":   "name: t\nresources:\n- {kind: Deployment, metadata: {name: x}}\n",
		"pod without ns": "name: t\nresources:\n- {kind: Pod, metadata: {name: a}, spec: {ips: [10.0.0.1]}}\n",
		"missing ns":     "name: t\nresources:\n- {kind: Pod, metadata: {name: a, namespace: q}, spec: {ips: [10.0.0.1]}}\n",
		"bad ip":         "name: t\nresources:\n- {kind: Namespace, metadata: {name: q}}\n- {kind: Pod, metadata: {name: a, namespace: q}, spec: {ips: [10.0.0.300]}}\n",
		"bad action":     "name: t\nresources:\n- {kind: GlobalNetworkPolicy, metadata: {name: p}, spec: {ingress: [{action: Maybe}]}}\nsteps: []\n",
		"bad selector":   "name: t\nresources:\n- {kind: GlobalNetworkPolicy, metadata: {name: p}, spec: {selector: 'a ==='}}\n",
		"ports no proto": "name: t\nresources:\n- {kind: GlobalNetworkPolicy, metadata: {name: p}, spec: {ingress: [{action: Allow, destination: {ports: [80]}}]}}\n",
		"bare y":         "name: t\nresources:\n- {kind: Namespace, metadata: {name: y}}\n",
		"delete missing": "name: t\nsteps:\n- {title: s, delete: [{kind: Pod, namespace: x, name: a}]}\n",
		"unknown tier":   "name: t\nresources:\n- {kind: GlobalNetworkPolicy, metadata: {name: p}, spec: {tier: nope}}\n",
	}
	for name, y := range cases {
		t.Run(name, func(t *testing.T) {
			s, err := Parse([]byte(y))
			if err == nil {
				_, err = Compile(s)
			}
			if err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestExpectationTables(t *testing.T) {
	peers := []matrix.Peer{
		{Name: "x/a", IPv4: netip.MustParseAddr("10.0.0.1")},
		{Name: "x/b", IPv4: netip.MustParseAddr("10.0.0.2")},
		{Name: "y/a", IPv4: netip.MustParseAddr("10.0.0.3")},
	}
	e := Expectation{Cases: []string{"tcp/80"}, Default: "allow", Rules: []string{"deny * -> x/*", "allow x/* -> x/a"}}
	tabs, err := e.Tables(peers)
	if err != nil {
		t.Fatal(err)
	}
	want := map[[2]string]bool{{"x/a", "x/b"}: false, {"x/b", "x/a"}: true, {"y/a", "x/a"}: false, {"x/a", "y/a"}: true, {"y/a", "x/b"}: false}
	for k, w := range want {
		if v, _ := tabs[0].Get(k[0], k[1]); v != w {
			t.Errorf("%s -> %s = %v, want %v", k[0], k[1], v, w)
		}
	}
	for _, bad := range []Expectation{{Cases: []string{"tcp/80"}, Default: "maybe"}, {Cases: []string{"tcp/80"}, Default: "allow", Rules: []string{"deny x"}},
		{Cases: []string{"tcp"}, Default: "allow"}, {Default: "allow"}} {
		if _, err := bad.Tables(peers); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// A Felix restarted after step k sends, before InSync, exactly the state the original stream had reached
// at step k (the harness's Felix-restart lifecycle case depends on it).
func TestFlattenGivesTheStateReachedAtAStep(t *testing.T) {
	s, err := Load("testdata/calico-tiers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	full, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k <= len(s.Steps); k++ {
		f, err := s.Flatten(k)
		if err != nil {
			t.Fatalf("flatten %d: %v", k, err)
		}
		if len(f.Steps) != len(s.Steps)-k {
			t.Errorf("flatten %d: %d steps left, want %d", k, len(f.Steps), len(s.Steps)-k)
		}
		st, err := Compile(f)
		if err != nil {
			t.Fatalf("compile flatten %d: %v", k, err)
		}
		if d := diffStates(full.States[k], st.States[0]); len(d) > 0 {
			t.Errorf("after step %d the flattened snapshot differs:\n%s", k, strings.Join(d, "\n"))
		}
	}
	if _, err := s.Flatten(len(s.Steps) + 1); err == nil {
		t.Error("Flatten beyond the last step succeeded")
	}
}

// With a VXLAN pool the compiler sends what Felix's route resolver sends (felix-protocol.md §6): pools as
// CIDR_INFO, node addresses, blocks, tunnel addresses and local workloads, and VTEPs — routes and VTEPs
// after namespaces and before host metadata, and removals when a pod goes.
func TestVXLANPoolsGiveRoutesAndVTEPs(t *testing.T) {
	st := compileYAML(t, `
name: vxlan
localNode: node1
resources:
- kind: Node
  metadata: {name: node1}
  spec: {ipv4: 192.168.122.11/24, blocks: [10.65.0.0/26], vxlanTunnelAddr: 10.65.0.1, vxlanTunnelMAC: "66:00:00:00:00:01"}
- kind: Node
  metadata: {name: node2}
  spec: {ipv4: 192.168.122.12/24, blocks: [10.65.1.0/26], vxlanTunnelAddr: 10.65.1.1}
- kind: IPPool
  metadata: {name: pool}
  spec: {cidr: 10.65.0.0/16, vxlanMode: Always}
- {kind: Namespace, metadata: {name: x}}
- kind: Pod
  metadata: {name: a, namespace: x}
  spec: {nodeName: node1, ips: [10.65.0.11]}
- kind: Pod
  metadata: {name: b, namespace: x}
  spec: {nodeName: node2, ips: [10.65.1.21]}
steps:
- title: delete x/a
  delete: [{kind: Pod, namespace: x, name: a}]
`)
	s0 := st.States[0]
	want := map[string]string{
		"10.65.0.0/16":      "CIDR_INFO VXLAN node=",
		"192.168.122.11/32": "LOCAL_HOST NONE node=node1",
		"192.168.122.12/32": "REMOTE_HOST NONE node=node2",
		"10.65.0.0/26":      "LOCAL_WORKLOAD VXLAN node=node1",
		"10.65.1.0/26":      "REMOTE_WORKLOAD VXLAN node=node2",
		"10.65.0.1/32":      "LOCAL_TUNNEL VXLAN node=node1",
		"10.65.1.1/32":      "REMOTE_TUNNEL VXLAN node=node2",
		"10.65.0.11/32":     "LOCAL_WORKLOAD VXLAN node=node1",
	}
	if len(s0.Routes) != len(want) {
		t.Errorf("%d routes, want %d: %v", len(s0.Routes), len(want), keys(s0.Routes))
	}
	for dst, w := range want {
		r := s0.Routes[dst]
		if r == nil {
			t.Errorf("no route %s", dst)
			continue
		}
		if got := fmt.Sprintf("%s %s node=%s", r.Type, r.IpPoolType, r.DstNodeName); got != w {
			t.Errorf("route %s: %s, want %s", dst, got, w)
		}
	}
	if r := s0.Routes["10.65.0.11/32"]; r == nil || !r.LocalWorkload {
		t.Errorf("local workload route without local_workload: %v", r)
	}
	if r := s0.Routes["10.65.1.1/32"]; r == nil || r.TunnelType == nil || !r.TunnelType.Vxlan || r.DstNodeIp != "192.168.122.12" {
		t.Errorf("remote tunnel route: %v", r)
	}
	if v := s0.VTEPs["node1"]; v == nil || v.Mac != "66:00:00:00:00:01" || v.Ipv4Addr != "10.65.0.1" || v.ParentDeviceIp != "192.168.122.11" {
		t.Errorf("node1 VTEP: %v", v)
	}
	if v := s0.VTEPs["node2"]; v == nil || v.Mac == "" || v.ParentDeviceIp != "192.168.122.12" {
		t.Errorf("node2 VTEP (generated MAC): %v", v)
	}
	// Flush order: namespaces < VTEP updates < route updates < host metadata.
	var kinds []string
	for _, it := range st.Items {
		if it.Msg != nil {
			kinds = append(kinds, Kind(it.Msg))
		}
	}
	pos := func(k string) int {
		for i, x := range kinds {
			if x == k {
				return i
			}
		}
		t.Fatalf("no %s in %v", k, kinds)
		return -1
	}
	if !(pos("namespaceUpdate") < pos("vtepUpdate") && pos("vtepUpdate") < pos("routeUpdate") && pos("routeUpdate") < pos("hostMetadataUpdate")) {
		t.Errorf("flush order: %v", kinds)
	}
	// Deleting x/a removes its /32 route (and the endpoint).
	var removed []string
	for _, it := range st.Items {
		if rr, ok := it.Msg.GetPayload().(*proto.ToDataplane_RouteRemove); ok {
			removed = append(removed, rr.RouteRemove.Dst)
		}
	}
	if len(removed) != 1 || removed[0] != "10.65.0.11/32" {
		t.Errorf("route removals %v, want [10.65.0.11/32]", removed)
	}
}

// An all-interfaces host endpoint (interfaceName "*", as Calico's automatic host endpoints are) reaches the
// dataplane as Felix sends it: a HostEndpointUpdate whose endpoint name is "*", with its expected IPs and
// the tiers of the policies selecting its labels.
func TestAllInterfacesHostEndpointIsSentWithNameStar(t *testing.T) {
	st := compileYAML(t, base+`
- kind: HostEndpoint
  metadata: {name: node1-auto, labels: {host-endpoint: auto}}
  spec: {node: node1, interfaceName: "*", expectedIPs: [192.168.122.11]}
- kind: GlobalNetworkPolicy
  metadata: {name: hep-web}
  spec:
    selector: has(host-endpoint)
    types: [Ingress, Egress]
    ingress: [{action: Allow, protocol: TCP, destination: {ports: [80]}}]
`)
	u := last(st).HEPs["node1-auto"]
	if u == nil {
		t.Fatalf("no HostEndpointUpdate for node1-auto; have %v", last(st).HEPs)
	}
	if u.Id.EndpointId != "node1-auto" || u.Endpoint.Name != "*" {
		t.Errorf("id %q name %q, want node1-auto and *", u.Id.EndpointId, u.Endpoint.Name)
	}
	if got := strings.Join(u.Endpoint.ExpectedIpv4Addrs, ","); got != "192.168.122.11" {
		t.Errorf("expected IPv4 addresses %q", got)
	}
	if len(u.Endpoint.Tiers) != 1 || strings.Join(u.Endpoint.Tiers[0].IngressPolicies, ",") != "default.hep-web" ||
		strings.Join(u.Endpoint.Tiers[0].EgressPolicies, ",") != "default.hep-web" {
		t.Errorf("tiers %v, want default with default.hep-web both ways", u.Endpoint.Tiers)
	}
	if len(u.Endpoint.UntrackedTiers)+len(u.Endpoint.PreDnatTiers)+len(u.Endpoint.ForwardTiers) != 0 {
		t.Errorf("untracked/pre-DNAT/forward tiers where the policy is none of those: %v", u.Endpoint)
	}
}
