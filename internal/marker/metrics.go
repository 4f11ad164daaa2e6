package marker

import (
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/datavision/des/internal/catalog"
)

// Metrics of the marker. A CronJob's pod is gone before anything could scrape it, so `manager mark`
// prints them when it ends (WriteText) and serves them only when asked to (--metrics-bind-address).
type Metrics struct {
	Marked prometheus.Counter
	Failed prometheus.Counter
	// Retried counts rows that failed while being packed and were returned to ready.
	Retried prometheus.Counter
	Batch   prometheus.Histogram
}

// NewMetrics creates the marker's metrics and registers them with reg, if not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Marked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "des_marker_rows_marked_total", Help: "Catalog rows given a DES name and moved to ready.",
		}),
		Failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "des_marker_rows_failed_total", Help: "Catalog rows the database refused to name; moved to failed.",
		}),
		Retried: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "des_marker_rows_retried_total", Help: "Failed catalog rows returned to ready for another packing attempt.",
		}),
		Batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "des_marker_batch_duration_seconds", Help: "Duration of one marker batch (one transaction).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14), // 5 ms .. 41 s
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Marked, m.Failed, m.Retried, m.Batch)
	}
	return m
}

func (m *Metrics) observe(res catalog.MarkResult, d time.Duration) {
	m.Marked.Add(float64(res.Marked))
	m.Failed.Add(float64(len(res.Failed)))
	m.Batch.Observe(d.Seconds())
}

// WriteText writes every metric of g in the Prometheus text format.
func WriteText(w io.Writer, g prometheus.Gatherer) error {
	families, err := g.Gather()
	if err != nil {
		return err
	}
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(w, f); err != nil {
			return err
		}
	}
	return nil
}
