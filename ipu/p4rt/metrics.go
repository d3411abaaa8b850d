package p4rt

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the client's Prometheus metrics (prefix calico_p4_p4rt_).
type Metrics struct {
	Primary          prometheus.Gauge
	Connected        prometheus.Gauge
	Arbitrations     *prometheus.CounterVec // result: primary, backup, error
	PrimaryChanges   *prometheus.CounterVec // to: primary, backup
	StreamReconnects prometheus.Counter
	RPCDuration      *prometheus.HistogramVec // rpc
	RPCErrors        *prometheus.CounterVec   // rpc, code
	PipelinePushes   *prometheus.CounterVec   // action
}

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered, still usable).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Primary: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calico_p4_p4rt_primary",
			Help: "1 while this client is the primary controller of the target (may write), else 0.",
		}),
		Connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calico_p4_p4rt_connected",
			Help: "1 while the P4Runtime stream channel to the target is up.",
		}),
		Arbitrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calico_p4_p4rt_arbitration_responses_total",
			Help: "Arbitration updates received from the target, by result (primary, backup, no_primary).",
		}, []string{"result"}),
		PrimaryChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calico_p4_p4rt_primary_changes_total",
			Help: "Transitions of this client's primary status, by new state (primary, backup).",
		}, []string{"to"}),
		StreamReconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "calico_p4_p4rt_stream_connects_total",
			Help: "Stream channels opened to the target (the first one and every reconnect).",
		}),
		RPCDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "calico_p4_p4rt_rpc_duration_seconds",
			Help:    "Duration of P4Runtime RPCs, by RPC.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"rpc"}),
		RPCErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calico_p4_p4rt_rpc_errors_total",
			Help: "Failed P4Runtime RPCs, by RPC and gRPC code.",
		}, []string{"rpc", "code"}),
		PipelinePushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calico_p4_p4rt_pipeline_pushes_total",
			Help: "SetForwardingPipelineConfig calls, by action.",
		}, []string{"action"}),
	}
	if reg != nil {
		reg.MustRegister(m.Primary, m.Connected, m.Arbitrations, m.PrimaryChanges, m.StreamReconnects,
			m.RPCDuration, m.RPCErrors, m.PipelinePushes)
	}
	return m
}
