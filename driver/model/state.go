package model

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"

	"github.com/projectcalico/calico/felix/proto"
)

// State is the desired state of the node: every object Felix has sent and not removed. Tables are read
// through their methods (Get, Keys, All); the single objects through Config, Encapsulation and BGPConfig.
//
// A State is not safe for concurrent mutation. The session mutates one State and hands Clone()s to the
// apply stage, which may read them concurrently with further mutation of the original.
type State struct {
	IPSets               *Table[string, *IPSet]
	Policies             *Table[PolicyKey, *Policy]
	Profiles             *Table[string, *Profile]
	WorkloadEndpoints    *Table[WorkloadEndpointKey, *WorkloadEndpoint]
	HostEndpoints        *Table[string, *HostEndpoint]
	Routes               *Table[netip.Prefix, *Route]
	VTEPs                *Table[string, *VTEP]
	WireguardEndpoints   *Table[string, *WireguardEndpoint]
	WireguardEndpointsV6 *Table[string, *WireguardEndpointV6]
	HostMetadata         *Table[string, *HostMetadata]
	HostMetadataV6       *Table[string, *HostMetadataV6]
	HostMetadataV4V6     *Table[string, *HostMetadataV4V6]
	IPAMPools            *Table[string, *IPAMPool]
	Services             *Table[ServiceKey, *Service]
	Namespaces           *Table[string, *Namespace]
	ServiceAccounts      *Table[ServiceAccountKey, *ServiceAccount]
	// KubeServices is the second input: Services with their backends from the manager's own Kubernetes
	// watch (SetKubeService, RemoveKubeService). Felix's messages never touch it, and Replace (a new Felix
	// session's snapshot) leaves it as it is.
	KubeServices *Table[ServiceKey, *KubeService]
	// PodInterfaces is the third input: the pod interfaces the manager's CNI server created (host
	// interface name → pod MAC; SetPodInterface, RemovePodInterface). Like KubeServices, Felix's messages
	// never touch it and Replace leaves it as it is.
	PodInterfaces *Table[string, *PodInterface]

	config *Table[unit, *Config]
	encap  *Table[unit, *Encapsulation]
	bgp    *Table[unit, *BGPConfig]

	// gen: IP sets whose gen equals this may be mutated in place; others are shared with a snapshot.
	gen uint64

	// setDeltas: member changes of IP sets since the last TakeChanges (Changes.IPSetDelta);
	// setDeltasInvalid: none is usable (a snapshot replaced the state).
	setDeltas        map[string]*setDelta
	setDeltasInvalid bool
}

func deepEqual[V any](a, b V) bool { return reflect.DeepEqual(a, b) }

// NewState returns an empty state (default config, no encapsulation or BGP config received yet).
func NewState() *State {
	return &State{
		IPSets:               newTable(KindIPSet, strings.Compare, (*IPSet).equal),
		Policies:             newTable(KindPolicy, ComparePolicyKeys, deepEqual[*Policy]),
		Profiles:             newTable(KindProfile, strings.Compare, deepEqual[*Profile]),
		WorkloadEndpoints:    newTable(KindWorkloadEndpoint, CompareWorkloadEndpointKeys, deepEqual[*WorkloadEndpoint]),
		HostEndpoints:        newTable(KindHostEndpoint, strings.Compare, deepEqual[*HostEndpoint]),
		Routes:               newTable(KindRoute, ComparePrefixes, deepEqual[*Route]),
		VTEPs:                newTable(KindVTEP, strings.Compare, deepEqual[*VTEP]),
		WireguardEndpoints:   newTable(KindWireguardEndpoint, strings.Compare, deepEqual[*WireguardEndpoint]),
		WireguardEndpointsV6: newTable(KindWireguardEndpointV6, strings.Compare, deepEqual[*WireguardEndpointV6]),
		HostMetadata:         newTable(KindHostMetadata, strings.Compare, deepEqual[*HostMetadata]),
		HostMetadataV6:       newTable(KindHostMetadataV6, strings.Compare, deepEqual[*HostMetadataV6]),
		HostMetadataV4V6:     newTable(KindHostMetadataV4V6, strings.Compare, deepEqual[*HostMetadataV4V6]),
		IPAMPools:            newTable(KindIPAMPool, strings.Compare, deepEqual[*IPAMPool]),
		Services:             newTable(KindService, CompareServiceKeys, deepEqual[*Service]),
		Namespaces:           newTable(KindNamespace, strings.Compare, deepEqual[*Namespace]),
		ServiceAccounts:      newTable(KindServiceAccount, CompareServiceAccountKeys, deepEqual[*ServiceAccount]),
		KubeServices:         newTable(KindKubeService, CompareServiceKeys, deepEqual[*KubeService]),
		PodInterfaces:        newTable(KindPodInterface, strings.Compare, equalPodInterfaces),
		config:               newTable(KindConfig, compareUnit, deepEqual[*Config]),
		encap:                newTable(KindEncapsulation, compareUnit, deepEqual[*Encapsulation]),
		bgp:                  newTable(KindBGPConfig, compareUnit, deepEqual[*BGPConfig]),
		gen:                  1,
	}
}

// Config returns Felix's configuration: Felix's defaults until the first ConfigUpdate.
func (s *State) Config() *Config {
	if c, ok := s.config.Get(unit{}); ok {
		return c
	}
	return DefaultConfig()
}

// HasConfig reports whether a ConfigUpdate has been received.
func (s *State) HasConfig() bool { return s.config.Has(unit{}) }

// Encapsulation returns the last Encapsulation message, if any.
func (s *State) Encapsulation() (Encapsulation, bool) {
	e, ok := s.encap.Get(unit{})
	if !ok {
		return Encapsulation{}, false
	}
	return *e, true
}

