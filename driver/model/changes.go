package model

import (
	"fmt"
	"iter"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// ChangeType says how an object changed between two applies. The zero value means "unchanged".
type ChangeType uint8

// Change types.
const (
	Unchanged ChangeType = iota
	Added
	Updated
	Removed
)

func (c ChangeType) String() string {
	switch c {
	case Unchanged:
		return "unchanged"
	case Added:
		return "added"
	case Updated:
		return "updated"
	case Removed:
		return "removed"
	}
	return "unknown"
}

// KeyChanges is the set of changed keys of one kind. The zero value is empty.
type KeyChanges[K comparable] struct {
	m   map[K]ChangeType
	cmp func(a, b K) int
}

// Get returns how k changed (Unchanged if it did not).
func (c KeyChanges[K]) Get(k K) ChangeType { return c.m[k] }

// Len is the number of changed keys.
func (c KeyChanges[K]) Len() int { return len(c.m) }

// Keys returns the changed keys in order.
func (c KeyChanges[K]) Keys() []K {
	keys := slices.Collect(maps.Keys(c.m))
	if c.cmp != nil {
		slices.SortFunc(keys, c.cmp)
	}
	return keys
}

// All iterates over the changed keys in order.
func (c KeyChanges[K]) All() iter.Seq2[K, ChangeType] {
	return func(yield func(K, ChangeType) bool) {
		for _, k := range c.Keys() {
			if !yield(k, c.m[k]) {
				return
			}
		}
	}
}

// Of returns the keys that changed in the given way, in order.
func (c KeyChanges[K]) Of(ct ChangeType) []K {
	var out []K
	for k, t := range c.All() {
		if t == ct {
			out = append(out, k)
		}
	}
	return out
}

// Changes lists which objects changed since the last apply, by kind and key. The translator re-translates
// only what depends on them. After a new Felix session's InSync, Resync is true and the changes are the
// true differences between the previous desired state and the new snapshot.
type Changes struct {
	Resync bool

	// ipsetDeltas: see IPSetDelta.
	ipsetDeltas map[string]IPSetDelta

	IPSets               KeyChanges[string]
	Policies             KeyChanges[PolicyKey]
	Profiles             KeyChanges[string]
	WorkloadEndpoints    KeyChanges[WorkloadEndpointKey]
	HostEndpoints        KeyChanges[string]
	Routes               KeyChanges[netip.Prefix]
	VTEPs                KeyChanges[string]
	WireguardEndpoints   KeyChanges[string]
	WireguardEndpointsV6 KeyChanges[string]
	HostMetadata         KeyChanges[string]
	HostMetadataV6       KeyChanges[string]
	HostMetadataV4V6     KeyChanges[string]
	IPAMPools            KeyChanges[string]
	Services             KeyChanges[ServiceKey]
	Namespaces           KeyChanges[string]
	ServiceAccounts      KeyChanges[ServiceAccountKey]
	// KubeServices: services of the manager's own Kubernetes watch (not Felix's).
	KubeServices KeyChanges[ServiceKey]
	// PodInterfaces: pod interfaces of the manager's CNI server, by host interface name (not Felix's).
	PodInterfaces KeyChanges[string]

	Config        ChangeType
	Encapsulation ChangeType
	BGPConfig     ChangeType
}

// Len is the total number of changed objects.
func (c Changes) Len() int {
	n := c.IPSets.Len() + c.Policies.Len() + c.Profiles.Len() + c.WorkloadEndpoints.Len() +
		c.HostEndpoints.Len() + c.Routes.Len() + c.VTEPs.Len() + c.WireguardEndpoints.Len() +
		c.WireguardEndpointsV6.Len() + c.HostMetadata.Len() + c.HostMetadataV6.Len() +
		c.HostMetadataV4V6.Len() + c.IPAMPools.Len() + c.Services.Len() + c.Namespaces.Len() +
		c.ServiceAccounts.Len() + c.KubeServices.Len() + c.PodInterfaces.Len()
	for _, ct := range []ChangeType{c.Config, c.Encapsulation, c.BGPConfig} {
		if ct != Unchanged {
			n++
		}
	}
	return n
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool { return c.Len() == 0 }

// String summarises the changes per kind ("ipset:+2~1-0 policy:+1~0-0"), for logs.
func (c Changes) String() string {
	var parts []string
	add := func(kind Kind, m map[ChangeType]int) {
		if m[Added]+m[Updated]+m[Removed] == 0 {
			return
		}
		parts = append(parts, fmt.Sprintf("%s:+%d~%d-%d", kind, m[Added], m[Updated], m[Removed]))
	}
	add(KindIPSet, tally(c.IPSets))
	add(KindPolicy, tally(c.Policies))
	add(KindProfile, tally(c.Profiles))
	add(KindWorkloadEndpoint, tally(c.WorkloadEndpoints))
	add(KindHostEndpoint, tally(c.HostEndpoints))
	add(KindRoute, tally(c.Routes))
	add(KindVTEP, tally(c.VTEPs))
	add(KindWireguardEndpoint, tally(c.WireguardEndpoints))
	add(KindWireguardEndpointV6, tally(c.WireguardEndpointsV6))
	add(KindHostMetadata, tally(c.HostMetadata))
	add(KindHostMetadataV6, tally(c.HostMetadataV6))
	add(KindHostMetadataV4V6, tally(c.HostMetadataV4V6))
	add(KindIPAMPool, tally(c.IPAMPools))
	add(KindService, tally(c.Services))
	add(KindNamespace, tally(c.Namespaces))
	add(KindServiceAccount, tally(c.ServiceAccounts))
	add(KindKubeService, tally(c.KubeServices))
	add(KindPodInterface, tally(c.PodInterfaces))
	add(KindConfig, map[ChangeType]int{c.Config: 1})
	add(KindEncapsulation, map[ChangeType]int{c.Encapsulation: 1})
	add(KindBGPConfig, map[ChangeType]int{c.BGPConfig: 1})
	s := strings.Join(parts, " ")
	if s == "" {
		s = "none"
	}
	if c.Resync {
		return "resync " + s
	}
	return s
}

func tally[K comparable](c KeyChanges[K]) map[ChangeType]int {
	out := map[ChangeType]int{}
	for _, ct := range c.m {
		out[ct]++
	}
	return out
}
