package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/calico-p4/calico-p4/e2e/matrix"
	"github.com/calico-p4/calico-p4/e2e/probe"
	"github.com/calico-p4/calico-p4/e2e/scenario"
	"github.com/calico-p4/calico-p4/e2e/topology"
)

// Targets of the manager.
const (
	// TargetEmbedded: the softswitch runs inside the manager.
	TargetEmbedded = "embedded"
	// TargetStandalone: a standalone calico-p4-softswitch in the node namespace, programmed by the manager
	// with --target p4rt; the dataplane outlives manager restarts.
	TargetStandalone = "standalone"
)

// Special peer names (see scenario.Expectation.Peers).
const (
	HostPeerPrefix     = "host/"
	ExternalPeerPrefix = "ext/"
)

// DefaultListen are the ports every pod, the host and the external peer answer on: the ports of the
// Kubernetes netpol e2e (80, 81 for TCP, UDP and SCTP) plus the failsafe ports the host-endpoint cases use
// (TCP 22 in, UDP 53 out) and a high range port.
var DefaultListen = probe.Listen{
	TCP:  []int{22, 80, 81, 8080},
	UDP:  []int{53, 80, 81},
	SCTP: []int{80, 81},
}

// Config configures a cluster.
type Config struct {
	Bin Binaries
	// Scenario gives the nodes and every pod of every step (the topology is built once for all of them),
	// and the IP pools the external peer routes to the node.
	Scenario *scenario.Scenario
	// Nodes are the scenario's nodes to run (at most two, joined by an uplink; each gets its own manager
	// and Felix, fed the scenario as seen from that node). Default: the scenario's local node.
	Nodes []string
	// HostPort models each node's host: a host port (--host-interface) and a probe server in the node
	// namespace. Two nodes need it (their addresses are on it).
	HostPort bool
	// External adds a client outside the cluster on the node's uplink (one node; needs HostPort).
	External bool
	// Target is TargetEmbedded (default) or TargetStandalone.
	Target string
	// Listen are the ports probe servers answer on (default DefaultListen).
	Listen *probe.Listen
	// Probe options (default: 1.5 s per attempt, 1 attempt — TCP retransmits its SYN and UDP/ICMP resend
	// within an attempt; all pairs of all cases of a step probed at once).
	Probe matrix.Options
	// Tee receives the processes' output as they write it (nil: kept in memory, see Logs).
	Tee io.Writer
	Log *zap.Logger
	// ManagerLogLevel (default info).
	ManagerLogLevel string
}

// NodeRun is one node of a cluster: its namespace, manager (and standalone softswitch) and Felix.
type NodeRun struct {
	Node    *topology.Node
	Info    scenario.NodeInfo
	Manager *Manager
	Switch  *Softswitch // TargetStandalone only
	Felix   *Felix
	Dir     string
	// Services is the manager's --services-file (the harness is its Kubernetes API).
	Services *ServicesFile
	// managerCfg is how the manager was started (for RestartManager).
	managerCfg ManagerConfig
}

// Cluster is a running set of nodes: topology, managers, Felixes, probe servers. Node, Manager, Switch and
// Felix are the first node's (the only one in a single-node cluster).
type Cluster struct {
	Config  Config
	Topo    *topology.Topology
	Runs    []*NodeRun
	Node    *topology.Node
	Manager *Manager
	Switch  *Softswitch
	Felix   *Felix
	Dir     string
	servers []*probe.Server
	sctp    string // why SCTP is not probed ("" = it is)
}

