package translator

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/driver/services"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
	"github.com/projectcalico/calico/felix/proto"
)

// watchServices reads a services file (driver/services format) and joins it as the watch does.
func watchServices(t testing.TB, path string) []*model.KubeService {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return watchServicesOf(t, data)
}

func watchServicesOf(t testing.TB, data []byte) []*model.KubeService {
	t.Helper()
	_, content, err := services.ParseFile(data)
	if err != nil {
		t.Fatal(err)
	}
	var out []*model.KubeService
	for _, svc := range content.Services {
		var sl []*discoveryv1.EndpointSlice
		for _, s := range content.Slices {
			if s.Namespace == svc.Namespace && s.Labels[discoveryv1.LabelServiceName] == svc.Name {
				sl = append(sl, s)
			}
		}
		ks, problems, err := services.Build(svc, sl)
		if err != nil || len(problems) > 0 {
			t.Fatalf("service %s/%s: %v %v", svc.Namespace, svc.Name, err, problems)
		}
		out = append(out, ks)
	}
	return out
}

// setWatch makes the state's watch services exactly kss.
func setWatch(t testing.TB, s *model.State, kss []*model.KubeService) {
	t.Helper()
	keep := map[model.ServiceKey]bool{}
	for _, ks := range kss {
		keep[ks.Key] = true
		if err := s.SetKubeService(ks); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range s.KubeServices.Keys() {
		if !keep[k] {
			s.RemoveKubeService(k)
		}
	}
}

// servicesCapture is the k8s-services capture's first session through step 13 (every service created,
// the BGP configuration with service CIDRs).
func servicesCapture(t testing.TB) []*proto.ToDataplane {
	t.Helper()
	var out []*proto.ToDataplane
	for _, m := range loadCapture(t, "k8s-services.jsonl").Messages() {
		if m.SequenceNumber > 40 || (len(out) > 0 && m.SequenceNumber == 0) {
			break
		}
		out = append(out, m)
	}
	return out
}

// renderServiceEntries prints the service part of a set readably: service table entries with what they
// point at, groups with their members, members with their action, and the service loop's routes.
func renderServiceEntries(t testing.TB, set *entry.Set, loop ...netip.Prefix) string {
	t.Helper()
	var lines []string
	short := func(s string) string { return strings.TrimPrefix(s, "MainControlImpl.") }
	params := func(a entry.Action) string {
		var ps []string
		for _, p := range a.Params {
			v := bytesUint(p.Value)
			switch {
			case p.Name == "addr" && len(p.Value) > 4:
				ps = append(ps, "addr="+addrOf(p.Value, 128).String())
			case p.Name == "addr":
				ps = append(ps, "addr="+addrOf(p.Value, 32).String())
			default:
				ps = append(ps, fmt.Sprintf("%s=%d", p.Name, v))
			}
		}
		return short(a.Name) + "(" + strings.Join(ps, ", ") + ")"
	}
	for _, e := range set.Sorted() {
		switch {
		case e.Kind == entry.KindMember && strings.HasPrefix(e.Profile, "MainControlImpl.service_selector"):
			lines = append(lines, fmt.Sprintf("member %s -> %s", e.Name, params(e.Action)))
		case e.Kind == entry.KindGroup:
			var ms []string
			for _, m := range e.Members {
				ms = append(ms, fmt.Sprintf("%s*%d", strings.TrimPrefix(m.Member, e.Name+"/"), m.Weight))
			}
			lines = append(lines, fmt.Sprintf("group %s = {%s}", e.Name, strings.Join(ms, ", ")))
		case e.Table == string(p4src.TableServiceV4) || e.Table == string(p4src.TableServiceV6):
			var key []string
			for _, m := range e.Match {
				if m.Field == string(p4src.KeyServiceV4DstAddr) {
					key = append(key, addrOf(m.Value, map[bool]int{true: 128, false: 32}[e.Table == string(p4src.TableServiceV6)]).String())
				} else {
					key = append(key, fmt.Sprintf("%s=%d", m.Field, bytesUint(m.Value)))
				}
			}
			to := "group " + e.Group
			if e.Member != "" {
				to = "member " + e.Member
			}
			lines = append(lines, fmt.Sprintf("%s[%s] -> %s", short(e.Table), strings.Join(key, ", "), to))
		case (e.Table == string(p4src.TableRouteV4) || e.Table == string(p4src.TableRouteV6)) &&
			e.Action.Name == string(p4src.ActionRouteUnreachable):
			bits := 32
			if e.Table == string(p4src.TableRouteV6) {
				bits = 128
			}
			p := netip.PrefixFrom(addrOf(e.Match[0].Value, bits), int(e.Match[0].PrefixLen))
			if slices.Contains(loop, p) {
				lines = append(lines, fmt.Sprintf("%s[%s] -> route_unreachable", short(e.Table), p))
			}
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// The service CIDRs of the capture's BGP configuration (step 13).
var svcLoopCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16"), netip.MustParsePrefix("fd00:10:96::/112"),
	netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")}

// The k8s-services capture (every Service type Felix sends) joined with the watch's Services and
// EndpointSlices: the exact service entries, every one of which encodes against the P4Info.
func TestServicesGoldenK8sServicesCapture(t *testing.T) {
	s := stateOf(t, servicesCapture(t))
	setWatch(t, s, watchServices(t, filepath.Join("testdata", "k8s-services-watch.yaml")))
	tr := New(testPorts, testNode())
	res := tr.Apply(s, model.Changes{Resync: true})
	checkEncodes(t, res.Entries)
	got := renderServiceEntries(t, res.Entries, svcLoopCIDRs...)
	var rep []string
	for _, u := range res.Report.Unsupported {
		rep = append(rep, u.String())
	}
	for _, w := range res.Report.Warnings {
		if strings.Contains(w, "service") {
			rep = append(rep, "warning: "+w)
		}
	}
	got += "\n# report (services)\n" + strings.Join(rep, "\n") + "\n"
	golden(t, "services-k8s-capture", got)
}

// Felix's ServiceUpdates and the watch's Services describe the same services: what both carry agrees
// (the dataplane is programmed from the watch; see driver/services, "Which source wins").
func TestFelixServiceUpdatesAgreeWithTheWatch(t *testing.T) {
	s := stateOf(t, servicesCapture(t))
	setWatch(t, s, watchServices(t, filepath.Join("testdata", "k8s-services-watch.yaml")))
	n := 0
	for k, f := range s.Services.All() {
		ks, ok := s.KubeServices.Get(k)
		if !ok {
			t.Errorf("Felix has service %s, the watch does not", k)
			continue
		}
		n++
		if f.Type != ks.Type || f.Headless != ks.Headless || !slices.Equal(f.ClusterIPs, ks.ClusterIPs) ||
			f.LoadBalancerIP != ks.LoadBalancerIP || !slices.Equal(f.ExternalIPs, ks.ExternalIPs) {
			t.Errorf("service %s: Felix %+v, watch %+v", k, f, ks)
		}
		var fp, wp []string
		for _, p := range f.Ports {
			fp = append(fp, fmt.Sprintf("%d/%d/%d", p.Protocol, p.Port, p.NodePort))
		}
		for _, p := range ks.Ports {
			wp = append(wp, fmt.Sprintf("%d/%d/%d", p.Protocol, p.Port, p.NodePort))
		}
		if !slices.Equal(fp, wp) {
			t.Errorf("service %s ports: Felix %v, watch %v", k, fp, wp)
		}
	}
	if n != s.Services.Len() || n < 12 {
		t.Errorf("compared %d of Felix's %d services", n, s.Services.Len())
	}
}

// Every change applied incrementally gives exactly the entries a fresh translation of the same state
// gives: watch updates (backends come and go, a port changes, traffic policies, affinity, a service is
// deleted), the node's addresses changing under NodePorts, the BGP configuration going away.
func TestServicesIncrementalEqualsFresh(t *testing.T) {
	s := stateOf(t, servicesCapture(t))
	base := watchServices(t, filepath.Join("testdata", "k8s-services-watch.yaml"))
	setWatch(t, s, base)
	tr := New(testPorts, testNode())
	tr.Apply(s, s.TakeChanges())
	byName := func(kss []*model.KubeService, name string) (*model.KubeService, int) {
		for i, ks := range kss {
			if ks.Key.Name == name {
				c := *ks
				c.Ports = slices.Clone(ks.Ports)
				for j := range c.Ports {
					c.Ports[j].Backends = slices.Clone(c.Ports[j].Backends)
				}
				return &c, i
			}
		}
		t.Fatalf("no service %s", name)
		return nil, 0
	}
	cur := slices.Clone(base)
	steps := []struct {
		name   string
		change func()
	}{
		{"a backend goes away", func() {
			ks, i := byName(cur, "web")
			ks.Ports[0].Backends = ks.Ports[0].Backends[1:]
			cur[i] = ks
		}},
		{"the last backend goes away (reject)", func() {
			ks, i := byName(cur, "web-affinity")
			ks.Ports[0].Backends = nil
			cur[i] = ks
		}},
		{"a port changes", func() {
			ks, i := byName(cur, "multi")
			ks.Ports[0].Port = 8081
			cur[i] = ks
		}},
		{"traffic policies flip", func() {
			ks, i := byName(cur, "web-np")
			ks.ExternalTrafficLocal = false
			ks.InternalTrafficLocal = true
			cur[i] = ks
		}},
		{"affinity switched on", func() {
			ks, i := byName(cur, "web")
			ks.AffinityClientIP, ks.AffinityTimeout = true, 300
			cur[i] = ks
		}},
		{"a service is deleted", func() {
			_, i := byName(cur, "dual")
			cur = slices.Delete(cur, i, i+1)
		}},
		{"the node gets another address (NodePorts follow)", func() {
			applyMsgs(t, s, &proto.ToDataplane{Payload: &proto.ToDataplane_HostMetadataV4V6Update{
				HostMetadataV4V6Update: &proto.HostMetadataV4V6Update{Hostname: "node1", Ipv4Addr: "192.168.122.21/24"}}})
		}},
		{"a tunnel address appears (NodePorts on it too)", func() {
			applyMsgs(t, s, &proto.ToDataplane{Payload: &proto.ToDataplane_RouteUpdate{RouteUpdate: &proto.RouteUpdate{
				Type: proto.RouteType_LOCAL_TUNNEL, Dst: "10.65.0.0/32", DstNodeName: "node1", TunnelType: &proto.TunnelType{Vxlan: true}}}})
		}},
		{"the BGP configuration is deleted", func() {
			applyMsgs(t, s, &proto.ToDataplane{Payload: &proto.ToDataplane_GlobalBgpConfigUpdate{
				GlobalBgpConfigUpdate: &proto.GlobalBGPConfigUpdate{}}})
		}},
		{"every service is deleted", func() { cur = nil }},
	}
	for _, st := range steps {
		st.change()
		setWatch(t, s, cur)
		res := tr.Apply(s.Clone(), s.TakeChanges())
		fresh := Translate(s.Clone(), testPorts, testNode())
		if !res.Entries.Equal(fresh.Entries) {
			t.Fatalf("%s: incremental differs from fresh:\nincremental:\n%s\nfresh:\n%s", st.name,
				renderServiceEntries(t, res.Entries, svcLoopCIDRs...), renderServiceEntries(t, fresh.Entries, svcLoopCIDRs...))
		}
		checkEncodes(t, res.Entries)
		if st.name == "the node gets another address (NodePorts follow)" &&
			!strings.Contains(renderServiceEntries(t, res.Entries), "service_v4[192.168.122.21, dst_port=30081, protocol=6]") {
			t.Errorf("%s: no NodePort entry on the new address", st.name)
		}
	}
	if got := renderServiceEntries(t, tr.Entries(), svcLoopCIDRs...); got != "\n" {
		t.Errorf("entries left after every service was deleted:\n%s", got)
	}
}

// renderService in isolation: kube-proxy's endpoint selection and flags, per traffic policy.
func TestServiceRenderingFollowsKubeProxy(t *testing.T) {
	ready := func(a, node string) model.Backend {
		return model.Backend{Addr: netip.MustParseAddr(a), Port: 8080, Ready: true, Serving: true, NodeName: node}
	}
	terminating := func(a, node string) model.Backend {
		return model.Backend{Addr: netip.MustParseAddr(a), Port: 8080, Serving: true, Terminating: true, NodeName: node}
	}
	notServing := func(a, node string) model.Backend {
		return model.Backend{Addr: netip.MustParseAddr(a), Port: 8080, Terminating: true, NodeName: node}
	}
	svc := func(mod func(*model.KubeService), bs ...model.Backend) *model.KubeService {
		ks := &model.KubeService{Key: model.ServiceKey{Namespace: "x", Name: "s"}, Type: model.ServiceTypeNodePort,
			ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.1")},
			Ports:      []model.KubeServicePort{{Protocol: model.ProtoTCP, Port: 80, NodePort: 30000, Backends: bs}}}
		if mod != nil {
			mod(ks)
		}
		model.SortBackends(ks.Ports[0].Backends)
		return ks
	}
	node := []netip.Addr{netip.MustParseAddr("192.168.0.1")}
	// groups renders "int:<members> ext:<members>" with each member's flags.
	groups := func(ents []entry.Entry) string {
		members := map[string]string{}
		for _, e := range ents {
			if e.Kind == entry.KindMember {
				if e.Action.Name == string(p4src.ActionServiceReject) {
					members[e.Name] = "reject"
				} else {
					members[e.Name] = fmt.Sprintf("%s/%d", addrOf(e.Action.Params[0].Value, 32), bytesUint(e.Action.Params[1].Value))
				}
			}
		}
		var out []string
		for _, e := range ents {
			if e.Kind != entry.KindTable {
				continue
			}
			target := e.Group + e.Member
			scope := target[strings.LastIndex(strings.TrimSuffix(target, "/reject"), "/")+1:]
			scope = strings.TrimSuffix(scope, "/reject")
			var ms []string
			if e.Member != "" {
				ms = append(ms, members[e.Member])
			}
			for _, ge := range ents {
				if ge.Kind == entry.KindGroup && ge.Name == e.Group {
					for _, m := range ge.Members {
						ms = append(ms, members[m.Member])
					}
				}
			}
			s := scope + ":" + strings.Join(ms, ",")
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return strings.Join(out, " ")
	}
	tests := []struct {
		name string
		ks   *model.KubeService
		want string // flags per member: addr/flags
	}{
		{"ready endpoints everywhere; external traffic masqueraded (policy Cluster)",
			svc(nil, ready("10.0.0.1", "n1"), ready("10.0.0.2", "n2"), terminating("10.0.0.3", "n1")),
			"int:10.0.0.1/0,10.0.0.2/0 ext:10.0.0.1/1,10.0.0.2/1"},
		{"no ready endpoint: the serving terminating ones; never one that is not serving",
			svc(nil, terminating("10.0.0.3", "n1"), notServing("10.0.0.4", "n1")),
			"int:10.0.0.3/0 ext:10.0.0.3/1"},
		{"nothing usable: reject",
			svc(nil, notServing("10.0.0.4", "n1")),
			"int:reject ext:reject"},
		{"externalTrafficPolicy Local: only this node's, not masqueraded",
			svc(func(k *model.KubeService) { k.ExternalTrafficLocal = true }, ready("10.0.0.1", "n1"), ready("10.0.0.2", "n2")),
			"int:10.0.0.1/0,10.0.0.2/0 ext:10.0.0.1/0"},
		{"internalTrafficPolicy Local without a local endpoint: reject inside, cluster-wide outside",
			svc(func(k *model.KubeService) { k.InternalTrafficLocal = true }, ready("10.0.0.2", "n2")),
			"int:reject ext:10.0.0.2/1"},
		{"Local falls back to this node's terminating endpoints",
			svc(func(k *model.KubeService) { k.ExternalTrafficLocal = true }, terminating("10.0.0.1", "n1"), ready("10.0.0.2", "n2")),
			"int:10.0.0.2/0 ext:10.0.0.1/0"},
		{"ClientIP affinity flags every member",
			svc(func(k *model.KubeService) { k.AffinityClientIP, k.AffinityTimeout = true, 300 }, ready("10.0.0.1", "n1")),
			"int:10.0.0.1/2 ext:10.0.0.1/3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ents, _ := renderService(tc.ks, node, "n1")
			if got := groups(ents); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			set := &entry.Set{}
			for _, e := range ents {
				if _, err := set.Put(e); err != nil {
					t.Fatal(err)
				}
			}
			checkEncodes(t, set)
		})
	}
}

// More backends than a selector group holds: the first ones (by address) are used, and it is reported.
func TestServiceWithMoreBackendsThanAGroupHoldsIsTruncatedAndReported(t *testing.T) {
	ks := &model.KubeService{Key: model.ServiceKey{Namespace: "x", Name: "big"}, Type: model.ServiceTypeClusterIP,
		ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.1")}, Ports: []model.KubeServicePort{{Protocol: model.ProtoTCP, Port: 80}}}
	a := netip.MustParseAddr("10.1.0.0")
	for i := 0; i < 300; i++ {
		a = a.Next()
		ks.Ports[0].Backends = append(ks.Ports[0].Backends, model.Backend{Addr: a, Port: 80, Ready: true, Serving: true})
	}
	ents, r := renderService(ks, nil, "n1")
	for _, e := range ents {
		if e.Kind == entry.KindGroup && len(e.Members) != p4src.ProfileServiceSelectorV4MaxGroupSize {
			t.Errorf("group of %d members", len(e.Members))
		}
	}
	if len(r.issues) != 1 || r.issues[0].Feature != FeatureServiceBackends {
		t.Errorf("issues %v", r.issues)
	}
}
