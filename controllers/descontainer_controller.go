package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/lease"
	"github.com/datavision/des/internal/protocol"
)

// DesContainerReconciler repairs containers whose writer died (roll forward or roll back, see
// docs/protocol.md), and deletes finished containers after their DesShard's retention.
type DesContainerReconciler struct {
	client.Client
	*Connector
	// APIReader reads around the cache. A writer found gone in the cache is judged again on fresh
	// reads before recovery: the cache can hold a Lease its previous holder released while missing
	// the new holder's acquire (seen on the real node when a packer pod is replaced), and recovering
	// a live writer's container would race that writer. Nil judges on the cache alone.
	APIReader client.Reader
	// Leases judges shard Leases by what this controller saw change and when, on Clock, never by
	// comparing a Lease's renewTime (the packer's clock) to Clock (lease.Observer). The manager always
	// sets one; nil judges by renewTime against Clock (lease.Classify), which only tests whose writers
	// are all dead and whose clocks agree may rely on.
	Leases   *lease.Observer
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
}

// +kubebuilder:rbac:groups=des.datavision.io,resources=descontainers,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=des.datavision.io,resources=descontainers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=des.datavision.io,resources=descontainers/finalizers,verbs=update

// Reconcile brings a container to its end: a finished container waits out its retention; an unfinished one is left alone while its
// writer lives and recovered once it does not.
func (r *DesContainerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c := &desv1.DesContainer{}
	if err := r.Get(ctx, req.NamespacedName, c); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if c.Status.Phase.IsFinal() {
		return r.finish(ctx, c)
	}
	if c.DeletionTimestamp.IsZero() {
		verdict, fresh, err := r.judgeFresh(ctx, c)
		if err != nil || fresh == nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		if fresh.Status.Phase.IsFinal() {
			return r.finish(ctx, fresh)
		}
		if verdict.alive {
			return ctrl.Result{RequeueAfter: verdict.recheck + time.Second}, nil
		}
		c = fresh
		log.FromContext(ctx).Info("recovering container", "phase", c.Status.Phase, "why", verdict.why)
	}
	return r.recover(ctx, c)
}

// judgeFresh judges the writer on the cache and, when it looks gone, again on fresh reads: the
// container first (which pod writes it), then its Lease and Job. A writer records itself in the
// container only after it holds the Lease, so a Lease read after that container read sees its
// acquire. It returns the container the verdict is about.
func (r *DesContainerReconciler) judgeFresh(ctx context.Context, c *desv1.DesContainer) (writerVerdict, *desv1.DesContainer, error) {
	verdict, err := r.judge(ctx, r.Client, c, r.Clock.Now())
	if err != nil || verdict.alive || r.APIReader == nil {
		return verdict, c, err
	}
	fresh := &desv1.DesContainer{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(c), fresh); err != nil {
		return writerVerdict{}, nil, err
	}
	if fresh.Status.Phase.IsFinal() || !fresh.DeletionTimestamp.IsZero() {
		return writerVerdict{}, fresh, nil
	}
	verdict, err = r.judge(ctx, r.APIReader, fresh, r.Clock.Now())
	return verdict, fresh, err
}

func (r *DesContainerReconciler) judge(ctx context.Context, reader client.Reader, c *desv1.DesContainer, now time.Time) (writerVerdict, error) {
	l, seen, err := r.observeLease(ctx, c, now)
	if err != nil {
		return writerVerdict{}, err
	}
	var job *batchv1.Job
	if c.Status.Job != "" {
		job = &batchv1.Job{}
		err := reader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.Status.Job}, job)
		if apierrors.IsNotFound(err) {
			job = nil
		} else if err != nil {
			return writerVerdict{}, fmt.Errorf("get Job %s: %w", c.Status.Job, err)
		}
	}
	return judgeWriter(c, l, seen, job, now), nil
}

// observeLease reads the container's shard Lease around the cache and judges it. The read is
// uncached because it decides whether a writer is gone: an observer fed from a lagging cache would
// see the renewals late, and a cache missing a new holder's acquire would call a live writer gone.
func (r *DesContainerReconciler) observeLease(ctx context.Context, c *desv1.DesContainer, now time.Time) (*coordinationv1.Lease, leaseObservation, error) {
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	name := protocol.LeaseName(c.Spec.ShardRef, c.Spec.Shard)
	l, err := lease.Read(ctx, reader, c.Namespace, name)
	switch {
	case err != nil:
		return nil, leaseObservation{}, err
	case l == nil:
		if r.Leases != nil {
			r.Leases.Forget(c.Namespace, name)
		}
		return nil, leaseObservation{State: lease.Free}, nil
	}
	return l, observeLease(r.Leases, l, now), nil
}