// Start builds the topology for cfg.Scenario, starts the processes and probe servers. It does not start
// Felix: call Load.
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	if cfg.Scenario == nil {
		return nil, errors.New("harness: no scenario")
	}
	if cfg.External && !cfg.HostPort {
		return nil, errors.New("harness: an external peer needs the host port (the node's addresses are on it)")
	}
	if len(cfg.Nodes) == 0 {
		cfg.Nodes = []string{cfg.Scenario.LocalNodeName()}
	}
	if len(cfg.Nodes) > 1 && (!cfg.HostPort || cfg.External) {
		return nil, errors.New("harness: two nodes need host ports and no external peer (the uplink joins them)")
	}
	if cfg.Target == "" {
		cfg.Target = TargetEmbedded
	}
	if cfg.Listen == nil {
		l := DefaultListen
		cfg.Listen = &l
	}
	if cfg.Probe.Timeout == 0 {
		cfg.Probe.Timeout = 1500 * time.Millisecond
	}
	if cfg.Probe.Attempts == 0 {
		cfg.Probe.Attempts = 1
	}
	if cfg.Probe.Parallelism == 0 {
		cfg.Probe.Parallelism = 128
	}
	if cfg.Probe.Sources == nil {
		// Cases share the dataplane and its connection tracking: no probe may repeat an earlier one's tuple.
		cfg.Probe.Sources = probe.NewSourcePorts()
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	c := &Cluster{Config: cfg}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.Dir, err = os.MkdirTemp("", "cp4e2e"); err != nil {
		return nil, err
	}
	topoCfg, err := c.topologyConfig()
	if err != nil {
		return nil, err
	}
	if c.Topo, err = topology.Create(ctx, topoCfg); err != nil {
		return nil, err
	}
	for i, n := range c.Topo.Nodes {
		c.Runs[i].Node = n
		c.Runs[i].Dir = filepath.Join(c.Dir, n.Spec.Name)
		if err := os.Mkdir(c.Runs[i].Dir, 0o700); err != nil {
			return nil, err
		}
	}
	c.first()
	if err := c.startServers(ctx); err != nil {
		return nil, err
	}
	for i, r := range c.Runs {
		if r.Services, err = newServicesFile(filepath.Join(r.Dir, "services.json")); err != nil {
			return nil, err
		}
		mcfg := ManagerConfig{Bin: cfg.Bin, NetNS: r.Node.Path(), Dir: r.Dir, Tee: cfg.Tee, LogLevel: cfg.ManagerLogLevel,
			HostInterface: r.Node.HostPort, UplinkInterface: r.Node.Uplink, ServicesFile: r.Services.Path}
		if ext := c.Topo.External(); ext != nil {
			mcfg.GatewayMAC = ext.Spec.MAC.String()
		}
		if len(c.Runs) == 2 {
			// Two nodes on one link: each is the other's next hop on the uplink, reached at its host
			// stack's MAC (the peer's pipeline takes the frame from its uplink port).
			mac, err := stackMAC(c.Runs[1-i].Node)
			if err != nil {
				return nil, err
			}
			mcfg.GatewayMAC = mac
		}
		if cfg.Target == TargetStandalone {
			if r.Switch, err = StartSoftswitch(ctx, SoftswitchConfig{Bin: cfg.Bin, NetNS: r.Node.Path(), Dir: r.Dir, Tee: cfg.Tee}); err != nil {
				return nil, err
			}
			// A standalone target's ports are its own business (its --port flags or ctl API), not the manager's.
			for _, name := range c.dataplanePorts(r.Node) {
				if err := r.Switch.Attach(ctx, name); err != nil {
					return nil, fmt.Errorf("attach %s to the softswitch: %w", name, err)
				}
			}
			mcfg.Target, mcfg.P4RTAddr = "p4rt", r.Switch.P4RT
		}
		r.managerCfg = mcfg
		if r.Manager, err = StartManager(ctx, mcfg); err != nil {
			return nil, err
		}
	}
	c.first()
	return c, nil
}

// first points the single-node fields at the first node.
func (c *Cluster) first() {
	if len(c.Runs) == 0 {
		return
	}
	r := c.Runs[0]
	c.Node, c.Manager, c.Switch, c.Felix = r.Node, r.Manager, r.Switch, r.Felix
}

// stackMAC is the MAC of a node's host stack interface.
func stackMAC(n *topology.Node) (string, error) {
	l, err := n.Netlink().LinkByName(topology.HostStackIface)
	if err != nil {
		return "", fmt.Errorf("node %s: %w", n.Spec.Name, err)
	}
	return l.Attrs().HardwareAddr.String(), nil
}

// dataplanePorts are a node's interfaces a dataplane attaches: pods' host ends, the host port, the uplink.
func (c *Cluster) dataplanePorts(n *topology.Node) []string {
	var out []string
	for _, p := range c.Topo.Pods {
		if p.Node == n && p.HostIface != "" {
			out = append(out, p.HostIface)
		}
	}
	for _, name := range []string{n.HostPort, n.Uplink} {
		if name != "" {
			out = append(out, name)
		}
	}
	return out
}

