package reclaim_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/reclaim"
	"github.com/datavision/des/test/objstoretest"
	"github.com/datavision/des/test/testworld"
)

// TestHappyPath: every source of two containers is deleted, in one pass; every file still reads back
// byte-exact from the archive; every row is recorded deleted; both containers are finished; a second
// pass finds nothing to do.
func TestHappyPath(t *testing.T) { testworld.ForEachDialect(t, testHappyPath) }

func testHappyPath(t *testing.T, d catalog.Driver) {
	w := newWorld(t, d, 30)
	recs := []catalog.Record{w.pack("c1", 20), w.pack("c2", 20)}
	reg := prometheus.NewRegistry()
	m := reclaim.NewMetrics(reg)
	archive := objstoretest.Wrap(w.store.API())
	r, err := reclaim.New(reclaim.Deps{Catalog: w.cat, Source: w.store, Archive: w.store.WithAPI(archive), Metrics: m, Log: testLogger(t)},
		reclaim.Options{BatchSize: 7, DeletesPerSecond: 1000})
	if err != nil {
		t.Fatal(err)
	}
	st := w.mustPass(r)
	if st.Deleted != 30 || st.Refused != 0 || st.Errors != 0 || st.Finished != 2 {
		t.Fatalf("stats %+v, want 30 deleted and 2 finished", st)
	}
	// Read back is coalesced: one range GET per batch (the payloads of a batch touch) and one GET per
	// big payload (5 of the 30), not one per file: 5 batches of at most 7 rows + 5.
	got := archive.Calls("GetObject")
	t.Logf("read back: %d archive GETs", got)
	if got > 10 || got < 5 {
		t.Errorf("read back took %d archive GETs for 30 files in 5 batches, want 5 to 10", got)
	}
	if got := testutil.ToFloat64(m.Deleted); got != 30 {
		t.Errorf("des_source_objects_deleted_total = %v, want 30", got)
	}
	for id, key := range w.keys {
		if w.exists(key) {
			t.Errorf("source %s still exists", key)
		}
		if s := w.state(id); !s.Deleted || !s.Verified || s.Refused != "" {
			t.Errorf("row %d: %+v", id, s)
		}
	}
	for _, rec := range recs {
		w.checkArchive(rec)
		if !w.finished(rec.Container) {
			t.Errorf("%s is not finished", rec.Container)
		}
	}
	n, err := w.cat.Count(w.ctx)
	if err != nil || n.SourcesDeleted != 30 || n.SourcesWaiting != 0 || n.SourcesRefused != 0 {
		t.Fatalf("counts %+v (%v)", n, err)
	}
	if st := w.mustPass(r); st != (reclaim.Stats{}) {
		t.Fatalf("second pass: %+v, want nothing", st)
	}
}

// TestRefusals: an overwritten source (same size, and another size), a corrupted archived copy (the
// catalog's CRC is not the archived bytes') and a row without a CRC are kept, each refused with its
// reason; the others are deleted and the container is finished (every row deleted or refused).
func TestRefusals(t *testing.T) { testworld.ForEachDialect(t, testRefusals) }

