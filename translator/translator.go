package translator

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// Result is the outcome of a translation.
type Result struct {
	// Entries is the complete desired entry set. Apply returns the same *entry.Set every time, changed in
	// place (its journal lets the programmer sync in time proportional to the change); the caller must not
	// modify it.
	Entries *entry.Set
	// Report lists what could not be done as asked.
	Report Report
}

// Translator turns the model into k8s.p4 entries, incrementally: Apply re-translates only what the
// changes touch. It is not safe for concurrent use. It does no I/O.
type Translator struct {
	ports PortResolver
	opts  Options
	st    *store
	ids   idSpaces
	state *model.State
	facts *facts

	progs    map[string]*progUnit
	sets     map[string]*setUnit // Felix sets by id
	cidrSets map[string]*setUnit // derived sets by canonical CIDR list
	setUsers map[string]map[string]struct{}
	lists    map[string]*listUnit
	weps     map[model.WorkloadEndpointKey]*wepUnit
	routes   map[netip.Prefix]*routeCell
	nexthops map[string]*nhUnit
	pools    []netip.Prefix
	node     *nodeUnit
	rtIssues map[netip.Prefix]Unsupported

	nodeWarns []string
	// moved is set when an id assignment changed under existing entries (a hash collision resolved
	// differently): the translation is redone from scratch.
	moved bool
	ready bool
}

type idSpaces struct {
	ep, list, step, set, rule, nh *idSpace
}

// New returns a translator. ports resolves interface names to P4 port ids.
func New(ports PortResolver, opts Options) *Translator {
	t := &Translator{ports: ports, opts: opts}
	t.reset(newStore())
	return t
}

func (t *Translator) reset(st *store) {
	t.st = st
	t.ids = idSpaces{ep: newIDSpace("endpoint"), list: newIDSpace("list"), step: newIDSpace("step"),
		set: newIDSpace("ipset"), rule: newIDSpace("rule"), nh: newIDSpace("nexthop")}
	t.progs = map[string]*progUnit{}
	t.sets = map[string]*setUnit{}
	t.cidrSets = map[string]*setUnit{}
	t.setUsers = map[string]map[string]struct{}{}
	t.lists = map[string]*listUnit{}
	t.weps = map[model.WorkloadEndpointKey]*wepUnit{}
	t.routes = map[netip.Prefix]*routeCell{}
	t.nexthops = map[string]*nhUnit{}
	t.rtIssues = map[netip.Prefix]Unsupported{}
	t.pools = nil
	t.node = nil
	t.facts = nil
	t.moved = false
}

// Translate is a complete translation of state.
func Translate(state *model.State, ports PortResolver, opts Options) Result {
	return New(ports, opts).Apply(state, model.Changes{Resync: true})
}

// Apply brings the entries in line with desired, given what changed since the previous Apply (the first
// call, a Resync, a changed Felix configuration or encapsulation translate everything). desired is only
// read; objects reachable from it may be kept (the model's objects are immutable values).
func (t *Translator) Apply(desired *model.State, changes model.Changes) Result {
	t.state = desired
	if !t.ready || changes.Resync || changes.Config != model.Unchanged || changes.Encapsulation != model.Unchanged {
		t.full()
	} else {
		t.incremental(changes)
		if t.moved {
			t.full()
		}
	}
	t.ready = true
	return Result{Entries: t.st.set, Report: t.report()}
}

// Entries returns the current entry set (the one Apply returns).
func (t *Translator) Entries() *entry.Set { return t.st.set }

// full translates everything from scratch into a fresh state, then updates the returned set with only
// the differences (so the programmer's incremental sync still works).
func (t *Translator) full() {
	set := t.st.set
	fresh := &Translator{ports: t.ports, opts: t.opts, state: t.state}
	fresh.reset(newStore())
	fresh.buildAll()
	for k, e := range fresh.st.set.All() {
		set.Put(e) //nolint:errcheck // e is already canonical and valid: it came from a Set
		_ = k
	}
	var stale []entry.Key
	for k := range set.All() {
		if !fresh.st.set.Has(k) {
			stale = append(stale, k)
		}
	}
	for _, k := range stale {
		set.Delete(k)
	}
	fresh.st.set = set
	state := t.state
	*t = *fresh
	t.state = state
	t.ready = true
}

