package packer_test

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/packer"
	"github.com/datavision/des/test/objstoretest"
	"github.com/datavision/des/test/testworld"
)

// Sizes around a 128 KiB big-file threshold: empty, tiny, just below and at the threshold, above.
// 100 rows of them make a container of about 5.5 MB, more than one 5 MiB part.
var mixedSizes = []int64{0, 1, 4096, 131071, 131072, 300000, 100000, 120000, 90000, 110000}

const threshold = 128 << 10

// smallParts makes containers above 5 MiB multipart uploads.
var smallParts = packer.Tuning{PartSize: 5 << 20, Window: 16}

func TestRoundTrip(t *testing.T) { testworld.ForEachDialect(t, testRoundTrip) }

func testRoundTrip(t *testing.T, d catalog.Driver) {
	w := newWorld(t, worldOptions{driver: d, shards: []int32{3, 7}, threshold: threshold, limits: desv1.ContainerLimits{MaxFiles: 100}})
	w.countClaims()
	w.addRows(3, mixedSizes, 300, nil)
	w.addRows(7, []int64{0, 10, 2000}, 30, nil)

	if err := w.packer("pod-a", nil, smallParts).Run(w.ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := w.check(nil); got != 4 {
		t.Errorf("%d committed containers, want 3 for shard 3 (maxFiles 100) and 1 for shard 7", got)
	}
	if n := len(w.containers()); n != 4 {
		t.Errorf("%d DesContainers, want 4: the empty ones are deleted", n)
	}
	w.checkClaimedOnce()

	// Nothing left: a second run creates nothing that stays.
	if err := w.packer("pod-b", nil, smallParts).Run(w.ctx); err != nil {
		t.Fatalf("second Run: %v", err)
	}
	if n := len(w.containers()); n != 4 {
		t.Errorf("%d DesContainers after an idle run, want 4", n)
	}
}

func TestRollOverAtMaxBytes(t *testing.T) { testworld.ForEachDialect(t, testRollOverAtMaxBytes) }

func testRollOverAtMaxBytes(t *testing.T, d catalog.Driver) {
	w := newWorld(t, worldOptions{driver: d, shards: []int32{1}, threshold: threshold, limits: desv1.ContainerLimits{MaxBytes: 1 << 20}})
	w.addRows(1, []int64{50000}, 100, nil) // 5 MB in rows of 50 kB
	if err := w.packer("pod-a", nil, packer.Tuning{}).Run(w.ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := w.check(nil)
	for _, c := range w.containers() {
		if c.Status.Bytes > 1<<20+50000 {
			t.Errorf("container %s holds %d bytes: more than one row beyond maxBytes", c.Name, c.Status.Bytes)
		}
	}
	if got < 5 || got > 6 {
		t.Errorf("%d containers for 5 MB at maxBytes 1 MiB, want 5 or 6", got)
	}
}

func TestMissingSourceObjectFailsOnlyItsRow(t *testing.T) {
	testworld.ForEachDialect(t, testMissingSourceObjectFailsOnlyItsRow)
}

func testMissingSourceObjectFailsOnlyItsRow(t *testing.T, d catalog.Driver) {
	w := newWorld(t, worldOptions{driver: d, shards: []int32{2}, threshold: threshold})
	missing := map[int]bool{3: true, 4: true, 5: true, 17: true, 40: true} // 4 and 5 are big payloads
	names := w.addRows(2, mixedSizes, 50, func(i int) bool { return missing[i] })
	failed := map[string]bool{}
	for i := range missing {
		failed[names[i]] = true
	}
	if err := w.packer("pod-a", nil, packer.Tuning{}).Run(w.ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := w.check(failed); got != 1 {
		t.Errorf("%d committed containers, want 1", got)
	}
	var text string
	w.db.QueryRow(t, `SELECT des_error FROM objects WHERE des_name = $1`, []any{names[3]}, &text)
	t.Logf("error of a missing row: %s", text)
	if !strings.Contains(text, "missing") || !strings.Contains(text, names[3]) {
		t.Errorf("error text %q does not say the object is missing", text)
	}
}

// An S3 failure while a container is written rolls it back completely; the next run packs everything.
func TestS3FailuresRollBackTheContainer(t *testing.T) {
	testworld.ForEachDialect(t, testS3FailuresRollBackTheContainer)
}

func testS3FailuresRollBackTheContainer(t *testing.T, d catalog.Driver) {
	injected := &smithy.GenericAPIError{Code: "InternalError", Message: "injected"}
	for _, tc := range []struct {
		op  string
		nth int
	}{
		{"CreateMultipartUpload", 1},
		{"UploadPart", 2},
		{"CompleteMultipartUpload", 1},
		{"PutObject", 3}, // a big payload
	} {
		t.Run(fmt.Sprintf("%s#%d", tc.op, tc.nth), func(t *testing.T) {
			w := newWorld(t, worldOptions{driver: d, shards: []int32{4}, threshold: threshold})
			w.addRows(4, mixedSizes, 120, nil)
			faults := objstoretest.Wrap(w.store.API()).FailNth(tc.op, tc.nth, injected)
			err := w.packer("pod-a", faults, smallParts).Run(w.ctx)
			if err == nil {
				t.Fatalf("Run succeeded despite a failing %s", tc.op)
			}
			t.Logf("first run: %v", err)
			cs := w.containers()
			if len(cs) != 1 || cs[0].Status.Phase != desv1.PhaseRolledBack || cs[0].Status.Reason == "" {
				t.Fatalf("containers after the failure: %+v, want one RolledBack with a reason", phases(cs))
			}
			if n := w.counts(); n.Ready != 120 || n.Claimed != 0 {
				t.Fatalf("rows after the failure: %+v, want all 120 ready", n)
			}
			removeFinalizer(t, w, &cs[0]) // what the controller does for a final phase
			if err := w.packer("pod-b", nil, smallParts).Run(w.ctx); err != nil {
				t.Fatalf("second Run: %v", err)
			}
			w.check(nil)
		})
	}
}

// A source object that cannot be read (not just missing) fails only its row.
// One fetcher makes the calls of one object's tries consecutive: calls 5 to 7 are the fifth object's
// three tries.
func TestUnreadableSourceObject(t *testing.T) {
	testworld.ForEachDialect(t, testUnreadableSourceObject)
}

func testUnreadableSourceObject(t *testing.T, d catalog.Driver) {
	w := newWorld(t, worldOptions{driver: d, shards: []int32{4}, threshold: threshold})
	w.addRows(4, []int64{1000}, 20, nil)
	reset := errors.New("injected: connection reset")
	faults := objstoretest.Wrap(w.store.API()).FailNth("GetObject", 5, reset).FailNth("GetObject", 6, reset).FailNth("GetObject", 7, reset)
	if err := w.packer("pod-a", faults, packer.Tuning{Window: 1}).Run(w.ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var name, text string
	w.db.QueryRow(t, `SELECT des_name, des_error FROM objects WHERE status = 'failed'`, nil, &name, &text)
	if !strings.Contains(text, "unreadable") || !strings.Contains(text, "injected") {
		t.Errorf("error text %q does not say the object is unreadable", text)
	}
	w.check(map[string]bool{name: true})
}

// TestTransientSourceErrorsAreRetried: a source read that fails once or twice for a cause that passes
// (a reset, a 503 SlowDown) is tried again by the packer, and the row is packed, not failed.
func TestTransientSourceErrorsAreRetried(t *testing.T) {
	testworld.ForEachDialect(t, testTransientSourceErrorsAreRetried)
}

func testTransientSourceErrorsAreRetried(t *testing.T, d catalog.Driver) {
	w := newWorld(t, worldOptions{driver: d, shards: []int32{4}, threshold: threshold})
	w.addRows(4, []int64{1000, 200000}, 20, nil) // small objects are fetched ahead, big ones streamed
	faults := objstoretest.Wrap(w.store.API()).
		FailNth("GetObject", 3, &smithy.GenericAPIError{Code: "SlowDown", Message: "injected"}).
		FailNth("GetObject", 4, errors.New("injected: connection reset")).
		FailNth("GetObject", 12, errors.New("injected: connection reset"))
	if err := w.packer("pod-a", faults, packer.Tuning{Window: 1}).Run(w.ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := w.counts(); n.Failed != 0 || n.Packed != 20 {
		t.Fatalf("rows after transient failures: %+v, want all 20 packed", n)
	}
	w.check(nil)
}

// Terminating every database connection mid-run (what a restart looks like to the packer): whatever
// the packer was doing is finished or rolled back, and the next runs pack everything exactly once.
func TestDatabaseConnectionsLostMidRun(t *testing.T) {
	testworld.ForEachDialect(t, testDatabaseConnectionsLostMidRun)
}

func testDatabaseConnectionsLostMidRun(t *testing.T, d catalog.Driver) {
	w := newWorld(t, worldOptions{driver: d, shards: []int32{6}, threshold: threshold, limits: desv1.ContainerLimits{MaxFiles: 50}})
	w.countClaims()
	w.addRows(6, []int64{2000, 40000}, 1000, nil)
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = w.packer("pod-a", nil, packer.Tuning{Window: 4}).Run(w.ctx) })
	waitFor(t, func() bool { return w.counts().Packed >= 100 })
	w.terminateConnections()
	wg.Wait()
	t.Logf("run interrupted by the terminated connections: %v", runErr)
	drainAndCheck(t, w)
}

// drainAndCheck ends a faulted run as the controller and the next runs would: recover what the
// fault left open, pack what it returned to ready (a few runs at most), then check exactly-once.
// terminateConnections ends every connection to the world's database but the one asking, as the
// server does to its clients when it restarts.
func (w *world) terminateConnections() {
	w.t.Helper()
	if !w.mysql() {
		var n int
		w.db.QueryRow(w.t, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`, nil, &n)
		w.t.Logf("terminated %d connections", n)
		return
	}
	// MySQL kills one connection per statement; the ids are read first, then killed.
	var ids []int64
	w.query(`SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()`, nil, func(r *sql.Rows) error {
		var id int64
		if err := r.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	})
	n := 0
	for _, id := range ids {
		// A connection may have gone on its own since it was listed.
		if _, err := w.db.SQL().ExecContext(w.ctx, fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
			w.t.Logf("kill connection %d: %v", id, err)
			continue
		}
		n++
	}
	w.t.Logf("terminated %d connections", n)
}

func drainAndCheck(t *testing.T, w *world) {
	t.Helper()
	for i := 0; w.counts().Ready > 0 && i < 3; i++ {
		_, _ = recoverAll(t, w)
		if err := w.packer(fmt.Sprintf("pod-%d", i), nil, packer.Tuning{}).Run(w.ctx); err != nil {
			t.Logf("run %d: %v", i, err)
		}
	}
	recoverAll(t, w)
	w.check(nil)
}

func phases(cs []desv1.DesContainer) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s=%s(%s)", c.Name, c.Status.Phase, c.Status.Reason))
	}
	return out
}

// TestDatabaseRestartMidRun restarts the catalog's server (PostgreSQL or MariaDB) while a packer runs: the packer's statements fail for
// a while, and whatever it had open is committed or recovered; no row is lost or packed twice.
func TestDatabaseRestartMidRun(t *testing.T) { testworld.ForEachDialect(t, testDatabaseRestartMidRun) }

func testDatabaseRestartMidRun(t *testing.T, d catalog.Driver) {
	w := newWorld(t, worldOptions{driver: d, shards: []int32{7}, threshold: threshold, limits: desv1.ContainerLimits{MaxFiles: 50}})
	w.addRows(7, []int64{2000, 40000}, 600, nil)
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = w.packer("pod-a", nil, packer.Tuning{Window: 4}).Run(w.ctx) })
	waitFor(t, func() bool { return w.counts().Packed >= 100 })
	restart := testworld.PG(t).Restart
	if d == catalog.MySQL {
		restart = testworld.Maria(t).Restart
	}
	if err := restart(w.ctx, 2*time.Second); err != nil {
		t.Fatalf("restart the %s server: %v", d, err)
	}
	wg.Wait()
	t.Logf("run across the database restart ended with: %v", runErr)
	drainAndCheck(t, w)
}

// TestLostCompletionAnswerStillCommits: the store completes the container's object but its answer is
// lost (a timeout). The packer must find the object, see it is the archive it wrote, and commit it,
// rather than roll the rows back and leave a complete object no committed container accounts for.
func TestLostCompletionAnswerStillCommits(t *testing.T) {
	testworld.ForEachDialect(t, testLostCompletionAnswerStillCommits)
}

func testLostCompletionAnswerStillCommits(t *testing.T, d catalog.Driver) {
	for _, tc := range []struct {
		name, op string
		tune     packer.Tuning
		sizes    []int64
		rows     int
	}{
		{"multipart", "CompleteMultipartUpload", smallParts, mixedSizes, 120},
		{"single put", "PutObject", packer.Tuning{}, []int64{1000}, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{driver: d, shards: []int32{4}, threshold: threshold})
			w.addRows(4, tc.sizes, tc.rows, nil)
			faults := objstoretest.Wrap(w.store.API()).Add(objstoretest.Rule{Op: tc.op, Nth: 1, LoseResponse: true})
			if err := w.packer("pod-a", faults, tc.tune).Run(w.ctx); err != nil {
				t.Fatalf("Run after a lost %s answer: %v", tc.op, err)
			}
			if faults.Calls(tc.op) == 0 {
				t.Fatalf("no %s call: the fault was not exercised", tc.op)
			}
			if committed := w.check(nil); committed != 1 {
				t.Fatalf("%d containers committed, want 1", committed)
			}
		})
	}
}

// TestPackerStopsWhenItsDesShardIsDeleted: a DesShard's deletion waits for its packers; they must start
// no new container once it began, or one could appear after the deletion's last look.
func TestPackerStopsWhenItsDesShardIsDeleted(t *testing.T) {
	testworld.ForEachDialect(t, testPackerStopsWhenItsDesShardIsDeleted)
}

func testPackerStopsWhenItsDesShardIsDeleted(t *testing.T, d catalog.Driver) {
	w := newWorld(t, worldOptions{driver: d, shards: []int32{4}, threshold: threshold})
	w.addRows(4, []int64{1000}, 10, nil)
	w.ds.Finalizers = append(w.ds.Finalizers, "test.des.datavision.io/hold")
	if err := w.kube.Update(w.ctx, w.ds); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.ds.Finalizers = nil
		_ = w.kube.Update(w.ctx, w.ds)
	})
	if err := w.kube.Delete(w.ctx, w.ds); err != nil {
		t.Fatal(err)
	}
	err := w.packer("pod-a", nil, packer.Tuning{}).Run(w.ctx)
	if !errors.Is(err, packer.ErrDesShardDeleted) {
		t.Fatalf("Run for a deleted DesShard: %v, want ErrDesShardDeleted", err)
	}
	if cs := w.containers(); len(cs) != 0 {
		t.Fatalf("%d containers created for a deleted DesShard", len(cs))
	}
	if n := w.counts(); n.Ready != 10 {
		t.Fatalf("rows: %+v, want all 10 ready", n)
	}
}
