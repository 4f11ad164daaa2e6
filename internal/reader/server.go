package reader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/naming"
	"github.com/datavision/des/internal/objstore"
)

// Server serves files from DES containers over HTTP. Create it with New; it is safe for concurrent use.
type Server struct {
	cfg     Config
	log     logr.Logger
	cache   *indexCache
	finders []Finder
	metrics *metrics
	mux     *http.ServeMux
	ready   readiness
	// fallbackLog spaces out the log lines of catalog fallbacks.
	fallbackLog rateLog
	// placements keeps the catalog's answers for placed files (name → placement).
	placements *expiringLRU[string, catalog.FileLocation]
	now        func() time.Time
	auth       *authenticator // nil: no authentication

	ctx    context.Context // lifetime: cancelled by Close
	cancel context.CancelFunc
}

// New checks cfg and builds a Server. It sends nothing to the store.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel, fallbackLog: rateLog{every: fallbackLogEvery}, now: time.Now,
		placements: newExpiringLRU[string, catalog.FileLocation](cfg.PlacementEntries)}
	s.cache = newIndexCache(ctx, cfg.CacheBytes, cfg.OpenTimeout, cfg.MaxConcurrentOpens, func(octx context.Context, key string) (*container, error) {
		return openContainer(octx, ctx, cfg.Store, cfg.Bucket, key, cfg.TailSize, cfg.MaxMetaCache, cfg.IndexTier)
	})
	if cfg.Kube != nil {
		s.finders = append(s.finders, NewKubeFinder(ctx, cfg.Kube, cfg.Namespace, cfg.Bucket, cfg.ListTTL, cfg.OpenTimeout, cfg.Logger))
	}
	s.finders = append(s.finders, NewListFinder(ctx, cfg.Store, cfg.Bucket, cfg.Prefixes, cfg.ListTTL, cfg.OpenTimeout))
	s.metrics = newMetrics(s)
	s.mux = s.routes()
	var err error
	if s.auth, err = newAuthenticator(ctx, cfg.Auth, s.log, s.metrics.reg); err != nil {
		cancel()
		return nil, fmt.Errorf("reader: invalid configuration: %w", err)
	}
	return s, nil
}

// Close stops background work (opens and listings in flight are cancelled).
func (s *Server) Close() { s.cancel() }

// Handler returns the HTTP handler with every route, behind authentication when Config.Auth enables it.
func (s *Server) Handler() http.Handler { return s.auth.wrap(s.mux) }

// DescribeMetrics sends the descriptions of every metric the server exposes on /metrics, whether or
// not it has a value yet (test/monitoring checks the dashboard's and the alerts' metric names by them).
func (s *Server) DescribeMetrics(ch chan<- *prometheus.Desc) { s.metrics.reg.Describe(ch) }

// CacheStats returns the index cache counters.
func (s *Server) CacheStats() CacheStats { return s.cache.snapshot() }

// Route names, as used in metrics.
const (
	routeContainerFile = "container_file"
	routeFile          = "file"
	routeBatch         = "batch"
)

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	m := s.metrics
	// GET patterns also match HEAD.
	mux.HandleFunc("GET /v1/containers/", m.instrument(routeContainerFile, s.handleContainerFile))
	mux.HandleFunc("GET /v1/files/{name}", m.instrument(routeFile, s.handleFile))
	mux.HandleFunc("POST /v1/batch", m.instrument(routeBatch, s.handleBatch))
	s.addProbes(mux)
	return mux
}

func (s *Server) addProbes(mux *http.ServeMux) {
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeText(w, http.StatusOK, "ok\n") })
	mux.HandleFunc("GET /readyz", s.handleReady)
}

// ProbeHandler serves only /healthz, /readyz and /metrics: it can listen on the pod IP for the kubelet
// and Prometheus while the file API stays on loopback.
func (s *Server) ProbeHandler() http.Handler {
	mux := http.NewServeMux()
	s.addProbes(mux)
	return mux
}

