package controllers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/connect"
	"github.com/datavision/des/internal/fill"
	"github.com/datavision/des/internal/lease"
	"github.com/datavision/des/internal/protocol"
)

// DesShardReconciler turns DesShards into packer Jobs, one per group of due shards, never two for a
// shard at once.
type DesShardReconciler struct {
	client.Client
	*Connector
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	Jobs     JobDefaults
	// APIReader reads Leases and DesContainers around the cache when a deletion decides it may end
	// (nil: the cache).
	APIReader client.Reader
	// Leases judges shard Leases (busy, and during a deletion); nil compares renewTime to Clock.
	Leases *lease.Observer
	// SweepGrace is how old unaccounted archive debris must be before a run removes it.
	SweepGrace time.Duration
}

// +kubebuilder:rbac:groups=des.datavision.io,resources=desshards,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=des.datavision.io,resources=desshards/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=des.datavision.io,resources=desshards/finalizers,verbs=update
// +kubebuilder:rbac:groups=des.datavision.io,resources=dessources,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// shardObservation is what the reconciler learned about a DesShard's world in one pass.
type shardObservation struct {
	source     *desv1.DesSource
	shards     []int32
	jobs       []batchv1.Job
	leases     map[int32]leaseState
	holders    map[int32]string
	busy       map[int32]string
	containers []desv1.DesContainer
	// pending sums up the ready rows per shard; nil when the catalog could not be asked.
	pending map[int32]fill.Stats
	// fill is the fill policy's verdict per shard with ready rows (nil with pending).
	fill map[int32]fill.Decision
	// reclaim counts per shard the committed containers whose source objects are due for verified
	// deletion (nil when the source keeps them, or the catalog could not be asked).
	reclaim map[int32]int64
	// trouble is a problem with the catalog or archive that does not stop scheduling.
	trouble string
	// jobRefused is why the API server refused a packer Job of this pass, if it did.
	jobRefused string
}

