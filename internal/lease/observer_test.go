package lease

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestObserver feeds an Observer a sequence of Lease reads at controller times and checks each
// judgement. Renew times are deliberately far from the observer's clock: only change counts.
func TestObserver(t *testing.T) {
	thirty := ptr.To(int32(30))
	// read is the Lease as the API server returns it: holder, renewTime (writer's clock), version.
	read := func(holder string, renew time.Time, version string) *coordinationv1.Lease {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "des-daily-0003", ResourceVersion: version}}
		if holder != "" {
			l.Spec.HolderIdentity = ptr.To(holder)
		}
		l.Spec.RenewTime = &metav1.MicroTime{Time: renew}
		l.Spec.LeaseDurationSeconds = thirty
		return l
	}
	type step struct {
		at    time.Duration // observer's clock, from t0
		lease *coordinationv1.Lease
		want  State
		left  time.Duration // checked when Held
	}
	past, future := t0.Add(-10*time.Minute), t0.Add(10*time.Minute)
	cases := []struct {
		name  string
		steps []step
	}{
		{"restart: a Lease renewed long ago by its clock waits a full duration", []step{
			{0, read("pod-a", t0.Add(-time.Hour), "1"), Held, 30 * time.Second},
			{29 * time.Second, read("pod-a", t0.Add(-time.Hour), "1"), Held, time.Second},
			{30 * time.Second, read("pod-a", t0.Add(-time.Hour), "1"), Expired, 0},
		}},
		{"renewTime far in the past (skewed writer clock) but changing", []step{
			{0, read("pod-a", past, "1"), Held, 30 * time.Second},
			{20 * time.Second, read("pod-a", past.Add(10*time.Second), "2"), Held, 30 * time.Second},
			{40 * time.Second, read("pod-a", past.Add(20*time.Second), "3"), Held, 30 * time.Second},
			{65 * time.Second, read("pod-a", past.Add(20*time.Second), "3"), Held, 5 * time.Second},
		}},
		{"renewTime far in the future but changing, then unchanged for a duration", []step{
			{0, read("pod-a", future, "1"), Held, 30 * time.Second},
			{10 * time.Second, read("pod-a", future.Add(10*time.Second), "2"), Held, 30 * time.Second},
			{39 * time.Second, read("pod-a", future.Add(10*time.Second), "2"), Held, time.Second},
			{40 * time.Second, read("pod-a", future.Add(10*time.Second), "2"), Expired, 0},
		}},
		{"unchanged for a duration expires even with a fresh-looking renewTime", []step{
			{0, read("pod-a", t0, "1"), Held, 30 * time.Second},
			{31 * time.Second, read("pod-a", t0, "1"), Expired, 0},
		}},
		{"a new holder is a new value", []step{
			{0, read("pod-a", t0, "1"), Held, 30 * time.Second},
			{29 * time.Second, read("pod-b", t0, "1"), Held, 30 * time.Second},
		}},
		{"a write that changes only the resourceVersion counts as a change", []step{
			{0, read("pod-a", t0, "1"), Held, 30 * time.Second},
			{29 * time.Second, read("pod-a", t0, "2"), Held, 30 * time.Second},
		}},
		{"released is Free at once and forgotten", []step{
			{0, read("pod-a", t0, "1"), Held, 30 * time.Second},
			{5 * time.Second, read("", t0, "2"), Free, 0},
			{40 * time.Second, read("pod-a", t0, "1"), Held, 30 * time.Second},
		}},
		{"no Lease is Free", []step{{0, nil, Free, 0}}},
		{"held without a duration cannot be judged fresh", []step{
			{0, func() *coordinationv1.Lease { l := read("pod-a", t0, "1"); l.Spec.LeaseDurationSeconds = nil; return l }(), Expired, 0},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := NewObserver()
			for i, s := range tc.steps {
				got := o.Observe(s.lease, t0.Add(s.at))
				if got.State != s.want || (s.want == Held && got.Left != s.left) {
					t.Fatalf("step %d (at %s): %s, %s left; want %s, %s left", i, s.at, got.State, got.Left, s.want, s.left)
				}
			}
		})
	}
}

// TestObserverKeepsLeasesApart: two Leases are judged on their own sightings.
func TestObserverKeepsLeasesApart(t *testing.T) {
	o := NewObserver()
	a := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", ResourceVersion: "1"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("p"), LeaseDurationSeconds: ptr.To(int32(30))}}
	b := a.DeepCopy()
	b.Name = "b"
	o.Observe(a, t0)
	if got := o.Observe(b, t0.Add(40*time.Second)); got.State != Held {
		t.Fatalf("first sight of b after a: %s, want Held", got.State)
	}
	if got := o.Observe(a, t0.Add(40*time.Second)); got.State != Expired {
		t.Fatalf("a unchanged for 40 s: %s, want Expired", got.State)
	}
}
