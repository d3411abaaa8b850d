package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
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
	// Scenario gives the node and every pod of every step (the topology is built once for all of them),
	// and the IP pools the external peer routes to the node.
	Scenario *scenario.Scenario
	// HostPort models the host: a host port (--host-interface) and a probe server in the node namespace.
	HostPort bool
	// External adds a client outside the cluster on the node's uplink (needs HostPort).
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

// Cluster is a running node: topology, manager (and standalone softswitch), Felix, probe servers.
type Cluster struct {
	Config   Config
	Topo     *topology.Topology
	Node     *topology.Node
	Manager  *Manager
	Switch   *Softswitch // TargetStandalone only
	Felix    *Felix
	Dir      string
	nodeInfo scenario.NodeInfo
	// managerCfg is how the manager was started (for RestartManager).
	managerCfg ManagerConfig
	servers    []*probe.Server
	sctp       string // why SCTP is not probed ("" = it is)
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
	c.Node = c.Topo.Nodes[0]
	if err := c.startServers(ctx); err != nil {
		return nil, err
	}
	mcfg := ManagerConfig{Bin: cfg.Bin, NetNS: c.Node.Path(), Dir: c.Dir, Tee: cfg.Tee, LogLevel: cfg.ManagerLogLevel,
		HostInterface: c.Node.HostPort, UplinkInterface: c.Node.Uplink}
	if ext := c.Topo.External(); ext != nil {
		mcfg.GatewayMAC = ext.Spec.MAC.String()
	}
	if cfg.Target == TargetStandalone {
		if c.Switch, err = StartSoftswitch(ctx, SoftswitchConfig{Bin: cfg.Bin, NetNS: c.Node.Path(), Dir: c.Dir, Tee: cfg.Tee}); err != nil {
			return nil, err
		}
		// A standalone target's ports are its own business (its --port flags or ctl API), not the manager's.
		for _, name := range c.dataplanePorts() {
			if err := c.Switch.Attach(ctx, name); err != nil {
				return nil, fmt.Errorf("attach %s to the softswitch: %w", name, err)
			}
		}
		mcfg.Target, mcfg.P4RTAddr = "p4rt", c.Switch.P4RT
	}
	c.managerCfg = mcfg
	if c.Manager, err = StartManager(ctx, mcfg); err != nil {
		return nil, err
	}
	return c, nil
}

