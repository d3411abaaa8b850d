package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/calico-p4/calico-p4/driver/cni"
)

// serveCNI starts the Calico CNI plugin's gRPC dataplane server on addr (package driver/cni); the pod
// interfaces it creates (and those it finds from an earlier manager) go to sink. stop ends it.
func serveCNI(addr string, log *zap.Logger, reg prometheus.Registerer, sink cni.Sink) (stop func(), err error) {
	m, err := cni.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	srv, err := cni.New(cni.Options{Sink: sink, Logger: log, Metrics: m})
	if err != nil {
		return nil, err
	}
	if _, err := srv.Rebuild(); err != nil {
		srv.Close()
		return nil, err
	}
	lis, err := cni.Listen(addr)
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("--cni-listen: %w", err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	go func() {
		if err := g.Serve(lis); err != nil {
			log.Error("CNI server stopped; pods can no longer be added or deleted", zap.Error(err))
		}
	}()
	log.Info("Serving the Calico CNI plugin's gRPC dataplane", zap.String("listen", addr))
	return func() {
		g.Stop()
		srv.Close()
	}, nil
}
