package topology

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/calico-p4/calico-p4/e2e/netnsutil"
)

// Mode says who forwards between the pods.
type Mode int

const (
	// ModeAttach leaves the host ends for a dataplane (the softswitch) to attach; the node kernel stays out.
	ModeAttach Mode = iota
	// ModeKernel makes the node namespace route like Calico's Linux dataplane (reference / benchmarks).
	ModeKernel
)

func (m Mode) String() string {
	switch m {
	case ModeAttach:
		return "attach"
	case ModeKernel:
		return "kernel"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// IfaceKind is the kind of pod interface.
type IfaceKind string

const (
	// Veth: the pod's eth0 is one end of a veth pair whose other end (the host end) is in the node namespace.
	Veth IfaceKind = "veth"
	// TAP: the pod's eth0 is a TAP device; the host end is its file descriptor (Pod.TAP), the way a
	// P4-DPDK target's TAP port works. Only with ModeAttach.
	TAP IfaceKind = "tap"
)

// Uplink interface names (in each node namespace) and the blackhole link used in kernel mode.
const (
	UplinkIface    = "cp4up0"
	blackholeIface = "cp4blk0"
	blackholePeer  = "cp4blk1"
)

// NodeSpec describes a node. Its addresses go on the uplink (two nodes) or, in kernel mode with one node, on
// a blackhole link that also carries the node's IPv4 default route (proxy ARP needs a route to answer).
type NodeSpec struct {
	Name string
	IPv4 netip.Prefix // e.g. 192.168.122.11/24; optional
	IPv6 netip.Prefix // e.g. fd00:122::11/64; optional
}

// PodSpec describes a pod.
type PodSpec struct {
	// Name identifies the pod in results and matrices, conventionally "<namespace>/<pod>".
	Name string
	// Namespace and Pod are the Kubernetes names used for Calico's interface name; by default Name split at
	// its first "/" (or namespace "default").
	Namespace, Pod string
	// Node is the node's name; empty means the first node.
	Node string
	// IPv4 and IPv6 are the pod's addresses (at least one).
	IPv4, IPv6 netip.Addr
	// MAC of the pod's eth0; default: derived from Name, locally administered.
	MAC net.HardwareAddr
	// HostIface overrides the host-side interface name (default: Calico's cali+hex name).
	HostIface string
	// MTU of both ends; 0 leaves the kernel default (1500).
	MTU int
}

// Config describes a topology to create.
type Config struct {
	Nodes       []NodeSpec // default: one node "node1" (192.168.122.11/24, fd00:122::11/64)
	Pods        []PodSpec
	Mode        Mode
	Iface       IfaceKind // default Veth
	IfacePrefix string    // default "cali"
	RunID       string    // default: random; 8 hex digits
	Log         *zap.Logger
	// HostPort (attach mode) gives every node a host port: a veth whose HostPortIface end is left to the
	// dataplane (its host interface) and whose HostStackIface end carries the node's addresses, so the
	// node namespace's kernel is the host's network stack.
	HostPort bool
	// External (attach mode, one node) adds a peer outside the cluster on the node's uplink port.
	External *ExternalSpec
}

// DefaultNodes are the nodes used when Config.Nodes is empty or names a second node without addresses.
var DefaultNodes = []NodeSpec{
	{Name: "node1", IPv4: netip.MustParsePrefix("192.168.122.11/24"), IPv6: netip.MustParsePrefix("fd00:122::11/64")},
	{Name: "node2", IPv4: netip.MustParsePrefix("192.168.122.12/24"), IPv6: netip.MustParsePrefix("fd00:122::12/64")},
}

// Node is a created node namespace.
type Node struct {
	Spec  NodeSpec
	NetNS string // namespace name (under /run/netns)
	// HostPort is the host port's dataplane end (Config.HostPort), "" without one.
	HostPort string
	// Uplink is the uplink's dataplane end in attach mode with an external peer, "" without one.
	Uplink string
	h      netns.NsHandle
	nl     *netlink.Handle
}

// Path is the node namespace's path, e.g. for `ip netns exec` or setns.
func (n *Node) Path() string { return netnsutil.Path(n.NetNS) }

// Do runs fn on a thread inside the node namespace.
func (n *Node) Do(fn func() error) error { return netnsutil.Do(n.h, fn) }

// Netlink returns a netlink handle operating inside the node namespace (owned by the topology).
func (n *Node) Netlink() *netlink.Handle { return n.nl }

// Pod is a created pod.
type Pod struct {
	Spec      PodSpec
	Node      *Node
	NetNS     string           // namespace name
	HostIface string           // host-side interface in the node namespace (veth) or "" (TAP)
	MAC       net.HardwareAddr // the pod's eth0 MAC
	// TAP is the TAP device's file descriptor (IFF_TAP|IFF_NO_PI), the host end in TAP mode; nil for veth.
	TAP *os.File
	h   netns.NsHandle
	nl  *netlink.Handle
}

// Path is the pod namespace's path.
func (p *Pod) Path() string { return netnsutil.Path(p.NetNS) }

// Do runs fn on a thread inside the pod namespace.
func (p *Pod) Do(fn func() error) error { return netnsutil.Do(p.h, fn) }

// Netlink returns a netlink handle operating inside the pod namespace (owned by the topology).
func (p *Pod) Netlink() *netlink.Handle { return p.nl }

// Topology is a created set of namespaces. Close it (also after a failed test).
type Topology struct {
	RunID string
	Mode  Mode
	Iface IfaceKind
	Nodes []*Node
	Pods  []*Pod
	log   *zap.Logger
	reg   string // registry file
	names []string
	ext   *External
}

// External returns the external peer (Config.External), or nil.
func (t *Topology) External() *External { return t.ext }

// Pod returns the pod with the given name, or nil.
func (t *Topology) Pod(name string) *Pod {
	for _, p := range t.Pods {
		if p.Spec.Name == name {
			return p
		}
	}
	return nil
}

// Node returns the node with the given name, or nil.
func (t *Topology) Node(name string) *Node {
	for _, n := range t.Nodes {
		if n.Spec.Name == name {
			return n
		}
	}
	return nil
}

// Namespaces lists the names of every namespace this run created.
func (t *Topology) Namespaces() []string { return append([]string(nil), t.names...) }

func (c *Config) normalise() error {
	if c.Iface == "" {
		c.Iface = Veth
	}
	if c.Iface != Veth && c.Iface != TAP {
		return fmt.Errorf("unknown interface kind %q", c.Iface)
	}
	if c.Iface == TAP && c.Mode == ModeKernel {
		return errors.New("kernel mode needs veth pods: a TAP device has no host-side netdev to route to")
	}
	if c.IfacePrefix == "" {
		c.IfacePrefix = DefaultIfacePrefix
	}
	if c.RunID == "" {
		c.RunID = NewRunID()
	}
	if !validRunID(c.RunID) {
		return fmt.Errorf("run id %q: want 8 lower-case hex digits", c.RunID)
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	if len(c.Nodes) == 0 {
		c.Nodes = []NodeSpec{DefaultNodes[0]}
	}
	if len(c.Nodes) > 2 {
		return fmt.Errorf("%d nodes: the harness joins at most two nodes (one uplink veth)", len(c.Nodes))
	}
	if (c.HostPort || c.External != nil) && c.Mode != ModeAttach {
		return errors.New("a host port and an external peer are dataplane ports: attach mode only")
	}
	if c.External != nil {
		if len(c.Nodes) != 1 {
			return errors.New("an external peer needs exactly one node (it takes the node's uplink)")
		}
		if err := c.External.normalise(); err != nil {
			return err
		}
	}
	nodes := map[string]bool{}
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if n.Name == "" || nodes[n.Name] {
			return fmt.Errorf("node %d: empty or duplicate name %q", i, n.Name)
		}
		nodes[n.Name] = true
		if n.IPv4.IsValid() && !n.IPv4.Addr().Is4() || n.IPv6.IsValid() && !n.IPv6.Addr().Is6() {
			return fmt.Errorf("node %s: address family mismatch", n.Name)
		}
		if len(c.Nodes) == 2 && !n.IPv4.IsValid() && !n.IPv6.IsValid() {
			n.IPv4, n.IPv6 = DefaultNodes[i].IPv4, DefaultNodes[i].IPv6
		}
	}
	pods := map[string]bool{}
	ifaces := map[string]string{}
	ips := map[netip.Addr]string{}
	for i := range c.Pods {
		p := &c.Pods[i]
		if p.Name == "" || pods[p.Name] {
			return fmt.Errorf("pod %d: empty or duplicate name %q", i, p.Name)
		}
		pods[p.Name] = true
		if p.Namespace == "" && p.Pod == "" {
			if ns, name, ok := strings.Cut(p.Name, "/"); ok {
				p.Namespace, p.Pod = ns, name
			} else {
				p.Namespace, p.Pod = "default", p.Name
			}
		}
		if p.Node == "" {
			p.Node = c.Nodes[0].Name
		}
		if !nodes[p.Node] {
			return fmt.Errorf("pod %s: unknown node %q", p.Name, p.Node)
		}
		if !p.IPv4.IsValid() && !p.IPv6.IsValid() {
			return fmt.Errorf("pod %s: needs an IPv4 or IPv6 address", p.Name)
		}
		if p.IPv4.IsValid() && !p.IPv4.Is4() || p.IPv6.IsValid() && !p.IPv6.Is6() {
			return fmt.Errorf("pod %s: address family mismatch", p.Name)
		}
		for _, a := range []netip.Addr{p.IPv4, p.IPv6} {
			if !a.IsValid() {
				continue
			}
			if other, dup := ips[a]; dup {
				return fmt.Errorf("pod %s: address %s already used by %s", p.Name, a, other)
			}
			ips[a] = p.Name
		}
		if p.MAC == nil {
			p.MAC = PodMAC(p.Name)
		}
		if p.HostIface == "" {
			p.HostIface = CalicoInterfaceName(c.IfacePrefix, p.Namespace, p.Pod)
		}
		if err := checkIfaceName(p.HostIface); err != nil {
			return fmt.Errorf("pod %s: %w", p.Name, err)
		}
		key := p.Node + "/" + p.HostIface
		if other, dup := ifaces[key]; dup {
			return fmt.Errorf("pod %s: host interface %s already used by %s", p.Name, p.HostIface, other)
		}
		ifaces[key] = p.Name
	}
	return nil
}

// Create builds the topology. On error everything created so far is removed.
func Create(ctx context.Context, cfg Config) (_ *Topology, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("topology: needs root (network namespaces)")
	}
	if err := cfg.normalise(); err != nil {
		return nil, fmt.Errorf("topology config: %w", err)
	}
	t := &Topology{RunID: cfg.RunID, Mode: cfg.Mode, Iface: cfg.Iface, log: cfg.Log.With(zap.String("run", cfg.RunID))}
	defer func() {
		if err != nil {
			if cerr := t.Close(); cerr != nil {
				t.log.Warn("cleanup after failed create", zap.Error(cerr))
			}
		}
	}()
	if t.reg, err = register(cfg.RunID); err != nil {
		return nil, err
	}
	for i, spec := range cfg.Nodes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, err := t.createNode(spec, cfg.Mode, len(cfg.Nodes))
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", spec.Name, err)
		}
		t.Nodes = append(t.Nodes, n)
		_ = i
	}
	if len(t.Nodes) == 2 {
		if err := t.createUplink(cfg.Mode, cfg.HostPort); err != nil {
			return nil, fmt.Errorf("uplink: %w", err)
		}
	}
	if cfg.HostPort {
		for _, n := range t.Nodes {
			if err := t.createHostPort(n); err != nil {
				return nil, fmt.Errorf("node %s host port: %w", n.Spec.Name, err)
			}
		}
	}
	if cfg.External != nil {
		if err := t.createExternal(*cfg.External); err != nil {
			return nil, fmt.Errorf("external peer: %w", err)
		}
	}
	for _, spec := range cfg.Pods {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := t.createPod(spec, cfg)
		if err != nil {
			return nil, fmt.Errorf("pod %s: %w", spec.Name, err)
		}
		t.Pods = append(t.Pods, p)
	}
	if cfg.Mode == ModeKernel {
		if err := t.kernelRoutes(); err != nil {
			return nil, fmt.Errorf("kernel routes: %w", err)
		}
	}
	t.log.Info("topology created", zap.Stringer("mode", cfg.Mode), zap.String("iface", string(cfg.Iface)),
		zap.Int("nodes", len(t.Nodes)), zap.Int("pods", len(t.Pods)))
	return t, nil
}