// Serve serves h on ln until ctx ends, then shuts down gracefully (in-flight requests get
// shutdownGrace).
func (s *Server) Serve(ctx context.Context, ln net.Listener, h http.Handler, shutdownGrace time.Duration) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ErrorLog:          httpErrorLog(s.log),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	err := hs.Shutdown(sctx)
	// Serve returns http.ErrServerClosed once Shutdown began; anything else is news too.
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// containerFor returns the open container for key after checking it may be read.
func (s *Server) containerFor(ctx context.Context, key string) (*container, error) {
	if err := s.cfg.checkKey(key); err != nil {
		return nil, err
	}
	ct, _, err := s.cache.get(ctx, key)
	return ct, err
}

// errNotInArchive means no candidate container holds the name.
var errNotInArchive = errors.New("name not found in any container of its day and shard")

// locate finds the container holding name. Candidate lists are used as cached; on a miss they are
// refreshed once (if older than MissRefresh) since a container may have been committed meanwhile.
func (s *Server) locate(ctx context.Context, name string) (*container, error) {
	n, err := naming.Parse(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadName, err)
	}
	shard, err := naming.Shard(name, s.cfg.ShardBits)
	if err != nil {
		return nil, err
	}
	var openErr error
	for _, maxAge := range []time.Duration{s.cfg.ListTTL, s.cfg.MissRefresh} {
		ct, err := s.searchDays(ctx, n.Day.Time(), int32(shard), name, maxAge)
		if ct != nil || (err != nil && !errors.Is(err, errNotInArchive)) {
			return ct, err
		}
		openErr = err
	}
	return nil, openErr
}

// searchDays looks for name in the containers of its day and of every later day that has any, up to
// tomorrow: a container's key carries the day it was written, which follows the name's day by however
// long the name waited to be packed (a suspended DesShard or an outage can make that days). Days
// within LookAheadDays of the name's day are searched even when no finder lists them.
func (s *Server) searchDays(ctx context.Context, day time.Time, shard int32, name string, maxAge time.Duration) (*container, error) {
	days, err := s.candidateDays(ctx, day, maxAge)
	if err != nil {
		return nil, err
	}
	var broken error
	seen := map[string]bool{}
	for _, d := range days {
		for _, f := range s.finders {
			keys, err := f.Containers(ctx, d, shard, maxAge)
			if err != nil {
				return nil, err
			}
			for _, key := range keys {
				if seen[key] {
					continue
				}
				seen[key] = true
				if bad, err := s.unaccounted(ctx, key, maxAge); err != nil || bad {
					if err != nil {
						return nil, err
					}
					s.log.V(1).Info("listed container skipped: its DesContainer is not Committed", "key", key)
					continue
				}
				ct, err := s.containerFor(ctx, key)
				if ctxErr := ctx.Err(); ctxErr != nil {
					return nil, ctxErr
				}
				if errors.Is(err, objstore.ErrNotFound) {
					// A container folder whose object is not written yet (big payloads go first).
					s.log.V(1).Info("candidate container has no object yet", "key", key)
					continue
				}
				if err != nil {
					// One unreadable container must not hide the name in another; report it only if
					// the name is found nowhere.
					s.log.Error(err, "candidate container unreadable", "key", key)
					broken = err
					continue
				}
				if _, err := ct.r.Stat(name); err == nil {
					return ct, nil
				}
			}
		}
	}
	if broken != nil {
		return nil, fmt.Errorf("%w (and a candidate container failed: %w)", errNotInArchive, broken)
	}
	return nil, errNotInArchive
}

// candidateDays are the days to search for a name of day, in order: the LookAheadDays window, then
// every later day up to tomorrow on which some finder knows containers.
func (s *Server) candidateDays(ctx context.Context, day time.Time, maxAge time.Duration) ([]time.Time, error) {
	day = day.UTC().Truncate(24 * time.Hour)
	window := day.AddDate(0, 0, s.cfg.LookAheadDays)
	last := s.now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	want := map[time.Time]bool{}
	for d := day; !d.After(window); d = d.AddDate(0, 0, 1) {
		want[d] = true
	}
	for _, f := range s.finders {
		known, err := f.Days(ctx, maxAge)
		if err != nil {
			return nil, err
		}
		for _, d := range known {
			if !d.Before(day) && !d.After(last) {
				want[d] = true
			}
		}
	}
	days := make([]time.Time, 0, len(want))
	for d := range want {
		days = append(days, d)
	}
	slices.SortFunc(days, func(a, b time.Time) int { return a.Compare(b) })
	return days, nil
}

