package packer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/semaphore"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/fill"
	"github.com/datavision/des/internal/lease"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/internal/reclaim"
)

// ErrStopped is returned when the packer was asked to stop (SIGTERM) before it finished.
var ErrStopped = errors.New("packer stopped before finishing")

// ErrDesShardDeleted is returned when the packer's DesShard is being deleted (or was replaced): its
// deletion waits for the packers to stop, so it starts no new container.
var ErrDesShardDeleted = fmt.Errorf("%w: its DesShard is being deleted", ErrStopped)

// Packer packs the shards of one Config.
type Packer struct {
	cfg    Config
	d      Deps
	lim    limits
	tune   Tuning
	budget *semaphore.Weighted // bytes fetched ahead of the writer
	// reclaimer deletes verified source objects after packing (nil when the DesSource keeps them); one
	// for the run, so that its rate limit spans every shard.
	reclaimer *reclaim.Reclaimer
}

// New checks the configuration; it does not contact anything.
func New(cfg Config, d Deps) (*Packer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if d.Kube == nil || d.Catalog == nil || d.Source == nil || d.Archive == nil {
		return nil, errors.New("packer: Kube, Catalog, Source and Archive clients are required")
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	if d.Log.GetSink() == nil {
		d.Log = logr.Discard()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	t := cfg.Tuning.withDefaults()
	p := &Packer{cfg: cfg, d: d, lim: shardLimits(cfg.DesShard.Spec), tune: t, budget: semaphore.NewWeighted(t.PrefetchBytes)}
	if del := cfg.Source.Spec.DeleteSource; del.DeletesSources() {
		mode := reclaim.Head
		if del.Check == desv1.CheckConditional {
			mode = reclaim.Conditional
		}
		r, err := reclaim.New(reclaim.Deps{Catalog: d.Catalog, Source: d.Source, Archive: d.Archive, Log: d.Log, Metrics: d.Metrics.Reclaim},
			reclaim.Options{DryRun: del.DryRun, Mode: mode, DeletesPerSecond: int(del.DeletesPerSecondOrDefault()), Deadline: cfg.Deadline})
		if err != nil {
			return nil, fmt.Errorf("packer: source deletion: %w", err)
		}
		p.reclaimer = r
	}
	return p, nil
}

// Run packs each shard in turn until its rows are packed or the time budget is spent. Cancelling ctx
// (SIGTERM) abandons the container being written, finishes one being committed, releases the Lease
// and returns ErrStopped. Errors of one shard do not stop the others; they are joined.
func (p *Packer) Run(ctx context.Context) error {
	var errs []error
	var held []int32
	for _, shard := range p.cfg.Shards {
		if ctx.Err() != nil {
			return errors.Join(append(errs, ErrStopped)...)
		}
		log := p.d.Log.WithValues("shard", shard)
		h, err := p.lock(ctx, shard, log)
		if errors.Is(err, lease.ErrHeld) {
			held = append(held, shard) // judged again below, by watching the Lease
			continue
		}
		if stop, err := p.shardDone(shard, p.packLocked(ctx, h, err, shard, log)); stop {
			return errors.Join(append(errs, err)...)
		} else if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(append(errs, p.packHeld(ctx, held)...)...)
}

// shardDone logs a shard's failure and says whether the run must stop (ErrStopped).
func (p *Packer) shardDone(shard int32, err error) (bool, error) {
	if errors.Is(err, ErrStopped) {
		return true, err
	}
	if err != nil {
		p.d.Log.Error(err, "shard failed", "shard", shard)
	}
	return false, err
}

// packHeld deals with the shards whose Lease looked held when their turn came. A Lease's renewTime
// is written with its holder's clock, which need not agree with ours, so it says nothing certain: the
// packer watches the Leases instead, on its own clock, for one Lease duration. One that changes has a
// live holder and its shard is skipped; one that stays unchanged for the whole duration has lost its
// holder (client-go's leader election judges the same way), and its shard is taken over and packed.
func (p *Packer) packHeld(ctx context.Context, shards []int32) []error {
	if len(shards) == 0 {
		return nil
	}
	watch := lease.NewObserver()
	first := map[int32]string{} // resourceVersion when first seen
	var errs []error
	for len(shards) > 0 && ctx.Err() == nil && p.d.Now().Before(p.cfg.Deadline) {
		var next []int32
		for _, shard := range shards {
			log := p.d.Log.WithValues("shard", shard)
			l, err := lease.Read(ctx, p.d.Kube, p.cfg.DesShard.Namespace, protocol.LeaseName(p.cfg.DesShard.Name, shard))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			o := watch.Observe(l, time.Now())
			if _, seen := first[shard]; !seen && l != nil {
				first[shard] = l.ResourceVersion
			}
			switch {
			case o.State == lease.Held && l.ResourceVersion != first[shard]:
				log.Info("shard skipped: another packer holds its Lease and renews it", "holder", lease.Holder(l))
				p.d.Metrics.ShardsSkipped.Inc()
			case o.State == lease.Held:
				next = append(next, shard)
			default:
				h, err := p.takeOver(ctx, shard, l, log)
				if errors.Is(err, lease.ErrHeld) {
					log.Info("shard skipped: another packer took its Lease first")
					p.d.Metrics.ShardsSkipped.Inc()
					continue
				}
				if stop, err := p.shardDone(shard, p.packLocked(ctx, h, err, shard, log)); stop {
					return append(errs, err)
				} else if err != nil {
					errs = append(errs, err)
				}
			}
		}
		if shards = next; len(shards) > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(p.tune.LeaseRenewInterval):
			}
		}
	}
	if ctx.Err() != nil {
		errs = append(errs, ErrStopped)
	}
	return errs
}

// packLocked is the rest of step 1, and step 7: write containers while rows remain and time allows,
// release the lock. lockErr is the failure to take the lock, if any.
func (p *Packer) packLocked(ctx context.Context, held *lease.Hold, lockErr error, shard int32, log logr.Logger) error {
	if lockErr != nil {
		p.d.Metrics.Errors.WithLabelValues("lease").Inc()
		return fmt.Errorf("lock shard %d: %w", shard, lockErr)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := held.Release(rctx); err != nil {
			log.Error(err, "release shard Lease; it expires by itself")
		}
	}()
	err := p.packShard(ctx, held, shard, log)
	if errors.Is(err, ErrStopped) || held.Err() != nil {
		return err
	}
	return errors.Join(err, p.reclaimShard(ctx, held, shard, log))
}

// packShard writes containers while the shard's ready rows fill one and time allows.
func (p *Packer) packShard(ctx context.Context, held *lease.Hold, shard int32, log logr.Logger) error {
	for containers := 0; ; containers++ {
		if err := p.desShardWanted(ctx); err != nil {
			return err
		}
		switch {
		case ctx.Err() != nil:
			return ErrStopped
		case !p.d.Now().Before(p.cfg.Deadline):
			log.Info("time budget spent; the next run continues", "containers", containers)
			return nil
		}
		if due, err := p.fillDue(ctx, shard, containers, log); err != nil || !due {
			return err
		}
		more, err := p.packContainer(ctx, held, shard, log)
		if err != nil {
			return fmt.Errorf("shard %d: %w", shard, err)
		}
		if !more {
			log.Info("shard done: no ready rows left", "containers", containers)
			return nil
		}
	}
}

// reclaimContainersPerPass bounds the containers one shard's deletion pass looks at (the run's
// deadline bounds its time); the next run takes the rest, oldest first.
const reclaimContainersPerPass = 1000

// reclaimShard deletes the source objects of the shard's committed containers, once their delay has
// passed, when the DesSource asks for it (spec.deleteSource): each is read back from the archive and
// checked first (internal/reclaim). It runs under the shard's Lease, so no two packers delete for one
// shard at once. What fails is left for the next run; a pass in which every delete failed and none
// succeeded is an error, so that a store refusing deletes (missing permission) fails the Job where a
// person sees it, not only in a metric.
func (p *Packer) reclaimShard(ctx context.Context, held *lease.Hold, shard int32, log logr.Logger) error {
	if p.reclaimer == nil {
		return nil
	}
	del := p.cfg.Source.Spec.DeleteSource
	log.V(1).Info("source deletion pass", "delay", del.Delay.Duration, "dryRun", del.DryRun)
	st, err := p.reclaimer.Pass(held.Context(), p.cfg.Source.Name, []int32{shard}, del.Delay.Duration, reclaimContainersPerPass)
	switch {
	case err != nil && ctx.Err() != nil:
		return ErrStopped
	case err != nil:
		p.d.Metrics.Errors.WithLabelValues("reclaim").Inc()
		return fmt.Errorf("shard %d: source deletion (left for the next run): %w", shard, err)
	case st.Errors > 0 && st.Deleted+st.AlreadyGone+st.WouldDelete == 0:
		return fmt.Errorf("shard %d: source deletion: %d source objects could not be deleted and none could (see the log); left for the next run", shard, st.Errors)
	}
	return nil
}

// fillDue judges the shard's ready rows by the fill policy (internal/fill) before each container: the
// controller judged them before creating the Job, but a full container later the remainder may no
// longer fill one, and it then waits for more rows (or maxWait) instead of becoming a small container.
func (p *Packer) fillDue(ctx context.Context, shard int32, containers int, log logr.Logger) (bool, error) {
	var stats map[int32]fill.Stats
	err := retryDB(ctx, func(ctx context.Context) error {
		var err error
		stats, err = p.d.Catalog.FillByShard(ctx, []int32{shard})
		return err
	})
	if err != nil {
		p.d.Metrics.Errors.WithLabelValues("catalog").Inc()
		return false, fmt.Errorf("shard %d: %w", shard, err)
	}
	policy := p.cfg.DesShard.Spec.Limits.FillPolicy()
	d := fill.Decide(policy, stats[shard], p.d.Now())
	if !d.Due {
		log.Info("shard done: its ready rows do not fill a container", "fill", fill.Describe(policy, stats[shard], d), "containers", containers)
	}
	return d.Due, nil
}

// desShardWanted re-reads the DesShard before each container: one that is being deleted, gone or
// replaced by another of the same name gets no new container. Its deletion waits while a packer holds
// one of its shard Leases, and this read comes after the Lease was taken, so no container can appear
// after the deletion's last look.
func (p *Packer) desShardWanted(ctx context.Context) error {
	ds := p.cfg.DesShard
	cur := &desv1.DesShard{}
	err := retry.OnError(apiBackoff, retriableAPIError, func() error {
		return p.d.Kube.Get(ctx, client.ObjectKeyFromObject(ds), cur)
	})
	switch {
	case apierrors.IsNotFound(err) || (err == nil && (!cur.DeletionTimestamp.IsZero() || cur.UID != ds.UID)):
		return ErrDesShardDeleted
	case err != nil && ctx.Err() != nil:
		return ErrStopped
	case err != nil:
		return fmt.Errorf("re-read DesShard %s: %w", ds.Name, err)
	}
	return nil
}

func (p *Packer) lock(ctx context.Context, shard int32, log logr.Logger) (*lease.Hold, error) {
	return lease.Acquire(ctx, p.d.Kube, p.leaseOptions(shard, log))
}

// takeOver claims a Lease this packer watched unchanged for its whole duration (nil: none exists).
func (p *Packer) takeOver(ctx context.Context, shard int32, l *coordinationv1.Lease, log logr.Logger) (*lease.Hold, error) {
	opts := p.leaseOptions(shard, log)
	if l == nil || lease.Holder(l) == "" {
		return lease.Claim(ctx, p.d.Kube, opts, l)
	}
	log.Info("taking over a Lease nobody renewed for its whole duration", "holder", lease.Holder(l))
	return lease.TakeOver(ctx, p.d.Kube, opts, l)
}

func (p *Packer) leaseOptions(shard int32, log logr.Logger) lease.Options {
	ds := p.cfg.DesShard
	return lease.Options{
		Namespace: ds.Namespace,
		Name:      protocol.LeaseName(ds.Name, shard),
		Labels: map[string]string{
			protocol.LabelDesShard:  ds.Name,
			protocol.LabelShard:     strconv.Itoa(int(shard)),
			protocol.LabelManagedBy: protocol.ManagedByDES,
		},
		Identity:      p.cfg.Identity,
		Duration:      p.tune.LeaseDuration,
		RenewInterval: p.tune.LeaseRenewInterval,
		RenewDeadline: p.tune.LeaseRenewDeadline,
		Now:           p.d.Now,
		Log:           log,
	}
}
