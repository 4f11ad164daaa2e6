package reclaim_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/reclaim"
	"github.com/datavision/des/test/testworld"
)

func TestMain(m *testing.M) { testworld.Main(m, testworld.Postgres|testworld.MariaDB|testworld.S3) }

// threshold sends the test's biggest payloads to _bigFiles/, as the packer does.
const threshold = 64 << 10

// sizes cycle over a world's rows: empty, small, a few pages, and one big (external) payload.
var sizes = []int64{0, 1, 700, 4096, 20000, 100000}

// world is a catalog table with its source bucket and an archive bucket, packed the way the packer
// packs: claim, GET each source (its ETag), write it through desformat into a container upload,
// commit with placements and ETags.
type world struct {
	t       *testing.T
	ctx     context.Context
	db      *testworld.CatalogDB
	cat     *catalog.Catalog
	store   *objstore.Store // the real client
	source  string
	archive string
	content map[string][]byte // source key → the bytes that were packed
	keys    map[int64]string  // row id → source key
}

// newWorld makes a world of n rows in a new catalog database of driver.
func newWorld(t *testing.T, driver catalog.Driver, n int) *world {
	t.Helper()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	s3 := testworld.S3Store(t)
	db := testworld.NewCatalogDB(t, driver)
	w := &world{t: t, ctx: context.Background(), db: db, store: objstore.NewFromAPI(s3.Client()),
		source: s3.NewBucket(t), archive: s3.NewBucket(t), content: map[string][]byte{}, keys: map[int64]string{}}
	// Every row the test adds says its size and status, so the table's defaults never apply; a status
	// is never NULL, as in a user's table: DES writing one is an error the test must see.
	db.CreateObjects(t, testworld.ObjectsTable{Extra: []string{"CHECK (status IS NOT NULL)"}})
	w.cat = db.NewCatalog(t, catalog.DefaultMapping("objects", w.source))
	if err := w.cat.Migrate(w.ctx); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		size := sizes[i%len(sizes)]
		key := fmt.Sprintf("src/%04d.bin", i)
		data := testworld.RandomBytes(int(size), seed+uint64(i))
		w.put(key, data)
		// One row at a time, in key order: row ids follow the rows, and MySQL has no RETURNING.
		w.exec(`INSERT INTO objects (source_key, size, status, des_name, shard) VALUES ($1, $2, 'ready', $3, 0)`,
			key, size, fmt.Sprintf("DES_%04d", i))
	}
	w.query(`SELECT id, source_key FROM objects`, nil, func(r *sql.Rows) error {
		var id int64
		var key string
		if err := r.Scan(&id, &key); err != nil {
			return err
		}
		w.keys[id] = key
		return nil
	})
	if len(w.keys) != n {
		t.Fatalf("%d rows in the catalog, want %d", len(w.keys), n)
	}
	return w
}

// exec runs a statement of the test, written with PostgreSQL's placeholders (CatalogDB.Dialect).
func (w *world) exec(stmt string, args ...any) {
	w.t.Helper()
	w.db.Exec(w.t, stmt, args...)
}

// query runs a query of the test (see exec) and calls scan for each row.
func (w *world) query(stmt string, args []any, scan func(r *sql.Rows) error) {
	w.t.Helper()
	w.db.Query(w.t, stmt, args, scan)
}

func (w *world) put(key string, data []byte) {
	w.t.Helper()
	if _, err := w.store.Put(w.ctx, w.source, key, data, objstore.PutOptions{}); err != nil {
		w.t.Fatal(err)
	}
	w.content[key] = data
}

