package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/resolve"
	"github.com/datavision/des/test/testworld"
)

func (e *testEnv) sourceReconciler() *DesSourceReconciler {
	connector := NewConnector(e.c)
	e.t.Cleanup(connector.Close)
	return &DesSourceReconciler{Client: e.c, Scheme: testScheme, Jobs: JobDefaults{Image: "des:test", ServiceAccountName: "des-packer", TTLSecondsAfterFinished: 60}, Connector: connector, Recorder: e.events, Clock: e.clock}
}

// realSource makes a DesSource pointing at the test world's PostgreSQL and S3 server, with its Secrets.
func (e *testEnv) realSource(name, dsn, bucket string) *desv1.DesSource {
	s3 := testworld.S3Store(e.t)
	e.secret("catalog", map[string]string{"dsn": dsn})
	e.secret("source-s3", map[string]string{"AWS_ACCESS_KEY_ID": s3.AccessKey, "AWS_SECRET_ACCESS_KEY": s3.SecretKey})
	src := sampleSource(name)
	src.Spec.Store.Endpoint = s3.Endpoint
	src.Spec.Store.Region = s3.Region
	src.Spec.Store.PathStyle = true
	src.Spec.Store.Bucket = bucket
	return src
}

// realSourceOn is realSource for a catalog database of driver d: the DesSource names its driver.
func (e *testEnv) realSourceOn(d catalog.Driver, name, dsn, bucket string) *desv1.DesSource {
	src := e.realSource(name, dsn, bucket)
	src.Spec.Catalog.Driver = string(d)
	return src
}

const userTable = `CREATE TABLE objects (id bigserial PRIMARY KEY, source_key text NOT NULL, size bigint NOT NULL,
	status text, des_name text, shard integer, created_at timestamptz NOT NULL DEFAULT now())`

