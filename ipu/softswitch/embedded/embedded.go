// Package embedded assembles the embedded software target: the P4Runtime server and its table store
// (package softswitch), the k8s.p4 pipeline (package pipeline) and the ports it forwards between
// (package ports), plus the ctl API (HTTP on a unix socket or TCP) that attaches and detaches ports at
// runtime, traces packets and dumps the tables. cmd/calico-p4-softswitch runs it standalone;
// calico-p4-manager embeds it (--target embedded).
//
// It must not hold logic beyond wiring: forwarding is the pipeline's, I/O the ports'.
package embedded

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/calico-p4/calico-p4/ipu/softswitch"
	"github.com/calico-p4/calico-p4/ipu/softswitch/pipeline"
	"github.com/calico-p4/calico-p4/ipu/softswitch/ports"
	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
)

// Config configures a Softswitch.
type Config struct {
	// DeviceID is the P4Runtime device id (default 1, infrap4d's convention).
	DeviceID uint64
	// Workers is the number of pipeline workers (default GOMAXPROCS).
	Workers int
	// Ports are attached at start (more can be attached through Attach or the ctl API).
	Ports []ports.Spec
	// Expiry overrides the learner expire-time profiles (pipeline.DefaultExpiry).
	Expiry []time.Duration
	// RetryInterval is how often missing interfaces are retried (default 1s).
	RetryInterval time.Duration
	// Pollers, PollerCPUs, PollerPriority and Spin tune the receive threads (ports.Config).
	Pollers        int
	PollerCPUs     []int
	PollerPriority int
	Spin           time.Duration
	RingFrames     int
	// GRPCOptions are added to the P4Runtime gRPC server (TLS, interceptors).
	GRPCOptions []grpc.ServerOption
	Logger      *zap.Logger
	Registry    prometheus.Registerer
}

// Softswitch is a running embedded target.
type Softswitch struct {
	Server    *softswitch.Server
	Pipeline  *pipeline.Pipeline
	Dataplane *ports.Dataplane
	log       *zap.Logger
}

// New starts a softswitch: server, store, pipeline and dataplane, with cfg.Ports attached (missing
// interfaces are attached when they appear). Serve P4Runtime with Serve; stop with Close.
func New(ctx context.Context, cfg Config) (*Softswitch, error) {
	if cfg.DeviceID == 0 {
		cfg.DeviceID = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	store := tables.NewStore(tables.Options{Workers: cfg.Workers})
	srv, err := softswitch.New(softswitch.Config{DeviceID: cfg.DeviceID, Logger: cfg.Logger.Named("p4rt"),
		Registry: cfg.Registry, Store: store, GRPCOptions: cfg.GRPCOptions})
	if err != nil {
		return nil, err
	}
	pl, err := pipeline.New(pipeline.Options{Store: store, Expiry: cfg.Expiry, Logger: cfg.Logger.Named("pipeline"), Registry: cfg.Registry})
	if err != nil {
		srv.Stop()
		return nil, err
	}
	s := &Softswitch{Server: srv, Pipeline: pl, log: cfg.Logger}
	dp, err := ports.New(ports.Config{Pipeline: pl, RetryInterval: cfg.RetryInterval, Pollers: cfg.Pollers, PollerCPUs: cfg.PollerCPUs, PollerPriority: cfg.PollerPriority, Spin: cfg.Spin, RingFrames: cfg.RingFrames, Logger: cfg.Logger.Named("ports"),
		Registry: cfg.Registry, PacketIn: s.packetIn})
	if err != nil {
		srv.Stop()
		return nil, err
	}
	s.Dataplane = dp
	srv.SetPacketOutHandler(func(p softswitch.Packet) error { return dp.PacketOut(p.Payload) })
	for _, spec := range cfg.Ports {
		if _, err := dp.Attach(ctx, spec); err != nil {
			s.Close()
			return nil, fmt.Errorf("attach %s: %w", spec, err)
		}
	}
	return s, nil
}

func (s *Softswitch) packetIn(frame []byte) {
	if err := s.Server.SendPacketIn(softswitch.Packet{Payload: frame}); err != nil {
		s.log.Debug("packet-in not delivered", zap.Error(err))
	}
}

// Serve serves P4Runtime on lis until Close.
func (s *Softswitch) Serve(lis net.Listener) error { return s.Server.Serve(lis) }

// Attach attaches an interface as a port (see ports.Dataplane.Attach).
func (s *Softswitch) Attach(ctx context.Context, spec ports.Spec) (uint32, error) {
	return s.Dataplane.Attach(ctx, spec)
}

// Detach detaches a port.
func (s *Softswitch) Detach(name string) error { return s.Dataplane.Detach(name) }

// Close stops the dataplane and the server.
func (s *Softswitch) Close() error {
	err := s.Dataplane.Close()
	s.Server.Stop()
	return err
}
