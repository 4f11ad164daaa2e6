// Package marker names new catalog rows: it is `manager mark`, run by the CronJob the DesSource controller
// creates when spec.marker is set. Each run claims a naming node id (package nodeid), then names rows in
// batches, one transaction each (catalog.Catalog.Mark), until no row is left for the run. A row gets a DES
// name from a generator for the claimed node id, the shard of that name, and the ready status; rows the
// database refuses go to failed and are retried by later runs up to spec.marker.maxRetries.
//
// Names of a batch are admitted under the node Lease (nodeid.Claim.Admit) before the batch commits, so a
// marker that loses its Lease stops naming at once and never commits a name another holder could issue.
package marker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/naming"
	"github.com/datavision/des/internal/nodeid"
)

// Settings of one run; SettingsFor reads them from a DesSource.
type Settings struct {
	Prefix        string
	ShardBits     int
	BatchSize     int
	MinAge        time.Duration
	RowsPerSecond int // 0: no limit
	MaxRetries    int
	// RetryBackoff is how long a row that failed once while being packed waits before it is ready
	// again; each further failure doubles it, up to MaxRetryBackoff.
	RetryBackoff, MaxRetryBackoff time.Duration
}

// Retry backoffs: a source store's throttling or outage usually passes within minutes; a row that
// keeps failing is retried less and less often, at most a few times a day.
const (
	DefaultRetryBackoff    = 5 * time.Minute
	DefaultMaxRetryBackoff = 6 * time.Hour
)

// Defaults of spec.marker, used when a DesSource has none (a manual run) or leaves fields zero.
var defaultSettings = Settings{Prefix: desv1.DefaultNamePrefix, ShardBits: int(desv1.DefaultShardBits),
	BatchSize: int(desv1.DefaultMarkerBatchSize), MinAge: desv1.DefaultMarkerMinAge, MaxRetries: int(desv1.DefaultMaxRetries),
	RetryBackoff: DefaultRetryBackoff, MaxRetryBackoff: DefaultMaxRetryBackoff}

// SettingsFor returns the marker settings of a DesSource. The API server applies the CRD defaults; the
// same defaults are filled in here for objects that did not pass through it.
func SettingsFor(src *desv1.DesSource) Settings {
	s := defaultSettings
	if p := src.Spec.Naming.Prefix; p != "" {
		s.Prefix = p
	}
	if b := src.Spec.Naming.ShardBits; b != 0 {
		s.ShardBits = int(b)
	}
	if m := src.Spec.Marker; m != nil {
		if m.BatchSize > 0 {
			s.BatchSize = int(m.BatchSize)
		}
		s.MinAge = m.MinAge.Duration
		s.RowsPerSecond = int(m.RowsPerSecond)
		s.MaxRetries = int(m.MaxRetries)
	}
	return s
}

// Validate rejects settings no run could use.
func (s Settings) Validate() error {
	switch {
	case s.ShardBits < naming.MinShardBits || s.ShardBits > naming.MaxShardBits:
		return fmt.Errorf("shard bits %d out of range %d..%d", s.ShardBits, naming.MinShardBits, naming.MaxShardBits)
	case s.BatchSize < 1:
		return fmt.Errorf("batch size %d must be positive", s.BatchSize)
	case s.MinAge < 0 || s.RowsPerSecond < 0 || s.MaxRetries < 0:
		return fmt.Errorf("minAge, rowsPerSecond and maxRetries must not be negative")
	case s.RetryBackoff < 0 || s.MaxRetryBackoff < s.RetryBackoff:
		return fmt.Errorf("retry backoff %s must not be negative nor above its maximum %s", s.RetryBackoff, s.MaxRetryBackoff)
	}
	if _, err := naming.NewGenerator(naming.Config{Prefix: s.Prefix}); err != nil {
		return err
	}
	return nil
}

// Summary is the outcome of a run.
type Summary struct {
	Node    int
	Batches int
	Marked  int64
	Failed  int64
	// Retried rows had failed while being packed and are ready again.
	Retried  int64
	Duration time.Duration
}

// RowsPerSecond is the run's marking rate.
func (s Summary) RowsPerSecond() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Marked) / s.Duration.Seconds()
}

func (s Summary) String() string {
	return fmt.Sprintf("marked %d rows, %d failed, in %d batches in %s (%.0f rows/s) as node %d; %d failed rows ready again",
		s.Marked, s.Failed, s.Batches, s.Duration.Round(time.Millisecond), s.RowsPerSecond(), s.Node, s.Retried)
}