// BGPConfig returns the last GlobalBGPConfigUpdate, if any.
func (s *State) BGPConfig() (*BGPConfig, bool) { return s.bgp.Get(unit{}) }

// Len is the total number of objects (the single objects included).
func (s *State) Len() int {
	n := 0
	for _, t := range s.tables() {
		n += t.lenAny()
	}
	return n
}

// Counts returns the number of objects per kind (for metrics).
func (s *State) Counts() map[Kind]int {
	out := make(map[Kind]int, len(Kinds))
	for _, t := range s.tables() {
		out[t.kindAny()] = t.lenAny()
	}
	return out
}

// Clone returns a snapshot that shares the (immutable) objects with s. Further changes to either do not
// affect the other: IP sets are copied on their first change after the snapshot. The snapshot starts with
// no recorded changes. Cost: one map copy per kind (O(objects)), no object copies.
func (s *State) Clone() *State {
	s.gen++ // every IP set now shared must be copied before s changes it
	return &State{
		IPSets:               s.IPSets.clone(),
		Policies:             s.Policies.clone(),
		Profiles:             s.Profiles.clone(),
		WorkloadEndpoints:    s.WorkloadEndpoints.clone(),
		HostEndpoints:        s.HostEndpoints.clone(),
		Routes:               s.Routes.clone(),
		VTEPs:                s.VTEPs.clone(),
		WireguardEndpoints:   s.WireguardEndpoints.clone(),
		WireguardEndpointsV6: s.WireguardEndpointsV6.clone(),
		HostMetadata:         s.HostMetadata.clone(),
		HostMetadataV6:       s.HostMetadataV6.clone(),
		HostMetadataV4V6:     s.HostMetadataV4V6.clone(),
		IPAMPools:            s.IPAMPools.clone(),
		Services:             s.Services.clone(),
		Namespaces:           s.Namespaces.clone(),
		ServiceAccounts:      s.ServiceAccounts.clone(),
		KubeServices:         s.KubeServices.clone(),
		PodInterfaces:        s.PodInterfaces.clone(),
		config:               s.config.clone(),
		encap:                s.encap.clone(),
		bgp:                  s.bgp.clone(),
		gen:                  s.gen + 1,
	}
}

// Replace makes s hold exactly the objects of next (a complete snapshot from a new Felix session) and
// records as changes only the true differences: objects next lacks are Removed, new ones Added, differing
// ones Updated. next must not be used afterwards. KubeServices and PodInterfaces are not Felix's and are left as they are.
func (s *State) Replace(next *State) {
	s.IPSets.replaceFrom(next.IPSets)
	s.setDeltasInvalid = true
	s.Policies.replaceFrom(next.Policies)
	s.Profiles.replaceFrom(next.Profiles)
	s.WorkloadEndpoints.replaceFrom(next.WorkloadEndpoints)
	s.HostEndpoints.replaceFrom(next.HostEndpoints)
	s.Routes.replaceFrom(next.Routes)
	s.VTEPs.replaceFrom(next.VTEPs)
	s.WireguardEndpoints.replaceFrom(next.WireguardEndpoints)
	s.WireguardEndpointsV6.replaceFrom(next.WireguardEndpointsV6)
	s.HostMetadata.replaceFrom(next.HostMetadata)
	s.HostMetadataV6.replaceFrom(next.HostMetadataV6)
	s.HostMetadataV4V6.replaceFrom(next.HostMetadataV4V6)
	s.IPAMPools.replaceFrom(next.IPAMPools)
	s.Services.replaceFrom(next.Services)
	s.Namespaces.replaceFrom(next.Namespaces)
	s.ServiceAccounts.replaceFrom(next.ServiceAccounts)
	s.config.replaceFrom(next.config)
	s.encap.replaceFrom(next.encap)
	s.bgp.replaceFrom(next.bgp)
	s.gen = max(s.gen, next.gen)
}

// PendingChanges is the number of keys touched since the last TakeChanges (an upper bound of the
// changes TakeChanges will report).
func (s *State) PendingChanges() int {
	n := 0
	for _, t := range s.tables() {
		n += t.pendingAny()
	}
	return n
}

// TakeChanges returns what changed since the previous TakeChanges (or since NewState) and starts a new
// change set.
func (s *State) TakeChanges() Changes {
	ipsets := s.IPSets.takeChanges()
	return Changes{
		ipsetDeltas:          s.takeSetDeltas(ipsets),
		IPSets:               ipsets,
		Policies:             s.Policies.takeChanges(),
		Profiles:             s.Profiles.takeChanges(),
		WorkloadEndpoints:    s.WorkloadEndpoints.takeChanges(),
		HostEndpoints:        s.HostEndpoints.takeChanges(),
		Routes:               s.Routes.takeChanges(),
		VTEPs:                s.VTEPs.takeChanges(),
		WireguardEndpoints:   s.WireguardEndpoints.takeChanges(),
		WireguardEndpointsV6: s.WireguardEndpointsV6.takeChanges(),
		HostMetadata:         s.HostMetadata.takeChanges(),
		HostMetadataV6:       s.HostMetadataV6.takeChanges(),
		HostMetadataV4V6:     s.HostMetadataV4V6.takeChanges(),
		IPAMPools:            s.IPAMPools.takeChanges(),
		Services:             s.Services.takeChanges(),
		Namespaces:           s.Namespaces.takeChanges(),
		ServiceAccounts:      s.ServiceAccounts.takeChanges(),
		KubeServices:         s.KubeServices.takeChanges(),
		PodInterfaces:        s.PodInterfaces.takeChanges(),
		Config:               s.config.takeChanges().Get(unit{}),
		Encapsulation:        s.encap.takeChanges().Get(unit{}),
		BGPConfig:            s.bgp.takeChanges().Get(unit{}),
	}
}

