package cni

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/projectcalico/calico/cni-plugin/pkg/dataplane/grpc/proto"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"github.com/calico-p4/calico-p4/driver/model"
)

// DefaultAddress is where the manager serves the CNI plugin by default (--cni-listen).
const DefaultAddress = "unix:///var/run/calico-p4/cni.sock"

// Calico's workload gateways: what k8s.p4 answers ARP and ND for (translator: gatewayV4, gatewayV6).
var (
	GatewayV4 = net.IPv4(169, 254, 1, 1).To4()
	GatewayV6 = net.ParseIP("fe80::ecee:eeff:feee:eeee")
)

// aliasPrefix starts the alias of every host end this server created.
const aliasPrefix = "calico-p4-cni:"

const zeroMAC = "00:00:00:00:00:00"

// maxAlias is the kernel's IFALIASZ minus the terminating NUL.
const maxAlias = 255

// Sink receives the pod interfaces (implemented by session.Manager).
type Sink interface {
	SetPodInterface(p *model.PodInterface)
	RemovePodInterface(hostInterface string)
}

// Options configure a Server.
type Options struct {
	// Sink receives host interface → pod MAC (required).
	Sink Sink
	// Logger (default: none).
	Logger *zap.Logger
	// Metrics (required).
	Metrics *Metrics
	// HostNetNS is the path of the namespace host ends go to; "" is the process's own (the node's).
	HostNetNS string
}

// Server implements cni.CniDataplane. Requests are serialised (CNI requests are rare; this keeps a retried
// Add and a concurrent Del of the same pod from interleaving).
type Server struct {
	proto.UnimplementedCniDataplaneServer
	opts Options
	log  *zap.Logger

	mu     sync.Mutex
	hostNS netns.NsHandle // netns.None() for the process's own
	host   *netlink.Handle
	pods   map[string]podRecord // host interface → record
}

// podRecord is what a host end's alias says.
type podRecord struct {
	mac    net.HardwareAddr
	netns  string
	ifname string
}

func (r podRecord) alias() string {
	v := url.Values{"mac": {r.mac.String()}, "netns": {r.netns}, "if": {r.ifname}}
	return aliasPrefix + v.Encode()
}

func parseAlias(a string) (podRecord, bool) {
	rest, ok := strings.CutPrefix(a, aliasPrefix)
	if !ok {
		return podRecord{}, false
	}
	v, err := url.ParseQuery(rest)
	if err != nil {
		return podRecord{}, false
	}
	mac, err := net.ParseMAC(v.Get("mac"))
	if err != nil || len(mac) != 6 || v.Get("if") == "" {
		return podRecord{}, false
	}
	return podRecord{mac: mac, netns: v.Get("netns"), ifname: v.Get("if")}, true
}

// New returns a server. Call Rebuild before serving, Close when done.
func New(opts Options) (*Server, error) {
	if opts.Sink == nil || opts.Metrics == nil {
		return nil, errors.New("cni: Sink and Metrics are required")
	}
	s := &Server{opts: opts, log: opts.Logger, hostNS: netns.None(), pods: map[string]podRecord{}}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	var err error
	if opts.HostNetNS != "" {
		if s.hostNS, err = netns.GetFromPath(opts.HostNetNS); err != nil {
			return nil, fmt.Errorf("cni: host network namespace %s: %w", opts.HostNetNS, err)
		}
		s.host, err = netlink.NewHandleAt(s.hostNS)
	} else {
		s.host, err = netlink.NewHandle()
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("cni: netlink: %w", err)
	}
	return s, nil
}

// Close releases the server's handles (the interfaces stay).
func (s *Server) Close() {
	if s.host != nil {
		s.host.Close()
	}
	if s.hostNS.IsOpen() {
		s.hostNS.Close()
	}
}

// Register registers the server on a gRPC server.
func (s *Server) Register(g *grpc.Server) { proto.RegisterCniDataplaneServer(g, s) }

// Rebuild reads the pod interfaces back from the host ends' aliases (after a manager restart) and hands
// them to the sink. It returns how many it found.
func (s *Server) Rebuild() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	links, err := s.host.LinkList()
	if err != nil {
		return 0, fmt.Errorf("cni: listing host interfaces: %w", err)
	}
	n := 0
	for _, l := range links {
		r, ok := parseAlias(l.Attrs().Alias)
		if !ok || l.Type() != "veth" || r.mac.String() == zeroMAC {
			continue // not ours, or an Add that did not finish (a retried Add completes it)
		}
		s.remember(l.Attrs().Name, r)
		n++
	}
	s.log.Info("Pod interfaces read back from the host interfaces", zap.Int("pods", n))
	return n, nil
}

