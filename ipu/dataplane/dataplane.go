package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/driver/session"
	"github.com/calico-p4/calico-p4/ipu/p4rt"
	"github.com/calico-p4/calico-p4/ipu/programmer"
	"github.com/calico-p4/calico-p4/ipu/softswitch/embedded"
	"github.com/calico-p4/calico-p4/ipu/softswitch/ports"
	"github.com/calico-p4/calico-p4/p4src"
	"github.com/calico-p4/calico-p4/translator"
)

// Targets the manager can program.
const (
	// TargetEmbedded runs the softswitch in the manager's process and serves its P4Runtime on
	// Config.P4RTListen.
	TargetEmbedded = "embedded"
	// TargetP4RT programs a P4Runtime server elsewhere (a standalone calico-p4-softswitch, infrap4d, an IPU).
	TargetP4RT = "p4rt"
)

// Config configures the apply stage.
type Config struct {
	// Target is TargetEmbedded or TargetP4RT.
	Target string
	// P4RTAddress is the target's P4Runtime address (TargetP4RT).
	P4RTAddress string
	// P4RTListen is where the embedded softswitch serves P4Runtime ("127.0.0.1:9559", "unix:///path").
	P4RTListen string
	// Profile of the target (TargetP4RT; the embedded target is always p4rt.ProfileEmbedded).
	Profile p4rt.TargetProfile
	// DeviceID is the P4Runtime device id (default 1).
	DeviceID uint64
	// ElectionID of this manager (default 1). A restarted manager must use an id at least as high as the
	// one it replaces.
	ElectionID uint64
	// TLS to a TargetP4RT target (nil: plaintext).
	TLS *p4rt.TLSConfig
	// DeviceConfigPath is the target's device config (p4-dpdk: the .pb.bin; ipu-es2k: the vendor's).
	DeviceConfigPath string
	// BatchSize of Write RPCs (default 1000).
	BatchSize int
	// Node is this node's ports and underlay for the translator.
	Node translator.Node
	// Ports resolves interface names to port ids (default ports.IDForName, the embedded target's scheme).
	Ports translator.PortResolver
	// Pollers is the number of receive threads of the embedded target (0: its default).
	Pollers int

	Logger   *zap.Logger
	Registry prometheus.Registerer
}

// Dataplane is the apply stage. Apply calls are serialised by the session.
type Dataplane struct {
	cfg  Config
	log  *zap.Logger
	tr   *translator.Translator
	prog *programmer.Programmer
	emb  *embedded.Softswitch // nil unless TargetEmbedded
	// p4rtAddress is the target's P4Runtime address (for the embedded target, where it listens).
	p4rtAddress string
	m           *metrics

	runCancel context.CancelFunc
	wg        sync.WaitGroup

	// attached are the interfaces the embedded target has attached on our behalf.
	attached map[string]bool
	// reported are the unsupported features and warnings of the last report, already logged.
	reported map[string]bool
}

// New starts the apply stage: for the embedded target the softswitch and its P4Runtime listener, then the
// programmer (dialled over P4Runtime, running in the background). Nothing is written to the target before
// the first Apply, so a restarted manager cannot remove state it has not been told about yet.
func New(ctx context.Context, cfg Config) (*Dataplane, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.DeviceID == 0 {
		cfg.DeviceID = 1
	}
	if cfg.ElectionID == 0 {
		cfg.ElectionID = 1
	}
	if cfg.Ports == nil {
		cfg.Ports = translator.PortFunc(func(name string) (uint32, error) { return ports.IDForName(name), nil })
	}
	d := &Dataplane{cfg: cfg, log: cfg.Logger, m: newMetrics(cfg.Registry), attached: map[string]bool{},
		reported: map[string]bool{}}
	address, profile := cfg.P4RTAddress, cfg.Profile
	switch cfg.Target {
	case TargetEmbedded:
		addr, err := d.startEmbedded(ctx)
		if err != nil {
			return nil, err
		}
		address, profile = addr, p4rt.ProfileEmbedded
	case TargetP4RT:
		if address == "" {
			return nil, errors.New("dataplane: target p4rt needs a P4Runtime address")
		}
	default:
		return nil, fmt.Errorf("dataplane: unknown target %q (want %s or %s)", cfg.Target, TargetEmbedded, TargetP4RT)
	}
	info, err := p4src.P4Info()
	if err != nil {
		d.Close()
		return nil, err
	}
	unmanaged := make([]string, len(p4src.LearnerTables))
	for i, t := range p4src.LearnerTables {
		unmanaged[i] = string(t)
	}
	d.prog, err = programmer.Open(ctx, programmer.Options{Address: address, Profile: profile, DeviceID: cfg.DeviceID,
		ElectionID: p4rt.Uint128{Low: cfg.ElectionID}, TLS: cfg.TLS, P4Info: info, DeviceConfigPath: cfg.DeviceConfigPath,
		BatchSize: cfg.BatchSize, UnmanagedTables: unmanaged, TableOrder: p4src.WriteOrderNames(),
		Logger: cfg.Logger, Registry: cfg.Registry})
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("dataplane: programmer for %s: %w", address, err)
	}
	d.p4rtAddress = address
	runCtx, cancel := context.WithCancel(context.Background())
	d.runCancel = cancel
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.prog.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error("programmer stopped", zap.Error(err))
		}
	}()
	d.tr = translator.New(cfg.Ports, translator.Options{Node: cfg.Node})
	if d.emb != nil {
		// The in-process target has no other controller: wait until we are its primary and it runs k8s.p4,
		// so the session's first apply does not fail with "not primary". (A remote target may rightly have
		// another primary; Apply then fails and the session retries.)
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := d.prog.WaitReady(wctx); err != nil {
			d.Close()
			return nil, fmt.Errorf("dataplane: embedded target not ready: %w", err)
		}
	}
	return d, nil
}