func (t *Topology) newNS(label string) (string, netns.NsHandle, *netlink.Handle, error) {
	name := nsName(t.RunID, label)
	h, err := netnsutil.CreateNamed(name)
	if err != nil {
		return "", netns.None(), nil, err
	}
	t.names = append(t.names, name)
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		h.Close()
		return "", netns.None(), nil, fmt.Errorf("netlink in %s: %w", name, err)
	}
	lo, err := nl.LinkByName("lo")
	if err == nil {
		err = nl.LinkSetUp(lo)
	}
	if err != nil {
		nl.Close()
		h.Close()
		return "", netns.None(), nil, fmt.Errorf("lo up in %s: %w", name, err)
	}
	// No duplicate address detection: addresses (and link-local gateways) are usable at once.
	for _, k := range []string{"net/ipv6/conf/default/accept_dad", "net/ipv6/conf/all/accept_dad"} {
		if err := netnsutil.SetSysctl(h, k, "0"); err != nil {
			nl.Close()
			h.Close()
			return "", netns.None(), nil, err
		}
	}
	return name, h, nl, nil
}

func (t *Topology) createNode(spec NodeSpec, mode Mode, nodes int) (*Node, error) {
	name, h, nl, err := t.newNS("node-" + spec.Name)
	if err != nil {
		return nil, err
	}
	n := &Node{Spec: spec, NetNS: name, h: h, nl: nl}
	if mode != ModeKernel {
		return n, nil
	}
	for _, kv := range [][2]string{
		{"net/ipv4/ip_forward", "1"},
		{"net/ipv6/conf/all/forwarding", "1"},
	} {
		if err := netnsutil.SetSysctl(h, kv[0], kv[1]); err != nil {
			return n, err
		}
	}
	// Proxy ARP only answers for a target the node has a unicast route to via another interface; Calico
	// nodes have a default route. Here it points into a veth whose peer drops everything.
	if err := nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: blackholeIface}, PeerName: blackholePeer}); err != nil {
		return n, fmt.Errorf("blackhole link: %w", err)
	}
	for _, name := range []string{blackholeIface, blackholePeer} {
		if err := linkUp(nl, name); err != nil {
			return n, err
		}
	}
	bh, err := nl.LinkByName(blackholeIface)
	if err != nil {
		return n, err
	}
	if nodes == 1 {
		if err := addNodeAddrs(nl, bh, spec); err != nil {
			return n, err
		}
	}
	if err := nl.RouteAdd(&netlink.Route{LinkIndex: bh.Attrs().Index, Scope: netlink.SCOPE_LINK,
		Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}}); err != nil {
		return n, fmt.Errorf("default route: %w", err)
	}
	return n, nil
}

