// Command calico-p4-manager is the long-lived calico-p4 daemon: it serves the infrastructure API to
// calico-p4-driver (one Felix session at a time), keeps the desired state, hands it to the apply stage,
// reports status back to Felix, and serves metrics and health.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/calico-p4/calico-p4/cmd/internal/gctune"
	"github.com/calico-p4/calico-p4/driver/cni"
	"github.com/calico-p4/calico-p4/driver/infraapi"
	"github.com/calico-p4/calico-p4/driver/session"
	"github.com/calico-p4/calico-p4/ipu/dataplane"
	"github.com/calico-p4/calico-p4/ipu/p4rt"
)

var version = "dev"

type options struct {
	listen        string
	tls           infraapi.TLSFiles
	logLevel      string
	logFormat     string
	metricsListen string
	addrFile      string
	target        string
	dp            dataplaneFlags
	svc           servicesFlags
	cniListen     string
	gc            gctune.Flags
}

// dataplaneFlags configure the apply stage (package ipu/dataplane).
type dataplaneFlags struct {
	p4rtListen, p4rtAddress, profile, deviceConfig string
	deviceID, electionID                           uint64
	p4rtTLS                                        p4rt.TLSConfig
	batchSize, pollers                             int
	hostInterface, uplinkInterface                 string
	hostMAC, uplinkMAC, gatewayMAC                 string
}

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "calico-p4-manager: %v\n", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:           "calico-p4-manager",
		Short:         "The calico-p4 manager: Felix sessions, desired state, apply stage, status, metrics",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return run(ctx, o)
		},
	}
	f := cmd.Flags()
	o.gc.AddFlags(f)
	f.StringVar(&o.listen, "listen", infraapi.DefaultAddress,
		"infrastructure API address: unix:///path (socket mode 0600) or host:port (requires the --tls-* flags)")
	f.StringVar(&o.tls.Cert, "tls-cert", "", "server certificate (PEM) for a TCP --listen")
	f.StringVar(&o.tls.Key, "tls-key", "", "server key (PEM)")
	f.StringVar(&o.tls.CA, "tls-ca", "", "CA bundle (PEM) that signs driver client certificates")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "json", "json or console")
	f.StringVar(&o.metricsListen, "metrics-listen", "127.0.0.1:9091",
		"address for /metrics, /livez and /readyz (port 0 picks a free one; see --addr-file)")
	f.StringVar(&o.addrFile, "addr-file", "",
		"after binding, write the bound addresses as JSON {\"listen\":…,\"metrics\":…} to this file")
	f.StringVar(&o.target, "target", dataplane.TargetEmbedded,
		"dataplane target: embedded (the softswitch in this process, P4Runtime on --p4rt-listen), "+
			"p4rt (a P4Runtime server at --p4rt-addr), none (nothing programmed: every apply fails, never ready)")
	// Test mode: a recording applier that accepts every apply without programming anything. It makes the
	// manager claim success for a dataplane that does not exist, so the help text says so.
	f.Lookup("target").Usage += ", record (TESTS ONLY: accepts and records every apply, programs nothing)"
	f.StringVar(&o.dp.p4rtListen, "p4rt-listen", "127.0.0.1:9559",
		"embedded target: where its P4Runtime server listens (host:port or unix:///path), for the manager and P4Runtime tools")
	f.StringVar(&o.dp.p4rtAddress, "p4rt-addr", "", "p4rt target: the P4Runtime server's address (host:port or unix:///path)")
	f.StringVar(&o.dp.profile, "p4rt-profile", string(p4rt.ProfileEmbedded),
		"p4rt target: embedded (a standalone calico-p4-softswitch), p4-dpdk (infrap4d/OVS-P4) or ipu-es2k")
	f.StringVar(&o.dp.deviceConfig, "p4rt-device-config", "", "p4rt target: the device config (p4-dpdk: the .pb.bin; ipu-es2k: the vendor's)")
	f.Uint64Var(&o.dp.deviceID, "device-id", 1, "P4Runtime device id")
	f.Uint64Var(&o.dp.electionID, "election-id", 1, "P4Runtime election id (a replacing manager needs one at least as high)")
	f.StringVar(&o.dp.p4rtTLS.CAFile, "p4rt-tls-ca", "", "p4rt target: CA bundle that signs the target's certificate (enables TLS)")
	f.StringVar(&o.dp.p4rtTLS.CertFile, "p4rt-tls-cert", "", "p4rt target: client certificate (mTLS)")
	f.StringVar(&o.dp.p4rtTLS.KeyFile, "p4rt-tls-key", "", "p4rt target: client key (mTLS)")
	f.IntVar(&o.dp.batchSize, "batch-size", 1000, "updates per P4Runtime Write")
	f.IntVar(&o.dp.pollers, "pollers", 0, "embedded target: receive threads (0: its default, one per CPU, each pinned to its CPU)")
	f.StringVar(&o.dp.hostInterface, "host-interface", "", "port to the host's own network stack (\"\": none)")
	f.StringVar(&o.dp.hostMAC, "host-mac", "", "MAC of the host stack's side of --host-interface (default: the veth peer's MAC)")
	f.StringVar(&o.dp.uplinkInterface, "uplink-interface", "", "port to the fabric (\"\": none)")
	f.StringVar(&o.dp.uplinkMAC, "uplink-mac", "", "this node's MAC on the uplink (default: --uplink-interface's MAC)")
	f.StringVar(&o.dp.gatewayMAC, "gateway-mac", "", "MAC of the default next hop on the uplink")
	f.StringVar(&o.svc.kubeconfig, "kubeconfig", "",
		"kubeconfig of the Kubernetes API to watch Services and EndpointSlices on (service backends); \"\": the "+
			"in-cluster config (a warning and no services outside a pod); none: no watch, no service is programmed")
	f.StringVar(&o.cniListen, "cni-listen", cni.DefaultAddress,
		"where the Calico CNI plugin's gRPC dataplane reaches the manager (unix:///path, socket mode 0600; the CNI "+
			"network config's dataplane_options.socket); it creates pod interfaces and supplies pods' MACs. Empty disables it")
	f.StringVar(&o.svc.file, "services-file", "",
		"instead of an API server: a file of Services and EndpointSlices (driver/services.File), reread when it changes (tests, nodes without an API server)")
	f.DurationVar(&o.svc.wait, "services-sync-wait", 30*time.Second,
		"with a services watch, how long the first apply waits for its initial list (so a restart does not remove programmed services)")
	return cmd
}

