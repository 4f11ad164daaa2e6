package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/connect"
	"github.com/datavision/des/internal/lease"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/resolve"
)

// DesSourceReconciler checks that a DesSource's catalog and bucket are usable, migrates the catalog
// when allowed, and reports row counts.
type DesSourceReconciler struct {
	client.Client
	Scheme *runtime.Scheme
	// Jobs are the defaults of the marker CronJob's pods (image, service account, host network).
	Jobs JobDefaults
	// Connector reads Secrets straight from the API server, so that the manager never caches every
	// Secret of the cluster, and caches catalog connections across reconciles.
	*Connector
	// APIReader reads DesContainers around the cache for the claim sweep (nil: the cache).
	APIReader client.Reader
	// Leases judges shard Leases during a deletion (see deletion.go); nil compares renewTime to Clock.
	Leases   *lease.Observer
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// RecheckInterval is how often a source is inspected again (counts refresh).
	RecheckInterval time.Duration
	// RecountDelay is how long after a packer or marker Job of the source ends its rows are counted
	// again (0: defaultRecountDelay); Jobs that end within it are counted once.
	RecountDelay time.Duration
}

// +kubebuilder:rbac:groups=des.datavision.io,resources=dessources,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=des.datavision.io,resources=dessources/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=des.datavision.io,resources=dessources/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

// Reconcile provides the packer ServiceAccount and RoleBinding, keeps the marker CronJob in line with
// the spec, inspects the catalog and the bucket and records the outcome in Ready, Degraded and the
// row counts. The status is patched in a deferred call, so every problem of the pass reaches it.
func (r *DesSourceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	src := &desv1.DesSource{}
	if err := r.Get(ctx, req.NamespacedName, src); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !src.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, src)
	}
	if err := ensureFinalizer(ctx, r.Client, src); err != nil {
		return ctrl.Result{}, err
	}
	pass := &sourcePass{base: src.DeepCopy()}
	defer func() {
		if err := r.updateStatus(ctx, src, pass); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	// The marker's pods run as the packer ServiceAccount, which must exist before they are created.
	if err := ensurePackerAccess(ctx, r.Client, r.Scheme, src, r.Jobs.ServiceAccountName); err != nil {
		pass.problem = packerAccessFailed(ctx, err)
		return ctrl.Result{RequeueAfter: r.recheck()}, nil
	}
	if err := reconcileMarker(ctx, r.Client, r.Scheme, src, r.Jobs); err != nil {
		pass.markerErr = err
	}
	// The catalog and bucket are checked even when the marker failed: Ready must say what is true.
	pass.counts, pass.problem = r.inspect(ctx, src)
	if pass.problem != nil {
		log.FromContext(ctx).Info("source not ready", "reason", pass.problem.reason, "message", pass.problem.message)
	}
	if pass.markerErr != nil {
		return ctrl.Result{}, pass.markerErr // retried with backoff; Degraded says why meanwhile
	}
	return ctrl.Result{RequeueAfter: r.recheck()}, nil
}

// sourcePass is what one reconcile of a DesSource learned, for its status.
type sourcePass struct {
	base      *desv1.DesSource // the object as read, to patch from
	counts    *catalog.Tally   // nil when the catalog could not be counted
	problem   *notReady        // why the source is not Ready
	markerErr error            // why the marker CronJob could not be made to match the spec
}

func (r *DesSourceReconciler) recheck() time.Duration {
	if r.RecheckInterval > 0 {
		return r.RecheckInterval
	}
	return time.Minute
}

// inspect runs the checks in the order a person would debug them and stops at the first problem.
func (r *DesSourceReconciler) inspect(ctx context.Context, src *desv1.DesSource) (*catalog.Tally, *notReady) {
	cat, problem := r.openCatalog(ctx, src)
	if problem != nil {
		return nil, problem
	}
	if problem := r.checkCatalog(ctx, src, cat); problem != nil {
		return nil, problem
	}
	if problem := r.checkBucket(ctx, src); problem != nil {
		return nil, problem
	}
	// Every minute, per DesSource: a tally costs what the backlog and the containers cost, never a
	// pass over a table of a billion rows.
	tally, err := cat.Tally(ctx, src.Name)
	if err != nil {
		return nil, &notReady{desv1.ReasonCatalogQueryFailed, err.Error()}
	}
	if tally.Claimed > 0 {
		// A sweep that fails is tried again at the next check; the source itself is usable.
		if err := r.returnStrayClaims(ctx, src, cat); err != nil {
			log.FromContext(ctx).Error(err, "claim sweep failed")
		}
	}
	return &tally, nil
}

