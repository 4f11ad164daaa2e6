package leasestate

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestClassify(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	lease := func(holder string, renewedAgo time.Duration, dur int32) *coordinationv1.Lease {
		l := &coordinationv1.Lease{}
		if holder != "" {
			l.Spec.HolderIdentity = ptr.To(holder)
		}
		l.Spec.RenewTime = &metav1.MicroTime{Time: now.Add(-renewedAgo)}
		l.Spec.LeaseDurationSeconds = ptr.To(dur)
		return l
	}
	cases := []struct {
		name  string
		lease *coordinationv1.Lease
		want  State
	}{
		{"absent", nil, Free},
		{"released", lease("", time.Second, 30), Free},
		{"fresh", lease("pod-a", 10*time.Second, 30), Held},
		{"just expired", lease("pod-a", 30*time.Second, 30), Expired},
		{"no renew time", &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("pod-a")}}, Expired},
	}
	for _, tc := range cases {
		if got := Classify(tc.lease, now); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
