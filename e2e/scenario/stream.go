package scenario

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"github.com/gogo/protobuf/jsonpb"
	gogoproto "github.com/gogo/protobuf/proto"
	"github.com/projectcalico/calico/felix/proto"
)

// StepMarkerKey is the JSON key of a step-marker line in a compiled JSONL stream: {"step":"<title>"}.
// Marker lines carry no sequence number; every other line is one felix.ToDataplane in gogo jsonpb form,
// exactly like ../shared/felix-streams/*.jsonl.
const StepMarkerKey = "step"

// Item is one line of a compiled stream: a step marker (Step != "") or a message.
type Item struct {
	Step string
	Msg  *proto.ToDataplane
}

// Stream is a compiled scenario.
type Stream struct {
	Scenario *Scenario
	Items    []Item
	// States[0] is Felix's view after InSync, States[i] after step i.
	States []*State
}

// Compile turns a scenario into the stream Felix would send: ConfigUpdate, the snapshot, InSync, then one
// step marker and one flush of deltas per step.
func Compile(s *Scenario) (*Stream, error) {
	clusters, err := s.states()
	if err != nil {
		return nil, err
	}
	local := s.localNode()
	out := &Stream{Scenario: s}
	var seq uint64
	emit := func(msgs ...*proto.ToDataplane) {
		for _, m := range msgs {
			m.SequenceNumber = seq
			seq++
			out.Items = append(out.Items, Item{Msg: m})
		}
	}
	prev := newState()
	for i, c := range clusters {
		st, err := c.compute(local, s.IfacePrefix, s.DefaultMAC)
		if err != nil {
			if i == 0 {
				return nil, fmt.Errorf("scenario %s: snapshot: %w", s.Name, err)
			}
			return nil, fmt.Errorf("scenario %s: step %q: %w", s.Name, s.Steps[i-1].Title, err)
		}
		if i == 0 {
			emit(s.configUpdate(c.datastore, local))
			emit(Diff(prev, st, true)...)
			emit(&proto.ToDataplane{Payload: &proto.ToDataplane_InSync{InSync: &proto.InSync{}}})
		} else {
			out.Items = append(out.Items, Item{Step: s.Steps[i-1].Title})
			emit(Diff(prev, st, false)...)
		}
		out.States = append(out.States, st)
		prev = st
	}
	return out, nil
}

func (s *Scenario) configUpdate(datastore, local string) *proto.ToDataplane {
	env := map[string]string{
		"DatastoreType":              datastore,
		"FelixHostname":              local,
		"DataplaneDriver":            "/usr/local/bin/calico-p4-driver",
		"UseInternalDataplaneDriver": "false",
	}
	cfg := map[string]string{}
	rawEnv := map[string]string{}
	for k, v := range env {
		cfg[k] = v
		rawEnv[strings.ToLower(k)] = v
	}
	global := map[string]string{}
	for k, v := range s.FelixConfig {
		cfg[k] = v
		global[k] = v
	}
	return &proto.ToDataplane{Payload: &proto.ToDataplane_ConfigUpdate{ConfigUpdate: &proto.ConfigUpdate{
		Config: cfg,
		SourceToRawConfig: map[uint32]*proto.RawConfig{
			1: {Source: "datastore (global)", Config: global},
			2: {Source: "datastore (per-host)"},
			3: {Source: "config file"},
			4: {Source: "environment variable", Config: rawEnv},
		},
	}}}
}