// startEmbedded starts the in-process softswitch and serves its P4Runtime; it returns the address the
// programmer dials.
func (d *Dataplane) startEmbedded(ctx context.Context) (string, error) {
	lis, addr, err := listenP4RT(d.cfg.P4RTListen)
	if err != nil {
		return "", err
	}
	emb, err := embedded.New(ctx, embedded.Config{DeviceID: d.cfg.DeviceID, Pollers: d.cfg.Pollers,
		Logger: d.log.Named("softswitch"), Registry: d.cfg.Registry})
	if err != nil {
		lis.Close()
		return "", fmt.Errorf("dataplane: embedded softswitch: %w", err)
	}
	d.emb = emb
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := emb.Serve(lis); err != nil {
			d.log.Error("embedded P4Runtime server stopped", zap.Error(err))
		}
	}()
	d.log.Info("embedded softswitch serving P4Runtime", zap.String("address", addr))
	return addr, nil
}

// listenP4RT listens on "host:port" or "unix:///path" and returns the address to dial.
func listenP4RT(address string) (net.Listener, string, error) {
	if address == "" {
		address = "127.0.0.1:9559"
	}
	if path, ok := cutPrefix(address, "unix://"); ok {
		lis, err := net.Listen("unix", path)
		if err != nil {
			return nil, "", fmt.Errorf("dataplane: P4Runtime listener %s: %w", address, err)
		}
		return lis, address, nil
	}
	lis, err := net.Listen("tcp", address)
	if err != nil {
		return nil, "", fmt.Errorf("dataplane: P4Runtime listener %s: %w", address, err)
	}
	return lis, lis.Addr().String(), nil
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return s, false
}

// Apply implements session.Applier: translate what changed, attach the interfaces the desired state names
// (embedded target), then make the target equal to the entries. Endpoints the translator could not
// program are returned as *session.EndpointErrors.
func (d *Dataplane) Apply(ctx context.Context, desired *model.State, changes model.Changes) error {
	res := d.tr.Apply(desired, changes)
	d.report(&res.Report)
	if d.emb != nil {
		d.syncPorts(ctx, desired)
	}
	out, err := d.prog.Sync(ctx, res.Entries)
	d.m.observeSync(out, err)
	if err != nil {
		return fmt.Errorf("dataplane: sync: %w", err)
	}
	if len(res.Report.Workloads) > 0 || len(res.Report.Hosts) > 0 {
		return &session.EndpointErrors{Workloads: res.Report.Workloads, Hosts: res.Report.Hosts}
	}
	return nil
}

// report logs each unsupported feature (once per owner) and each warning once, for as long as it persists
// (one that goes away and comes back is logged again), and keeps the gauges current.
func (d *Dataplane) report(r *translator.Report) {
	byFeature := map[translator.Feature]int{}
	seen := map[string]bool{}
	for _, u := range r.Unsupported {
		byFeature[u.Feature]++
		key := u.Owner + "\x00" + string(u.Feature) + "\x00" + u.Detail
		seen[key] = true
		if !d.reported[key] {
			d.log.Warn("Calico feature not enforceable by the P4 pipeline", zap.String("owner", u.Owner),
				zap.String("feature", string(u.Feature)), zap.String("detail", u.Detail), zap.String("rendering", u.Rendering))
		}
	}
	for _, w := range r.Warnings {
		key := "warning\x00" + w
		seen[key] = true
		if !d.reported[key] {
			d.log.Warn("translation warning", zap.String("warning", w))
		}
	}
	d.reported = seen
	d.m.setUnsupported(byFeature)
	d.m.warnings.Set(float64(len(r.Warnings)))
}

// syncPorts attaches the interfaces of the desired workload endpoints and of the node (host and uplink
// ports), and detaches the workload interfaces that are gone. An interface that does not exist yet stays
// pending in the softswitch and is opened when it appears.
func (d *Dataplane) syncPorts(ctx context.Context, desired *model.State) {
	want := map[string]bool{}
	for _, ep := range desired.WorkloadEndpoints.All() {
		if ep.InterfaceName != "" {
			want[ep.InterfaceName] = true
		}
	}
	for _, name := range []string{d.cfg.Node.HostInterface, d.cfg.Node.UplinkInterface} {
		if name != "" {
			want[name] = true
		}
	}
	for name := range want {
		if d.attached[name] {
			continue
		}
		if _, err := d.emb.Attach(ctx, ports.Spec{Name: name}); err != nil {
			d.m.portErrors.Inc()
			d.log.Error("attach port", zap.String("interface", name), zap.Error(err))
			continue
		}
		d.attached[name] = true
	}
	for name := range d.attached {
		if want[name] {
			continue
		}
		if err := d.emb.Detach(name); err != nil {
			d.m.portErrors.Inc()
			d.log.Warn("detach port", zap.String("interface", name), zap.Error(err))
		}
		delete(d.attached, name)
	}
}

// Ready reports whether the programmer is primary and in step with the target.
func (d *Dataplane) Ready() bool { return d.prog != nil && d.prog.Ready() }

// CtlHandler serves the embedded softswitch's ctl API (ports, trace, /debug); nil for other targets.
func (d *Dataplane) CtlHandler() http.Handler {
	if d.emb == nil {
		return nil
	}
	return d.emb.CtlHandler()
}

// Close stops the programmer and, for the embedded target, the softswitch.
func (d *Dataplane) Close() error {
	if d.runCancel != nil {
		d.runCancel()
	}
	var errs []error
	if d.prog != nil {
		errs = append(errs, d.prog.Close())
	}
	if d.emb != nil {
		errs = append(errs, d.emb.Close())
	}
	d.wg.Wait()
	return errors.Join(errs...)
}