// RestoreChanges puts back changes taken by TakeChanges that were not applied (the apply failed), so the
// next TakeChanges reports them merged with everything that changed since.
func (s *State) RestoreChanges(c Changes) {
	s.IPSets.restoreChanges(c.IPSets)
	for id := range c.IPSets.All() {
		s.noteSetFull(id)
	}
	s.Policies.restoreChanges(c.Policies)
	s.Profiles.restoreChanges(c.Profiles)
	s.WorkloadEndpoints.restoreChanges(c.WorkloadEndpoints)
	s.HostEndpoints.restoreChanges(c.HostEndpoints)
	s.Routes.restoreChanges(c.Routes)
	s.VTEPs.restoreChanges(c.VTEPs)
	s.WireguardEndpoints.restoreChanges(c.WireguardEndpoints)
	s.WireguardEndpointsV6.restoreChanges(c.WireguardEndpointsV6)
	s.HostMetadata.restoreChanges(c.HostMetadata)
	s.HostMetadataV6.restoreChanges(c.HostMetadataV6)
	s.HostMetadataV4V6.restoreChanges(c.HostMetadataV4V6)
	s.IPAMPools.restoreChanges(c.IPAMPools)
	s.Services.restoreChanges(c.Services)
	s.Namespaces.restoreChanges(c.Namespaces)
	s.ServiceAccounts.restoreChanges(c.ServiceAccounts)
	s.KubeServices.restoreChanges(c.KubeServices)
	s.PodInterfaces.restoreChanges(c.PodInterfaces)
	restoreUnit(s.config, c.Config)
	restoreUnit(s.encap, c.Encapsulation)
	restoreUnit(s.bgp, c.BGPConfig)
}

func restoreUnit[V any](t *Table[unit, V], ct ChangeType) {
	if ct != Unchanged {
		t.restoreChanges(KeyChanges[unit]{m: map[unit]ChangeType{{}: ct}})
	}
}

// tableAny is the kind-independent part of a Table.
type tableAny interface {
	kindAny() Kind
	lenAny() int
	pendingAny() int
}

func (t *Table[K, V]) kindAny() Kind   { return t.kind }
func (t *Table[K, V]) lenAny() int     { return len(t.m) }
func (t *Table[K, V]) pendingAny() int { return len(t.touched) }

func (s *State) tables() []tableAny {
	return []tableAny{s.IPSets, s.Policies, s.Profiles, s.WorkloadEndpoints, s.HostEndpoints, s.Routes,
		s.VTEPs, s.WireguardEndpoints, s.WireguardEndpointsV6, s.HostMetadata, s.HostMetadataV6,
		s.HostMetadataV4V6, s.IPAMPools, s.Services, s.Namespaces, s.ServiceAccounts, s.KubeServices, s.PodInterfaces, s.config, s.encap, s.bgp}
}

// ---------------------------------------------------------------------------------------------------
// Apply: decoding of every payload.

