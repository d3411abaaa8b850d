package translator

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// wepUnit owns a local workload endpoint's entries: port classification, anti-spoofing, its next hop
// (MAC rewrite, per-endpoint counter), 1:1 NAT, its two policy lists; and its routes (candidates of the
// route table).
type wepUnit struct {
	*unit
	epName string
	nhName string
	lists  []string
	routes []netip.Prefix
	err    error
	down   bool
	// refs are the programs its lists run (to report references to missing policies or profiles).
	refs []string
}

func wepOwner(k model.WorkloadEndpointKey) string { return "wep/" + k.String() }

// Workload endpoint flags: anti-spoofing, and the from/to checks always run (Felix always renders
// from-wl / to-wl chains; no policy and no profile means "drop if no profiles matched").
const wepFlags = p4src.EPFlagSourceCheck | p4src.EPFlagPolicy

func (t *Translator) translateWEP(k model.WorkloadEndpointKey) {
	old := t.weps[k]
	ep, exists := t.state.WorkloadEndpoints.Get(k)
	if !exists {
		if old != nil {
			old.clear(t.st)
			t.releaseWEP(old, nil)
			delete(t.weps, k)
			t.setUserRefs(old.owner, nil)
		}
		return
	}
	owner := wepOwner(k)
	wu := &wepUnit{epName: owner, nhName: "local/" + k.String()}
	if old != nil {
		wu.unit = old.unit
	} else {
		wu.unit = newUnit(owner)
	}
	t.weps[k] = wu
	epID := t.acquire(t.ids.ep, wu.epName)
	nhID := t.acquire(t.ids.nh, wu.nhName)
	wu.down = ep.State != "active"

	port, perr := t.ports.PortID(ep.InterfaceName)
	var errs []error
	if perr != nil {
		errs = append(errs, fmt.Errorf("interface %s has no port: %w", ep.InterfaceName, perr))
	}
	deliverable := perr == nil && !wu.down
	var ents []entry.Entry
	if perr == nil && !wu.down {
		// A "*" host endpoint's pre-DNAT policy runs on packets from workload interfaces too (Felix's
		// mangle PREROUTING dispatches every interface without a pre-DNAT endpoint of its own to it).
		// Its applyOnForward policy runs on traffic forwarded from and to them (Felix's FORWARD chain
		// dispatches every interface to the host endpoint forward chains, "*" the default):
		// EP_FLAG_HEP_FORWARD on port_endpoint (from) and on the next hop (to), per direction with policy.
		flags, nhFlags := wepFlags, p4src.EPFlagPolicy
		star := t.wepStar()
		for _, sl := range []struct {
			l     listSpec
			stage uint8
			flag  *uint8
			bit   uint8
		}{
			{star.prednat, p4src.StagePrednatIngress, &flags, p4src.EPFlagPrednat},
			{star.fwdIn, p4src.StageForwardIngress, &flags, p4src.EPFlagHepForward},
			{star.fwdOut, p4src.StageForwardEgress, &nhFlags, p4src.EPFlagHepForward},
		} {
			if sl.l == nil {
				continue
			}
			*sl.flag |= sl.bit
			name, id := t.refList(sl.l)
			wu.lists = append(wu.lists, name)
			ents = append(ents, endpointPolicy(epID, sl.stage, id))
		}
		ents = append(ents, tableEntry(p4src.TablePortEndpoint, 0,
			act(p4src.ActionSetEndpoint, param(p4src.ParamSetEndpointEndpointID, u(uint64(epID))),
				param(p4src.ParamSetEndpointKind, u(uint64(p4src.EPKindWorkload))),
				param(p4src.ParamSetEndpointFlags, u(uint64(flags))),
				param(p4src.ParamSetEndpointPeerPort, u(0))),
			exact(p4src.KeyPortEndpointPort, u(uint64(port)))))
		var sources []netip.Prefix
		sources = append(sources, ep.IPv4Nets...)
		sources = append(sources, ep.IPv6Nets...)
		sources = append(sources, ep.AllowSpoofedSourcePrefixes...)
		for _, p := range sources {
			ents = append(ents, sourceGuard(epID, p))
		}
		for _, spec := range []struct {
			stage   uint8
			ingress bool
		}{{p4src.StageWorkloadEgress, false}, {p4src.StageWorkloadIngress, true}} {
			prefix := ""
			if !spec.ingress && t.encapDrop {
				prefix = encapDrop
			}
			l := buildList(chainNormal, ep.Tiers, spec.ingress, ep.ProfileIDs, prefix)
			name, id := t.refList(l)
			wu.lists = append(wu.lists, name)
			for _, it := range l {
				if it.step != "" && it.step != firstStep(encapDrop) {
					wu.refs = append(wu.refs, it.step)
				}
			}
			ents = append(ents, endpointPolicy(epID, spec.stage, id))
		}
		if mac := t.state.WorkloadMAC(ep); len(mac) != 6 {
			errs = append(errs, errors.New("no MAC address (none from Felix, none from the CNI server): traffic to the endpoint cannot be delivered"))
			deliverable = false
		} else {
			ents = append(ents, tableEntry(p4src.TableNexthop, 0,
				act(p4src.ActionNHLocal, param(p4src.ParamNHLocalPort, u(uint64(port))),
					param(p4src.ParamNHLocalDstMAC, macBytes(mac)),
					param(p4src.ParamNHLocalEndpointID, u(uint64(epID))),
					param(p4src.ParamNHLocalFlags, u(uint64(nhFlags)))),
				exact(p4src.KeyNexthopNexthopID, u(uint64(nhID)))))
		}
		for _, n := range ep.IPv4NAT {
			ents = append(ents, tableEntry(p4src.TableNAT1to1V4, 0,
				act(p4src.ActionDNATAddressV4, param(p4src.ParamDNATAddressV4Addr, addrBytes(n.IntIP))),
				exact(p4src.KeyNAT1to1V4ExtAddr, addrBytes(n.ExtIP))))
		}
		for _, n := range ep.IPv6NAT {
			ents = append(ents, tableEntry(p4src.TableNAT1to1V6, 0,
				act(p4src.ActionDNATAddressV6, param(p4src.ParamDNATAddressV6Addr, addrBytes(n.IntIP))),
				exact(p4src.KeyNAT1to1V6ExtAddr, addrBytes(n.ExtIP))))
		}
	}
	wu.replace(t.st, ents)
	// Routes to the endpoint's addresses: its next hop, or unreachable when it cannot be delivered (down,
	// no port, no MAC), so traffic to it never falls through to a broader route.
	cand := routeCand{prec: precWorkload, local: true}
	if deliverable {
		cand.nh = wu.nhName
	}
	for _, p := range ep.IPv4Nets {
		wu.routes = append(wu.routes, p.Masked())
	}
	for _, p := range ep.IPv6Nets {
		wu.routes = append(wu.routes, p.Masked())
	}
	for _, p := range wu.routes {
		t.setRoute(p, owner, cand)
	}
	wu.err = errors.Join(errs...)
	t.setUserRefs(owner, wu.refs)
	if old != nil {
		t.releaseWEP(old, wu.routes)
	}
}

