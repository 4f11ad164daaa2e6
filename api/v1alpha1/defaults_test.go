package v1alpha1_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/test/testworld"
)

// TestDefaultsMatchTheSchema stores minimal objects in the real API server and compares what its
// schema defaulted with the Go constants code falls back on: a marker changed without its constant
// (or the other way round) fails here.
func TestDefaultsMatchTheSchema(t *testing.T) {
	kube := testworld.K8s(t)
	ns := kube.NewNamespace(t)
	ctx := context.Background()
	// As `kubectl apply` of a minimal YAML sends them: a Go struct would send "0s" for every
	// duration it leaves zero, which the schema keeps (code falls back on the constants then).
	minimal := map[string]string{
		"DesSource": `{"catalog": {"dsnSecretRef": {"name": "db", "key": "dsn"}, "table": "objects"},
			"store": {"credentialsSecretRef": {"name": "s3"}, "bucket": "scans"}, "marker": {}}`,
		"DesShard": `{"sourceRef": "minimal", "shards": [1], "job": {},
			"archive": {"credentialsSecretRef": {"name": "s3"}, "bucket": "archive", "prefix": "des"}}`,
	}
	src, ds := &desv1.DesSource{}, &desv1.DesShard{}
	for kind, into := range map[string]client.Object{"DesSource": src, "DesShard": ds} {
		obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": desv1.GroupVersion.String(), "kind": kind}}
		obj.SetName("minimal")
		obj.SetNamespace(ns)
		var spec map[string]any
		if err := json.Unmarshal([]byte(minimal[kind]), &spec); err != nil {
			t.Fatal(err)
		}
		obj.Object["spec"] = spec
		if err := kube.Client.Create(ctx, obj); err != nil {
			t.Fatalf("create minimal %s: %v", kind, err)
		}
		if err := kube.Client.Get(ctx, client.ObjectKeyFromObject(obj), into); err != nil {
			t.Fatal(err)
		}
	}
	s, m, n := ds.Spec, src.Spec.Marker, src.Spec.Naming
	cases := []struct {
		field     string
		got, want any
	}{
		{"interval", s.Interval.Duration, desv1.DefaultInterval},
		{"retention", s.Retention.Duration, desv1.DefaultRetention},
		{"maxContainers", s.MaxContainers, desv1.DefaultMaxContainers},
		{"shardsPerJob", s.ShardsPerJob, desv1.DefaultShardsPerJob},
		{"limits.maxBytes", s.Limits.MaxBytes, desv1.DefaultMaxBytes},
		{"limits.maxFiles", s.Limits.MaxFiles, desv1.DefaultMaxFiles},
		{"limits.maxAge", s.Limits.MaxAge.Duration, desv1.DefaultMaxAge},
		{"limits.minFiles", s.Limits.MinFiles, desv1.DefaultMinFiles},
		{"limits.minBytes", s.Limits.MinBytes, desv1.DefaultMinBytes},
		{"limits.maxWait", s.Limits.MaxWait.Duration, desv1.DefaultMaxWait},
		{"bigFileThreshold", s.BigFileThreshold, desv1.DefaultBigFileThreshold},
		{"job.activeDeadlineSeconds", s.Job.ActiveDeadlineSeconds, desv1.DefaultActiveDeadline},
		{"job.backoffLimit", s.Job.BackoffLimit, desv1.DefaultBackoffLimit},
		{"naming.prefix", n.Prefix, desv1.DefaultNamePrefix},
		{"naming.shardBits", n.ShardBits, desv1.DefaultShardBits},
		{"marker.schedule", m.Schedule, desv1.DefaultMarkerSchedule},
		{"marker.batchSize", m.BatchSize, desv1.DefaultMarkerBatchSize},
		{"marker.minAge", m.MinAge.Duration, desv1.DefaultMarkerMinAge},
		{"marker.maxRetries", m.MaxRetries, desv1.DefaultMaxRetries},
		{"store.region", src.Spec.Store.Region, desv1.DefaultRegion},
		{"deleteSource.policy", src.Spec.DeleteSource.Policy, desv1.DeleteNever},
		{"deleteSource.delay", src.Spec.DeleteSource.Delay.Duration, desv1.DefaultDeleteDelay},
		{"deleteSource.check", src.Spec.DeleteSource.Check, desv1.CheckHead},
		{"deleteSource.deletesPerSecond", src.Spec.DeleteSource.DeletesPerSecond, desv1.DefaultDeletesPerSecond},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: the schema defaults %v, the Go constant says %v", c.field, c.got, c.want)
		}
	}
}

func TestOrDefault(t *testing.T) {
	cases := []struct {
		spec                desv1.DesShardSpec
		interval, retention time.Duration
	}{
		{desv1.DesShardSpec{}, desv1.DefaultInterval, desv1.DefaultRetention},
		{desv1.DesShardSpec{Interval: metav1.Duration{Duration: -time.Second}}, desv1.DefaultInterval, desv1.DefaultRetention},
		{desv1.DesShardSpec{Interval: metav1.Duration{Duration: time.Minute}, Retention: metav1.Duration{Duration: time.Hour}}, time.Minute, time.Hour},
	}
	for i, c := range cases {
		if got := c.spec.IntervalOrDefault(); got != c.interval {
			t.Errorf("case %d: interval %v, want %v", i, got, c.interval)
		}
		if got := c.spec.RetentionOrDefault(); got != c.retention {
			t.Errorf("case %d: retention %v, want %v", i, got, c.retention)
		}
	}
}

func TestFinalPhases(t *testing.T) {
	cases := map[desv1.ContainerPhase]bool{
		"": false, desv1.PhasePending: false, desv1.PhaseWriting: false, desv1.PhaseUploaded: false,
		desv1.PhaseCommitted: true, desv1.PhaseRolledBack: true, desv1.PhaseFailed: true,
	}
	for phase, want := range cases {
		if got := phase.IsFinal(); got != want {
			t.Errorf("%q.IsFinal() = %v, want %v", phase, got, want)
		}
	}
}
