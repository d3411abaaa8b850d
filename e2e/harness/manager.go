package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// ManagerConfig configures a calico-p4-manager process.
type ManagerConfig struct {
	Bin Binaries
	// NetNS is the namespace the manager runs in (the node's: it attaches interfaces by name there).
	NetNS string
	// Dir holds its sockets and address file (short: unix socket paths are limited to 108 bytes).
	Dir string
	// Target is "embedded" (default) or "p4rt" (then P4RTAddr is the standalone softswitch).
	Target   string
	P4RTAddr string
	// HostInterface, UplinkInterface and GatewayMAC are the node's ports (flags of the same names).
	HostInterface, UplinkInterface, GatewayMAC string
	// ElectionID (default 1); a replacing manager needs one at least as high.
	ElectionID uint64
	LogLevel   string // default info
	// ServicesFile is the manager's --services-file (the Kubernetes Services and EndpointSlices it
	// watches); "" = --kubeconfig none.
	ServicesFile string
	Extra        []string
	// Tee, if set, receives the manager's output as it is written.
	Tee io.Writer
}

// Manager is a running calico-p4-manager.
type Manager struct {
	*Process
	Config ManagerConfig
	// Listen is the infrastructure API (CALICO_P4_MANAGER for the driver).
	Listen string
	// CNI is the manager's CNI gRPC dataplane server (the CNI network config's dataplane_options.socket);
	// pod interfaces it creates go to the manager's namespace (the node's).
	CNI string
	// P4RT is the embedded target's P4Runtime address (unix://…); "" for --target p4rt.
	P4RT string
	// MetricsAddr is where /metrics, /readyz and the embedded ctl API listen, inside NetNS.
	MetricsAddr string
	// HTTP reaches MetricsAddr (from inside NetNS).
	HTTP *HTTPClient
}

// StartManager starts the manager and waits until it serves.
func StartManager(ctx context.Context, cfg ManagerConfig) (*Manager, error) {
	if cfg.Target == "" {
		cfg.Target = "embedded"
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "info"
	}
	if cfg.ElectionID == 0 {
		cfg.ElectionID = 1
	}
	addrFile := filepath.Join(cfg.Dir, "manager-addr.json")
	_ = os.Remove(addrFile)
	m := &Manager{Config: cfg, Listen: "unix://" + filepath.Join(cfg.Dir, "felix.sock"),
		CNI: "unix://" + filepath.Join(cfg.Dir, "cni.sock")}
	args := []string{"--listen", m.Listen, "--cni-listen", m.CNI, "--metrics-listen", "127.0.0.1:0", "--addr-file", addrFile,
		"--log-format", "console", "--log-level", cfg.LogLevel, "--target", cfg.Target,
		"--election-id", strconv.FormatUint(cfg.ElectionID, 10)}
	switch cfg.Target {
	case "embedded":
		sock := filepath.Join(cfg.Dir, "p4rt.sock")
		_ = os.Remove(sock)
		m.P4RT = "unix://" + sock
		args = append(args, "--p4rt-listen", m.P4RT)
	case "p4rt":
		args = append(args, "--p4rt-addr", cfg.P4RTAddr)
	default:
		return nil, fmt.Errorf("manager target %q: want embedded or p4rt", cfg.Target)
	}
	if cfg.HostInterface != "" {
		args = append(args, "--host-interface", cfg.HostInterface)
	}
	if cfg.UplinkInterface != "" {
		args = append(args, "--uplink-interface", cfg.UplinkInterface)
	}
	if cfg.GatewayMAC != "" {
		args = append(args, "--gateway-mac", cfg.GatewayMAC)
	}
	if cfg.ServicesFile != "" {
		args = append(args, "--services-file", cfg.ServicesFile)
	} else {
		args = append(args, "--kubeconfig", "none")
	}
	args = append(args, cfg.Extra...)
	p, err := startIn(cfg.NetNS, "calico-p4-manager", cfg.Bin.Path(ManagerBin), args, cfg.Tee)
	if err != nil {
		return nil, err
	}
	m.Process = p
	var addrs struct{ Listen, Metrics string }
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.waitFile(wctx, addrFile, &addrs); err != nil {
		p.Kill()
		return nil, err
	}
	m.MetricsAddr = addrs.Metrics
	m.HTTP = NewHTTPClient(cfg.NetNS, m.MetricsAddr)
	if m.P4RT != "" {
		if err := p.waitSocket(wctx, m.P4RT[len("unix://"):]); err != nil {
			p.Kill()
			return nil, err
		}
	}
	return m, nil
}