func (s *Server) remember(host string, r podRecord) {
	s.pods[host] = r
	s.opts.Metrics.pods.Set(float64(len(s.pods)))
	s.opts.Sink.SetPodInterface(&model.PodInterface{HostInterface: host, MAC: r.mac})
}

func (s *Server) forget(host string) {
	if _, ok := s.pods[host]; !ok {
		return
	}
	delete(s.pods, host)
	s.opts.Metrics.pods.Set(float64(len(s.pods)))
	s.opts.Sink.RemovePodInterface(host)
}

// invalidError marks a malformed request.
type invalidError struct{ error }

func invalidf(format string, a ...any) error { return invalidError{fmt.Errorf(format, a...)} }

func result(err error) string {
	var inv invalidError
	switch {
	case err == nil:
		return resultOK
	case errors.As(err, &inv):
		return resultInvalid
	}
	return resultError
}

// checkIfName validates a Linux interface name.
func checkIfName(what, name string) error {
	if name == "" {
		return invalidf("%s is empty", what)
	}
	if len(name) > unix.IFNAMSIZ-1 {
		return invalidf("%s %q is longer than %d bytes", what, name, unix.IFNAMSIZ-1)
	}
	if name == "." || name == ".." {
		return invalidf("%s %q is not a valid interface name", what, name)
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c == '/' || c == ':' || c >= 0x7f {
			return invalidf("%s %q has an invalid character %q", what, name, c)
		}
	}
	return nil
}

// addSpec is a validated AddRequest.
type addSpec struct {
	ifname, netns, host string
	mtu                 int
	addrs               []netip.Prefix
	routes              []netip.Prefix
	forwarding          bool
	has4, has6          bool
}

func parseAdd(req *proto.AddRequest) (*addSpec, error) {
	sp := &addSpec{ifname: req.GetInterfaceName(), netns: req.GetNetns(), host: req.GetDesiredHostInterfaceName(),
		mtu: int(req.GetSettings().GetMtu()), forwarding: req.GetSettings().GetAllowIpForwarding()}
	if err := checkIfName("interface_name", sp.ifname); err != nil {
		return nil, err
	}
	if err := checkIfName("desired_host_interface_name", sp.host); err != nil {
		return nil, err
	}
	if err := checkNetNS(sp.netns); err != nil {
		return nil, err
	}
	if sp.mtu != 0 && (sp.mtu < 68 || sp.mtu > 65535) {
		return nil, invalidf("settings.mtu %d is out of range (68..65535, or 0 for the default)", sp.mtu)
	}
	if len(req.GetContainerIps()) == 0 {
		return nil, invalidf("no container_ips")
	}
	for _, ip := range req.GetContainerIps() {
		p, err := netip.ParsePrefix(ip.GetAddress())
		if err != nil {
			return nil, invalidf("container_ips: address %q is not a CIDR: %v", ip.GetAddress(), err)
		}
		if p.Addr().Is4In6() || p.Addr().Zone() != "" || p.Addr().IsUnspecified() || p.Addr().IsMulticast() {
			return nil, invalidf("container_ips: %q is not a unicast address", ip.GetAddress())
		}
		sp.addrs = append(sp.addrs, p)
		sp.has4 = sp.has4 || p.Addr().Is4()
		sp.has6 = sp.has6 || p.Addr().Is6()
	}
	for _, r := range req.GetContainerRoutes() {
		p, err := netip.ParsePrefix(r)
		if err != nil {
			return nil, invalidf("container_routes: %q is not a CIDR: %v", r, err)
		}
		if p != p.Masked() {
			return nil, invalidf("container_routes: %q has host bits set", r)
		}
		sp.routes = append(sp.routes, p)
	}
	if len(req.GetContainerRoutes()) == 0 {
		sp.routes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	}
	return sp, nil
}

func checkNetNS(path string) error {
	if path == "" {
		return invalidf("netns is empty")
	}
	if !filepath.IsAbs(path) {
		return invalidf("netns %q is not an absolute path", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return invalidf("netns %s does not exist", path)
		}
		return fmt.Errorf("netns %s: %w", path, err)
	}
	if fi.IsDir() {
		return invalidf("netns %s is a directory, not a network namespace", path)
	}
	return nil
}

