package translator

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/p4src/entry"
)

// Endpoint-id names of the node's own ports and tunnels.
const (
	epHost   = "host"
	epUplink = "uplink"
)

// attachment is a host interface a host endpoint can cover: the uplink, or one of Felix's tunnel devices
// (decapsulated traffic from other nodes arrives "on" them; encapsulated traffic leaves through them).
type attachment struct {
	iface  string // the name host endpoints use
	epName string // endpoint-id name
	hep    *model.HostEndpoint
	// prednat is the host endpoint whose pre-DNAT policy the interface runs: hep when it has pre-DNAT
	// policy, else the "*" one (Felix's mangle dispatch lists only endpoints with pre-DNAT policy and
	// sends every other interface to the "*" endpoint's chain).
	prednat *model.HostEndpoint
	flags   uint8
}

// facts are the node-level inputs derived from the model and the options.
type facts struct {
	name                 string
	hostPort, uplinkPort uint32
	hostOK, uplinkOK     bool
	addrs                []netip.Prefix
	addr4, addr6         netip.Addr
	localVTEP            *model.VTEP
	vxlan4, vxlan6, ipip bool
	vxlanPort            uint16
	vni                  uint32
	natAddr4             netip.Addr
	ipipAddr             netip.Addr             // this node's IP-in-IP tunnel address (LOCAL_TUNNEL route), else addr4
	attach               map[string]*attachment // by endpoint-id name: uplink, tunnel/<iface>
	star                 *model.HostEndpoint    // the all-interfaces host endpoint in use (smallest id), if any
	cfg                  *model.Config
}

