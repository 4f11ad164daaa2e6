package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/lease"
	"github.com/datavision/des/internal/protocol"
)

// Deleting a DesShard or a DesSource must not strand its containers: recovery needs both (the
// archive store and the catalog) to roll an unfinished container back or forward. So both carry the
// finalizer protocol.FinalizerContainers; on deletion the controller stops their packer Jobs and
// removes the finalizer only once none of their containers is unfinished and no packer holds one of
// their shard Leases (a packer re-reads its DesShard under each Lease before a new container, so none
// can appear after that). Meanwhile Ready=False with reason Deleting says what it waits for.

// deletionRecheck is how often a deletion looks again while it waits.
const deletionRecheck = 5 * time.Second

// deletionWait says what a deletion still waits for: the containers that are not final (with why
// their recovery is blocked, when it is) and the shard Leases still held. "" means nothing.
func deletionWait(containers []desv1.DesContainer, heldLeases []string) string {
	var parts []string
	var unfinished []string
	for i := range containers {
		c := &containers[i]
		if c.Status.Phase.IsFinal() {
			continue
		}
		item := fmt.Sprintf("%s (%s)", c.Name, c.Status.Phase.OrPending())
		if cond := meta.FindStatusCondition(c.Status.Conditions, desv1.ConditionDegraded); cond != nil && cond.Status == metav1.ConditionTrue {
			item += ": " + cond.Reason + ": " + cond.Message
		}
		unfinished = append(unfinished, item)
	}
	if len(unfinished) > 0 {
		slices.Sort(unfinished)
		parts = append(parts, fmt.Sprintf("%d unfinished containers to recover: %s", len(unfinished), strings.Join(firstN(unfinished, 5), "; ")))
	}
	if len(heldLeases) > 0 {
		held := slices.Sorted(slices.Values(heldLeases))
		parts = append(parts, fmt.Sprintf("%d shard Leases held by packers that are stopping: %s", len(held), strings.Join(firstN(held, 5), ", ")))
	}
	if len(parts) == 0 {
		return ""
	}
	return "deleting: waiting for " + strings.Join(parts, "; and ")
}

func firstN(items []string, n int) []string {
	if len(items) <= n {
		return items
	}
	return append(items[:n:n], fmt.Sprintf("and %d more", len(items)-n))
}

// deletion is one DesShard's or DesSource's teardown: which Jobs to stop, which containers and Leases
// to wait for.
type deletion struct {
	c      client.Client
	reader client.Reader // Leases and containers are read around the cache when set
	now    time.Time
	ns     string
	// jobs selects the packer Jobs to stop, containers the containers to wait for.
	jobs, containers client.MatchingLabels
	// shards are the DesShards whose shard Leases count.
	shards map[string]bool
	// leases judges them by what this controller saw change (nil: renewTime against now).
	leases *lease.Observer
}

// stopJobs deletes the packer Jobs; their pods get SIGTERM and abandon (roll back) what they write.
func (d *deletion) stopJobs(ctx context.Context) error {
	jobs := &batchv1.JobList{}
	if err := d.c.List(ctx, jobs, client.InNamespace(d.ns), d.jobs); err != nil {
		return fmt.Errorf("list packer Jobs: %w", err)
	}
	for i := range jobs.Items {
		j := &jobs.Items[i]
		if !j.DeletionTimestamp.IsZero() {
			continue
		}
		if err := client.IgnoreNotFound(d.c.Delete(ctx, j, client.PropagationPolicy("Background"))); err != nil {
			return fmt.Errorf("delete packer Job %s: %w", j.Name, err)
		}
	}
	return nil
}

