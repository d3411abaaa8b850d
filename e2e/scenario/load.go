package scenario

import (
	"bytes"
	"encoding/json"
	"fmt"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Parse reads a scenario from YAML (or JSON). Unknown fields are errors, so typos do not pass silently.
func Parse(data []byte) (*Scenario, error) { return ParseWithBase(nil, data) }

// ParseWithBase reads a scenario that extends base: base's resources come first (then the scenario's own),
// base's Felix configuration is the default of the scenario's, and base's cluster settings (local node,
// datastore, service accounts, interface prefix) apply unless the scenario sets them. Many small scenarios
// can so share one cluster (the conformance cases share their pods).
func ParseWithBase(base *Scenario, data []byte) (*Scenario, error) {
	var s Scenario
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if base != nil {
		s.Resources = append(append([]Resource(nil), base.Resources...), s.Resources...)
		cfg := map[string]string{}
		for k, v := range base.FelixConfig {
			cfg[k] = v
		}
		for k, v := range s.FelixConfig {
			cfg[k] = v
		}
		s.FelixConfig = cfg
		if s.LocalNode == "" {
			s.LocalNode = base.LocalNode
		}
		if s.Datastore == "" {
			s.Datastore = base.Datastore
		}
		if s.ImplicitServiceAccounts == nil {
			s.ImplicitServiceAccounts = base.ImplicitServiceAccounts
		}
		if s.IfacePrefix == "" {
			s.IfacePrefix = base.IfacePrefix
		}
		if s.DefaultMAC == nil {
			s.DefaultMAC = base.DefaultMAC
		}
	}
	if s.Name == "" {
		return nil, fmt.Errorf("scenario: name is required")
	}
	// Validate by building every state once.
	if _, err := s.states(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Load reads a scenario file.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func decodeSpec(r Resource, into any) error {
	if len(r.Spec) == 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(r.Spec))
	d.DisallowUnknownFields()
	if err := d.Decode(into); err != nil {
		return fmt.Errorf("%s %s: spec: %w", r.Kind, r.key(), err)
	}
	return nil
}

func (r Resource) key() string {
	if r.Metadata.Namespace != "" {
		return r.Metadata.Namespace + "/" + r.Metadata.Name
	}
	return r.Metadata.Name
}

// Objects of the cluster, decoded.
type node struct {
	Meta
	v4, v6 netip.Prefix
	asn    string
	blocks []netip.Prefix
	tunnel netip.Addr
	tunMAC string
}

type pod struct {
	Meta
	Spec PodSpec
	ips  []netip.Addr
}

type policyRes struct {
	Meta
	Kind string
	Spec PolicySpec
	KNP  *KubernetesNetworkPolicySpec
}

type netSet struct {
	Meta
	Kind string
	nets []netip.Prefix
}

type hostEndpoint struct {
	Meta
	Spec HostEndpointSpec
	ips  []netip.Addr
}

// cluster is the set of resources at one point of the scenario.
type cluster struct {
	datastore   string
	implicitSAs bool
	nodes       map[string]*node
	pools       map[string]IPPoolSpec
	ns          map[string]Meta
	sas         map[string]Meta // ns/name
	pods        map[string]*pod // ns/name
	profiles    map[string]ProfileSpec
	tiers       map[string]TierSpec
	policies    map[string]*policyRes // kind|ns/name
	sets        map[string]*netSet    // kind|ns/name
	heps        map[string]*hostEndpoint
	svcs        map[string]*corev1.Service            // ns/name
	slices      map[string]*discoveryv1.EndpointSlice // ns/name
}

func newCluster(datastore string) *cluster {
	return &cluster{datastore: datastore, nodes: map[string]*node{}, pools: map[string]IPPoolSpec{},
		ns: map[string]Meta{}, sas: map[string]Meta{}, pods: map[string]*pod{}, profiles: map[string]ProfileSpec{},
		tiers: map[string]TierSpec{}, policies: map[string]*policyRes{}, sets: map[string]*netSet{},
		heps: map[string]*hostEndpoint{}, svcs: map[string]*corev1.Service{}, slices: map[string]*discoveryv1.EndpointSlice{}}
}

func (c *cluster) kdd() bool { return c.datastore != "etcdv3" }

func (c *cluster) clone() *cluster {
	n := newCluster(c.datastore)
	n.implicitSAs = c.implicitSAs
	for k, v := range c.nodes {
		n.nodes[k] = v
	}
	for k, v := range c.pools {
		n.pools[k] = v
	}
	for k, v := range c.ns {
		n.ns[k] = v
	}
	for k, v := range c.sas {
		n.sas[k] = v
	}
	for k, v := range c.pods {
		n.pods[k] = v
	}
	for k, v := range c.profiles {
		n.profiles[k] = v
	}
	for k, v := range c.tiers {
		n.tiers[k] = v
	}
	for k, v := range c.policies {
		n.policies[k] = v
	}
	for k, v := range c.sets {
		n.sets[k] = v
	}
	for k, v := range c.heps {
		n.heps[k] = v
	}
	for k, v := range c.svcs {
		n.svcs[k] = v
	}
	for k, v := range c.slices {
		n.slices[k] = v
	}
	return n
}

func needNamespace(r Resource, want bool) error {
	if want && r.Metadata.Namespace == "" {
		return fmt.Errorf("%s %s: metadata.namespace is required", r.Kind, r.Metadata.Name)
	}
	if !want && r.Metadata.Namespace != "" {
		return fmt.Errorf("%s %s: is not namespaced", r.Kind, r.Metadata.Name)
	}
	return nil
}

func parseIPs(ss []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range ss {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("bad IP %q", s)
		}
		out = append(out, a)
	}
	return out, nil
}

// parseNet parses a CIDR or bare IP and returns the masked prefix (what Calico keeps).
func parseNet(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad CIDR %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (c *cluster) apply(r Resource) error {
	if r.Metadata.Name == "" {
		return fmt.Errorf("%s: metadata.name is required", r.Kind)
	}
	kind := canonicalKind(r.APIVersion, r.Kind)
	m := r.Metadata
	if (kind == KindNamespace || kind == KindServiceAccount) && len(r.Spec) > 0 && string(r.Spec) != "null" {
		return fmt.Errorf("%s %s: has no spec (labels go in metadata)", kind, r.key())
	}
	switch kind {
	case KindNode:
		var s NodeSpec
		if err := decodeSpec(r, &s); err != nil {
			return err
		}
		n := &node{Meta: m, asn: s.ASNumber, tunMAC: s.VXLANTunnelMAC}
		for _, b := range s.Blocks {
			p, err := netip.ParsePrefix(b)
			if err != nil {
				return fmt.Errorf("node %s: bad block %q", m.Name, b)
			}
			n.blocks = append(n.blocks, p.Masked())
		}
		if s.VXLANTunnelAddr != "" {
			a, err := netip.ParseAddr(s.VXLANTunnelAddr)
			if err != nil || !a.Is4() {
				return fmt.Errorf("node %s: bad vxlanTunnelAddr %q", m.Name, s.VXLANTunnelAddr)
			}
			n.tunnel = a
		}
		if s.VXLANTunnelMAC != "" {
			if _, err := net.ParseMAC(s.VXLANTunnelMAC); err != nil {
				return fmt.Errorf("node %s: bad vxlanTunnelMAC %q", m.Name, s.VXLANTunnelMAC)
			}
		}
		for _, x := range []struct {
			in  string
			out *netip.Prefix
			v6  bool
		}{{s.IPv4, &n.v4, false}, {s.IPv6, &n.v6, true}} {
			if x.in == "" {
				continue
			}
			p, err := netip.ParsePrefix(x.in)
			if err != nil || p.Addr().Is6() != x.v6 {
				return fmt.Errorf("node %s: bad address %q (want CIDR of the right family)", m.Name, x.in)
			}
			*x.out = p
		}
		if c.kdd() {
			m.Labels = withDefaults(m.Labels, map[string]string{"kubernetes.io/hostname": m.Name, "kubernetes.io/os": "linux"})
			n.Meta = m
		}
		c.nodes[m.Name] = n
	case KindIPPool:
		var s IPPoolSpec
		if err := decodeSpec(r, &s); err != nil {
			return err
		}
		if _, err := netip.ParsePrefix(s.CIDR); err != nil {
			return fmt.Errorf("ippool %s: bad cidr %q", m.Name, s.CIDR)
		}
		c.pools[m.Name] = s
	case KindNamespace:
		if err := needNamespace(r, false); err != nil {
			return err
		}
		if m.Name == "true" || m.Name == "false" {
			return fmt.Errorf("namespace %q: YAML turned a bare y/n/yes/no/on/off into a boolean; quote the name", m.Name)
		}
		if c.kdd() {
			m.Labels = withDefaults(m.Labels, map[string]string{"kubernetes.io/metadata.name": m.Name})
		}
		c.ns[m.Name] = m
	case KindServiceAccount:
		if err := needNamespace(r, true); err != nil {
			return err
		}
		c.sas[r.key()] = m
	case KindPod:
		if err := needNamespace(r, true); err != nil {
			return err
		}
		var s PodSpec
		if err := decodeSpec(r, &s); err != nil {
			return err
		}
		ips, err := parseIPs(s.IPs)
		if err != nil {
			return fmt.Errorf("pod %s: %w", r.key(), err)
		}
		if len(ips) == 0 {
			return fmt.Errorf("pod %s: needs at least one IP", r.key())
		}
		for _, p := range s.Ports {
			if p.Name == "" || p.number() < 1 || p.number() > 65535 {
				return fmt.Errorf("pod %s: bad port %+v", r.key(), p)
			}
		}
		c.pods[r.key()] = &pod{Meta: m, Spec: s, ips: ips}
	case KindProfile:
		var s ProfileSpec
		if err := decodeSpec(r, &s); err != nil {
			return err
		}
		c.profiles[m.Name] = s
	case KindTier:
		var s TierSpec
		if err := decodeSpec(r, &s); err != nil {
			return err
		}
		c.tiers[m.Name] = s
	case KindGNP, KindNP:
		if err := needNamespace(r, kind == KindNP); err != nil {
			return err
		}
		var s PolicySpec
		if err := decodeSpec(r, &s); err != nil {
			return err
		}
		if kind == KindNP && s.NamespaceSelector != "" {
			return fmt.Errorf("NetworkPolicy %s: namespaceSelector is a GlobalNetworkPolicy field", r.key())
		}
		c.policies[kind+"|"+r.key()] = &policyRes{Meta: m, Kind: kind, Spec: s}
	case KindKNP:
		if err := needNamespace(r, true); err != nil {
			return err
		}
		var s KubernetesNetworkPolicySpec
		if err := decodeSpec(r, &s); err != nil {
			return err
		}
		c.policies[kind+"|"+r.key()] = &policyRes{Meta: m, Kind: kind, KNP: &s}
	case KindGNS, KindNetworkSet:
		if err := needNamespace(r, kind == KindNetworkSet); err != nil {
			return err
		}
		var s NetworkSetSpec
		if err := decodeSpec(r, &s); err != nil {
			return err
		}
		ns := &netSet{Meta: m, Kind: kind}
		for _, n := range s.Nets {
			p, err := parseNet(n)
			if err != nil {
				return fmt.Errorf("%s %s: %w", kind, r.key(), err)
			}
			ns.nets = append(ns.nets, p)
		}
		c.sets[kind+"|"+r.key()] = ns
	case KindHostEndpoint:
		if err := needNamespace(r, false); err != nil {
			return err
		}
		var s HostEndpointSpec
		if err := decodeSpec(r, &s); err != nil {
			return err
		}
		if s.Node == "" {
			return fmt.Errorf("hostendpoint %s: spec.node is required", m.Name)
		}
		ips, err := parseIPs(s.ExpectedIPs)
		if err != nil {
			return fmt.Errorf("hostendpoint %s: %w", m.Name, err)
		}
		c.heps[m.Name] = &hostEndpoint{Meta: m, Spec: s, ips: ips}
	case KindService:
		svc, err := decodeService(r)
		if err != nil {
			return err
		}
		c.svcs[r.key()] = svc
	case KindEndpointSlice:
		sl, err := decodeSlice(r)
		if err != nil {
			return err
		}
		c.slices[r.key()] = sl
	default:
		return fmt.Errorf("unknown kind %q (apiVersion %q)", r.Kind, r.APIVersion)
	}
	return nil
}

func (c *cluster) remove(ref Ref) error {
	kind := canonicalKind(ref.APIVersion, ref.Kind)
	key := ref.Name
	if ref.Namespace != "" {
		key = ref.Namespace + "/" + ref.Name
	}
	var ok bool
	switch kind {
	case KindNode:
		_, ok = c.nodes[key]
		delete(c.nodes, key)
	case KindIPPool:
		_, ok = c.pools[key]
		delete(c.pools, key)
	case KindNamespace:
		_, ok = c.ns[key]
		delete(c.ns, key)
	case KindServiceAccount:
		_, ok = c.sas[key]
		delete(c.sas, key)
	case KindPod:
		_, ok = c.pods[key]
		delete(c.pods, key)
	case KindProfile:
		_, ok = c.profiles[key]
		delete(c.profiles, key)
	case KindTier:
		_, ok = c.tiers[key]
		delete(c.tiers, key)
	case KindGNP, KindNP, KindKNP:
		_, ok = c.policies[kind+"|"+key]
		delete(c.policies, kind+"|"+key)
	case KindGNS, KindNetworkSet:
		_, ok = c.sets[kind+"|"+key]
		delete(c.sets, kind+"|"+key)
	case KindHostEndpoint:
		_, ok = c.heps[key]
		delete(c.heps, key)
	case KindService:
		_, ok = c.svcs[key]
		delete(c.svcs, key)
	case KindEndpointSlice:
		_, ok = c.slices[key]
		delete(c.slices, key)
	default:
		return fmt.Errorf("delete: unknown kind %q", ref.Kind)
	}
	if !ok {
		return fmt.Errorf("delete: no %s %s", kind, key)
	}
	return nil
}

func withDefaults(labels, defaults map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range defaults {
		out[k] = v
	}
	for k, v := range labels {
		out[k] = v
	}
	return out
}

// localNode returns the scenario's local node name.
func (s *Scenario) localNode() string {
	if s.LocalNode != "" {
		return s.LocalNode
	}
	for _, r := range s.Resources {
		if r.Kind == KindNode {
			return r.Metadata.Name
		}
	}
	return "node1"
}

// states builds the cluster after the initial resources and after each step.
func (s *Scenario) states() ([]*cluster, error) {
	ds := s.Datastore
	if ds == "" {
		ds = "kubernetes"
	}
	if ds != "kubernetes" && ds != "etcdv3" {
		return nil, fmt.Errorf("scenario %s: datastore %q: want kubernetes or etcdv3", s.Name, ds)
	}
	c := newCluster(ds)
	c.implicitSAs = s.ImplicitServiceAccounts == nil || *s.ImplicitServiceAccounts
	for _, r := range s.Resources {
		if err := c.apply(r); err != nil {
			return nil, fmt.Errorf("scenario %s: resources: %w", s.Name, err)
		}
	}
	out := []*cluster{c}
	for i, st := range s.Steps {
		if st.Title == "" {
			return nil, fmt.Errorf("scenario %s: step %d: title is required", s.Name, i+1)
		}
		c = c.clone()
		for _, ref := range st.Delete {
			if err := c.remove(ref); err != nil {
				return nil, fmt.Errorf("scenario %s: step %q: %w", s.Name, st.Title, err)
			}
		}
		for _, r := range st.Apply {
			if err := c.apply(r); err != nil {
				return nil, fmt.Errorf("scenario %s: step %q: %w", s.Name, st.Title, err)
			}
		}
		out = append(out, c)
	}
	for i, c := range out {
		if err := c.validate(s.localNode()); err != nil {
			label := "resources"
			if i > 0 {
				label = fmt.Sprintf("step %q", s.Steps[i-1].Title)
			}
			return nil, fmt.Errorf("scenario %s: %s: %w", s.Name, label, err)
		}
	}
	return out, nil
}

// validate checks cross-references.
func (c *cluster) validate(local string) error {
	for _, k := range sortedKeys(c.pods) {
		p := c.pods[k]
		if _, ok := c.ns[p.Namespace]; !ok {
			return fmt.Errorf("pod %s: namespace %s does not exist", k, p.Namespace)
		}
		if p.Spec.NodeName == "" {
			p.Spec.NodeName = local
		}
	}
	for _, p := range c.policies {
		if p.Kind != KindKNP && p.Spec.Tier != "" && p.Spec.Tier != "default" {
			if _, ok := c.tiers[p.Spec.Tier]; !ok {
				return fmt.Errorf("policy %s: tier %s does not exist", p.Name, p.Spec.Tier)
			}
		}
	}
	if err := c.validateServices(); err != nil {
		return err
	}
	seen := map[netip.Addr]string{}
	for _, k := range sortedKeys(c.pods) {
		for _, ip := range c.pods[k].ips {
			if other, dup := seen[ip]; dup {
				return fmt.Errorf("pods %s and %s share %s", other, k, ip)
			}
			seen[ip] = k
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// namespacedName splits "ns/name".
func namespacedName(k string) (string, string) {
	ns, name, _ := strings.Cut(k, "/")
	return ns, name
}

// Flatten returns the scenario as it stands after step (0 = the snapshot): its resources are the
// cluster's state then (what a Felix started at that point sends before InSync), its expectations those
// of that step, its steps the ones after it. It is what a Felix restart in the middle of a scenario sees.
func (s *Scenario) Flatten(step int) (*Scenario, error) {
	if step < 0 || step > len(s.Steps) {
		return nil, fmt.Errorf("scenario %s: step %d out of range 0..%d", s.Name, step, len(s.Steps))
	}
	var order []string
	res := map[string]Resource{}
	keyOf := func(kind, apiVersion, ns, name string) string {
		return canonicalKind(apiVersion, kind) + "|" + ns + "/" + name
	}
	put := func(r Resource) {
		k := keyOf(r.Kind, r.APIVersion, r.Metadata.Namespace, r.Metadata.Name)
		if _, ok := res[k]; !ok {
			order = append(order, k)
		}
		res[k] = r
	}
	for _, r := range s.Resources {
		put(r)
	}
	for _, st := range s.Steps[:step] {
		for _, d := range st.Delete {
			k := keyOf(d.Kind, d.APIVersion, d.Namespace, d.Name)
			if _, ok := res[k]; !ok {
				return nil, fmt.Errorf("scenario %s: step %q deletes unknown %s", s.Name, st.Title, k)
			}
			delete(res, k)
		}
		for _, r := range st.Apply {
			put(r)
		}
	}
	out := *s
	out.Resources = nil
	for _, k := range order {
		if r, ok := res[k]; ok {
			out.Resources = append(out.Resources, r)
		}
	}
	out.Expect = s.Expectations(step)
	out.Steps = append([]Step(nil), s.Steps[step:]...)
	if _, err := out.states(); err != nil {
		return nil, err
	}
	return &out, nil
}