func testRefusals(t *testing.T, d catalog.Driver) {
	w := newWorld(t, d, 12)
	w.pack("c1", 12)
	ids := w.ids("c1")
	// ids[2] is 700 bytes, ids[3] 4096, ids[4] 20000, ids[5] the big external one.
	same := w.keys[ids[2]]
	w.put(same, append([]byte(nil), w.content[same]...)) // same bytes, new version: a new upload is a new object
	w.put(w.keys[ids[3]], make([]byte, 4096))            // overwritten, same size
	w.put(w.keys[ids[4]], []byte("shorter"))             // overwritten, other size
	w.exec(`UPDATE objects SET des_crc32c = (des_crc32c + 1) % 4294967296 WHERE id IN ($1, $2)`, ids[5], ids[8])
	w.exec(`UPDATE objects SET des_crc32c = NULL WHERE id = $1`, ids[9])

	reg := prometheus.NewRegistry()
	m := reclaim.NewMetrics(reg)
	r, err := reclaim.New(reclaim.Deps{Catalog: w.cat, Source: w.store, Archive: w.store, Metrics: m, Log: testLogger(t)}, reclaim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := w.mustPass(r)
	want := map[int64]string{
		ids[3]: "changed: source object changed since it was packed: ETag",
		ids[4]: "size_changed: source object changed since it was packed: 7 bytes, packed 20000",
		ids[5]: "crc_mismatch: archived copy does not match the fetched CRC-32C",
		ids[8]: "crc_mismatch: archived copy does not match the fetched CRC-32C",
		ids[9]: "no_crc: no CRC-32C was recorded",
	}
	// versitygw's ETag is the MD5 of the content: the same bytes uploaded again keep their ETag and
	// the source is (rightly) the one packed. A store with per-upload ETags would refuse it instead.
	if s := w.state(ids[2]); !s.Deleted && !strings.HasPrefix(s.Refused, "changed:") {
		t.Errorf("re-uploaded identical source: %+v", s)
	}
	refused := int64(0)
	for _, id := range ids {
		s := w.state(id)
		prefix, kept := want[id]
		switch {
		case kept && (!strings.HasPrefix(s.Refused, prefix) || s.Deleted || !w.exists(w.keys[id])):
			t.Errorf("row %d: %+v (source exists: %v), want kept with %q", id, s, w.exists(w.keys[id]), prefix)
		case !kept && id != ids[2] && (!s.Deleted || w.exists(w.keys[id])):
			t.Errorf("row %d: %+v, want deleted", id, s)
		}
		if s.Refused != "" {
			refused++
		}
	}
	if st.Refused != refused || st.Refused < 5 || st.Errors != 0 || st.Finished != 1 {
		t.Fatalf("stats %+v, want %d refused and the container finished", st, refused)
	}
	for reason, n := range map[string]float64{"crc_mismatch": 2, "no_crc": 1, "size_changed": 1} {
		if got := testutil.ToFloat64(m.Refused.WithLabelValues(reason)); got != n {
			t.Errorf("refused{reason=%s} = %v, want %v", reason, got, n)
		}
	}
	n, _ := w.cat.Count(w.ctx)
	if n.SourcesRefused != refused || n.RefusedExample == "" || n.SourcesWaiting != 0 {
		t.Errorf("counts %+v", n)
	}
}

// TestRolledBackContainerIsNeverTouched: a container written and claimed but rolled back (never
// committed) has no sources reclaimed, even with its object in the archive.
func TestRolledBackContainerIsNeverTouched(t *testing.T) {
	testworld.ForEachDialect(t, testRolledBackContainerIsNeverTouched)
}

func testRolledBackContainerIsNeverTouched(t *testing.T, d catalog.Driver) {
	w := newWorld(t, d, 10)
	w.write("c1", 5) // object complete, rows claimed, never committed
	if _, err := w.cat.RollBack(w.ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	st := w.mustPass(w.reclaimer(nil, reclaim.Options{}))
	if st != (reclaim.Stats{}) {
		t.Fatalf("stats %+v for a rolled-back container", st)
	}
	// Even asked by name, it offers nothing.
	st, err := w.reclaimer(nil, reclaim.Options{}).Run(w.ctx, []catalog.ReclaimContainer{{Container: "c1", Key: "archive/c1/c1.des", Bucket: w.archive}})
	if err != nil || st.Deleted+st.AlreadyGone+st.Refused != 0 {
		t.Fatalf("asked by name: %+v, %v", st, err)
	}
	for _, key := range w.keys {
		if !w.exists(key) {
			t.Errorf("source %s deleted", key)
		}
	}
}

// TestDeleteErrors: a failed DeleteObjects request and a lost answer (the store deleted, the engine
// never heard) record nothing as deleted; the next pass finishes, the lost ones found gone.
func TestDeleteErrors(t *testing.T) { testworld.ForEachDialect(t, testDeleteErrors) }

func testDeleteErrors(t *testing.T, d catalog.Driver) {
	w := newWorld(t, d, 12)
	w.pack("c1", 12)
	faults := objstoretest.Wrap(w.store.API())
	faults.FailNth("DeleteObjects", 1, errors.New("injected: 503 SlowDown"))
	faults.Add(objstoretest.Rule{Op: "DeleteObjects", Nth: 2, LoseResponse: true})
	r := w.reclaimer(w.store.WithAPI(faults), reclaim.Options{BatchSize: 4})
	st, err := w.pass(r)
	if err != nil || st.Errors != 8 || st.Deleted != 4 || st.Finished != 0 {
		t.Fatalf("first pass: %+v, %v; want 8 errors, 4 deleted, not finished", st, err)
	}
	ids := w.ids("c1")
	for i, id := range ids {
		s := w.state(id)
		switch {
		case i < 8 && (s.Deleted || s.Refused != ""):
			t.Errorf("row %d recorded %+v after a failed delete", id, s)
		case i < 4 && !w.exists(w.keys[id]):
			t.Errorf("row %d: the failed request deleted its source", id)
		case i >= 4 && i < 8 && w.exists(w.keys[id]):
			t.Errorf("row %d: the request whose answer was lost did not delete", id)
		case i >= 8 && !s.Deleted:
			t.Errorf("row %d not recorded deleted", id)
		}
	}
	st = w.mustPass(r)
	if st.Deleted != 4 || st.AlreadyGone != 4 || st.Refused != 0 || st.Errors != 0 || st.Finished != 1 {
		t.Fatalf("second pass: %+v; want 4 deleted, 4 already gone, finished", st)
	}
	for _, id := range ids {
		if s := w.state(id); !s.Deleted || s.Refused != "" {
			t.Errorf("row %d after the second pass: %+v", id, s)
		}
	}
}

// TestCrashBetweenDeleteAndRecord: the deletes succeed and the record fails (the pass's context ends
// right after DeleteObjects answered); the next pass records the sources as gone and refuses nothing.
func TestCrashBetweenDeleteAndRecord(t *testing.T) {
	testworld.ForEachDialect(t, testCrashBetweenDeleteAndRecord)
}

func testCrashBetweenDeleteAndRecord(t *testing.T, d catalog.Driver) {
	w := newWorld(t, d, 8)
	w.pack("c1", 8)
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	faults := objstoretest.Wrap(w.store.API()).Add(objstoretest.Rule{Op: "DeleteObjects", Nth: 1, After: cancel})
	r := w.reclaimer(w.store.WithAPI(faults), reclaim.Options{})
	st, err := r.Pass(ctx, "src", nil, 0, 10)
	if err == nil || st.Deleted != 8 {
		t.Fatalf("first pass: %+v, %v; want 8 deleted and a recording error", st, err)
	}
	for id, key := range w.keys {
		if s := w.state(id); s.Deleted || w.exists(key) {
			t.Fatalf("row %d: %+v, source exists %v; want deleted and not recorded", id, s, w.exists(key))
		}
	}
	st = w.mustPass(w.reclaimer(nil, reclaim.Options{}))
	if st.AlreadyGone != 8 || st.Deleted != 0 || st.Refused != 0 || st.Finished != 1 {
		t.Fatalf("second pass: %+v; want 8 already gone", st)
	}
	for id := range w.keys {
		if s := w.state(id); !s.Deleted || s.Refused != "" {
			t.Errorf("row %d: %+v", id, s)
		}
	}
}

// TestDryRun: nothing is deleted, the rows are verified and counted, the container is verified but not
// finished; a real pass then deletes everything.
func TestDryRun(t *testing.T) { testworld.ForEachDialect(t, testDryRun) }

func testDryRun(t *testing.T, d catalog.Driver) {
	w := newWorld(t, d, 10)
	w.pack("c1", 10)
	faults := objstoretest.Wrap(w.store.API())
	dry := w.reclaimer(w.store.WithAPI(faults), reclaim.Options{DryRun: true})
	st := w.mustPass(dry)
	if st.WouldDelete != 10 || st.Deleted != 0 || st.Finished != 1 || faults.Calls("DeleteObjects") != 0 {
		t.Fatalf("dry run: %+v, %d DeleteObjects", st, faults.Calls("DeleteObjects"))
	}
	n, _ := w.cat.Count(w.ctx)
	if n.SourcesVerified != 10 || n.SourcesDeleted != 0 || n.SourcesWaiting != 10 {
		t.Fatalf("counts after the dry run: %+v", n)
	}
	for id, key := range w.keys {
		if s := w.state(id); !s.Verified || s.Deleted || !w.exists(key) {
			t.Errorf("row %d after the dry run: %+v", id, s)
		}
	}
	if st := w.mustPass(dry); st != (reclaim.Stats{}) {
		t.Fatalf("second dry run: %+v, want nothing", st)
	}
	if w.finished("c1") {
		t.Fatal("a dry run finished the container")
	}
	st = w.mustPass(w.reclaimer(nil, reclaim.Options{}))
	if st.Deleted != 10 || st.Finished != 1 {
		t.Fatalf("real pass after the dry run: %+v", st)
	}
	for _, key := range w.keys {
		if w.exists(key) {
			t.Errorf("%s not deleted", key)
		}
	}
}

// TestRowsWithoutETag: rows committed without an ETag (a recovery's roll-forward) are compared by
// content: identical sources are deleted, an overwritten one is kept.
func TestRowsWithoutETag(t *testing.T) { testworld.ForEachDialect(t, testRowsWithoutETag) }

func testRowsWithoutETag(t *testing.T, d catalog.Driver) {
	for _, mode := range []reclaim.Mode{reclaim.Head, reclaim.Conditional} {
		t.Run(mode.String(), func(t *testing.T) {
			w := newWorld(t, d, 6)
			w.pack("c1", 6)
			ids := w.ids("c1")
			w.exec(`UPDATE objects SET des_source_etag = NULL`)
			w.put(w.keys[ids[4]], make([]byte, 20000)) // same size, other bytes
			st := w.mustPass(w.reclaimer(nil, reclaim.Options{Mode: mode}))
			if st.Deleted != 5 || st.Refused != 1 {
				t.Fatalf("stats %+v, want 5 deleted, 1 refused", st)
			}
			if s := w.state(ids[4]); !strings.HasPrefix(s.Refused, "changed: source object differs from the archived copy") || !w.exists(w.keys[ids[4]]) {
				t.Fatalf("overwritten source: %+v", s)
			}
		})
	}
}

// TestConditionalMode: with a recorded ETag, Conditional sends no HEAD before the delete. (versitygw
// ignores the ETag of a DeleteObjects key, so what a refused key does is not testable here.)
func TestConditionalMode(t *testing.T) { testworld.ForEachDialect(t, testConditionalMode) }

func testConditionalMode(t *testing.T, d catalog.Driver) {
	w := newWorld(t, d, 6)
	w.pack("c1", 6)
	faults := objstoretest.Wrap(w.store.API())
	st := w.mustPass(w.reclaimer(w.store.WithAPI(faults), reclaim.Options{Mode: reclaim.Conditional}))
	if st.Deleted != 6 || faults.Calls("HeadObject") != 0 {
		t.Fatalf("stats %+v, %d HEADs; want 6 deleted without a HEAD", st, faults.Calls("HeadObject"))
	}
}

// TestPerKeyDeleteErrors: per-key answers of DeleteObjects (injected around the real store: versitygw
// produces none of them on demand). An InternalError or AccessDenied key is left for the next pass,
// counted as an error and never refused; NoSuchKey is recorded deleted; PreconditionFailed (a store
// enforcing ETags, in Conditional mode) is HEADed: an overwritten source is refused as changed, an
// unchanged one left for the next pass.
func TestPerKeyDeleteErrors(t *testing.T) { testworld.ForEachDialect(t, testPerKeyDeleteErrors) }

func testPerKeyDeleteErrors(t *testing.T, d catalog.Driver) {
	w := newWorld(t, d, 6)
	w.pack("c1", 6)
	ids := w.ids("c1")
	codes := map[string]string{
		w.keys[ids[0]]: "InternalError",
		w.keys[ids[1]]: "AccessDenied",
		w.keys[ids[2]]: "NoSuchKey",
		w.keys[ids[3]]: "PreconditionFailed",
		w.keys[ids[4]]: "PreconditionFailed",
	}
	w.put(w.keys[ids[4]], []byte("a new version of the source object"))
	faults := objstoretest.Wrap(w.store.API()).Add(objstoretest.Rule{Op: "DeleteObjects", Nth: 1,
		DeleteKeyError: func(key string) string { return codes[key] }})
	r := w.reclaimer(w.store.WithAPI(faults), reclaim.Options{Mode: reclaim.Conditional})
	st, err := w.pass(r)
	if err != nil || st.Deleted != 1 || st.AlreadyGone != 1 || st.Refused != 1 || st.Errors != 3 || st.Finished != 0 {
		t.Fatalf("first pass: %+v, %v; want 1 deleted, 1 gone, 1 refused, 3 errors", st, err)
	}
	want := []rowState{{}, {}, {Deleted: true, Verified: true}, {}, {Refused: "changed: "}, {Deleted: true, Verified: true}}
	for i, id := range ids {
		s := w.state(id)
		if s.Deleted != want[i].Deleted || !strings.HasPrefix(s.Refused, want[i].Refused) || (want[i].Refused == "") != (s.Refused == "") {
			t.Errorf("row %d (%s): %+v, want %+v", i, codes[w.keys[id]], s, want[i])
		}
	}
	if !w.exists(w.keys[ids[2]]) || !w.exists(w.keys[ids[4]]) {
		t.Error("a key the store kept was deleted")
	}
	// The next pass (no faults) deletes the three left; the kept NoSuchKey source is recorded
	// already, the refused one stays.
	st = w.mustPass(w.reclaimer(nil, reclaim.Options{Mode: reclaim.Conditional}))
	if st.Deleted != 3 || st.Refused != 0 || st.Finished != 1 {
		t.Fatalf("second pass: %+v", st)
	}
}

// TestRateAndDeadline: DeletesPerSecond bounds both the keys of a request and the pace; a pass past
// its deadline starts nothing.
func TestRateAndDeadline(t *testing.T) { testworld.ForEachDialect(t, testRateAndDeadline) }

func testRateAndDeadline(t *testing.T, d catalog.Driver) {
	w := newWorld(t, d, 12)
	w.pack("c1", 12)
	st := w.mustPass(w.reclaimer(nil, reclaim.Options{Deadline: time.Now().Add(-time.Second)}))
	if !st.DeadlineReached || st.Deleted != 0 {
		t.Fatalf("pass past its deadline: %+v", st)
	}
	faults := objstoretest.Wrap(w.store.API())
	start := time.Now()
	st = w.mustPass(w.reclaimer(w.store.WithAPI(faults), reclaim.Options{DeletesPerSecond: 5}))
	elapsed := time.Since(start)
	if st.Deleted != 12 || faults.Calls("DeleteObjects") != 3 {
		t.Fatalf("stats %+v in %d requests; want 12 deleted in 3 requests of at most 5", st, faults.Calls("DeleteObjects"))
	}
	// 5 at once (the burst), then 5 a second: the last request waits about 1.4 s.
	if elapsed < 1200*time.Millisecond {
		t.Fatalf("12 deletes at 5 per second took %v", elapsed)
	}
}