func newLogger(level, format string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.Set(level); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("--log-format %q: want json or console", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(os.Stderr), lvl)), nil
}

func run(ctx context.Context, o *options) error {
	log, err := newLogger(o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	gc, err := o.gc.Apply()
	if err != nil {
		return err
	}
	log.Info("Go GC settings", zap.Int("gc_percent", gc.GCPercent), zap.Int64("memory_limit_bytes", gc.MemoryLimit), zap.String("from", gc.Source))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var applier session.Applier
	var recorder *session.Recorder
	var dp *dataplane.Dataplane
	switch o.target {
	case "none":
		applier = session.NoDataplane{}
		log.Warn("No dataplane configured: Felix's desired state is kept and validated, nothing is programmed; " +
			"endpoints are reported as error and /readyz stays unready")
	case "record":
		recorder = &session.Recorder{}
		applier = recorder
		log.Warn("TEST MODE (--target=record): every apply is recorded and reported as successful, NOTHING IS PROGRAMMED")
	case dataplane.TargetEmbedded, dataplane.TargetP4RT:
		cfg, err := o.dp.config(o.target, log.Named("dataplane"), reg)
		if err != nil {
			return err
		}
		if dp, err = dataplane.New(ctx, cfg); err != nil {
			return err
		}
		defer dp.Close()
		applier = dp
	default:
		return fmt.Errorf("--target %q: want embedded, p4rt or none", o.target)
	}

	// The services watch is the desired state's second input (the manager is its sink); it is built before
	// the manager, which must know whether to wait for it.
	var sink sinkProxy
	svcSource, err := o.svc.source(log.Named("services"), reg, &sink)
	if err != nil {
		return err
	}
	mopts := []session.Option{session.WithApplier(applier), session.WithLogger(log.Named("session")), session.WithVersion(version)}
	if svcSource != nil {
		mopts = append(mopts, session.WithKubeServices(o.svc.wait))
	}
	mgr, err := session.NewManager(reg, mopts...)
	if err != nil {
		return err
	}
	defer mgr.Close()
	if svcSource != nil {
		sink.m = mgr
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			if err := svcSource.Run(wctx); err != nil && wctx.Err() == nil {
				log.Error("Services watch stopped; service backends are no longer updated", zap.Error(err))
			}
		}()
	}

	// The CNI server is the desired state's third input (pod MACs); it reads back the pod interfaces of
	// an earlier manager before serving.
	if o.cniListen != "" {
		stop, err := serveCNI(o.cniListen, log.Named("cni"), reg, mgr)
		if err != nil {
			return err
		}
		defer stop()
	}

	lis, err := listen(o)
	if err != nil {
		return err
	}
	srvOpts := []grpc.ServerOption{grpc.MaxRecvMsgSize(infraapi.MaxMessageSize), grpc.MaxSendMsgSize(infraapi.MaxMessageSize)}
	if lis.Addr().Network() == "tcp" {
		tcfg, err := infraapi.ServerTLS(o.tls)
		if err != nil {
			lis.Close()
			return fmt.Errorf("--listen %s is TCP, which needs mTLS (--tls-cert, --tls-key, --tls-ca): %w", o.listen, err)
		}
		srvOpts = append(srvOpts, grpc.Creds(credentials.NewTLS(tcfg)))
	}
	srv := grpc.NewServer(srvOpts...)
	infraapi.RegisterFelixRelayServer(srv, mgr)

	mlis, err := net.Listen("tcp", o.metricsListen)
	if err != nil {
		lis.Close()
		return fmt.Errorf("--metrics-listen %s: %w", o.metricsListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := mgr.Ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	})
	if dp != nil && dp.CtlHandler() != nil {
		// The embedded target's ctl API: /v1/ports, /v1/trace (calico-p4ctl) and /debug (every entry).
		mux.Handle("/v1/", dp.CtlHandler())
		mux.Handle("/debug", dp.CtlHandler())
	}
	if recorder != nil {
		mux.HandleFunc("/debug/applies", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(recorder.Summaries())
		})
	}
	hsrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(lis) }()
	go func() { errc <- hsrv.Serve(mlis) }()
	log.Info("calico-p4-manager serving", zap.String("version", version), zap.String("listen", lis.Addr().String()),
		zap.String("metrics", mlis.Addr().String()), zap.String("target", o.target))
	if o.addrFile != "" {
		if err := writeAddrFile(o.addrFile, o.listen, lis, mlis); err != nil {
			srv.Stop()
			hsrv.Close()
			return err
		}
	}

	select {
	case <-ctx.Done():
		log.Info("Stopping")
	case err := <-errc:
		log.Error("Server failed", zap.Error(err))
		srv.Stop()
		hsrv.Close()
		return err
	}
	mgr.Close()
	srv.Stop()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = hsrv.Shutdown(sctx)
	return nil
}