// computeFacts derives the node-level facts.
func (t *Translator) computeFacts() *facts {
	s, o := t.state, t.opts.Node
	f := &facts{cfg: s.Config(), attach: map[string]*attachment{}}
	f.name = o.Name
	if f.name == "" {
		f.name = f.cfg.FelixHostname
	}
	if o.HostInterface != "" {
		if p, err := t.ports.PortID(o.HostInterface); err == nil {
			f.hostPort, f.hostOK = p, true
		} else {
			t.nodeWarn(fmt.Sprintf("host interface %s has no port: %v", o.HostInterface, err))
		}
	}
	if o.UplinkInterface != "" {
		if p, err := t.ports.PortID(o.UplinkInterface); err == nil {
			f.uplinkPort, f.uplinkOK = p, true
		} else {
			t.nodeWarn(fmt.Sprintf("uplink interface %s has no port: %v", o.UplinkInterface, err))
		}
	}
	f.addrs = slices.Clone(o.Addresses)
	if len(f.addrs) == 0 && f.name != "" {
		if h, ok := s.HostMetadataV4V6.Get(f.name); ok {
			if h.IPv4Addr.IsValid() {
				f.addrs = append(f.addrs, h.IPv4Addr)
			}
			if h.IPv6Addr.IsValid() {
				f.addrs = append(f.addrs, h.IPv6Addr)
			}
		}
		if len(f.addrs) == 0 {
			if h, ok := s.HostMetadata.Get(f.name); ok && h.IPv4Addr.IsValid() {
				f.addrs = append(f.addrs, netip.PrefixFrom(h.IPv4Addr, 32))
			}
			if h, ok := s.HostMetadataV6.Get(f.name); ok && h.IPv6Addr.IsValid() {
				f.addrs = append(f.addrs, netip.PrefixFrom(h.IPv6Addr, 128))
			}
		}
	}
	for _, a := range f.addrs {
		if a.Addr().Is4() && !f.addr4.IsValid() {
			f.addr4 = a.Addr()
		}
		if a.Addr().Is6() && !f.addr6.IsValid() {
			f.addr6 = a.Addr()
		}
	}
	if v, ok := s.VTEPs.Get(f.name); ok {
		f.localVTEP = v
	}
	enc, _ := s.Encapsulation()
	f.vxlan4, f.vxlan6, f.ipip = enc.VXLANEnabled, enc.VXLANEnabledV6, enc.IPIPEnabled
	if f.cfg.VXLANEnabled != nil {
		f.vxlan4 = *f.cfg.VXLANEnabled
	}
	if f.cfg.IPIPEnabled != nil {
		f.ipip = *f.cfg.IPIPEnabled
	}
	f.vxlanPort, f.vni = uint16(f.cfg.VXLANPort), uint32(f.cfg.VXLANVNI)
	f.natAddr4 = f.cfg.NATOutgoingAddress
	f.ipipAddr = f.addr4
	for p, r := range s.Routes.All() {
		if r.Type == model.RouteLocalTunnel && r.Tunnel.IPIP && p.Addr().Is4() {
			f.ipipAddr = p.Addr()
			break
		}
	}

	// Host endpoints: which one covers each host interface (felix/dataplane/linux/endpoint_mgr.go,
	// resolveHostEndpoints): an explicitly named one, or one with no name whose expected IPs include one of
	// the interface's addresses — the smallest id wins; failing that the smallest all-interfaces ("*") one.
	hepIface := o.HostEndpointInterface
	if hepIface == "" {
		hepIface = o.UplinkInterface
	}
	var ifaceAddrs []netip.Addr
	for _, a := range f.addrs {
		ifaceAddrs = append(ifaceAddrs, a.Addr())
	}
	if o.UplinkInterface != "" {
		f.attach[epUplink] = &attachment{iface: hepIface, epName: epUplink}
	}
	for _, tun := range []string{IfaceVXLANv4, IfaceVXLANv6, IfaceIPIP} {
		f.attach["tunnel/"+tun] = &attachment{iface: tun, epName: "tunnel/" + tun}
	}
	star := starHostEndpoint(s)
	f.star = star
	for _, h := range s.HostEndpoints.All() {
		if h.AllInterfaces() {
			continue
		}
		for _, at := range f.attach {
			if at.hep != nil {
				continue // a smaller id already won (All iterates in id order)
			}
			if h.InterfaceName == at.iface && at.iface != "" {
				at.hep = h
			} else if h.InterfaceName == "" && at.epName == epUplink && hepExpects(h, ifaceAddrs) {
				at.hep = h
			}
		}
	}
	for _, at := range f.attach {
		if at.hep == nil {
			at.hep = star
		}
		if at.hep == nil {
			continue
		}
		at.flags = p4src.EPFlagPolicy
		if len(at.hep.PreDNATTiers) > 0 {
			at.prednat = at.hep
		} else if star != nil && len(star.PreDNATTiers) > 0 {
			at.prednat = star
		}
		if at.prednat != nil {
			at.flags |= p4src.EPFlagPrednat
		}
		if len(at.hep.UntrackedTiers) > 0 && !at.hep.AllInterfaces() {
			at.flags |= p4src.EPFlagUntracked
		}
	}
	return f
}

// starHostEndpoint is the all-interfaces ("*") host endpoint Felix uses: the smallest id.
func starHostEndpoint(s *model.State) *model.HostEndpoint {
	for _, h := range s.HostEndpoints.All() {
		if h.AllInterfaces() {
			return h // All iterates in id order
		}
	}
	return nil
}

func hepExpects(h *model.HostEndpoint, addrs []netip.Addr) bool {
	for _, a := range addrs {
		if slices.Contains(h.ExpectedIPv4Addrs, a) || slices.Contains(h.ExpectedIPv6Addrs, a) {
			return true
		}
	}
	return false
}

// neighborMAC is the MAC frames to an underlay address are sent to.
func (t *Translator) neighborMAC(a netip.Addr) net.HardwareAddr {
	if m, ok := t.opts.Node.Neighbors[a]; ok && len(m) == 6 {
		return m
	}
	if len(t.opts.Node.GatewayMAC) == 6 {
		return t.opts.Node.GatewayMAC
	}
	return nil
}

