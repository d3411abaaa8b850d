package translator

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// Services: the kube-proxy part of the translation (see doc.go, "Services"). Every service of the
// Kubernetes watch (model.State.KubeServices) is one unit owned by "svc/<ns>/<name>": its action-selector
// members and groups and its service_v4/v6 entries, re-rendered whole when the service changes (the store
// writes only the entries that differ) and when the node's addresses change (NodePorts). Felix's own
// ServiceUpdates are not used (driver/services explains why the watch wins). GlobalBGPConfig's service
// CIDRs become Felix's service loop prevention (unreachable routes, owner "svcloop").

// Fixed by k8s.p4: the affinity learner's expiry (EXPIRE_AFFINITY, the embedded target's profile 4).
const affinityTimeoutSeconds = 300

// Route precedence of the service loop prevention's unreachable routes: above the node's default, pool and
// neighbour routes, below Felix's routes and the node's and workloads' own addresses.
const precServiceCIDR = 30

const svcLoopOwner = "svcloop"

// Features of services reported as not enforceable as Kubernetes specifies them.
const (
	// FeatureServiceAffinityTimeout: a ClientIP affinity timeout other than k8s.p4's fixed one.
	FeatureServiceAffinityTimeout Feature = "service-affinity-timeout"
	// FeatureServiceBackends: more backends than an action-selector group holds.
	FeatureServiceBackends Feature = "service-backends-over-group-size"
)

// svcState is the services bookkeeping of a translation.
type svcState struct {
	units map[model.ServiceKey]*svcUnit
	// nodeAddrs are the addresses NodePorts are programmed on (sorted); nodeName decides "Local".
	nodeAddrs []netip.Addr
	nodeName  string
	// loop are the service CIDRs blocked by the service loop prevention.
	loop []netip.Prefix
}

type svcUnit struct {
	*unit
	nodePorts bool // has node-port entries (depends on the node's addresses)
	local     bool // has a Local traffic policy (depends on the node's name)
	issues    []Unsupported
	warns     []string
}

func newSvcState() *svcState { return &svcState{units: map[model.ServiceKey]*svcUnit{}} }

func svcOwner(k model.ServiceKey) string { return "svc/" + k.Namespace + "/" + k.Name }

// translateServices renders every service (a full translation).
func (t *Translator) translateServices() {
	t.svc.nodeAddrs, t.svc.nodeName = t.nodePortAddrs(), t.facts.name
	for k := range t.state.KubeServices.All() {
		t.translateService(k)
	}
	t.translateServiceLoop()
}

// servicesIncremental applies the services' part of a change set; nodeMaybe says the node's addresses or
// name may have changed (host metadata, routes, host endpoints, …).
func (t *Translator) servicesIncremental(c model.Changes, nodeMaybe bool) {
	redo := map[model.ServiceKey]bool{}
	for _, k := range c.KubeServices.Keys() {
		redo[k] = true
	}
	if nodeMaybe {
		addrs, name := t.nodePortAddrs(), t.facts.name
		addrsChanged, nameChanged := !slices.Equal(addrs, t.svc.nodeAddrs), name != t.svc.nodeName
		t.svc.nodeAddrs, t.svc.nodeName = addrs, name
		for k, su := range t.svc.units {
			if (addrsChanged && su.nodePorts) || (nameChanged && su.local) {
				redo[k] = true
			}
		}
	}
	keys := make([]model.ServiceKey, 0, len(redo))
	for k := range redo {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, model.CompareServiceKeys)
	for _, k := range keys {
		t.translateService(k)
	}
	if c.BGPConfig != model.Unchanged {
		t.translateServiceLoop()
	}
}

