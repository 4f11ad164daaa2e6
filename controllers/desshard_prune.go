package controllers

import (
	"cmp"
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

// containersOverLimit picks the finished DesContainers to delete so that at most limit finished ones
// remain: the oldest first (by when they finished, then by name), never a shard's newest Committed
// container nor its newest failed one, which the DesShard's status reads its per-shard outcome from
// (lastOutcomes). So the bound may be exceeded by up to two per shard; containers still being written
// are never candidates.
func containersOverLimit(containers []desv1.DesContainer, limit int) []*desv1.DesContainer {
	type newest struct{ committed, failed *desv1.DesContainer }
	keep := map[int32]newest{}
	var final []*desv1.DesContainer
	later := func(a, b *desv1.DesContainer) bool {
		return b == nil || finishedAt(a).After(finishedAt(b)) || (finishedAt(a).Equal(finishedAt(b)) && a.Name > b.Name)
	}
	for i := range containers {
		c := &containers[i]
		if !c.Status.Phase.IsFinal() || !c.DeletionTimestamp.IsZero() {
			continue
		}
		final = append(final, c)
		k := keep[c.Spec.Shard]
		switch {
		case c.Status.Phase == desv1.PhaseCommitted && later(c, k.committed):
			k.committed = c
		case c.Status.Phase != desv1.PhaseCommitted && later(c, k.failed):
			k.failed = c
		}
		keep[c.Spec.Shard] = k
	}
	excess := len(final) - limit
	if excess <= 0 {
		return nil
	}
	candidates := slices.DeleteFunc(final, func(c *desv1.DesContainer) bool {
		k := keep[c.Spec.Shard]
		return c == k.committed || c == k.failed
	})
	slices.SortFunc(candidates, func(a, b *desv1.DesContainer) int {
		return cmp.Or(finishedAt(a).Compare(finishedAt(b)), cmp.Compare(a.Name, b.Name))
	})
	return candidates[:min(excess, len(candidates))]
}

// pruneContainers deletes the DesShard's finished DesContainers beyond spec.maxContainers and drops
// them from what this pass observed. A failed delete is logged and tried again next pass: the
// resources cost etcd space, not correctness.
func (r *DesShardReconciler) pruneContainers(ctx context.Context, ds *desv1.DesShard, obs *shardObservation) {
	over := containersOverLimit(obs.containers, ds.Spec.MaxContainersOrDefault())
	if len(over) == 0 {
		return
	}
	gone := map[string]bool{}
	for _, c := range over {
		if err := client.IgnoreNotFound(r.Delete(ctx, c, client.Preconditions{UID: &c.UID})); err != nil {
			log.FromContext(ctx).Error(err, "delete a DesContainer over spec.maxContainers", "descontainer", c.Name)
			continue
		}
		gone[c.Name] = true
	}
	if len(gone) == 0 {
		return
	}
	obs.containers = slices.DeleteFunc(obs.containers, func(c desv1.DesContainer) bool { return gone[c.Name] })
	r.Recorder.Eventf(ds, nil, corev1.EventTypeNormal, string(desv1.ReasonContainersPruned), "Prune",
		"deleted %d finished DesContainers over spec.maxContainers (%d) before their retention; the catalog's des_containers keeps their record",
		len(gone), ds.Spec.MaxContainersOrDefault())
}