// renderNexthop renders a named next hop from the current facts.
func (t *Translator) renderNexthop(name string, nu *nhUnit) {
	f := t.facts
	id, _ := t.ids.nh.Get(name)
	nu.warn = ""
	var ents []entry.Entry
	fail := func(why string) {
		nu.warn = fmt.Sprintf("next hop %s: %s; routes through it drop (DROP_NO_ROUTE)", name, why)
		nu.replace(t.st, nil)
	}
	kind, arg, _ := strings.Cut(name, "/")
	nhKey := exact(p4src.KeyNexthopNexthopID, u(uint64(id)))
	uplink := f.attach[epUplink]
	upEP, upFlags := t.epID(epUplink), uint8(0)
	if uplink != nil {
		upFlags = uplink.flags
	}
	snat := func(a4, a6 netip.Addr) {
		if a4.IsValid() {
			ents = append(ents, tableEntry(p4src.TableSNATAddressV4, 0,
				act(p4src.ActionSNATToV4, param(p4src.ParamSNATToV4Addr, addrBytes(a4))),
				exact(p4src.KeySNATAddressV4NexthopID, u(uint64(id)))))
		}
		if a6.IsValid() {
			ents = append(ents, tableEntry(p4src.TableSNATAddressV6, 0,
				act(p4src.ActionSNATToV6, param(p4src.ParamSNATToV6Addr, addrBytes(a6))),
				exact(p4src.KeySNATAddressV6NexthopID, u(uint64(id)))))
		}
	}
	masq4 := f.addr4
	if f.natAddr4.IsValid() {
		masq4 = f.natAddr4
	}
	switch kind {
	case "host":
		if !f.hostOK {
			fail("no host interface")
			return
		}
		if len(t.opts.Node.HostMAC) != 6 {
			fail("no host MAC")
			return
		}
		ents = append(ents, tableEntry(p4src.TableNexthop, 0,
			act(p4src.ActionNHHost, param(p4src.ParamNHHostPort, u(uint64(f.hostPort))),
				param(p4src.ParamNHHostDstMAC, macBytes(t.opts.Node.HostMAC)),
				param(p4src.ParamNHHostSrcMAC, macBytes(gatewayMAC)),
				param(p4src.ParamNHHostEndpointID, u(uint64(t.epID(epHost)))),
				param(p4src.ParamNHHostFlags, u(uint64(p4src.EPFlagPolicy)))), nhKey))
	case "gw", "direct":
		if !f.uplinkOK {
			fail("no uplink interface")
			return
		}
		var mac net.HardwareAddr
		if kind == "gw" {
			mac = t.opts.Node.GatewayMAC
		} else if a, err := netip.ParseAddr(arg); err == nil {
			mac = t.neighborMAC(a)
		}
		if len(mac) != 6 || len(t.opts.Node.UplinkMAC) != 6 {
			fail("no MAC for the next hop or the uplink")
			return
		}
		ents = append(ents, tableEntry(p4src.TableNexthop, 0,
			act(p4src.ActionNHDirect, param(p4src.ParamNHDirectPort, u(uint64(f.uplinkPort))),
				param(p4src.ParamNHDirectDstMAC, macBytes(mac)),
				param(p4src.ParamNHDirectSrcMAC, macBytes(t.opts.Node.UplinkMAC)),
				param(p4src.ParamNHDirectEndpointID, u(uint64(upEP))),
				param(p4src.ParamNHDirectFlags, u(uint64(upFlags)))), nhKey))
		snat(masq4, f.addr6)
	case "vxlan4", "vxlan6":
		v6 := kind == "vxlan6"
		remote, ok := t.state.VTEPs.Get(arg)
		local := f.localVTEP
		switch {
		case !f.uplinkOK:
			fail("no uplink interface")
			return
		case !ok:
			fail("no VTEP for node " + arg)
			return
		case local == nil:
			fail("no VTEP for this node")
			return
		}
		rAddr, lAddr, rMAC, lMAC, tunAddr := remote.ParentDeviceIP, local.ParentDeviceIP, remote.MAC, local.MAC, local.IPv4Addr
		tun := f.attach["tunnel/"+IfaceVXLANv4]
		if v6 {
			rAddr, lAddr, rMAC, lMAC, tunAddr = remote.ParentDeviceIPv6, local.ParentDeviceIPv6, remote.MACV6, local.MACV6, local.IPv6Addr
			tun = f.attach["tunnel/"+IfaceVXLANv6]
		}
		mac := t.neighborMAC(rAddr)
		if !rAddr.IsValid() || !lAddr.IsValid() || len(rMAC) != 6 || len(lMAC) != 6 || len(mac) != 6 ||
			len(t.opts.Node.UplinkMAC) != 6 {
			fail("incomplete VTEPs (parent address, MAC) or no underlay MAC")
			return
		}
		tunEP := t.epID(tun.epName)
		a := p4src.ActionNHVXLANV4
		ps := []entry.Param{
			param(p4src.ParamNHVXLANV4Port, u(uint64(f.uplinkPort))),
			param(p4src.ParamNHVXLANV4DstMAC, macBytes(mac)),
			param(p4src.ParamNHVXLANV4SrcMAC, macBytes(t.opts.Node.UplinkMAC)),
			param(p4src.ParamNHVXLANV4OuterSrcAddr, addrBytes(lAddr)),
			param(p4src.ParamNHVXLANV4OuterDstAddr, addrBytes(rAddr)),
			param(p4src.ParamNHVXLANV4VNI, u(uint64(f.vni))),
			param(p4src.ParamNHVXLANV4UDPPort, u(uint64(f.vxlanPort))),
			param(p4src.ParamNHVXLANV4InnerDstMAC, macBytes(rMAC)),
			param(p4src.ParamNHVXLANV4InnerSrcMAC, macBytes(lMAC)),
			param(p4src.ParamNHVXLANV4EndpointID, u(uint64(tunEP))),
			param(p4src.ParamNHVXLANV4Flags, u(uint64(tun.flags))),
		}
		if v6 {
			a = p4src.ActionNHVXLANV6 // the v6 action has the same parameter names
		}
		ents = append(ents, tableEntry(p4src.TableNexthop, 0, act(a, ps...), nhKey))
		if v6 {
			snat(netip.Addr{}, tunAddr)
		} else {
			snat(tunAddr, netip.Addr{})
		}
	case "ipip":
		rAddr, err := netip.ParseAddr(arg)
		mac := t.neighborMAC(rAddr)
		switch {
		case err != nil || !rAddr.Is4():
			fail("not an IPv4 node address")
			return
		case !f.uplinkOK:
			fail("no uplink interface")
			return
		case !f.addr4.IsValid():
			fail("this node has no IPv4 address")
			return
		case len(mac) != 6 || len(t.opts.Node.UplinkMAC) != 6:
			fail("no underlay MAC")
			return
		}
		tun := f.attach["tunnel/"+IfaceIPIP]
		ents = append(ents, tableEntry(p4src.TableNexthop, 0,
			act(p4src.ActionNHIPIP, param(p4src.ParamNHIPIPPort, u(uint64(f.uplinkPort))),
				param(p4src.ParamNHIPIPDstMAC, macBytes(mac)),
				param(p4src.ParamNHIPIPSrcMAC, macBytes(t.opts.Node.UplinkMAC)),
				param(p4src.ParamNHIPIPOuterSrcAddr, addrBytes(f.addr4)),
				param(p4src.ParamNHIPIPOuterDstAddr, addrBytes(rAddr)),
				param(p4src.ParamNHIPIPEndpointID, u(uint64(t.epID(tun.epName)))),
				param(p4src.ParamNHIPIPFlags, u(uint64(tun.flags)))), nhKey))
		snat(f.ipipAddr, netip.Addr{})
	default:
		fail("unknown kind")
		return
	}
	nu.replace(t.st, ents)
}