// nodePortAddrs are the node's own addresses, where NodePorts listen (kube-proxy's default: every local
// address): its addresses and the LOCAL_HOST / LOCAL_TUNNEL routes Felix sends (tunnel addresses).
func (t *Translator) nodePortAddrs() []netip.Addr {
	var out []netip.Addr
	for _, a := range t.facts.addrs {
		out = append(out, a.Addr().Unmap())
	}
	for p, r := range t.state.Routes.All() {
		if (r.Type == model.RouteLocalHost || r.Type == model.RouteLocalTunnel) && p.Bits() == p.Addr().BitLen() {
			out = append(out, p.Addr().Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// translateService renders one service of the watch (or removes its entries).
func (t *Translator) translateService(k model.ServiceKey) {
	su := t.svc.units[k]
	ks, ok := t.state.KubeServices.Get(k)
	if !ok || ks.Type == model.ServiceTypeExternalName || ks.Headless || len(ks.ClusterIPs) == 0 {
		// Removed; ExternalName (a DNS alias) and headless services (DNS names of the pods) have nothing
		// for a proxy to do, as in kube-proxy.
		if su != nil {
			su.clear(t.st)
			delete(t.svc.units, k)
		}
		return
	}
	if su == nil {
		su = &svcUnit{unit: newUnit(svcOwner(k))}
		t.svc.units[k] = su
	}
	ents, r := renderService(ks, t.svc.nodeAddrs, t.svc.nodeName)
	su.nodePorts, su.local, su.issues, su.warns = r.nodePorts, r.local, r.issues, r.warns
	su.replace(t.st, ents)
}

// svcRender is what rendering a service found beside its entries.
type svcRender struct {
	nodePorts, local bool
	issues           []Unsupported
	warns            []string
}

// svcFamily holds a family's constants.
type svcFamily struct {
	v        string
	table    p4src.TableName
	profile  p4src.ActionProfileName
	keyAddr  p4src.MatchFieldName
	keyProto p4src.MatchFieldName
	keyPort  p4src.MatchFieldName
	action   p4src.ActionName
	pAddr    p4src.ParamName
	pPort    p4src.ParamName
	pFlags   p4src.ParamName
	maxGroup int
}

var svcFamilies = map[bool]svcFamily{
	false: {v: "v4", table: p4src.TableServiceV4, profile: p4src.ProfileServiceSelectorV4, keyAddr: p4src.KeyServiceV4DstAddr,
		keyProto: p4src.KeyServiceV4Protocol, keyPort: p4src.KeyServiceV4DstPort, action: p4src.ActionDNATV4,
		pAddr: p4src.ParamDNATV4Addr, pPort: p4src.ParamDNATV4Port, pFlags: p4src.ParamDNATV4Flags,
		maxGroup: p4src.ProfileServiceSelectorV4MaxGroupSize},
	true: {v: "v6", table: p4src.TableServiceV6, profile: p4src.ProfileServiceSelectorV6, keyAddr: p4src.KeyServiceV6DstAddr,
		keyProto: p4src.KeyServiceV6Protocol, keyPort: p4src.KeyServiceV6DstPort, action: p4src.ActionDNATV6,
		pAddr: p4src.ParamDNATV6Addr, pPort: p4src.ParamDNATV6Port, pFlags: p4src.ParamDNATV6Flags,
		maxGroup: p4src.ProfileServiceSelectorV6MaxGroupSize},
}

// renderService renders a service's entries (pure: a function of the service, the node's addresses and
// name). Per family of its cluster IPs, per port:
//
//   - the "internal" destination set (its cluster IPs) load-balances over the backends
//     internalTrafficPolicy selects; the "external" set (external IPs, spec.loadBalancerIP, the load
//     balancer's ingress IPs, and node address:node port) over those externalTrafficPolicy selects, with
//     SVC_FLAG_MASQUERADE unless that policy is Local (kube-proxy masquerades externally reachable
//     traffic with policy Cluster, so replies from other nodes come back through this one);
//   - a selection is kube-proxy's: the ready endpoints (on this node, for a Local policy), or if none the
//     serving terminating ones; equal weights; none at all is service_reject (ICMP port unreachable, counted as DROP_NO_SERVICE_BACKEND);
//   - ClientIP affinity sets SVC_FLAG_AFFINITY on every member.
//
// Names: group "svc/<ns>/<name>/<proto>/<port>/<v4|v6>/<int|ext>", its members "<group>/<addr>:<port>",
// the reject member "<group>/reject".
func renderService(ks *model.KubeService, nodeAddrs []netip.Addr, nodeName string) ([]entry.Entry, svcRender) {
	var ents []entry.Entry
	var r svcRender
	r.local = ks.ExternalTrafficLocal || ks.InternalTrafficLocal
	owner := "service " + ks.Key.String()
	nodePorts := ks.Type == model.ServiceTypeNodePort || ks.Type == model.ServiceTypeLoadBalancer
	if ks.AffinityClientIP && ks.AffinityTimeout != affinityTimeoutSeconds {
		r.issues = append(r.issues, Unsupported{Feature: FeatureServiceAffinityTimeout, Owner: owner,
			Detail:    fmt.Sprintf("sessionAffinityConfig.clientIP.timeoutSeconds %d", ks.AffinityTimeout),
			Rendering: fmt.Sprintf("affinity expires %d s after the client's last new connection (k8s.p4's fixed EXPIRE_AFFINITY)", affinityTimeoutSeconds)})
	}
	for _, v6 := range []bool{false, true} {
		fam := svcFamilies[v6]
		var internal []netip.Addr
		for _, a := range ks.ClusterIPs {
			if a.Is6() == v6 {
				internal = append(internal, a)
			}
		}
		if len(internal) == 0 {
			continue // a family the service does not have (as kube-proxy's per-family proxiers)
		}
		var external []netip.Addr
		for _, a := range slices.Concat(ks.ExternalIPs, []netip.Addr{ks.LoadBalancerIP}, ks.LoadBalancerIngress) {
			if a.IsValid() && a.Is6() == v6 && !slices.Contains(external, a) && !slices.Contains(internal, a) {
				external = append(external, a)
			}
		}
		var nodes []netip.Addr
		if nodePorts {
			for _, a := range nodeAddrs {
				if a.Is6() == v6 {
					nodes = append(nodes, a)
				}
			}
		}
		for _, p := range ks.Ports {
			base := fmt.Sprintf("svc/%s/%s/%s/%d/%s", ks.Key.Namespace, ks.Key.Name, protoName(p.Protocol), p.Port, fam.v)
			var backends []model.Backend
			for _, b := range p.Backends {
				if b.Addr.Is6() == v6 {
					backends = append(backends, b)
				}
			}
			var flags uint8
			if ks.AffinityClientIP {
				flags |= p4src.SvcFlagAffinity
			}
			// The internal destinations.
			group := func(name string, bs []model.Backend, flags uint8) (string, bool) {
				if len(bs) > fam.maxGroup {
					r.issues = append(r.issues, Unsupported{Feature: FeatureServiceBackends, Owner: owner,
						Detail:    fmt.Sprintf("%s has %d backends", name, len(bs)),
						Rendering: fmt.Sprintf("only the first %d (by address) receive traffic", fam.maxGroup)})
					bs = bs[:fam.maxGroup]
				}
				return svcGroup(fam, name, bs, flags, &ents)
			}
			target, more := group(base+"/int", selectBackends(backends, ks.InternalTrafficLocal, nodeName), flags)
			for _, a := range internal {
				ents = append(ents, svcEntry(fam, a, p.Protocol, p.Port, target, more))
			}
			// The external ones.
			hasExt := len(external) > 0 || (p.NodePort != 0 && len(nodes) > 0)
			if !hasExt {
				continue
			}
			extFlags := flags
			if !ks.ExternalTrafficLocal {
				extFlags |= p4src.SvcFlagMasquerade
			}
			target, more = group(base+"/ext", selectBackends(backends, ks.ExternalTrafficLocal, nodeName), extFlags)
			for _, a := range external {
				ents = append(ents, svcEntry(fam, a, p.Protocol, p.Port, target, more))
			}
			if p.NodePort != 0 {
				for _, a := range nodes {
					ents = append(ents, svcEntry(fam, a, p.Protocol, p.NodePort, target, more))
					r.nodePorts = true
				}
			}
		}
	}
	return ents, r
}

// selectBackends is kube-proxy's endpoint choice for one traffic policy: the ready endpoints (only this
// node's for a Local policy); when there are none, the serving terminating ones (graceful termination).
func selectBackends(bs []model.Backend, local bool, node string) []model.Backend {
	var ready, terminating []model.Backend
	for _, b := range bs {
		if local && (node == "" || b.NodeName != node) {
			continue
		}
		switch {
		case b.Ready:
			ready = append(ready, b)
		case b.Serving && b.Terminating:
			terminating = append(terminating, b)
		}
	}
	if len(ready) > 0 {
		return ready
	}
	return terminating
}

// svcGroup appends the members and the group of one selection, or the reject member when it is empty; it
// returns what the service entries point at (a group, or the reject member).
func svcGroup(fam svcFamily, name string, bs []model.Backend, flags uint8, ents *[]entry.Entry) (target string, group bool) {
	if len(bs) == 0 {
		reject := name + "/reject"
		*ents = append(*ents, entry.Entry{Kind: entry.KindMember, Profile: string(fam.profile), Name: reject,
			Action: act(p4src.ActionServiceReject)})
		return reject, false
	}
	members := make([]entry.GroupMember, 0, len(bs))
	for _, b := range bs {
		m := name + "/" + netip.AddrPortFrom(b.Addr, b.Port).String()
		*ents = append(*ents, entry.Entry{Kind: entry.KindMember, Profile: string(fam.profile), Name: m,
			Action: act(fam.action, param(fam.pAddr, addrBytes(b.Addr)), param(fam.pPort, u(uint64(b.Port))),
				param(fam.pFlags, u(uint64(flags))))})
		members = append(members, entry.GroupMember{Member: m, Weight: 1})
	}
	slices.SortFunc(members, func(a, b entry.GroupMember) int { return strings.Compare(a.Member, b.Member) })
	*ents = append(*ents, entry.Entry{Kind: entry.KindGroup, Profile: string(fam.profile), Name: name, Members: members})
	return name, true
}

func svcEntry(fam svcFamily, a netip.Addr, proto uint8, port uint16, target string, group bool) entry.Entry {
	e := tableEntry(fam.table, 0, entry.Action{}, exact(fam.keyAddr, addrBytes(a)), exact(fam.keyProto, u(uint64(proto))),
		exact(fam.keyPort, u(uint64(port))))
	if group {
		e.Group = target
	} else {
		e.Member = target
	}
	return e
}

func protoName(p uint8) string {
	switch p {
	case model.ProtoTCP:
		return "tcp"
	case model.ProtoUDP:
		return "udp"
	case model.ProtoSCTP:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

// translateServiceLoop is Felix's service loop prevention (felix/dataplane/linux/service_loop_mgr.go):
// traffic to the service CIDRs Calico advertises over BGP (GlobalBGPConfigUpdate) that no service
// translated is dropped instead of being routed back to the network (a loop with the router that learned
// those CIDRs from this node). Here it is an unreachable route per CIDR (routing comes after the service
// lookup, so translated traffic never meets it); "Reject" drops too (a route has no reject action; only service_reject answers with ICMP), and
// "Disabled" adds nothing.
func (t *Translator) translateServiceLoop() {
	var want []netip.Prefix
	if b, ok := t.state.BGPConfig(); ok && t.state.Config().ServiceLoopPrevention != "Disabled" {
		for _, p := range slices.Concat(b.ServiceClusterCIDRs, b.ServiceExternalCIDRs, b.ServiceLoadBalancerCIDRs) {
			want = append(want, p.Masked())
		}
	}
	slices.SortFunc(want, model.ComparePrefixes)
	want = slices.Compact(want)
	for _, p := range t.svc.loop {
		if !slices.Contains(want, p) {
			t.delRoute(p, svcLoopOwner)
		}
	}
	for _, p := range want {
		t.setRoute(p, svcLoopOwner, routeCand{prec: precServiceCIDR})
	}
	t.svc.loop = want
}

// serviceReport adds the services' unsupported features and warnings (entries lost to another service
// claiming the same address, protocol and port) to r.
func (t *Translator) serviceReport(r *Report) {
	keys := make([]model.ServiceKey, 0, len(t.svc.units))
	for k := range t.svc.units {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, model.CompareServiceKeys)
	for _, k := range keys {
		su := t.svc.units[k]
		r.Unsupported = append(r.Unsupported, su.issues...)
		r.Warnings = append(r.Warnings, su.warns...)
		if err := t.st.conflictErr(su.owner); err != nil {
			r.Warnings = append(r.Warnings, fmt.Sprintf("service %s: %v", k, err))
		}
	}
	slices.SortFunc(r.Unsupported, compareUnsupported)
}
