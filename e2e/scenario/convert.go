package scenario

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/projectcalico/calico/felix/proto"
	"github.com/projectcalico/calico/libcalico-go/lib/hash"
	"github.com/projectcalico/calico/libcalico-go/lib/selector"
	"github.com/projectcalico/calico/libcalico-go/lib/selector/parser"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Calico's label and naming conventions (libcalico-go apiv3 and k8s conversion constants).
const (
	labelNamespace      = "projectcalico.org/namespace"
	labelOrchestrator   = "projectcalico.org/orchestrator"
	labelServiceAccount = "projectcalico.org/serviceaccount"
	labelName           = "projectcalico.org/name"
	nsLabelPrefix       = "pcns."
	saLabelPrefix       = "pcsa."
	nsProfilePrefix     = "kns."
	saProfilePrefix     = "ksa."
	knpNamePrefix       = "knp.default."
	defaultTier         = "default"
)

// v1Policy is a policy as Felix's calculation graph sees it (model.Policy).
type v1Policy struct {
	Name                                string // Felix's policy name: default.<n>, <ns>/default.<n>, <ns>/knp.default.<n>
	Tier                                string
	Namespace                           string
	Order                               *float64
	Selector                            string
	Types                               []string // lower-case
	Inbound                             []v1Rule
	Outbound                            []v1Rule
	DoNotTrack, PreDNAT, ApplyOnForward bool
}

// v1Rule is model.Rule: the v3 rule with its entity selectors folded into one selector per side.
type v1Rule struct {
	Action                                         string
	IPVersion                                      *int
	Protocol, NotProtocol                          *Protocol
	ICMPType, ICMPCode, NotICMPType, NotICMPCode   *int
	SrcNets, DstNets, NotSrcNets, NotDstNets       []string
	SrcSelector, DstSelector                       string
	NotSrcSelector, NotDstSelector                 string
	SrcPorts, DstPorts, NotSrcPorts, NotDstPorts   []Port
	OrigSrcSel, OrigDstSel, OrigNotSrc, OrigNotDst string
	OrigSrcNsSel, OrigDstNsSel                     string
	SrcSA, DstSA                                   *ServiceAccountMatch
	HTTP                                           *HTTPMatch
	Metadata                                       map[string]string
}

func tierOf(p *policyRes) string {
	if p.Kind == KindKNP || p.Spec.Tier == "" {
		return defaultTier
	}
	return p.Spec.Tier
}

// felixPolicyName applies Calico's naming: the tier prefix on Calico policies, knp.default. on Kubernetes ones,
// and "<ns>/" for namespaced ones.
func felixPolicyName(p *policyRes) string {
	name := p.Name
	switch p.Kind {
	case KindKNP:
		name = knpNamePrefix + name
	default:
		if t := tierOf(p) + "."; !strings.HasPrefix(name, t) {
			name = t + name
		}
	}
	if p.Namespace != "" {
		name = p.Namespace + "/" + name
	}
	return name
}

