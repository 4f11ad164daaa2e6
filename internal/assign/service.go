// Package assign is the name-assignment service, `manager assign`: an HTTP server that hands out DES names
// with their shard ids. Each replica claims a naming node id with a Lease (package nodeid) and issues names
// only while it holds it; without a node id it answers 503 and is not ready, and it keeps trying to claim
// one again.
//
//	POST /v1/names {"count": 3, "prefix": "SCAN", "day": "20260224", "shardBits": 8}
//	→ 200 {"names": [{"name": "SCAN_20260224_(8FC93AFE0300_93)", "shard": 17}, ...]}
//
// count is 1..MaxCount; prefix, day (YYYYMMDD, default: the UTC day of generation) and shardBits (1..16)
// are optional. Errors are {"error": "..."} with 400 (bad request), 405, 413 or 503 (no node id held).
package assign

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/naming"
	"github.com/datavision/des/internal/nodeid"
)

// MaxCount is the most names one request may ask for.
const MaxCount = 10000

// Config of a Service.
type Config struct {
	// DefaultPrefix of names when a request has none; naming.DefaultPrefix when empty.
	DefaultPrefix string
	// DefaultShardBits when a request has none; 12 when 0.
	DefaultShardBits int
	// Lease configures the node id claim (namespace and identity are required).
	Lease nodeid.Options
	// RetryInterval between attempts to claim a node id when none is free or the claim was lost;
	// 5 s when 0.
	RetryInterval time.Duration
	// Registry for the service's metrics; a new one (with Go and process collectors) when nil.
	Registry *prometheus.Registry
	Log      logr.Logger
}

// issuer is the node id the service currently issues names under.
type issuer struct {
	claim *nodeid.Claim
	gen   *naming.Generator
}

// Service is one replica of the name service. Run claims node ids; Handler serves requests.
type Service struct {
	cfg     Config
	client  client.Client
	metrics *metrics
	log     logr.Logger

	mu      sync.RWMutex
	current *issuer // nil while no node id is held
}

// New validates cfg. It talks to nothing until Run.
func New(cfg Config, c client.Client) (*Service, error) {
	if cfg.DefaultPrefix == "" {
		cfg.DefaultPrefix = naming.DefaultPrefix
	}
	if cfg.DefaultShardBits == 0 {
		cfg.DefaultShardBits = int(desv1.DefaultShardBits)
	}
	if err := validPrefix(cfg.DefaultPrefix); err != nil {
		return nil, fmt.Errorf("default prefix: %w", err)
	}
	if _, err := naming.Shard("", cfg.DefaultShardBits); err != nil {
		return nil, fmt.Errorf("default shard bits: %w", err)
	}
	if cfg.Lease.Namespace == "" || cfg.Lease.Identity == "" {
		return nil, errors.New("the node lease namespace and the identity are required")
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 5 * time.Second
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	if cfg.Lease.Log.GetSink() == nil {
		cfg.Lease.Log = cfg.Log
	}
	return &Service{cfg: cfg, client: c, metrics: newMetrics(cfg.Registry), log: cfg.Log}, nil
}

// Ready reports whether the service holds a node id and can issue names.
func (s *Service) Ready() bool {
	cur := s.issuer()
	return cur != nil && cur.claim.Held()
}

// Node returns the node id held, or -1.
func (s *Service) Node() int {
	if cur := s.issuer(); cur != nil {
		return cur.claim.Node()
	}
	return -1
}

func (s *Service) issuer() *issuer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.current
}

func (s *Service) setIssuer(cur *issuer) {
	s.mu.Lock()
	s.current = cur
	s.mu.Unlock()
	node := -1
	if cur != nil {
		node = cur.claim.Node()
	}
	s.metrics.held(node)
}

// Run claims a node id, issues names under it until the claim is lost, and claims one again, until ctx
// ends; then it releases the node id it holds.
func (s *Service) Run(ctx context.Context) error {
	for {
		claim, err := nodeid.Acquire(ctx, s.client, s.cfg.Lease)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Error(err, "cannot claim a naming node id; not issuing names", "retryIn", s.cfg.RetryInterval.String())
			if !sleep(ctx, s.cfg.RetryInterval) {
				return nil
			}
			continue
		}
		gen, err := claim.NewGenerator(s.cfg.DefaultPrefix)
		if err != nil {
			_ = claim.Release(context.WithoutCancel(ctx))
			return err
		}
		s.setIssuer(&issuer{claim: claim, gen: gen})
		s.log.Info("issuing names", "node", claim.Node(), "startAfter", claim.After().UTC().Format(time.RFC3339Nano))
		select {
		case <-ctx.Done():
			s.setIssuer(nil)
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := claim.Release(rctx)
			cancel()
			return err
		case <-claim.Lost():
			s.setIssuer(nil)
			s.metrics.losses.Inc()
			s.log.Info("stopped issuing names: node id lost", "node", claim.Node(), "reason", claim.Err().Error())
			if !sleep(ctx, s.cfg.RetryInterval) {
				return nil
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Serve listens on addr and serves the service's handler while Run claims node ids. When ctx ends it
// stops accepting requests, lets those in flight finish, and only then releases the node id.
func Serve(ctx context.Context, addr string, s *Service) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ServeListener(ctx, l, s)
}

// ServeListener is Serve on an open listener, which it closes.
func ServeListener(ctx context.Context, l net.Listener, s *Service) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(runCtx) }()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(l) }()
	s.log.Info("name service listening", "address", l.Addr().String())

	var err1 error
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err1 = srv.Shutdown(sctx)
		cancel()
	case err1 = <-serveErr:
	}
	stopRun()
	err2 := <-runErr
	return errors.Join(err1, err2)
}
