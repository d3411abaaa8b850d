// Command calico-p4-softswitch runs the embedded software target on its own: a P4Runtime server
// (infrap4d's conventions: --p4rt-listen 127.0.0.1:9559 --device-id 1) forwarding packets between the
// attached interfaces with the k8s.p4 pipeline, and a ctl API (calico-p4ctl) to attach and detach
// ports at runtime, trace packets and dump the tables.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/calico-p4/calico-p4/cmd/internal/gctune"
	"github.com/calico-p4/calico-p4/ipu/softswitch/embedded"
	"github.com/calico-p4/calico-p4/ipu/softswitch/ports"
)

func main() {
	if err := command().Execute(); err != nil {
		os.Exit(1)
	}
}

func command() *cobra.Command {
	var (
		p4rtListen, ctlListen, metricsListen, logLevel string
		deviceID                                       uint64
		workers, pollers, pollerPriority, ringFrames   int
		pollerCPUs                                     []int
		spin                                           time.Duration
		portFlags                                      []string
		gc                                             gctune.Flags
	)
	cmd := &cobra.Command{
		Use:          "calico-p4-softswitch",
		Short:        "The embedded P4Runtime target running k8s.p4 over host interfaces",
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lvl, err := zapcore.ParseLevel(logLevel)
			if err != nil {
				return err
			}
			zc := zap.NewProductionConfig()
			zc.Level = zap.NewAtomicLevelAt(lvl)
			log, err := zc.Build()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			applied, err := gc.Apply()
			if err != nil {
				return err
			}
			log.Info("Go GC settings", zap.Int("gc_percent", applied.GCPercent), zap.Int64("memory_limit_bytes", applied.MemoryLimit), zap.String("from", applied.Source))
			specs, err := parsePorts(portFlags)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return run(ctx, log, embedded.Config{DeviceID: deviceID, Workers: workers, Pollers: pollers, PollerCPUs: pollerCPUs,
				PollerPriority: pollerPriority, Spin: spin, RingFrames: ringFrames, Ports: specs},
				p4rtListen, ctlListen, metricsListen)
		},
	}
	f := cmd.Flags()
	gc.AddFlags(f)
	f.StringVar(&p4rtListen, "p4rt-listen", "127.0.0.1:9559", "P4Runtime address: host:port or unix:///path")
	f.Uint64Var(&deviceID, "device-id", 1, "P4Runtime device id")
	f.StringVar(&ctlListen, "ctl-listen", "unix:///run/calico-p4/softswitch.sock", "ctl API address (calico-p4ctl): host:port or unix:///path; empty disables")
	f.StringVar(&metricsListen, "metrics-listen", "", "address serving /metrics and /debug (empty disables)")
	f.IntVar(&workers, "workers", 0, "pipeline workers (default GOMAXPROCS)")
	f.IntVar(&pollers, "pollers", 0, "receive threads, one per CPU, each pinned to its CPU and fed the frames that CPU received (default: every CPU the process may use)")
	f.IntSliceVar(&pollerCPUs, "poller-cpus", nil, "pin the receive threads to these CPUs (one each), e.g. a CPU kept for the data plane; overrides --pollers")
	f.IntVar(&pollerPriority, "poller-priority", 0, "run the receive threads SCHED_FIFO at this priority (1-99; 0: ordinary threads)")
	f.IntVar(&ringFrames, "ring-frames", 0, "slots of each packet socket's receive ring (TPACKET_V2, 2 KiB each; default 64; negative: recvmmsg, no ring)")
	f.DurationVar(&spin, "spin", 0, "busy-poll window after traffic (default: none; 200µs with --poller-cpus; negative disables)")
	f.StringArrayVar(&portFlags, "port", nil, "interface to attach: name[@netns][,tap] (netns: a name under /run/netns or a path); repeatable")
	f.StringVar(&logLevel, "log-level", "info", "log level")
	return cmd
}

// parsePorts reads --port values: name[@netns][,tap].
func parsePorts(vals []string) ([]ports.Spec, error) {
	var out []ports.Spec
	for _, v := range vals {
		s := ports.Spec{Kind: ports.KindAFPacket}
		if rest, ok := strings.CutSuffix(v, ",tap"); ok {
			v, s.Kind = rest, ports.KindTAP
		}
		name, ns, _ := strings.Cut(v, "@")
		if name == "" {
			return nil, fmt.Errorf("--port %q: no interface name", v)
		}
		s.Name = name
		if ns != "" {
			if !strings.Contains(ns, "/") {
				ns = filepath.Join("/run/netns", ns)
			}
			s.NetNS = ns
		}
		out = append(out, s)
	}
	return out, nil
}

func listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		_ = os.Remove(path)
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", addr)
}

func run(ctx context.Context, log *zap.Logger, cfg embedded.Config, p4rtAddr, ctlAddr, metricsAddr string) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Logger, cfg.Registry = log, reg
	sw, err := embedded.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer sw.Close()
	errc := make(chan error, 3)
	lis, err := listen(p4rtAddr)
	if err != nil {
		return fmt.Errorf("p4rt listen %s: %w", p4rtAddr, err)
	}
	go func() { errc <- sw.Serve(lis) }()
	log.Info("serving P4Runtime", zap.String("addr", p4rtAddr), zap.Uint64("device_id", cfg.DeviceID))
	serveHTTP := func(addr, what string, h http.Handler) error {
		l, err := listen(addr)
		if err != nil {
			return fmt.Errorf("%s listen %s: %w", what, addr, err)
		}
		srv := &http.Server{Handler: h}
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
		go func() { <-ctx.Done(); _ = srv.Close() }()
		log.Info("serving "+what, zap.String("addr", addr))
		return nil
	}
	if ctlAddr != "" {
		if err := serveHTTP(ctlAddr, "ctl API", sw.CtlHandler()); err != nil {
			return err
		}
	}
	if metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.Handle("/debug", sw.Server.DebugHandler())
		if err := serveHTTP(metricsAddr, "metrics", mux); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
		log.Info("stopping")
		return nil
	case err := <-errc:
		return err
	}
}