func addNodeAddrs(nl *netlink.Handle, link netlink.Link, spec NodeSpec) error {
	for _, p := range []netip.Prefix{spec.IPv4, spec.IPv6} {
		if !p.IsValid() {
			continue
		}
		a := &netlink.Addr{IPNet: prefixToIPNet(p), Flags: unix.IFA_F_NODAD}
		if err := nl.AddrAdd(link, a); err != nil {
			return fmt.Errorf("address %s on %s: %w", p, link.Attrs().Name, err)
		}
	}
	return nil
}

// createUplink joins the two nodes. With host ports (attach mode) the uplink ends are dataplane ports: the
// node addresses are on the host ports' stack side instead, and the node kernels stay off the uplink.
func (t *Topology) createUplink(mode Mode, hostPort bool) error {
	a, b := t.Nodes[0], t.Nodes[1]
	if err := a.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: UplinkIface}, PeerName: UplinkIface,
		PeerNamespace: netlink.NsFd(int(b.h))}); err != nil {
		return fmt.Errorf("veth %s: %w", UplinkIface, err)
	}
	for _, n := range []*Node{a, b} {
		link, err := n.nl.LinkByName(UplinkIface)
		if err != nil {
			return err
		}
		if hostPort {
			if err := dataplanePort(n, UplinkIface); err != nil {
				return err
			}
			n.Uplink = UplinkIface
		} else if err := addNodeAddrs(n.nl, link, n.Spec); err != nil {
			return err
		}
		if err := n.nl.LinkSetUp(link); err != nil {
			return err
		}
	}
	return nil
}

