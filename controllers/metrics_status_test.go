package controllers

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

// failJob marks a Job failed for good as the Job controller does (FailureTarget first, then Failed),
// through the real API server's status validation.
func failJob(e *testEnv, name string) {
	e.t.Helper()
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name}}
	e.get(j)
	now := metav1.Now()
	j.Status.StartTime = &now
	j.Status.Failed = 1
	j.Status.Conditions = append(j.Status.Conditions,
		batchv1.JobCondition{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: now},
		batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: now})
	if err := e.c.Status().Update(e.ctx, j); err != nil {
		e.t.Fatalf("fail job %s: %v", name, err)
	}
}

// TestStatusCollector reads real objects from the API server: packer Jobs by state, the overdue time
// of DesShards from their shards' packBy (suspended ones report 0), and DesSource row counts.
func TestStatusCollector(t *testing.T) {
	e := newTestEnv(t)
	now := e.clock.Now()
	src := sampleSource("src")
	e.create(src)
	src.Status.Rows = &desv1.RowCounts{Ready: 7, Packed: 40, Failed: 3}
	src.Status.Sources = &desv1.SourceCounts{Deleted: 30, Refused: 2}
	if err := e.c.Status().Update(e.ctx, src); err != nil {
		t.Fatal(err)
	}

	late := sampleShard("late", "src", 0, 1, 2)
	e.create(late)
	late.Status.Shards = []desv1.ShardStatus{
		// 90 minutes past its pack-by, due by MaxWait and still pending: this is the worst.
		{ID: 0, PendingRows: 5, Fill: desv1.FillMaxWait, PackBy: &metav1.Time{Time: now.Add(-90 * time.Minute)}},
		// Due by MinFiles, 10 minutes past its pack-by.
		{ID: 1, PendingRows: 5000, Fill: desv1.FillMinFiles, PackBy: &metav1.Time{Time: now.Add(-10 * time.Minute)}},
		// A pack-by in the past without pending rows (the status of an emptied shard) is not late.
		{ID: 2, PackBy: &metav1.Time{Time: now.Add(-48 * time.Hour)}},
	}
	if err := e.c.Status().Update(e.ctx, late); err != nil {
		t.Fatal(err)
	}
	onTime := sampleShard("ontime", "src", 3)
	e.create(onTime)
	onTime.Status.Shards = []desv1.ShardStatus{{ID: 3, PendingRows: 1, Fill: desv1.FillWaiting, PackBy: &metav1.Time{Time: now.Add(time.Hour)}}}
	if err := e.c.Status().Update(e.ctx, onTime); err != nil {
		t.Fatal(err)
	}
	paused := sampleShard("paused", "src", 4)
	paused.Spec.Suspend = true
	e.create(paused)
	paused.Status.Shards = []desv1.ShardStatus{{ID: 4, PendingRows: 1, Fill: desv1.FillMaxWait, PackBy: &metav1.Time{Time: now.Add(-5 * time.Hour)}}}
	if err := e.c.Status().Update(e.ctx, paused); err != nil {
		t.Fatal(err)
	}

	// Jobs as the reconciler builds them: two of run 1 (one failed, one succeeded) and one active.
	for i, name := range []string{"late-r1-g0", "late-r1-g1", "late-r2-g0"} {
		job := buildJob(late, src, jobPlan{Name: name, Group: i, Shards: []int32{int32(i)}}, int64(1+i/2), JobDefaults{Image: "des:test", ServiceAccountName: "des-packer"})
		e.create(job)
	}
	failJob(e, "late-r1-g0")
	finishJob(e, "late-r1-g1")

	got, err := testutil.CollectAndFormat(&StatusCollector{Reader: e.c, Now: e.clock.Now}, expfmt.TypeTextPlain,
		"des_packer_jobs", "des_desshard_pack_overdue_seconds", "des_desshard_interval_seconds", "des_source_rows", "des_source_deletion_rows")
	if err != nil {
		t.Fatal(err)
	}
	ns := `namespace="` + e.ns + `"`
	for _, want := range []string{
		`des_packer_jobs{desshard="late",` + ns + `,state="failed"} 1`,
		`des_packer_jobs{desshard="late",` + ns + `,state="succeeded"} 1`,
		`des_packer_jobs{desshard="late",` + ns + `,state="active"} 1`,
		`des_desshard_pack_overdue_seconds{desshard="late",` + ns + `} 5400`,
		`des_desshard_pack_overdue_seconds{desshard="ontime",` + ns + `} 0`,
		`des_desshard_pack_overdue_seconds{desshard="paused",` + ns + `} 0`,
		`des_desshard_interval_seconds{desshard="late",` + ns + `} 3600`,
		`des_source_rows{dessource="src",` + ns + `,state="failed"} 3`,
		`des_source_rows{dessource="src",` + ns + `,state="ready"} 7`,
		`des_source_rows{dessource="src",` + ns + `,state="unnamed"} 0`,
		`des_source_deletion_rows{dessource="src",` + ns + `,state="refused"} 2`,
		`des_source_deletion_rows{dessource="src",` + ns + `,state="deleted"} 30`,
	} {
		if !strings.Contains(string(got), want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", got)
	}
}

// TestPackOverdue covers the edges of the overdue time without an API server.
func TestPackOverdue(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(d)} }
	cases := []struct {
		name    string
		suspend bool
		shards  []desv1.ShardStatus
		want    time.Duration
	}{
		{"no shards", false, nil, 0},
		{"pack-by ahead", false, []desv1.ShardStatus{{PendingRows: 1, PackBy: at(time.Minute)}}, 0},
		{"pack-by passed", false, []desv1.ShardStatus{{PendingRows: 1, PackBy: at(-time.Minute)}}, time.Minute},
		{"the worst shard counts", false, []desv1.ShardStatus{{PendingRows: 1, PackBy: at(-time.Minute)}, {PendingRows: 1, PackBy: at(-time.Hour)}}, time.Hour},
		{"no pending rows", false, []desv1.ShardStatus{{PackBy: at(-time.Hour)}}, 0},
		{"unknown row age: no pack-by", false, []desv1.ShardStatus{{PendingRows: 1, Fill: desv1.FillMaxWait}}, 0},
		{"suspended", true, []desv1.ShardStatus{{PendingRows: 1, PackBy: at(-time.Hour)}}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds := &desv1.DesShard{Spec: desv1.DesShardSpec{Suspend: c.suspend}, Status: desv1.DesShardStatus{Shards: c.shards}}
			if got := packOverdue(ds, now); got != c.want {
				t.Fatalf("packOverdue = %s, want %s", got, c.want)
			}
		})
	}
}
