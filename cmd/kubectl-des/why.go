package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

// runWhy explains what holds a DesShard, or one shard of it, back from packing.
func runWhy(e *env, args []string) int {
	fs := commandFlags(e, "why", "DESSHARD [SHARD]")
	pos, code, ok := parseArgs(e, fs, args, 1, 2)
	if !ok {
		return code
	}
	shard := int32(-1)
	if len(pos) == 2 {
		n, err := strconv.ParseInt(pos[1], 10, 32)
		if err != nil || n < 0 || n > protocol.MaxShard {
			fmt.Fprintf(e.stderr, "kubectl des why: %q is not a shard id (0..%d)\n", pos[1], protocol.MaxShard)
			return exitUsage
		}
		shard = int32(n)
	}
	in, err := gatherWhy(e, pos[0])
	if err != nil {
		return fail(e, "why", err)
	}
	in.shard, in.now = shard, time.Now()
	for _, f := range diagnose(in) {
		fmt.Fprintf(e.stdout, "%s %s\n", f.mark(), f.text)
		if f.hint != "" {
			fmt.Fprintf(e.stdout, "    → %s\n", f.hint)
		}
	}
	return exitOK
}

// whyInput is what diagnose judges: the DesShard, its DesSource (nil if missing) and its Jobs.
type whyInput struct {
	ds     *desv1.DesShard
	source *desv1.DesSource
	jobs   []batchv1.Job
	shard  int32 // -1: the whole DesShard
	now    time.Time
}

func gatherWhy(e *env, name string) (whyInput, error) {
	in := whyInput{ds: &desv1.DesShard{}}
	if err := get(e, "desshards", name, in.ds); err != nil {
		return in, err
	}
	src := &desv1.DesSource{}
	switch err := get(e, "dessources", in.ds.Spec.SourceRef, src); {
	case err == nil:
		in.source = src
	case !errors.Is(err, errNotFound):
		return in, err // a missing DesSource is a finding, not a failure
	}
	jobs := &batchv1.JobList{}
	if err := list(e, "jobs", jobs, client.MatchingLabels{protocol.LabelDesShard: name}); err != nil {
		return in, err
	}
	in.jobs = jobs.Items
	return in, nil
}

// finding is one line of the answer: something that holds packing back (blocking), something worth
// knowing (info), or the all-clear.
type finding struct {
	blocking bool
	text     string
	hint     string // what to do, or where to look
}

func (f finding) mark() string {
	if f.blocking {
		return "✗"
	}
	return "•"
}

// diagnose lists what holds packing back, in the order a person would check it: the DesShard itself,
// its source and catalog, its Jobs, then each shard's Lease and fill. It ends with when the next run
// is due. It is a pure function of what the cluster said.
func diagnose(in whyInput) []finding {
	var out []finding
	ds := in.ds
	add := func(blocking bool, hint, format string, a ...any) {
		out = append(out, finding{blocking: blocking, text: fmt.Sprintf(format, a...), hint: hint})
	}
	if !ds.DeletionTimestamp.IsZero() {
		add(true, "", "DesShard %s is being deleted: no new Jobs", ds.Name)
	}
	if ds.Spec.Suspend {
		add(true, fmt.Sprintf("kubectl patch desshard %s --type merge -p '{\"spec\":{\"suspend\":false}}'", ds.Name), "spec.suspend is true: no new Jobs")
	}
	if c := meta.FindStatusCondition(ds.Status.Conditions, desv1.ConditionReady); c != nil && c.Status == metav1.ConditionFalse {
		add(true, "kubectl describe desshard "+ds.Name, "not Ready (%s): %s", c.Reason, c.Message)
	}
	out = append(out, sourceFindings(ds, in.source)...)
	if c := meta.FindStatusCondition(ds.Status.Conditions, desv1.ConditionDegraded); c != nil && c.Status == metav1.ConditionTrue {
		add(c.Reason != string(desv1.ReasonJobsFailed), "kubectl describe desshard "+ds.Name, "Degraded (%s): %s", c.Reason, c.Message)
	}
	out = append(out, jobFindings(in.jobs, in.shard)...)
	out = append(out, shardFindings(ds, in.shard, in.now)...)
	if _, asked := ds.Annotations[protocol.AnnotationPackNow]; asked {
		add(false, "", "a pack-now request is waiting for the controller (annotation %s)", protocol.AnnotationPackNow)
	}
	if !anyBlocking(out) {
		add(false, "", "nothing holds DesShard %s back", ds.Name)
	}
	out = append(out, nextRun(ds, in.now))
	return out
}

func anyBlocking(fs []finding) bool {
	for _, f := range fs {
		if f.blocking {
			return true
		}
	}
	return false
}

func sourceFindings(ds *desv1.DesShard, src *desv1.DesSource) []finding {
	if src == nil {
		return []finding{{blocking: true, text: fmt.Sprintf("DesSource %s does not exist", ds.Spec.SourceRef), hint: "create it, or fix spec.sourceRef"}}
	}
	c := meta.FindStatusCondition(src.Status.Conditions, desv1.ConditionReady)
	if c != nil && c.Status == metav1.ConditionFalse {
		return []finding{{blocking: true, text: fmt.Sprintf("DesSource %s is not Ready (%s): %s", src.Name, c.Reason, c.Message), hint: "kubectl describe dessource " + src.Name}}
	}
	return nil
}