// Apply decodes one ToDataplane message into the state. InSync changes nothing (the session acts on it).
// Errors: *InvalidError (possibly several joined) for rejected objects or skipped members — the rest of
// the message and the state are still applied; *UnknownPayloadError for a payload this build does not know.
func (s *State) Apply(msg *proto.ToDataplane) error {
	switch p := msg.Payload.(type) {
	case *proto.ToDataplane_InSync:
		return nil
	case *proto.ToDataplane_IpsetUpdate:
		return s.applyIPSetUpdate(p.IpsetUpdate)
	case *proto.ToDataplane_IpsetDeltaUpdate:
		return s.applyIPSetDelta(p.IpsetDeltaUpdate)
	case *proto.ToDataplane_IpsetRemove:
		s.noteSetFull(p.IpsetRemove.GetId())
		return removeByString(s.IPSets, p.IpsetRemove.GetId())
	case *proto.ToDataplane_ActiveProfileUpdate:
		return s.applyProfileUpdate(p.ActiveProfileUpdate)
	case *proto.ToDataplane_ActiveProfileRemove:
		return removeByString(s.Profiles, p.ActiveProfileRemove.GetId().GetName())
	case *proto.ToDataplane_ActivePolicyUpdate:
		return s.applyPolicyUpdate(p.ActivePolicyUpdate)
	case *proto.ToDataplane_ActivePolicyRemove:
		k, err := policyKey(p.ActivePolicyRemove.GetId())
		if err != nil {
			return err
		}
		s.Policies.remove(k)
		return nil
	case *proto.ToDataplane_HostEndpointUpdate:
		return s.applyHostEndpointUpdate(p.HostEndpointUpdate)
	case *proto.ToDataplane_HostEndpointRemove:
		return removeByString(s.HostEndpoints, p.HostEndpointRemove.GetId().GetEndpointId())
	case *proto.ToDataplane_WorkloadEndpointUpdate:
		return s.applyWorkloadEndpointUpdate(p.WorkloadEndpointUpdate)
	case *proto.ToDataplane_WorkloadEndpointRemove:
		k, err := workloadKey(p.WorkloadEndpointRemove.GetId())
		if err != nil {
			return err
		}
		s.WorkloadEndpoints.remove(k)
		return nil
	case *proto.ToDataplane_ConfigUpdate:
		return s.applyConfigUpdate(p.ConfigUpdate)
	case *proto.ToDataplane_HostMetadataUpdate:
		return s.applyHostMetadataUpdate(p.HostMetadataUpdate)
	case *proto.ToDataplane_HostMetadataRemove:
		return removeByString(s.HostMetadata, p.HostMetadataRemove.GetHostname())
	case *proto.ToDataplane_HostMetadataV6Update:
		return s.applyHostMetadataV6Update(p.HostMetadataV6Update)
	case *proto.ToDataplane_HostMetadataV6Remove:
		return removeByString(s.HostMetadataV6, p.HostMetadataV6Remove.GetHostname())
	case *proto.ToDataplane_HostMetadataV4V6Update:
		return s.applyHostMetadataV4V6Update(p.HostMetadataV4V6Update)
	case *proto.ToDataplane_HostMetadataV4V6Remove:
		return removeByString(s.HostMetadataV4V6, p.HostMetadataV4V6Remove.GetHostname())
	case *proto.ToDataplane_IpamPoolUpdate:
		return s.applyIPAMPoolUpdate(p.IpamPoolUpdate)
	case *proto.ToDataplane_IpamPoolRemove:
		return removeByString(s.IPAMPools, p.IpamPoolRemove.GetId())
	case *proto.ToDataplane_ServiceAccountUpdate:
		return s.applyServiceAccountUpdate(p.ServiceAccountUpdate)
	case *proto.ToDataplane_ServiceAccountRemove:
		k, err := serviceAccountKey(p.ServiceAccountRemove.GetId())
		if err != nil {
			return err
		}
		s.ServiceAccounts.remove(k)
		return nil
	case *proto.ToDataplane_NamespaceUpdate:
		return s.applyNamespaceUpdate(p.NamespaceUpdate)
	case *proto.ToDataplane_NamespaceRemove:
		return removeByString(s.Namespaces, p.NamespaceRemove.GetId().GetName())
	case *proto.ToDataplane_RouteUpdate:
		return s.applyRouteUpdate(p.RouteUpdate)
	case *proto.ToDataplane_RouteRemove:
		dst, err := ParseCIDR(p.RouteRemove.GetDst())
		if err != nil {
			return &InvalidError{Kind: KindRoute, Key: p.RouteRemove.GetDst(), Err: err}
		}
		s.Routes.remove(dst)
		return nil
	case *proto.ToDataplane_VtepUpdate:
		return s.applyVTEPUpdate(p.VtepUpdate)
	case *proto.ToDataplane_VtepRemove:
		return removeByString(s.VTEPs, p.VtepRemove.GetNode())
	case *proto.ToDataplane_WireguardEndpointUpdate:
		return s.applyWireguardUpdate(p.WireguardEndpointUpdate)
	case *proto.ToDataplane_WireguardEndpointRemove:
		return removeByString(s.WireguardEndpoints, p.WireguardEndpointRemove.GetHostname())
	case *proto.ToDataplane_WireguardEndpointV6Update:
		return s.applyWireguardV6Update(p.WireguardEndpointV6Update)
	case *proto.ToDataplane_WireguardEndpointV6Remove:
		return removeByString(s.WireguardEndpointsV6, p.WireguardEndpointV6Remove.GetHostname())
	case *proto.ToDataplane_GlobalBgpConfigUpdate:
		return s.applyBGPConfigUpdate(p.GlobalBgpConfigUpdate)
	case *proto.ToDataplane_Encapsulation:
		e := p.Encapsulation
		s.encap.put(unit{}, &Encapsulation{IPIPEnabled: e.GetIpipEnabled(), VXLANEnabled: e.GetVxlanEnabled(),
			VXLANEnabledV6: e.GetVxlanEnabledV6()})
		return nil
	case *proto.ToDataplane_ServiceUpdate:
		return s.applyServiceUpdate(p.ServiceUpdate)
	case *proto.ToDataplane_ServiceRemove:
		r := p.ServiceRemove
		if r.GetName() == "" || r.GetNamespace() == "" {
			return &InvalidError{Kind: KindService, Key: r.GetNamespace() + "/" + r.GetName(),
				Err: errors.New("remove without name or namespace")}
		}
		s.Services.remove(ServiceKey{Namespace: r.Namespace, Name: r.Name})
		return nil
	case nil:
		return &UnknownPayloadError{Type: "none"}
	}
	return &UnknownPayloadError{Type: fmt.Sprintf("%T", msg.Payload)}
}

func removeByString[V any](t *Table[string, V], key string) error {
	if key == "" {
		return &InvalidError{Kind: t.kind, Err: errors.New("remove without an id")}
	}
	t.remove(key)
	return nil
}

// reject removes any earlier version of the object (fail closed) and describes why.
func reject[K comparable, V any](t *Table[K, V], k K, keyStr string, err error) error {
	t.remove(k)
	return &InvalidError{Kind: t.kind, Key: keyStr, ID: k, Err: err, Rejected: true}
}

func (s *State) applyIPSetUpdate(u *proto.IPSetUpdate) error {
	if u.GetId() == "" {
		return &InvalidError{Kind: KindIPSet, Err: errors.New("update without an id")}
	}
	s.noteSetFull(u.Id)
	typ, err := parseIPSetType(u.Type)
	if err != nil {
		return reject(s.IPSets, u.Id, u.Id, err)
	}
	set := &IPSet{ID: u.Id, Type: typ, members: make(map[member]struct{}, len(u.Members)), gen: s.gen}
	var errs []error
	for _, m := range u.Members {
		pm, err := parseMember(typ, m)
		if err != nil {
			errs = append(errs, &InvalidError{Kind: KindIPSet, Key: u.Id, Err: fmt.Errorf("member skipped: %w", err)})
			continue
		}
		set.members[pm] = struct{}{}
	}
	s.IPSets.put(u.Id, set)
	return errors.Join(errs...)
}

