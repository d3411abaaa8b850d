package translator

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

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
	svc      *svcState // services (services.go)

	// Report bookkeeping, kept up to date incrementally (the report is assembled from small maps).
	issueOwners map[string]struct{}            // programs with unsupported features
	progLists   map[string]map[string]struct{} // program → lists running it
	progUsers   map[string]map[string]struct{} // program → endpoints ("wep/…", "hep/<id>") whose lists run it
	userRefs    map[string][]string            // endpoint → programs its lists run
	missing     map[string]error               // endpoint → programs it references that do not exist
	listOver    map[string]int                 // lists whose worst walk exceeds the pass budget

	nodeWarns  []string
	encapDrop  bool   // workloads' from-wl lists start with the encapDrop program
	wepStarKey string // key of the "*" host endpoint lists the workloads were translated with
	// lastReport is reused while only IP-set members changed (the report cannot change then).
	lastReport  *Report
	reportDirty bool
	// moved is set when an id assignment changed under existing entries (a hash collision resolved
	// differently): the translation is redone from scratch.
	moved bool
	ready bool
	// bulk is the slab the entries of a full translation are built in (nil outside buildAll).
	bulk *slab
	// renderProgram's scratch space.
	progEnts []entry.Entry
	// addMembers' scratch space.
	memberEnts []entry.Entry
	memberKeys []model.IPSetMember
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
	t.svc = newSvcState()
	t.issueOwners = map[string]struct{}{}
	t.progLists = map[string]map[string]struct{}{}
	t.progUsers = map[string]map[string]struct{}{}
	t.userRefs = map[string][]string{}
	t.missing = map[string]error{}
	t.listOver = map[string]int{}
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
		t.reportDirty = true
	} else {
		t.reportDirty = t.reportDirty || !onlyIPSetMembers(changes)
		t.incremental(changes)
		if t.moved {
			t.full()
			t.reportDirty = true
		}
	}
	t.ready = true
	if t.reportDirty || t.lastReport == nil {
		r := t.report()
		t.lastReport, t.reportDirty = &r, false
	}
	return Result{Entries: t.st.set, Report: *t.lastReport}
}

// Entries returns the current entry set (the one Apply returns).
func (t *Translator) Entries() *entry.Set { return t.st.set }

// full translates everything from scratch into a fresh state, then updates the returned set with only
// the differences (so the programmer's incremental sync still works).
func (t *Translator) full() {
	set := t.st.set
	adopt := !t.ready && set.Len() == 0 // nobody holds the set yet: take the fresh one as it is
	// Drop the old translation's bookkeeping before building the new one (only the set is kept): the
	// garbage collector then never scans two translations.
	t.reset(&store{set: set})
	size := set.Len()
	if size == 0 {
		size = estimateEntries(t.state)
	}
	fresh := &Translator{ports: t.ports, opts: t.opts, state: t.state}
	fresh.reset(newStoreSized(size))
	fresh.presizeIDs()
	fresh.st.set.SuspendJournal()
	fresh.buildAll()
	// A hash collision resolved while building moved ids entries already used: build again, giving every
	// name the value the canonical assignment of the complete set of names gives it.
	for attempt := 0; fresh.moved && attempt < 3; attempt++ {
		sp := []*idSpace{fresh.ids.ep, fresh.ids.list, fresh.ids.step, fresh.ids.set, fresh.ids.rule, fresh.ids.nh}
		plans := make([]map[string]uint32, len(sp))
		for i, s := range sp {
			plans[i] = s.canonicalPlan()
		}
		fresh = &Translator{ports: t.ports, opts: t.opts, state: t.state}
		fresh.reset(newStoreSized(size))
		fresh.presizeIDs()
		fresh.st.set.SuspendJournal()
		for i, s := range []*idSpace{fresh.ids.ep, fresh.ids.list, fresh.ids.step, fresh.ids.set, fresh.ids.rule, fresh.ids.nh} {
			s.plan = plans[i]
		}
		fresh.buildAll()
		for _, s := range []*idSpace{fresh.ids.ep, fresh.ids.list, fresh.ids.step, fresh.ids.set, fresh.ids.rule, fresh.ids.nh} {
			s.plan = nil
		}
	}
	// The fresh set was built without a journal (nobody consumes it but the adoption or the copy below).
	fresh.st.set.ResumeJournal()
	if adopt {
		set = fresh.st.set
	} else {
		for k, e := range fresh.st.set.All() {
			set.PutKeyed(k, e) //nolint:errcheck // e is already canonical and valid: it came from a Set
			owner, _ := fresh.st.set.Owner(k)
			set.SetOwner(k, owner)
		}
		var stale []entry.Key
		for k := range set.Keys() {
			if !fresh.st.set.Has(k) {
				stale = append(stale, k)
			}
		}
		for _, k := range stale {
			set.Delete(k)
		}
	}
	fresh.st.set = set
	state := t.state
	*t = *fresh
	t.state = state
	t.ready = true
}