// jobFindings names the failed Jobs (of the shard, when one is asked about) with what the Job
// controller said.
func jobFindings(jobs []batchv1.Job, shard int32) []finding {
	var out []finding
	for i := range jobs {
		j := &jobs[i]
		if shard >= 0 && !jobPacks(j, shard) {
			continue
		}
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				out = append(out, finding{text: fmt.Sprintf("Job %s failed (%s): %s", j.Name, c.Reason, c.Message),
					hint: "kubectl logs job/" + j.Name + " (its shards are packed again by the next run)"})
			}
		}
	}
	return out
}

func jobPacks(j *batchv1.Job, shard int32) bool {
	shards, err := protocol.ParseShardList(j.Annotations[protocol.AnnotationShards])
	return err == nil && slices.Contains(shards, shard)
}

// shardFindings says per reported shard (or for the one asked about) whether a packer holds it and
// how full it is against spec.limits.
func shardFindings(ds *desv1.DesShard, shard int32, now time.Time) []finding {
	var out []finding
	found := false
	for _, s := range ds.Status.Shards {
		if shard >= 0 && s.ID != shard {
			continue
		}
		found = true
		out = append(out, oneShard(ds, s, now)...)
	}
	if shard >= 0 && !found {
		out = append(out, finding{text: fmt.Sprintf("shard %d: no ready rows, Job, Lease or error reported: nothing to pack (or it is not one of this DesShard's shards)", shard),
			hint: "rows the marker has not named yet are not ready: kubectl get dessource " + ds.Spec.SourceRef})
	}
	if shard < 0 && len(ds.Status.Shards) == 0 {
		out = append(out, finding{text: "no shard has ready rows, an active Job, a Lease or an error: nothing to pack"})
	}
	return out
}

func oneShard(ds *desv1.DesShard, s desv1.ShardStatus, now time.Time) []finding {
	var out []finding
	switch {
	case s.ActiveJob != "":
		out = append(out, finding{text: fmt.Sprintf("shard %d: Job %s is packing it", s.ID, s.ActiveJob), hint: "kubectl logs job/" + s.ActiveJob})
	case s.LeaseHolder != "":
		out = append(out, finding{blocking: true, text: fmt.Sprintf("shard %d: busy: %s holds its Lease", s.ID, s.LeaseHolder),
			hint: "a packer still at work, or one that died: its Lease expires within " + protocol.LeaseDuration.String()})
	}
	if s.LastError != "" {
		out = append(out, finding{text: fmt.Sprintf("shard %d: last container failed: %s", s.ID, s.LastError), hint: "kubectl get descontainers -l " + protocol.LabelShard + "=" + strconv.Itoa(int(s.ID))})
	}
	switch {
	case s.Fill == desv1.FillWaiting:
		l := ds.Spec.Limits
		out = append(out, finding{blocking: true,
			text: fmt.Sprintf("shard %d: below the fill policy: %d ready rows (%d bytes), minFiles %d, minBytes %d; packed by %s at the latest (maxWait %s)",
				s.ID, s.PendingRows, s.PendingBytes, l.MinFiles, l.MinBytes, until(s.PackBy, now), l.MaxWait.Duration),
			hint: fmt.Sprintf("kubectl des pack-now %s --shards %d packs it now anyway", ds.Name, s.ID)})
	case s.Fill != "":
		out = append(out, finding{text: fmt.Sprintf("shard %d: due (%s): %d ready rows (%d bytes) for the next run", s.ID, s.Fill, s.PendingRows, s.PendingBytes)})
	}
	if s.SourcesDue > 0 {
		out = append(out, finding{text: fmt.Sprintf("shard %d: %d containers' source objects are due for deletion", s.ID, s.SourcesDue)})
	}
	if len(out) == 0 && s.LastSuccess != nil {
		out = append(out, finding{text: fmt.Sprintf("shard %d: idle: no ready rows; last container committed %s", s.ID, ago(s.LastSuccess, now))})
	}
	return out
}

// nextRun says when the controller next checks the shards (spec.interval after the last check).
func nextRun(ds *desv1.DesShard, now time.Time) finding {
	last := ds.Status.LastScheduleTime
	if ds.Status.Fill != nil && ds.Status.Fill.CheckedAt != nil {
		last = ds.Status.Fill.CheckedAt
	}
	interval := ds.Spec.IntervalOrDefault()
	if last == nil {
		return finding{text: fmt.Sprintf("no run checked yet; runs every %s", interval)}
	}
	next := metav1.NewTime(last.Add(interval))
	var b strings.Builder
	fmt.Fprintf(&b, "last check %s, next %s (spec.interval %s)", ago(last, now), until(&next, now), interval)
	return finding{text: b.String()}
}