// dataplanePorts are the node's interfaces a dataplane attaches: pods' host ends, the host port, the uplink.
func (c *Cluster) dataplanePorts() []string {
	var out []string
	for _, p := range c.Topo.Pods {
		if p.Node == c.Node && p.HostIface != "" {
			out = append(out, p.HostIface)
		}
	}
	for _, n := range []string{c.Node.HostPort, c.Node.Uplink} {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// RestartManager replaces the manager process: stopped with SIGTERM (graceful) or SIGKILL (a crash), then
// a new one with the same flags. Its Felix session dies with it (the driver exits, as with a real Felix,
// which then restarts): call Felix.Restart (Load does) to give the new manager a session.
func (c *Cluster) RestartManager(ctx context.Context, crash bool) error {
	if crash {
		c.Manager.Kill()
	} else {
		_ = c.Manager.Stop(5 * time.Second)
	}
	m, err := StartManager(ctx, c.managerCfg)
	if err != nil {
		return err
	}
	c.Manager = m
	if c.Felix != nil {
		c.Felix.SetManager(m)
	}
	return nil
}

// RestartFelix restarts Felix with the stream it is replaying, replayed up to the step already reached
// (the same model: a new snapshot of the current state), and waits until the manager has applied it.
func (c *Cluster) RestartFelix(ctx context.Context) error {
	s := *c.Felix.Stream().Scenario
	step := c.Felix.Step()
	// The current state as a snapshot: the scenario's resources plus every step applied so far.
	cur, err := s.Flatten(step)
	if err != nil {
		return err
	}
	st, err := c.Compile(cur)
	if err != nil {
		return err
	}
	return c.Felix.Restart(ctx, st)
}

// P4RT is the address of the target's P4Runtime server (the embedded one, or the standalone softswitch).
func (c *Cluster) P4RT() string {
	if c.Switch != nil {
		return c.Switch.P4RT
	}
	return c.Manager.P4RT
}

// TargetMetrics scrapes the metrics of the process holding the dataplane (the softswitch's write counters).
func (c *Cluster) TargetMetrics(ctx context.Context) (Metrics, error) {
	if c.Switch != nil {
		return c.Switch.HTTP.Scrape(ctx)
	}
	return c.Manager.Scrape(ctx)
}

// topologyConfig derives the topology from the scenario: its local node, every pod of every step, and
// the external peer routing the IP pools through the node.
func (c *Cluster) topologyConfig() (topology.Config, error) {
	s := c.Config.Scenario
	steps := len(s.Steps)
	local := s.LocalNodeName()
	nodes, err := s.Nodes(0)
	if err != nil {
		return topology.Config{}, err
	}
	c.nodeInfo = scenario.NodeInfo{Name: local}
	for _, n := range nodes {
		if n.Name == local {
			c.nodeInfo = n
		}
	}
	if c.Config.HostPort && !c.nodeInfo.IPv4.IsValid() && !c.nodeInfo.IPv6.IsValid() {
		return topology.Config{}, fmt.Errorf("harness: the host port needs node %s's addresses in the scenario", local)
	}
	cfg := topology.Config{Mode: topology.ModeAttach, IfacePrefix: s.IfacePrefix, Log: c.Config.Log, HostPort: c.Config.HostPort,
		Nodes: []topology.NodeSpec{{Name: local, IPv4: c.nodeInfo.IPv4, IPv6: c.nodeInfo.IPv6}}}
	seen := map[string]scenario.PodInfo{}
	for i := 0; i <= steps; i++ {
		pods, err := s.Pods(i)
		if err != nil {
			return topology.Config{}, err
		}
		for _, p := range pods {
			if p.Node != local {
				continue
			}
			if old, ok := seen[p.Name]; ok {
				if old.IPv4 != p.IPv4 || old.IPv6 != p.IPv6 || old.MAC != p.MAC || old.HostIface != p.HostIface {
					return topology.Config{}, fmt.Errorf("harness: pod %s changes its addresses or interface between steps", p.Name)
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
		ps := topology.PodSpec{Name: p.Name, Namespace: p.Namespace, Pod: p.Pod, IPv4: p.IPv4, IPv6: p.IPv6, HostIface: p.HostIface}
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
		cfg.External = &topology.ExternalSpec{Name: "ext", Routes: pools}
		if c.nodeInfo.IPv4.IsValid() {
			cfg.External.IPv4 = netip.PrefixFrom(nth(c.nodeInfo.IPv4, 1), c.nodeInfo.IPv4.Bits())
		}
		if c.nodeInfo.IPv6.IsValid() {
			cfg.External.IPv6 = netip.PrefixFrom(nth(c.nodeInfo.IPv6, 1), c.nodeInfo.IPv6.Bits())
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
		if err := serve(c.Node.Path(), c.HostPeer()); err != nil {
			return err
		}
	}
	if ext := c.Topo.External(); ext != nil {
		if err := serve(ext.Path(), c.ExternalPeer()); err != nil {
			return err
		}
	}
	return nil
}

// HostPeer is the name of the host's probe peer ("host/<node>").
func (c *Cluster) HostPeer() string { return HostPeerPrefix + c.Node.Spec.Name }

// ExternalPeer is the name of the external peer ("ext/<name>").
func (c *Cluster) ExternalPeer() string {
	if ext := c.Topo.External(); ext != nil {
		return ExternalPeerPrefix + ext.Spec.Name
	}
	return ""
}

// Compile compiles a scenario with the MACs the topology's pods really have.
func (c *Cluster) Compile(s *scenario.Scenario) (*scenario.Stream, error) {
	s.DefaultMAC = func(ns, pod string) string { return topology.PodMAC(ns + "/" + pod).String() }
	if err := c.checkPods(s); err != nil {
		return nil, err
	}
	return scenario.Compile(s)
}

// checkPods refuses a scenario whose local pods the topology does not have (with the same addresses).
func (c *Cluster) checkPods(s *scenario.Scenario) error {
	for i := 0; i <= len(s.Steps); i++ {
		pods, err := s.Pods(i)
		if err != nil {
			return err
		}
		for _, p := range pods {
			if p.Node != c.Node.Spec.Name {
				continue
			}
			tp := c.Topo.Pod(p.Name)
			if tp == nil || tp.Spec.IPv4 != p.IPv4 || tp.Spec.IPv6 != p.IPv6 || tp.HostIface != p.HostIface {
				return fmt.Errorf("scenario %s: pod %s is not in this cluster's topology (or differs)", s.Name, p.Name)
			}
		}
	}
	return nil
}

// Load starts Felix on the scenario (or restarts it with the scenario: a new driver, a new session) and
// waits until the snapshot is applied.
func (c *Cluster) Load(ctx context.Context, s *scenario.Scenario) (*scenario.Stream, error) {
	st, err := c.Compile(s)
	if err != nil {
		return nil, err
	}
	if c.Felix == nil {
		c.Felix, err = StartFelix(ctx, c.Config.Bin, c.Manager, st, c.Config.Tee)
	} else {
		err = c.Felix.Restart(ctx, st)
	}
	if err != nil {
		return nil, fmt.Errorf("scenario %s: snapshot: %w", s.Name, err)
	}
	return st, nil
}

// Peers returns the probe peers for a step of the loaded stream: its pods, then the host and the
// external peer when modelled.
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
			continue // on another node
		}
		peers = append(peers, matrix.Peer{Name: p.Name, NetNS: tp.Path(), IPv4: p.IPv4, IPv6: p.IPv6})
		special = append(special, false)
	}
	if c.Config.HostPort {
		peers = append(peers, matrix.Peer{Name: c.HostPeer(), NetNS: c.Node.Path(), IPv4: c.nodeInfo.IPv4.Addr(), IPv6: c.nodeInfo.IPv6.Addr()})
		special = append(special, true)
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
	if c.Felix != nil {
		_ = c.Felix.Stop()
	}
	for _, s := range c.servers {
		s.Close()
	}
	c.servers = nil
	if c.Manager != nil {
		_ = c.Manager.Stop(5 * time.Second)
	}
	if c.Switch != nil {
		_ = c.Switch.Stop(5 * time.Second)
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
	if c.Manager != nil {
		s += "==== calico-p4-manager\n" + tail(c.Manager.Log(), 20000) + "\n"
	}
	if c.Switch != nil {
		s += "==== calico-p4-softswitch\n" + tail(c.Switch.Log(), 8000) + "\n"
	}
	if c.Felix != nil {
		s += "==== calico-p4-driver\n" + tail(c.Felix.Log(), 4000) + "\n"
	}
	return s
}
