package controllers

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/test/objstoretest"
	"github.com/datavision/des/test/testworld"
)

// setSecret replaces one key of a Secret, as a person rotating a password would.
func (e *testEnv) setSecret(name, key, value string) {
	e.t.Helper()
	s := &corev1.Secret{}
	if err := e.c.Get(e.ctx, client.ObjectKey{Namespace: e.ns, Name: name}, s); err != nil {
		e.t.Fatal(err)
	}
	s.Data[key] = []byte(value)
	if err := e.c.Update(e.ctx, s); err != nil {
		e.t.Fatal(err)
	}
}

// TestConnectorCachesAndFollowsRotation: reconciles reuse one pool and one S3 client, and a changed
// Secret gives new ones, with the pool of the old DSN closed.
func TestConnectorCachesAndFollowsRotation(t *testing.T) {
	e := newTestEnv(t)
	pg := testworld.PG(t)
	_, dsn := pg.NewDatabase(t)
	_, rotated := pg.NewDatabase(t)
	src := e.realSource("src", dsn, testworld.S3Store(t).NewBucket(t))
	e.create(src)
	k := NewConnector(e.c)
	t.Cleanup(k.Close)

	pool, store := connectBoth(t, e, k, src)
	again, sameStore := connectBoth(t, e, k, src)
	if again != pool || sameStore != store {
		t.Fatal("a second reconcile built a new pool or S3 client")
	}
	e.setSecret("catalog", "dsn", rotated)
	e.setSecret("source-s3", "AWS_SECRET_ACCESS_KEY", "rotated")
	newPool, newStore := connectBoth(t, e, k, src)
	if newPool == pool || newStore == store {
		t.Fatal("a rotated Secret kept the old pool or S3 client")
	}
	if err := pool.Ping(e.ctx); err == nil {
		t.Fatal("the pool of the rotated-away DSN is still open")
	}
	if err := newPool.Ping(e.ctx); err != nil {
		t.Fatalf("the new pool does not answer: %v", err)
	}
}

func connectBoth(t *testing.T, e *testEnv, k *Connector, src *desv1.DesSource) (interface{ Ping(context.Context) error }, *objstore.Store) {
	t.Helper()
	pool, err := k.catalogPool(e.ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	store, err := k.SourceStore(e.ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	return pool, store
}

// TestConnectorFaultSeam: the tests' wrapper sits around the real client, and what it injects reaches
// the DesSource's status.
func TestConnectorFaultSeam(t *testing.T) {
	e := newTestEnv(t)
	pool, dsn := testworld.PG(t).NewDatabase(t)
	mustExec(t, pool, userTable)
	src := e.realSource("src", dsn, testworld.S3Store(t).NewBucket(t))
	src.Spec.Catalog.AllowMigration = true
	e.create(src)
	r := e.sourceReconciler()
	var faults *objstoretest.Faults
	r.wrapStore = func(api objstore.API) objstore.API {
		faults = objstoretest.Wrap(api).FailNth("ListObjectsV2", 1, errors.New("injected: bucket probe refused"))
		return faults
	}
	e.reconcile(r, "src")
	e.get(src)
	c := meta.FindStatusCondition(src.Status.Conditions, desv1.ConditionReady)
	if c == nil || c.Reason != "BucketUnreachable" || !strings.Contains(c.Message, "injected: bucket probe refused") {
		t.Fatalf("Ready = %+v, want BucketUnreachable with the injected error", c)
	}
	if faults == nil || faults.Calls("ListObjectsV2") != 1 {
		t.Fatal("the probe did not go through the wrapper")
	}
}