func (s *State) applyIPSetDelta(d *proto.IPSetDeltaUpdate) error {
	set, ok := s.IPSets.Get(d.GetId())
	if !ok {
		return &InvalidError{Kind: KindIPSet, Key: d.GetId(), Err: errors.New("delta update for an unknown IP set")}
	}
	var errs []error
	parse := func(in []string) []member {
		out := make([]member, 0, len(in))
		for _, m := range in {
			pm, err := parseMember(set.Type, m)
			if err != nil {
				errs = append(errs, &InvalidError{Kind: KindIPSet, Key: d.Id, Err: fmt.Errorf("member skipped: %w", err)})
				continue
			}
			out = append(out, pm)
		}
		return out
	}
	added, removed := parse(d.AddedMembers), parse(d.RemovedMembers)
	// Felix applies the additions, then the removals.
	changes := false
	for _, m := range added {
		if _, ok := set.members[m]; !ok {
			changes = true
		}
	}
	for _, m := range removed {
		if _, ok := set.members[m]; ok {
			changes = true
		}
	}
	if changes {
		if set.gen != s.gen {
			set = set.copyAt(s.gen)
		}
		for _, m := range added {
			if _, ok := set.members[m]; !ok {
				set.members[m] = struct{}{}
				s.noteMember(d.Id, m, true)
			}
		}
		for _, m := range removed {
			if _, ok := set.members[m]; ok {
				delete(set.members, m)
				s.noteMember(d.Id, m, false)
			}
		}
		s.IPSets.touch(d.Id, true)
		s.IPSets.m[d.Id] = set
	}
	return errors.Join(errs...)
}

func (s *State) applyProfileUpdate(u *proto.ActiveProfileUpdate) error {
	name := u.GetId().GetName()
	if name == "" {
		return &InvalidError{Kind: KindProfile, Err: errors.New("update without a name")}
	}
	in, err := parseRules("inbound", u.GetProfile().GetInboundRules())
	if err != nil {
		return reject(s.Profiles, name, name, err)
	}
	out, err := parseRules("outbound", u.GetProfile().GetOutboundRules())
	if err != nil {
		return reject(s.Profiles, name, name, err)
	}
	s.Profiles.put(name, &Profile{Name: name, InboundRules: in, OutboundRules: out})
	return nil
}

func policyKey(id *proto.PolicyID) (PolicyKey, error) {
	if id.GetTier() == "" || id.GetName() == "" {
		return PolicyKey{}, &InvalidError{Kind: KindPolicy, Key: id.GetTier() + "/" + id.GetName(),
			Err: errors.New("policy id without tier or name")}
	}
	return PolicyKey{Tier: id.Tier, Name: id.Name}, nil
}

func (s *State) applyPolicyUpdate(u *proto.ActivePolicyUpdate) error {
	k, err := policyKey(u.GetId())
	if err != nil {
		return err
	}
	p := u.GetPolicy()
	if p == nil {
		return reject(s.Policies, k, k.String(), errors.New("update without a policy"))
	}
	in, err := parseRules("inbound", p.InboundRules)
	if err != nil {
		return reject(s.Policies, k, k.String(), err)
	}
	out, err := parseRules("outbound", p.OutboundRules)
	if err != nil {
		return reject(s.Policies, k, k.String(), err)
	}
	s.Policies.put(k, &Policy{Key: k, Namespace: p.Namespace, InboundRules: in, OutboundRules: out,
		Untracked: p.Untracked, PreDNAT: p.PreDnat, OriginalSelector: p.OriginalSelector})
	return nil
}

func parseTiers(field string, in []*proto.TierInfo) ([]TierInfo, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]TierInfo, 0, len(in))
	for i, t := range in {
		if t == nil || t.Name == "" {
			return nil, fmt.Errorf("%s[%d]: tier without a name", field, i)
		}
		for _, p := range append(append([]string(nil), t.IngressPolicies...), t.EgressPolicies...) {
			if p == "" {
				return nil, fmt.Errorf("%s[%d] (%s): empty policy name", field, i, t.Name)
			}
		}
		out = append(out, TierInfo{Name: t.Name, IngressPolicies: cloneStrings(t.IngressPolicies),
			EgressPolicies: cloneStrings(t.EgressPolicies)})
	}
	return out, nil
}

func parseProfileIDs(in []string) ([]string, error) {
	for _, p := range in {
		if p == "" {
			return nil, errors.New("empty profile id")
		}
	}
	return cloneStrings(in), nil
}

func (s *State) applyHostEndpointUpdate(u *proto.HostEndpointUpdate) error {
	id := u.GetId().GetEndpointId()
	if id == "" {
		return &InvalidError{Kind: KindHostEndpoint, Err: errors.New("update without an endpoint id")}
	}
	ep := u.GetEndpoint()
	if ep == nil {
		return reject(s.HostEndpoints, id, id, errors.New("update without an endpoint"))
	}
	h := &HostEndpoint{ID: id, InterfaceName: ep.Name}
	var err error
	fail := func(e error) error { return reject(s.HostEndpoints, id, id, e) }
	if h.ProfileIDs, err = parseProfileIDs(ep.ProfileIds); err != nil {
		return fail(err)
	}
	for _, f := range []struct {
		name string
		in   []*proto.TierInfo
		out  *[]TierInfo
	}{
		{"tiers", ep.Tiers, &h.Tiers},
		{"untracked_tiers", ep.UntrackedTiers, &h.UntrackedTiers},
		{"pre_dnat_tiers", ep.PreDnatTiers, &h.PreDNATTiers},
		{"forward_tiers", ep.ForwardTiers, &h.ForwardTiers},
	} {
		if *f.out, err = parseTiers(f.name, f.in); err != nil {
			return fail(err)
		}
	}
	if h.ExpectedIPv4Addrs, err = parseAddrs(ep.ExpectedIpv4Addrs, 4); err != nil {
		return fail(fmt.Errorf("expected_ipv4_addrs: %w", err))
	}
	if h.ExpectedIPv6Addrs, err = parseAddrs(ep.ExpectedIpv6Addrs, 6); err != nil {
		return fail(fmt.Errorf("expected_ipv6_addrs: %w", err))
	}
	if h.InterfaceName == "" && len(h.ExpectedIPv4Addrs)+len(h.ExpectedIPv6Addrs) == 0 {
		return fail(errors.New("neither an interface name nor expected IPs"))
	}
	s.HostEndpoints.put(id, h)
	return nil
}