// buildAll translates every object of the state.
func (t *Translator) buildAll() {
	s := t.state
	t.translateNode()
	for id := range s.IPSets.All() {
		t.translateIPSet(id, nil)
	}
	for k, p := range s.Policies.All() {
		t.translateProgram(policyOwner(k, dirIn), "policy "+k.String(), p.InboundRules)
		t.translateProgram(policyOwner(k, dirOut), "policy "+k.String(), p.OutboundRules)
	}
	for name, p := range s.Profiles.All() {
		t.translateProgram(profileOwner(name, dirIn), "profile "+name, p.InboundRules)
		t.translateProgram(profileOwner(name, dirOut), "profile "+name, p.OutboundRules)
	}
	for k := range s.WorkloadEndpoints.All() {
		t.translateWEP(k)
	}
	for p := range s.Routes.All() {
		t.translateRouteUpdate(p)
	}
	// Programs translated before the sets they name existed are correct already (sets were translated
	// first); the node unit's next hops may name VTEPs: re-render them now that routes exist.
	t.rerenderNexthops()
}

// incremental applies changes.
func (t *Translator) incremental(c model.Changes) {
	s := t.state
	nodeDirty := c.HostEndpoints.Len() > 0 || c.VTEPs.Len() > 0 || c.HostMetadata.Len() > 0 ||
		c.HostMetadataV6.Len() > 0 || c.HostMetadataV4V6.Len() > 0 || c.IPAMPools.Len() > 0 ||
		c.WireguardEndpoints.Len() > 0 || c.WireguardEndpointsV6.Len() > 0
	for _, id := range c.IPSets.Keys() {
		before, had := t.sets[id]
		var oldType model.IPSetType
		if had {
			oldType = before.typ
		}
		var delta *model.IPSetDelta
		if d, ok := c.IPSetDelta(id); ok {
			delta = &d
		}
		t.translateIPSet(id, delta)
		after, has := t.sets[id]
		if had != has || (has && after.typ != oldType) {
			// Existence or type changed: the programs naming the set render differently.
			for _, owner := range sortedKeys(t.setUsers[id]) {
				t.retranslateProgram(owner)
			}
		}
	}
	for _, k := range c.Policies.Keys() {
		if p, ok := s.Policies.Get(k); ok {
			t.translateProgram(policyOwner(k, dirIn), "policy "+k.String(), p.InboundRules)
			t.translateProgram(policyOwner(k, dirOut), "policy "+k.String(), p.OutboundRules)
		} else {
			t.removeProgram(policyOwner(k, dirIn))
			t.removeProgram(policyOwner(k, dirOut))
		}
	}
	for _, name := range c.Profiles.Keys() {
		if p, ok := s.Profiles.Get(name); ok {
			t.translateProgram(profileOwner(name, dirIn), "profile "+name, p.InboundRules)
			t.translateProgram(profileOwner(name, dirOut), "profile "+name, p.OutboundRules)
		} else {
			t.removeProgram(profileOwner(name, dirIn))
			t.removeProgram(profileOwner(name, dirOut))
		}
	}
	for _, k := range c.WorkloadEndpoints.Keys() {
		t.translateWEP(k)
	}
	for _, p := range c.Routes.Keys() {
		if t.translateRouteUpdate(p) {
			nodeDirty = true
		}
	}
	if nodeDirty {
		t.translateNode()
	}
}

// translateRouteUpdate translates one RouteUpdate; it reports whether the node's facts depend on it (this
// node's IP-in-IP tunnel address).
func (t *Translator) translateRouteUpdate(p netip.Prefix) (nodeFact bool) {
	r, ok := t.state.Routes.Get(p)
	delete(t.rtIssues, p)
	if ok {
		if r.Type == model.RouteLocalTunnel && r.Tunnel.IPIP {
			nodeFact = true
		}
		if (r.Type == model.RouteRemoteWorkload || r.Type == model.RouteRemoteTunnel) && !r.SameSubnet &&
			(r.IPPoolType == model.PoolIPIP || r.Tunnel.IPIP) && p.Addr().Is6() {
			t.rtIssues[p] = Unsupported{Feature: FeatureIPIPv6, Owner: "route " + p.String(),
				Detail: "IPv6 destination in an IP-in-IP pool", Rendering: "unreachable"}
		}
		if r.Tunnel.Wireguard {
			t.rtIssues[p] = Unsupported{Feature: FeatureWireguard, Owner: "route " + p.String(),
				Detail: "route expects WireGuard", Rendering: "routed unencrypted"}
		}
	}
	if t.facts != nil && t.facts.ipipAddr == p.Addr() {
		nodeFact = true
	}
	t.translateRoute(p)
	return nodeFact
}

// retranslateProgram re-translates a program from its source in the model.
func (t *Translator) retranslateProgram(owner string) {
	kind, rest, _ := strings.Cut(owner, "/")
	dir := rest[strings.LastIndexByte(rest, '/')+1:]
	name := rest[:strings.LastIndexByte(rest, '/')]
	switch kind {
	case "pol":
		tier, pname, _ := strings.Cut(name, "/")
		k := model.PolicyKey{Tier: tier, Name: pname}
		if p, ok := t.state.Policies.Get(k); ok {
			rules := p.InboundRules
			if dir == dirOut {
				rules = p.OutboundRules
			}
			t.translateProgram(owner, "policy "+k.String(), rules)
		}
	case "prof":
		if p, ok := t.state.Profiles.Get(name); ok {
			rules := p.InboundRules
			if dir == dirOut {
				rules = p.OutboundRules
			}
			t.translateProgram(owner, "profile "+name, rules)
		}
	}
}

