package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

func TestFindOverlap(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	claim := func(ns, name string, age time.Duration, bucket, prefix string, shards ...int32) archiveClaim {
		ds := &desv1.DesShard{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(t0.Add(-age))}}
		ds.Spec.Archive.Bucket, ds.Spec.Archive.Prefix = bucket, prefix
		return claimOf(ds, shards)
	}
	me := claim("scans", "daily", time.Hour, "archive", "des", 0, 1, 2, 3)
	cases := []struct {
		name   string
		others []archiveClaim
		want   string // "" for no overlap, else "<other> <shards>"
	}{
		{"alone (the list holds me too)", []archiveClaim{me}, ""},
		{"earlier, same place, shared shards", []archiveClaim{me, claim("scans", "old", 2*time.Hour, "archive", "des", 3, 4)}, "scans/old [3]"},
		{"earlier in another namespace", []archiveClaim{claim("other", "old", 2*time.Hour, "archive", "des", 0, 2, 9)}, "other/old [0 2]"},
		{"the same prefix written with a trailing slash", []archiveClaim{claim("scans", "old", 2*time.Hour, "archive", "des/", 1)}, "scans/old [1]"},
		{"later DesShard: it is the one refused, not me", []archiveClaim{claim("scans", "new", time.Minute, "archive", "des", 0)}, ""},
		{"same second: the name decides (scans/daily < scans/hourly)", []archiveClaim{claim("scans", "hourly", time.Hour, "archive", "des", 0)}, ""},
		{"same second: the name decides (scans/alpha < scans/daily)", []archiveClaim{claim("scans", "alpha", time.Hour, "archive", "des", 0)}, "scans/alpha [0]"},
		{"disjoint shards", []archiveClaim{claim("scans", "old", 2*time.Hour, "archive", "des", 4, 5)}, ""},
		{"another prefix", []archiveClaim{claim("scans", "old", 2*time.Hour, "archive", "des2", 0)}, ""},
		{"another bucket", []archiveClaim{claim("scans", "old", 2*time.Hour, "archive-2", "des", 0)}, ""},
		{"the earliest of two overlapping is named", []archiveClaim{
			claim("scans", "older", 2*time.Hour, "archive", "des", 1),
			claim("scans", "oldest", 3*time.Hour, "archive", "des", 2),
		}, "scans/oldest [2]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if o := findOverlap(me, tc.others); o != nil {
				got = fmt.Sprintf("%s %v", o.other, o.shards)
			}
			if got != tc.want {
				t.Fatalf("findOverlap = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSpecShards(t *testing.T) {
	spec := desv1.DesShardSpec{Shards: []int32{7, 1}, ShardRanges: []desv1.ShardRange{{From: 3, To: 5}, {From: 5, To: 4}, {From: 65535, To: 65535}}}
	if got := fmt.Sprint(specShards(spec)); got != "[1 3 4 5 7 65535]" {
		t.Fatalf("specShards = %s", got)
	}
}

// TestOverlappingDesShardIsRefused: two DesShards in different namespaces share an archive bucket,
// prefix and shard 1. The later one is Ready=False OverlapsDesShard naming the earlier one and the
// shard, gets one Warning event over two passes, and creates no Jobs; the earlier one runs.
func TestOverlappingDesShardIsRefused(t *testing.T) {
	first, later := newTestEnv(t), newTestEnv(t)
	for _, e := range []*testEnv{first, later} {
		e.create(sampleSource("src"))
	}
	ds1 := sampleShard("daily", "src", 0, 1)
	first.create(ds1)
	time.Sleep(1100 * time.Millisecond) // creation timestamps have whole seconds
	ds2 := sampleShard("daily", "src", 1, 2)
	ds2.Spec.Archive = ds1.Spec.Archive
	later.create(ds2)

	for range 2 {
		first.reconcile(first.shardReconciler(), "daily")
		later.reconcile(later.shardReconciler(), "daily")
	}
	ds := &desv1.DesShard{ObjectMeta: metav1.ObjectMeta{Namespace: later.ns, Name: "daily"}}
	later.get(ds)
	c := meta.FindStatusCondition(ds.Status.Conditions, desv1.ConditionReady)
	want := fmt.Sprintf("shards 1 of archive s3://%s/des are already DesShard %s/daily's", ds1.Spec.Archive.Bucket, first.ns)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != string(desv1.ReasonOverlapsDesShard) || !strings.Contains(c.Message, want) {
		t.Fatalf("later DesShard's Ready = %+v, want False/OverlapsDesShard with %q", c, want)
	}
	if n := later.countEvents(desv1.ReasonOverlapsDesShard); n != 1 {
		t.Fatalf("%d OverlapsDesShard events over two passes, want 1", n)
	}
	if jobs := later.jobs("daily"); len(jobs) != 0 {
		t.Fatalf("the refused DesShard created Jobs: %v", jobs)
	}
	if jobs := first.jobs("daily"); len(jobs) == 0 {
		t.Fatal("the earlier DesShard created no Jobs")
	}
	earlier := &desv1.DesShard{ObjectMeta: metav1.ObjectMeta{Namespace: first.ns, Name: "daily"}}
	first.get(earlier)
	if c := meta.FindStatusCondition(earlier.Status.Conditions, desv1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("earlier DesShard's Ready = %+v, want True", c)
	}
}
