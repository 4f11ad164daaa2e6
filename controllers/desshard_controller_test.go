package controllers

import (
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

func (e *testEnv) shardReconciler() *DesShardReconciler {
	e.ensureArchiveSecret()
	connector := NewConnector(e.c)
	e.t.Cleanup(connector.Close)
	return &DesShardReconciler{Client: e.c, Connector: connector, Scheme: testScheme, Recorder: e.events, Clock: e.clock,
		Jobs: JobDefaults{Image: "des:test", ServiceAccountName: "des-packer", TTLSecondsAfterFinished: 3600}}
}

// ensureArchiveSecret provides the archive-s3 Secret sampleShard names, unless the test made its
// own: the DesShard reconciler reads it before any Job may mount it.
func (e *testEnv) ensureArchiveSecret() {
	e.t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "archive-s3"},
		StringData: map[string]string{"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}}
	if err := e.c.Create(e.ctx, s); err != nil && !apierrors.IsAlreadyExists(err) {
		e.t.Fatal(err)
	}
}

func (e *testEnv) jobs(desShard string) map[string]string {
	return e.jobsBy(desShard, func(j *batchv1.Job) string { return j.Annotations[protocol.AnnotationShards] })
}

// jobsBy maps each Job of desShard to what field says of it.
func (e *testEnv) jobsBy(desShard string, field func(*batchv1.Job) string) map[string]string {
	e.t.Helper()
	list := &batchv1.JobList{}
	if err := e.c.List(e.ctx, list, client.InNamespace(e.ns), client.MatchingLabels{protocol.LabelDesShard: desShard}); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for i := range list.Items {
		out[list.Items[i].Name] = field(&list.Items[i])
	}
	return out
}

func (e *testEnv) holdLease(desShard string, shard int32, holder string) {
	e.t.Helper()
	e.create(&coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: protocol.LeaseName(desShard, shard), Labels: map[string]string{protocol.LabelDesShard: desShard, protocol.LabelShard: "0"}},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(holder),
			LeaseDurationSeconds: ptr.To(int32(30)),
			RenewTime:            &metav1.MicroTime{Time: e.clock.Now()},
		},
	})
}

func TestDueShardsGetOneJobPerGroup(t *testing.T) {
	e := newTestEnv(t)
	e.create(sampleSource("src"))
	ds := sampleShard("daily", "src", 4, 0, 1, 2, 3)
	e.create(ds)
	r := e.shardReconciler()

	res := e.reconcile(r, "daily")
	want := map[string]string{"daily-r1-g0": "0,1", "daily-r1-g1": "2,3", "daily-r1-g2": "4"}
	if got := e.jobs("daily"); !equalMaps(got, want) {
		t.Fatalf("jobs = %v, want %v", got, want)
	}
	if res.RequeueAfter != time.Hour {
		t.Errorf("requeue after %v, want the interval", res.RequeueAfter)
	}

	// The Job is owned by the DesShard (deletion cascades) and carries the packer's arguments and Secrets.
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "daily-r1-g0"}}
	e.get(job)
	if len(job.OwnerReferences) != 1 || job.OwnerReferences[0].Name != "daily" || !ptr.Deref(job.OwnerReferences[0].Controller, false) {
		t.Errorf("owner references = %+v", job.OwnerReferences)
	}
	c := job.Spec.Template.Spec.Containers[0]
	if strings.Join(c.Args, " ") != "pack --desshard=daily --shards=0,1" || c.Image != "des:test" {
		t.Errorf("packer container: image %s args %v", c.Image, c.Args)
	}
	for _, env := range c.Env {
		if env.ValueFrom != nil && env.ValueFrom.SecretKeyRef != nil {
			t.Errorf("secret %s passed as environment variable %s", env.ValueFrom.SecretKeyRef.Name, env.Name)
		}
	}
	if !hasSecretVolume(job.Spec.Template.Spec, "catalog") || !hasSecretVolume(job.Spec.Template.Spec, "archive-s3") {
		t.Errorf("secret volumes missing: %+v", job.Spec.Template.Spec.Volumes)
	}

	// A second reconcile within the interval creates nothing.
	e.clock.Step(time.Minute)
	e.reconcile(r, "daily")
	if got := e.jobs("daily"); len(got) != 3 {
		t.Fatalf("second reconcile changed jobs: %v", got)
	}
	e.get(ds)
	if ds.Status.Runs != 1 || ds.Status.ShardCount != 5 || ds.Status.ActiveJobs != 3 {
		t.Errorf("status = runs %d shards %d active %d", ds.Status.Runs, ds.Status.ShardCount, ds.Status.ActiveJobs)
	}
	if c := meta.FindStatusCondition(ds.Status.Conditions, desv1.ConditionProgressing); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Progressing = %+v", c)
	}
}

