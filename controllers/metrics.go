package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
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