// Add implements cni.CniDataplane.
func (s *Server) Add(_ context.Context, req *proto.AddRequest) (*proto.AddReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	log := s.log.With(zap.String("netns", req.GetNetns()), zap.String("interface", req.GetInterfaceName()),
		zap.String("hostInterface", req.GetDesiredHostInterfaceName()),
		zap.String("pod", req.GetWorkload().GetNamespace()+"/"+req.GetWorkload().GetPod()))
	mac, err := s.add(req)
	s.opts.Metrics.requests.WithLabelValues("add", result(err)).Inc()
	if err != nil {
		log.Error("CNI add failed", zap.Error(err))
		return &proto.AddReply{Successful: false, ErrorMessage: err.Error()}, nil
	}
	log.Info("CNI add: pod interface ready", zap.Stringer("mac", mac))
	return &proto.AddReply{Successful: true, HostInterfaceName: req.GetDesiredHostInterfaceName(), ContainerMac: mac.String()}, nil
}

func (s *Server) add(req *proto.AddRequest) (net.HardwareAddr, error) {
	sp, err := parseAdd(req)
	if err != nil {
		return nil, err
	}
	rec := podRecord{netns: sp.netns, ifname: sp.ifname}
	rec.mac = make(net.HardwareAddr, 6) // the longest MAC string, to check the alias fits
	if len(rec.alias()) > maxAlias {
		return nil, invalidf("netns path %q is too long to record (%d bytes of alias, at most %d)", sp.netns, len(rec.alias()), maxAlias)
	}
	cns, err := netns.GetFromPath(sp.netns)
	if err != nil {
		return nil, invalidf("netns %s: %v", sp.netns, err)
	}
	defer cns.Close()
	cnl, err := netlink.NewHandleAt(cns)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", sp.netns, err)
	}
	defer cnl.Close()

	hostLink, hostErr := s.host.LinkByName(sp.host)
	contLink, contErr := cnl.LinkByName(sp.ifname)
	var hostIdx int
	switch {
	case hostErr == nil && contErr == nil && s.ours(hostLink, sp.netns, sp.ifname) && contLink.Type() == "veth" &&
		hostLink.Attrs().ParentIndex == contLink.Attrs().Index && contLink.Attrs().ParentIndex == hostLink.Attrs().Index:
		// A retried Add: the pair exists; make sure it is configured.
		hostIdx = hostLink.Attrs().Index
	case contErr == nil:
		return nil, fmt.Errorf("interface %s already exists in %s and is not a veth of this server to host interface %s",
			sp.ifname, sp.netns, sp.host)
	default:
		if hostErr == nil {
			// A host end by that name left from an earlier pod: Calico's name is per pod, so it is stale.
			if hostLink.Type() != "veth" || !s.ours(hostLink, "", "") {
				return nil, fmt.Errorf("host interface %s already exists and was not created by this server", sp.host)
			}
			if err := s.host.LinkDel(hostLink); err != nil && !isNotFound(err) {
				return nil, fmt.Errorf("deleting stale host interface %s: %w", sp.host, err)
			}
			s.forget(sp.host)
			s.log.Info("Removed a stale host interface of an earlier pod", zap.String("hostInterface", sp.host))
		}
		if hostIdx, err = s.create(sp, cns, cnl); err != nil {
			return nil, err
		}
	}
	if err := s.configurePod(sp, cns, cnl); err != nil {
		return nil, err
	}
	contLink, err = cnl.LinkByName(sp.ifname)
	if err != nil {
		return nil, fmt.Errorf("reading %s in %s: %w", sp.ifname, sp.netns, err)
	}
	mac := contLink.Attrs().HardwareAddr
	if len(mac) != 6 {
		return nil, fmt.Errorf("%s in %s has no Ethernet MAC (%v)", sp.ifname, sp.netns, mac)
	}
	rec.mac = mac
	hostLink, err = s.host.LinkByIndex(hostIdx)
	if err != nil {
		return nil, fmt.Errorf("reading host interface %s: %w", sp.host, err)
	}
	if hostLink.Attrs().Alias != rec.alias() {
		if err := s.host.LinkSetAlias(hostLink, rec.alias()); err != nil {
			return nil, fmt.Errorf("recording the pod MAC on %s: %w", sp.host, err)
		}
	}
	s.remember(sp.host, rec)
	return mac, nil
}