// RestartManager replaces the first node's manager process: stopped with SIGTERM (graceful) or SIGKILL
// (a crash), then a new one with the same flags. Its Felix session dies with it (the driver exits, as with
// a real Felix, which then restarts): call RestartFelix to give the new manager a session.
func (c *Cluster) RestartManager(ctx context.Context, crash bool) error {
	r := c.Runs[0]
	if crash {
		r.Manager.Kill()
	} else {
		_ = r.Manager.Stop(5 * time.Second)
	}
	m, err := StartManager(ctx, r.managerCfg)
	if err != nil {
		return err
	}
	r.Manager = m
	if r.Felix != nil {
		r.Felix.SetManager(m)
	}
	c.first()
	return nil
}

// RestartFelix restarts the first node's Felix with the stream it is replaying, as of the step already
// reached (the same model: a new snapshot of the current state), and waits until the manager applied it.
func (c *Cluster) RestartFelix(ctx context.Context) error {
	s := *c.Felix.Stream().Scenario
	cur, err := s.Flatten(c.Felix.Step())
	if err != nil {
		return err
	}
	st, err := c.compileFor(cur, c.Runs[0].Info.Name)
	if err != nil {
		return err
	}
	return c.Felix.Restart(ctx, st)
}

// P4RT is the address of the first node's P4Runtime target (the embedded one, or the standalone softswitch).
func (c *Cluster) P4RT() string {
	if c.Switch != nil {
		return c.Switch.P4RT
	}
	return c.Manager.P4RT
}

// TargetMetrics scrapes the metrics of the process holding the first node's dataplane (the softswitch's
// write counters).
func (c *Cluster) TargetMetrics(ctx context.Context) (Metrics, error) {
	if c.Switch != nil {
		return c.Switch.HTTP.Scrape(ctx)
	}
	return c.Manager.Scrape(ctx)
}

