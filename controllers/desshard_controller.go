package controllers

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	desv1 "github.com/datavision/des/api/v1alpha1"
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
	// SweepGrace is how old unaccounted archive debris must be before a run removes it.
	SweepGrace time.Duration
}

// +kubebuilder:rbac:groups=des.datavision.io,resources=desshards,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=des.datavision.io,resources=desshards/status,verbs=get;update;patch
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
	// pending are ready rows per shard; nil when the catalog could not be asked.
	pending map[int32]int64
	// trouble is a problem with the catalog or archive that does not stop scheduling.
	trouble string
}

// Reconcile observes the DesShard's source, Jobs and Leases, provides the packer ServiceAccount,
// starts a run when one is due, and records what it saw in the status.
func (r *DesShardReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ds := &desv1.DesShard{}
	if err := r.Get(ctx, req.NamespacedName, ds); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := ds.DeepCopy()
	now := r.Clock.Now()
	obs, problem, err := r.observe(ctx, ds, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	if problem == nil {
		problem = r.ensurePackerAccess(ctx, ds)
	}
	if problem != nil {
		return ctrl.Result{RequeueAfter: time.Minute}, r.updateStatus(ctx, base, ds, obs, problem)
	}
	requeue, scheduled, err := r.scheduleRun(ctx, ds, obs, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	r.inspectArchive(ctx, ds, obs, scheduled, now)
	return ctrl.Result{RequeueAfter: requeue}, r.updateStatus(ctx, base, ds, obs, nil)
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
		return packerAccessFailed(ctx, r.Recorder, ds, err)
	}
	return nil
}

// notReady is a configuration problem shown in the Ready condition instead of being retried fast.
type notReady struct{ reason, message string }

func (r *DesShardReconciler) observe(ctx context.Context, ds *desv1.DesShard, now time.Time) (*shardObservation, *notReady, error) {
	obs := &shardObservation{}
	src := &desv1.DesSource{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ds.Namespace, Name: ds.Spec.SourceRef}, src); err != nil {
		if apierrors.IsNotFound(err) {
			return obs, &notReady{"SourceNotFound", fmt.Sprintf("DesSource %q does not exist in namespace %s", ds.Spec.SourceRef, ds.Namespace)}, nil
		}
		return nil, nil, fmt.Errorf("get DesSource %s: %w", ds.Spec.SourceRef, err)
	}
	obs.source = src
	shards, err := expandShards(ds.Spec, src.Spec.Naming.ShardBits)
	if err != nil {
		return obs, &notReady{"InvalidShards", err.Error()}, nil
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
		obs.leases[int32(id)] = classifyLease(l, now)
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

// inspectArchive counts pending rows per shard and, when a run was just scheduled, sweeps archive
// debris. Problems here are reported in Degraded; they never stop scheduling.
func (r *DesShardReconciler) inspectArchive(ctx context.Context, ds *desv1.DesShard, obs *shardObservation, sweep bool, now time.Time) {
	if r.Connector == nil {
		return
	}
	cat, err := r.Catalog(ctx, obs.source)
	if err == nil {
		obs.pending, err = cat.ReadyByShard(ctx, obs.shards)
	}
	if err != nil {
		obs.trouble = "catalog: " + err.Error() // pgx errors name user and database, never the password
		return
	}
	if !sweep {
		return
	}
	store, err := r.ArchiveStore(ctx, ds)
	if err != nil {
		obs.trouble = err.Error()
		return
	}
	grace := r.SweepGrace
	if grace <= 0 {
		grace = DefaultSweepGrace
	}
	sw := &sweeper{store: store, cat: cat, bucket: ds.Spec.Archive.Bucket, prefix: ds.Spec.Archive.Prefix, grace: grace}
	removed, err := sw.sweep(ctx, obs.shards, obs.containers, now)
	if err != nil {
		obs.trouble = "archive sweep: " + err.Error()
	}
	if removed > 0 {
		r.Recorder.Eventf(ds, nil, "Warning", "ArchiveSwept", "Sweep", "removed %d uploads or objects that no container accounts for", removed)
	}
}

// scheduleRun creates the Jobs of a run when one is due and returns when to look again and whether
// it started a run.
func (r *DesShardReconciler) scheduleRun(ctx context.Context, ds *desv1.DesShard, obs *shardObservation, now time.Time) (time.Duration, bool, error) {
	interval := ds.Spec.Interval.Duration
	if interval <= 0 {
		interval = time.Hour
	}
	due, next := runDue(ds.Status.LastScheduleTime, interval, now)
	if ds.Spec.Suspend {
		return interval, false, nil
	}
	if !due {
		return next.Sub(now), false, nil
	}
	run := ds.Status.Runs + 1
	plans := planRun(ds.Name, run, groupShards(obs.shards, int(ds.Spec.ShardsPerJob)), obs.busy)
	for _, p := range plans {
		if err := r.createJob(ctx, ds, obs.source, p, run); err != nil {
			return 0, false, err
		}
	}
	ds.Status.Runs = run
	ds.Status.LastScheduleTime = &metav1.Time{Time: now}
	log.FromContext(ctx).Info("scheduled run", "run", run, "jobs", len(plans), "busyShards", len(obs.busy))
	return interval, true, nil
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
		return fmt.Errorf("create Job %s: %w", job.Name, err)
	}
	jobsCreated.WithLabelValues(ds.Namespace, ds.Name).Inc()
	r.Recorder.Eventf(ds, job, "Normal", "JobCreated", "CreateJob", "run %d: Job %s packs shards %s", run, job.Name, formatShardList(p.Shards))
	return nil
}

// updateStatus patches the status from base (the object as read) to what this pass observed.
func (r *DesShardReconciler) updateStatus(ctx context.Context, base, ds *desv1.DesShard, obs *shardObservation, problem *notReady) error {
	st := &ds.Status
	st.ObservedGeneration = ds.Generation
	st.ShardCount = int32(len(obs.shards))
	active, failed := 0, 0
	for i := range obs.jobs {
		switch finished, bad := jobFinished(&obs.jobs[i]); {
		case !finished:
			active++
		case bad:
			failed++
		}
	}
	st.ActiveJobs = int32(active)
	st.Containers = containersByPhase(obs.containers)
	st.Shards = shardStatuses(obs, st.Shards)
	setCondition(st, desv1.ConditionReady, problem == nil, reasonOr(problem, "Ready"), messageOr(problem, fmt.Sprintf("%d shards of DesSource %s", len(obs.shards), ds.Spec.SourceRef)), ds.Generation)
	progressingMsg := fmt.Sprintf("%d active Jobs", active)
	if ds.Spec.Suspend {
		progressingMsg = "suspended: no new Jobs"
	}
	setCondition(st, desv1.ConditionProgressing, active > 0, map[bool]string{true: "JobsActive", false: "Idle"}[active > 0], progressingMsg, ds.Generation)
	degraded, reason, msg := failed > 0, "NoFailures", fmt.Sprintf("%d failed Jobs retained", failed)
	switch {
	case obs.trouble != "":
		degraded, reason, msg = true, "ArchiveOrCatalogTrouble", obs.trouble
	case failed > 0:
		reason = "JobsFailed"
	}
	setCondition(st, desv1.ConditionDegraded, degraded, reason, msg, ds.Generation)
	if err := r.Status().Patch(ctx, ds, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("update status of DesShard %s: %w", ds.Name, err)
	}
	return nil
}

// shardStatuses lists only shards with something to say: active, leased, pending, or with a last
// success or error from their containers.
func shardStatuses(obs *shardObservation, previous []desv1.ShardStatus) []desv1.ShardStatus {
	prev := map[int32]desv1.ShardStatus{}
	for _, s := range previous {
		prev[s.ID] = s
	}
	last := lastOutcomes(obs.containers)
	var out []desv1.ShardStatus
	for _, id := range obs.shards {
		s := prev[id]
		s.ID = id
		s.ActiveJob, s.LeaseHolder = "", ""
		if reason, ok := obs.busy[id]; ok && strings.HasPrefix(reason, "job ") {
			s.ActiveJob = strings.TrimPrefix(reason, "job ")
		}
		if obs.leases[id] == leaseHeld {
			s.LeaseHolder = obs.holders[id]
		}
		if obs.pending != nil {
			s.PendingRows = obs.pending[id]
		}
		if o, ok := last[id]; ok {
			if o.success != nil {
				s.LastSuccess = o.success
			}
			s.LastError = o.err
		}
		if s.ActiveJob != "" || s.LeaseHolder != "" || s.LastError != "" || s.LastSuccess != nil || s.PendingRows > 0 {
			out = append(out, s)
		}
	}
	return out
}

type shardOutcome struct {
	success *metav1.Time
	failure time.Time
	err     string
}

// lastOutcomes finds per shard the last commit, and the reason of the last failure if it came after.
func lastOutcomes(containers []desv1.DesContainer) map[int32]shardOutcome {
	out := map[int32]shardOutcome{}
	for i := range containers {
		c := &containers[i]
		o := out[c.Spec.Shard]
		switch c.Status.Phase {
		case desv1.PhaseCommitted:
			if at := c.Status.CommittedAt; at != nil && (o.success == nil || at.After(o.success.Time)) {
				o.success = at
			}
		case desv1.PhaseRolledBack, desv1.PhaseFailed:
			if at := finishedAt(c); at.After(o.failure) {
				o.failure, o.err = at, c.Status.Reason
			}
		}
		out[c.Spec.Shard] = o
	}
	for id, o := range out {
		if o.success != nil && !o.failure.After(o.success.Time) {
			o.err = "" // an error older than the last success is history, not news
			out[id] = o
		}
	}
	return out
}

func containersByPhase(containers []desv1.DesContainer) map[string]int64 {
	if len(containers) == 0 {
		return nil
	}
	out := map[string]int64{}
	for i := range containers {
		phase := string(containers[i].Status.Phase)
		if phase == "" {
			phase = string(desv1.PhasePending)
		}
		out[phase]++
	}
	return out
}

func setCondition(st *desv1.DesShardStatus, typ string, ok bool, reason, message string, gen int64) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: gen})
}

