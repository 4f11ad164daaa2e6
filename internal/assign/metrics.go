package assign

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the name service.
type metrics struct {
	issued  prometheus.Counter
	latency *prometheus.HistogramVec
	leased  prometheus.Gauge
	node    prometheus.Gauge
	losses  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		issued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "des_assign_names_issued_total", Help: "DES names handed out.",
		}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "des_assign_request_duration_seconds", Help: "Duration of POST /v1/names requests by status code.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100 µs .. 3.3 s
		}, []string{"code"}),
		leased: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "des_assign_lease_held", Help: "1 while this replica holds a naming node id Lease, else 0.",
		}),
		node: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "des_assign_node_id", Help: "The naming node id held, or -1.",
		}),
		losses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "des_assign_lease_losses_total", Help: "Times this replica lost its naming node id Lease.",
		}),
	}
	m.node.Set(-1)
	reg.MustRegister(m.issued, m.latency, m.leased, m.node, m.losses)
	return m
}

func (m *metrics) held(node int) {
	m.node.Set(float64(node))
	if node < 0 {
		m.leased.Set(0)
	} else {
		m.leased.Set(1)
	}
}
