package scenario

import (
	"fmt"
	"net/netip"
	"path"
	"strings"

	"github.com/calico-p4/calico-p4/e2e/matrix"
	"github.com/calico-p4/calico-p4/e2e/topology"
)

// PodInfo is a pod of the scenario at some step, as the harness needs it.
type PodInfo struct {
	Name       string // "<namespace>/<pod>"
	Namespace  string
	Pod        string
	Node       string
	IPv4, IPv6 netip.Addr
	HostIface  string
	MAC        string
	Ports      []EndpointPort
}

// Pods lists the pods after the snapshot (step 0) or after step i (1-based), sorted by name.
func (s *Scenario) Pods(step int) ([]PodInfo, error) {
	cs, err := s.states()
	if err != nil {
		return nil, err
	}
	if step < 0 || step >= len(cs) {
		return nil, fmt.Errorf("step %d out of range 0..%d", step, len(cs)-1)
	}
	c := cs[step]
	var out []PodInfo
	for _, k := range sortedKeys(c.pods) {
		p := c.pods[k]
		pi := PodInfo{Name: k, Namespace: p.Namespace, Pod: p.Name, Node: p.Spec.NodeName, MAC: p.Spec.MAC,
			HostIface: p.Spec.InterfaceName, Ports: p.Spec.Ports}
		if pi.HostIface == "" {
			pi.HostIface = topology.CalicoInterfaceName(s.IfacePrefix, p.Namespace, p.Name)
		}
		for _, ip := range p.ips {
			if ip.Is4() && !pi.IPv4.IsValid() {
				pi.IPv4 = ip
			} else if ip.Is6() && !pi.IPv6.IsValid() {
				pi.IPv6 = ip
			}
		}
		out = append(out, pi)
	}
	return out, nil
}

// Expectations returns the expectations after the snapshot (step 0) or after step i (1-based).
func (s *Scenario) Expectations(step int) []Expectation {
	if step == 0 {
		return s.Expect
	}
	if step-1 < len(s.Steps) {
		return s.Steps[step-1].Expect
	}
	return nil
}

// Tables turns an expectation into one truth table per case over the given peers.
func (e Expectation) Tables(peers []matrix.Peer) ([]*matrix.Table, error) {
	var def bool
	switch strings.ToLower(e.Default) {
	case "allow":
		def = true
	case "deny":
	default:
		return nil, fmt.Errorf("expectation default %q: want allow or deny", e.Default)
	}
	type rule struct {
		allow    bool
		from, to string
	}
	var rules []rule
	for _, r := range e.Rules {
		f := strings.Fields(r)
		if len(f) != 4 || f[2] != "->" || (f[0] != "allow" && f[0] != "deny") {
			return nil, fmt.Errorf("expectation rule %q: want \"allow|deny <from> -> <to>\"", r)
		}
		for _, pat := range []string{f[1], f[3]} {
			if _, err := path.Match(pat, "x/y"); err != nil {
				return nil, fmt.Errorf("expectation rule %q: bad pattern %q", r, pat)
			}
		}
		rules = append(rules, rule{allow: f[0] == "allow", from: f[1], to: f[3]})
	}
	if len(e.Cases) == 0 {
		return nil, fmt.Errorf("expectation without cases")
	}
	var out []*matrix.Table
	for _, cs := range e.Cases {
		c, err := matrix.ParseCase(cs)
		if err != nil {
			return nil, err
		}
		t := matrix.NewTable(c, peers, def)
		for from, row := range t.Cells {
			for to := range row {
				v := def
				for _, r := range rules {
					if globMatch(r.from, from) && globMatch(r.to, to) {
						v = r.allow
					}
				}
				t.Set(from, to, v)
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// globMatch matches "<namespace>/<pod>" names; a lone "*" matches every pod.
func globMatch(pat, name string) bool {
	if pat == "*" {
		return true
	}
	ok, _ := path.Match(pat, name)
	return ok
}

// NodeInfo is a node of the scenario: its name and addresses (with their subnet length).
type NodeInfo struct {
	Name       string
	IPv4, IPv6 netip.Prefix
}

// Nodes lists the nodes after the snapshot (step 0) or after step i, sorted by name.
func (s *Scenario) Nodes(step int) ([]NodeInfo, error) {
	cs, err := s.states()
	if err != nil {
		return nil, err
	}
	if step < 0 || step >= len(cs) {
		return nil, fmt.Errorf("step %d out of range 0..%d", step, len(cs)-1)
	}
	var out []NodeInfo
	for _, k := range sortedKeys(cs[step].nodes) {
		n := cs[step].nodes[k]
		out = append(out, NodeInfo{Name: k, IPv4: n.v4, IPv6: n.v6})
	}
	return out, nil
}

// LocalNodeName is the node Felix runs on.
func (s *Scenario) LocalNodeName() string { return s.localNode() }

// Pools lists the IP pools' CIDRs after the snapshot (step 0) or after step i, sorted.
func (s *Scenario) Pools(step int) ([]netip.Prefix, error) {
	cs, err := s.states()
	if err != nil {
		return nil, err
	}
	if step < 0 || step >= len(cs) {
		return nil, fmt.Errorf("step %d out of range 0..%d", step, len(cs)-1)
	}
	var out []netip.Prefix
	for _, k := range sortedKeys(cs[step].pools) {
		out = append(out, netip.MustParsePrefix(cs[step].pools[k].CIDR).Masked())
	}
	return out, nil
}