// acquire takes an id, noting when existing ids moved (the translation is then redone).
func (t *Translator) acquire(s *idSpace, name string) uint32 {
	id, moved := s.Acquire(name)
	if len(moved) > 0 {
		t.moved = true
	}
	return id
}

func (t *Translator) release(s *idSpace, name string) {
	if moved := s.Release(name); len(moved) > 0 {
		t.moved = true
	}
}

// report assembles the report of the current state.
func (t *Translator) report() Report {
	var r Report
	// Unsupported features, once per object and feature.
	type key struct {
		owner   string
		feature Feature
	}
	agg := map[key]*Unsupported{}
	var order []key
	add := func(u Unsupported) {
		k := key{u.Owner, u.Feature}
		if a, ok := agg[k]; ok {
			if !strings.Contains(a.Detail, u.Detail) {
				a.Detail += "; " + u.Detail
			}
			return
		}
		v := u
		agg[k] = &v
		order = append(order, k)
	}
	for _, owner := range sortedKeys(t.progs) {
		for _, u := range t.progs[owner].issues {
			add(u)
		}
	}
	if t.node != nil {
		for _, u := range t.node.issues {
			add(u)
		}
	}
	for _, p := range slices.SortedFunc(mapKeys(t.rtIssues), model.ComparePrefixes) {
		add(t.rtIssues[p])
	}
	for _, k := range order {
		r.Unsupported = append(r.Unsupported, *agg[k])
	}
	slices.SortFunc(r.Unsupported, compareUnsupported)

	missing := func(steps []string) error {
		var miss []string
		for _, s := range steps {
			owner := strings.TrimSuffix(s, "/0")
			if _, ok := t.progs[owner]; !ok {
				miss = append(miss, describeOwner(owner))
			}
		}
		if len(miss) == 0 {
			return nil
		}
		slices.Sort(miss)
		return fmt.Errorf("references %s, not known: its traffic is dropped (fail closed)", strings.Join(slices.Compact(miss), ", "))
	}
	for k, wu := range t.weps {
		var errs []string
		if wu.err != nil {
			errs = append(errs, wu.err.Error())
		}
		if err := missing(wu.refs); err != nil {
			errs = append(errs, err.Error())
		}
		if err := t.st.conflictErr(wu.owner); err != nil {
			errs = append(errs, err.Error())
		}
		if len(errs) > 0 {
			if r.Workloads == nil {
				r.Workloads = map[model.WorkloadEndpointKey]error{}
			}
			r.Workloads[k] = fmt.Errorf("%s", strings.Join(errs, "; "))
		}
		if wu.down {
			r.Down = append(r.Down, k)
		}
	}
	slices.SortFunc(r.Down, model.CompareWorkloadEndpointKeys)
	if t.node != nil {
		for id, steps := range t.node.refs {
			if err := missing(steps); err != nil {
				if r.Hosts == nil {
					r.Hosts = map[string]error{}
				}
				r.Hosts[id] = err
			}
		}
		r.Warnings = append(r.Warnings, t.node.warns...)
	}
	for _, name := range sortedKeys(t.nexthops) {
		if w := t.nexthops[name].warn; w != "" {
			r.Warnings = append(r.Warnings, w)
		}
	}
	for _, name := range sortedKeys(t.lists) {
		if w := t.listWalkSteps(t.lists[name]); w > int(p4src.PassBudget)-2 {
			r.Warnings = append(r.Warnings, fmt.Sprintf("policy list %d: a new flow can walk %d steps, more than "+
				"the pipeline's pass budget (%d): such flows drop (DROP_PASS_BUDGET)", t.lists[name].id, w, p4src.PassBudget))
		}
	}
	for _, err := range t.st.errs {
		r.Warnings = append(r.Warnings, "internal: "+err.Error())
	}
	return r
}

// listWalkSteps is the worst-case number of steps a walk of a list visits.
func (t *Translator) listWalkSteps(lu *listUnit) int {
	n := 0
	for _, s := range lu.steps {
		if pu := t.progs[strings.TrimSuffix(s, "/0")]; pu != nil && pu.prog != nil {
			n += pu.prog.longestWalk()
		} else {
			n++
		}
	}
	return n
}

func describeOwner(owner string) string {
	kind, rest, _ := strings.Cut(owner, "/")
	rest = rest[:strings.LastIndexByte(rest, '/')]
	switch kind {
	case "pol":
		return "policy " + rest
	case "prof":
		return "profile " + rest
	}
	return owner
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
