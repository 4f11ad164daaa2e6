package packer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/semaphore"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/lease"
	"github.com/datavision/des/internal/protocol"
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
	return &Packer{cfg: cfg, d: d, lim: shardLimits(cfg.DesShard.Spec), tune: t, budget: semaphore.NewWeighted(t.PrefetchBytes)}, nil
}

// Run packs each shard in turn until its rows are packed or the time budget is spent. Cancelling ctx
// (SIGTERM) abandons the container being written, finishes one being committed, releases the Lease
// and returns ErrStopped. Errors of one shard do not stop the others; they are joined.
func (p *Packer) Run(ctx context.Context) error {
	var errs []error
	for _, shard := range p.cfg.Shards {
		if ctx.Err() != nil {
			return errors.Join(append(errs, ErrStopped)...)
		}
		err := p.packShard(ctx, shard)
		if errors.Is(err, ErrStopped) {
			return errors.Join(append(errs, err)...)
		}
		if err != nil {
			p.d.Log.Error(err, "shard failed", "shard", shard)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// packShard is step 1 and 7: lock the shard, write containers while rows remain and time allows,
// release the lock.
func (p *Packer) packShard(ctx context.Context, shard int32) error {
	log := p.d.Log.WithValues("shard", shard)
	held, err := p.lock(ctx, shard, log)
	if errors.Is(err, lease.ErrHeld) {
		log.Info("shard skipped: another packer holds its Lease", "reason", err.Error())
		p.d.Metrics.ShardsSkipped.Inc()
		return nil
	}
	if err != nil {
		p.d.Metrics.Errors.WithLabelValues("lease").Inc()
		return fmt.Errorf("lock shard %d: %w", shard, err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := held.Release(rctx); err != nil {
			log.Error(err, "release shard Lease; it expires by itself")
		}
	}()
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
	ds := p.cfg.DesShard
	return lease.Acquire(ctx, p.d.Kube, lease.Options{
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
	})
}
