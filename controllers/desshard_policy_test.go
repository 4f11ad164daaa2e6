package controllers

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/lease"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/test/testworld"
)

// The decisions of a DesShard pass are pure functions; these tables check them without servers.

func TestRunDue(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(d)} }
	cases := []struct {
		name     string
		last     *metav1.Time
		interval time.Duration
		due      bool
		next     time.Time
	}{
		{"never ran", nil, time.Hour, true, now},
		{"interval passed", at(-2 * time.Hour), time.Hour, true, now.Add(-time.Hour)},
		{"exactly due", at(-time.Hour), time.Hour, true, now},
		{"not yet", at(-59 * time.Minute), time.Hour, false, now.Add(time.Minute)},
		{"clock went back", at(time.Hour), time.Hour, false, now.Add(2 * time.Hour)},
	}
	for _, c := range cases {
		due, next := runDue(c.last, c.interval, now)
		if due != c.due || !next.Equal(c.next) {
			t.Errorf("%s: runDue = %v, %v; want %v, %v", c.name, due, next, c.due, c.next)
		}
	}
}

func TestPlanRun(t *testing.T) {
	groups := [][]int32{{0, 1}, {2, 3}, {4}}
	cases := []struct {
		name string
		busy map[int32]string
		want []jobPlan
	}{
		{"all free", nil, []jobPlan{
			{Name: "d-r7-g0", Group: 0, Shards: []int32{0, 1}}, {Name: "d-r7-g1", Group: 1, Shards: []int32{2, 3}}, {Name: "d-r7-g2", Group: 2, Shards: []int32{4}}}},
		{"busy shards are left out, names keep their group", map[int32]string{1: "job x", 2: "lease held by p", 3: "job x"}, []jobPlan{
			{Name: "d-r7-g0", Group: 0, Shards: []int32{0}}, {Name: "d-r7-g2", Group: 2, Shards: []int32{4}}}},
		{"everything busy", map[int32]string{0: "", 1: "", 2: "", 3: "", 4: ""}, nil},
	}
	for _, c := range cases {
		if got := planRun("d", 7, groups, c.busy); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: planRun = %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestBusyShards(t *testing.T) {
	job := func(name, shards string, conds ...batchv1.JobConditionType) batchv1.Job {
		j := batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{protocol.AnnotationShards: shards}}}
		for _, c := range conds {
			j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: c, Status: corev1.ConditionTrue})
		}
		return j
	}
	cases := []struct {
		name    string
		jobs    []batchv1.Job
		leases  map[int32]leaseState
		holders map[int32]string
		want    map[int32]string
	}{
		{"nothing", nil, nil, nil, map[int32]string{}},
		{"an active Job", []batchv1.Job{job("j1", "1,2")}, nil, nil, map[int32]string{1: "job j1", 2: "job j1"}},
		{"finished Jobs free their shards", []batchv1.Job{job("ok", "1", batchv1.JobComplete), job("bad", "2", batchv1.JobFailed), job("dying", "3", batchv1.JobFailureTarget)}, nil, nil, map[int32]string{}},
		{"a held Lease", nil, map[int32]leaseState{4: leaseHeld, 5: leaseExpired, 6: lease.Free}, map[int32]string{4: "pod-a", 5: "pod-b"}, map[int32]string{4: "lease held by pod-a"}},
		{"the Job is named before the Lease", []batchv1.Job{job("j1", "4")}, map[int32]leaseState{4: leaseHeld}, map[int32]string{4: "pod-a"}, map[int32]string{4: "job j1"}},
		{"an unreadable annotation is ignored", []batchv1.Job{job("odd", "1,x")}, nil, nil, map[int32]string{}},
	}
	for _, c := range cases {
		if got := busyShards(c.jobs, c.leases, c.holders); !maps.Equal(got, c.want) {
			t.Errorf("%s: busyShards = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestLastOutcomes(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	committed := func(shard int32, at time.Duration) desv1.DesContainer {
		c := desv1.DesContainer{Spec: desv1.DesContainerSpec{Shard: shard}}
		c.Status.Phase, c.Status.CommittedAt = desv1.PhaseCommitted, &metav1.Time{Time: t0.Add(at)}
		return c
	}
	failed := func(shard int32, at time.Duration, reason string) desv1.DesContainer {
		c := desv1.DesContainer{Spec: desv1.DesContainerSpec{Shard: shard}}
		c.Status.Phase, c.Status.Reason = desv1.PhaseRolledBack, reason
		c.Status.Conditions = []metav1.Condition{{Type: desv1.ConditionFinished, Status: metav1.ConditionTrue, LastTransitionTime: metav1.Time{Time: t0.Add(at)}}}
		return c
	}
	cases := []struct {
		name       string
		containers []desv1.DesContainer
		shard      int32
		success    time.Duration // 0: none
		err        string
	}{
		{"latest commit wins", []desv1.DesContainer{committed(1, time.Hour), committed(1, 2*time.Hour)}, 1, 2 * time.Hour, ""},
		{"a failure after the last commit is news", []desv1.DesContainer{committed(1, time.Hour), failed(1, 2*time.Hour, "SlowDown")}, 1, time.Hour, "SlowDown"},
		{"a failure before the last commit is history", []desv1.DesContainer{failed(1, time.Hour, "SlowDown"), committed(1, 2*time.Hour)}, 1, 2 * time.Hour, ""},
		{"only failures", []desv1.DesContainer{failed(2, time.Hour, "a"), failed(2, 3*time.Hour, "b")}, 2, 0, "b"},
	}
	for _, c := range cases {
		o := lastOutcomes(c.containers)[c.shard]
		var success time.Duration
		if o.success != nil {
			success = o.success.Sub(t0)
		}
		if success != c.success || o.err != c.err {
			t.Errorf("%s: success %v err %q; want %v %q", c.name, success, o.err, c.success, c.err)
		}
	}
}

func TestShardDegraded(t *testing.T) {
	cases := []struct {
		name   string
		obs    shardObservation
		failed int
		on     bool
		reason desv1.ConditionReason
	}{
		{"healthy", shardObservation{}, 0, false, desv1.ReasonNoFailures},
		{"failed Jobs", shardObservation{}, 2, true, desv1.ReasonJobsFailed},
		{"trouble before failed Jobs", shardObservation{trouble: "catalog: down"}, 2, true, desv1.ReasonArchiveOrCatalogTrouble},
		{"a refused Job first", shardObservation{trouble: "x", jobRefused: "exceeded quota"}, 2, true, desv1.ReasonJobCreateFailed},
	}
	for _, c := range cases {
		on, reason, msg := shardDegraded(&c.obs, c.failed)
		if on != c.on || reason != c.reason || msg == "" {
			t.Errorf("%s: shardDegraded = %v %s %q; want %v %s", c.name, on, reason, msg, c.on, c.reason)
		}
	}
}

func TestSourceWatchIgnoresStatusChurn(t *testing.T) {
	src := func(gen int64, ready metav1.ConditionStatus, packed int64) *desv1.DesSource {
		s := &desv1.DesSource{ObjectMeta: metav1.ObjectMeta{Name: "s", Generation: gen}}
		s.Status.Rows = &desv1.RowCounts{Packed: packed}
		s.Status.Conditions = []metav1.Condition{{Type: desv1.ConditionReady, Status: ready}}
		return s
	}
	p := sourceSpecOrReadinessChanged()
	cases := []struct {
		name     string
		old, new *desv1.DesSource
		want     bool
	}{
		{"counts refreshed", src(1, metav1.ConditionTrue, 10), src(1, metav1.ConditionTrue, 20), false},
		{"spec changed", src(1, metav1.ConditionTrue, 10), src(2, metav1.ConditionTrue, 10), true},
		{"became ready", src(1, metav1.ConditionFalse, 0), src(1, metav1.ConditionTrue, 0), true},
		{"lost readiness", src(1, metav1.ConditionTrue, 0), src(1, metav1.ConditionFalse, 0), true},
	}
	for _, c := range cases {
		if got := p.Update(event.UpdateEvent{ObjectOld: c.old, ObjectNew: c.new}); got != c.want {
			t.Errorf("%s: passes = %v, want %v", c.name, got, c.want)
		}
	}
	if !p.Create(event.CreateEvent{Object: src(1, "", 0)}) || !p.Delete(event.DeleteEvent{Object: src(1, "", 0)}) {
		t.Error("creations and deletions must pass")
	}
}

// TestSourceEventsFindTheirDesShardsByIndex runs the map function on a real informer cache with the
// index SetupWithManager registers: only the DesShards of the changed DesSource are enqueued.
func TestSourceEventsFindTheirDesShardsByIndex(t *testing.T) {
	e := newTestEnv(t)
	e.create(sampleShard("a1", "a", 0))
	e.create(sampleShard("a2", "a", 1))
	e.create(sampleShard("b1", "b", 2))
	kube := testworld.K8s(t)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	informers, err := cache.New(kube.Config, cache.Options{Scheme: testScheme, DefaultNamespaces: map[string]cache.Config{e.ns: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := informers.IndexField(ctx, &desv1.DesShard{}, indexSourceRef, sourceRefOf); err != nil {
		t.Fatal(err)
	}
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
	c, err := client.New(kube.Config, client.Options{Scheme: testScheme, Cache: &client.CacheOptions{Reader: informers}})
	if err != nil {
		t.Fatal(err)
	}
	r := &DesShardReconciler{Client: c}
	var got []string
	for _, req := range r.sourceToDesShards(ctx, sampleSourceIn("a", e.ns)) {
		got = append(got, req.Name)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"a1", "a2"}) {
		t.Fatalf("DesSource a enqueued %v, want [a1 a2]", got)
	}
}

func sampleSourceIn(name, ns string) *desv1.DesSource {
	s := sampleSource(name)
	s.Namespace = ns
	return s
}