// estimateEntries is a rough count of the entries a translation of state yields (to presize the maps of a
// first translation): one a member, about four a rule (steps, rule entries, counters), a dozen an endpoint,
// one a route.
func estimateEntries(s *model.State) int {
	n := 64 + 12*s.WorkloadEndpoints.Len() + s.Routes.Len()
	for _, set := range s.IPSets.All() {
		n += set.Len()
	}
	for _, p := range s.Policies.All() {
		n += 4 * (len(p.InboundRules) + len(p.OutboundRules))
	}
	for _, p := range s.Profiles.All() {
		n += 4 * (len(p.InboundRules) + len(p.OutboundRules))
	}
	return n + n/8 // headroom: growing a presized map past its size costs more than the spare room
}

// presizeIDs presizes the id spaces of a fresh translation for the state's rules (a rule has an id and,
// with its guard and chained lookups, about one step).
func (t *Translator) presizeIDs() {
	rules := 0
	for _, p := range t.state.Policies.All() {
		rules += len(p.InboundRules) + len(p.OutboundRules)
	}
	for _, p := range t.state.Profiles.All() {
		rules += len(p.InboundRules) + len(p.OutboundRules)
	}
	t.ids.rule.grow(rules)
	t.ids.step.grow(rules + rules/4)
	t.ids.set.grow(t.state.IPSets.Len())
	t.ids.ep.grow(t.state.WorkloadEndpoints.Len())
}

// buildAll translates every object of the state.
func (t *Translator) buildAll() {
	s := t.state
	// The entries of a full translation are built in slabs (bulk); the incremental changes that follow
	// allocate their own, so a slab never outlives the translation's entries by much.
	t.bulk = &slab{}
	defer func() { t.bulk = nil }()
	t.translateNode()
	for id := range s.IPSets.All() {
		t.translateIPSet(id, nil)
	}
	jobs := make([]progJob, 0, 2*(s.Policies.Len()+s.Profiles.Len()))
	for k, p := range s.Policies.All() {
		what := "policy " + k.String()
		jobs = append(jobs, progJob{owner: policyOwner(k, dirIn), what: what, rules: p.InboundRules},
			progJob{owner: policyOwner(k, dirOut), what: what, rules: p.OutboundRules})
	}
	for name, p := range s.Profiles.All() {
		what := "profile " + name
		jobs = append(jobs, progJob{owner: profileOwner(name, dirIn), what: what, rules: p.InboundRules},
			progJob{owner: profileOwner(name, dirOut), what: what, rules: p.OutboundRules})
	}
	t.compileAll(jobs)
	for i := range jobs {
		j := &jobs[i]
		t.translateCompiled(j.owner, j.what, j.rules, j.prog)
		j.prog = nil
	}
	t.wepStarKey = t.wepStar().key()
	for k := range s.WorkloadEndpoints.All() {
		t.translateWEP(k)
	}
	for p := range s.Routes.All() {
		t.translateRouteUpdate(p)
	}
	// Programs translated before the sets they name existed are correct already (sets were translated
	// first); the node unit's next hops may name VTEPs: re-render them now that routes exist.
	t.rerenderNexthops()
	t.translateServices()
}

// progJob is one rule list of a full translation, compiled ahead of its translation.
type progJob struct {
	owner, what string
	rules       []model.Rule
	prog        *program
}

