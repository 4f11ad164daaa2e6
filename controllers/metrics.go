package controllers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

type eventUpdate = event.UpdateEvent

var (
	jobsCreated = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "des_packer_jobs_created_total",
		Help: "Packer Jobs created, by DesShard.",
	}, []string{"namespace", "desshard"})
)

func init() {
	metrics.Registry.MustRegister(jobsCreated)
}

var recoveries = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "des_container_recoveries_total",
	Help: "Container recoveries by outcome (Committed = rolled forward or found committed, RolledBack, error).",
}, []string{"outcome"})

func init() {
	metrics.Registry.MustRegister(recoveries)
}

// ContainerPhaseCollector reports DesContainers by namespace and phase at scrape time, from the
// manager's cache, so the gauge can never drift from what the API holds.
type ContainerPhaseCollector struct {
	Reader client.Reader
}

var containersDesc = prometheus.NewDesc("des_containers", "DesContainers by namespace and phase.", []string{"namespace", "phase"}, nil)

// Describe implements prometheus.Collector.
func (c *ContainerPhaseCollector) Describe(ch chan<- *prometheus.Desc) { ch <- containersDesc }

// Collect implements prometheus.Collector.
func (c *ContainerPhaseCollector) Collect(ch chan<- prometheus.Metric) {
	list := &desv1.DesContainerList{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Reader.List(ctx, list); err != nil {
		ch <- prometheus.NewInvalidMetric(containersDesc, err)
		return
	}
	type key struct{ ns, phase string }
	counts := map[key]float64{}
	for i := range list.Items {
		counts[key{list.Items[i].Namespace, string(list.Items[i].Status.Phase.OrPending())}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(containersDesc, prometheus.GaugeValue, n, k.ns, k.phase)
	}
}