// Marker names the rows of one catalog under one node claim.
type Marker struct {
	cat      *catalog.Catalog
	claim    *nodeid.Claim
	gen      *naming.Generator
	settings Settings
	metrics  *Metrics
	log      logr.Logger
}

// New checks the settings and prepares a generator for the claim's node id. metrics may be nil.
func New(cat *catalog.Catalog, claim *nodeid.Claim, s Settings, metrics *Metrics, log logr.Logger) (*Marker, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("marker settings: %w", err)
	}
	gen, err := claim.NewGenerator(s.Prefix)
	if err != nil {
		return nil, fmt.Errorf("name generator: %w", err)
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Marker{cat: cat, claim: claim, gen: gen, settings: s, metrics: metrics, log: log}, nil
}

// Run names rows until none is left for this run, ctx ends or the node claim is lost. The summary counts
// what was committed even when Run returns an error.
func (m *Marker) Run(ctx context.Context) (Summary, error) {
	// Batches stop at once when the claim ends, not only at the next Admit.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(m.claim.Context(), func() { cancel(m.claim.Err()) })
	defer stop()

	start := time.Now()
	sum := Summary{Node: m.claim.Node()}
	retried, err := m.retryFailed(ctx)
	sum.Retried = retried
	if err != nil {
		return sum, err
	}
	limit := m.settings.BatchSize
	if rps := m.settings.RowsPerSecond; rps > 0 {
		// A batch of at most one second's worth keeps the pace smooth.
		limit = min(limit, rps)
	}
	q := catalog.MarkQuery{AfterID: catalog.FirstID, Limit: limit, MinAge: m.settings.MinAge, MaxRetries: m.settings.MaxRetries}
	for {
		batchStart := time.Now()
		res, err := m.cat.Mark(ctx, q, m.assign)
		sum.Duration = time.Since(start)
		if err != nil {
			if cause := context.Cause(ctx); cause != nil {
				err = fmt.Errorf("%w (%w)", err, cause)
			}
			return sum, err
		}
		if res.Selected == 0 {
			return sum, nil
		}
		m.metrics.observe(res, time.Since(batchStart))
		sum.Batches++
		sum.Marked += res.Marked
		sum.Failed += int64(len(res.Failed))
		for _, f := range res.Failed {
			m.log.Error(errors.New(f.Error), "row could not be named", "id", f.ID)
		}
		m.log.V(1).Info("batch marked", "rows", res.Selected, "marked", res.Marked, "failed", len(res.Failed), "lastID", res.LastID)
		q.AfterID = res.LastID
		if err := m.pace(ctx, start, sum.Marked+sum.Failed); err != nil {
			return sum, err
		}
	}
}

// retryFailed returns the rows that failed while being packed (a source object unreadable for a while,
// a store throttling) to ready once their backoff has passed, while their retries last. docs/protocol.md:
// failed → ready while des_retries < maxRetries.
func (m *Marker) retryFailed(ctx context.Context) (int64, error) {
	n, err := m.cat.RetryFailed(ctx, catalog.RetryPolicy{MaxRetries: m.settings.MaxRetries,
		Backoff: m.settings.RetryBackoff, MaxBackoff: m.settings.MaxRetryBackoff, Batch: m.settings.BatchSize})
	m.metrics.Retried.Add(float64(n))
	if n > 0 {
		m.log.Info("failed rows ready again", "rows", n)
	}
	return n, err
}

// assign names the rows of a batch and admits the names under the node Lease before they are stored.
func (m *Marker) assign(ids []int64) ([]catalog.Assignment, error) {
	names := make([]naming.Name, len(ids))
	as := make([]catalog.Assignment, len(ids))
	for i, id := range ids {
		n, err := m.gen.Next()
		if err != nil {
			return nil, err
		}
		s := n.String()
		shard, err := naming.Shard(s, m.settings.ShardBits)
		if err != nil {
			return nil, err
		}
		names[i], as[i] = n, catalog.Assignment{ID: id, Name: s, Shard: int32(shard)}
	}
	if err := m.claim.Admit(names); err != nil {
		return nil, err
	}
	return as, nil
}

// pace sleeps until done rows are no faster than RowsPerSecond since start.
func (m *Marker) pace(ctx context.Context, start time.Time, done int64) error {
	rps := m.settings.RowsPerSecond
	if rps <= 0 {
		return nil
	}
	due := start.Add(time.Duration(float64(done) / float64(rps) * float64(time.Second)))
	wait := time.Until(due)
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// ErrNoMarker means the DesSource has no spec.marker.
var ErrNoMarker = errors.New("DesSource has no spec.marker")