// write claims up to limit rows for container and writes them into its object, without committing.
func (w *world) write(container string, limit int) catalog.Record {
	w.t.Helper()
	ctx := w.ctx
	rows, err := w.cat.Claim(ctx, 0, container, limit)
	if err != nil || len(rows) == 0 {
		w.t.Fatalf("claim for %s: %d rows, %v", container, len(rows), err)
	}
	prefix := "archive/" + container
	key := prefix + "/" + container + ".des"
	up := w.store.NewUploader(ctx, w.archive, key, objstore.UploadOptions{IfNoneMatch: true})
	dw, err := desformat.NewWriter(up, desformat.WriterOptions{
		External: w.store.Blobs(w.archive, objstore.UploadOptions{}), ExternalThreshold: threshold, ExternalPrefix: prefix})
	if err != nil {
		w.t.Fatal(err)
	}
	rec := catalog.Record{Key: key, Container: container, Bucket: w.archive, Source: "src", Shard: 0,
		Day: time.Now().UTC(), Writer: "test"}
	for _, r := range rows {
		body, info, err := w.store.Get(ctx, r.Bucket, r.Key, nil)
		if err != nil {
			w.t.Fatal(err)
		}
		err = dw.Add(ctx, desformat.FileHeader{Name: r.Name, Size: r.Size}, body)
		body.Close()
		if err != nil {
			w.t.Fatal(err)
		}
		l, _ := dw.Last()
		rec.Placements = append(rec.Placements, catalog.Placement{ID: r.ID, Location: l, SourceETag: info.ETag})
	}
	if err := dw.Close(); err != nil {
		w.t.Fatal(err)
	}
	res, err := up.Complete()
	if err != nil {
		w.t.Fatal(err)
	}
	sum := dw.Summary()
	rec.Files, rec.Bytes, rec.ObjectSize = sum.Files, sum.PayloadBytes, res.Size
	rec.PayloadChecksum, rec.IndexChecksum = sum.PayloadChecksum(), sum.IndexChecksum()
	return rec
}

// pack writes and commits one container of up to limit rows.
func (w *world) pack(container string, limit int) catalog.Record {
	w.t.Helper()
	rec := w.write(container, limit)
	if err := w.cat.Commit(w.ctx, rec); err != nil {
		w.t.Fatal(err)
	}
	return rec
}

func (w *world) reclaimer(source *objstore.Store, o reclaim.Options) *reclaim.Reclaimer {
	w.t.Helper()
	if source == nil {
		source = w.store
	}
	r, err := reclaim.New(reclaim.Deps{Catalog: w.cat, Source: source, Archive: w.store, Log: testr.New(w.t)}, o)
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// pass runs one pass over every committed container of the world.
func (w *world) pass(r *reclaim.Reclaimer) (reclaim.Stats, error) {
	w.t.Helper()
	return r.Pass(w.ctx, "src", nil, 0, 100)
}

func (w *world) mustPass(r *reclaim.Reclaimer) reclaim.Stats {
	w.t.Helper()
	st, err := w.pass(r)
	if err != nil {
		w.t.Fatalf("pass: %v (stats %+v)", err, st)
	}
	return st
}

func (w *world) exists(key string) bool {
	w.t.Helper()
	_, err := w.store.Head(w.ctx, w.source, key)
	if errors.Is(err, objstore.ErrNotFound) {
		return false
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return true
}

// rowState is what the catalog recorded about one row's source.
type rowState struct {
	Deleted, Verified bool
	Refused           string
}

func (w *world) state(id int64) rowState {
	w.t.Helper()
	var s rowState
	w.db.QueryRow(w.t, `SELECT des_source_deleted_at IS NOT NULL, des_source_verified_at IS NOT NULL,
		coalesce(des_source_refused, '') FROM objects WHERE id = $1`, []any{id}, &s.Deleted, &s.Verified, &s.Refused)
	return s
}

func (w *world) ids(container string) []int64 {
	w.t.Helper()
	var out []int64
	w.query(`SELECT id FROM objects WHERE des_container = $1 ORDER BY id`, []any{container}, func(r *sql.Rows) error {
		var id int64
		if err := r.Scan(&id); err != nil {
			return err
		}
		out = append(out, id)
		return nil
	})
	return out
}

func (w *world) finished(container string) bool {
	w.t.Helper()
	var done bool
	w.db.QueryRow(w.t, `SELECT sources_deleted_at IS NOT NULL FROM des_containers WHERE container = $1`, []any{container}, &done)
	return done
}

// checkArchive reads every file of rec back from the archive, byte-exact with what was packed.
func (w *world) checkArchive(rec catalog.Record) {
	w.t.Helper()
	ra, _, err := w.store.OpenReaderAt(w.ctx, rec.Bucket, rec.Key, desformat.DefaultTailSize)
	if err != nil {
		w.t.Fatal(err)
	}
	r, err := desformat.NewReader(ra, ra.Size(), desformat.ReaderOptions{External: w.store.Blobs(rec.Bucket, objstore.UploadOptions{})})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, p := range rec.Placements {
		got, err := r.ReadFile(w.ctx, p.Name)
		if err != nil {
			w.t.Fatal(err)
		}
		if want := w.content[w.keys[p.ID]]; !bytes.Equal(got, want) {
			w.t.Errorf("%s reads back %d bytes that differ from the %d packed", p.Name, len(got), len(want))
		}
	}
}

func testLogger(t *testing.T) logr.Logger {
	t.Helper()
	return testr.New(t)
}