func workloadKey(id *proto.WorkloadEndpointID) (WorkloadEndpointKey, error) {
	k := WorkloadEndpointKey{OrchestratorID: id.GetOrchestratorId(), WorkloadID: id.GetWorkloadId(),
		EndpointID: id.GetEndpointId()}
	if k.WorkloadID == "" || k.EndpointID == "" {
		return k, &InvalidError{Kind: KindWorkloadEndpoint, Key: k.String(),
			Err: errors.New("endpoint id without workload or endpoint")}
	}
	return k, nil
}

func parseNAT(in []*proto.NatInfo, family int) ([]NATInfo, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]NATInfo, 0, len(in))
	for _, n := range in {
		if n == nil {
			return nil, errors.New("nil NAT entry")
		}
		addrs, err := parseAddrs([]string{n.ExtIp, n.IntIp}, family)
		if err != nil {
			return nil, err
		}
		out = append(out, NATInfo{ExtIP: addrs[0], IntIP: addrs[1]})
	}
	return out, nil
}

func (s *State) applyWorkloadEndpointUpdate(u *proto.WorkloadEndpointUpdate) error {
	k, err := workloadKey(u.GetId())
	if err != nil {
		return err
	}
	ep := u.GetEndpoint()
	fail := func(e error) error { return reject(s.WorkloadEndpoints, k, k.String(), e) }
	if ep == nil {
		return fail(errors.New("update without an endpoint"))
	}
	if ep.Name == "" {
		return fail(errors.New("no interface name"))
	}
	w := &WorkloadEndpoint{Key: k, State: ep.State, InterfaceName: ep.Name, Annotations: cloneMap(ep.Annotations)}
	if w.MAC, err = parseOptMAC(ep.Mac); err != nil {
		return fail(err)
	}
	if w.ProfileIDs, err = parseProfileIDs(ep.ProfileIds); err != nil {
		return fail(err)
	}
	if w.IPv4Nets, err = parseFamilyCIDRs(ep.Ipv4Nets, 4); err != nil {
		return fail(fmt.Errorf("ipv4_nets: %w", err))
	}
	if w.IPv6Nets, err = parseFamilyCIDRs(ep.Ipv6Nets, 6); err != nil {
		return fail(fmt.Errorf("ipv6_nets: %w", err))
	}
	if w.Tiers, err = parseTiers("tiers", ep.Tiers); err != nil {
		return fail(err)
	}
	if w.IPv4NAT, err = parseNAT(ep.Ipv4Nat, 4); err != nil {
		return fail(fmt.Errorf("ipv4_nat: %w", err))
	}
	if w.IPv6NAT, err = parseNAT(ep.Ipv6Nat, 6); err != nil {
		return fail(fmt.Errorf("ipv6_nat: %w", err))
	}
	if w.AllowSpoofedSourcePrefixes, err = parseCIDRs(ep.AllowSpoofedSourcePrefixes); err != nil {
		return fail(fmt.Errorf("allow_spoofed_source_prefixes: %w", err))
	}
	s.WorkloadEndpoints.put(k, w)
	return nil
}

func (s *State) applyConfigUpdate(u *proto.ConfigUpdate) error {
	var sources map[uint32]RawConfigSource
	if len(u.SourceToRawConfig) > 0 {
		sources = make(map[uint32]RawConfigSource, len(u.SourceToRawConfig))
		for n, rc := range u.SourceToRawConfig {
			sources[n] = RawConfigSource{Source: rc.GetSource(), Config: cloneMap(rc.GetConfig())}
		}
	}
	c, err := ParseConfig(u.Config, sources)
	s.config.put(unit{}, c)
	return err
}

func (s *State) applyHostMetadataUpdate(u *proto.HostMetadataUpdate) error {
	if u.GetHostname() == "" {
		return &InvalidError{Kind: KindHostMetadata, Err: errors.New("update without a hostname")}
	}
	a, err := parseAddrs([]string{u.Ipv4Addr}, 4)
	if err != nil {
		return reject(s.HostMetadata, u.Hostname, u.Hostname, err)
	}
	s.HostMetadata.put(u.Hostname, &HostMetadata{Hostname: u.Hostname, IPv4Addr: a[0]})
	return nil
}

func (s *State) applyHostMetadataV6Update(u *proto.HostMetadataV6Update) error {
	if u.GetHostname() == "" {
		return &InvalidError{Kind: KindHostMetadataV6, Err: errors.New("update without a hostname")}
	}
	a, err := parseAddrs([]string{u.Ipv6Addr}, 6)
	if err != nil {
		return reject(s.HostMetadataV6, u.Hostname, u.Hostname, err)
	}
	s.HostMetadataV6.put(u.Hostname, &HostMetadataV6{Hostname: u.Hostname, IPv6Addr: a[0]})
	return nil
}

func (s *State) applyHostMetadataV4V6Update(u *proto.HostMetadataV4V6Update) error {
	if u.GetHostname() == "" {
		return &InvalidError{Kind: KindHostMetadataV4V6, Err: errors.New("update without a hostname")}
	}
	fail := func(e error) error { return reject(s.HostMetadataV4V6, u.Hostname, u.Hostname, e) }
	h := &HostMetadataV4V6{Hostname: u.Hostname, ASNumber: u.Asnumber, Labels: cloneMap(u.Labels)}
	var err error
	if u.Ipv4Addr != "" {
		if h.IPv4Addr, err = parseHostCIDR(u.Ipv4Addr); err != nil {
			return fail(err)
		}
		if !h.IPv4Addr.Addr().Is4() {
			return fail(fmt.Errorf("ipv4_addr %s is not IPv4", h.IPv4Addr))
		}
	}
	if u.Ipv6Addr != "" {
		if h.IPv6Addr, err = parseHostCIDR(u.Ipv6Addr); err != nil {
			return fail(err)
		}
		if !h.IPv6Addr.Addr().Is6() {
			return fail(fmt.Errorf("ipv6_addr %s is not IPv6", h.IPv6Addr))
		}
	}
	if err := validateASNumber(u.Asnumber); err != nil {
		return fail(err)
	}
	s.HostMetadataV4V6.put(u.Hostname, h)
	return nil
}