// openCatalog opens the catalog on the Connector's cached pool and pings it; the reason tells a person
// whether to fix the Secret or the database.
func (r *DesSourceReconciler) openCatalog(ctx context.Context, src *desv1.DesSource) (*catalog.Catalog, *notReady) {
	pool, err := r.catalogPool(ctx, src)
	if err == nil {
		pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = pool.Ping(pingCtx)
		cancel()
	}
	if problem := secretProblem(err); problem != nil {
		return nil, problem
	}
	switch {
	case errors.Is(err, connect.ErrInvalidDSN):
		return nil, &notReady{desv1.ReasonInvalidDSN, fmt.Sprintf("the DSN in Secret %q is not a %s connection string: %v",
			src.Spec.Catalog.DSNSecretRef.Name, driverName(src), err)}
	case errors.Is(err, catalog.ErrUnknownDriver):
		return nil, &notReady{desv1.ReasonInvalidMapping, err.Error()}
	case err != nil:
		// connect's errors never hold the DSN's password, so the message may go into the status.
		return nil, &notReady{desv1.ReasonDatabaseUnreachable, "cannot reach the catalog database: " + err.Error()}
	}
	cat, err := catalog.New(pool.DB, resolve.Mapping(src))
	if err != nil {
		return nil, &notReady{desv1.ReasonInvalidMapping, err.Error()}
	}
	return cat, nil
}

// checkCatalog checks the table and columns, running the migration first when the source allows it.
func (r *DesSourceReconciler) checkCatalog(ctx context.Context, src *desv1.DesSource, cat *catalog.Catalog) *notReady {
	err := cat.Check(ctx)
	if errors.Is(err, catalog.ErrColumnMissing) && src.Spec.Catalog.AllowMigration {
		switch merr := cat.Migrate(ctx); {
		case errors.Is(merr, catalog.ErrColumnMissing):
			// A mapped column of the user's table is missing: no migration adds it (reported below).
			err = merr
		case merr != nil:
			return &notReady{desv1.ReasonMigrationFailed, merr.Error()}
		default:
			r.Recorder.Eventf(src, nil, corev1.EventTypeNormal, string(desv1.ReasonCatalogMigrated), "Migrate", "added DES columns and indexes to %s", src.Spec.Catalog.Table)
			err = cat.Check(ctx)
		}
	}
	switch {
	case errors.Is(err, catalog.ErrServerUnsupported):
		return &notReady{desv1.ReasonCatalogUnsupported, err.Error()}
	case errors.Is(err, catalog.ErrTableMissing):
		return &notReady{desv1.ReasonTableNotFound, err.Error()}
	case errors.Is(err, catalog.ErrColumnMissing):
		return &notReady{desv1.ReasonColumnNotFound, err.Error()}
	case err != nil:
		return &notReady{desv1.ReasonCatalogQueryFailed, err.Error()}
	}
	return nil
}

// checkBucket resolves the source store's credentials (even with per-row buckets: the packer needs
// them all the same) and probes the source bucket when there is a single one.
func (r *DesSourceReconciler) checkBucket(ctx context.Context, src *desv1.DesSource) *notReady {
	s, err := r.SourceStore(ctx, src)
	if problem := secretProblem(err); problem != nil {
		return problem
	}
	if err != nil {
		return &notReady{desv1.ReasonObjectStoreUnusable, err.Error()}
	}
	bucket := src.Spec.Store.Bucket
	if bucket == "" {
		return nil // per-row buckets: nothing single to probe
	}
	probeCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := probeBucket(probeCtx, s, bucket); err != nil {
		return &notReady{desv1.ReasonBucketUnreachable, fmt.Sprintf("bucket %q: %v", bucket, err)}
	}
	return nil
}

// probeBucket lists at most one key: it proves the bucket exists and the credentials may read it.
func probeBucket(ctx context.Context, s *objstore.Store, bucket string) error {
	for _, err := range s.List(ctx, bucket, objstore.ListOptions{PageSize: 1}) {
		return err
	}
	return nil
}

