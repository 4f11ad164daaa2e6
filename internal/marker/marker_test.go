package marker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/lease"
	"github.com/datavision/des/internal/marker"
	"github.com/datavision/des/internal/naming"
	"github.com/datavision/des/internal/nodeid"
	"github.com/datavision/des/test/testworld"
)

func TestMain(m *testing.M) {
	testworld.Main(m, testworld.Postgres|testworld.MariaDB|testworld.Kube)
}

// world is one test's catalog table (with an audit of every change of des_name) and namespace, in
// one of the catalog databases.
type world struct {
	db   *testworld.CatalogDB
	cat  *catalog.Catalog
	ns   string
	keys int // source keys inserted so far, to number the next ones
}

// auditTrigger records every change of des_name in name_audit, in each dialect's trigger language:
// the test must see every write of a name, also one the marker's result would not show.
var auditTrigger = map[catalog.Driver][]string{
	catalog.Postgres: {
		`CREATE FUNCTION audit_name() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
		IF NEW.des_name IS DISTINCT FROM OLD.des_name THEN
			INSERT INTO name_audit VALUES (NEW.id, OLD.des_name, NEW.des_name);
		END IF;
		RETURN NEW; END $$`,
		`CREATE TRIGGER audit_name BEFORE UPDATE ON objects FOR EACH ROW EXECUTE FUNCTION audit_name()`,
	},
	// MySQL has no IS DISTINCT FROM; NOT (a <=> b) is the NULL-safe inequality.
	catalog.MySQL: {
		`CREATE TRIGGER audit_name BEFORE UPDATE ON objects FOR EACH ROW BEGIN
		IF NOT (NEW.des_name <=> OLD.des_name) THEN
			INSERT INTO name_audit VALUES (NEW.id, OLD.des_name, NEW.des_name);
		END IF;
		END`,
	},
}

func newWorld(t testing.TB, d catalog.Driver, rows int, age time.Duration) *world {
	t.Helper()
	w := &world{db: testworld.NewCatalogDB(t, d), ns: testworld.K8s(t).NewNamespace(t)}
	w.db.CreateObjects(t, testworld.ObjectsTable{})
	w.exec(t, `CREATE TABLE name_audit (id bigint, old_name text, new_name text)`)
	for _, stmt := range auditTrigger[d] {
		w.exec(t, stmt)
	}
	w.cat = w.db.NewCatalog(t, catalog.DefaultMapping("objects", "scans"))
	if err := w.cat.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.insert(t, rows, age)
	return w
}

func (w *world) exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	w.db.Exec(t, sql, args...)
}

// count runs a query of one integer.
func (w *world) count(t testing.TB, query string) int {
	t.Helper()
	var n int
	w.db.QueryRow(t, query, nil, &n)
	return n
}

// insertChunk bounds the rows of one INSERT: MySQL takes at most 65535 placeholders in a statement.
const insertChunk = 5000

// insert adds rows created age ago, in multi-row INSERTs built here: MySQL has no generate_series.
func (w *world) insert(t testing.TB, rows int, age time.Duration) {
	t.Helper()
	created := w.db.Ago(age)
	for start := 0; start < rows; start += insertChunk {
		n := min(insertChunk, rows-start)
		values := make([]string, n)
		args := make([]any, n)
		for i := range n {
			w.keys++
			values[i] = fmt.Sprintf("($%d, %s)", i+1, created)
			args[i] = fmt.Sprintf("src/%d", w.keys)
		}
		w.exec(t, "INSERT INTO objects (source_key, created_at) VALUES "+strings.Join(values, ", "), args...)
	}
}

func (w *world) claim(t testing.TB, identity string) *nodeid.Claim {
	t.Helper()
	c, err := nodeid.Acquire(context.Background(), testworld.K8s(t).Client, nodeid.Options{
		Namespace: w.ns, Identity: identity,
		LeaseDuration: 2 * time.Second, RenewInterval: 200 * time.Millisecond, RenewDeadline: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Release(context.Background()) })
	return c
}