// unaccounted reports whether a finder knows key as an object no committed container accounts for
// (its DesContainer is rolled back, or not committed yet): such an object is never served.
func (s *Server) unaccounted(ctx context.Context, key string, maxAge time.Duration) (bool, error) {
	for _, f := range s.finders {
		if v, ok := f.(interface {
			Unaccounted(context.Context, string, time.Duration) (bool, error)
		}); ok {
			if bad, err := v.Unaccounted(ctx, key, maxAge); err != nil || bad {
				return bad, err
			}
		}
	}
	return false, nil
}

// errBadName wraps client input errors about names.
var errBadName = errors.New("invalid name")

// statusOf maps an error to the HTTP status to answer with.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errForbiddenKey):
		return http.StatusForbidden
	case errors.Is(err, errUnsatisfiable):
		return http.StatusRequestedRangeNotSatisfiable
	case errors.Is(err, errTooManyNames):
		return http.StatusBadRequest
	case errors.Is(err, errBadName), errors.Is(err, desformat.ErrInvalidName), errors.Is(err, desformat.ErrNameTooLong),
		errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, errNotInArchive) && !errors.Is(err, desformat.ErrCorrupt) && !isStoreFailure(err):
		return http.StatusNotFound
	case errors.Is(err, errNotPacked), errors.Is(err, errOtherBucket):
		return http.StatusNotFound
	case errors.Is(err, desformat.ErrNotFound), errors.Is(err, objstore.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, context.Canceled):
		return statusClientClosed
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// isStoreFailure is true for errors other than "absent" (a candidate that could not be read).
func isStoreFailure(err error) bool {
	var se *objstore.Error
	return errors.As(err, &se) && !errors.Is(err, objstore.ErrNotFound)
}

var errBadRequest = errors.New("bad request")

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func writeError(w http.ResponseWriter, status int, err error) {
	h := w.Header()
	for _, k := range []string{"ETag", "Content-Range", "Accept-Ranges", "Content-Disposition"} {
		if k != "Content-Range" || status != http.StatusRequestedRangeNotSatisfiable {
			h.Del(k)
		}
	}
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	if status == statusClientClosed {
		return // nobody is listening
	}
	b, _ := json.Marshal(errorBody{Error: err.Error(), Status: status})
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeText(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text))
}

// fail answers err with its status and logs server-side failures.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.forgetChanged(err)
	status := statusOf(err)
	if status >= 500 && status != statusClientClosed {
		s.log.Error(err, "request failed", "method", r.Method, "path", r.URL.EscapedPath(), "status", status)
	}
	writeError(w, status, err)
}

// readiness caches the store probe so that frequent kubelet probes cost at most one request per
// readyTTL.
type readiness struct {
	mu  sync.Mutex
	at  time.Time
	err error
}

const readyTTL = 10 * time.Second

// handleReady answers 200 once the bucket can be listed under the first prefix with our credentials.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if err := s.checkReady(r.Context()); err != nil {
		writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error()+"\n")
		return
	}
	writeText(w, http.StatusOK, "ok\n")
}

func (s *Server) checkReady(ctx context.Context) error {
	s.ready.mu.Lock()
	defer s.ready.mu.Unlock()
	if !s.ready.at.IsZero() && time.Since(s.ready.at) < readyTTL {
		return s.ready.err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var err error
	for _, e := range s.cfg.Store.List(ctx, s.cfg.Bucket, objstore.ListOptions{Prefix: s.cfg.Prefixes[0] + "/", PageSize: 1}) {
		err = e
		break
	}
	s.ready.at, s.ready.err = time.Now(), err
	return err
}
