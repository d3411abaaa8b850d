package softswitch

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/calico-p4/calico-p4/ipu/softswitch/tables"
)

// metrics are the server's Prometheus metrics (prefix calico_p4_softswitch_), registered on the
// registry given in Config (none if nil).
type metrics struct {
	writes         *prometheus.CounterVec // by code
	updates        *prometheus.CounterVec // by type, entity, code
	writeDuration  prometheus.Histogram   // seconds per Write RPC
	reads          *prometheus.CounterVec // by code
	readEntities   prometheus.Counter     // entities streamed
	pipeline       *prometheus.CounterVec // by action, code
	arbitration    *prometheus.CounterVec // by result
	primary        *prometheus.GaugeVec   // by role: 1 if a primary is connected
	streams        prometheus.Gauge       // open StreamChannels
	packetIn       *prometheus.CounterVec // by result (sent, dropped_no_primary, dropped_queue_full)
	packetOut      *prometheus.CounterVec // by result (ok, rejected, no_handler)
	digestLists    prometheus.Counter     // DigestList messages sent
	digestDropped  *prometheus.CounterVec // by reason
	idleNotices    prometheus.Counter     // entries reported idle
	expired        prometheus.Counter     // learned entries deleted by expiry
	collapsed      prometheus.Counter     // modified entries folded back into one slot by the sweep
	learnFailures  *prometheus.CounterVec // by code
	streamErrors   *prometheus.CounterVec // StreamError sent, by code
	tableEntries   *prometheus.Desc       // collected from the store at scrape time
	profileMembers *prometheus.Desc
	store          *tables.Store
}

func newMetrics(reg prometheus.Registerer, store *tables.Store) *metrics {
	const ns = "calico_p4_softswitch"
	m := &metrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "write_requests_total",
			Help: "P4Runtime Write RPCs by gRPC status code."}, []string{"code"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "write_updates_total",
			Help: "P4Runtime updates by type, entity and canonical code."}, []string{"type", "entity", "code"}),
		writeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "write_duration_seconds",
			Help: "Duration of P4Runtime Write RPCs.", Buckets: prometheus.ExponentialBuckets(0.00005, 4, 10)}),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "read_requests_total",
			Help: "P4Runtime Read RPCs by gRPC status code."}, []string{"code"}),
		readEntities: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "read_entities_total",
			Help: "Entities returned by P4Runtime Read RPCs."}),
		pipeline: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "pipeline_config_total",
			Help: "SetForwardingPipelineConfig RPCs by action and gRPC status code."}, []string{"action", "code"}),
		arbitration: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "arbitration_updates_total",
			Help: "MasterArbitrationUpdate messages by result (primary, backup, rejected)."}, []string{"result"}),
		primary: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "primary_connected",
			Help: "1 if a primary controller is connected for the role."}, []string{"role"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "streams",
			Help: "Open P4Runtime StreamChannels."}),
		packetIn: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "packet_in_total",
			Help: "Packet-in messages by result."}, []string{"result"}),
		packetOut: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "packet_out_total",
			Help: "Packet-out messages by result."}, []string{"result"}),
		digestLists: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "digest_lists_total",
			Help: "DigestList messages sent to controllers."}),
		digestDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "digests_dropped_total",
			Help: "Digest messages dropped, by reason."}, []string{"reason"}),
		idleNotices: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "idle_timeout_entries_total",
			Help: "Table entries reported in IdleTimeoutNotifications."}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "learned_entries_expired_total",
			Help: "Learned (add_on_miss) entries deleted by expiry."}),
		collapsed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "entries_collapsed_total",
			Help: "Modified table entries the sweep folded back from two slots (entry and newest version) into one."}),
		learnFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "learn_failures_total",
			Help: "Data-plane learn attempts that failed, by code."}, []string{"code"}),
		streamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "stream_errors_total",
			Help: "StreamError messages sent to controllers, by canonical code."}, []string{"code"}),
		tableEntries: prometheus.NewDesc(ns+"_table_entries", "Installed entries per table (data-plane view).",
			[]string{"table"}, nil),
		profileMembers: prometheus.NewDesc(ns+"_action_profile_members", "Members per action profile.",
			[]string{"profile"}, nil),
		store: store,
	}
	if reg != nil {
		reg.MustRegister(m.writes, m.updates, m.writeDuration, m.reads, m.readEntities, m.pipeline, m.arbitration,
			m.primary, m.streams, m.packetIn, m.packetOut, m.digestLists, m.digestDropped, m.idleNotices, m.expired, m.collapsed,
			m.learnFailures, m.streamErrors, m)
	}
	return m
}

// Describe implements prometheus.Collector for the per-table gauges.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.tableEntries
	ch <- m.profileMembers
}

// Collect implements prometheus.Collector: table sizes read from the current snapshot.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	st := m.store.Load()
	if st.Schema == nil {
		return
	}
	for _, ti := range st.Schema.Tables {
		ch <- prometheus.MustNewConstMetric(m.tableEntries, prometheus.GaugeValue, float64(st.Table(ti.Index).Len()), ti.Name)
	}
	for _, pi := range st.Schema.Profiles {
		ch <- prometheus.MustNewConstMetric(m.profileMembers, prometheus.GaugeValue, float64(st.Profile(pi.Index).NumMembers()), pi.Name)
	}
}