func (w *world) marker(t testing.TB, identity string, s marker.Settings) *marker.Marker {
	t.Helper()
	m, err := marker.New(w.cat, w.claim(t, identity), s, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func settings() marker.Settings {
	return marker.Settings{Prefix: "SCAN", ShardBits: 8, BatchSize: 250, MaxRetries: 3}
}

// TestParallelMarkersNameEachRowOnce runs two markers, each with its own node Lease, over the same rows.
func TestParallelMarkersNameEachRowOnce(t *testing.T) {
	testworld.ForEachDialect(t, testParallelMarkersNameEachRowOnce)
}

func testParallelMarkersNameEachRowOnce(t *testing.T, d catalog.Driver) {
	const rows = 5000
	w := newWorld(t, d, rows, time.Hour)
	markers := []*marker.Marker{w.marker(t, "marker-a", settings()), w.marker(t, "marker-b", settings())}
	sums := make([]marker.Summary, len(markers))
	var wg sync.WaitGroup
	for i, m := range markers {
		wg.Go(func() {
			var err error
			if sums[i], err = m.Run(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	t.Logf("marker a: %s; marker b: %s", sums[0], sums[1])
	if sums[0].Node == sums[1].Node {
		t.Fatalf("both markers hold node id %d", sums[0].Node)
	}
	if total := sums[0].Marked + sums[1].Marked; total != rows {
		t.Fatalf("markers report %d rows marked, want %d", total, rows)
	}

	var named, distinct, ready, audited, auditedRows, renamed int
	w.db.QueryRow(t, `SELECT
		(SELECT count(*) FROM objects WHERE des_name IS NOT NULL),
		(SELECT count(DISTINCT des_name) FROM objects),
		(SELECT count(*) FROM objects WHERE status = 'ready' AND shard IS NOT NULL),
		(SELECT count(*) FROM name_audit),
		(SELECT count(DISTINCT id) FROM name_audit),
		(SELECT count(*) FROM name_audit WHERE old_name IS NOT NULL)`, nil,
		&named, &distinct, &ready, &audited, &auditedRows, &renamed)
	if named != rows || distinct != rows || ready != rows || audited != rows || auditedRows != rows || renamed != 0 {
		t.Fatalf("named %d, distinct names %d, ready %d, name changes %d on %d rows, renames %d; want %d each and 0 renames",
			named, distinct, ready, audited, auditedRows, renamed, rows)
	}
	checkNames(t, w, map[uint8]bool{uint8(sums[0].Node): true, uint8(sums[1].Node): true}, 8)

	// A second run finds nothing to do and changes nothing.
	again, err := w.marker(t, "marker-c", settings()).Run(context.Background())
	if err != nil || again.Marked != 0 || again.Failed != 0 {
		t.Fatalf("second run: %s, %v", again, err)
	}
	if audited = w.count(t, `SELECT count(*) FROM name_audit`); audited != rows {
		t.Fatalf("name changes after the second run: %d, want %d", audited, rows)
	}
}

// checkNames verifies every name: valid, from one of nodes, its shard, and its day the UTC day of its time.
func checkNames(t *testing.T, w *world, nodes map[uint8]bool, shardBits int) {
	t.Helper()
	rows, err := w.db.SQL().QueryContext(context.Background(), `SELECT des_name, shard FROM objects WHERE des_name IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var shard int32
		if err := rows.Scan(&name, &shard); err != nil {
			t.Fatal(err)
		}
		n, err := naming.Parse(name)
		if err != nil || n.Prefix != "SCAN" || !nodes[n.Node] {
			t.Fatalf("name %s: %+v, %v", name, n, err)
		}
		if _, ok := n.Time(); !ok {
			t.Fatalf("name %s: its day is not the UTC day of its time bits", name)
		}
		if want, _ := naming.Shard(name, shardBits); uint32(shard) != want {
			t.Fatalf("name %s has shard %d, want %d", name, shard, want)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestRowsYoungerThanMinAgeAreLeftAlone(t *testing.T) {
	testworld.ForEachDialect(t, testRowsYoungerThanMinAgeAreLeftAlone)
}

func testRowsYoungerThanMinAgeAreLeftAlone(t *testing.T, d catalog.Driver) {
	w := newWorld(t, d, 30, 10*time.Minute)
	w.insert(t, 20, time.Minute)
	s := settings()
	s.MinAge = 5 * time.Minute
	sum, err := w.marker(t, "marker", s).Run(context.Background())
	if err != nil || sum.Marked != 30 {
		t.Fatalf("run: %s, %v; want 30 rows marked", sum, err)
	}
	if youngNamed := w.count(t, `SELECT count(*) FROM objects
		WHERE created_at > `+w.db.Ago(5*time.Minute)+` AND des_name IS NOT NULL`); youngNamed != 0 {
		t.Fatalf("%d young rows named", youngNamed)
	}
}

// TestFailingRowsAreRetriedUpToTheLimit runs the marker repeatedly over rows a check constraint refuses.
func TestFailingRowsAreRetriedUpToTheLimit(t *testing.T) {
	testworld.ForEachDialect(t, testFailingRowsAreRetriedUpToTheLimit)
}

func testFailingRowsAreRetriedUpToTheLimit(t *testing.T, d catalog.Driver) {
	w := newWorld(t, d, 100, time.Hour)
	// Every tenth row (its source key src/N ends in 0) may not be named. The check reads the key, not
	// id % 10: MariaDB refuses a CHECK on an AUTO_INCREMENT column.
	w.exec(t, `ALTER TABLE objects ADD CONSTRAINT odd_rows_only CHECK (des_name IS NULL OR source_key NOT LIKE '%0')`)
	s := settings()
	s.BatchSize, s.MaxRetries = 30, 2
	runs := []struct{ marked, failed int64 }{{90, 10}, {0, 10}, {0, 0}, {0, 0}}
	for i, want := range runs {
		sum, err := w.marker(t, fmt.Sprintf("run-%d", i), s).Run(context.Background())
		if err != nil || sum.Marked != want.marked || sum.Failed != want.failed {
			t.Fatalf("run %d: %s, %v; want %d marked and %d failed", i+1, sum, err, want.marked, want.failed)
		}
	}
	var failed, atLimit int
	// count(CASE …) rather than FILTER (WHERE …), which MySQL lacks.
	w.db.QueryRow(t, `SELECT count(*), count(CASE WHEN des_retries = 2
		AND des_error LIKE '%odd_rows_only%' AND des_name IS NULL THEN 1 END) FROM objects WHERE status = 'failed'`, nil, &failed, &atLimit)
	if failed != 10 || atLimit != 10 {
		t.Fatalf("%d failed rows, %d of them unnamed with 2 retries and the error; want 10 and 10", failed, atLimit)
	}
}

// TestLeaseLossStopsMarking steals the marker's node Lease mid-run: the run must end with ErrLost.
func TestLeaseLossStopsMarking(t *testing.T) { testworld.ForEachDialect(t, testLeaseLossStopsMarking) }

func testLeaseLossStopsMarking(t *testing.T, d catalog.Driver) {
	w := newWorld(t, d, 3000, time.Hour)
	claim := w.claim(t, "marker")
	s := settings()
	s.BatchSize, s.RowsPerSecond = 100, 1000 // a three-second run
	m, err := marker.New(w.cat, claim, s, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var sum marker.Summary
	go func() {
		var err error
		sum, err = m.Run(context.Background())
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	var l coordinationv1.Lease
	k := testworld.K8s(t).Client
	if err := k.Get(context.Background(), client.ObjectKey{Namespace: w.ns, Name: claim.LeaseName()}, &l); err != nil {
		t.Fatal(err)
	}
	l.Spec.HolderIdentity = ptr.To("thief")
	l.Spec.AcquireTime = &metav1.MicroTime{Time: time.Now()}
	if err := k.Update(context.Background(), &l); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, nodeid.ErrLost) {
			t.Fatalf("run ended with %v, want ErrLost", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("marker still running 2s after its Lease was stolen")
	}
	n, _ := w.cat.Count(context.Background())
	if sum.Marked == 0 || sum.Marked >= 3000 || n.Ready != sum.Marked {
		t.Fatalf("run marked %d rows, catalog has %d ready; want some but not all, and the same", sum.Marked, n.Ready)
	}
}

func TestRowsPerSecondLimitsTheRate(t *testing.T) {
	testworld.ForEachDialect(t, testRowsPerSecondLimitsTheRate)
}

func testRowsPerSecondLimitsTheRate(t *testing.T, d catalog.Driver) {
	w := newWorld(t, d, 300, time.Hour)
	s := settings()
	s.RowsPerSecond = 200
	start := time.Now()
	sum, err := w.marker(t, "marker", s).Run(context.Background())
	elapsed := time.Since(start)
	if err != nil || sum.Marked != 300 || sum.Batches != 2 {
		t.Fatalf("run: %s, %v; want 300 rows in two batches of at most 200", sum, err)
	}
	if elapsed < 1400*time.Millisecond || elapsed > 3*time.Second {
		t.Fatalf("300 rows at 200 rows/s took %s, want about 1.5s", elapsed)
	}
}

// TestRunSource is `manager mark` end to end: DesSource from the API, catalog from the DSN, summary and
// metrics on the output.
func TestRunSource(t *testing.T) { testworld.ForEachDialect(t, testRunSource) }

func testRunSource(t *testing.T, d catalog.Driver) {
	w := newWorld(t, d, 120, time.Hour)
	k := testworld.K8s(t).Client
	src := &desv1.DesSource{
		ObjectMeta: metav1.ObjectMeta{Name: "scans", Namespace: w.ns},
		Spec: desv1.DesSourceSpec{
			Catalog: desv1.Catalog{Driver: string(d), DSNSecretRef: desv1.SecretKeyRef{Name: "catalog", Key: "dsn"}, Table: "objects"},
			Store: desv1.SourceStore{Bucket: "scans",
				ObjectStore: desv1.ObjectStore{CredentialsSecretRef: desv1.SecretRef{Name: "s3"}}},
			Naming: desv1.Naming{Prefix: "SCAN", ShardBits: 8},
		},
	}
	if err := k.Create(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	opts := marker.Options{Namespace: w.ns, Source: "scans", DSN: w.db.DSN, Log: testLogger(t),
		Lease: nodeid.Options{Identity: "mark-pod", LeaseDuration: 2 * time.Second}}
	if _, err := marker.RunSource(context.Background(), k, opts); !errors.Is(err, marker.ErrNoMarker) {
		t.Fatalf("run without spec.marker: %v, want ErrNoMarker", err)
	}

	src.Spec.Marker = &desv1.Marker{BatchSize: 50, MaxRetries: 1}
	if err := k.Update(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	opts.Out = &out
	sum, err := marker.RunSource(context.Background(), k, opts)
	if err != nil || sum.Marked != 120 || sum.Batches != 3 {
		t.Fatalf("run: %s, %v; want 120 rows in 3 batches", sum, err)
	}
	for _, want := range []string{
		"DesSource " + w.ns + "/scans: marked 120 rows, 0 failed, in 3 batches",
		`des_marker_rows_marked_total{dessource="scans",namespace="` + w.ns + `"} 120`,
		`des_marker_batch_duration_seconds_count{dessource="scans",namespace="` + w.ns + `"} 3`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	var l coordinationv1.Lease
	if err := k.Get(context.Background(), client.ObjectKey{Namespace: w.ns, Name: nodeid.LeaseName(sum.Node)}, &l); err != nil ||
		lease.Classify(&l, time.Now()) != lease.Free {
		t.Fatalf("node Lease after the run: %v (%v), want released", lease.Holder(&l), err)
	}
	checkNames(t, w, map[uint8]bool{uint8(sum.Node): true}, 8)
}

func TestSettingsFor(t *testing.T) {
	cases := []struct {
		name string
		spec desv1.DesSourceSpec
		want marker.Settings
	}{
		{"no marker: defaults", desv1.DesSourceSpec{},
			marker.Settings{Prefix: "DES", ShardBits: 12, BatchSize: 1000, MinAge: 5 * time.Minute, MaxRetries: 5,
				RetryBackoff: marker.DefaultRetryBackoff, MaxRetryBackoff: marker.DefaultMaxRetryBackoff}},
		{"spec values", desv1.DesSourceSpec{
			Naming: desv1.Naming{Prefix: "SCAN", ShardBits: 8},
			Marker: &desv1.Marker{BatchSize: 10, MinAge: metav1.Duration{Duration: time.Minute}, RowsPerSecond: 7, MaxRetries: 0},
		}, marker.Settings{Prefix: "SCAN", ShardBits: 8, BatchSize: 10, MinAge: time.Minute, RowsPerSecond: 7,
			RetryBackoff: marker.DefaultRetryBackoff, MaxRetryBackoff: marker.DefaultMaxRetryBackoff}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := marker.SettingsFor(&desv1.DesSource{Spec: tc.spec})
			if got != tc.want {
				t.Fatalf("SettingsFor = %+v, want %+v", got, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, bad := range []marker.Settings{
		{Prefix: "A", ShardBits: 0, BatchSize: 1}, {Prefix: "A", ShardBits: 17, BatchSize: 1},
		{Prefix: "A", ShardBits: 8, BatchSize: 0}, {Prefix: "A/B", ShardBits: 8, BatchSize: 1},
		{Prefix: "A", ShardBits: 8, BatchSize: 1, RowsPerSecond: -1},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("settings %+v accepted", bad)
		}
	}
}

// BenchmarkMarker measures rows/s of one marker with batches of 1000 (the spec's default), on each
// catalog database.
func BenchmarkMarker(b *testing.B) {
	for _, d := range testworld.Dialects {
		b.Run(string(d), func(b *testing.B) {
			w := newWorld(b, d, b.N, time.Hour)
			s := settings()
			s.BatchSize = 1000
			m := w.marker(b, "bench", s)
			b.ResetTimer()
			sum, err := m.Run(context.Background())
			b.StopTimer()
			if err != nil || sum.Marked != int64(b.N) {
				b.Fatalf("run: %s, %v", sum, err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func testLogger(t testing.TB) logr.Logger {
	t.Helper()
	return testr.NewWithInterface(t, testr.Options{})
}

// TestRowsFailedInPackingAreRetriedByLaterRuns is issue 12's reproduction: a row the packer failed once
// (a 503 from the source store) is ready again after the next run, keeps its name, and stays failed only
// once it has failed maxRetries times.
func TestRowsFailedInPackingAreRetriedByLaterRuns(t *testing.T) {
	testworld.ForEachDialect(t, testRowsFailedInPackingAreRetriedByLaterRuns)
}

func testRowsFailedInPackingAreRetriedByLaterRuns(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	w := newWorld(t, d, 1, time.Hour)
	s := settings()
	s.MaxRetries = 3
	if sum, err := w.marker(t, "run-0", s).Run(ctx); err != nil || sum.Marked != 1 {
		t.Fatalf("first run: %s, %v", sum, err)
	}
	var name string
	for attempt := 1; attempt <= s.MaxRetries; attempt++ {
		var shard int32
		if err := w.db.Row(`SELECT shard, des_name FROM objects`).Scan(&shard, &name); err != nil {
			t.Fatal(err)
		}
		claimed, err := w.cat.Claim(ctx, int(shard), fmt.Sprintf("ds-c%d", attempt), 1)
		if err != nil || len(claimed) != 1 {
			t.Fatalf("attempt %d: claimed %d rows (%v); the row is not ready", attempt, len(claimed), err)
		}
		if ok, err := w.cat.MarkFailed(ctx, fmt.Sprintf("ds-c%d", attempt), claimed[0].ID, "source object is unreadable: 503 SlowDown"); err != nil || !ok {
			t.Fatalf("mark failed: %v", err)
		}
		sum, err := w.marker(t, fmt.Sprintf("run-%d", attempt), s).Run(ctx)
		want := int64(1)
		if attempt == s.MaxRetries {
			want = 0
		}
		if err != nil || sum.Retried != want {
			t.Fatalf("run after failure %d: %s, %v; want %d failed rows ready again", attempt, sum, err, want)
		}
	}
	var status, gotName string
	var retries int
	if err := w.db.Row(`SELECT status, des_name, des_retries FROM objects`).Scan(&status, &gotName, &retries); err != nil {
		t.Fatal(err)
	}
	if status != "failed" || gotName != name || retries != s.MaxRetries {
		t.Fatalf("row after %d failures: %s, name %q (was %q), %d retries", s.MaxRetries, status, gotName, name, retries)
	}
}