// Reconcile observes the DesShard's source, Jobs and Leases, checks that its packer image and
// ServiceAccount are allowed, provides the packer ServiceAccount, starts a run when one is due, and
// records what it saw in the status. The status is patched in a deferred call, so every way out of a
// pass that learned something (a problem a person must fix, a refused Job) shows in `kubectl
// describe`, not only in the log. A deleted DesShard is torn down instead (desshard_delete.go).
func (r *DesShardReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	ds := &desv1.DesShard{}
	if err := r.Get(ctx, req.NamespacedName, ds); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ds.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, ds)
	}
	if err := ensureFinalizer(ctx, r.Client, ds); err != nil {
		return ctrl.Result{}, err
	}
	base := ds.DeepCopy()
	now := r.Clock.Now()
	obs, problem, err := r.observe(ctx, ds, now)
	if err != nil {
		return ctrl.Result{}, err // the API server failed us; nothing was learned to record
	}
	defer func() {
		if err := r.updateStatus(ctx, base, ds, obs, problem); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	r.pruneContainers(ctx, ds, obs)
	if problem == nil {
		problem = r.checkJobSettings(ds)
	}
	if problem == nil {
		if problem, err = r.checkOverlap(ctx, ds, obs.shards); err != nil {
			return ctrl.Result{}, err
		}
	}
	if problem == nil {
		problem = r.checkArchiveCredentials(ctx, ds)
	}
	if problem == nil {
		problem = r.ensurePackerAccess(ctx, ds)
	}
	if problem != nil {
		return ctrl.Result{RequeueAfter: time.Minute}, nil
	}
	cat := r.inspectCatalog(ctx, ds, obs, now)
	requeue, scheduled, err := r.scheduleRun(ctx, ds, obs, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	if scheduled && cat != nil {
		r.sweepArchive(ctx, ds, obs, cat, now)
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// ensurePackerAccess provides the ServiceAccount the DesShard's Jobs run as, and its RoleBinding,
// before any Job needs them: without the account the Job controller creates no pods. A DesShard
// that names its own account (spec.job.serviceAccountName) gets nothing.
func (r *DesShardReconciler) ensurePackerAccess(ctx context.Context, ds *desv1.DesShard) *notReady {
	account, provided := packerAccountFor(ds, r.Jobs)
	if !provided {
		return nil
	}
	if err := ensurePackerAccess(ctx, r.Client, r.Scheme, ds, account); err != nil {
		return packerAccessFailed(ctx, err)
	}
	return nil
}

// checkArchiveCredentials reads the archive store's credentials Secret before any Job mounts it: a
// missing Secret or key is a person's to fix (Ready=False naming the Secret and the keys), and no
// packer should start without its own credentials. Other store trouble is left to inspectArchive.
func (r *DesShardReconciler) checkArchiveCredentials(ctx context.Context, ds *desv1.DesShard) *notReady {
	if r.Connector == nil {
		return nil
	}
	_, err := connect.StoreConfig(ctx, r.secrets, ds.Namespace, ds.Spec.Archive.ObjectStore)
	if problem := secretProblem(err); problem != nil {
		problem.message = "archive " + problem.message
		return problem
	}
	return nil
}

// notReady is a configuration problem shown in the Ready condition instead of being retried fast.
type notReady struct {
	reason  desv1.ConditionReason
	message string
}

func (r *DesShardReconciler) observe(ctx context.Context, ds *desv1.DesShard, now time.Time) (*shardObservation, *notReady, error) {
	obs := &shardObservation{}
	src := &desv1.DesSource{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ds.Namespace, Name: ds.Spec.SourceRef}, src); err != nil {
		if apierrors.IsNotFound(err) {
			return obs, &notReady{desv1.ReasonSourceNotFound, fmt.Sprintf("DesSource %q does not exist in namespace %s", ds.Spec.SourceRef, ds.Namespace)}, nil
		}
		return nil, nil, fmt.Errorf("get DesSource %s: %w", ds.Spec.SourceRef, err)
	}
	obs.source = src
	if !src.DeletionTimestamp.IsZero() {
		return obs, &notReady{desv1.ReasonSourceDeleting, fmt.Sprintf("DesSource %q is being deleted: no new Jobs", src.Name)}, nil
	}
	shards, err := expandShards(ds.Spec, src.Spec.Naming.ShardBits)
	if err != nil {
		return obs, &notReady{desv1.ReasonInvalidShards, err.Error()}, nil
	}
	obs.shards = shards
	jobs := &batchv1.JobList{}
	if err := r.List(ctx, jobs, client.InNamespace(ds.Namespace), client.MatchingLabels{protocol.LabelDesShard: ds.Name}); err != nil {
		return nil, nil, fmt.Errorf("list Jobs of %s: %w", ds.Name, err)
	}
	obs.jobs = jobs.Items
	leases := &coordinationv1.LeaseList{}
	if err := r.List(ctx, leases, client.InNamespace(ds.Namespace), client.MatchingLabels{protocol.LabelDesShard: ds.Name}); err != nil {
		return nil, nil, fmt.Errorf("list Leases of %s: %w", ds.Name, err)
	}
	obs.leases, obs.holders = map[int32]leaseState{}, map[int32]string{}
	for i := range leases.Items {
		l := &leases.Items[i]
		id, err := strconv.ParseInt(l.Labels[protocol.LabelShard], 10, 32)
		if err != nil || l.Name != protocol.LeaseName(ds.Name, int32(id)) {
			continue // not a shard lock of ours
		}
		// Busy is judged on the cached Lease by the observer that judges writers (by what this controller
		// saw change, never the holder's renewTime against our clock): a dead packer whose clock ran
		// minutes ahead would otherwise keep its shard "busy" for those minutes. Calling a shard free a
		// moment early only costs a Job whose packer watches the Lease and skips the shard.
		obs.leases[int32(id)] = observeLease(r.Leases, l, now).State
		obs.holders[int32(id)] = leaseHolder(l)
	}
	obs.busy = busyShards(obs.jobs, obs.leases, obs.holders)
	containers := &desv1.DesContainerList{}
	if err := r.List(ctx, containers, client.InNamespace(ds.Namespace), client.MatchingLabels{protocol.LabelDesShard: ds.Name}); err != nil {
		return nil, nil, fmt.Errorf("list DesContainers of %s: %w", ds.Name, err)
	}
	obs.containers = containers.Items
	return obs, nil, nil
}

// inspectCatalog sums up each shard's ready rows and judges them by the fill policy. Catalog trouble
// is reported in Degraded; it never stops scheduling (the packer reports it too). It returns the
// catalog, nil when it could not be asked.
func (r *DesShardReconciler) inspectCatalog(ctx context.Context, ds *desv1.DesShard, obs *shardObservation, now time.Time) *catalog.Catalog {
	if r.Connector == nil {
		return nil
	}
	cat, err := r.Catalog(ctx, obs.source)
	if err == nil {
		obs.pending, err = cat.FillByShard(ctx, obs.shards)
	}
	if err != nil {
		obs.trouble = "catalog: " + err.Error() // pgx errors name user and database, never the password
		return nil
	}
	policy := ds.Spec.Limits.FillPolicy()
	obs.fill = make(map[int32]fill.Decision, len(obs.pending))
	for id, st := range obs.pending {
		obs.fill[id] = fill.Decide(policy, st, now)
	}
	if del := obs.source.Spec.DeleteSource; del.DeletesSources() {
		obs.reclaim, err = cat.ReclaimByShard(ctx, obs.source.Name, obs.shards, del.Delay.Duration, del.DryRun)
		if err != nil {
			obs.trouble = "catalog: " + err.Error()
		}
	}
	return cat
}

// sweepArchive removes archive debris no container accounts for, when a run was just scheduled.
// Problems here are reported in Degraded; they never stop scheduling.
func (r *DesShardReconciler) sweepArchive(ctx context.Context, ds *desv1.DesShard, obs *shardObservation, cat *catalog.Catalog, now time.Time) {
	store, err := r.ArchiveStore(ctx, ds)
	if err != nil {
		obs.trouble = err.Error()
		return
	}
	grace := r.SweepGrace
	if grace <= 0 {
		grace = defaultSweepGrace
	}
	sw := &sweeper{store: store, cat: cat, bucket: ds.Spec.Archive.Bucket, prefix: ds.Spec.Archive.Prefix, grace: grace}
	removed, err := sw.sweep(ctx, obs.shards, obs.containers, now)
	if err != nil {
		obs.trouble = "archive sweep: " + err.Error()
	}
	if removed > 0 {
		r.Recorder.Eventf(ds, nil, corev1.EventTypeWarning, string(desv1.ReasonArchiveSwept), "Sweep", "removed %d uploads or objects that no container accounts for", removed)
	}
}

// scheduleRun creates the Jobs of a run when one is due and returns when to look again and whether
// it started a run.
//
// Every interval the run checks the shards' fill: only shards the fill policy finds due get a Job (all
// of them when the catalog could not be asked: the packer judges again). A check that finds none due
// starts nothing and is recorded in status.fill.checkedAt, so the next check comes an interval later.
func (r *DesShardReconciler) scheduleRun(ctx context.Context, ds *desv1.DesShard, obs *shardObservation, now time.Time) (time.Duration, bool, error) {
	interval := ds.Spec.IntervalOrDefault()
	if asked, requested, err := packNowRequest(ds.Annotations, obs.shards); asked {
		return r.packNow(ctx, ds, obs, requested, err, now) // desshard_packnow.go
	}
	due, next := runDue(lastCheck(&ds.Status), interval, now)
	if ds.Spec.Suspend {
		return interval, false, nil
	}
	if !due {
		return next.Sub(now), false, nil
	}
	plans := r.planShards(ds, obs, dueShards(obs.shards, obs.fill, obs.reclaim))
	if len(plans) == 0 {
		markChecked(&ds.Status, now)
		log.FromContext(ctx).V(1).Info("no shard due", "pendingShards", len(obs.pending), "busyShards", len(obs.busy))
		return interval, false, nil
	}
	if err := r.startRun(ctx, ds, obs, plans, now); err != nil {
		return 0, false, err
	}
	return interval, true, nil
}

// planShards groups shards into the next run's Jobs, leaving out busy ones.
func (r *DesShardReconciler) planShards(ds *desv1.DesShard, obs *shardObservation, shards []int32) []jobPlan {
	return planRun(ds.Name, ds.Status.Runs+1, groupShards(shards, int(ds.Spec.ShardsPerJob)), obs.busy)
}

// startRun creates the next run's Jobs and records the run in the status.
func (r *DesShardReconciler) startRun(ctx context.Context, ds *desv1.DesShard, obs *shardObservation, plans []jobPlan, now time.Time) error {
	run := ds.Status.Runs + 1
	for _, p := range plans {
		if err := r.createJob(ctx, ds, obs.source, p, run); err != nil {
			obs.jobRefused = err.Error()
			return err
		}
	}
	ds.Status.Runs = run
	ds.Status.LastScheduleTime = &metav1.Time{Time: now}
	markChecked(&ds.Status, now)
	log.FromContext(ctx).Info("scheduled run", "run", run, "jobs", len(plans), "busyShards", len(obs.busy))
	return nil
}

func (r *DesShardReconciler) createJob(ctx context.Context, ds *desv1.DesShard, src *desv1.DesSource, p jobPlan, run int64) error {
	job := buildJob(ds, src, p, run, r.Jobs)
	if err := controllerutil.SetControllerReference(ds, job, r.Scheme); err != nil {
		return err
	}
	err := r.Create(ctx, job)
	switch {
	case apierrors.IsAlreadyExists(err):
		return nil // a retried reconcile of the same run
	case err != nil:
		// ResourceQuota, Pod Security admission and RBAC refuse with a message that says what to
		// change; the run is retried with backoff, and Degraded (and its Warning event) tell a person.
		return fmt.Errorf("run %d: create Job %s: %w", run, job.Name, err)
	}
	jobsCreated.WithLabelValues(ds.Namespace, ds.Name).Inc()
	r.Recorder.Eventf(ds, job, corev1.EventTypeNormal, string(desv1.ReasonJobCreated), "CreateJob", "run %d: Job %s packs shards %s", run, job.Name, protocol.FormatShardList(p.Shards))
	return nil
}
