package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

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
	summarizeFill(st, obs.pending, obs.fill, r.Clock.Now())
	setStatusCondition(&st.Conditions, desv1.ConditionReady, problem == nil, reasonOr(problem, desv1.ReasonReady), messageOr(problem, fmt.Sprintf("%d shards of DesSource %s", len(obs.shards), ds.Spec.SourceRef)), ds.Generation)
	progressingMsg := fmt.Sprintf("%d active Jobs", active)
	if ds.Spec.Suspend {
		progressingMsg = "suspended: no new Jobs"
	}
	progressing := desv1.ReasonIdle
	if active > 0 {
		progressing = desv1.ReasonJobsActive
	}
	setStatusCondition(&st.Conditions, desv1.ConditionProgressing, active > 0, progressing, progressingMsg, ds.Generation)
	degraded, reason, msg := shardDegraded(obs, failed)
	setStatusCondition(&st.Conditions, desv1.ConditionDegraded, degraded, reason, msg, ds.Generation)
	// A DesShard deleted during the pass is no error: nothing is left to describe (a "Reconciler
	// error ... not found" in the log of a clean run would only be noise).
	err := r.Status().Patch(ctx, ds, client.MergeFrom(base))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update status of DesShard %s: %w", ds.Name, err)
	}
	warnNewTrouble(r.Recorder, ds, base.Status.Conditions, st.Conditions, notReadyCheck, degradedCheck)
	return nil
}

// shardDegraded says what a person should look at first: a refused Job stops packing, trouble with
// the catalog or archive slows it, failed Jobs are history worth a look.
func shardDegraded(obs *shardObservation, failedJobs int) (bool, desv1.ConditionReason, string) {
	switch {
	case obs.jobRefused != "":
		return true, desv1.ReasonJobCreateFailed, obs.jobRefused
	case obs.trouble != "":
		return true, desv1.ReasonArchiveOrCatalogTrouble, obs.trouble
	case failedJobs > 0:
		return true, desv1.ReasonJobsFailed, fmt.Sprintf("%d failed Jobs retained", failedJobs)
	}
	return false, desv1.ReasonNoFailures, "0 failed Jobs retained"
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
			shardFill(&s, obs.pending[id], obs.fill[id])
		}
		s.SourcesDue = obs.reclaim[id]
		if o, ok := last[id]; ok {
			if o.success != nil {
				s.LastSuccess = o.success
			}
			s.LastError = o.err
		}
		if s.ActiveJob != "" || s.LeaseHolder != "" || s.LastError != "" || s.LastSuccess != nil || s.PendingRows > 0 || s.SourcesDue > 0 {
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
		out[string(containers[i].Status.Phase.OrPending())]++
	}
	return out
}

func reasonOr(p *notReady, ok desv1.ConditionReason) desv1.ConditionReason {
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