func (t *Topology) createPod(spec PodSpec, cfg Config) (*Pod, error) {
	var node *Node
	for _, n := range t.Nodes {
		if n.Spec.Name == spec.Node {
			node = n
		}
	}
	name, h, nl, err := t.newNS("pod-" + spec.Name)
	if err != nil {
		return nil, err
	}
	p := &Pod{Spec: spec, Node: node, NetNS: name, MAC: spec.MAC, h: h, nl: nl}
	switch cfg.Iface {
	case Veth:
		p.HostIface = spec.HostIface
		hostMAC := HostMAC
		if cfg.Mode == ModeAttach {
			hostMAC = portMAC(node.Spec.Name + "/" + spec.HostIface)
		}
		veth := &netlink.Veth{
			LinkAttrs:        netlink.LinkAttrs{Name: spec.HostIface, HardwareAddr: hostMAC, MTU: spec.MTU},
			PeerName:         PodIface,
			PeerHardwareAddr: spec.MAC,
			PeerNamespace:    netlink.NsFd(int(h)),
		}
		if err := node.nl.LinkAdd(veth); err != nil {
			return p, fmt.Errorf("veth %s: %w", spec.HostIface, err)
		}
		if err := t.prepareHostEnd(node, spec.HostIface, cfg.Mode); err != nil {
			return p, err
		}
	case TAP:
		f, err := openTAP(h, PodIface)
		if err != nil {
			return p, err
		}
		p.TAP = f
		link, err := nl.LinkByName(PodIface)
		if err != nil {
			return p, err
		}
		if err := nl.LinkSetHardwareAddr(link, spec.MAC); err != nil {
			return p, fmt.Errorf("tap mac: %w", err)
		}
		if spec.MTU > 0 {
			if err := nl.LinkSetMTU(link, spec.MTU); err != nil {
				return p, fmt.Errorf("tap mtu: %w", err)
			}
		}
	}
	if err := configurePodSide(nl, spec); err != nil {
		return p, err
	}
	return p, nil
}

