package services

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the watch's metrics (prefix calico_p4_services_). The applied revision
// (calico_p4_services_applied_revision) is the session's: it knows when the dataplane reflects a revision.
type Metrics struct {
	events      *prometheus.CounterVec
	updates     *prometheus.CounterVec
	errors      *prometheus.CounterVec
	watchErrors *prometheus.CounterVec
	services    prometheus.Gauge
	backends    prometheus.Gauge
	synced      prometheus.Gauge
	revision    prometheus.Gauge
	loads       *prometheus.CounterVec
}

// NewMetrics creates the watch's metrics and registers them on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calico_p4_services_events_total",
			Help: "Kubernetes watch events received, by resource (service, endpointslice) and event (add, update, delete)."},
			[]string{"resource", "event"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calico_p4_services_updates_total",
			Help: "Service views handed to the desired state, by operation (upsert, remove)."}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calico_p4_services_errors_total",
			Help: "Bad input from the watch: invalid_service (the service is removed until it changes), " +
				"invalid_endpoints (endpoints skipped), invalid_file (a services file that does not parse: the previous one is kept)."},
			[]string{"reason"}),
		watchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calico_p4_services_watch_errors_total",
			Help: "Kubernetes list/watch failures (client-go retries), by resource."}, []string{"resource"}),
		services: prometheus.NewGauge(prometheus.GaugeOpts{Name: "calico_p4_services_watched",
			Help: "Services the watch currently hands to the desired state."}),
		backends: prometheus.NewGauge(prometheus.GaugeOpts{Name: "calico_p4_services_backends",
			Help: "Backends (endpoint × service port) of those services, every condition and family."}),
		synced: prometheus.NewGauge(prometheus.GaugeOpts{Name: "calico_p4_services_synced",
			Help: "1 once the watch's initial list has been handed over."}),
		revision: prometheus.NewGauge(prometheus.GaugeOpts{Name: "calico_p4_services_source_revision",
			Help: "Services file source: the revision of the last file handed over completely."}),
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calico_p4_services_file_loads_total",
			Help: "Services file source: files read, by result (ok, error, unchanged)."}, []string{"result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.events, m.updates, m.errors, m.watchErrors, m.services, m.backends,
			m.synced, m.revision, m.loads} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("services: registering metrics: %w", err)
			}
		}
	}
	return m, nil
}
