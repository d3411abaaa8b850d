package translator

import (
	"net/netip"
	"strings"

	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// Route precedences: when several objects want a route for the same prefix, the highest precedence wins,
// then the smallest owner (deterministic, independent of the order of changes).
const (
	precDefault  = 1   // the node's default routes
	precPool     = 10  // an IP pool's own CIDR (no natOutgoing inside it)
	precNeighbor = 20  // configured underlay neighbours
	precRoute    = 50  // Felix's RouteUpdates
	precHost     = 60  // the node's own addresses
	precWorkload = 100 // a local workload endpoint's addresses
)

// routeCand is one object's wish for a prefix: a next hop (by name) or, with nh "", unreachable.
type routeCand struct {
	prec int
	nh   string
	// local: the destination is on this node (workload, host): never masqueraded.
	local bool
}

type routeCell struct {
	cands map[string]routeCand
	unit  *unit
}

func better(a routeCand, ao string, b routeCand, bo string) bool {
	if a.prec != b.prec {
		return a.prec > b.prec
	}
	return ao < bo
}

// setRoute records owner's candidate for prefix p and re-renders the route.
func (t *Translator) setRoute(p netip.Prefix, owner string, c routeCand) {
	p = p.Masked()
	cell := t.routes[p]
	if cell == nil {
		cell = &routeCell{cands: map[string]routeCand{}, unit: newUnit("route/" + p.String())}
		t.routes[p] = cell
	}
	if old, ok := cell.cands[owner]; ok {
		if old == c {
			return
		}
		if old.nh != "" {
			defer t.unrefNexthop(old.nh)
		}
	}
	if c.nh != "" {
		t.refNexthop(c.nh)
	}
	cell.cands[owner] = c
	t.renderRoute(p, cell)
}

// delRoute removes owner's candidate for prefix p.
func (t *Translator) delRoute(p netip.Prefix, owner string) {
	p = p.Masked()
	cell := t.routes[p]
	if cell == nil {
		return
	}
	old, ok := cell.cands[owner]
	if !ok {
		return
	}
	delete(cell.cands, owner)
	if len(cell.cands) == 0 {
		cell.unit.clear(t.st)
		delete(t.routes, p)
	} else {
		t.renderRoute(p, cell)
	}
	if old.nh != "" {
		t.unrefNexthop(old.nh)
	}
}

// renderRoute writes the winning candidate of a prefix. Routes that leave the node towards a destination
// outside every IP pool carry ROUTE_FLAG_NAT_OUTGOING (Felix masquerades pool traffic to such
// destinations: felix/rules/nat.go, natOutgoing).
func (t *Translator) renderRoute(p netip.Prefix, cell *routeCell) {
	var best routeCand
	bestOwner := ""
	for o, c := range cell.cands {
		if bestOwner == "" || better(c, o, best, bestOwner) {
			best, bestOwner = c, o
		}
	}
	table, key := p4src.TableRouteV4, p4src.KeyRouteV4DstAddr
	if p.Addr().Is6() {
		table, key = p4src.TableRouteV6, p4src.KeyRouteV6DstAddr
	}
	var a entry.Action
	if best.nh == "" {
		a = act(p4src.ActionRouteUnreachable)
	} else {
		id, _ := t.ids.nh.Get(best.nh)
		var flags uint8
		if !best.local && !t.insidePool(p) {
			flags |= p4src.RouteFlagNATOutgoing
		}
		a = act(p4src.ActionSetNexthop, param(p4src.ParamSetNexthopNexthopID, u(uint64(id))),
			param(p4src.ParamSetNexthopFlags, u(uint64(flags))))
	}
	ents := []entry.Entry{tableEntry(table, 0, a, lpm(key, p))}
	if best.nh == "host" && p.Bits() == p.Addr().BitLen() {
		// An address the node routes to itself is one of its own: packets from the host port with such a
		// source are the host's own traffic (k8s.p4's host_origin: Felix's OUTPUT chain); any other
		// source is traffic the host forwards (the FORWARD chain's checks). Only whole addresses: a
		// broader local-host prefix may hold more specific routes elsewhere.
		gt, gk, gf := p4src.TableSourceGuardV4, p4src.KeySourceGuardV4EndpointID, p4src.KeySourceGuardV4SrcAddr
		if p.Addr().Is6() {
			gt, gk, gf = p4src.TableSourceGuardV6, p4src.KeySourceGuardV6EndpointID, p4src.KeySourceGuardV6SrcAddr
		}
		ents = append(ents, tableEntry(gt, 0, act(p4src.ActionSourceAllowed), exact(gk, u(uint64(t.epID(epHost)))), lpm(gf, p)))
	}
	cell.unit.replace(t.st, ents)
}

// insidePool reports whether every address of p is in some IP pool.
func (t *Translator) insidePool(p netip.Prefix) bool {
	for _, pool := range t.pools {
		if pool.Bits() <= p.Bits() && pool.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// rerenderRoutes re-renders every route (after the pools changed).
func (t *Translator) rerenderRoutes() {
	for p, cell := range t.routes {
		t.renderRoute(p, cell)
	}
}

// Next hops other than local workloads' (which their endpoint unit owns) are named by what they are:
//
//	host                  the host stack
//	gw                    the default gateway on the uplink
//	direct/<addr>         an underlay neighbour (a node in the uplink's subnet), unencapsulated
//	vxlan4/<node>         a node over VXLAN (IPv4 underlay), vxlan6/<node> (IPv6 underlay)
//	ipip/<addr>           a node over IP-in-IP
//
// A named next hop exists while a route uses it; its entries are rendered from the node's facts and
// re-rendered when they change. One that cannot be built (no MAC, no VTEP) has no nexthop entry: routes
// to it hit nexthop_missing and drop (DROP_NO_ROUTE), and a warning says why.
type nhUnit struct {
	*unit
	refs int
	warn string
}

func (t *Translator) refNexthop(name string) {
	if strings.HasPrefix(name, "local/") {
		return // owned by the workload unit
	}
	nu := t.nexthops[name]
	if nu != nil {
		nu.refs++
		return
	}
	nu = &nhUnit{unit: newUnit("nh/" + name), refs: 1}
	t.acquire(t.ids.nh, name)
	t.nexthops[name] = nu
	t.renderNexthop(name, nu)
}

func (t *Translator) unrefNexthop(name string) {
	nu := t.nexthops[name]
	if nu == nil {
		return
	}
	nu.refs--
	if nu.refs > 0 {
		return
	}
	nu.clear(t.st)
	t.release(t.ids.nh, name)
	delete(t.nexthops, name)
}

// rerenderNexthops re-renders every named next hop (after the node's facts changed).
func (t *Translator) rerenderNexthops() {
	for name, nu := range t.nexthops {
		t.renderNexthop(name, nu)
	}
}
