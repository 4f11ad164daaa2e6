package controllers

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

// forbidByQuota makes the real API server's ResourceQuota admission refuse every new object of
// resource in the test's namespace, as an exhausted quota does in a user's cluster. The quota's
// usage is written by hand (no quota controller runs here), exactly as that controller would.
func (e *testEnv) forbidByQuota(resource string) {
	e.t.Helper()
	hard := corev1.ResourceList{corev1.ResourceName("count/" + resource): resourceZero()}
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "no-" + strings.ReplaceAll(resource, ".", "-")}, Spec: corev1.ResourceQuotaSpec{Hard: hard}}
	e.create(q)
	q.Status = corev1.ResourceQuotaStatus{Hard: hard, Used: corev1.ResourceList{corev1.ResourceName("count/" + resource): resourceZero()}}
	if err := e.c.Status().Update(e.ctx, q); err != nil {
		e.t.Fatalf("set quota usage: %v", err)
	}
}

func resourceZero() apiresource.Quantity { return apiresource.MustParse("0") }

// reconcileErr runs one reconcile that is expected to fail and returns its error.
func (e *testEnv) reconcileErr(r interface {
	Reconcile(context.Context, ctrl.Request) (ctrl.Result, error)
}, name string) error {
	e.t.Helper()
	_, err := r.Reconcile(e.ctx, ctrl.Request{NamespacedName: client.ObjectKey{Namespace: e.ns, Name: name}})
	if err == nil {
		e.t.Fatalf("reconcile %s succeeded; want the refusal", name)
	}
	return err
}

// expectEvent fails unless a Warning event with reason was recorded, and returns its text.
func (e *testEnv) expectEvent(reason desv1.ConditionReason) string {
	e.t.Helper()
	for {
		select {
		case ev := <-e.events.Events:
			if strings.HasPrefix(ev, "Warning "+string(reason)+" ") {
				return ev
			}
		default:
			e.t.Fatalf("no Warning %s event", reason)
			return ""
		}
	}
}

// countEvents drains the recorded events and counts the Warning events with reason.
func (e *testEnv) countEvents(reason desv1.ConditionReason) int {
	n := 0
	for {
		select {
		case ev := <-e.events.Events:
			if strings.HasPrefix(ev, "Warning "+string(reason)+" ") {
				n++
			}
		default:
			return n
		}
	}
}

func TestRefusedJobShowsInDegradedAndAnEvent(t *testing.T) {
	e := newTestEnv(t)
	e.create(sampleSource("src"))
	e.create(sampleShard("daily", "src", 0, 1))
	e.forbidByQuota("jobs.batch")
	r := e.shardReconciler()

	err := e.reconcileErr(r, "daily")
	if !strings.Contains(err.Error(), "exceeded quota") {
		t.Fatalf("reconcile error %v: want the quota refusal", err)
	}
	ds := &desv1.DesShard{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "daily"}}
	e.get(ds)
	c := meta.FindStatusCondition(ds.Status.Conditions, desv1.ConditionDegraded)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != string(desv1.ReasonJobCreateFailed) || !strings.Contains(c.Message, "exceeded quota") {
		t.Fatalf("Degraded = %+v, want JobCreateFailed naming the quota", c)
	}
	if ds.Status.Runs != 0 || ds.Status.LastScheduleTime != nil {
		t.Errorf("a refused run was recorded as scheduled: runs %d at %v", ds.Status.Runs, ds.Status.LastScheduleTime)
	}
	if ev := e.expectEvent(desv1.ReasonJobCreateFailed); !strings.Contains(ev, "exceeded quota") {
		t.Errorf("event %q does not say why", ev)
	}
	// The retry is refused again: the condition keeps saying so, but the event was told once.
	_ = e.reconcileErr(r, "daily") // refused, as reconcileErr checks
	if n := e.countEvents(desv1.ReasonJobCreateFailed); n != 0 {
		t.Errorf("%d more JobCreateFailed events for the same refusal, want 0", n)
	}

	// Once the quota is lifted the next pass creates the Jobs and Degraded clears.
	if err := e.c.DeleteAllOf(e.ctx, &corev1.ResourceQuota{}, client.InNamespace(e.ns)); err != nil {
		t.Fatal(err)
	}
	e.reconcile(r, "daily")
	e.get(ds)
	// (This DesShard has no catalog Secret, so Degraded moves on to that trouble.)
	if c := meta.FindStatusCondition(ds.Status.Conditions, desv1.ConditionDegraded); c == nil || c.Reason == string(desv1.ReasonJobCreateFailed) {
		t.Fatalf("Degraded after the quota was lifted = %+v", c)
	}
	if len(e.jobs("daily")) != 1 {
		t.Fatalf("jobs after the quota was lifted: %v", e.jobs("daily"))
	}
}

func TestMarkerFailureShowsInDegradedAndAnEvent(t *testing.T) {
	e := newTestEnv(t)
	src := sampleSource("src")
	src.Spec.Marker = &desv1.Marker{Schedule: "*/10 * * * *"}
	e.create(src)
	e.forbidByQuota("cronjobs.batch")
	r := e.sourceReconciler()

	if err := e.reconcileErr(r, "src"); !strings.Contains(err.Error(), "exceeded quota") {
		t.Fatalf("reconcile error %v: want the quota refusal", err)
	}
	e.get(src)
	c := meta.FindStatusCondition(src.Status.Conditions, desv1.ConditionDegraded)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != string(desv1.ReasonMarkerFailed) || !strings.Contains(c.Message, "exceeded quota") {
		t.Fatalf("Degraded = %+v, want MarkerFailed naming the quota", c)
	}
	// Ready still tells the truth about the catalog (here: its Secret is missing), not "Ready".
	if ready := meta.FindStatusCondition(src.Status.Conditions, desv1.ConditionReady); ready == nil || ready.Reason != string(desv1.ReasonSecretNotFound) {
		t.Fatalf("Ready = %+v, want the catalog check's own verdict", ready)
	}
	e.expectEvent(desv1.ReasonMarkerFailed)
}