// Diff returns the messages that take a driver from old to new, in the order of Felix's
// EventSequencer.Flush; within a category objects are sorted by key (Felix uses map order). snapshot forces
// the Encapsulation message.
func Diff(old, new *State, snapshot bool) []*proto.ToDataplane {
	var out []*proto.ToDataplane
	add := func(p interface{}) {
		out = append(out, wrap(p))
	}
	// 1. New IP sets with full membership, 2. deltas of existing ones.
	for _, id := range sortedKeys(new.IPSets) {
		if _, ok := old.IPSets[id]; !ok {
			add(cloneMsg(new.IPSets[id]))
		}
	}
	for _, id := range sortedKeys(new.IPSets) {
		o, ok := old.IPSets[id]
		if !ok {
			continue
		}
		added, removed := memberDiff(o.Members, new.IPSets[id].Members)
		if len(added)+len(removed) > 0 {
			add(&proto.IPSetDeltaUpdate{Id: id, AddedMembers: added, RemovedMembers: removed})
		}
	}
	// 3. policies, 4. profiles, 5. endpoints (new or changed).
	for _, k := range sortedKeys(new.Policies) {
		if o, ok := old.Policies[k]; !ok || !gogoproto.Equal(o, new.Policies[k]) {
			add(cloneMsg(new.Policies[k]))
		}
	}
	for _, k := range sortedKeys(new.Profiles) {
		if o, ok := old.Profiles[k]; !ok || !gogoproto.Equal(o, new.Profiles[k]) {
			add(cloneMsg(new.Profiles[k]))
		}
	}
	for _, k := range sortedKeys(new.WEPs) {
		if o, ok := old.WEPs[k]; !ok || !gogoproto.Equal(o, new.WEPs[k]) {
			add(cloneMsg(new.WEPs[k]))
		}
	}
	for _, k := range sortedKeys(new.HEPs) {
		if o, ok := old.HEPs[k]; !ok || !gogoproto.Equal(o, new.HEPs[k]) {
			add(cloneMsg(new.HEPs[k]))
		}
	}
	// 6. removals in reverse dependency order.
	for _, k := range sortedKeys(old.WEPs) {
		if _, ok := new.WEPs[k]; !ok {
			add(&proto.WorkloadEndpointRemove{Id: old.WEPs[k].Id})
		}
	}
	for _, k := range sortedKeys(old.HEPs) {
		if _, ok := new.HEPs[k]; !ok {
			add(&proto.HostEndpointRemove{Id: old.HEPs[k].Id})
		}
	}
	for _, k := range sortedKeys(old.Profiles) {
		if _, ok := new.Profiles[k]; !ok {
			add(&proto.ActiveProfileRemove{Id: old.Profiles[k].Id})
		}
	}
	for _, k := range sortedKeys(old.Policies) {
		if _, ok := new.Policies[k]; !ok {
			add(&proto.ActivePolicyRemove{Id: old.Policies[k].Id})
		}
	}
	for _, k := range sortedKeys(old.IPSets) {
		if _, ok := new.IPSets[k]; !ok {
			add(&proto.IPSetRemove{Id: k})
		}
	}
	// 7. service accounts and namespaces: removes, then updates.
	for _, k := range sortedKeys(old.SAs) {
		if _, ok := new.SAs[k]; !ok {
			add(&proto.ServiceAccountRemove{Id: old.SAs[k].Id})
		}
	}
	for _, k := range sortedKeys(new.SAs) {
		if o, ok := old.SAs[k]; !ok || !gogoproto.Equal(o, new.SAs[k]) {
			add(cloneMsg(new.SAs[k]))
		}
	}
	for _, k := range sortedKeys(old.Namespaces) {
		if _, ok := new.Namespaces[k]; !ok {
			add(&proto.NamespaceRemove{Id: old.Namespaces[k].Id})
		}
	}
	for _, k := range sortedKeys(new.Namespaces) {
		if o, ok := old.Namespaces[k]; !ok || !gogoproto.Equal(o, new.Namespaces[k]) {
			add(cloneMsg(new.Namespaces[k]))
		}
	}
	// 7b. routes and VTEPs: RouteRemove, VTEPRemove, VTEPUpdate, RouteUpdate.
	for _, k := range sortedKeys(old.Routes) {
		if _, ok := new.Routes[k]; !ok {
			add(&proto.RouteRemove{Dst: k})
		}
	}
	for _, k := range sortedKeys(old.VTEPs) {
		if _, ok := new.VTEPs[k]; !ok {
			add(&proto.VXLANTunnelEndpointRemove{Node: k})
		}
	}
	for _, k := range sortedKeys(new.VTEPs) {
		if o, ok := old.VTEPs[k]; !ok || !gogoproto.Equal(o, new.VTEPs[k]) {
			add(cloneMsg(new.VTEPs[k]))
		}
	}
	for _, k := range sortedKeys(new.Routes) {
		if o, ok := old.Routes[k]; !ok || !gogoproto.Equal(o, new.Routes[k]) {
			add(cloneMsg(new.Routes[k]))
		}
	}
	// 8. host metadata (v4, v6, v4v6), each removes then updates.
	for _, k := range sortedKeys(old.HostV4) {
		if _, ok := new.HostV4[k]; !ok {
			add(&proto.HostMetadataRemove{Hostname: k})
		}
	}
	for _, k := range sortedKeys(new.HostV4) {
		if o, ok := old.HostV4[k]; !ok || !gogoproto.Equal(o, new.HostV4[k]) {
			add(cloneMsg(new.HostV4[k]))
		}
	}
	for _, k := range sortedKeys(old.HostV6) {
		if _, ok := new.HostV6[k]; !ok {
			add(&proto.HostMetadataV6Remove{Hostname: k})
		}
	}
	for _, k := range sortedKeys(new.HostV6) {
		if o, ok := old.HostV6[k]; !ok || !gogoproto.Equal(o, new.HostV6[k]) {
			add(cloneMsg(new.HostV6[k]))
		}
	}
	for _, k := range sortedKeys(old.HostV4V6) {
		if _, ok := new.HostV4V6[k]; !ok {
			add(&proto.HostMetadataV4V6Remove{Hostname: k})
		}
	}
	for _, k := range sortedKeys(new.HostV4V6) {
		if o, ok := old.HostV4V6[k]; !ok || !gogoproto.Equal(o, new.HostV4V6[k]) {
			add(cloneMsg(new.HostV4V6[k]))
		}
	}
	// 9. IP pools, then Encapsulation after any pool change.
	poolsChanged := false
	for _, k := range sortedKeys(old.Pools) {
		if _, ok := new.Pools[k]; !ok {
			add(&proto.IPAMPoolRemove{Id: k})
			poolsChanged = true
		}
	}
	for _, k := range sortedKeys(new.Pools) {
		if o, ok := old.Pools[k]; !ok || !gogoproto.Equal(o, new.Pools[k]) {
			add(cloneMsg(new.Pools[k]))
			poolsChanged = true
		}
	}
	// 10. services (Kubernetes datastore): removes, then updates (the whole service again on any change).
	for _, k := range sortedKeys(old.Services) {
		if _, ok := new.Services[k]; !ok {
			ns, name := nsName(k)
			add(&proto.ServiceRemove{Namespace: ns, Name: name})
		}
	}
	for _, k := range sortedKeys(new.Services) {
		if o, ok := old.Services[k]; !ok || !gogoproto.Equal(o, new.Services[k]) {
			add(cloneMsg(new.Services[k]))
		}
	}
	if (snapshot || poolsChanged) && new.Encap != nil {
		add(cloneMsg(new.Encap))
	}
	return out
}