// compileAll compiles the jobs' rule lists, on every CPU. Compiling is pure (the model is only read, the
// compiler shares nothing it writes) and each job's program is its own, so the programs are the same
// whatever the schedule; ids are assigned, and entries written, one job after the other afterwards. (On
// the issue-7 model, 2 CPUs shared with other work: about 7% off BenchmarkFullTranslation.)
func (t *Translator) compileAll(jobs []progJob) {
	workers := min(runtime.GOMAXPROCS(0), len(jobs)/64)
	if workers <= 1 {
		for i := range jobs {
			jobs[i].prog = compileRuleList(jobs[i].rules, t.setInfo)
		}
		return
	}
	const batch = 32
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo := int(next.Add(batch)) - batch
				if lo >= len(jobs) {
					return
				}
				for i := lo; i < min(lo+batch, len(jobs)); i++ {
					jobs[i].prog = compileRuleList(jobs[i].rules, t.setInfo)
				}
			}
		}()
	}
	wg.Wait()
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
			t.reportDirty = true
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
	if c.PodInterfaces.Len() > 0 {
		// A pod's MAC from the CNI server appeared, changed or left: its endpoints' next hops change.
		for k, ep := range s.WorkloadEndpoints.All() {
			if c.PodInterfaces.Get(ep.InterfaceName) != model.Unchanged && c.WorkloadEndpoints.Get(k) == model.Unchanged {
				t.translateWEP(k)
			}
		}
	}
	for _, p := range c.Routes.Keys() {
		if t.translateRouteUpdate(p) {
			nodeDirty = true
		}
	}
	if nodeDirty {
		t.translateNode()
	}
	if c.HostEndpoints.Len() > 0 {
		// The "*" host endpoint's pre-DNAT policy is part of every workload's entries.
		if key := t.wepStar().key(); key != t.wepStarKey {
			t.wepStarKey = key
			for k := range s.WorkloadEndpoints.All() {
				if c.WorkloadEndpoints.Get(k) == model.Unchanged {
					t.translateWEP(k)
				}
			}
		}
	}
	t.servicesIncremental(c, nodeDirty || c.Routes.Len() > 0)
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
	for _, owner := range sortedKeys(t.issueOwners) {
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

	for k, wu := range t.weps {
		var errs []string
		if wu.err != nil {
			errs = append(errs, wu.err.Error())
		}
		if err := t.missing[wu.owner]; err != nil {
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
	for user, err := range t.missing {
		if id, ok := strings.CutPrefix(user, "hep/"); ok {
			if r.Hosts == nil {
				r.Hosts = map[string]error{}
			}
			r.Hosts[id] = err
		}
	}
	if t.node != nil {
		r.Warnings = append(r.Warnings, t.node.warns...)
	}
	for _, name := range sortedKeys(t.nexthops) {
		if w := t.nexthops[name].warn; w != "" {
			r.Warnings = append(r.Warnings, w)
		}
	}
	for _, name := range sortedKeys(t.listOver) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("policy list %d: a new flow can walk %d steps, more than "+
			"the pipeline's pass budget (%d) allows: such flows drop (DROP_PASS_BUDGET)", t.lists[name].id, t.listOver[name],
			p4src.PassBudget))
	}
	t.serviceReport(&r)
	for _, err := range t.st.errs {
		r.Warnings = append(r.Warnings, "internal: "+err.Error())
	}
	return r
}

// Walk budget: a list walk longer than this leaves too few passes for the other checks of a flow.
const walkWarn = int(p4src.PassBudget) - 2

// listWalk is the worst-case number of steps a walk of a list visits.
func (t *Translator) listWalk(lu *listUnit) int {
	n := 0
	for _, s := range lu.steps {
		if pu := t.progs[programOf(s)]; pu != nil {
			n += pu.walk
		} else {
			n++
		}
	}
	return n
}

func (t *Translator) updateListWalk(name string) {
	lu := t.lists[name]
	if lu == nil {
		delete(t.listOver, name)
		return
	}
	if w := t.listWalk(lu); w > walkWarn {
		t.listOver[name] = w
	} else {
		delete(t.listOver, name)
	}
}

// programOf is the program owning a first-step name.
func programOf(step string) string { return strings.TrimSuffix(step, "/0") }

// setUserRefs records the programs an endpoint's lists run and recomputes its missing references.
func (t *Translator) setUserRefs(user string, steps []string) {
	for _, s := range t.userRefs[user] {
		if m := t.progUsers[programOf(s)]; m != nil {
			delete(m, user)
			if len(m) == 0 {
				delete(t.progUsers, programOf(s))
			}
		}
	}
	if len(steps) == 0 {
		delete(t.userRefs, user)
		delete(t.missing, user)
		return
	}
	t.userRefs[user] = steps
	for _, s := range steps {
		o := programOf(s)
		if t.progUsers[o] == nil {
			t.progUsers[o] = map[string]struct{}{}
		}
		t.progUsers[o][user] = struct{}{}
	}
	t.updateMissing(user)
}

func (t *Translator) updateMissing(user string) {
	var miss []string
	for _, s := range t.userRefs[user] {
		owner := programOf(s)
		if _, ok := t.progs[owner]; !ok {
			miss = append(miss, describeOwner(owner))
		}
	}
	if len(miss) == 0 {
		delete(t.missing, user)
		return
	}
	slices.Sort(miss)
	t.missing[user] = fmt.Errorf("references %s, not known: its traffic is dropped (fail closed)",
		strings.Join(slices.Compact(miss), ", "))
}

// programChanged updates the report bookkeeping after a program was (re)translated or removed.
func (t *Translator) programChanged(owner string, existed bool, oldWalk int) {
	pu, exists := t.progs[owner]
	walk := 1
	if exists {
		walk = pu.walk
		if len(pu.issues) > 0 {
			t.issueOwners[owner] = struct{}{}
		} else {
			delete(t.issueOwners, owner)
		}
	} else {
		delete(t.issueOwners, owner)
	}
	if existed != exists {
		for user := range t.progUsers[owner] {
			t.updateMissing(user)
		}
	}
	if existed != exists || walk != oldWalk {
		for name := range t.progLists[owner] {
			t.updateListWalk(name)
		}
	}
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

// onlyIPSetMembers reports whether changes only touch IP sets that existed before and still exist (member
// changes cannot change the report; a set's appearance, removal or type change re-translates programs and
// marks the report dirty there).
func onlyIPSetMembers(c model.Changes) bool {
	return c.Len() == c.IPSets.Len() && len(c.IPSets.Of(model.Updated)) == c.IPSets.Len()
}
