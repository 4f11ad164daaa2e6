package main

import (
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

func readySource() *desv1.DesSource {
	return &desv1.DesSource{ObjectMeta: metav1.ObjectMeta{Name: "src"}, Status: desv1.DesSourceStatus{
		Conditions: []metav1.Condition{{Type: desv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready"}}}}
}

func whyShard(mutate func(*desv1.DesShard)) *desv1.DesShard {
	ds := &desv1.DesShard{ObjectMeta: metav1.ObjectMeta{Name: "daily"}, Spec: desv1.DesShardSpec{SourceRef: "src",
		Interval: metav1.Duration{Duration: 10 * time.Minute},
		Limits:   desv1.ContainerLimits{MinFiles: 1000, MaxWait: metav1.Duration{Duration: time.Hour}}}}
	if mutate != nil {
		mutate(ds)
	}
	return ds
}

// TestDiagnoseSaysWhatHoldsAShardBack: each thing that stops packing gives a blocking finding that
// names it, with a hint; a healthy DesShard gives none.
func TestDiagnoseSaysWhatHoldsAShardBack(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	packBy := metav1.NewTime(now.Add(40 * time.Minute))
	failedJob := batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "daily-r3-g0", Annotations: map[string]string{protocol.AnnotationShards: "4,5"}},
		Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"}}}}
	tests := []struct {
		name     string
		ds       *desv1.DesShard
		source   *desv1.DesSource
		jobs     []batchv1.Job
		shard    int32
		blocking []string // substrings of the blocking findings, in order
		info     []string // substrings that must appear somewhere
	}{
		{name: "healthy and idle", ds: whyShard(nil), source: readySource(), shard: -1,
			info: []string{"nothing to pack", "nothing holds DesShard daily back", "no run checked yet"}},
		{name: "packed and idle", ds: whyShard(func(d *desv1.DesShard) {
			d.Status.Shards = []desv1.ShardStatus{{ID: 2, LastSuccess: &metav1.Time{Time: now.Add(-3 * time.Minute)}}}
		}), source: readySource(), shard: 2, info: []string{"shard 2: idle: no ready rows; last container committed 3m ago", "nothing holds"}},
		{name: "suspended", ds: whyShard(func(d *desv1.DesShard) { d.Spec.Suspend = true }), source: readySource(), shard: -1,
			blocking: []string{"spec.suspend is true"}},
		{name: "source missing", ds: whyShard(nil), shard: -1, blocking: []string{"DesSource src does not exist"}},
		{name: "catalog error", ds: whyShard(nil), shard: -1, source: func() *desv1.DesSource {
			s := readySource()
			s.Status.Conditions[0] = metav1.Condition{Type: desv1.ConditionReady, Status: metav1.ConditionFalse, Reason: "CatalogUnreachable", Message: "dial tcp: connection refused"}
			return s
		}(), blocking: []string{"DesSource src is not Ready (CatalogUnreachable): dial tcp"}},
		{name: "busy lease", ds: whyShard(func(d *desv1.DesShard) {
			d.Status.Shards = []desv1.ShardStatus{{ID: 3, LeaseHolder: "daily-r2-g0-abcde"}}
		}), source: readySource(), shard: 3, blocking: []string{"shard 3: busy: daily-r2-g0-abcde holds its Lease"}},
		{name: "below fill", ds: whyShard(func(d *desv1.DesShard) {
			d.Status.Shards = []desv1.ShardStatus{{ID: 2, PendingRows: 12, PendingBytes: 4096, Fill: desv1.FillWaiting, PackBy: &packBy}}
		}), source: readySource(), shard: -1, blocking: []string{"shard 2: below the fill policy: 12 ready rows (4096 bytes), minFiles 1000"},
			info: []string{"in 40m", "kubectl des pack-now daily --shards 2"}},
		{name: "failing job of the shard", ds: whyShard(func(d *desv1.DesShard) {
			d.Status.Conditions = []metav1.Condition{{Type: desv1.ConditionDegraded, Status: metav1.ConditionTrue, Reason: string(desv1.ReasonJobsFailed), Message: "1 failed Jobs retained"}}
			d.Status.Shards = []desv1.ShardStatus{{ID: 5, LastError: "upload: SlowDown"}}
		}), source: readySource(), jobs: []batchv1.Job{failedJob}, shard: 5,
			info: []string{"Job daily-r3-g0 failed (BackoffLimitExceeded)", "kubectl logs job/daily-r3-g0", "shard 5: last container failed: upload: SlowDown"}},
		{name: "failing job of another shard", ds: whyShard(nil), source: readySource(), jobs: []batchv1.Job{failedJob}, shard: 1,
			info: []string{"shard 1: no ready rows"}},
		{name: "job refused", ds: whyShard(func(d *desv1.DesShard) {
			d.Status.Conditions = []metav1.Condition{{Type: desv1.ConditionDegraded, Status: metav1.ConditionTrue, Reason: string(desv1.ReasonJobCreateFailed), Message: "exceeded quota"}}
		}), source: readySource(), shard: -1, blocking: []string{"Degraded (JobCreateFailed): exceeded quota"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := diagnose(whyInput{ds: tc.ds, source: tc.source, jobs: tc.jobs, shard: tc.shard, now: now})
			var blocking []string
			var all strings.Builder
			for _, f := range got {
				if f.blocking {
					blocking = append(blocking, f.text)
				}
				all.WriteString(f.text + " " + f.hint + "\n")
			}
			if len(blocking) != len(tc.blocking) {
				t.Fatalf("blocking findings %q, want %d like %q", blocking, len(tc.blocking), tc.blocking)
			}
			for i, want := range tc.blocking {
				if !strings.Contains(blocking[i], want) {
					t.Errorf("blocking finding %d = %q, want it to say %q", i, blocking[i], want)
				}
			}
			for _, want := range tc.info {
				if !strings.Contains(all.String(), want) {
					t.Errorf("findings do not say %q:\n%s", want, all.String())
				}
			}
			if last := got[len(got)-1]; !strings.Contains(last.text, "run") {
				t.Errorf("the last finding should say when the next run is: %q", last.text)
			}
		})
	}
}

func TestParseArgsTakesFlagsAfterArguments(t *testing.T) {
	tests := []struct {
		args   []string
		pos    []string
		shards string
		ok     bool
	}{
		{[]string{"ds", "--shards", "1,2"}, []string{"ds"}, "1,2", true},
		{[]string{"--shards=3", "ds"}, []string{"ds"}, "3", true},
		{[]string{"ds", "--", "--shards"}, []string{"ds", "--shards"}, "", false}, // two positionals: too many
		{[]string{"ds", "--bogus"}, nil, "", false},
		{[]string{}, nil, "", false},
	}
	for _, tc := range tests {
		var stderr strings.Builder
		e := &env{stderr: &stderr}
		fs := commandFlags(e, "x", "DS")
		shards := fs.String("shards", "", "")
		pos, _, ok := parseArgs(e, fs, tc.args, 1, 1)
		if ok != tc.ok || (ok && (strings.Join(pos, " ") != strings.Join(tc.pos, " ") || *shards != tc.shards)) {
			t.Errorf("%q: got %q shards %q ok %v; want %q %q %v", tc.args, pos, *shards, ok, tc.pos, tc.shards, tc.ok)
		}
	}
}