// validateASNumber accepts "", a 32-bit number, or dotted "high.low" 16-bit halves.
func validateASNumber(s string) error {
	if s == "" {
		return nil
	}
	ok16 := func(x string, bits int) bool {
		if x == "" || len(x) > 10 {
			return false
		}
		var n uint64
		for _, c := range x {
			if c < '0' || c > '9' {
				return false
			}
			n = n*10 + uint64(c-'0')
		}
		return n < 1<<bits
	}
	if hi, lo, dotted := strings.Cut(s, "."); dotted {
		if ok16(hi, 16) && ok16(lo, 16) {
			return nil
		}
	} else if ok16(s, 32) {
		return nil
	}
	return fmt.Errorf("invalid AS number %q", s)
}

func parseEncapMode(s string) (EncapMode, error) {
	switch strings.ToLower(s) {
	case "", "never", "off", "false":
		return EncapNever, nil
	case "always":
		return EncapAlways, nil
	case "cross-subnet", "crosssubnet":
		return EncapCrossSubnet, nil
	}
	return "", fmt.Errorf("unknown encapsulation mode %q", s)
}

func (s *State) applyIPAMPoolUpdate(u *proto.IPAMPoolUpdate) error {
	if u.GetId() == "" {
		return &InvalidError{Kind: KindIPAMPool, Err: errors.New("update without an id")}
	}
	fail := func(e error) error { return reject(s.IPAMPools, u.Id, u.Id, e) }
	if u.Pool == nil {
		return fail(errors.New("update without a pool"))
	}
	p := &IPAMPool{ID: u.Id, Masquerade: u.Pool.Masquerade}
	var err error
	if p.CIDR, err = ParseCIDR(u.Pool.Cidr); err != nil {
		return fail(err)
	}
	if p.IPIPMode, err = parseEncapMode(u.Pool.IpipMode); err != nil {
		return fail(fmt.Errorf("ipip_mode: %w", err))
	}
	if p.VXLANMode, err = parseEncapMode(u.Pool.VxlanMode); err != nil {
		return fail(fmt.Errorf("vxlan_mode: %w", err))
	}
	s.IPAMPools.put(u.Id, p)
	return nil
}

func serviceAccountKey(id *proto.ServiceAccountID) (ServiceAccountKey, error) {
	k := ServiceAccountKey{Namespace: id.GetNamespace(), Name: id.GetName()}
	if k.Namespace == "" || k.Name == "" {
		return k, &InvalidError{Kind: KindServiceAccount, Key: k.String(), Err: errors.New("id without namespace or name")}
	}
	return k, nil
}

func (s *State) applyServiceAccountUpdate(u *proto.ServiceAccountUpdate) error {
	k, err := serviceAccountKey(u.GetId())
	if err != nil {
		return err
	}
	s.ServiceAccounts.put(k, &ServiceAccount{Key: k, Labels: cloneMap(u.Labels)})
	return nil
}

func (s *State) applyNamespaceUpdate(u *proto.NamespaceUpdate) error {
	name := u.GetId().GetName()
	if name == "" {
		return &InvalidError{Kind: KindNamespace, Err: errors.New("update without a name")}
	}
	s.Namespaces.put(name, &Namespace{Name: name, Labels: cloneMap(u.Labels)})
	return nil
}

func (s *State) applyRouteUpdate(u *proto.RouteUpdate) error {
	dst, err := ParseCIDR(u.GetDst())
	if err != nil {
		return &InvalidError{Kind: KindRoute, Key: u.GetDst(), Err: err}
	}
	fail := func(e error) error { return reject(s.Routes, dst, dst.String(), e) }
	if u.Type < proto.RouteType_CIDR_INFO || u.Type > proto.RouteType_LOCAL_TUNNEL {
		return fail(fmt.Errorf("unknown route type %d", u.Type))
	}
	if u.IpPoolType < proto.IPPoolType_NONE || u.IpPoolType > proto.IPPoolType_IPIP {
		return fail(fmt.Errorf("unknown IP pool type %d", u.IpPoolType))
	}
	r := &Route{Dst: dst, Type: RouteType(u.Type), IPPoolType: IPPoolType(u.IpPoolType), DstNodeName: u.DstNodeName,
		SameSubnet: u.SameSubnet, NATOutgoing: u.NatOutgoing, LocalWorkload: u.LocalWorkload}
	if r.DstNodeIP, err = parseOptAddr(u.DstNodeIp); err != nil {
		return fail(fmt.Errorf("dst_node_ip: %w", err))
	}
	if t := u.TunnelType; t != nil {
		r.Tunnel = TunnelType{IPIP: t.Ipip, VXLAN: t.Vxlan, Wireguard: t.Wireguard}
	}
	s.Routes.put(dst, r)
	return nil
}

