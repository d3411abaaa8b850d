package topology

import (
	"crypto/sha1"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/calico-p4/calico-p4/e2e/netnsutil"
)

// Interface names of the host port (attach mode, Config.HostPort) in each node namespace: the dataplane
// attaches HostPortIface; HostStackIface is its veth peer and carries the node's addresses, so the node
// namespace's own kernel plays the host's network stack.
const (
	HostPortIface  = "cp4host0"
	HostStackIface = "cp4host1"
	// ExternalIface is the external peer's interface (in its own namespace); its peer in the first node's
	// namespace is UplinkIface, the node's uplink port.
	ExternalIface = "eth0"
)

// ExternalSpec describes a peer outside the cluster on the first node's uplink (attach mode, one node):
// a namespace whose ExternalIface is joined by a veth to the node's UplinkIface. It stands for the
// fabric: a client, and the node's default gateway.
type ExternalSpec struct {
	// Name labels the namespace (default "ext").
	Name string
	// IPv4 and IPv6 are its addresses with the uplink subnet's length (default 192.168.122.1/24,
	// fd00:122::1/64).
	IPv4, IPv6 netip.Prefix
	// MAC of its interface (default derived from Name): what the node uses as its gateway MAC.
	MAC net.HardwareAddr
	// Routes are routed via the first node's address of their family (e.g. the IP pools, so that the
	// external peer reaches pods without masquerade).
	Routes []netip.Prefix
}

// External is the created external peer.
type External struct {
	Spec  ExternalSpec
	NetNS string
}

// Path is the external namespace's path.
func (e *External) Path() string { return netnsutil.Path(e.NetNS) }

func (e *ExternalSpec) normalise() error {
	if e.Name == "" {
		e.Name = "ext"
	}
	if !e.IPv4.IsValid() && !e.IPv6.IsValid() {
		e.IPv4 = netip.MustParsePrefix("192.168.122.1/24")
		e.IPv6 = netip.MustParsePrefix("fd00:122::1/64")
	}
	if e.IPv4.IsValid() && !e.IPv4.Addr().Is4() || e.IPv6.IsValid() && !e.IPv6.Addr().Is6() {
		return fmt.Errorf("external %s: address family mismatch", e.Name)
	}
	if e.MAC == nil {
		sum := sha1.Sum([]byte("calico-p4-ext:" + e.Name))
		e.MAC = net.HardwareAddr{0x02, sum[0], sum[1], sum[2], sum[3], sum[4]}
	}
	return nil
}

// createHostPort adds the host port veth to a node: HostPortIface (left to the dataplane: no IPv6, no
// addresses) and HostStackIface with the node's addresses and default routes through the host port, so
// the node kernel sends everything it does not own (pods, other hosts) to the dataplane, which answers
// ARP/ND for the IP pools and bridges the rest to the uplink.
func (t *Topology) createHostPort(n *Node) error {
	if err := n.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: HostPortIface,
		HardwareAddr: portMAC(n.Spec.Name + "/" + HostPortIface)}, PeerName: HostStackIface}); err != nil {
		return fmt.Errorf("veth %s: %w", HostPortIface, err)
	}
	if err := dataplanePort(n, HostPortIface); err != nil {
		return err
	}
	for _, name := range []string{HostPortIface, HostStackIface} {
		if err := linkUp(n.nl, name); err != nil {
			return err
		}
	}
	stack, err := n.nl.LinkByName(HostStackIface)
	if err != nil {
		return err
	}
	if err := addNodeAddrs(n.nl, stack, n.Spec); err != nil {
		return err
	}
	idx := stack.Attrs().Index
	if n.Spec.IPv4.IsValid() {
		if err := n.nl.RouteAdd(&netlink.Route{LinkIndex: idx, Scope: netlink.SCOPE_LINK,
			Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}}); err != nil {
			return fmt.Errorf("host default route v4: %w", err)
		}
	}
	if n.Spec.IPv6.IsValid() {
		if err := n.nl.RouteAdd(&netlink.Route{LinkIndex: idx,
			Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}}); err != nil {
			return fmt.Errorf("host default route v6: %w", err)
		}
	}
	n.HostPort = HostPortIface
	return nil
}

// createExternal creates the external peer joined to the first node's UplinkIface.
func (t *Topology) createExternal(spec ExternalSpec) error {
	node := t.Nodes[0]
	name, h, nl, err := t.newNS(spec.Name)
	if err != nil {
		return err
	}
	defer h.Close()
	defer nl.Close()
	t.ext = &External{Spec: spec, NetNS: name}
	if err := node.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: UplinkIface,
		HardwareAddr: portMAC(node.Spec.Name + "/" + UplinkIface)}, PeerName: ExternalIface,
		PeerHardwareAddr: spec.MAC, PeerNamespace: netlink.NsFd(int(h))}); err != nil {
		return fmt.Errorf("veth %s: %w", UplinkIface, err)
	}
	if err := dataplanePort(node, UplinkIface); err != nil {
		return err
	}
	if err := linkUp(node.nl, UplinkIface); err != nil {
		return err
	}
	node.Uplink = UplinkIface
	link, err := nl.LinkByName(ExternalIface)
	if err != nil {
		return err
	}
	for _, p := range []netip.Prefix{spec.IPv4, spec.IPv6} {
		if !p.IsValid() {
			continue
		}
		if err := nl.AddrAdd(link, &netlink.Addr{IPNet: prefixToIPNet(p), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("address %s: %w", p, err)
		}
	}
	if err := nl.LinkSetUp(link); err != nil {
		return err
	}
	for _, r := range spec.Routes {
		gw := node.Spec.IPv4
		if r.Addr().Is6() {
			gw = node.Spec.IPv6
		}
		if !gw.IsValid() {
			return fmt.Errorf("external route %s: node %s has no address of that family", r, node.Spec.Name)
		}
		if err := nl.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IP(gw.Addr().AsSlice()),
			Dst: prefixToIPNet(r.Masked())}); err != nil {
			return fmt.Errorf("external route %s: %w", r, err)
		}
	}
	return nil
}