func (r *DesSourceReconciler) updateStatus(ctx context.Context, src *desv1.DesSource, pass *sourcePass) error {
	st := &src.Status
	st.ObservedGeneration = src.Generation
	now := metav1.NewTime(r.Clock.Now())
	st.LastChecked = &now
	ready, readyMsg := desv1.ReasonReady, "catalog table, columns and bucket are reachable"
	if p := pass.problem; p != nil {
		ready, readyMsg = p.reason, p.message
	}
	setStatusCondition(&st.Conditions, desv1.ConditionReady, pass.problem == nil, ready, readyMsg, src.Generation)
	if c := pass.counts; c != nil {
		st.Rows = &desv1.RowCounts{Unnamed: c.Unnamed, Ready: c.Ready, Claimed: c.Claimed, Packed: c.Packed, Failed: c.Failed, CountedAt: &now}
		st.Sources = sourceCounts(src, &c.Counts)
		st.CommittedContainers = c.Containers
	}
	var counts *catalog.Counts
	if pass.counts != nil {
		counts = &pass.counts.Counts
	}
	isDegraded, degraded, msg := sourceDegraded(pass.markerErr, counts)
	setStatusCondition(&st.Conditions, desv1.ConditionDegraded, isDegraded, degraded, msg, src.Generation)
	// A DesSource deleted during the pass is no error: nothing is left to describe (a "Reconciler
	// error ... not found" in the log of a clean run would only be noise).
	err := r.Status().Patch(ctx, src, client.MergeFrom(pass.base))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update status of DesSource %s: %w", src.Name, err)
	}
	warnNewTrouble(r.Recorder, src, pass.base.Status.Conditions, st.Conditions, notReadyCheck, degradedCheck)
	return nil
}

// sourceCounts is status.sources: what verified deletion did, shown once deletion is on or has done
// something (nil otherwise, so a source that never deletes shows nothing about it).
func sourceCounts(src *desv1.DesSource, c *catalog.Counts) *desv1.SourceCounts {
	if !src.Spec.DeleteSource.DeletesSources() && c.SourcesDeleted == 0 && c.SourcesRefused == 0 && c.SourcesVerified == 0 {
		return nil
	}
	return &desv1.SourceCounts{Deleted: c.SourcesDeleted, Waiting: c.SourcesWaiting,
		Verified: max(c.SourcesVerified-c.SourcesDeleted, 0), Refused: c.SourcesRefused}
}

// sourceDegraded says what a person should look at first: a marker CronJob that cannot be made
// stops naming rows; source objects kept because their check failed need a person to look at
// why (the archived copy did not match, or the object changed after it was packed).
func sourceDegraded(markerErr error, c *catalog.Counts) (bool, desv1.ConditionReason, string) {
	switch {
	case markerErr != nil:
		return true, desv1.ReasonMarkerFailed, markerErr.Error()
	case c != nil && c.SourcesRefused > 0:
		return true, desv1.ReasonSourcesKept, fmt.Sprintf("%d source objects are kept because a check before their deletion failed, e.g. %q; "+
			"the rows' des_source_refused says why (clear it to have them checked again)", c.SourcesRefused, c.RefusedExample)
	}
	return false, desv1.ReasonMarkerOK, "marker CronJob matches spec.marker"
}

// SetupWithManager watches DesSources, their marker CronJobs, and the end of their packer and marker
// Jobs (dessource_refresh.go), so that the counts are recounted when a run changed them and not only
// at the next periodic check. Secrets are not watched (that would cache every Secret in the cluster);
// a changed Secret is picked up at the next periodic check.
func (r *DesSourceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&desv1.DesSource{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&batchv1.CronJob{}).
		Watches(&batchv1.Job{}, jobEndRecounts(r.recountDelay())).
		Named("dessource").
		Complete(r)
}

// driverName is the source's catalog driver for messages ("postgres" when unset).
func driverName(src *desv1.DesSource) string {
	if src.Spec.Catalog.Driver == "" {
		return string(catalog.Postgres)
	}
	return src.Spec.Catalog.Driver
}

// secretProblem is the Ready=False a Secret error calls for, naming the Secret and what it lacks, or
// nil when err is not about a Secret.
func secretProblem(err error) *notReady {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, connect.ErrNoCredentialsSecret):
		return &notReady{desv1.ReasonNoCredentialsSecret, err.Error()}
	case errors.Is(err, connect.ErrSecretNotFound):
		return &notReady{desv1.ReasonSecretNotFound, err.Error()}
	case errors.Is(err, connect.ErrSecretKeyMissing):
		return &notReady{desv1.ReasonSecretKeyNotFound, err.Error()}
	case errors.Is(err, connect.ErrSecretUnreadable):
		return &notReady{desv1.ReasonSecretUnreadable, err.Error()}
	}
	return nil
}