// topologyConfig derives the topology from the scenario: the nodes to run, every pod of every step on them,
// and the external peer routing the IP pools through the node.
func (c *Cluster) topologyConfig() (topology.Config, error) {
	s := c.Config.Scenario
	steps := len(s.Steps)
	nodes, err := s.Nodes(0)
	if err != nil {
		return topology.Config{}, err
	}
	cfg := topology.Config{Mode: topology.ModeAttach, IfacePrefix: s.IfacePrefix, Log: c.Config.Log, HostPort: c.Config.HostPort}
	running := map[string]bool{}
	for _, name := range c.Config.Nodes {
		info := scenario.NodeInfo{Name: name}
		for _, n := range nodes {
			if n.Name == name {
				info = n
			}
		}
		if c.Config.HostPort && !info.IPv4.IsValid() && !info.IPv6.IsValid() {
			return topology.Config{}, fmt.Errorf("harness: the host port needs node %s's addresses in the scenario", name)
		}
		c.Runs = append(c.Runs, &NodeRun{Info: info})
		cfg.Nodes = append(cfg.Nodes, topology.NodeSpec{Name: name, IPv4: info.IPv4, IPv6: info.IPv6})
		running[name] = true
	}
	seen := map[string]scenario.PodInfo{}
	for i := 0; i <= steps; i++ {
		pods, err := s.Pods(i)
		if err != nil {
			return topology.Config{}, err
		}
		for _, p := range pods {
			if !running[p.Node] {
				continue
			}
			if old, ok := seen[p.Name]; ok {
				if old.IPv4 != p.IPv4 || old.IPv6 != p.IPv6 || old.MAC != p.MAC || old.HostIface != p.HostIface || old.Node != p.Node {
					return topology.Config{}, fmt.Errorf("harness: pod %s changes its node, addresses or interface between steps", p.Name)
				}
				continue
			}
			seen[p.Name] = p
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := seen[n]
		ps := topology.PodSpec{Name: p.Name, Namespace: p.Namespace, Pod: p.Pod, Node: p.Node, IPv4: p.IPv4, IPv6: p.IPv6,
			HostIface: p.HostIface}
		if p.MAC != "" {
			mac, err := parseMAC(p.MAC)
			if err != nil {
				return topology.Config{}, fmt.Errorf("pod %s: %w", p.Name, err)
			}
			ps.MAC = mac
		}
		cfg.Pods = append(cfg.Pods, ps)
	}
	if c.Config.External {
		pools, err := s.Pools(0)
		if err != nil {
			return topology.Config{}, err
		}
		info := c.Runs[0].Info
		cfg.External = &topology.ExternalSpec{Name: "ext", Routes: pools}
		if info.IPv4.IsValid() {
			cfg.External.IPv4 = netip.PrefixFrom(nth(info.IPv4, 1), info.IPv4.Bits())
		}
		if info.IPv6.IsValid() {
			cfg.External.IPv6 = netip.PrefixFrom(nth(info.IPv6, 1), info.IPv6.Bits())
		}
	}
	return cfg, nil
}

// nth returns the n-th address of p's subnet.
func nth(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr()
	for i := 0; i < n; i++ {
		a = a.Next()
	}
	return a
}

func (c *Cluster) startServers(ctx context.Context) error {
	if len(c.Config.Listen.SCTP) > 0 && len(c.Topo.Pods) > 0 {
		if ok, why := probe.SCTPSupported(c.Topo.Pods[0].Path()); !ok {
			c.sctp = why
		}
	}
	serve := func(path, id string) error {
		srv, err := probe.Serve(context.Background(), path, id, *c.Config.Listen)
		if err != nil {
			return fmt.Errorf("probe server %s: %w", id, err)
		}
		c.servers = append(c.servers, srv)
		return nil
	}
	for _, p := range c.Topo.Pods {
		if err := serve(p.Path(), p.Spec.Name); err != nil {
			return err
		}
	}
	if c.Config.HostPort {
		for _, r := range c.Runs {
			if err := serve(r.Node.Path(), HostPeerPrefix+r.Info.Name); err != nil {
				return err
			}
		}
	}
	if ext := c.Topo.External(); ext != nil {
		if err := serve(ext.Path(), c.ExternalPeer()); err != nil {
			return err
		}
	}
	return nil
}

// HostPeer is the name of the first node's host probe peer ("host/<node>").
func (c *Cluster) HostPeer() string { return HostPeerPrefix + c.Runs[0].Info.Name }

// ExternalPeer is the name of the external peer ("ext/<name>").
func (c *Cluster) ExternalPeer() string {
	if ext := c.Topo.External(); ext != nil {
		return ExternalPeerPrefix + ext.Spec.Name
	}
	return ""
}

// Compile compiles a scenario for the first node with the MACs the topology's pods really have.
func (c *Cluster) Compile(s *scenario.Scenario) (*scenario.Stream, error) {
	return c.compileFor(s, c.Runs[0].Info.Name)
}

// compileFor compiles the scenario as Felix on node sees it.
func (c *Cluster) compileFor(s *scenario.Scenario, node string) (*scenario.Stream, error) {
	local := *s
	local.LocalNode = node
	local.DefaultMAC = func(ns, pod string) string { return topology.PodMAC(ns + "/" + pod).String() }
	if err := c.checkPods(&local); err != nil {
		return nil, err
	}
	return scenario.Compile(&local)
}

// checkPods refuses a scenario whose pods on the running nodes the topology does not have (with the same
// node, addresses and interface).
func (c *Cluster) checkPods(s *scenario.Scenario) error {
	for i := 0; i <= len(s.Steps); i++ {
		pods, err := s.Pods(i)
		if err != nil {
			return err
		}
		for _, p := range pods {
			if c.run(p.Node) == nil {
				continue
			}
			tp := c.Topo.Pod(p.Name)
			if tp == nil || tp.Node.Spec.Name != p.Node || tp.Spec.IPv4 != p.IPv4 || tp.Spec.IPv6 != p.IPv6 || tp.HostIface != p.HostIface {
				return fmt.Errorf("scenario %s: pod %s is not in this cluster's topology (or differs)", s.Name, p.Name)
			}
		}
	}
	return nil
}

// run returns the node run of a node name, or nil.
func (c *Cluster) run(name string) *NodeRun {
	for _, r := range c.Runs {
		if r.Info.Name == name {
			return r
		}
	}
	return nil
}

// Load starts Felix on every node with the scenario (or restarts it: a new driver, a new session), writes
// the scenario's Services and EndpointSlices for the managers' watches, and waits until each node's
// snapshot and services are applied.
func (c *Cluster) Load(ctx context.Context, s *scenario.Scenario) (*scenario.Stream, error) {
	revs, err := c.writeServices(s, 0)
	if err != nil {
		return nil, err
	}
	var first *scenario.Stream
	for _, r := range c.Runs {
		st, err := c.compileFor(s, r.Info.Name)
		if err != nil {
			return nil, err
		}
		if first == nil {
			first = st
		}
		if r.Felix == nil {
			r.Felix, err = StartFelix(ctx, c.Config.Bin, r.Manager, st, c.Config.Tee)
		} else {
			err = r.Felix.Restart(ctx, st)
		}
		if err != nil {
			return nil, fmt.Errorf("scenario %s: node %s: snapshot: %w", s.Name, r.Info.Name, err)
		}
	}
	c.first()
	if err := c.waitServices(ctx, revs); err != nil {
		return nil, fmt.Errorf("scenario %s: snapshot: %w", s.Name, err)
	}
	return first, nil
}

// NextStep sends the next step to every node's Felix and its Services and EndpointSlices to every
// manager's watch, and waits until each manager has applied both.
func (c *Cluster) NextStep(ctx context.Context) (string, error) {
	revs, err := c.writeServices(c.Felix.Stream().Scenario, c.Felix.Step()+1)
	if err != nil {
		return "", err
	}
	var title string
	for _, r := range c.Runs {
		t, err := r.Felix.NextStep(ctx)
		if err != nil {
			return "", fmt.Errorf("node %s: %w", r.Info.Name, err)
		}
		title = t
	}
	if err := c.waitServices(ctx, revs); err != nil {
		return "", fmt.Errorf("step %q: %w", title, err)
	}
	return title, nil
}

// Peers returns the probe peers for a step of the loaded stream: its pods on the running nodes, then the
// hosts and the external peer when modelled.
func (c *Cluster) Peers(step int) ([]matrix.Peer, []bool, error) {
	pods, err := c.Felix.Stream().Scenario.Pods(step)
	if err != nil {
		return nil, nil, err
	}
	var peers []matrix.Peer
	var special []bool
	for _, p := range pods {
		tp := c.Topo.Pod(p.Name)
		if tp == nil {
			continue // on a node that is not running
		}
		peers = append(peers, matrix.Peer{Name: p.Name, NetNS: tp.Path(), IPv4: p.IPv4, IPv6: p.IPv6})
		special = append(special, false)
	}
	if c.Config.HostPort {
		for _, r := range c.Runs {
			peers = append(peers, matrix.Peer{Name: HostPeerPrefix + r.Info.Name, NetNS: r.Node.Path(),
				IPv4: r.Info.IPv4.Addr(), IPv6: r.Info.IPv6.Addr()})
			special = append(special, true)
		}
	}
	if ext := c.Topo.External(); ext != nil {
		peers = append(peers, matrix.Peer{Name: c.ExternalPeer(), NetNS: ext.Path(), IPv4: ext.Spec.IPv4.Addr(), IPv6: ext.Spec.IPv6.Addr()})
		special = append(special, true)
	}
	return peers, special, nil
}

// Close stops every process and removes the topology (also after a partial Start).
func (c *Cluster) Close() error {
	var errs []error
	for _, r := range c.Runs {
		if r.Felix != nil {
			_ = r.Felix.Stop()
		}
	}
	for _, s := range c.servers {
		s.Close()
	}
	c.servers = nil
	for _, r := range c.Runs {
		if r.Manager != nil {
			_ = r.Manager.Stop(5 * time.Second)
		}
		if r.Switch != nil {
			_ = r.Switch.Stop(5 * time.Second)
		}
	}
	if c.Topo != nil {
		if err := c.Topo.Close(); err != nil {
			errs = append(errs, err)
		}
		c.Topo = nil
	}
	if c.Dir != "" {
		_ = os.RemoveAll(c.Dir)
		c.Dir = ""
	}
	return errors.Join(errs...)
}

// Logs returns the processes' output (for a failing test).
func (c *Cluster) Logs() string {
	var s string
	for _, r := range c.Runs {
		if r.Manager != nil {
			s += "==== calico-p4-manager (" + r.Info.Name + ")\n" + tail(r.Manager.Log(), 20000) + "\n"
		}
		if r.Switch != nil {
			s += "==== calico-p4-softswitch (" + r.Info.Name + ")\n" + tail(r.Switch.Log(), 8000) + "\n"
		}
		if r.Felix != nil {
			s += "==== calico-p4-driver (" + r.Info.Name + ")\n" + tail(r.Felix.Log(), 4000) + "\n"
		}
	}
	return s
}
