package cni

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the CNI server's Prometheus metrics.
type Metrics struct {
	requests *prometheus.CounterVec
	pods     prometheus.Gauge
}

// Request results (the result label).
const (
	resultOK      = "ok"
	resultInvalid = "invalid" // the request was refused as malformed
	resultError   = "error"   // the request was valid and failed
)

// NewMetrics registers the CNI server's metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calico_p4_cni_requests_total",
			Help: "CNI gRPC dataplane requests by operation (add, del) and result (ok, invalid, error)."},
			[]string{"op", "result"}),
		pods: prometheus.NewGauge(prometheus.GaugeOpts{Name: "calico_p4_cni_pod_interfaces",
			Help: "Pod interfaces (host interface → pod MAC) the CNI server knows."}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.pods} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("cni metrics: %w", err)
			}
			return nil, err
		}
	}
	for _, op := range []string{"add", "del"} {
		for _, r := range []string{resultOK, resultInvalid, resultError} {
			m.requests.WithLabelValues(op, r)
		}
	}
	return m, nil
}