func (r *DesContainerReconciler) recover(ctx context.Context, c *desv1.DesContainer) (ctrl.Result, error) {
	rc, err := r.recovererFor(ctx, c)
	if err != nil {
		r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, string(desv1.ReasonRecoveryBlocked), "Recover", "%v", err)
		return ctrl.Result{}, errors.Join(err, r.recordBlocked(ctx, c, err))
	}
	out, err := rc.recover(ctx, c)
	if err != nil {
		recoveries.WithLabelValues("error").Inc()
		return ctrl.Result{}, fmt.Errorf("recover container %s: %w", c.Name, err)
	}
	if out.refused != nil {
		recoveries.WithLabelValues("refused").Inc()
		return ctrl.Result{}, r.recordRefused(ctx, c, out.refused)
	}
	recoveries.WithLabelValues(string(out.phase)).Inc()
	if err := r.setFinalPhase(ctx, c, out); apierrors.IsNotFound(err) {
		// Its writer finished with it meanwhile (an empty container is deleted by the packer that
		// made it); recovery is idempotent, so nothing is left to do or to tell.
		log.FromContext(ctx).V(1).Info("container gone while recovering it", "container", c.Name)
		return ctrl.Result{}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	r.recordOutcome(ctx, c, out)
	return r.finish(ctx, c)
}

// recordOutcome tells what recovery did: a roll-forward is news, a roll-back is a Warning (a writer
// died with work in hand), and a deleted container that held nothing is the quiet end of a packer
// that found no rows to claim, told only in the log.
func (r *DesContainerReconciler) recordOutcome(ctx context.Context, c *desv1.DesContainer, out recoveryOutcome) {
	if out.quiet {
		log.FromContext(ctx).V(1).Info("empty container deleted by its writer", "container", c.Name)
		return
	}
	eventType := corev1.EventTypeNormal
	if out.phase != desv1.PhaseCommitted {
		eventType = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(c, nil, eventType, string(desv1.RecoveredReason(out.phase)), "Recover", "%s", out.reason)
}

// recordRefused shows in Degraded, and in one Warning event, why recovery deleted nothing: the
// container names an archive location that is not its own. The phase stays; a person decides.
func (r *DesContainerReconciler) recordRefused(ctx context.Context, c *desv1.DesContainer, refused error) error {
	base := c.DeepCopy()
	setStatusCondition(&c.Status.Conditions, desv1.ConditionDegraded, true, refusedReason(refused), refused.Error(), c.Generation)
	if err := client.IgnoreNotFound(r.Status().Patch(ctx, c, client.MergeFrom(base))); err != nil {
		return fmt.Errorf("record refused recovery of %s: %w", c.Name, err)
	}
	warnNewTrouble(r.Recorder, c, base.Status.Conditions, c.Status.Conditions, degradedCheck)
	return nil
}

// recovererFor resolves the container's DesShard and DesSource into a catalog and an archive store.
func (r *DesContainerReconciler) recovererFor(ctx context.Context, c *desv1.DesContainer) (*recoverer, error) {
	ds := &desv1.DesShard{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.Spec.ShardRef}, ds); err != nil {
		return nil, fmt.Errorf("DesShard %s of container %s: %w", c.Spec.ShardRef, c.Name, err)
	}
	src := &desv1.DesSource{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: ds.Spec.SourceRef}, src); err != nil {
		return nil, fmt.Errorf("DesSource %s of container %s: %w", ds.Spec.SourceRef, c.Name, err)
	}
	cat, err := r.Catalog(ctx, src)
	if err != nil {
		return nil, err
	}
	store, err := r.ArchiveStore(ctx, ds)
	if err != nil {
		return nil, err
	}
	day, _ := time.Parse(time.DateOnly, c.Spec.Day)
	record := func(s desformat.Summary) catalog.Record {
		return catalog.Record{Key: c.Spec.Key, Container: c.Name, Bucket: c.Spec.Bucket, Source: src.Name,
			Shard: int(c.Spec.Shard), Day: day, Files: s.Files, Bytes: s.PayloadBytes, ObjectSize: s.Size,
			PayloadChecksum: s.PayloadChecksum(), IndexChecksum: s.IndexChecksum(), Writer: writerOf(c)}
	}
	return &recoverer{cat: cat, store: store, record: record, bucket: ds.Spec.Archive.Bucket, prefix: ds.Spec.Archive.Prefix}, nil
}

