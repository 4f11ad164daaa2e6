package lease

import (
	"errors"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/datavision/des/internal/protocol"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// spec builds a Lease; a nil renew or seconds leaves that field unset.
func spec(holder *string, renew *time.Time, seconds *int32) *coordinationv1.Lease {
	l := &coordinationv1.Lease{}
	l.Spec.HolderIdentity = holder
	if renew != nil {
		l.Spec.RenewTime = &metav1.MicroTime{Time: *renew}
	}
	l.Spec.LeaseDurationSeconds = seconds
	return l
}

func ago(d time.Duration) *time.Time { v := t0.Add(-d); return &v }

func TestClassify(t *testing.T) {
	thirty := ptr.To(int32(30))
	pod := ptr.To("pod-a")
	cases := []struct {
		name  string
		lease *coordinationv1.Lease
		want  State
	}{
		{"no lease", nil, Free},
		{"released (no holder)", spec(nil, ago(time.Second), thirty), Free},
		{"released (empty holder)", spec(ptr.To(""), ago(time.Second), thirty), Free},
		{"released, without renew time or duration", spec(nil, nil, nil), Free},
		{"renewed just now", spec(pod, ago(0), thirty), Held},
		{"renewed within its duration", spec(pod, ago(10*time.Second), thirty), Held},
		{"one nanosecond before expiry", spec(pod, ago(30*time.Second-time.Nanosecond), thirty), Held},
		{"at expiry", spec(pod, ago(30*time.Second), thirty), Expired},
		{"one nanosecond after expiry", spec(pod, ago(30*time.Second+time.Nanosecond), thirty), Expired},
		{"renewed long ago", spec(pod, ago(time.Hour), thirty), Expired},
		{"renew time in the future (fast clock)", spec(pod, ago(-time.Minute), thirty), Held},
		{"no renew time", spec(pod, nil, thirty), Expired},
		{"no duration", spec(pod, ago(0), nil), Expired},
		{"zero duration", spec(pod, ago(0), ptr.To(int32(0))), Expired},
		{"negative duration", spec(pod, ago(0), ptr.To(int32(-5))), Expired},
		{"neither renew time nor duration", spec(pod, nil, nil), Expired},
		{"short duration, expired", spec(pod, ago(2*time.Second), ptr.To(int32(1))), Expired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.lease, t0); got != tc.want {
				t.Fatalf("Classify = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestExpiryAndHolder(t *testing.T) {
	cases := []struct {
		name       string
		lease      *coordinationv1.Lease
		wantExpiry time.Time
		wantHolder string
	}{
		{"no lease", nil, time.Time{}, ""},
		{"held", spec(ptr.To("pod-a"), ago(10*time.Second), ptr.To(int32(30))), t0.Add(20 * time.Second), "pod-a"},
		{"released keeps its expiry", spec(nil, ago(0), ptr.To(int32(15))), t0.Add(15 * time.Second), ""},
		{"no renew time", spec(ptr.To("pod-a"), nil, ptr.To(int32(30))), time.Time{}, "pod-a"},
		{"no duration", spec(ptr.To("pod-a"), ago(0), nil), time.Time{}, "pod-a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Expiry(tc.lease); !got.Equal(tc.wantExpiry) {
				t.Errorf("Expiry = %v, want %v", got, tc.wantExpiry)
			}
			if got := Holder(tc.lease); got != tc.wantHolder {
				t.Errorf("Holder = %q, want %q", got, tc.wantHolder)
			}
		})
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Free: "Free", Held: "Held", Expired: "Expired", State(7): "State(7)"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

func TestOptions(t *testing.T) {
	base := Options{Namespace: "ns", Name: "l", Identity: "me"}
	cases := []struct {
		name                         string
		mutate                       func(*Options)
		ok                           bool
		duration, interval, deadline time.Duration
	}{
		{"defaults are the protocol's", func(*Options) {}, true, protocol.LeaseDuration, protocol.LeaseRenewInterval, protocol.LeaseDuration * 2 / 3},
		{"node id defaults", func(o *Options) { o.Duration = 15 * time.Second }, true, 15 * time.Second, 5 * time.Second, 10 * time.Second},
		{"short lease for tests", func(o *Options) { o.Duration, o.RenewInterval = time.Second, 100*time.Millisecond }, true, time.Second, 100 * time.Millisecond, 666666666},
		{"no identity", func(o *Options) { o.Identity = "" }, false, 0, 0, 0},
		{"no name", func(o *Options) { o.Name = "" }, false, 0, 0, 0},
		{"no namespace", func(o *Options) { o.Namespace = "" }, false, 0, 0, 0},
		{"fractional duration", func(o *Options) { o.Duration = 1500 * time.Millisecond }, false, 0, 0, 0},
		{"negative duration", func(o *Options) { o.Duration = -time.Second }, false, 0, 0, 0},
		{"negative interval", func(o *Options) { o.RenewInterval = -time.Second }, false, 0, 0, 0},
		{"interval not below deadline", func(o *Options) {
			o.Duration, o.RenewInterval, o.RenewDeadline = 3*time.Second, 2*time.Second, 2*time.Second
		}, false, 0, 0, 0},
		{"deadline not below duration", func(o *Options) {
			o.Duration, o.RenewInterval, o.RenewDeadline = 3*time.Second, time.Second, 3*time.Second
		}, false, 0, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mutate(&o)
			got, err := o.WithDefaults()
			if (err == nil) != tc.ok {
				t.Fatalf("WithDefaults error = %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrOptions) {
					t.Fatalf("error %v does not match ErrOptions", err)
				}
				return
			}
			if got.Duration != tc.duration || got.RenewInterval != tc.interval || got.RenewDeadline != tc.deadline {
				t.Errorf("timing %s/%s/%s, want %s/%s/%s", got.Duration, got.RenewInterval, got.RenewDeadline, tc.duration, tc.interval, tc.deadline)
			}
			if got.Now == nil {
				t.Error("clock not defaulted")
			}
		})
	}
}
