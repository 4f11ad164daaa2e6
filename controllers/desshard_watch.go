package controllers

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

// SetupWithManager watches DesShards, their Jobs, their shard Leases (holder changes only, so renewals
// every few seconds do not cause reconcile storms) and their DesSource.
func (r *DesShardReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &desv1.DesShard{}, indexSourceRef, sourceRefOf); err != nil {
		return fmt.Errorf("index DesShards by %s: %w", indexSourceRef, err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&desv1.DesShard{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, packNowAsked()))).
		Owns(&batchv1.Job{}, builder.WithPredicates(jobFinishedChanged())).
		Watches(&coordinationv1.Lease{}, handler.EnqueueRequestsFromMapFunc(leaseToDesShard),
			builder.WithPredicates(leaseHolderChanged())).
		Watches(&desv1.DesSource{}, handler.EnqueueRequestsFromMapFunc(r.sourceToDesShards),
			builder.WithPredicates(sourceSpecOrReadinessChanged())).
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

// indexSourceRef indexes DesShards by the DesSource they pack, so a DesSource event looks up its
// DesShards instead of listing the namespace.
const indexSourceRef = "spec.sourceRef"

func sourceRefOf(o client.Object) []string {
	return []string{o.(*desv1.DesShard).Spec.SourceRef}
}

func (r *DesShardReconciler) sourceToDesShards(ctx context.Context, o client.Object) []reconcile.Request {
	list := &desv1.DesShardList{}
	if err := r.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexSourceRef: o.GetName()}); err != nil {
		// Only the cache can fail here; the DesShards still reconcile on their own timers.
		log.FromContext(ctx).Error(err, "list DesShards of a DesSource", "dessource", client.ObjectKeyFromObject(o))
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// sourceSpecOrReadinessChanged passes DesSource creations, deletions, spec changes and changes of
// its Ready condition. Its status changes every minute (row counts, lastChecked), and without this
// every DesShard of the source would reconcile, with a Secret read and SQL, each minute.
func sourceSpecOrReadinessChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e eventUpdate) bool {
			oldSrc, newSrc := e.ObjectOld.(*desv1.DesSource), e.ObjectNew.(*desv1.DesSource)
			return oldSrc.Generation != newSrc.Generation || readyStatus(oldSrc) != readyStatus(newSrc)
		},
	}
}

func readyStatus(src *desv1.DesSource) metav1.ConditionStatus {
	if c := meta.FindStatusCondition(src.Status.Conditions, desv1.ConditionReady); c != nil {
		return c.Status
	}
	return metav1.ConditionUnknown
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