// prepareHostEnd configures and brings up a workload's host end in the node namespace.
func (t *Topology) prepareHostEnd(node *Node, iface string, mode Mode) error {
	var kv [][2]string
	if mode == ModeKernel {
		// What Calico's Linux dataplane (CNI plugin + Felix) sets on a workload's host end.
		kv = [][2]string{
			{"net/ipv4/conf/" + iface + "/proxy_arp", "1"},
			{"net/ipv4/neigh/" + iface + "/proxy_delay", "0"},
			{"net/ipv4/conf/" + iface + "/forwarding", "1"},
			{"net/ipv6/conf/" + iface + "/forwarding", "1"},
		}
	} else if err := dataplanePort(node, iface); err != nil {
		return err
	}
	for _, e := range kv {
		if err := netnsutil.SetSysctl(node.h, e[0], e[1]); err != nil {
			return err
		}
	}
	return linkUp(node.nl, iface)
}

// dataplanePort keeps the node kernel off an interface a dataplane owns (attach mode): no IPv6 (no ND, no
// router solicitations), no ARP answers for the node's own addresses (arp_ignore 8), and — by the port's
// MAC differing from every MAC frames on it are sent to (pods address ee:ee:ee:ee:ee:ee, which the
// dataplane answers for; the fabric addresses the host stack's MAC) — every unicast frame is "for another
// host" to the kernel, which drops it, while the dataplane's packet socket still receives it. Without this
// the kernel would deliver a pod's packet to a node address itself, bypassing the dataplane's policy.
func dataplanePort(node *Node, iface string) error {
	for _, kv := range [][2]string{
		{"net/ipv6/conf/" + iface + "/disable_ipv6", "1"},
		{"net/ipv4/conf/" + iface + "/arp_ignore", "8"},
	} {
		if err := netnsutil.SetSysctl(node.h, kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// configurePodSide sets the pod's addresses and Calico's routes; it adds no neighbour entries.
func configurePodSide(nl *netlink.Handle, spec PodSpec) error {
	link, err := nl.LinkByName(PodIface)
	if err != nil {
		return fmt.Errorf("pod %s: %w", PodIface, err)
	}
	if spec.IPv4.IsValid() {
		if err := nl.AddrAdd(link, &netlink.Addr{IPNet: prefixToIPNet(netip.PrefixFrom(spec.IPv4, 32))}); err != nil {
			return fmt.Errorf("address %s: %w", spec.IPv4, err)
		}
	}
	if spec.IPv6.IsValid() {
		if err := nl.AddrAdd(link, &netlink.Addr{IPNet: prefixToIPNet(netip.PrefixFrom(spec.IPv6, 128)),
			Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("address %s: %w", spec.IPv6, err)
		}
	}
	if err := nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("%s up: %w", PodIface, err)
	}
	idx := link.Attrs().Index
	if spec.IPv4.IsValid() {
		if err := nl.RouteAdd(&netlink.Route{LinkIndex: idx, Scope: netlink.SCOPE_LINK,
			Dst: &net.IPNet{IP: GatewayV4, Mask: net.CIDRMask(32, 32)}}); err != nil {
			return fmt.Errorf("route to gateway: %w", err)
		}
		if err := nl.RouteAdd(&netlink.Route{LinkIndex: idx, Gw: GatewayV4,
			Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}}); err != nil {
			return fmt.Errorf("default route v4: %w", err)
		}
	}
	if spec.IPv6.IsValid() {
		if err := nl.RouteAdd(&netlink.Route{LinkIndex: idx, Gw: GatewayV6,
			Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}}); err != nil {
			return fmt.Errorf("default route v6: %w", err)
		}
	}
	return nil
}

// kernelRoutes installs, in every node namespace, /32 and /128 routes to its local pods' host ends and routes
// to the other node's pods via the uplink.
func (t *Topology) kernelRoutes() error {
	for _, n := range t.Nodes {
		var peer *Node
		for _, o := range t.Nodes {
			if o != n {
				peer = o
			}
		}
		for _, p := range t.Pods {
			var routes []*netlink.Route
			if p.Node == n {
				link, err := n.nl.LinkByName(p.HostIface)
				if err != nil {
					return err
				}
				for _, a := range []netip.Addr{p.Spec.IPv4, p.Spec.IPv6} {
					if a.IsValid() {
						routes = append(routes, &netlink.Route{LinkIndex: link.Attrs().Index, Scope: netlink.SCOPE_LINK,
							Dst: prefixToIPNet(netip.PrefixFrom(a, a.BitLen()))})
					}
				}
			} else if peer != nil {
				up, err := n.nl.LinkByName(UplinkIface)
				if err != nil {
					return err
				}
				if p.Spec.IPv4.IsValid() && peer.Spec.IPv4.IsValid() {
					routes = append(routes, &netlink.Route{LinkIndex: up.Attrs().Index, Gw: net.IP(peer.Spec.IPv4.Addr().AsSlice()),
						Dst: prefixToIPNet(netip.PrefixFrom(p.Spec.IPv4, 32))})
				}
				if p.Spec.IPv6.IsValid() && peer.Spec.IPv6.IsValid() {
					routes = append(routes, &netlink.Route{LinkIndex: up.Attrs().Index, Gw: net.IP(peer.Spec.IPv6.Addr().AsSlice()),
						Dst: prefixToIPNet(netip.PrefixFrom(p.Spec.IPv6, 128))})
				}
			}
			for _, r := range routes {
				if err := n.nl.RouteAdd(r); err != nil {
					return fmt.Errorf("node %s route %s: %w", n.Spec.Name, r.Dst, err)
				}
			}
		}
	}
	return nil
}

// Close removes every namespace of the run (which destroys their links and routes) and the run's registry
// entry. It is safe to call more than once.
func (t *Topology) Close() error {
	var errs []error
	for _, p := range t.Pods {
		if p.TAP != nil {
			_ = p.TAP.Close()
			p.TAP = nil
		}
		if p.nl != nil {
			p.nl.Close()
			p.nl = nil
		}
		if p.h.IsOpen() {
			_ = p.h.Close()
		}
	}
	for _, n := range t.Nodes {
		if n.nl != nil {
			n.nl.Close()
			n.nl = nil
		}
		if n.h.IsOpen() {
			_ = n.h.Close()
		}
	}
	// Namespaces created before a failure are in t.names even if no Pod/Node value holds them.
	for i := len(t.names) - 1; i >= 0; i-- {
		if err := netnsutil.DeleteNamed(t.names[i]); err != nil {
			errs = append(errs, err)
		}
	}
	t.names = nil
	if t.reg != "" {
		if err := os.Remove(t.reg); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		t.reg = ""
	}
	return errors.Join(errs...)
}

func linkUp(nl *netlink.Handle, name string) error {
	l, err := nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("link %s up: %w", name, err)
	}
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
