package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/calico-p4/calico-p4/driver/model"
	"github.com/calico-p4/calico-p4/driver/services"
)

// servicesFlags configure the Kubernetes Services + EndpointSlices watch (package driver/services).
type servicesFlags struct {
	kubeconfig string
	file       string
	wait       time.Duration
}

const kubeconfigNone = "none"

// runner is a configured services source.
type runner interface {
	Run(ctx context.Context) error
}

// servicesSource builds the watch the flags ask for; nil (and a warning) when there is none: no service
// is then programmed.
func (f *servicesFlags) source(log *zap.Logger, reg prometheus.Registerer, sink services.Sink) (runner, error) {
	m, err := services.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	opts := services.Options{Sink: sink, Logger: log, Metrics: m}
	if f.file != "" {
		if f.kubeconfig != "" && f.kubeconfig != kubeconfigNone {
			return nil, errors.New("--services-file and --kubeconfig are exclusive")
		}
		log.Info("Service backends from a file (no Kubernetes API server)", zap.String("path", f.file))
		return services.NewFileSource(f.file, opts)
	}
	const noWatch = "No Kubernetes services watch: Services are not load-balanced (service addresses are not " +
		"translated; packets to them follow the routes). Give --kubeconfig, or run in a pod with a service account"
	var cfg *rest.Config
	switch f.kubeconfig {
	case kubeconfigNone:
		log.Warn(noWatch, zap.String("reason", "--kubeconfig none"))
		return nil, nil
	case "":
		cfg, err = rest.InClusterConfig()
		if err != nil {
			log.Warn(noWatch, zap.String("reason", "not in a cluster: "+err.Error()))
			return nil, nil
		}
	default:
		cfg, err = clientcmd.BuildConfigFromFlags("", f.kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", f.kubeconfig, err)
		}
	}
	cfg.UserAgent = "calico-p4-manager/" + version
	if opts.Services, opts.Slices, err = services.APISource(cfg); err != nil {
		return nil, err
	}
	log.Info("Service backends from the Kubernetes API", zap.String("server", cfg.Host))
	return services.NewWatcher(opts)
}

// sinkProxy hands the watch's updates to the session manager, which is created after the source.
type sinkProxy struct{ m services.Sink }

func (p *sinkProxy) UpsertKubeService(ks *model.KubeService) { p.m.UpsertKubeService(ks) }
func (p *sinkProxy) RemoveKubeService(k model.ServiceKey)    { p.m.RemoveKubeService(k) }
func (p *sinkProxy) KubeServicesSynced(rev uint64)           { p.m.KubeServicesSynced(rev) }
