package nodeid

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/datavision/des/internal/naming"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func nodeLease(holder string, renew *time.Time, seconds *int32, annotations map[string]string) *coordinationv1.Lease {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: LeaseName(3), Annotations: annotations}}
	if holder != "" {
		l.Spec.HolderIdentity = ptr.To(holder)
	}
	if renew != nil {
		l.Spec.RenewTime = &metav1.MicroTime{Time: *renew}
	}
	l.Spec.LeaseDurationSeconds = seconds
	return l
}

func TestStartAfter(t *testing.T) {
	const d = 15 * time.Second
	cases := []struct {
		name  string
		lease *coordinationv1.Lease
		want  int64
	}{
		{"new lease starts a duration ahead of the clock", nil, t0.Add(d).UnixMilli()},
		{"watermark of the previous holder", nodeLease("pod-a", nil, nil, map[string]string{AnnotationUsedUntil: "1772366400123"}), 1772366400123},
		{"watermark far ahead of our clock is still honoured", nodeLease("", nil, nil, map[string]string{AnnotationUsedUntil: "1900000000000"}), 1900000000000},
		{"unparseable watermark is treated as none", nodeLease("pod-a", nil, nil, map[string]string{AnnotationUsedUntil: "soon"}), t0.Add(d).UnixMilli()},
		{"lease without annotations", nodeLease("pod-a", nil, nil, nil), t0.Add(d).UnixMilli()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := startAfter(tc.lease, t0, d); got != tc.want {
				t.Fatalf("startAfter = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestUnixMilliRecoversFullTime(t *testing.T) {
	for _, off := range []time.Duration{0, time.Millisecond, -time.Millisecond, time.Minute, -time.Hour, 20 * 24 * time.Hour, -20 * 24 * time.Hour} {
		at := t0.Add(off)
		n := naming.Name{TimeBits: uint32(at.UnixMilli())}
		if got := UnixMilli(n, t0); got != at.UnixMilli() {
			t.Errorf("offset %s: UnixMilli = %d, want %d", off, got, at.UnixMilli())
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	base := Options{Namespace: "ns", Identity: "pod"}
	cases := []struct {
		name   string
		mutate func(*Options)
		ok     bool
	}{
		{"defaults", func(*Options) {}, true},
		{"no namespace", func(o *Options) { o.Namespace = "" }, false},
		{"no identity", func(o *Options) { o.Identity = "" }, false},
		{"fractional duration", func(o *Options) { o.LeaseDuration = 1500 * time.Millisecond }, false},
		{"deadline not below duration", func(o *Options) { o.LeaseDuration = 2 * time.Second; o.RenewDeadline = 2 * time.Second }, false},
		{"interval not below deadline", func(o *Options) { o.RenewInterval = 10 * time.Second }, false},
		{"candidate out of range", func(o *Options) { o.Candidates = []int{256} }, false},
		{"short lease for tests", func(o *Options) { o.LeaseDuration = time.Second; o.RenewInterval = 100 * time.Millisecond }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mutate(&o)
			got, err := o.withDefaults()
			if (err == nil) != tc.ok {
				t.Fatalf("withDefaults error = %v, want ok=%v", err, tc.ok)
			}
			if err == nil && len(got.Candidates) == 0 {
				t.Fatal("no candidates")
			}
		})
	}
	o, _ := base.withDefaults()
	seen := map[int]bool{}
	for _, n := range o.Candidates {
		seen[n] = true
	}
	if len(o.Candidates) != NodeCount || len(seen) != NodeCount {
		t.Fatalf("default candidates: %d ids, %d distinct; want every node id once", len(o.Candidates), len(seen))
	}
}
