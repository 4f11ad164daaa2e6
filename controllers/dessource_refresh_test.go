package controllers

import (
	"context"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/datavision/des/internal/protocol"
)

func desJob(source, component string, conditions ...batchv1.JobConditionType) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "j", Labels: map[string]string{
		protocol.LabelManagedBy: protocol.ManagedByDES, protocol.LabelComponent: component}}}
	if source != "" {
		j.Labels[protocol.LabelSource] = source
	}
	for _, c := range conditions {
		j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: c, Status: corev1.ConditionTrue})
	}
	return j
}

// TestJobEndsAreRecounted: only the moment one of DES's Jobs of a source ends asks for a count.
func TestJobEndsAreRecounted(t *testing.T) {
	foreign := desJob("src", "packer", batchv1.JobComplete)
	foreign.Labels[protocol.LabelManagedBy] = "someone-else"
	tests := []struct {
		name     string
		old, new *batchv1.Job
		want     bool
	}{
		{"packer completes", desJob("src", "packer"), desJob("src", "packer", batchv1.JobComplete), true},
		{"packer fails", desJob("src", "packer"), desJob("src", "packer", batchv1.JobFailed), true},
		{"marker completes", desJob("src", "marker"), desJob("src", "marker", batchv1.JobSuccessCriteriaMet), true},
		{"still running", desJob("src", "packer"), desJob("src", "packer"), false},
		{"already ended", desJob("src", "packer", batchv1.JobSuccessCriteriaMet), desJob("src", "packer", batchv1.JobSuccessCriteriaMet, batchv1.JobComplete), false},
		{"no source label", desJob("", "packer"), desJob("", "packer", batchv1.JobComplete), false},
		{"not DES's", desJob("src", "packer"), foreign, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, ok := sourceOfEndedJob(tc.old, tc.new)
			if ok != tc.want {
				t.Fatalf("recount = %v, want %v", ok, tc.want)
			}
			if ok && (req.Namespace != "ns" || req.Name != "src") {
				t.Fatalf("recounts %v, want ns/src", req.NamespacedName)
			}
		})
	}
}

// TestJobEndsOfARunCountOnce: the Jobs of a run that end within the delay put the DesSource in the
// queue once, and only after the delay.
func TestJobEndsOfARunCountOnce(t *testing.T) {
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	const delay = 300 * time.Millisecond
	h := jobEndRecounts(delay)
	start := time.Now()
	for range 5 {
		h.Update(context.Background(), event.UpdateEvent{ObjectOld: desJob("src", "packer"), ObjectNew: desJob("src", "packer", batchv1.JobComplete)}, q)
	}
	if q.Len() != 0 {
		t.Fatalf("%d requests queued before the delay", q.Len())
	}
	req, _ := q.Get()
	if waited := time.Since(start); waited < delay {
		t.Fatalf("counted after %v, before the delay of %v", waited, delay)
	}
	q.Done(req)
	if req.Name != "src" || q.Len() != 0 {
		t.Fatalf("got %v and %d more requests, want src once", req, q.Len())
	}
}
