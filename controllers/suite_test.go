package controllers

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/test/testworld"
)

var testScheme = testworld.Scheme()

func TestMain(m *testing.M) {
	testworld.MainWith(m, testworld.Kube|testworld.Postgres|testworld.MariaDB|testworld.S3, testworld.KubeOptions{Scheme: testScheme})
}

// testEnv is one test's namespace on the shared API server, with a fake clock for schedules.
type testEnv struct {
	t      *testing.T
	ctx    context.Context
	c      client.Client
	ns     string
	clock  *clocktesting.FakeClock
	events *events.FakeRecorder
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	kube := testworld.K8s(t)
	return &testEnv{
		t: t, ctx: context.Background(), c: kube.Client, ns: kube.NewNamespace(t),
		// Real time to start with: object stores stamp objects with it, and keys carry its day.
		clock:  clocktesting.NewFakeClock(time.Now().UTC().Truncate(time.Second)),
		events: events.NewFakeRecorder(100),
	}
}

func (e *testEnv) create(obj client.Object) {
	e.t.Helper()
	obj.SetNamespace(e.ns)
	if err := e.c.Create(e.ctx, obj); err != nil {
		e.t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

func (e *testEnv) get(obj client.Object) {
	e.t.Helper()
	if err := e.c.Get(e.ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		e.t.Fatalf("get %T %s: %v", obj, obj.GetName(), err)
	}
}

func (e *testEnv) reconcile(r interface {
	Reconcile(context.Context, ctrl.Request) (ctrl.Result, error)
}, name string) ctrl.Result {
	e.t.Helper()
	res, err := r.Reconcile(e.ctx, ctrl.Request{NamespacedName: client.ObjectKey{Namespace: e.ns, Name: name}})
	if err != nil {
		e.t.Fatalf("reconcile %s: %v", name, err)
	}
	return res
}

func (e *testEnv) secret(name string, data map[string]string) {
	e.t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data}
	e.create(s)
}

func sampleSource(name string) *desv1.DesSource {
	return &desv1.DesSource{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: desv1.DesSourceSpec{
			Catalog: desv1.Catalog{DSNSecretRef: desv1.SecretKeyRef{Name: "catalog", Key: "dsn"}, Table: "objects"},
			Store: desv1.SourceStore{
				ObjectStore: desv1.ObjectStore{Endpoint: "http://127.0.0.1:9000", CredentialsSecretRef: desv1.SecretRef{Name: "source-s3"}},
				Bucket:      "source",
			},
			Naming: desv1.Naming{ShardBits: 4},
		},
	}
}

// archiveBuckets numbers sampleShard's archive buckets: the tests share one API server, and DesShards
// with the same archive bucket and prefix and a shard in common refuse each other (OverlapsDesShard).
var archiveBuckets atomic.Int64

func sampleShard(name, source string, shards ...int32) *desv1.DesShard {
	return &desv1.DesShard{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: desv1.DesShardSpec{
			SourceRef: source,
			Shards:    shards,
			Archive: desv1.ArchiveStore{
				ObjectStore: desv1.ObjectStore{Endpoint: "http://127.0.0.1:9000", CredentialsSecretRef: desv1.SecretRef{Name: "archive-s3"}},
				Bucket:      fmt.Sprintf("archive-%d", archiveBuckets.Add(1)), Prefix: "des",
			},
			ShardsPerJob: 2,
			Interval:     metav1.Duration{Duration: time.Hour},
			// Every shard with a ready row is due: the tests' catalogs are small (desshard_fill_test.go
			// tests the fill policy).
			Limits: desv1.ContainerLimits{MinFiles: 1},
		},
	}
}

func mustExec(t *testing.T, pool interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
