package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/test/testworld"
)

// migratedSource creates the DesSource "src" (changed by mutate, when given) on a fresh catalog
// database of driver d with the user's table migrated, and returns the database.
func (e *testEnv) migratedSource(d catalog.Driver, mutate func(*desv1.DesSource)) *testworld.CatalogDB {
	e.t.Helper()
	db := testworld.NewCatalogDB(e.t, d)
	db.CreateObjects(e.t, testworld.ObjectsTable{})
	bucket := testworld.S3Store(e.t).NewBucket(e.t)
	src := e.realSourceOn(d, "src", db.DSN, bucket)
	if mutate != nil {
		mutate(src)
	}
	e.create(src)
	if err := db.NewCatalog(e.t, catalog.DefaultMapping("objects", bucket)).Migrate(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	return db
}

// TestFillPolicyPacksOnlyShardsThatFill: a run gives Jobs only to shards whose ready rows reach
// minFiles or minBytes, or whose oldest ready row has waited maxWait; a shard below all three waits,
// its status says how full it is and when it will be packed, and a later run packs it once maxWait
// has passed. A check that finds nothing due starts no Job.
func TestFillPolicyPacksOnlyShardsThatFill(t *testing.T) {
	testworld.ForEachDialect(t, testFillPolicyPacksOnlyShardsThatFill)
}

func testFillPolicyPacksOnlyShardsThatFill(t *testing.T, d catalog.Driver) {
	e := newTestEnv(t)
	db := e.migratedSource(d, nil)
	now := e.clock.Now()
	// rows adds n ready rows to shard, built here (MySQL has no generate_series); created is given
	// in UTC, which MySQL's DATETIME holds.
	rows := func(shard, n int, size int64, created time.Time) {
		t.Helper()
		var values []string
		var args []any
		for g := 1; g <= n; g++ {
			p := len(args)
			values = append(values, fmt.Sprintf("($%d, $%d, 'ready', $%d, $%d, $%d)", p+1, p+2, p+3, p+4, p+5))
			args = append(args, fmt.Sprintf("k/%d/%d", shard, g), size, fmt.Sprintf("N_%d_%d", shard, g), shard, created.UTC())
		}
		db.Exec(t, `INSERT INTO objects (source_key, size, status, des_name, shard, created_at) VALUES `+strings.Join(values, ", "), args...)
	}
	rows(1, 5, 10, now.Add(-10*time.Minute))                                                                        // below everything: waits until created + maxWait
	rows(2, 12, 10, now)                                                                                            // minFiles reached
	rows(3, 2, 3000, now)                                                                                           // minBytes reached by two big rows
	rows(4, 1, 10, now.Add(-90*time.Minute))                                                                        // waited longer than maxWait
	db.Exec(t, `INSERT INTO objects (source_key, size, status, des_name, shard) VALUES ('k/5', 1, 'new', NULL, 5)`) // not ready

	ds := sampleShard("fill", "src", 1, 2, 3, 4, 5)
	ds.Spec.ShardsPerJob, ds.Spec.Interval = 1, metav1.Duration{Duration: 20 * time.Minute}
	ds.Spec.Limits = desv1.ContainerLimits{MinFiles: 10, MinBytes: 4096, MaxWait: metav1.Duration{Duration: time.Hour}}
	e.create(ds)
	r := e.shardReconciler()

	e.reconcile(r, "fill")
	want := map[string]string{"fill-r1-g0": "2", "fill-r1-g1": "3", "fill-r1-g2": "4"}
	if got := e.jobs("fill"); !equalMaps(got, want) {
		t.Fatalf("jobs = %v, want %v (shard 1 is below the fill policy, shard 5 has no ready row)", got, want)
	}
	e.get(ds)
	packBy := now.Add(50 * time.Minute)
	if f := ds.Status.Fill; f == nil || f.DueShards != 3 || f.WaitingShards != 1 || f.NextPackBy == nil || !f.NextPackBy.Time.Equal(packBy) || f.CheckedAt == nil {
		t.Errorf("status.fill = %+v, want 3 due, 1 waiting, next pack by %s", f, packBy)
	}
	// The pending rows of all shards, and when they were counted: this reconcile.
	if f := ds.Status.Fill; f == nil || f.PendingRows != 20 || f.PendingBytes != 6180 || f.CountedAt == nil || !f.CountedAt.Time.Equal(now) {
		t.Errorf("status.fill = %+v, want 20 pending rows of 6180 bytes counted at %s", f, now)
	}
	wantFill := map[int32]desv1.FillReason{1: desv1.FillWaiting, 2: desv1.FillMinFiles, 3: desv1.FillMinBytes, 4: desv1.FillMaxWait}
	for _, s := range ds.Status.Shards {
		if s.Fill != wantFill[s.ID] {
			t.Errorf("shard %d: fill %q, want %q", s.ID, s.Fill, wantFill[s.ID])
		}
		if s.ID == 1 && (s.PendingRows != 5 || s.PendingBytes != 50 || s.PackBy == nil || !s.PackBy.Time.Equal(packBy)) {
			t.Errorf("shard 1 status = %+v, want 5 rows, 50 bytes, pack by %s", s, packBy)
		}
		if s.ID == 5 {
			t.Errorf("shard 5 has no ready row but is listed: %+v", s)
		}
	}

	// The next check, before shard 1's maxWait: the due shards' Jobs still run, shard 1 still waits.
	e.clock.Step(20 * time.Minute) // an interval later: 30 minutes before shard 1's pack-by
	e.reconcile(r, "fill")
	e.get(ds)
	if got := e.jobs("fill"); len(got) != 3 || ds.Status.Runs != 1 {
		t.Fatalf("a check with nothing due changed the Jobs: %v (runs %d)", got, ds.Status.Runs)
	}
	if !ds.Status.Fill.CheckedAt.Time.Equal(e.clock.Now()) {
		t.Errorf("checkedAt = %v, want the check's time %v", ds.Status.Fill.CheckedAt, e.clock.Now())
	}

	// Within the interval nothing is checked; the check after shard 1's maxWait packs it.
	e.clock.Step(10 * time.Minute)
	e.reconcile(r, "fill")
	if got := e.jobs("fill"); len(got) != 3 {
		t.Fatalf("a reconcile within the interval changed the Jobs: %v", got)
	}
	e.clock.Step(30 * time.Minute)
	e.reconcile(r, "fill")
	if got := e.jobs("fill")["fill-r2-g0"]; got != "1" {
		t.Fatalf("run 2 jobs = %v, want fill-r2-g0 packing shard 1", e.jobs("fill"))
	}
}

// TestShardsWithSourcesDueGetJobs: with verified deletion on, a shard with nothing to pack gets a
// Job once one of its committed containers' delay has passed, and its status says why.
func TestShardsWithSourcesDueGetJobs(t *testing.T) {
	e := newTestEnv(t)
	db := e.migratedSource(catalog.Postgres, func(src *desv1.DesSource) {
		src.Spec.DeleteSource = desv1.DeleteSource{Policy: desv1.DeleteAfterVerify, Delay: metav1.Duration{Duration: time.Hour}}
	})
	now := e.clock.Now()
	record := func(container string, shard int, committed time.Time) {
		t.Helper()
		db.Exec(t, `INSERT INTO des_containers (key, container, bucket, source, shard, day, files, bytes, object_size,
			payload_checksum, index_checksum, writer, committed_at) VALUES ($1, $1, 'b', 'src', $2, $3::timestamptz::date, 1, 1, 1, 'x', 'y', 'w', $3::timestamptz)`,
			container, shard, committed)
	}
	record("c-old", 1, now.Add(-2*time.Hour)) // its delay has passed
	record("c-new", 2, now.Add(-time.Minute)) // not yet
	ds := sampleShard("reclaim", "src", 1, 2, 3)
	ds.Spec.ShardsPerJob = 1
	e.create(ds)

	e.reconcile(e.shardReconciler(), "reclaim")
	if got, want := e.jobs("reclaim"), map[string]string{"reclaim-r1-g0": "1"}; !equalMaps(got, want) {
		t.Fatalf("jobs = %v, want %v: only shard 1 has sources due", got, want)
	}
	e.get(ds)
	if len(ds.Status.Shards) != 1 || ds.Status.Shards[0].ID != 1 || ds.Status.Shards[0].SourcesDue != 1 {
		t.Errorf("shard status = %+v, want shard 1 with one container's sources due", ds.Status.Shards)
	}
}
