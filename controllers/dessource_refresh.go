package controllers

import (
	"context"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/datavision/des/internal/protocol"
)

// defaultRecountDelay gathers the ends of a run's Jobs into one count: a run of many Jobs ends over
// seconds, and each count costs a few catalog statements.
const defaultRecountDelay = 2 * time.Second

func (r *DesSourceReconciler) recountDelay() time.Duration {
	if r.RecountDelay > 0 {
		return r.RecountDelay
	}
	return defaultRecountDelay
}

// jobEndRecounts enqueues a DesSource, delay after one of its packer or marker Jobs finished: what
// a run packed, failed or named shows in `kubectl get dessources` seconds after it, not at the next
// periodic check a minute later. The workqueue keeps one entry per DesSource, so the Jobs of a run
// that end within the delay cause one count.
func jobEndRecounts(delay time.Duration) handler.EventHandler {
	return handler.Funcs{
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if req, ok := sourceOfEndedJob(e.ObjectOld, e.ObjectNew); ok {
				q.AddAfter(req, delay)
			}
		},
	}
}

// sourceOfEndedJob is the DesSource to recount when a Job changes from before to after: one of DES's
// Jobs that names its source and has just finished (completed or failed).
func sourceOfEndedJob(before, after client.Object) (reconcile.Request, bool) {
	oldJob, ok1 := before.(*batchv1.Job)
	newJob, ok2 := after.(*batchv1.Job)
	if !ok1 || !ok2 {
		return reconcile.Request{}, false
	}
	source := newJob.Labels[protocol.LabelSource]
	if source == "" || newJob.Labels[protocol.LabelManagedBy] != protocol.ManagedByDES {
		return reconcile.Request{}, false
	}
	wasDone, _ := jobFinished(oldJob)
	done, _ := jobFinished(newJob)
	if wasDone || !done {
		return reconcile.Request{}, false
	}
	return reconcile.Request{NamespacedName: client.ObjectKey{Namespace: newJob.Namespace, Name: source}}, true
}
