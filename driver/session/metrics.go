package session

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/calico-p4/calico-p4/driver/model"
)

// Phase is a session's state.
type Phase int

// Session phases.
const (
	PhaseConnected Phase = iota + 1
	PhaseSyncing
	PhaseInSync
	PhaseClosed
)

func (p Phase) String() string {
	switch p {
	case PhaseConnected:
		return "connected"
	case PhaseSyncing:
		return "syncing"
	case PhaseInSync:
		return "in_sync"
	case PhaseClosed:
		return "closed"
	}
	return "none"
}

var phases = []Phase{PhaseConnected, PhaseSyncing, PhaseInSync, PhaseClosed}

type metrics struct {
	messages      *prometheus.CounterVec
	invalid       *prometheus.CounterVec
	unknown       *prometheus.CounterVec
	framingErrors *prometheus.CounterVec
	sessionState  *prometheus.GaugeVec
	sessions      prometheus.Counter
	applies       *prometheus.CounterVec
	applySeconds  prometheus.Histogram
	applyObjects  prometheus.Histogram
	objects       *prometheus.GaugeVec
	statusSent    *prometheus.CounterVec
	ready         prometheus.Gauge
	appliedSeq    prometheus.Gauge
	kubeApplied   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calico_p4_felix_messages_total",
			Help: "ToDataplane messages received from Felix, by payload type."}, []string{"type"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calico_p4_model_invalid_objects_total",
			Help: "Objects (or IP set members, config values) rejected for invalid content, by kind."}, []string{"kind"}),
		unknown: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calico_p4_felix_unknown_payloads_total",
			Help: "ToDataplane messages with a payload this build does not know (newer Felix), by field."}, []string{"type"}),
		framingErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calico_p4_framing_errors_total",
			Help: "Sessions closed for a corrupt Felix stream, by reason (undecodable protobuf, or the driver's framing error)."},
			[]string{"reason"}),
		sessionState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "calico_p4_session_state",
			Help: "1 for the current Felix session's state (connected, syncing, in_sync, closed)."}, []string{"state"}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{Name: "calico_p4_sessions_total",
			Help: "Felix sessions started (one per driver process)."}),
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calico_p4_apply_batches_total",
			Help: "Calls of the apply stage, by result (ok, error)."}, []string{"result"}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "calico_p4_apply_duration_seconds",
			Help: "Duration of one apply.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		applyObjects: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "calico_p4_apply_changed_objects",
			Help: "Changed objects per apply batch.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)}),
		objects: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "calico_p4_model_objects",
			Help: "Objects in the desired state, by kind."}, []string{"kind"}),
		statusSent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calico_p4_felix_status_reports_total",
			Help: "FromDataplane messages sent to Felix, by type and status."}, []string{"type", "status"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{Name: "calico_p4_ready",
			Help: "1 when a session reached in-sync and the last apply succeeded."}),
		appliedSeq: prometheus.NewGauge(prometheus.GaugeOpts{Name: "calico_p4_felix_applied_sequence_number",
			Help: "Sequence number of the last message of the current Felix session that the dataplane reflects " +
				"(every change up to it applied successfully); -1 until the session's first successful apply."}),
		kubeApplied: prometheus.NewGauge(prometheus.GaugeOpts{Name: "calico_p4_services_applied_revision",
			Help: "The last revision of the Kubernetes services watch the dataplane reflects (0: the initial list; a " +
				"services file's own revisions are ≥ 1)."}),
	}
	for _, c := range []prometheus.Collector{m.messages, m.invalid, m.unknown, m.framingErrors, m.sessionState,
		m.sessions, m.applies, m.applySeconds, m.applyObjects, m.objects, m.statusSent, m.ready, m.appliedSeq, m.kubeApplied} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Pre-create the series so that a scrape shows zeros (e.g. no invalid objects) rather than nothing.
	for _, p := range model.Payloads {
		m.messages.WithLabelValues(p)
	}
	for _, k := range model.Kinds {
		m.invalid.WithLabelValues(k.String())
		m.objects.WithLabelValues(k.String())
	}
	for _, p := range phases {
		m.sessionState.WithLabelValues(p.String())
	}
	for _, r := range []string{"ok", "error"} {
		m.applies.WithLabelValues(r)
	}
	m.appliedSeq.Set(-1)
	return m, nil
}

func (m *metrics) setPhase(p Phase) {
	for _, q := range phases {
		v := 0.0
		if q == p {
			v = 1
		}
		m.sessionState.WithLabelValues(q.String()).Set(v)
	}
}