func (s *State) applyVTEPUpdate(u *proto.VXLANTunnelEndpointUpdate) error {
	if u.GetNode() == "" {
		return &InvalidError{Kind: KindVTEP, Err: errors.New("update without a node")}
	}
	fail := func(e error) error { return reject(s.VTEPs, u.Node, u.Node, e) }
	v := &VTEP{Node: u.Node}
	var err error
	if v.MAC, err = parseOptMAC(u.Mac); err != nil {
		return fail(err)
	}
	if v.MACV6, err = parseOptMAC(u.MacV6); err != nil {
		return fail(err)
	}
	for _, f := range []struct {
		name   string
		in     string
		family int
		out    *netip.Addr
	}{
		{"ipv4_addr", u.Ipv4Addr, 4, &v.IPv4Addr},
		{"parent_device_ip", u.ParentDeviceIp, 4, &v.ParentDeviceIP},
		{"ipv6_addr", u.Ipv6Addr, 6, &v.IPv6Addr},
		{"parent_device_ipv6", u.ParentDeviceIpv6, 6, &v.ParentDeviceIPv6},
	} {
		a, err := parseOptAddr(f.in)
		if err == nil && a.IsValid() && (f.family == 4) != a.Is4() {
			err = fmt.Errorf("%s is not IPv%d", a, f.family)
		}
		if err != nil {
			return fail(fmt.Errorf("%s: %w", f.name, err))
		}
		*f.out = a
	}
	if !v.IPv4Addr.IsValid() && !v.IPv6Addr.IsValid() {
		return fail(errors.New("no tunnel address"))
	}
	s.VTEPs.put(u.Node, v)
	return nil
}

func (s *State) applyWireguardUpdate(u *proto.WireguardEndpointUpdate) error {
	if u.GetHostname() == "" {
		return &InvalidError{Kind: KindWireguardEndpoint, Err: errors.New("update without a hostname")}
	}
	a, err := parseOptAddr(u.InterfaceIpv4Addr)
	if err == nil && a.IsValid() && !a.Is4() {
		err = fmt.Errorf("%s is not IPv4", a)
	}
	if err != nil {
		return reject(s.WireguardEndpoints, u.Hostname, u.Hostname, fmt.Errorf("interface_ipv4_addr: %w", err))
	}
	s.WireguardEndpoints.put(u.Hostname, &WireguardEndpoint{Hostname: u.Hostname, PublicKey: u.PublicKey,
		InterfaceIPv4Addr: a})
	return nil
}

func (s *State) applyWireguardV6Update(u *proto.WireguardEndpointV6Update) error {
	if u.GetHostname() == "" {
		return &InvalidError{Kind: KindWireguardEndpointV6, Err: errors.New("update without a hostname")}
	}
	a, err := parseOptAddr(u.InterfaceIpv6Addr)
	if err == nil && a.IsValid() && !a.Is6() {
		err = fmt.Errorf("%s is not IPv6", a)
	}
	if err != nil {
		return reject(s.WireguardEndpointsV6, u.Hostname, u.Hostname, fmt.Errorf("interface_ipv6_addr: %w", err))
	}
	s.WireguardEndpointsV6.put(u.Hostname, &WireguardEndpointV6{Hostname: u.Hostname, PublicKeyV6: u.PublicKeyV6,
		InterfaceIPv6Addr: a})
	return nil
}

func (s *State) applyBGPConfigUpdate(u *proto.GlobalBGPConfigUpdate) error {
	b := &BGPConfig{}
	var err error
	fail := func(e error) error { return reject(s.bgp, unit{}, "default", e) }
	if b.ServiceClusterCIDRs, err = parseCIDRs(u.ServiceClusterCidrs); err != nil {
		return fail(fmt.Errorf("service_cluster_cidrs: %w", err))
	}
	if b.ServiceExternalCIDRs, err = parseCIDRs(u.ServiceExternalCidrs); err != nil {
		return fail(fmt.Errorf("service_external_cidrs: %w", err))
	}
	if b.ServiceLoadBalancerCIDRs, err = parseCIDRs(u.ServiceLoadbalancerCidrs); err != nil {
		return fail(fmt.Errorf("service_loadbalancer_cidrs: %w", err))
	}
	s.bgp.put(unit{}, b)
	return nil
}

func (s *State) applyServiceUpdate(u *proto.ServiceUpdate) error {
	k := ServiceKey{Namespace: u.GetNamespace(), Name: u.GetName()}
	if k.Namespace == "" || k.Name == "" {
		return &InvalidError{Kind: KindService, Key: k.String(), Err: errors.New("update without name or namespace")}
	}
	fail := func(e error) error { return reject(s.Services, k, k.String(), e) }
	svc := &Service{Key: k, Type: u.Type}
	for _, ip := range u.ClusterIps {
		if strings.EqualFold(ip, "None") {
			svc.Headless = true
			continue
		}
		a, err := ParseAddr(ip)
		if err != nil {
			return fail(fmt.Errorf("cluster_ips: %w", err))
		}
		svc.ClusterIPs = append(svc.ClusterIPs, a)
	}
	var err error
	if svc.LoadBalancerIP, err = parseOptAddr(u.LoadbalancerIp); err != nil {
		return fail(fmt.Errorf("loadbalancer_ip: %w", err))
	}
	if svc.ExternalIPs, err = parseAddrs(u.ExternalIps, 0); err != nil {
		return fail(fmt.Errorf("external_ips: %w", err))
	}
	for i, p := range u.Ports {
		if p == nil {
			return fail(fmt.Errorf("ports[%d]: nil", i))
		}
		num, ok := ProtocolNumber(p.Protocol)
		if !ok || (num != ProtoTCP && num != ProtoUDP && num != ProtoSCTP) {
			return fail(fmt.Errorf("ports[%d]: unknown protocol %q", i, p.Protocol))
		}
		if p.Port < 0 || p.Port > 65535 || p.NodePort < 0 || p.NodePort > 65535 {
			return fail(fmt.Errorf("ports[%d]: port %d / node port %d out of range 0-65535", i, p.Port, p.NodePort))
		}
		svc.Ports = append(svc.Ports, ServicePort{Protocol: num, ProtocolName: p.Protocol, Port: uint16(p.Port),
			NodePort: uint16(p.NodePort)})
	}
	s.Services.put(k, svc)
	return nil
}
