package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/fill"
	"github.com/datavision/des/internal/protocol"
)

// errNotServed: a pack-now request names a shard the DesShard does not pack.
var errNotServed = errors.New("not served by this DesShard")

// packNowRequest reads a DesShard's pack-now annotation (protocol.AnnotationPackNow): whether there is
// one, and the shards it asks for: all of the DesShard's for "" or "all", else the listed ones, each
// of which the DesShard must serve.
func packNowRequest(annotations map[string]string, shards []int32) (asked bool, requested []int32, err error) {
	v, asked := annotations[protocol.AnnotationPackNow]
	if !asked {
		return false, nil, nil
	}
	if v = strings.TrimSpace(v); v == "" || v == "all" {
		return true, shards, nil
	}
	requested, err = protocol.ParseShardList(v)
	if err != nil {
		return true, nil, err
	}
	for _, id := range requested {
		if !slices.Contains(shards, id) {
			return true, nil, fmt.Errorf("shard %d: %w", id, errNotServed)
		}
	}
	return true, requested, nil
}

// packNowShards are the requested shards a pack-now run gives to packers, whatever the fill policy
// says: those with ready rows or sources due for deletion, or all of them when the catalog could not
// be asked (pending nil: the packer judges).
func packNowShards(requested []int32, pending map[int32]fill.Stats, reclaim map[int32]int64) []int32 {
	if pending == nil {
		return requested
	}
	var out []int32
	for _, id := range requested {
		if pending[id].Rows > 0 || reclaim[id] > 0 {
			out = append(out, id)
		}
	}
	return out
}

// packNow honours a pack-now annotation once: it starts a run of the requested shards now (busy ones
// are left to the packers holding them), or says why not in an event, and then removes the
// annotation. A run that fails to start keeps the annotation, so the retry asks again.
func (r *DesShardReconciler) packNow(ctx context.Context, ds *desv1.DesShard, obs *shardObservation, requested []int32, reqErr error, now time.Time) (time.Duration, bool, error) {
	started := false
	switch {
	case reqErr != nil:
		r.Recorder.Eventf(ds, nil, corev1.EventTypeWarning, string(desv1.ReasonPackNowRefused), "PackNow",
			"annotation %s=%q: %v; removed", protocol.AnnotationPackNow, ds.Annotations[protocol.AnnotationPackNow], reqErr)
	case ds.Spec.Suspend:
		r.Recorder.Eventf(ds, nil, corev1.EventTypeWarning, string(desv1.ReasonPackNowRefused), "PackNow",
			"the DesShard is suspended: set spec.suspend to false first; annotation %s removed", protocol.AnnotationPackNow)
	default:
		plans := r.planShards(ds, obs, packNowShards(requested, obs.pending, obs.reclaim))
		if len(plans) == 0 {
			r.Recorder.Eventf(ds, nil, corev1.EventTypeNormal, string(desv1.ReasonPackNow), "PackNow",
				"nothing to pack now: none of the %d shards asked for has ready rows that no packer holds", len(requested))
			break
		}
		if err := r.startRun(ctx, ds, obs, plans, now); err != nil {
			return 0, false, err
		}
		started = true
		r.Recorder.Eventf(ds, nil, corev1.EventTypeNormal, string(desv1.ReasonPackNow), "PackNow",
			"run %d started now, as asked, with %d Jobs", ds.Status.Runs, len(plans))
	}
	if err := r.clearPackNow(ctx, ds); err != nil {
		return 0, started, err
	}
	log.FromContext(ctx).Info("pack-now honoured", "started", started)
	return ds.Spec.IntervalOrDefault(), started, nil
}

// clearPackNow removes the annotation, on a copy: the patch's answer carries the stored status,
// which must not overwrite what this pass is about to record. The patch is conditional on the
// resourceVersion read, so a request set again meanwhile is not lost (the conflict is retried).
func (r *DesShardReconciler) clearPackNow(ctx context.Context, ds *desv1.DesShard) error {
	patched := ds.DeepCopy()
	base := ds.DeepCopy()
	delete(patched.Annotations, protocol.AnnotationPackNow)
	if err := r.Patch(ctx, patched, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("remove the %s annotation: %w", protocol.AnnotationPackNow, err)
	}
	return nil
}

// packNowAsked passes DesShard updates that set or change the pack-now annotation: the spec did not
// change, so the generation filter alone would never show them.
func packNowAsked() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e eventUpdate) bool {
			v, ok := e.ObjectNew.GetAnnotations()[protocol.AnnotationPackNow]
			old, had := e.ObjectOld.GetAnnotations()[protocol.AnnotationPackNow]
			return ok && (!had || old != v)
		},
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}