// waitingFor returns what the deletion still waits for ("" for nothing).
func (d *deletion) waitingFor(ctx context.Context) (string, error) {
	reader := d.reader
	if reader == nil {
		reader = d.c
	}
	containers := &desv1.DesContainerList{}
	if err := reader.List(ctx, containers, client.InNamespace(d.ns), d.containers); err != nil {
		return "", fmt.Errorf("list DesContainers: %w", err)
	}
	leases := &coordinationv1.LeaseList{}
	if err := reader.List(ctx, leases, client.InNamespace(d.ns), client.MatchingLabels{protocol.LabelManagedBy: protocol.ManagedByDES}); err != nil {
		return "", fmt.Errorf("list shard Leases: %w", err)
	}
	var held []string
	for i := range leases.Items {
		l := &leases.Items[i]
		if d.shards[l.Labels[protocol.LabelDesShard]] && d.held(l) {
			held = append(held, fmt.Sprintf("%s (%s)", l.Name, leaseHolder(l)))
		}
	}
	return deletionWait(containers.Items, held), nil
}

// held says whether a packer may still hold l. With an observer, a Lease whose holder's clock is off
// still counts as held while it is renewed; one nobody renews is let go a Lease duration after this
// controller first saw it.
func (d *deletion) held(l *coordinationv1.Lease) bool {
	return observeLease(d.leases, l, d.now).State == leaseHeld
}

// reconcileDeletion runs one pass of obj's deletion: Jobs stopped, the finalizer removed when nothing
// is left, otherwise Ready says what it waits for and the pass is repeated soon. conds are obj's.
func reconcileDeletion(ctx context.Context, d *deletion, rec events.EventRecorder, obj client.Object, conds *[]metav1.Condition) (ctrl.Result, error) {
	base := obj.DeepCopyObject().(client.Object)
	waiting, err := finishDeletion(ctx, d, obj)
	if err != nil || waiting == "" {
		return ctrl.Result{}, err
	}
	if err := recordDeleting(ctx, d.c, rec, obj, base, conds, waiting); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: deletionRecheck}, nil
}

// finishDeletion stops the Jobs, and removes obj's finalizer when nothing is left to wait for. It
// returns what it still waits for.
func finishDeletion(ctx context.Context, d *deletion, obj client.Object) (string, error) {
	if !controllerutil.ContainsFinalizer(obj, protocol.FinalizerContainers) {
		return "", nil
	}
	if err := d.stopJobs(ctx); err != nil {
		return "", err
	}
	waiting, err := d.waitingFor(ctx)
	if err != nil || waiting != "" {
		return waiting, err
	}
	controllerutil.RemoveFinalizer(obj, protocol.FinalizerContainers)
	// Gone already (another pass removed the finalizer and the API server deleted it) is done, not an
	// error: wrapping IgnoreNotFound's nil made a "remove finalizer: %!w(<nil>)" Reconciler error.
	if err := client.IgnoreNotFound(d.c.Update(ctx, obj)); err != nil {
		return "", fmt.Errorf("remove finalizer: %w", err)
	}
	return "", nil
}

// ensureFinalizer adds protocol.FinalizerContainers to a live object and reports whether it wrote.
func ensureFinalizer(ctx context.Context, c client.Client, obj client.Object) error {
	if !controllerutil.AddFinalizer(obj, protocol.FinalizerContainers) {
		return nil
	}
	if err := c.Update(ctx, obj); err != nil {
		return fmt.Errorf("add finalizer %s: %w", protocol.FinalizerContainers, err)
	}
	return nil
}

// recordDeleting records in Ready what a deletion waits for, with a Normal event when it starts
// waiting (deleting is what the user asked for, not trouble; the message says what holds it up).
func recordDeleting(ctx context.Context, c client.Client, rec events.EventRecorder, obj, base client.Object, conds *[]metav1.Condition, waiting string) error {
	was := meta.FindStatusCondition(*conds, desv1.ConditionReady)
	first := was == nil || was.Reason != string(desv1.ReasonDeleting)
	setStatusCondition(conds, desv1.ConditionReady, false, desv1.ReasonDeleting, waiting, obj.GetGeneration())
	err := c.Status().Patch(ctx, obj, client.MergeFrom(base))
	if apierrors.IsNotFound(err) {
		return nil // deleted meanwhile: nothing left to record on
	}
	if err != nil {
		return fmt.Errorf("record deletion progress: %w", err)
	}
	if first {
		rec.Eventf(obj, nil, corev1.EventTypeNormal, string(desv1.ReasonDeleting), "Delete", "%s", waiting)
	}
	return nil
}
