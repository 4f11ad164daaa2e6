package controllers

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

// reconcileDelete tears a deleted DesSource down (see deletion.go). Its DesShards stay (they are the
// user's), start no new Jobs while it is being deleted, and report SourceNotFound once it is gone;
// their running Jobs are stopped and their containers recovered while the catalog is still known.
func (r *DesSourceReconciler) reconcileDelete(ctx context.Context, src *desv1.DesSource) (ctrl.Result, error) {
	shards, err := r.shardsOf(ctx, src)
	if err != nil {
		return ctrl.Result{}, err
	}
	d := &deletion{c: r.Client, reader: r.APIReader, leases: r.Leases, now: r.Clock.Now(), ns: src.Namespace,
		jobs:       client.MatchingLabels{protocol.LabelSource: src.Name, protocol.LabelComponent: "packer"},
		containers: client.MatchingLabels{protocol.LabelSource: src.Name},
		shards:     shards}
	return reconcileDeletion(ctx, d, r.Recorder, src, &src.Status.Conditions)
}

// shardsOf names the DesShards of the source's namespace that pack it.
func (r *DesSourceReconciler) shardsOf(ctx context.Context, src *desv1.DesSource) (map[string]bool, error) {
	list := &desv1.DesShardList{}
	if err := r.List(ctx, list, client.InNamespace(src.Namespace)); err != nil {
		return nil, fmt.Errorf("list DesShards of DesSource %s: %w", src.Name, err)
	}
	out := map[string]bool{}
	for i := range list.Items {
		if list.Items[i].Spec.SourceRef == src.Name {
			out[list.Items[i].Name] = true
		}
	}
	return out, nil
}