func cloneMsg[T gogoproto.Message](m T) T { return gogoproto.Clone(m).(T) }

func memberDiff(old, new []string) (added, removed []string) {
	o := map[string]bool{}
	for _, m := range old {
		o[m] = true
	}
	n := map[string]bool{}
	for _, m := range new {
		n[m] = true
		if !o[m] {
			added = append(added, m)
		}
	}
	for _, m := range old {
		if !n[m] {
			removed = append(removed, m)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	return
}

// wrap puts a payload into a ToDataplane envelope.
func wrap(p interface{}) *proto.ToDataplane {
	m := &proto.ToDataplane{}
	switch v := p.(type) {
	case *proto.IPSetUpdate:
		m.Payload = &proto.ToDataplane_IpsetUpdate{IpsetUpdate: v}
	case *proto.IPSetDeltaUpdate:
		m.Payload = &proto.ToDataplane_IpsetDeltaUpdate{IpsetDeltaUpdate: v}
	case *proto.IPSetRemove:
		m.Payload = &proto.ToDataplane_IpsetRemove{IpsetRemove: v}
	case *proto.ActivePolicyUpdate:
		m.Payload = &proto.ToDataplane_ActivePolicyUpdate{ActivePolicyUpdate: v}
	case *proto.ActivePolicyRemove:
		m.Payload = &proto.ToDataplane_ActivePolicyRemove{ActivePolicyRemove: v}
	case *proto.ActiveProfileUpdate:
		m.Payload = &proto.ToDataplane_ActiveProfileUpdate{ActiveProfileUpdate: v}
	case *proto.ActiveProfileRemove:
		m.Payload = &proto.ToDataplane_ActiveProfileRemove{ActiveProfileRemove: v}
	case *proto.WorkloadEndpointUpdate:
		m.Payload = &proto.ToDataplane_WorkloadEndpointUpdate{WorkloadEndpointUpdate: v}
	case *proto.WorkloadEndpointRemove:
		m.Payload = &proto.ToDataplane_WorkloadEndpointRemove{WorkloadEndpointRemove: v}
	case *proto.HostEndpointUpdate:
		m.Payload = &proto.ToDataplane_HostEndpointUpdate{HostEndpointUpdate: v}
	case *proto.HostEndpointRemove:
		m.Payload = &proto.ToDataplane_HostEndpointRemove{HostEndpointRemove: v}
	case *proto.ServiceUpdate:
		m.Payload = &proto.ToDataplane_ServiceUpdate{ServiceUpdate: v}
	case *proto.ServiceRemove:
		m.Payload = &proto.ToDataplane_ServiceRemove{ServiceRemove: v}
	case *proto.ServiceAccountUpdate:
		m.Payload = &proto.ToDataplane_ServiceAccountUpdate{ServiceAccountUpdate: v}
	case *proto.ServiceAccountRemove:
		m.Payload = &proto.ToDataplane_ServiceAccountRemove{ServiceAccountRemove: v}
	case *proto.NamespaceUpdate:
		m.Payload = &proto.ToDataplane_NamespaceUpdate{NamespaceUpdate: v}
	case *proto.NamespaceRemove:
		m.Payload = &proto.ToDataplane_NamespaceRemove{NamespaceRemove: v}
	case *proto.HostMetadataUpdate:
		m.Payload = &proto.ToDataplane_HostMetadataUpdate{HostMetadataUpdate: v}
	case *proto.HostMetadataRemove:
		m.Payload = &proto.ToDataplane_HostMetadataRemove{HostMetadataRemove: v}
	case *proto.HostMetadataV6Update:
		m.Payload = &proto.ToDataplane_HostMetadataV6Update{HostMetadataV6Update: v}
	case *proto.HostMetadataV6Remove:
		m.Payload = &proto.ToDataplane_HostMetadataV6Remove{HostMetadataV6Remove: v}
	case *proto.HostMetadataV4V6Update:
		m.Payload = &proto.ToDataplane_HostMetadataV4V6Update{HostMetadataV4V6Update: v}
	case *proto.HostMetadataV4V6Remove:
		m.Payload = &proto.ToDataplane_HostMetadataV4V6Remove{HostMetadataV4V6Remove: v}
	case *proto.IPAMPoolUpdate:
		m.Payload = &proto.ToDataplane_IpamPoolUpdate{IpamPoolUpdate: v}
	case *proto.IPAMPoolRemove:
		m.Payload = &proto.ToDataplane_IpamPoolRemove{IpamPoolRemove: v}
	case *proto.Encapsulation:
		m.Payload = &proto.ToDataplane_Encapsulation{Encapsulation: v}
	case *proto.RouteUpdate:
		m.Payload = &proto.ToDataplane_RouteUpdate{RouteUpdate: v}
	case *proto.RouteRemove:
		m.Payload = &proto.ToDataplane_RouteRemove{RouteRemove: v}
	case *proto.VXLANTunnelEndpointUpdate:
		m.Payload = &proto.ToDataplane_VtepUpdate{VtepUpdate: v}
	case *proto.VXLANTunnelEndpointRemove:
		m.Payload = &proto.ToDataplane_VtepRemove{VtepRemove: v}
	default:
		panic(fmt.Sprintf("scenario: no envelope for %T", p))
	}
	return m
}

// WriteJSONL writes the stream: one gogo-jsonpb ToDataplane per line, step markers as {"step":"<title>"}.
func (s *Stream) WriteJSONL(w io.Writer) error {
	return WriteJSONL(w, s.Items)
}

// WriteJSONL writes items as JSONL.
func WriteJSONL(w io.Writer, items []Item) error {
	bw := bufio.NewWriter(w)
	m := jsonpb.Marshaler{}
	for _, it := range items {
		var line string
		if it.Msg == nil {
			b, err := json.Marshal(map[string]string{StepMarkerKey: it.Step})
			if err != nil {
				return err
			}
			line = string(b)
		} else {
			var err error
			if line, err = m.MarshalToString(it.Msg); err != nil {
				return fmt.Errorf("marshal seq %d: %w", it.Msg.SequenceNumber, err)
			}
		}
		if _, err := bw.WriteString(line + "\n"); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// ReadJSONL reads a JSONL stream (a compiled one or a real capture): messages and step markers.
func ReadJSONL(r io.Reader) ([]Item, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var out []Item
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var probe map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &probe); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if raw, ok := probe[StepMarkerKey]; ok && len(probe) == 1 {
			var title string
			if err := json.Unmarshal(raw, &title); err != nil {
				return nil, fmt.Errorf("line %d: step marker: %w", n, err)
			}
			out = append(out, Item{Step: title})
			continue
		}
		msg := &proto.ToDataplane{}
		if err := jsonpb.UnmarshalString(line, msg); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, Item{Msg: msg})
	}
	return out, sc.Err()
}

// NewState returns an empty Felix view (what a driver knows before any message).
func NewState() *State { return newState() }

// Apply folds one message into the state, as a driver's desired-state model would: updates replace, deltas
// patch set membership, removes delete. It reports whether the state changed. Messages outside what State
// models (InSync, ConfigUpdate, WireGuard, BGP config) are ignored (false).
func (s *State) Apply(m *proto.ToDataplane) (changed bool, err error) {
	setIf := func(old, new gogoproto.Message) bool { return old == nil || !gogoproto.Equal(old, new) }
	switch p := m.Payload.(type) {
	case *proto.ToDataplane_IpsetUpdate:
		u := cloneMsg(p.IpsetUpdate)
		sort.Strings(u.Members)
		if u.Members == nil {
			u.Members = []string{}
		}
		old := s.IPSets[u.Id]
		s.IPSets[u.Id] = u
		return old == nil || !gogoproto.Equal(old, u), nil
	case *proto.ToDataplane_IpsetDeltaUpdate:
		u := p.IpsetDeltaUpdate
		set := s.IPSets[u.Id]
		if set == nil {
			return false, fmt.Errorf("delta for unknown IP set %s", u.Id)
		}
		mem := map[string]bool{}
		for _, x := range set.Members {
			mem[x] = true
		}
		changed := false
		for _, x := range u.RemovedMembers {
			if mem[x] {
				delete(mem, x)
				changed = true
			}
		}
		for _, x := range u.AddedMembers {
			if !mem[x] {
				mem[x] = true
				changed = true
			}
		}
		set.Members = set.Members[:0]
		for x := range mem {
			set.Members = append(set.Members, x)
		}
		sort.Strings(set.Members)
		return changed, nil
	case *proto.ToDataplane_IpsetRemove:
		_, ok := s.IPSets[p.IpsetRemove.Id]
		delete(s.IPSets, p.IpsetRemove.Id)
		return ok, nil
	case *proto.ToDataplane_ActivePolicyUpdate:
		k := policyKey(p.ActivePolicyUpdate.Id.Tier, p.ActivePolicyUpdate.Id.Name)
		c := setIf(msgOrNil(s.Policies[k]), p.ActivePolicyUpdate)
		s.Policies[k] = cloneMsg(p.ActivePolicyUpdate)
		return c, nil
	case *proto.ToDataplane_ActivePolicyRemove:
		k := policyKey(p.ActivePolicyRemove.Id.Tier, p.ActivePolicyRemove.Id.Name)
		_, ok := s.Policies[k]
		delete(s.Policies, k)
		return ok, nil
	case *proto.ToDataplane_ActiveProfileUpdate:
		k := p.ActiveProfileUpdate.Id.Name
		c := setIf(msgOrNil(s.Profiles[k]), p.ActiveProfileUpdate)
		s.Profiles[k] = cloneMsg(p.ActiveProfileUpdate)
		return c, nil
	case *proto.ToDataplane_ActiveProfileRemove:
		_, ok := s.Profiles[p.ActiveProfileRemove.Id.Name]
		delete(s.Profiles, p.ActiveProfileRemove.Id.Name)
		return ok, nil
	case *proto.ToDataplane_WorkloadEndpointUpdate:
		k := wepKey(p.WorkloadEndpointUpdate.Id)
		c := setIf(msgOrNil(s.WEPs[k]), p.WorkloadEndpointUpdate)
		s.WEPs[k] = cloneMsg(p.WorkloadEndpointUpdate)
		return c, nil
	case *proto.ToDataplane_WorkloadEndpointRemove:
		k := wepKey(p.WorkloadEndpointRemove.Id)
		_, ok := s.WEPs[k]
		delete(s.WEPs, k)
		return ok, nil
	case *proto.ToDataplane_HostEndpointUpdate:
		k := p.HostEndpointUpdate.Id.EndpointId
		c := setIf(msgOrNil(s.HEPs[k]), p.HostEndpointUpdate)
		s.HEPs[k] = cloneMsg(p.HostEndpointUpdate)
		return c, nil
	case *proto.ToDataplane_HostEndpointRemove:
		_, ok := s.HEPs[p.HostEndpointRemove.Id.EndpointId]
		delete(s.HEPs, p.HostEndpointRemove.Id.EndpointId)
		return ok, nil
	case *proto.ToDataplane_ServiceUpdate:
		k := serviceKey(p.ServiceUpdate)
		c := setIf(msgOrNil(s.Services[k]), p.ServiceUpdate)
		s.Services[k] = cloneMsg(p.ServiceUpdate)
		return c, nil
	case *proto.ToDataplane_ServiceRemove:
		k := p.ServiceRemove.Namespace + "/" + p.ServiceRemove.Name
		_, ok := s.Services[k]
		delete(s.Services, k)
		return ok, nil
	case *proto.ToDataplane_ServiceAccountUpdate:
		k := p.ServiceAccountUpdate.Id.Namespace + "/" + p.ServiceAccountUpdate.Id.Name
		c := setIf(msgOrNil(s.SAs[k]), p.ServiceAccountUpdate)
		s.SAs[k] = cloneMsg(p.ServiceAccountUpdate)
		return c, nil
	case *proto.ToDataplane_ServiceAccountRemove:
		k := p.ServiceAccountRemove.Id.Namespace + "/" + p.ServiceAccountRemove.Id.Name
		_, ok := s.SAs[k]
		delete(s.SAs, k)
		return ok, nil
	case *proto.ToDataplane_NamespaceUpdate:
		k := p.NamespaceUpdate.Id.Name
		c := setIf(msgOrNil(s.Namespaces[k]), p.NamespaceUpdate)
		s.Namespaces[k] = cloneMsg(p.NamespaceUpdate)
		return c, nil
	case *proto.ToDataplane_NamespaceRemove:
		_, ok := s.Namespaces[p.NamespaceRemove.Id.Name]
		delete(s.Namespaces, p.NamespaceRemove.Id.Name)
		return ok, nil
	case *proto.ToDataplane_HostMetadataUpdate:
		k := p.HostMetadataUpdate.Hostname
		c := setIf(msgOrNil(s.HostV4[k]), p.HostMetadataUpdate)
		s.HostV4[k] = cloneMsg(p.HostMetadataUpdate)
		return c, nil
	case *proto.ToDataplane_HostMetadataRemove:
		_, ok := s.HostV4[p.HostMetadataRemove.Hostname]
		delete(s.HostV4, p.HostMetadataRemove.Hostname)
		return ok, nil
	case *proto.ToDataplane_HostMetadataV6Update:
		k := p.HostMetadataV6Update.Hostname
		c := setIf(msgOrNil(s.HostV6[k]), p.HostMetadataV6Update)
		s.HostV6[k] = cloneMsg(p.HostMetadataV6Update)
		return c, nil
	case *proto.ToDataplane_HostMetadataV6Remove:
		_, ok := s.HostV6[p.HostMetadataV6Remove.Hostname]
		delete(s.HostV6, p.HostMetadataV6Remove.Hostname)
		return ok, nil
	case *proto.ToDataplane_HostMetadataV4V6Update:
		k := p.HostMetadataV4V6Update.Hostname
		c := setIf(msgOrNil(s.HostV4V6[k]), p.HostMetadataV4V6Update)
		s.HostV4V6[k] = cloneMsg(p.HostMetadataV4V6Update)
		return c, nil
	case *proto.ToDataplane_HostMetadataV4V6Remove:
		_, ok := s.HostV4V6[p.HostMetadataV4V6Remove.Hostname]
		delete(s.HostV4V6, p.HostMetadataV4V6Remove.Hostname)
		return ok, nil
	case *proto.ToDataplane_IpamPoolUpdate:
		k := p.IpamPoolUpdate.Id
		c := setIf(msgOrNil(s.Pools[k]), p.IpamPoolUpdate)
		s.Pools[k] = cloneMsg(p.IpamPoolUpdate)
		return c, nil
	case *proto.ToDataplane_IpamPoolRemove:
		_, ok := s.Pools[p.IpamPoolRemove.Id]
		delete(s.Pools, p.IpamPoolRemove.Id)
		return ok, nil
	case *proto.ToDataplane_Encapsulation:
		c := s.Encap == nil || !gogoproto.Equal(s.Encap, p.Encapsulation)
		s.Encap = cloneMsg(p.Encapsulation)
		return c, nil
	case *proto.ToDataplane_RouteUpdate:
		k := p.RouteUpdate.Dst
		c := setIf(msgOrNil(s.Routes[k]), p.RouteUpdate)
		s.Routes[k] = cloneMsg(p.RouteUpdate)
		return c, nil
	case *proto.ToDataplane_RouteRemove:
		_, ok := s.Routes[p.RouteRemove.Dst]
		delete(s.Routes, p.RouteRemove.Dst)
		return ok, nil
	case *proto.ToDataplane_VtepUpdate:
		k := p.VtepUpdate.Node
		c := setIf(msgOrNil(s.VTEPs[k]), p.VtepUpdate)
		s.VTEPs[k] = cloneMsg(p.VtepUpdate)
		return c, nil
	case *proto.ToDataplane_VtepRemove:
		_, ok := s.VTEPs[p.VtepRemove.Node]
		delete(s.VTEPs, p.VtepRemove.Node)
		return ok, nil
	}
	return false, nil
}

// msgOrNil turns a typed nil pointer into an untyped nil interface.
func msgOrNil(m gogoproto.Message) gogoproto.Message {
	if m == nil || reflect.ValueOf(m).IsNil() {
		return nil
	}
	return m
}

// Kind returns the payload's name as in the JSONL ("ipsetUpdate", "workloadEndpointRemove", …).
func Kind(m *proto.ToDataplane) string {
	t := fmt.Sprintf("%T", m.Payload) // *proto.ToDataplane_IpsetUpdate
	t = strings.TrimPrefix(t, "*proto.ToDataplane_")
	if t == "" {
		return "none"
	}
	return strings.ToLower(t[:1]) + t[1:]
}