func listen(o *options) (net.Listener, error) {
	addr, err := infraapi.ParseAddress(o.listen)
	if err != nil {
		return nil, fmt.Errorf("--listen: %w", err)
	}
	if addr.Network == "tcp" {
		if o.tls.Empty() {
			return nil, fmt.Errorf("--listen %s is TCP, which needs mTLS: set --tls-cert, --tls-key and --tls-ca", o.listen)
		}
		return net.Listen("tcp", addr.Addr)
	}
	if err := os.MkdirAll(filepath.Dir(addr.Addr), 0o700); err != nil {
		return nil, fmt.Errorf("--listen: creating socket directory: %w", err)
	}
	// A socket left by a previous manager is removed; any other file is not ours to delete.
	if fi, err := os.Lstat(addr.Addr); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("--listen: %s exists and is not a socket", addr.Addr)
		}
		if err := os.Remove(addr.Addr); err != nil {
			return nil, fmt.Errorf("--listen: removing stale socket: %w", err)
		}
	}
	old := syscall.Umask(0o177) // the socket is created 0600
	lis, err := net.Listen("unix", addr.Addr)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", o.listen, err)
	}
	if err := os.Chmod(addr.Addr, 0o600); err != nil {
		lis.Close()
		return nil, fmt.Errorf("--listen: chmod 0600: %w", err)
	}
	return lis, nil
}

func writeAddrFile(path, listen string, lis, mlis net.Listener) error {
	l := listen
	if lis.Addr().Network() == "tcp" {
		l = lis.Addr().String()
	}
	b, err := json.Marshal(map[string]string{"listen": l, "metrics": mlis.Addr().String()})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("--addr-file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(fmt.Errorf("--addr-file: %w", err), os.Remove(tmp))
	}
	return nil
}