// Scrape reads the manager's metrics.
func (m *Manager) Scrape(ctx context.Context) (Metrics, error) { return m.HTTP.Scrape(ctx) }

// Applied names the metrics the harness waits on.
const (
	metricSessions   = "calico_p4_sessions_total"
	metricAppliedSeq = "calico_p4_felix_applied_sequence_number"
)

// Sessions is the number of Felix sessions this manager has started.
func (m *Manager) Sessions(ctx context.Context) (float64, error) {
	mt, err := m.Scrape(ctx)
	if err != nil {
		return 0, err
	}
	return mt.Sum(metricSessions), nil
}

// WaitApplied waits until the manager has started at least sessions sessions and the current one's
// dataplane reflects every message up to seq. It fails early if the manager or the driver (alive, if
// set) exits.
func (m *Manager) WaitApplied(ctx context.Context, sessions float64, seq uint64, alive func() error) error {
	var last Metrics
	// A scrape gathers metrics concurrently, so within one scrape the applied sequence number may still be
	// the replaced session's while the session count is already the new one's. The session resets the
	// gauge before counting itself, so only scrapes after the one that saw the session count are trusted.
	sawSession := false
	for {
		mt, err := m.Scrape(ctx)
		if err == nil {
			last = mt
			if sawSession && mt.Sum(metricAppliedSeq) >= float64(seq) {
				return nil
			}
			sawSession = mt.Sum(metricSessions) >= sessions
		}
		if !m.Alive() {
			return fmt.Errorf("manager exited: %v\n%s", m.err, tail(m.Log(), 6000))
		}
		if alive != nil {
			if err := alive(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			got := -2.0
			if last != nil {
				got = last.Sum(metricAppliedSeq)
			}
			return fmt.Errorf("waiting for the manager to apply through seq %d (session %v; applied %v): %w\nmanager log:\n%s",
				seq, sessions, got, ctx.Err(), tail(m.Log(), 6000))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SoftswitchConfig configures a standalone calico-p4-softswitch.
type SoftswitchConfig struct {
	Bin   Binaries
	NetNS string // the namespace it runs in (ports named without @netns are opened there)
	Dir   string
	// Ports to attach at start ("name" or "name@netns"); more can be attached through the ctl API.
	Ports []string
	Tee   io.Writer
}

// Softswitch is a running standalone softswitch.
type Softswitch struct {
	*Process
	P4RT string // unix://…
	Ctl  *HTTPClient
	// HTTP serves its /metrics and /debug.
	HTTP *HTTPClient
	// CtlAddr is the ctl API address (unix://…), for calico-p4ctl --ctl.
	CtlAddr string
}

// StartSoftswitch starts a standalone softswitch and waits until it serves P4Runtime and its ctl API.
func StartSoftswitch(ctx context.Context, cfg SoftswitchConfig) (*Softswitch, error) {
	p4rt := filepath.Join(cfg.Dir, "sw-p4rt.sock")
	ctl := filepath.Join(cfg.Dir, "sw-ctl.sock")
	metrics := filepath.Join(cfg.Dir, "sw-metrics.sock")
	for _, f := range []string{p4rt, ctl, metrics} {
		_ = os.Remove(f)
	}
	args := []string{"--p4rt-listen", "unix://" + p4rt, "--ctl-listen", "unix://" + ctl, "--metrics-listen", "unix://" + metrics}
	for _, p := range cfg.Ports {
		args = append(args, "--port", p)
	}
	p, err := startIn(cfg.NetNS, "calico-p4-softswitch", cfg.Bin.Path(SoftswitchBin), args, cfg.Tee)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, s := range []string{p4rt, ctl, metrics} {
		if err := p.waitSocket(wctx, s); err != nil {
			p.Kill()
			return nil, err
		}
	}
	return &Softswitch{Process: p, P4RT: "unix://" + p4rt, Ctl: NewHTTPClient("", "unix://"+ctl), CtlAddr: "unix://" + ctl,
		HTTP: NewHTTPClient("", "unix://"+metrics)}, nil
}

// Attach attaches an interface (in the softswitch's namespace) as a port through the ctl API.
func (s *Softswitch) Attach(ctx context.Context, name string) error {
	_, err := s.Ctl.Do(ctx, "POST", "/v1/ports", map[string]string{"name": name})
	return err
}