// releaseWEP drops what an old version of a workload unit held: list references, ids, and the routes the
// new version (keep) no longer has.
func (t *Translator) releaseWEP(old *wepUnit, keep []netip.Prefix) {
	for _, l := range old.lists {
		t.unrefList(l)
	}
	for _, p := range old.routes {
		if !slices.Contains(keep, p) {
			t.delRoute(p, old.owner)
		}
	}
	t.release(t.ids.ep, old.epName)
	t.release(t.ids.nh, old.nhName)
}

// wepStarLists are the lists a "*" host endpoint gives every workload: its pre-DNAT list and its forward
// ingress and egress lists (each nil without policy for it: no effect — Felix's forward chain without
// policy in a direction allows). Its policies' references are reported for the host endpoint (node unit).
type wepStarLists struct {
	prednat, fwdIn, fwdOut listSpec
}

func (w wepStarLists) key() string {
	return w.prednat.key() + "\x00" + w.fwdIn.key() + "\x00" + w.fwdOut.key()
}

// wepStar derives the workloads' "*" host endpoint lists from the model.
func (t *Translator) wepStar() wepStarLists {
	var w wepStarLists
	h := starHostEndpoint(t.state)
	if h == nil {
		return w
	}
	if len(h.PreDNATTiers) > 0 {
		w.prednat = prednatList(h)
	}
	w.fwdIn = forwardList(h, true)
	w.fwdOut = forwardList(h, false)
	return w
}

// forwardList is a host endpoint's applyOnForward list in one direction (nil without policy).
func forwardList(h *model.HostEndpoint, ingress bool) listSpec {
	return buildList(chainForward, h.ForwardTiers, ingress, nil, "")
}

// prednatList is a host endpoint's pre-DNAT list: the mangle-table failsafe ports, its preDNAT tiers.
func prednatList(h *model.HostEndpoint) listSpec {
	return buildList(chainPreDNAT, h.PreDNATTiers, true, nil, failsafeMangleIn)
}

func sourceGuard(epID uint32, p netip.Prefix) entry.Entry {
	if p.Addr().Is4() {
		return tableEntry(p4src.TableSourceGuardV4, 0, act(p4src.ActionSourceAllowed),
			exact(p4src.KeySourceGuardV4EndpointID, u(uint64(epID))), lpm(p4src.KeySourceGuardV4SrcAddr, p))
	}
	return tableEntry(p4src.TableSourceGuardV6, 0, act(p4src.ActionSourceAllowed),
		exact(p4src.KeySourceGuardV6EndpointID, u(uint64(epID))), lpm(p4src.KeySourceGuardV6SrcAddr, p))
}

func endpointPolicy(epID uint32, stage uint8, listID uint32) entry.Entry {
	return tableEntry(p4src.TableEndpointPolicy, 0,
		act(p4src.ActionSetPolicyList, param(p4src.ParamSetPolicyListListID, u(uint64(listID)))),
		exact(p4src.KeyEndpointPolicyEndpointID, u(uint64(epID))), exact(p4src.KeyEndpointPolicyStage, u(uint64(stage))))
}
