package reader

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/datavision/des/internal/objstore"
)

const metricsNamespace = "des_reader"

// metrics live on the server's own registry, so several servers (tests) never collide and the
// sidecar exposes only what it owns.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	files    *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	// lookups counts files found by name, by how (catalog, index, search); catalogFallbacks counts
	// catalog lookups that failed and fell back to searching the archive.
	lookups          *prometheus.CounterVec
	catalogFallbacks prometheus.Counter
	placementHits    prometheus.Counter
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "http_request_duration_seconds",
			Help:    "Time to serve a request, body included, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "files_served_total", Help: "Files (or ranges of files) served, by route.",
		}, []string{"route"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "payload_bytes_served_total", Help: "Payload bytes written to clients, by route.",
		}, []string{"route"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "lookups_total",
			Help: "Files found by name, by how: catalog (exact placement, no index read), index (container from the catalog, index read), search (candidate containers of the name's day and shard).",
		}, []string{"by"}),
		placementHits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "placement_cache_hits_total",
			Help: "Files placed from the reader's memory of earlier catalog answers, without a catalog query.",
		}),
		catalogFallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "catalog_fallbacks_total",
			Help: "Catalog lookups that failed (database unreachable, timeout), after which the archive was searched instead.",
		}),
	}
	cache := func(f func(CacheStats) float64) func() float64 {
		return func() float64 { return f(s.cache.snapshot()) }
	}
	store := func(f func(objstore.StoreStats) float64) func() float64 {
		return func() float64 { return f(s.cfg.Store.Stats()) }
	}
	m.reg.MustRegister(
		m.requests, m.duration, m.files, m.bytes, m.lookups, m.catalogFallbacks, m.placementHits,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		counterFunc("index_cache_hits_total", "Container lookups answered from the index cache.", cache(func(c CacheStats) float64 { return float64(c.Hits) })),
		counterFunc("index_cache_misses_total", "Container lookups not in the index cache.", cache(func(c CacheStats) float64 { return float64(c.Misses) })),
		counterFunc("index_cache_opens_total", "Containers opened (misses minus lookups that joined a concurrent open).", cache(func(c CacheStats) float64 { return float64(c.Opens) })),
		counterFunc("index_cache_evictions_total", "Containers evicted from the index cache.", cache(func(c CacheStats) float64 { return float64(c.Evictions) })),
		counterFunc("index_cache_rejected_total", "Opened containers not kept: the ones they would evict were asked for at least as often.", cache(func(c CacheStats) float64 { return float64(c.Rejected) })),
		counterFunc("index_cache_oversized_total", "Opened containers not kept: larger than the whole cache.", cache(func(c CacheStats) float64 { return float64(c.Oversized) })),
		gaugeFunc("index_cache_entries", "Containers in the index cache.", cache(func(c CacheStats) float64 { return float64(c.Entries) })),
		gaugeFunc("index_cache_bytes", "Memory the cached containers report holding (compact index, meta summary, tail).", cache(func(c CacheStats) float64 { return float64(c.Bytes) })),
		counterFunc("s3_requests_total", "HTTP requests sent to the object store, retries included.", store(func(st objstore.StoreStats) float64 { return float64(st.Requests) })),
		counterFunc("s3_get_requests_total", "GET requests sent to the object store.", store(func(st objstore.StoreStats) float64 { return float64(st.Gets) })),
		counterFunc("s3_received_bytes_total", "Response body bytes received from the object store.", store(func(st objstore.StoreStats) float64 { return float64(st.BytesIn) })),
	)
	if s.cfg.IndexTier != nil {
		m.reg.MustRegister(s.cfg.IndexTier.collectors()...)
	}
	return m
}

func counterFunc(name, help string, f func() float64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: metricsNamespace, Name: name, Help: help}, f)
}

func gaugeFunc(name, help string, f func() float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: name, Help: help}, f)
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// statusClientClosed is recorded (never sent) when the client went away before the response ended,
// as nginx does.
const statusClientClosed = 499

// instrument records count and latency of route. A handler that aborts the response (http.ErrAbortHandler)
// is recorded and the abort passed on to net/http.
func (m *metrics) instrument(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		defer func() {
			code := rec.code()
			if p := recover(); p != nil {
				code = "aborted"
				defer panic(p)
			} else if r.Context().Err() != nil && !rec.complete() {
				code = strconv.Itoa(statusClientClosed)
			}
			m.requests.WithLabelValues(route, code).Inc()
			m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}()
		h(rec, r)
	}
}

// recorder remembers the status sent. Unwrap lets http.ResponseController reach Flush.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) code() string {
	if r.status == 0 {
		return strconv.Itoa(http.StatusOK)
	}
	return strconv.Itoa(r.status)
}

// complete reports whether a status was sent (the handler got as far as answering).
func (r *recorder) complete() bool { return r.status != 0 }
