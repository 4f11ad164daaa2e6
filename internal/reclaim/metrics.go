package reclaim

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the engine's Prometheus metrics.
type Metrics struct {
	Deleted prometheus.Counter
	Refused *prometheus.CounterVec // by reason (ReasonCRCMismatch, ReasonNoCRC, ReasonChanged, ReasonSizeChanged)
	Errors  prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Deleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "des_source_objects_deleted_total", Help: "Source objects deleted after their archived copy and the source were verified."}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "des_source_deletions_refused_total", Help: "Source objects kept because a check failed, by reason."}, []string{"reason"}),
		Errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "des_source_delete_errors_total", Help: "Source objects left for the next pass after a store or catalog error."}),
	}
	// The fixed reasons exist from the start, so a rate over them is defined before the first refusal.
	for _, r := range []string{ReasonCRCMismatch, ReasonNoCRC, ReasonChanged, ReasonSizeChanged} {
		m.Refused.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.Deleted, m.Refused, m.Errors)
	}
	return m
}