// ours reports whether a host link was created by this server (for netns/ifname non-empty: for that pod
// interface).
func (s *Server) ours(l netlink.Link, ns, ifname string) bool {
	r, ok := parseAlias(l.Attrs().Alias)
	if !ok || l.Type() != "veth" {
		return false
	}
	return ns == "" || (r.netns == ns && r.ifname == ifname)
}

// create makes the veth pair and configures the host end; it returns the host end's index.
func (s *Server) create(sp *addSpec, cns netns.NsHandle, cnl *netlink.Handle) (int, error) {
	// The alias is set at creation: the pair never exists without its record. The MAC is filled in once the
	// kernel has chosen it (a placeholder until then; Rebuild skips a zero MAC).
	pending := podRecord{netns: sp.netns, ifname: sp.ifname, mac: make(net.HardwareAddr, 6)}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: sp.host, MTU: sp.mtu, Alias: pending.alias()},
		PeerName:      sp.ifname,
		PeerNamespace: netlink.NsFd(int(cns)),
	}
	if err := s.host.LinkAdd(veth); err != nil {
		return 0, fmt.Errorf("creating veth %s (host) / %s (in %s): %w", sp.host, sp.ifname, sp.netns, err)
	}
	cleanup := func() {
		if l, err := s.host.LinkByName(sp.host); err == nil {
			_ = s.host.LinkDel(l)
		}
	}
	host, err := s.host.LinkByName(sp.host)
	if err != nil {
		cleanup()
		return 0, fmt.Errorf("reading the new host interface %s: %w", sp.host, err)
	}
	// The node kernel stays off the host end (the dataplane owns it): no IPv6 (no link-local address, no
	// ND or router solicitations), no ARP answers for the node's own addresses.
	kv := [][2]string{{"net/ipv4/conf/" + sp.host + "/arp_ignore", "8"}}
	if _, err := os.Stat("/proc/sys/net/ipv6"); err == nil {
		kv = append(kv, [2]string{"net/ipv6/conf/" + sp.host + "/disable_ipv6", "1"})
	}
	if err := setSysctls(s.hostNS, kv); err != nil {
		cleanup()
		return 0, fmt.Errorf("host interface %s: %w", sp.host, err)
	}
	if err := s.host.LinkSetUp(host); err != nil {
		cleanup()
		return 0, fmt.Errorf("bringing up %s: %w", sp.host, err)
	}
	return host.Attrs().Index, nil
}

// configurePod sets the pod end's MTU, sysctls, addresses, state and routes (idempotent).
func (s *Server) configurePod(sp *addSpec, cns netns.NsHandle, cnl *netlink.Handle) error {
	link, err := cnl.LinkByName(sp.ifname)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", sp.ifname, sp.netns, err)
	}
	if sp.mtu != 0 && link.Attrs().MTU != sp.mtu {
		if err := cnl.LinkSetMTU(link, sp.mtu); err != nil {
			return fmt.Errorf("%s mtu %d: %w", sp.ifname, sp.mtu, err)
		}
	}
	var kv [][2]string
	if sp.has6 {
		kv = append(kv, [2]string{"net/ipv6/conf/all/disable_ipv6", "0"},
			[2]string{"net/ipv6/conf/" + sp.ifname + "/disable_ipv6", "0"})
	}
	if sp.forwarding {
		kv = append(kv, [2]string{"net/ipv4/ip_forward", "1"})
		if sp.has6 {
			kv = append(kv, [2]string{"net/ipv6/conf/all/forwarding", "1"})
		}
	}
	if len(kv) > 0 {
		if err := setSysctls(cns, kv); err != nil {
			return fmt.Errorf("pod namespace %s: %w", sp.netns, err)
		}
	}
	for _, p := range sp.addrs {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := cnl.AddrReplace(link, a); err != nil {
			return fmt.Errorf("address %s on %s: %w", p, sp.ifname, err)
		}
	}
	if err := cnl.LinkSetUp(link); err != nil {
		return fmt.Errorf("bringing up %s in %s: %w", sp.ifname, sp.netns, err)
	}
	idx := link.Attrs().Index
	for _, r := range sp.routes {
		route := &netlink.Route{LinkIndex: idx, Dst: &net.IPNet{IP: r.Addr().AsSlice(), Mask: net.CIDRMask(r.Bits(), r.Addr().BitLen())}}
		switch {
		case r.Addr().Is4() && sp.has4:
			route.Gw = GatewayV4
			route.Flags = int(netlink.FLAG_ONLINK)
		case r.Addr().Is6() && sp.has6:
			route.Gw = GatewayV6
		default:
			continue // no address of that family: Calico adds no route for it
		}
		if err := cnl.RouteReplace(route); err != nil {
			return fmt.Errorf("route %s via %s in %s: %w", r, route.Gw, sp.netns, err)
		}
	}
	return nil
}

