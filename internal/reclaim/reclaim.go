// Package reclaim deletes source objects once they are safely packed (issue 14). A source object is
// deleted only when its row is packed in a committed container whose stored payload was read back
// and matched the CRC-32C recorded when the source was fetched, and the source object is still the
// one that was fetched (its ETag). The catalog records each step (catalog/reclaim.go) in the order
// verify → delete → record, so a crash at any instant neither loses a file nor deletes one twice: a
// crash after a delete and before its record is healed by the next pass, which finds the source gone
// and records it. Rows whose check fails are kept and their reason recorded.
package reclaim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/objstore"
)

// Mode says how the engine makes sure a source object is still the one that was packed.
type Mode int

const (
	// Head (the default) HEADs every source object before deleting it and compares its ETag and size
	// with the ones recorded at fetch: it works on every store, including those that ignore the ETag
	// of a DeleteObjects key (versitygw v1.8.0 does, see objstore's tests). The delete still carries
	// the ETag, so a store that enforces it closes the window between the HEAD and the delete.
	Head Mode = iota
	// Conditional skips the HEAD for rows with a recorded ETag and relies on the store enforcing the
	// ETag of each DeleteObjects key (AWS S3 does); a key refused with PreconditionFailed is HEADed
	// once to tell "gone" from "changed". Never use it with a store that ignores the ETag.
	Conditional
)

func (m Mode) String() string {
	if m == Conditional {
		return "Conditional"
	}
	return "Head"
}

// Defaults of Options.
const (
	DefaultBatchSize   = 1000
	DefaultConcurrency = 8
)

// Options tune one pass.
type Options struct {
	// DryRun verifies (read back, source check) and records verified rows and refusals, but deletes
	// nothing.
	DryRun bool
	Mode   Mode
	// DeletesPerSecond bounds the source objects deleted per second (0: unlimited). It also bounds
	// the keys of one DeleteObjects request.
	DeletesPerSecond int
	// BatchSize is the rows verified and deleted together (at most 1000, the default).
	BatchSize int
	// Concurrency bounds the archive range reads, the source HEADs and GETs in flight.
	Concurrency int
	// Deadline: no new batch is started after it (zero: none).
	Deadline time.Time
}

// Deps are what the engine works with. Source holds the source objects, Archive the containers.
type Deps struct {
	Catalog *catalog.Catalog
	Source  *objstore.Store
	Archive *objstore.Store
	Log     logr.Logger
	// Metrics may be nil.
	Metrics *Metrics
}

// Stats say what a pass did.
type Stats struct {
	// Deleted source objects were deleted by this pass (also counted when recording them failed:
	// the next pass finds them gone and records them).
	Deleted int64
	// AlreadyGone sources were missing when checked (a crash between a delete and its record, or
	// deleted by someone else); they are recorded as deleted (in a dry run: verified).
	AlreadyGone int64
	// Refused rows are kept, with their reason recorded.
	Refused int64
	// WouldDelete rows passed every check in a dry run.
	WouldDelete int64
	// Errors are rows left for the next pass because of a failure (a store or database error).
	Errors int64
	// Finished containers have no row left to do.
	Finished int64
	// DeadlineReached says the pass stopped at Options.Deadline before it had visited everything.
	DeadlineReached bool
}

func (s *Stats) add(o Stats) {
	s.Deleted += o.Deleted
	s.AlreadyGone += o.AlreadyGone
	s.Refused += o.Refused
	s.WouldDelete += o.WouldDelete
	s.Errors += o.Errors
	s.Finished += o.Finished
}

// ErrInvalidOptions is returned by New for options it cannot run with.
var ErrInvalidOptions = errors.New("reclaim: invalid options")

// Reclaimer runs passes with fixed dependencies and options. Its rate limit spans its passes.
type Reclaimer struct {
	d       Deps
	o       Options
	limiter *rate.Limiter
	now     func() time.Time
}