func TestSourceReadyExplainsWhatIsWrong(t *testing.T) {
	pg := testworld.PG(t)
	cases := []struct {
		name          string
		setup         func(e *testEnv) *desv1.DesSource
		reason, inMsg string
	}{
		{"missing DSN secret", func(*testEnv) *desv1.DesSource {
			return sampleSource("src")
		}, "SecretNotFound", `Secret "catalog" does not exist`},
		{"wrong DSN", func(e *testEnv) *desv1.DesSource {
			return e.realSource("src", fmt.Sprintf("postgres://des:s3cret@127.0.0.1:%d/nosuchdb?sslmode=disable", pg.Port), "bucket")
		}, "DatabaseUnreachable", "cannot reach the catalog database"},
		{"a password the server echoes back", func(e *testEnv) *desv1.DesSource {
			// Trust authentication ignores passwords, so the password is the role too: the server's
			// "role does not exist" quotes it, and the status must not.
			return e.realSource("src", fmt.Sprintf("host=127.0.0.1 port=%d user=s3cret password=s3cret dbname=postgres sslmode=disable", pg.Port), "bucket")
		}, "DatabaseUnreachable", "role"},
		{"DSN Secret without the key", func(e *testEnv) *desv1.DesSource {
			e.secret("catalog", map[string]string{"other": "x"})
			return sampleSource("src")
		}, "SecretKeyNotFound", `Secret "catalog" has no key "dsn"`},
		{"missing table", func(e *testEnv) *desv1.DesSource {
			_, dsn := pg.NewDatabase(e.t)
			return e.realSource("src", dsn, testworld.S3Store(e.t).NewBucket(e.t))
		}, "TableNotFound", "catalog table does not exist: objects"},
		{"missing column", func(e *testEnv) *desv1.DesSource {
			pool, dsn := pg.NewDatabase(e.t)
			mustExec(e.t, pool, strings.Replace(userTable, "size bigint NOT NULL,", "", 1))
			src := e.realSource("src", dsn, testworld.S3Store(e.t).NewBucket(e.t))
			src.Spec.Catalog.AllowMigration = true
			return src
		}, "ColumnNotFound", "size (columns.size)"},
		{"DES columns missing and migration not allowed", func(e *testEnv) *desv1.DesSource {
			pool, dsn := pg.NewDatabase(e.t)
			mustExec(e.t, pool, userTable)
			return e.realSource("src", dsn, testworld.S3Store(e.t).NewBucket(e.t))
		}, "ColumnNotFound", "des_container (DES-owned: run `manager migrate` or set catalog.allowMigration)"},
		{"a source filter on a column DES owns", func(e *testEnv) *desv1.DesSource {
			src := e.realSource("src", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.Port), "bucket")
			src.Spec.Catalog.Where = "size < 100 AND status = 'x'"
			return src
		}, "InvalidMapping", `at 16: "status" is not a column the filter may use (id, source_key, size, created_at)`},
		{"source store Secret without the access-key entries", func(e *testEnv) *desv1.DesSource {
			pool, dsn := pg.NewDatabase(e.t)
			mustExec(e.t, pool, userTable)
			src := e.realSource("src", dsn, testworld.S3Store(e.t).NewBucket(e.t))
			src.Spec.Catalog.AllowMigration = true
			e.secret("source-no-keys", map[string]string{"endpoint": "http://s3.example"})
			src.Spec.Store.CredentialsSecretRef.Name = "source-no-keys"
			return src
		}, "SecretKeyNotFound", `Secret "source-no-keys" has no keys "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"`},
		{"missing bucket", func(e *testEnv) *desv1.DesSource {
			pool, dsn := pg.NewDatabase(e.t)
			mustExec(e.t, pool, userTable)
			src := e.realSource("src", dsn, "no-such-bucket")
			src.Spec.Catalog.AllowMigration = true
			return src
		}, "BucketUnreachable", `bucket "no-such-bucket"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkNotReady(t, tc.setup, tc.reason, tc.inMsg) })
	}
}

// checkNotReady reconciles the DesSource setup makes (named src) and checks that it is Ready=False
// with reason and a message holding inMsg and never the tests' password s3cret.
func checkNotReady(t *testing.T, setup func(e *testEnv) *desv1.DesSource, reason, inMsg string) {
	t.Helper()
	e := newTestEnv(t)
	src := setup(e)
	e.create(src)
	e.reconcile(e.sourceReconciler(), "src")
	e.get(src)
	c := meta.FindStatusCondition(src.Status.Conditions, desv1.ConditionReady)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != reason || !strings.Contains(c.Message, inMsg) {
		t.Fatalf("Ready = %+v\nwant reason %s with %q", c, reason, inMsg)
	}
	if strings.Contains(c.Message, "s3cret") {
		t.Fatalf("the message reveals the password: %s", c.Message)
	}
}

// TestSourceReadyMigratesAndCounts: a catalog that allows migration gains DES's columns, becomes
// Ready and has its rows counted, on either database.
func TestSourceReadyMigratesAndCounts(t *testing.T) {
	testworld.ForEachDialect(t, testSourceReadyMigratesAndCounts)
}

func testSourceReadyMigratesAndCounts(t *testing.T, d catalog.Driver) {
	e := newTestEnv(t)
	db := testworld.NewCatalogDB(t, d)
	db.CreateObjects(t, testworld.ObjectsTable{})
	db.InsertObjects(t, "", []testworld.ObjectRow{
		{Key: "a", Size: 1, NullStatus: true},
		{Key: "b", Size: 2, Status: "ready", Name: "N_b", Shard: testworld.Shard(1)},
		{Key: "c", Size: 3, Status: "ready", Name: "N_c", Shard: testworld.Shard(2)},
		{Key: "d", Size: 4, Status: "ready", Name: "N_d", Shard: testworld.Shard(3)},
	})
	src := e.realSource("src", db.DSN, testworld.S3Store(t).NewBucket(t))
	src.Spec.Catalog.Driver = string(d)
	src.Spec.Catalog.AllowMigration = true
	e.create(src)

	e.reconcile(e.sourceReconciler(), "src") // migrates
	// A packer packs d: the status counts it from its container's record.
	commitRows(t, db.NewCatalog(t, resolve.Mapping(src)), "src", 3, "c1")
	e.reconcile(e.sourceReconciler(), "src")
	e.get(src)
	c := meta.FindStatusCondition(src.Status.Conditions, desv1.ConditionReady)
	if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != src.Generation {
		t.Fatalf("Ready = %+v", c)
	}
	want := desv1.RowCounts{Unnamed: 1, Ready: 2, Packed: 1, CountedAt: &metav1.Time{Time: e.clock.Now()}}
	if rows := src.Status.Rows; rows == nil || rows.CountedAt == nil || !rows.CountedAt.Equal(want.CountedAt) {
		t.Fatalf("rows = %+v, want them counted at %s", rows, want.CountedAt)
	}
	src.Status.Rows.CountedAt = want.CountedAt // compared above; the pointers differ
	if src.Status.Rows == nil || *src.Status.Rows != want || src.Status.CommittedContainers != 1 {
		t.Fatalf("rows = %+v in %d containers, want %+v in 1", src.Status.Rows, src.Status.CommittedContainers, want)
	}
	var n int
	db.QueryRow(t, `SELECT count(*) FROM objects WHERE des_retries = 0`, nil, &n)
	if n != 4 {
		t.Fatalf("migration did not add des_retries: %d rows", n)
	}
}

func TestMarkerCronJobFollowsSpec(t *testing.T) {
	e := newTestEnv(t)
	src := sampleSource("src")
	src.Spec.Marker = &desv1.Marker{Schedule: "*/10 * * * *", BatchSize: 500}
	e.create(src)
	r := e.sourceReconciler()
	e.reconcile(r, "src")
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "src-marker"}}
	e.get(cj)
	c := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
	if cj.Spec.Schedule != "*/10 * * * *" || cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent ||
		strings.Join(c.Args, " ") != "mark --dessource=src" || len(cj.OwnerReferences) != 1 {
		t.Fatalf("marker CronJob: schedule %q policy %s args %v owners %v", cj.Spec.Schedule, cj.Spec.ConcurrencyPolicy, c.Args, cj.OwnerReferences)
	}
	if !hasSecretVolume(cj.Spec.JobTemplate.Spec.Template.Spec, "catalog") {
		t.Fatal("the marker does not get the catalog DSN Secret")
	}

	e.get(src)
	src.Spec.Marker.Schedule = "0 * * * *"
	if err := e.c.Update(e.ctx, src); err != nil {
		t.Fatal(err)
	}
	e.reconcile(r, "src")
	e.get(cj)
	if cj.Spec.Schedule != "0 * * * *" {
		t.Fatalf("schedule not updated: %q", cj.Spec.Schedule)
	}

	e.get(src)
	src.Spec.Marker = nil
	if err := e.c.Update(e.ctx, src); err != nil {
		t.Fatal(err)
	}
	e.reconcile(r, "src")
	if err := e.c.Get(e.ctx, client.ObjectKeyFromObject(cj), cj); !apierrors.IsNotFound(err) {
		t.Fatalf("marker CronJob kept after spec.marker was removed: %v", err)
	}
}

// TestSourceStatusCountsDeletedSources: with spec.deleteSource AfterVerify, the status counts the
// source objects deleted, waiting and refused, and refused ones make the source Degraded
// (SourcesKept, with an example reason and a Warning event): a person must look at them.
func TestSourceStatusCountsDeletedSources(t *testing.T) {
	e := newTestEnv(t)
	db := testworld.NewCatalogDB(t, catalog.Postgres)
	db.Exec(t, userTable)
	src := e.realSource("src", db.DSN, testworld.S3Store(t).NewBucket(t))
	src.Spec.Catalog.AllowMigration = true
	src.Spec.DeleteSource = desv1.DeleteSource{Policy: desv1.DeleteAfterVerify}
	e.create(src)
	r := e.sourceReconciler()
	e.reconcile(r, "src") // migrates
	db.Exec(t, `INSERT INTO objects (source_key, size, status, des_name, shard) VALUES
		('a', 1, 'ready', 'N_a', 1), ('b', 1, 'ready', 'N_b', 1), ('c', 1, 'ready', 'N_c', 1), ('d', 1, 'ready', 'N_d', 1)`)
	// A packer packs the four rows; the reclaim Job deletes a's and b's sources and refuses d's.
	cat := db.NewCatalog(t, resolve.Mapping(src))
	ids := commitRows(t, cat, "src", 1, "c1")
	if err := cat.RecordReclaimed(e.ctx, "c1", ids[:2], nil); err != nil {
		t.Fatal(err)
	}
	if err := cat.RefuseReclaim(e.ctx, "c1", map[int64]string{ids[3]: "source object changed since it was packed"}); err != nil {
		t.Fatal(err)
	}

	e.reconcile(r, "src")
	e.get(src)
	want := desv1.SourceCounts{Deleted: 2, Waiting: 1, Refused: 1}
	if src.Status.Sources == nil || *src.Status.Sources != want {
		t.Fatalf("status.sources = %+v, want %+v", src.Status.Sources, want)
	}
	c := meta.FindStatusCondition(src.Status.Conditions, desv1.ConditionDegraded)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != string(desv1.ReasonSourcesKept) || !strings.Contains(c.Message, "changed since it was packed") {
		t.Fatalf("Degraded = %+v, want SourcesKept naming the reason", c)
	}
	found := false
	for len(e.events.Events) > 0 {
		if ev := <-e.events.Events; strings.Contains(ev, "Warning") && strings.Contains(ev, string(desv1.ReasonSourcesKept)) {
			found = true
		}
	}
	if !found {
		t.Error("no Warning event for the kept sources")
	}

	// Once the refusal is cleared (a person looked), the source is no longer Degraded.
	db.Exec(t, `UPDATE objects SET des_source_refused = NULL`)
	e.reconcile(r, "src")
	e.get(src)
	if c := meta.FindStatusCondition(src.Status.Conditions, desv1.ConditionDegraded); c == nil || c.Status != metav1.ConditionFalse {
		t.Fatalf("Degraded after the refusal was cleared = %+v", c)
	}
}

// commitRows claims the ready rows of shard for container and commits them as a packer would, and
// returns their ids in claim order.
func commitRows(t *testing.T, cat *catalog.Catalog, source string, shard int, container string) []int64 {
	t.Helper()
	ctx := context.Background()
	rows, err := cat.Claim(ctx, shard, container, 100)
	if err != nil || len(rows) == 0 {
		t.Fatalf("claim shard %d: %d rows, %v", shard, len(rows), err)
	}
	rec := catalog.Record{Key: "des/2026-12-03/0001/" + container + ".des", Container: container, Bucket: "archive",
		Source: source, Shard: shard, Day: time.Now().UTC(), Files: int64(len(rows)), ObjectSize: 1,
		PayloadChecksum: "p", IndexChecksum: "i", Writer: "packer-pod-1"}
	ids := make([]int64, len(rows))
	off := int64(desformat.HeaderSize)
	for i, row := range rows {
		ids[i] = row.ID
		rec.Placements = append(rec.Placements, catalog.Placement{ID: row.ID, SourceETag: "e",
			Location: desformat.Location{Name: row.Name, Offset: off, Size: row.Size}})
		off += row.Size
		rec.Bytes += row.Size
	}
	if err := cat.Commit(ctx, rec); err != nil {
		t.Fatal(err)
	}
	return ids
}
