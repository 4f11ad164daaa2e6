package marker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/connect"
	"github.com/datavision/des/internal/nodeid"
	"github.com/datavision/des/internal/resolve"
)

// Options of one `manager mark` run.
type Options struct {
	// Namespace and Source name the DesSource.
	Namespace, Source string
	// DSN of the catalog database (internal/connect reads it). Never logged.
	DSN string
	// Lease configures the node id claim; its Namespace defaults to Namespace and Identity is required.
	Lease nodeid.Options
	// MetricsAddr, when set, serves /metrics there while the run lasts.
	MetricsAddr string
	// Registry receives the marker's metrics; a new registry when nil.
	Registry *prometheus.Registry
	// Out receives the summary and the final metrics.
	Out io.Writer
	Log logr.Logger
}

// RunSource is `manager mark`: it reads the DesSource, checks its catalog, claims a node id, names rows
// until none is left, releases the node id and prints a summary and the metrics to o.Out.
func RunSource(ctx context.Context, kube client.Client, o Options) (Summary, error) {
	var src desv1.DesSource
	if err := kube.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: o.Source}, &src); err != nil {
		return Summary{}, fmt.Errorf("get DesSource %s/%s: %w", o.Namespace, o.Source, err)
	}
	if src.Spec.Marker == nil {
		// Without spec.marker the application names its rows itself; naming them here would race it.
		return Summary{}, fmt.Errorf("%s/%s: %w", o.Namespace, o.Source, ErrNoMarker)
	}
	settings := SettingsFor(&src)
	if err := settings.Validate(); err != nil {
		return Summary{}, fmt.Errorf("DesSource %s/%s: %w", o.Namespace, o.Source, err)
	}
	driver, err := resolve.Driver(&src)
	if err != nil {
		return Summary{}, fmt.Errorf("DesSource %s/%s: %w", o.Namespace, o.Source, err)
	}
	pool, err := connect.Open(ctx, driver, o.DSN, connect.PoolOptions{})
	if err != nil {
		return Summary{}, err
	}
	defer pool.Close()
	cat, err := catalog.New(pool.DB, resolve.Mapping(&src))
	if err != nil {
		return Summary{}, err
	}
	if err := cat.Check(ctx); err != nil {
		return Summary{}, connect.RedactError(err, o.DSN)
	}

	if o.Lease.Namespace == "" {
		o.Lease.Namespace = o.Namespace
	}
	if o.Lease.Log.GetSink() == nil {
		o.Lease.Log = o.Log
	}
	claim, err := nodeid.Acquire(ctx, kube, o.Lease)
	if err != nil {
		return Summary{}, err
	}
	defer func() {
		// The run's context may be cancelled already; the hand-over must still happen.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := claim.Release(rctx); err != nil {
			o.Log.Error(err, "releasing the naming node id failed; it is free again once its Lease expires")
		}
	}()

	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	metrics := NewMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"namespace": o.Namespace, "dessource": o.Source}, reg))
	if o.MetricsAddr != "" {
		stop, err := serveMetrics(o.MetricsAddr, reg, o.Log)
		if err != nil {
			return Summary{}, err
		}
		defer stop()
	}
	log := o.Log.WithValues("dessource", o.Namespace+"/"+o.Source, "node", claim.Node())
	m, err := New(cat, claim, settings, metrics, log)
	if err != nil {
		return Summary{}, err
	}
	log.Info("marking", "table", src.Spec.Catalog.Table, "batchSize", settings.BatchSize,
		"minAge", settings.MinAge.String(), "rowsPerSecond", settings.RowsPerSecond, "maxRetries", settings.MaxRetries)
	sum, runErr := m.Run(ctx)
	log.Info("marker run ended", "marked", sum.Marked, "failed", sum.Failed, "batches", sum.Batches,
		"duration", sum.Duration.String())
	if o.Out != nil {
		fmt.Fprintf(o.Out, "DesSource %s/%s: %s\n", o.Namespace, o.Source, sum)
		if err := WriteText(o.Out, reg); err != nil {
			log.Error(err, "writing metrics")
		}
	}
	return sum, connect.RedactError(runErr, o.DSN)
}

func serveMetrics(addr string, g prometheus.Gatherer, log logr.Logger) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(err, "metrics server")
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
