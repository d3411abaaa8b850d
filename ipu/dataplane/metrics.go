package dataplane

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/calico-p4/calico-p4/ipu/programmer"
	"github.com/calico-p4/calico-p4/translator"
)

type metrics struct {
	unsupported *prometheus.GaugeVec
	syncs       *prometheus.CounterVec
	pending     prometheus.Gauge
	warnings    prometheus.Gauge
	portErrors  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		unsupported: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "calico_p4_unsupported_features",
			Help: "Uses of Calico features the P4 pipeline cannot enforce, by feature (one per owning policy, profile or route)."},
			[]string{"feature"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calico_p4_dataplane_syncs_total",
			Help: "Applies that synced the target, by result (ok, partial: some entries pending, error)."}, []string{"result"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "calico_p4_dataplane_pending_entries",
			Help: "Desired entries not installed after the last apply (retried in the background)."}),
		warnings: prometheus.NewGauge(prometheus.GaugeOpts{Name: "calico_p4_translation_warnings",
			Help: "Node-level translation problems in the last apply (a next hop without a MAC, a policy walk over the pass budget, …)."}),
		portErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "calico_p4_dataplane_port_errors_total",
			Help: "Failures to attach or detach an embedded-target port."}),
	}
	if reg != nil {
		reg.MustRegister(m.unsupported, m.syncs, m.pending, m.warnings, m.portErrors)
	}
	return m
}

func (m *metrics) setUnsupported(byFeature map[translator.Feature]int) {
	m.unsupported.Reset()
	for f, n := range byFeature {
		m.unsupported.WithLabelValues(string(f)).Set(float64(n))
	}
}

func (m *metrics) observeSync(res programmer.Result, err error) {
	m.pending.Set(float64(res.Pending))
	switch {
	case err != nil:
		m.syncs.WithLabelValues("error").Inc()
	case res.Pending > 0:
		m.syncs.WithLabelValues("partial").Inc()
	default:
		m.syncs.WithLabelValues("ok").Inc()
	}
}