// toV1 converts a Calico or Kubernetes policy the way Calico's update processors (and, for Kubernetes
// NetworkPolicy, the KDD converter) do.
func toV1(p *policyRes) (*v1Policy, error) {
	if p.Kind == KindKNP {
		return knpToV1(p)
	}
	s := p.Spec
	v := &v1Policy{Name: felixPolicyName(p), Tier: tierOf(p), Namespace: p.Namespace, Order: s.Order,
		DoNotTrack: s.DoNotTrack, PreDNAT: s.PreDNAT, ApplyOnForward: s.ApplyOnForward}
	if s.DoNotTrack && s.PreDNAT {
		return nil, fmt.Errorf("policy %s: doNotTrack and preDNAT are exclusive", p.Name)
	}
	if (s.DoNotTrack || s.PreDNAT) && !s.ApplyOnForward {
		return nil, fmt.Errorf("policy %s: doNotTrack/preDNAT need applyOnForward (Calico validation)", p.Name)
	}
	if s.PreDNAT && len(s.Egress) > 0 {
		return nil, fmt.Errorf("policy %s: preDNAT policies have no egress rules", p.Name)
	}
	sel := s.Selector
	if p.Kind == KindNP {
		nsSel := fmt.Sprintf("%s == '%s'", labelNamespace, p.Namespace)
		if sel == "" {
			sel = nsSel
		} else {
			sel = fmt.Sprintf("(%s) && %s", sel, nsSel)
		}
		sel = prefixAndAppend(sel, s.ServiceAccountSelector, saLabelPrefix)
		v.ApplyOnForward = true
	} else {
		if s.NamespaceSelector != "" {
			sel = prefixAndAppend(sel, s.NamespaceSelector, nsLabelPrefix)
			sel = strings.ReplaceAll(sel, "all()", "has("+labelNamespace+")")
		}
		if s.ServiceAccountSelector != "" {
			sel = prefixAndAppend(sel, s.ServiceAccountSelector, saLabelPrefix)
			sel = strings.ReplaceAll(sel, "all()", "has("+labelServiceAccount+")")
		}
	}
	if _, err := selector.Parse(sel); err != nil {
		return nil, fmt.Errorf("policy %s: selector %q: %w", p.Name, sel, err)
	}
	v.Selector = sel
	// Calico's defaulting of spec.types (clientv3): egress rules only ⇒ Egress; both ⇒ both; else Ingress.
	types := s.Types
	if len(types) == 0 {
		switch {
		case len(s.Egress) == 0:
			types = []string{"Ingress"}
		case len(s.Ingress) == 0:
			types = []string{"Egress"}
		default:
			types = []string{"Ingress", "Egress"}
		}
	}
	for _, t := range types {
		lt := strings.ToLower(t)
		if lt != "ingress" && lt != "egress" {
			return nil, fmt.Errorf("policy %s: bad type %q", p.Name, t)
		}
		v.Types = append(v.Types, lt)
	}
	var err error
	if v.Inbound, err = rulesToV1(s.Ingress, p.Namespace); err != nil {
		return nil, fmt.Errorf("policy %s: ingress: %w", p.Name, err)
	}
	if v.Outbound, err = rulesToV1(s.Egress, p.Namespace); err != nil {
		return nil, fmt.Errorf("policy %s: egress: %w", p.Name, err)
	}
	return v, nil
}

func parseAttachPrefix(s, prefix string) (string, error) {
	sel, err := parser.Parse(s)
	if err != nil {
		return "", fmt.Errorf("selector %q: %w", s, err)
	}
	sel.AcceptVisitor(parser.PrefixVisitor{Prefix: prefix})
	return sel.String(), nil
}

func prefixAndAppend(current, add, prefix string) string {
	if add == "" {
		return current
	}
	p, err := parseAttachPrefix(add, prefix)
	if err != nil || p == "" {
		return current // invalid selectors are caught by the final parse
	}
	if current != "" {
		return fmt.Sprintf("(%s) && %s", current, p)
	}
	return p
}

