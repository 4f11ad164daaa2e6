package controllers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

// StatusCollector reports, at scrape time from the manager's cache, what the alerts in
// config/prometheus need and only the controller can see: packer Jobs run as short-lived pods that no
// Prometheus scrapes reliably, so their failures, the shards they leave late and the rows they fail are
// read here from the Jobs and from the statuses the controller already keeps. Read at scrape time, the
// values cannot drift from the API, and every controller replica reports the same (alerts take max).
type StatusCollector struct {
	Reader client.Reader
	// Now is the clock overdue times are measured by (nil: time.Now).
	Now func() time.Time
}

// Metric families of StatusCollector.
var (
	packerJobsDesc = prometheus.NewDesc("des_packer_jobs",
		"Packer Jobs kept (until --job-ttl after they finish), by DesShard and state: active, succeeded, failed.",
		[]string{"namespace", "desshard", "state"}, nil)
	packOverdueDesc = prometheus.NewDesc("des_desshard_pack_overdue_seconds",
		"How long the oldest pending row of the DesShard has waited beyond spec.limits.maxWait (status.shards[].packBy), as of the last catalog check; 0 when none has, or while suspended.",
		[]string{"namespace", "desshard"}, nil)
	intervalDesc = prometheus.NewDesc("des_desshard_interval_seconds",
		"The DesShard's spec.interval between packing runs: a row may wait up to maxWait plus one interval before a run packs it.",
		[]string{"namespace", "desshard"}, nil)
	sourceRowsDesc = prometheus.NewDesc("des_source_rows",
		"Catalog rows of the DesSource by state (unnamed, ready, claimed, packed, failed), as of its status.rows.countedAt.",
		[]string{"namespace", "dessource", "state"}, nil)
	sourceDeletionDesc = prometheus.NewDesc("des_source_deletion_rows",
		"Packed rows of the DesSource by what verified deletion did with their source objects (deleted, waiting, verified, refused), as of status.rows.countedAt.",
		[]string{"namespace", "dessource", "state"}, nil)
)

// Describe implements prometheus.Collector.
func (c *StatusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{packerJobsDesc, packOverdueDesc, intervalDesc, sourceRowsDesc, sourceDeletionDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A list that fails is reported as an invalid metric of its
// families (the scrape shows the error) without hiding the others.
func (c *StatusCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	c.collectJobs(ctx, ch)
	c.collectShards(ctx, ch, now())
	c.collectSources(ctx, ch)
}

func (c *StatusCollector) collectJobs(ctx context.Context, ch chan<- prometheus.Metric) {
	jobs := &batchv1.JobList{}
	if err := c.Reader.List(ctx, jobs, client.MatchingLabels{protocol.LabelManagedBy: protocol.ManagedByDES, protocol.LabelComponent: "packer"}); err != nil {
		ch <- prometheus.NewInvalidMetric(packerJobsDesc, err)
		return
	}
	type key struct{ ns, shard, state string }
	counts := map[key]float64{}
	for i := range jobs.Items {
		j := &jobs.Items[i]
		state := "active"
		switch finished, failed := jobFinished(j); {
		case failed:
			state = "failed"
		case finished:
			state = "succeeded"
		}
		counts[key{j.Namespace, j.Labels[protocol.LabelDesShard], state}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(packerJobsDesc, prometheus.GaugeValue, n, k.ns, k.shard, k.state)
	}
}

func (c *StatusCollector) collectShards(ctx context.Context, ch chan<- prometheus.Metric, now time.Time) {
	list := &desv1.DesShardList{}
	if err := c.Reader.List(ctx, list); err != nil {
		ch <- prometheus.NewInvalidMetric(packOverdueDesc, err)
		ch <- prometheus.NewInvalidMetric(intervalDesc, err)
		return
	}
	for i := range list.Items {
		ds := &list.Items[i]
		ch <- prometheus.MustNewConstMetric(packOverdueDesc, prometheus.GaugeValue, packOverdue(ds, now).Seconds(), ds.Namespace, ds.Name)
		ch <- prometheus.MustNewConstMetric(intervalDesc, prometheus.GaugeValue, ds.Spec.IntervalOrDefault().Seconds(), ds.Namespace, ds.Name)
	}
}

// packOverdue is how long past its pack-by the most overdue pending shard of ds is, by the last
// catalog check the status records (a check that could not ask the catalog leaves the previous
// verdicts, so an outage keeps the overdue time growing). A suspended DesShard packs nothing on
// purpose and reports 0.
func packOverdue(ds *desv1.DesShard, now time.Time) time.Duration {
	if ds.Spec.Suspend {
		return 0
	}
	var worst time.Duration
	for _, s := range ds.Status.Shards {
		if s.PendingRows <= 0 || s.PackBy == nil {
			continue
		}
		if late := now.Sub(s.PackBy.Time); late > worst {
			worst = late
		}
	}
	return worst
}

func (c *StatusCollector) collectSources(ctx context.Context, ch chan<- prometheus.Metric) {
	list := &desv1.DesSourceList{}
	if err := c.Reader.List(ctx, list); err != nil {
		ch <- prometheus.NewInvalidMetric(sourceRowsDesc, err)
		ch <- prometheus.NewInvalidMetric(sourceDeletionDesc, err)
		return
	}
	for i := range list.Items {
		src := &list.Items[i]
		if r := src.Status.Rows; r != nil {
			for state, n := range map[string]int64{"unnamed": r.Unnamed, "ready": r.Ready, "claimed": r.Claimed, "packed": r.Packed, "failed": r.Failed} {
				ch <- prometheus.MustNewConstMetric(sourceRowsDesc, prometheus.GaugeValue, float64(n), src.Namespace, src.Name, state)
			}
		}
		if s := src.Status.Sources; s != nil {
			for state, n := range map[string]int64{"deleted": s.Deleted, "waiting": s.Waiting, "verified": s.Verified, "refused": s.Refused} {
				ch <- prometheus.MustNewConstMetric(sourceDeletionDesc, prometheus.GaugeValue, float64(n), src.Namespace, src.Name, state)
			}
		}
	}
}