func writerOf(c *desv1.DesContainer) string {
	if c.Status.Pod != "" {
		return c.Status.Pod
	}
	return "recovery"
}

func (r *DesContainerReconciler) setFinalPhase(ctx context.Context, c *desv1.DesContainer, out recoveryOutcome) error {
	base := c.DeepCopy()
	now := metav1.NewTime(r.Clock.Now())
	st := &c.Status
	st.Phase, st.Reason, st.UploadID, st.ObservedGeneration = out.phase, out.reason, "", c.Generation
	if s := out.summary; s != nil {
		st.Files, st.Bytes, st.ObjectSize = s.Files, s.PayloadBytes, s.Size
		st.IndexChecksum, st.PayloadChecksum = s.IndexChecksum(), s.PayloadChecksum()
		if st.UploadedAt == nil { // the writer died before it could record the finished upload
			st.UploadedAt = &now
		}
	}
	if out.phase == desv1.PhaseCommitted && st.CommittedAt == nil {
		st.CommittedAt = &now
	}
	setStatusCondition(&st.Conditions, desv1.ConditionFinished, true, desv1.RecoveredReason(out.phase), out.reason, c.Generation)
	meta.RemoveStatusCondition(&st.Conditions, desv1.ConditionDegraded)
	if err := r.Status().Patch(ctx, c, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("record recovery of %s: %w", c.Name, err)
	}
	return nil
}

// recordBlocked shows in the container's Degraded condition why recovery cannot proceed (its
// DesShard, DesSource, catalog or archive is unusable), so `kubectl describe` says what to fix. The
// final phase, unlike this, is written by setFinalPhase before the finalizer goes: a write deferred
// past finish would land after the object may be deleted.
func (r *DesContainerReconciler) recordBlocked(ctx context.Context, c *desv1.DesContainer, cause error) error {
	base := c.DeepCopy()
	setStatusCondition(&c.Status.Conditions, desv1.ConditionDegraded, true, desv1.ReasonRecoveryBlocked, cause.Error(), c.Generation)
	if err := client.IgnoreNotFound(r.Status().Patch(ctx, c, client.MergeFrom(base))); err != nil {
		return fmt.Errorf("record blocked recovery of %s: %w", c.Name, err)
	}
	return nil
}

// finish removes the recovery finalizer of a finished container and deletes it once its DesShard's
// retention has passed; the catalog's des_containers table keeps the permanent record.
func (r *DesContainerReconciler) finish(ctx context.Context, c *desv1.DesContainer) (ctrl.Result, error) {
	if controllerutil.RemoveFinalizer(c, protocol.FinalizerRecovery) {
		// NotFound: deleted meanwhile (the last finalizer went in an earlier pass that the cache had
		// not shown yet); nothing is left to finish.
		if err := client.IgnoreNotFound(r.Update(ctx, c)); err != nil {
			return ctrl.Result{}, fmt.Errorf("remove finalizer of %s: %w", c.Name, err)
		}
	}
	if !c.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	retention := desv1.DefaultRetention
	ds := &desv1.DesShard{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.Spec.ShardRef}, ds); err == nil {
		retention = ds.Spec.RetentionOrDefault()
	}
	left := finishedAt(c).Add(retention).Sub(r.Clock.Now())
	if left > 0 {
		return ctrl.Result{RequeueAfter: left}, nil
	}
	if err := client.IgnoreNotFound(r.Delete(ctx, c)); err != nil {
		return ctrl.Result{}, fmt.Errorf("delete container %s after retention: %w", c.Name, err)
	}
	return ctrl.Result{}, nil
}

// finishedAt is when a container reached its final phase.
func finishedAt(c *desv1.DesContainer) time.Time {
	if c.Status.CommittedAt != nil {
		return c.Status.CommittedAt.Time
	}
	if cond := meta.FindStatusCondition(c.Status.Conditions, desv1.ConditionFinished); cond != nil {
		return cond.LastTransitionTime.Time
	}
	return c.CreationTimestamp.Time
}

// SetupWithManager watches DesContainers; writers' Lease expiries are met with timed requeues rather
// than a Lease watch, so renewals cost nothing here.
func (r *DesContainerReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&desv1.DesContainer{}).
		Named("descontainer").
		Complete(r)
}