func TestBusyShardsGetNoSecondJob(t *testing.T) {
	e := newTestEnv(t)
	e.create(sampleSource("src"))
	e.create(sampleShard("daily", "src", 0, 1, 2, 3))
	r := e.shardReconciler()
	e.holdLease("daily", 0, "some-pod")

	e.reconcile(r, "daily")
	want := map[string]string{"daily-r1-g0": "1", "daily-r1-g1": "2,3"}
	if got := e.jobs("daily"); !equalMaps(got, want) {
		t.Fatalf("with shard 0 leased: jobs = %v, want %v", got, want)
	}

	// Next run: run 1's Jobs are still active and the Lease is still fresh, so nothing is due.
	e.clock.Step(time.Hour)
	renew(e, "daily", 0)
	e.reconcile(r, "daily")
	if got := e.jobs("daily"); !equalMaps(got, want) {
		t.Fatalf("busy shards got new jobs: %v", got)
	}

	// Once a Job finishes its shards are free again.
	finishJob(e, "daily-r1-g1")
	e.clock.Step(time.Hour)
	renew(e, "daily", 0)
	e.reconcile(r, "daily")
	want["daily-r2-g1"] = "2,3" // the check that found every shard busy started no run
	if got := e.jobs("daily"); !equalMaps(got, want) {
		t.Fatalf("after a Job finished: jobs = %v, want %v", got, want)
	}
}

func TestSuspendStopsNewJobs(t *testing.T) {
	e := newTestEnv(t)
	e.create(sampleSource("src"))
	ds := sampleShard("daily", "src", 0)
	ds.Spec.Suspend = true
	e.create(ds)
	e.reconcile(e.shardReconciler(), "daily")
	if got := e.jobs("daily"); len(got) != 0 {
		t.Fatalf("suspended DesShard got jobs %v", got)
	}
	e.get(ds)
	if c := meta.FindStatusCondition(ds.Status.Conditions, desv1.ConditionProgressing); c == nil || !strings.Contains(c.Message, "suspended") {
		t.Errorf("Progressing = %+v", c)
	}
}

func TestShardProblemsShowInReady(t *testing.T) {
	cases := []struct {
		name, reason, message string
		setup                 func(e *testEnv)
	}{
		{"missing source", "SourceNotFound", `DesSource "src" does not exist`, func(e *testEnv) {
			e.create(sampleShard("daily", "src", 0))
		}},
		{"shard beyond the source's width", "InvalidShards", "ids are 0..15", func(e *testEnv) {
			e.create(sampleSource("src"))
			e.create(sampleShard("daily", "src", 16))
		}},
		{"archive Secret without the access-key entries", "SecretKeyNotFound",
			`archive store credentials: Secret "archive-no-keys" has no keys "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"`, func(e *testEnv) {
				e.create(sampleSource("src"))
				e.secret("archive-no-keys", map[string]string{"region": "eu-west-1"})
				ds := sampleShard("daily", "src", 0)
				ds.Spec.Archive.CredentialsSecretRef.Name = "archive-no-keys"
				e.create(ds)
			}},
		{"archive Secret missing", "SecretNotFound", `archive store credentials: Secret "archive-gone" does not exist`, func(e *testEnv) {
			e.create(sampleSource("src"))
			ds := sampleShard("daily", "src", 0)
			ds.Spec.Archive.CredentialsSecretRef.Name = "archive-gone"
			e.create(ds)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			tc.setup(e)
			e.reconcile(e.shardReconciler(), "daily")
			ds := &desv1.DesShard{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "daily"}}
			e.get(ds)
			c := meta.FindStatusCondition(ds.Status.Conditions, desv1.ConditionReady)
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != tc.reason || !strings.Contains(c.Message, tc.message) {
				t.Fatalf("Ready = %+v, want reason %s and message containing %q", c, tc.reason, tc.message)
			}
			if got := e.jobs("daily"); len(got) != 0 {
				t.Fatalf("jobs created despite the problem: %v", got)
			}
		})
	}
}

func renew(e *testEnv, desShard string, shard int32) {
	e.t.Helper()
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: protocol.LeaseName(desShard, shard)}}
	e.get(l)
	l.Spec.RenewTime = &metav1.MicroTime{Time: e.clock.Now()}
	if err := e.c.Update(e.ctx, l); err != nil {
		e.t.Fatal(err)
	}
}

func finishJob(e *testEnv, name string) {
	e.t.Helper()
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name}}
	e.get(j)
	now := metav1.Now()
	j.Status.StartTime = &now
	j.Status.CompletionTime = &now
	j.Status.Succeeded = 1
	j.Status.Conditions = append(j.Status.Conditions,
		batchv1.JobCondition{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
		batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now})
	if err := e.c.Status().Update(e.ctx, j); err != nil {
		e.t.Fatalf("complete job %s: %v", name, err)
	}
}

func hasSecretVolume(spec corev1.PodSpec, secret string) bool {
	for _, v := range spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret {
			return true
		}
	}
	return false
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