// Del implements cni.CniDataplane.
func (s *Server) Del(_ context.Context, req *proto.DelRequest) (*proto.DelReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	log := s.log.With(zap.String("netns", req.GetNetns()), zap.String("interface", req.GetInterfaceName()))
	removed, err := s.del(req)
	s.opts.Metrics.requests.WithLabelValues("del", result(err)).Inc()
	if err != nil {
		log.Error("CNI del failed", zap.Error(err))
		return &proto.DelReply{Successful: false, ErrorMessage: err.Error()}, nil
	}
	log.Info("CNI del: pod interface removed", zap.Strings("hostInterfaces", removed))
	return &proto.DelReply{Successful: true}, nil
}

func (s *Server) del(req *proto.DelRequest) ([]string, error) {
	ifname, nsPath := req.GetInterfaceName(), req.GetNetns()
	if err := checkIfName("interface_name", ifname); err != nil {
		return nil, err
	}
	if nsPath != "" && !filepath.IsAbs(nsPath) {
		return nil, invalidf("netns %q is not an absolute path", nsPath)
	}
	var removed []string
	// The pod's end, if its namespace still exists (deleting one end of a veth deletes both).
	if nsPath != "" {
		if cns, err := netns.GetFromPath(nsPath); err == nil {
			err := func() error {
				defer cns.Close()
				cnl, err := netlink.NewHandleAt(cns)
				if err != nil {
					return fmt.Errorf("netlink in %s: %w", nsPath, err)
				}
				defer cnl.Close()
				l, err := cnl.LinkByName(ifname)
				if err != nil {
					if isNotFound(err) {
						return nil
					}
					return fmt.Errorf("%s in %s: %w", ifname, nsPath, err)
				}
				if l.Type() != "veth" {
					return fmt.Errorf("%s in %s is a %s, not a veth of this server: not deleted", ifname, nsPath, l.Type())
				}
				if err := cnl.LinkDel(l); err != nil && !isNotFound(err) {
					return fmt.Errorf("deleting %s in %s: %w", ifname, nsPath, err)
				}
				return nil
			}()
			if err != nil {
				return nil, err
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("netns %s: %w", nsPath, err)
		}
	}
	// Host ends recorded for that pod interface (also when its namespace is gone or its path unknown).
	links, err := s.host.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing host interfaces: %w", err)
	}
	present := map[string]bool{}
	for _, l := range links {
		name := l.Attrs().Name
		r, ok := parseAlias(l.Attrs().Alias)
		if !ok || l.Type() != "veth" {
			continue
		}
		if r.ifname == ifname && (nsPath == "" || r.netns == nsPath) {
			if err := s.host.LinkDel(l); err != nil && !isNotFound(err) {
				return nil, fmt.Errorf("deleting host interface %s: %w", name, err)
			}
			continue
		}
		present[name] = true
	}
	// Forget every recorded pod interface whose host end is gone (this one, and any whose namespace died).
	for name := range s.pods {
		if !present[name] {
			removed = append(removed, name)
			s.forget(name)
		}
	}
	return removed, nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

// Listen opens the server's unix socket (unix:///path): its directory is created 0700, a socket left by
// an earlier manager is replaced (any other file is an error), and the socket is made 0600.
func Listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix://")
	if !ok || !filepath.IsAbs(path) {
		return nil, fmt.Errorf("cni listen address %q: want unix:///absolute/path", addr)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cni listen: creating socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("cni listen: %s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("cni listen: removing stale socket: %w", err)
		}
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("cni listen %s: %w", addr, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		lis.Close()
		return nil, fmt.Errorf("cni listen: chmod 0600: %w", err)
	}
	return lis, nil
}
