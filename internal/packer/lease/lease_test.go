package lease

import (
	"math"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const noRenewTime = time.Duration(math.MinInt64)
	lease := func(holder string, renewedAgo time.Duration, seconds int32) *coordinationv1.Lease {
		l := &coordinationv1.Lease{}
		if holder != "" {
			l.Spec.HolderIdentity = ptr.To(holder)
		}
		if renewedAgo != noRenewTime {
			l.Spec.RenewTime = &metav1.MicroTime{Time: now.Add(-renewedAgo)}
		}
		if seconds > 0 {
			l.Spec.LeaseDurationSeconds = ptr.To(seconds)
		}
		return l
	}
	for _, tc := range []struct {
		name string
		l    *coordinationv1.Lease
		want Action
	}{
		{"no lease", nil, Create},
		{"released (no holder)", lease("", time.Second, 30), Take},
		{"released (empty holder)", func() *coordinationv1.Lease {
			l := lease("", time.Second, 30)
			l.Spec.HolderIdentity = ptr.To("")
			return l
		}(), Take},
		{"fresh", lease("pod-a", 10*time.Second, 30), Skip},
		{"fresh, renewed just now", lease("pod-a", 0, 30), Skip},
		{"fresh, renewed in the future (clock skew)", lease("pod-a", -5*time.Second, 30), Skip},
		{"one instant before expiry", lease("pod-a", 30*time.Second-time.Nanosecond, 30), Skip},
		{"at expiry", lease("pod-a", 30*time.Second, 30), Take},
		{"expired", lease("pod-a", time.Minute, 30), Take},
		{"no renew time", lease("pod-a", noRenewTime, 30), Take},
		{"no duration", lease("pod-a", time.Second, 0), Take},
		{"short duration, expired", lease("pod-a", 2*time.Second, 1), Take},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(tc.l, now); got != tc.want {
				t.Errorf("Decide = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{Namespace: "ns", Name: "l", Identity: "me"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Duration != 30*time.Second || o.RenewInterval != 10*time.Second || o.RenewDeadline != 20*time.Second {
		t.Errorf("defaults %s/%s/%s, want the protocol's 30s/10s and a 20s deadline", o.Duration, o.RenewInterval, o.RenewDeadline)
	}
	for _, bad := range []Options{
		{Namespace: "ns", Name: "l"},
		{Namespace: "ns", Name: "l", Identity: "me", Duration: 1500 * time.Millisecond},
		{Namespace: "ns", Name: "l", Identity: "me", Duration: 3 * time.Second, RenewInterval: 2 * time.Second, RenewDeadline: 2 * time.Second},
		{Namespace: "ns", Name: "l", Identity: "me", Duration: 3 * time.Second, RenewInterval: time.Second, RenewDeadline: 3 * time.Second},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("options %+v accepted", bad)
		}
	}
}
