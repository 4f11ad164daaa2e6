package packer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/datavision/des/internal/reclaim"
)

// Metrics are the packer's Prometheus metrics, exposed while its Job runs.
type Metrics struct {
	FilesPacked    prometheus.Counter
	BytesPacked    prometheus.Counter
	FilesFailed    prometheus.Counter
	Containers     *prometheus.CounterVec // by outcome
	ShardsSkipped  prometheus.Counter
	Errors         *prometheus.CounterVec // by operation
	FetchSeconds   prometheus.Histogram
	UploadSeconds  prometheus.Histogram // completing a container upload
	CommitSeconds  prometheus.Histogram
	ContainerBytes prometheus.Histogram
	// Reclaim counts verified deletions of source objects (internal/reclaim).
	Reclaim *reclaim.Metrics
}

// Container outcomes.
const (
	outcomeCommitted  = "committed"
	outcomeRolledBack = "rolled_back"
	outcomeAbandoned  = "abandoned"
	outcomeEmpty      = "empty"
)

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		FilesPacked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "des_packer_files_packed_total", Help: "Files written into committed containers."}),
		BytesPacked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "des_packer_bytes_packed_total", Help: "Payload bytes written into committed containers."}),
		FilesFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "des_packer_files_failed_total", Help: "Rows marked failed because their source object was missing or unreadable."}),
		Containers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "des_packer_containers_total", Help: "Containers finished, by outcome."}, []string{"outcome"}),
		ShardsSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "des_packer_shards_skipped_total", Help: "Shards skipped because another holder has their Lease."}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "des_packer_errors_total", Help: "Errors, by operation."}, []string{"op"}),
		FetchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "des_packer_fetch_duration_seconds", Help: "Time to fetch one source object.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}),
		UploadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "des_packer_upload_complete_duration_seconds", Help: "Time to send the last parts and complete a container upload.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12)}),
		CommitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "des_packer_commit_duration_seconds", Help: "Time of the catalog commit of a container.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2.5, 12)}),
		ContainerBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "des_packer_container_object_bytes", Help: "Size of committed container objects.",
			Buckets: prometheus.ExponentialBuckets(1<<20, 4, 10)}),
	}
	m.Reclaim = reclaim.NewMetrics(reg)
	if reg != nil {
		reg.MustRegister(m.FilesPacked, m.BytesPacked, m.FilesFailed, m.Containers, m.ShardsSkipped,
			m.Errors, m.FetchSeconds, m.UploadSeconds, m.CommitSeconds, m.ContainerBytes)
	}
	return m
}
