package controllers

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

// reconcileDelete tears a deleted DesShard down (see deletion.go): its Jobs stop, its containers are
// recovered by the DesContainer reconciler while the DesShard still exists, and the finalizer goes
// when none is left unfinished.
func (r *DesShardReconciler) reconcileDelete(ctx context.Context, ds *desv1.DesShard) (ctrl.Result, error) {
	d := &deletion{c: r.Client, reader: r.APIReader, leases: r.Leases, now: r.Clock.Now(), ns: ds.Namespace,
		jobs:       client.MatchingLabels{protocol.LabelDesShard: ds.Name},
		containers: client.MatchingLabels{protocol.LabelDesShard: ds.Name},
		shards:     map[string]bool{ds.Name: true}}
	return reconcileDeletion(ctx, d, r.Recorder, ds, &ds.Status.Conditions)
}
