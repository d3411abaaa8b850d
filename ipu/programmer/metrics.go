package programmer

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	writes           prometheus.Counter
	updates          *prometheus.CounterVec // type, table
	updateErrors     *prometheus.CounterVec // type, table, code
	batchDuration    prometheus.Histogram
	installed        *prometheus.GaugeVec // table
	pending          prometheus.Gauge
	ready            prometheus.Gauge
	reconcileSeconds prometheus.Histogram
	reconciles       *prometheus.CounterVec // result
	syncSeconds      prometheus.Histogram
	tableFull        *prometheus.CounterVec // table
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "calico_p4_programmer_write_rpcs_total",
			Help: "P4Runtime Write RPCs (batches) sent.",
		}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calico_p4_programmer_updates_total",
			Help: "Updates applied successfully, by type (insert, modify, delete) and table or action profile.",
		}, []string{"type", "table"}),
		updateErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calico_p4_programmer_update_errors_total",
			Help: "Updates the target refused, by type, table or action profile, and gRPC code.",
		}, []string{"type", "table", "code"}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "calico_p4_programmer_batch_duration_seconds",
			Help:    "Duration of one Write batch, round trip.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 3, 12),
		}),
		installed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "calico_p4_programmer_installed_entries",
			Help: "Entries installed on the target, by table or action profile.",
		}, []string{"table"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calico_p4_programmer_pending_entries",
			Help: "Entries that differ between desired and installed and are waiting for a (re)try.",
		}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "calico_p4_programmer_ready",
			Help: "1 when the programmer is primary and has reconciled the target, else 0.",
		}),
		reconcileSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "calico_p4_programmer_reconcile_duration_seconds",
			Help:    "Duration of a read-back reconcile (pipeline check, read of every table and profile).",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 12),
		}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calico_p4_programmer_reconciles_total",
			Help: "Read-back reconciles, by result (ok, error).",
		}, []string{"result"}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "calico_p4_programmer_sync_duration_seconds",
			Help:    "Duration of a Sync (diff and writes).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 3, 14),
		}),
		tableFull: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "calico_p4_programmer_table_full_total",
			Help: "Inserts refused because a table or action profile was full (RESOURCE_EXHAUSTED).",
		}, []string{"table"}),
	}
	if reg != nil {
		reg.MustRegister(m.writes, m.updates, m.updateErrors, m.batchDuration, m.installed, m.pending, m.ready,
			m.reconcileSeconds, m.reconciles, m.syncSeconds, m.tableFull)
	}
	return m
}