// New checks the options and fills in defaults.
func New(d Deps, o Options) (*Reclaimer, error) {
	switch {
	case d.Catalog == nil || d.Source == nil || d.Archive == nil:
		return nil, fmt.Errorf("%w: a catalog, a source and an archive store are needed", ErrInvalidOptions)
	case o.Mode != Head && o.Mode != Conditional:
		return nil, fmt.Errorf("%w: mode %d", ErrInvalidOptions, o.Mode)
	case o.DeletesPerSecond < 0 || o.BatchSize < 0 || o.Concurrency < 0:
		return nil, fmt.Errorf("%w: negative %+v", ErrInvalidOptions, o)
	}
	if o.BatchSize == 0 || o.BatchSize > DefaultBatchSize {
		o.BatchSize = DefaultBatchSize
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	limiter := rate.NewLimiter(rate.Inf, objstore.MaxDeleteObjects)
	if o.DeletesPerSecond > 0 {
		limiter = rate.NewLimiter(rate.Limit(o.DeletesPerSecond), min(o.DeletesPerSecond, objstore.MaxDeleteObjects))
	}
	return &Reclaimer{d: d, o: o, limiter: limiter, now: time.Now}, nil
}

// Run is New followed by one pass over containers.
func Run(ctx context.Context, d Deps, o Options, containers []catalog.ReclaimContainer) (Stats, error) {
	r, err := New(d, o)
	if err != nil {
		return Stats{}, err
	}
	return r.Run(ctx, containers)
}

// Pass runs a pass over the containers of source in shards (all when empty) committed at least delay
// ago (by the database's clock), oldest first, at most limit of them: the catalog's
// ReclaimContainers and Run.
func (r *Reclaimer) Pass(ctx context.Context, source string, shards []int32, delay time.Duration, limit int) (Stats, error) {
	cs, err := r.d.Catalog.ReclaimContainers(ctx, source, shards, delay, r.o.DryRun, limit)
	if err != nil {
		return Stats{}, err
	}
	return r.Run(ctx, cs)
}

// Run visits containers in the order given (ReclaimContainers gives oldest first). A container that
// fails (its archive unreadable, the catalog unreachable) is left for the next pass and the others are
// still visited; the errors are returned joined. Nothing is deleted that was not verified, and
// nothing is recorded deleted that was not deleted or found gone.
func (r *Reclaimer) Run(ctx context.Context, containers []catalog.ReclaimContainer) (Stats, error) {
	var total Stats
	var errs []error
	for _, rc := range containers {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		if r.pastDeadline() {
			total.DeadlineReached = true
			break
		}
		st, err := r.container(ctx, rc)
		total.add(st)
		total.DeadlineReached = total.DeadlineReached || st.DeadlineReached
		if err != nil {
			r.d.Log.Error(err, "reclaiming a container's sources failed; the next pass retries", "container", rc.Container, "key", rc.Key)
			errs = append(errs, err)
		}
	}
	r.d.Log.Info("reclaim pass done", "dryRun", r.o.DryRun, "mode", r.o.Mode.String(), "containers", len(containers),
		"deleted", total.Deleted, "alreadyGone", total.AlreadyGone, "refused", total.Refused,
		"wouldDelete", total.WouldDelete, "errors", total.Errors, "finished", total.Finished, "deadlineReached", total.DeadlineReached)
	return total, errors.Join(errs...)
}

func (r *Reclaimer) pastDeadline() bool {
	return !r.o.Deadline.IsZero() && !r.now().Before(r.o.Deadline)
}

// container reclaims the sources of one container batch by batch, then finishes it when no row is
// left.
func (r *Reclaimer) container(ctx context.Context, rc catalog.ReclaimContainer) (Stats, error) {
	log := r.d.Log.WithValues("container", rc.Container)
	var st Stats
	archive, _, err := r.d.Archive.OpenReaderAt(ctx, rc.Bucket, rc.Key, 0)
	if err != nil {
		return st, fmt.Errorf("open container %s (s3://%s/%s): %w", rc.Container, rc.Bucket, rc.Key, err)
	}
	var after int64 = catalog.FirstID
	for {
		if r.pastDeadline() {
			st.DeadlineReached = true
			return st, nil
		}
		rows, err := r.d.Catalog.ReclaimRows(ctx, rc.Container, after, r.o.DryRun, r.o.BatchSize)
		if err != nil {
			return st, err
		}
		if len(rows) == 0 {
			break
		}
		after = rows[len(rows)-1].ID
		b := &batch{r: r, rc: rc, archive: archive, log: log, rows: make([]*row, len(rows))}
		for i := range rows {
			b.rows[i] = &row{ReclaimRow: rows[i]}
		}
		err = b.run(ctx)
		st.add(b.stats)
		if err != nil {
			return st, err
		}
	}
	done, err := r.d.Catalog.FinishReclaim(ctx, rc.Container, r.o.DryRun)
	if err != nil {
		return st, err
	}
	if done {
		st.Finished++
		log.V(1).Info("container's sources done", "dryRun", r.o.DryRun)
	}
	return st, nil
}