func rulesToV1(rs []Rule, ns string) ([]v1Rule, error) {
	var out []v1Rule
	for i, r := range rs {
		v, err := ruleToV1(r, ns)
		if err != nil {
			return nil, fmt.Errorf("rule %d: %w", i, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func ruleToV1(r Rule, ns string) (v1Rule, error) {
	var v v1Rule
	switch strings.ToLower(r.Action) {
	case "allow", "deny", "log":
		v.Action = strings.ToLower(r.Action)
	case "pass":
		v.Action = "next-tier"
	default:
		return v, fmt.Errorf("unknown action %q", r.Action)
	}
	if len(r.Source.Services) > 0 || len(r.Destination.Services) > 0 {
		return v, fmt.Errorf("services: rule matches need Kubernetes Services and EndpointSlices, which scenarios do not model")
	}
	if r.IPVersion != nil && *r.IPVersion != 4 && *r.IPVersion != 6 {
		return v, fmt.Errorf("ipVersion %d", *r.IPVersion)
	}
	v.IPVersion = r.IPVersion
	if r.Protocol != nil {
		p := r.Protocol.v1()
		v.Protocol = &p
	}
	if r.NotProtocol != nil {
		p := r.NotProtocol.v1()
		v.NotProtocol = &p
	}
	if r.ICMP != nil {
		v.ICMPType, v.ICMPCode = r.ICMP.Type, r.ICMP.Code
	}
	if r.NotICMP != nil {
		v.NotICMPType, v.NotICMPCode = r.NotICMP.Type, r.NotICMP.Code
	}
	var err error
	if v.SrcSelector, err = entitySelector(r.Source, ns); err != nil {
		return v, err
	}
	if v.DstSelector, err = entitySelector(r.Destination, ns); err != nil {
		return v, err
	}
	v.NotSrcSelector, v.NotDstSelector = r.Source.NotSelector, r.Destination.NotSelector
	for _, sel := range []string{v.SrcSelector, v.DstSelector, v.NotSrcSelector, v.NotDstSelector} {
		if _, err := selector.Parse(sel); err != nil {
			return v, fmt.Errorf("selector %q: %w", sel, err)
		}
	}
	for _, x := range []struct {
		in  []string
		out *[]string
	}{{r.Source.Nets, &v.SrcNets}, {r.Destination.Nets, &v.DstNets}, {r.Source.NotNets, &v.NotSrcNets}, {r.Destination.NotNets, &v.NotDstNets}} {
		for _, n := range x.in {
			p, err := parseNet(n)
			if err != nil {
				return v, err
			}
			*x.out = append(*x.out, p.String())
		}
	}
	v.SrcPorts, v.DstPorts, v.NotSrcPorts, v.NotDstPorts = r.Source.Ports, r.Destination.Ports, r.Source.NotPorts, r.Destination.NotPorts
	if (len(v.SrcPorts)+len(v.DstPorts)+len(v.NotSrcPorts)+len(v.NotDstPorts)) > 0 && !portProtocol(v.Protocol) {
		return v, fmt.Errorf("ports need protocol TCP, UDP or SCTP (Calico validation)")
	}
	v.OrigSrcSel, v.OrigDstSel = r.Source.Selector, r.Destination.Selector
	v.OrigNotSrc, v.OrigNotDst = r.Source.NotSelector, r.Destination.NotSelector
	v.OrigSrcNsSel, v.OrigDstNsSel = r.Source.NamespaceSelector, r.Destination.NamespaceSelector
	v.SrcSA, v.DstSA = r.Source.ServiceAccounts, r.Destination.ServiceAccounts
	v.HTTP, v.Metadata = r.HTTP, r.Metadata
	return v, nil
}

func portProtocol(p *Protocol) bool {
	if p == nil {
		return false
	}
	switch {
	case p.Name != "":
		return p.Name == "tcp" || p.Name == "udp" || p.Name == "sctp" || p.Name == "udplite"
	default:
		return p.Number == 6 || p.Number == 17 || p.Number == 132 || p.Number == 136
	}
}

// entitySelector folds an entity rule's selector, namespaceSelector and serviceAccounts into one selector,
// the way Calico's GetEntityRuleSelector does.
func entitySelector(er EntityRule, ns string) (string, error) {
	var nsSel, sel string
	if er.NamespaceSelector != "" {
		p, err := parseAttachPrefix(er.NamespaceSelector, nsLabelPrefix)
		if err != nil {
			return "", err
		}
		p = strings.ReplaceAll(p, "all()", "has("+labelNamespace+")")
		nsSel = strings.ReplaceAll(p, "global()", "!has("+labelNamespace+")")
	} else if ns != "" {
		nsSel = fmt.Sprintf("%s == '%s'", labelNamespace, ns)
	}
	var parts []string
	if er.ServiceAccounts != nil {
		sa, err := serviceAccountSelector(er.ServiceAccounts)
		if err != nil {
			return "", err
		}
		if sa != "" {
			parts = append(parts, sa)
		}
	}
	if er.Selector != "" {
		parts = append(parts, er.Selector)
	}
	switch len(parts) {
	case 1:
		sel = parts[0]
	case 2:
		sel = "(" + strings.Join(parts, ") && (") + ")"
	}
	if nsSel != "" && (sel != "" || er.NotSelector != "" || er.NamespaceSelector != "") {
		if sel != "" {
			sel = fmt.Sprintf("(%s) && (%s)", nsSel, sel)
		} else {
			sel = nsSel
		}
	}
	return sel, nil
}

func serviceAccountSelector(sam *ServiceAccountMatch) (string, error) {
	var updated string
	if sam.Selector != "" {
		var err error
		if updated, err = parseAttachPrefix(sam.Selector, saLabelPrefix); err != nil {
			return "", err
		}
	}
	if len(sam.Names) == 0 {
		return updated, nil
	}
	names, err := parser.Parse(fmt.Sprintf("%s in { '%s' }", labelServiceAccount, strings.Join(sam.Names, "', '")))
	if err != nil {
		return "", fmt.Errorf("service account names %v: %w", sam.Names, err)
	}
	s := names.String()
	if updated != "" {
		s = fmt.Sprintf("(%s) && (%s)", updated, s)
	}
	return s, nil
}

// knpToV1 converts a Kubernetes NetworkPolicy like Calico's KDD converter (K8sNetworkPolicyToCalico) and
// then the NetworkPolicy update processor.
func knpToV1(p *policyRes) (*v1Policy, error) {
	spec := p.KNP
	order := 1000.0
	res := &policyRes{Meta: p.Meta, Kind: KindNP, Spec: PolicySpec{Order: &order, Selector: k8sSelector(&spec.PodSelector, true)}}
	var err error
	for i, r := range spec.Ingress {
		rules, err := k8sRule(r.From, r.Ports, true)
		if err != nil {
			return nil, fmt.Errorf("kubernetes policy %s: ingress %d: %w", p.Name, i, err)
		}
		res.Spec.Ingress = append(res.Spec.Ingress, rules...)
	}
	for i, r := range spec.Egress {
		rules, err := k8sRule(r.To, r.Ports, false)
		if err != nil {
			return nil, fmt.Errorf("kubernetes policy %s: egress %d: %w", p.Name, i, err)
		}
		res.Spec.Egress = append(res.Spec.Egress, rules...)
	}
	var ingress, egress bool
	for _, t := range spec.PolicyTypes {
		switch strings.ToLower(string(t)) {
		case "ingress":
			ingress = true
		case "egress":
			egress = true
		}
	}
	if ingress {
		res.Spec.Types = append(res.Spec.Types, "Ingress")
	}
	if egress {
		res.Spec.Types = append(res.Spec.Types, "Egress")
	}
	if len(res.Spec.Types) == 0 {
		res.Spec.Types = []string{"Ingress"}
	}
	v, err := toV1(res)
	if err != nil {
		return nil, err
	}
	v.Name = p.Namespace + "/" + knpNamePrefix + p.Name
	return v, nil
}

func k8sSelector(s *metav1.LabelSelector, pod bool) string {
	var parts []string
	if pod {
		parts = append(parts, labelOrchestrator+" == 'k8s'")
	}
	if s == nil {
		return strings.Join(parts, " && ")
	}
	if !pod && len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0 {
		return "all()"
	}
	keys := make([]string, 0, len(s.MatchLabels))
	for k := range s.MatchLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s == '%s'", k, s.MatchLabels[k]))
	}
	for _, e := range s.MatchExpressions {
		vals := strings.Join(e.Values, "', '")
		switch e.Operator {
		case metav1.LabelSelectorOpIn:
			parts = append(parts, fmt.Sprintf("%s in { '%s' }", e.Key, vals))
		case metav1.LabelSelectorOpNotIn:
			parts = append(parts, fmt.Sprintf("%s not in { '%s' }", e.Key, vals))
		case metav1.LabelSelectorOpExists:
			parts = append(parts, fmt.Sprintf("has(%s)", e.Key))
		case metav1.LabelSelectorOpDoesNotExist:
			parts = append(parts, fmt.Sprintf("! has(%s)", e.Key))
		}
	}
	return strings.Join(parts, " && ")
}

// k8sRule converts one Kubernetes rule: one Calico rule per (protocol, peer), ports of a protocol merged.
func k8sRule(peers []networkingPeer, ports []networkingPort, ingress bool) ([]Rule, error) {
	type proto struct {
		name  string
		ports []Port
		all   bool
	}
	protos := map[string]*proto{}
	anyPort := len(ports) == 0
	for _, p := range ports {
		if p.Port == nil && p.Protocol == nil {
			anyPort = true
			break
		}
		name := "TCP"
		if p.Protocol != nil {
			name = string(*p.Protocol)
		}
		e := protos[name]
		if e == nil {
			e = &proto{name: name}
			protos[name] = e
		}
		if p.Port == nil {
			e.all, e.ports = true, nil
			continue
		}
		if e.all {
			continue
		}
		var port Port
		s := p.Port.String()
		if p.EndPort != nil {
			s = fmt.Sprintf("%s:%d", s, *p.EndPort)
		}
		if err := port.parse(s); err != nil {
			return nil, err
		}
		e.ports = append(e.ports, port)
	}
	var names []string
	if anyPort {
		names = []string{""}
	} else {
		for n := range protos {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	if len(peers) == 0 {
		peers = []networkingPeer{{}}
	}
	var out []Rule
	for _, n := range names {
		var protocol *Protocol
		var ps []Port
		if n != "" {
			var p Protocol
			if err := p.UnmarshalJSON([]byte(strconv.Quote(n))); err != nil {
				return nil, err
			}
			protocol = &p
			ps = simplifyPorts(protos[n].ports)
		}
		for _, peer := range peers {
			er := EntityRule{Ports: ps}
			if peer.IPBlock != nil {
				pfx, err := parseNet(peer.IPBlock.CIDR)
				if err != nil {
					return nil, err
				}
				er.Nets = []string{pfx.String()}
				for _, e := range peer.IPBlock.Except {
					x, err := parseNet(e)
					if err != nil {
						return nil, err
					}
					er.NotNets = append(er.NotNets, x.String())
				}
			} else if peer.PodSelector != nil || peer.NamespaceSelector != nil {
				er.Selector = k8sSelector(peer.PodSelector, true)
				if peer.NamespaceSelector != nil {
					er.NamespaceSelector = k8sSelector(peer.NamespaceSelector, false)
				}
			}
			r := Rule{Action: "Allow", Protocol: protocol}
			if ingress {
				r.Source = EntityRule{Selector: er.Selector, NamespaceSelector: er.NamespaceSelector, Nets: er.Nets, NotNets: er.NotNets}
				r.Destination = EntityRule{Ports: er.Ports}
			} else {
				r.Destination = er
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// simplifyPorts merges numeric ports into minimal ranges (named ports first, as given), like Calico's
// SimplifyPorts.
func simplifyPorts(ports []Port) []Port {
	if len(ports) <= 1 {
		return ports
	}
	var nums []int
	var out []Port
	for _, p := range ports {
		if p.Name != "" {
			out = append(out, p)
			continue
		}
		for i := p.First; i <= p.Last; i++ {
			nums = append(nums, i)
		}
	}
	if len(nums) <= 1 {
		return ports
	}
	sort.Ints(nums)
	for len(nums) > 0 {
		first, last := nums[0], nums[0]
		nums = nums[1:]
		for len(nums) > 0 && nums[0] <= last+1 {
			last = nums[0]
			nums = nums[1:]
		}
		out = append(out, Port{First: first, Last: last})
	}
	return out
}

// ipSetDef is an IP set a rule needs: a selector set, or a named-port set (selector + protocol + port name).
type ipSetDef struct {
	ID        string
	Selector  selector.Selector
	NamedPort string // "" for a selector set
	Protocol  string // tcp, udp, sctp for named-port sets
}

func (d ipSetDef) setType() proto.IPSetUpdate_IPSetType {
	if d.NamedPort != "" {
		return proto.IPSetUpdate_IP_AND_PORT
	}
	return proto.IPSetUpdate_NET
}

func selectorSet(s string) (ipSetDef, error) {
	sel, err := selector.Parse(s)
	if err != nil {
		return ipSetDef{}, fmt.Errorf("selector %q: %w", s, err)
	}
	return ipSetDef{ID: sel.UniqueID(), Selector: sel}, nil
}

func namedPortSet(sel selector.Selector, proto, name string) ipSetDef {
	return ipSetDef{ID: hash.MakeUniqueID("n", sel.UniqueID()+","+proto+","+name), Selector: sel, NamedPort: name, Protocol: proto}
}

// ruleToProto renders a v1 rule as Felix's rule scanner and rule converter do, returning the IP sets it needs.
func ruleToProto(r v1Rule) (*proto.Rule, []ipSetDef, error) {
	srcRaw, notSrcRaw := combine(r.SrcSelector, r.NotSrcSelector)
	dstRaw, notDstRaw := combine(r.DstSelector, r.NotDstSelector)
	var sets []ipSetDef
	parse := func(s string) (*ipSetDef, error) {
		if s == "" {
			return nil, nil
		}
		d, err := selectorSet(s)
		if err != nil {
			return nil, err
		}
		return &d, nil
	}
	src, err := parse(srcRaw)
	if err != nil {
		return nil, nil, err
	}
	dst, err := parse(dstRaw)
	if err != nil {
		return nil, nil, err
	}
	notSrc, err := parse(notSrcRaw)
	if err != nil {
		return nil, nil, err
	}
	notDst, err := parse(notDstRaw)
	if err != nil {
		return nil, nil, err
	}
	npProto := "tcp"
	if r.Protocol != nil {
		switch {
		case r.Protocol.Name == "udp" || r.Protocol.Number == 17:
			npProto = "udp"
		case r.Protocol.Name == "sctp" || r.Protocol.Number == 132:
			npProto = "sctp"
		}
	}
	all, _ := selector.Parse("all()")
	named := func(names []string, pos *ipSetDef) []ipSetDef {
		sel := all
		if pos != nil {
			sel = pos.Selector
		}
		var out []ipSetDef
		for _, n := range names {
			out = append(out, namedPortSet(sel, npProto, n))
		}
		return out
	}
	srcNum, srcNamed := splitPorts(r.SrcPorts)
	dstNum, dstNamed := splitPorts(r.DstPorts)
	notSrcNum, notSrcNamed := splitPorts(r.NotSrcPorts)
	notDstNum, notDstNamed := splitPorts(r.NotDstPorts)
	srcNP, dstNP := named(srcNamed, src), named(dstNamed, dst)
	notSrcNP, notDstNP := named(notSrcNamed, src), named(notDstNamed, dst)
	var srcSel, dstSel, notSrcSel, notDstSel []ipSetDef
	if src != nil && (len(srcNum) > 0 || len(srcNamed) == 0) {
		srcSel = []ipSetDef{*src}
	}
	if dst != nil && (len(dstNum) > 0 || len(dstNamed) == 0) {
		dstSel = []ipSetDef{*dst}
	}
	if notSrc != nil {
		notSrcSel = []ipSetDef{*notSrc}
	}
	if notDst != nil {
		notDstSel = []ipSetDef{*notDst}
	}
	out := &proto.Rule{
		Action:                       r.Action,
		IpVersion:                    ipVersion(r.IPVersion, r.Protocol),
		Protocol:                     protoProtocol(r.Protocol),
		SrcNet:                       r.SrcNets,
		SrcPorts:                     protoPorts(srcNum),
		SrcNamedPortIpSetIds:         ids(srcNP),
		DstNet:                       r.DstNets,
		DstPorts:                     protoPorts(dstNum),
		DstNamedPortIpSetIds:         ids(dstNP),
		SrcIpSetIds:                  ids(srcSel),
		DstIpSetIds:                  ids(dstSel),
		NotProtocol:                  protoProtocol(r.NotProtocol),
		NotSrcNet:                    r.NotSrcNets,
		NotSrcPorts:                  protoPorts(notSrcNum),
		NotSrcNamedPortIpSetIds:      ids(notSrcNP),
		NotDstNet:                    r.NotDstNets,
		NotDstPorts:                  protoPorts(notDstNum),
		NotDstNamedPortIpSetIds:      ids(notDstNP),
		NotSrcIpSetIds:               ids(notSrcSel),
		NotDstIpSetIds:               ids(notDstSel),
		OriginalSrcSelector:          r.OrigSrcSel,
		OriginalSrcNamespaceSelector: r.OrigSrcNsSel,
		OriginalDstSelector:          r.OrigDstSel,
		OriginalDstNamespaceSelector: r.OrigDstNsSel,
		OriginalNotSrcSelector:       r.OrigNotSrc,
		OriginalNotDstSelector:       r.OrigNotDst,
	}
	if sa := r.SrcSA; sa != nil && (len(sa.Names) > 0 || sa.Selector != "") {
		out.SrcServiceAccountMatch = &proto.ServiceAccountMatch{Selector: sa.Selector, Names: sa.Names}
	}
	if sa := r.DstSA; sa != nil && (len(sa.Names) > 0 || sa.Selector != "") {
		out.DstServiceAccountMatch = &proto.ServiceAccountMatch{Selector: sa.Selector, Names: sa.Names}
	}
	if r.HTTP != nil {
		out.HttpMatch = &proto.HTTPMatch{Methods: r.HTTP.Methods}
		for _, p := range r.HTTP.Paths {
			switch {
			case p.Exact != "":
				out.HttpMatch.Paths = append(out.HttpMatch.Paths, &proto.HTTPMatch_PathMatch{PathMatch: &proto.HTTPMatch_PathMatch_Exact{Exact: p.Exact}})
			case p.Prefix != "":
				out.HttpMatch.Paths = append(out.HttpMatch.Paths, &proto.HTTPMatch_PathMatch{PathMatch: &proto.HTTPMatch_PathMatch_Prefix{Prefix: p.Prefix}})
			}
		}
	}
	if r.Metadata != nil {
		out.Metadata = &proto.RuleMetadata{Annotations: r.Metadata}
	}
	if r.ICMPType != nil {
		if r.ICMPCode != nil {
			out.Icmp = &proto.Rule_IcmpTypeCode{IcmpTypeCode: &proto.IcmpTypeAndCode{Type: int32(*r.ICMPType), Code: int32(*r.ICMPCode)}}
		} else {
			out.Icmp = &proto.Rule_IcmpType{IcmpType: int32(*r.ICMPType)}
		}
	}
	if r.NotICMPType != nil {
		if r.NotICMPCode != nil {
			out.NotIcmp = &proto.Rule_NotIcmpTypeCode{NotIcmpTypeCode: &proto.IcmpTypeAndCode{Type: int32(*r.NotICMPType), Code: int32(*r.NotICMPCode)}}
		} else {
			out.NotIcmp = &proto.Rule_NotIcmpType{NotIcmpType: int32(*r.NotICMPType)}
		}
	}
	for _, group := range [][]ipSetDef{srcNP, dstNP, notSrcNP, notDstNP, srcSel, dstSel, notSrcSel, notDstSel} {
		sets = append(sets, group...)
	}
	return out, sets, nil
}

// combine folds a negated selector into the positive one when there is one (Felix's combineMatchesIfPossible).
func combine(pos, neg string) (string, string) {
	if pos == "" || neg == "" {
		return pos, neg
	}
	return fmt.Sprintf("(%s) && (!(%s))", pos, neg), ""
}

func splitPorts(ps []Port) (num []Port, named []string) {
	for _, p := range ps {
		if p.Name != "" {
			named = append(named, p.Name)
		} else {
			num = append(num, p)
		}
	}
	return
}

func ids(ds []ipSetDef) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func protoPorts(ps []Port) []*proto.PortRange {
	var out []*proto.PortRange
	for _, p := range ps {
		out = append(out, &proto.PortRange{First: int32(p.First), Last: int32(p.Last)})
	}
	return out
}

func protoProtocol(p *Protocol) *proto.Protocol {
	if p == nil {
		return nil
	}
	if p.Name != "" {
		return &proto.Protocol{NumberOrName: &proto.Protocol_Name{Name: p.Name}}
	}
	return &proto.Protocol{NumberOrName: &proto.Protocol_Number{Number: int32(p.Number)}}
}

func ipVersion(v *int, p *Protocol) proto.IPVersion {
	if v == nil {
		if p != nil && p.Name == "icmp" {
			return proto.IPVersion_IPV4
		}
		if p != nil && p.Name == "icmpv6" {
			return proto.IPVersion_IPV6
		}
		return proto.IPVersion_ANY
	}
	if *v == 4 {
		return proto.IPVersion_IPV4
	}
	return proto.IPVersion_IPV6
}

// fillRuleIDs computes Felix's rule ids: a SHA-224 chain seeded with the policy/profile identity over each
// rule's protobuf encoding, base64url, 16 characters.
func fillRuleIDs(rules []*proto.Rule, seed string) error {
	s := sha256.New224()
	s.Write([]byte(seed))
	h := s.Sum(nil)
	for _, r := range rules {
		s.Reset()
		s.Write(h)
		r.RuleId = ""
		data, err := r.Marshal()
		if err != nil {
			return fmt.Errorf("rule id: %w", err)
		}
		s.Write(data)
		h = s.Sum(h[:0])
		r.RuleId = base64.RawURLEncoding.EncodeToString(h)[:16]
	}
	return nil
}