func reasonOr(p *notReady, ok string) string {
	if p != nil {
		return p.reason
	}
	return ok
}

func messageOr(p *notReady, ok string) string {
	if p != nil {
		return p.message
	}
	return ok
}

// SetupWithManager watches DesShards, their Jobs, their shard Leases (holder changes only, so renewals
// every few seconds do not cause reconcile storms) and their DesSource.
func (r *DesShardReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&desv1.DesShard{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&batchv1.Job{}, builder.WithPredicates(jobFinishedChanged())).
		Watches(&coordinationv1.Lease{}, handler.EnqueueRequestsFromMapFunc(leaseToDesShard),
			builder.WithPredicates(leaseHolderChanged())).
		Watches(&desv1.DesSource{}, handler.EnqueueRequestsFromMapFunc(r.sourceToDesShards)).
		Named("desshard").
		Complete(r)
}

func leaseToDesShard(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[protocol.LabelDesShard]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
}

func (r *DesShardReconciler) sourceToDesShards(ctx context.Context, o client.Object) []reconcile.Request {
	list := &desv1.DesShardList{}
	if err := r.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, ds := range list.Items {
		if ds.Spec.SourceRef == o.GetName() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&ds)})
		}
	}
	return reqs
}

// leaseHolderChanged passes Lease creations, deletions and holder changes, not renewals.
func leaseHolderChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e eventUpdate) bool {
			return leaseHolder(e.ObjectOld.(*coordinationv1.Lease)) != leaseHolder(e.ObjectNew.(*coordinationv1.Lease))
		},
	}
}

// jobFinishedChanged passes Job creations, deletions and the moment a Job finishes.
func jobFinishedChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e eventUpdate) bool {
			oldDone, oldFailed := jobFinished(e.ObjectOld.(*batchv1.Job))
			newDone, newFailed := jobFinished(e.ObjectNew.(*batchv1.Job))
			return oldDone != newDone || oldFailed != newFailed
		},
	}
}
