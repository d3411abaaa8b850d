package pipeline

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// counter is a per-worker counter: written by one goroutine with plain atomic load+store (no locked
// read-modify-write on the fast path), read by anyone.
type counter struct{ v atomic.Uint64 }

func (c *counter) inc()         { c.v.Store(c.v.Load() + 1) }
func (c *counter) add(n uint64) { c.v.Store(c.v.Load() + n) }
func (c *counter) get() uint64  { return c.v.Load() }

type workerStats struct {
	packets, bytes, passes      counter
	forwarded, dropped, unbound counter
	oversize                    counter
	learned, learnFailures      counter
}

// Stats are the pipeline's packet statistics, summed over its workers.
type Stats struct {
	Packets, Bytes, Passes      uint64
	Forwarded, Dropped, Unbound uint64
	Oversize                    uint64
	Learned, LearnFailures      uint64
}

// Stats sums the statistics of every worker.
func (p *Pipeline) Stats() Stats {
	var s Stats
	p.workers.Range(func(_, v any) bool {
		ws := &v.(*Worker).stats
		s.Packets += ws.packets.get()
		s.Bytes += ws.bytes.get()
		s.Passes += ws.passes.get()
		s.Forwarded += ws.forwarded.get()
		s.Dropped += ws.dropped.get()
		s.Unbound += ws.unbound.get()
		s.Oversize += ws.oversize.get()
		s.Learned += ws.learned.get()
		s.LearnFailures += ws.learnFailures.get()
		return true
	})
	return s
}

var (
	descPackets = prometheus.NewDesc("calico_p4_pipeline_packets_total", "Packets run through the k8s.p4 pipeline.", nil, nil)
	descBytes   = prometheus.NewDesc("calico_p4_pipeline_bytes_total", "Bytes run through the k8s.p4 pipeline.", nil, nil)
	descPasses  = prometheus.NewDesc("calico_p4_pipeline_passes_total", "Pipeline passes (1 + recirculations per packet).", nil, nil)
	descResults = prometheus.NewDesc("calico_p4_pipeline_results_total", "Packets by outcome: forwarded, dropped (by the program; reasons in drop_counter), unbound (no k8s.p4 pipeline config), oversize.", []string{"result"}, nil)
	descLearn   = prometheus.NewDesc("calico_p4_pipeline_learn_total", "Learner-table inserts by the data plane (add_on_miss), by outcome.", []string{"result"}, nil)
)

// collector exports the per-worker counters, merged on scrape.
type collector struct{ p *Pipeline }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPackets, descBytes, descPasses, descResults, descLearn} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.p.Stats()
	ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(s.Packets))
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(descPasses, prometheus.CounterValue, float64(s.Passes))
	ch <- prometheus.MustNewConstMetric(descResults, prometheus.CounterValue, float64(s.Forwarded), "forwarded")
	ch <- prometheus.MustNewConstMetric(descResults, prometheus.CounterValue, float64(s.Dropped), "dropped")
	ch <- prometheus.MustNewConstMetric(descResults, prometheus.CounterValue, float64(s.Unbound), "unbound")
	ch <- prometheus.MustNewConstMetric(descResults, prometheus.CounterValue, float64(s.Oversize), "oversize")
	ch <- prometheus.MustNewConstMetric(descLearn, prometheus.CounterValue, float64(s.Learned), "ok")
	ch <- prometheus.MustNewConstMetric(descLearn, prometheus.CounterValue, float64(s.LearnFailures), "failed")
}
