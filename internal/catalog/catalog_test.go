package catalog_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/test/testworld"
)

func TestMain(m *testing.M) { testworld.Main(m, testworld.Postgres|testworld.MariaDB) }

// newCatalog creates a catalog table shaped like a user's (no DES columns) in a new database of
// driver, with rows spread over shards (row i, from 1, is N_i in shard i % shards, i bytes), migrated.
func newCatalog(t *testing.T, driver catalog.Driver, rowsPerShard, shards int) (*catalog.Catalog, *testworld.CatalogDB) {
	t.Helper()
	db := testworld.NewCatalogDB(t, driver)
	db.CreateObjects(t, testworld.ObjectsTable{})
	rows := make([]testworld.ObjectRow, rowsPerShard*shards)
	for i := range rows {
		g := i + 1
		rows[i] = testworld.ObjectRow{Key: fmt.Sprintf("src/%d", g), Size: int64(g), Status: "ready",
			Name: fmt.Sprintf("N_%d", g), Shard: testworld.Shard(int32(g % shards))}
	}
	db.InsertObjects(t, "", rows)
	c := db.NewCatalog(t, catalog.DefaultMapping("objects", "source-bucket"))
	if err := c.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c, db
}

func mustExec(t *testing.T, db *testworld.CatalogDB, stmt string, args ...any) {
	t.Helper()
	db.Exec(t, stmt, args...)
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	testworld.ForEachDialect(t, testMigrateIsIdempotentAndConcurrent)
}

func testMigrateIsIdempotentAndConcurrent(t *testing.T, d catalog.Driver) {
	c, _ := newCatalog(t, d, 1, 1)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- c.Migrate(context.Background()) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("repeated migration: %v", err)
		}
	}
	if err := c.Check(context.Background()); err != nil {
		t.Fatalf("check after migration: %v", err)
	}
}

// TestMigrateReplacesTheReadyIndex: a catalog migrated by an earlier DES has the _des_ready index on
// (shard, id); the migration adds the backlog index, which also holds size and creation time for the
// fill, and drops the old one. On PostgreSQL an index of the same name on a table in another schema
// stays.
func TestMigrateReplacesTheReadyIndex(t *testing.T) {
	testworld.ForEachDialect(t, testMigrateReplacesTheReadyIndex)
}

func testMigrateReplacesTheReadyIndex(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	c, db := newCatalog(t, d, 3, 2)
	if d == catalog.MySQL {
		mustExec(t, db, `DROP INDEX objects_des_backlog ON objects`)
		mustExec(t, db, `CREATE INDEX objects_des_ready ON objects (status, shard, id)`)
	} else {
		mustExec(t, db, `DROP INDEX objects_des_backlog`)
		mustExec(t, db, `CREATE INDEX objects_des_ready ON objects (shard, id) WHERE status = 'ready'`)
		mustExec(t, db, `CREATE SCHEMA other`)
		mustExec(t, db, `CREATE TABLE other.objects (id bigint PRIMARY KEY, shard int, status text)`)
		mustExec(t, db, `CREATE INDEX objects_des_ready ON other.objects (shard, id)`)
	}
	if got := tableIndexes(t, db, "objects"); !got["objects_des_ready"] || got["objects_des_backlog"] {
		t.Fatalf("indexes before the migration: %v", got)
	}
	if err := c.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if got := tableIndexes(t, db, "objects"); got["objects_des_ready"] || !got["objects_des_backlog"] {
		t.Fatalf("indexes after the migration: %v, want objects_des_backlog and no objects_des_ready", got)
	}
	if d != catalog.MySQL {
		var n int
		db.QueryRow(t, `SELECT count(*) FROM pg_indexes WHERE schemaname = 'other' AND indexname = 'objects_des_ready'`, nil, &n)
		if n != 1 {
			t.Fatalf("the migration dropped other.objects' index of the same name")
		}
	}
	// The claims and the fill still work on the new index (and a second migration is a no-op).
	if err := c.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := c.FillByShard(ctx, []int32{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	if st[0].Rows != 3 || st[1].Rows != 3 || st[0].Bytes+st[1].Bytes != 21 {
		t.Fatalf("fill after the migration: %+v, want 3 rows in each shard and 21 bytes", st)
	}
	if rows, err := c.Claim(ctx, 1, "c1", 10); err != nil || len(rows) != 3 {
		t.Fatalf("claim after the migration: %d rows, %v", len(rows), err)
	}
}

// tableIndexes names the indexes of table in the test database's own schema.
func tableIndexes(t *testing.T, db *testworld.CatalogDB, table string) map[string]bool {
	t.Helper()
	stmt := `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1`
	if db.Driver == catalog.MySQL {
		stmt = `SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ?`
	}
	out := map[string]bool{}
	db.Query(t, stmt, []any{table}, func(r *sql.Rows) error {
		var name string
		err := r.Scan(&name)
		out[name] = true
		return err
	})
	return out
}

func TestCheckNamesWhatIsMissing(t *testing.T) {
	testworld.ForEachDialect(t, testCheckNamesWhatIsMissing)
}

func testCheckNamesWhatIsMissing(t *testing.T, d catalog.Driver) {
	pool := testworld.NewCatalogDB(t, d)
	ctx := context.Background()
	m := catalog.DefaultMapping("objects", "b")

	c := pool.NewCatalog(t, m)
	if err := c.Check(ctx); !errors.Is(err, catalog.ErrTableMissing) {
		t.Fatalf("missing table: got %v", err)
	}

	if d == catalog.MySQL {
		mustExec(t, pool, `CREATE TABLE objects (id bigint PRIMARY KEY, source_key text, status varchar(20), des_name varchar(255), shard int, created_at datetime(6))`)
	} else {
		mustExec(t, pool, `CREATE TABLE objects (id bigint PRIMARY KEY, source_key text, status text, des_name text, shard int, created_at timestamptz)`)
	}
	err := c.Check(ctx)
	if !errors.Is(err, catalog.ErrColumnMissing) || !strings.Contains(err.Error(), "size (columns.size)") ||
		!strings.Contains(err.Error(), "des_container (DES-owned") {
		t.Fatalf("missing columns: got %v", err)
	}
	// The migration cannot add the user's columns, and DES's indexes are made of them: it refuses,
	// naming the column, and changes nothing.
	if err := c.Migrate(ctx); !errors.Is(err, catalog.ErrColumnMissing) || !strings.Contains(err.Error(), "size (columns.size)") {
		t.Fatalf("migration of a table without the size column: %v, want ErrColumnMissing naming size", err)
	}
	if err := c.Check(ctx); err == nil || !strings.Contains(err.Error(), "des_container (DES-owned") {
		t.Fatalf("after the refused migration: %v, want the DES columns still missing", err)
	}
	mustExec(t, pool, `ALTER TABLE objects ADD COLUMN size bigint`)
	if err := c.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(ctx); err != nil {
		t.Fatalf("complete table: %v", err)
	}
}

func TestMappingRejectsInjection(t *testing.T) {
	cases := map[string]func(*catalog.Mapping){
		"table with quote":    func(m *catalog.Mapping) { m.Table = `objects"; DROP TABLE x; --` },
		"three-part table":    func(m *catalog.Mapping) { m.Table = "a.b.c" },
		"upper-case column":   func(m *catalog.Mapping) { m.Key = "Key" },
		"empty column":        func(m *catalog.Mapping) { m.Size = "" },
		"no bucket":           func(m *catalog.Mapping) { m.DefaultBucket = "" },
		"equal status values": func(m *catalog.Mapping) { m.Packed = m.Ready },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			m := catalog.DefaultMapping("objects", "b")
			mutate(&m)
			if err := m.Validate(); err == nil {
				t.Fatalf("mapping %+v accepted", m)
			}
		})
	}
	if err := catalog.DefaultMapping("archive.objects", "b").Validate(); err != nil {
		t.Fatalf("schema-qualified table refused: %v", err)
	}
}

func TestConcurrentClaimsAreDisjoint(t *testing.T) {
	testworld.ForEachDialect(t, testConcurrentClaimsAreDisjoint)
}

func testConcurrentClaimsAreDisjoint(t *testing.T, d catalog.Driver) {
	const rows = 500
	c, _ := newCatalog(t, d, rows, 1)
	ctx := context.Background()
	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				container := fmt.Sprintf("c-%d-%d", w, i)
				got, err := c.Claim(ctx, 0, container, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, r := range got {
					if prev, dup := seen[r.ID]; dup {
						t.Errorf("row %d claimed by %s and %s", r.ID, prev, container)
					}
					seen[r.ID] = container
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if len(seen) != rows {
		t.Fatalf("%d rows claimed, want %d", len(seen), rows)
	}
}

func TestClaimReturnsRowsInIDOrderWithBucket(t *testing.T) {
	testworld.ForEachDialect(t, testClaimReturnsRowsInIDOrderWithBucket)
}

func testClaimReturnsRowsInIDOrderWithBucket(t *testing.T, d catalog.Driver) {
	c, _ := newCatalog(t, d, 10, 2)
	got, err := c.Claim(context.Background(), 1, "c1", 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []catalog.Row{
		{ID: 1, Bucket: "source-bucket", Key: "src/1", Size: 1, Name: "N_1"},
		{ID: 3, Bucket: "source-bucket", Key: "src/3", Size: 3, Name: "N_3"},
		{ID: 5, Bucket: "source-bucket", Key: "src/5", Size: 5, Name: "N_5"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("claim = %v, want %v", got, want)
	}
}

// record is the commit record of a container holding rows, each placed after the previous one.
func record(container string, rows []catalog.Row) catalog.Record {
	rec := catalog.Record{
		Key: "archive/2026-11-26/000/" + container + ".des", Container: container, Bucket: "archive",
		Source: "src", Shard: 0, Day: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), Files: int64(len(rows)),
		Bytes: 10, ObjectSize: 100, PayloadChecksum: "p", IndexChecksum: "i", Writer: "pod-1",
	}
	off := int64(16)
	for _, r := range rows {
		rec.Placements = append(rec.Placements, catalog.Placement{ID: r.ID, Location: desformat.Location{
			Name: r.Name, Offset: off, Size: r.Size, CRC32C: uint32(r.ID) * 2654435761, HasCRC: true}})
		off += r.Size
	}
	return rec
}

// TestCommitAndRollBackRace checks the arbiter rule: whichever of commit and roll-back runs first wins
// and the other changes nothing.
func TestCommitAndRollBackRace(t *testing.T) { testworld.ForEachDialect(t, testCommitAndRollBackRace) }

func testCommitAndRollBackRace(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	t.Run("commit first", func(t *testing.T) {
		c, _ := newCatalog(t, d, 5, 1)
		claimed, _ := c.Claim(ctx, 0, "c1", 5)
		if err := c.Commit(ctx, record("c1", claimed)); err != nil {
			t.Fatal(err)
		}
		if n, err := c.RollBack(ctx, "c1"); err != nil || n != 0 {
			t.Fatalf("roll-back after commit moved %d rows (%v)", n, err)
		}
		if err := c.Commit(ctx, record("c1", claimed)); err != nil {
			t.Fatalf("repeated commit: %v", err)
		}
		assertCounts(t, c, catalog.Counts{Packed: 5})
		if ok, _ := c.IsCommitted(ctx, "c1"); !ok {
			t.Fatal("committed container has no record")
		}
	})
	t.Run("roll-back first", func(t *testing.T) {
		c, _ := newCatalog(t, d, 5, 1)
		claimed, _ := c.Claim(ctx, 0, "c1", 5)
		if n, err := c.RollBack(ctx, "c1"); err != nil || n != 5 {
			t.Fatalf("roll-back moved %d rows (%v)", n, err)
		}
		if err := c.Commit(ctx, record("c1", claimed)); !errors.Is(err, catalog.ErrRolledBack) {
			t.Fatalf("commit after roll-back: got %v, want ErrRolledBack", err)
		}
		assertCounts(t, c, catalog.Counts{Ready: 5})
		if ok, _ := c.IsCommitted(ctx, "c1"); ok {
			t.Fatal("rolled-back container has a record")
		}
	})
	t.Run("a commit of more files than claimed rows changes nothing", func(t *testing.T) {
		c, _ := newCatalog(t, d, 5, 1)
		claimed, err := c.Claim(ctx, 0, "c1", 5)
		if err != nil {
			t.Fatal(err)
		}
		extra := append(append([]catalog.Row{}, claimed...), catalog.Row{ID: 999, Name: "N_999", Size: 1})
		if err := c.Commit(ctx, record("c1", extra)); !errors.Is(err, catalog.ErrRolledBack) {
			t.Fatalf("commit of more files than claimed rows: got %v", err)
		}
		assertCounts(t, c, catalog.Counts{Claimed: 5})
	})
}

func TestMarkFailedOnlyTouchesOwnClaim(t *testing.T) {
	testworld.ForEachDialect(t, testMarkFailedOnlyTouchesOwnClaim)
}

func testMarkFailedOnlyTouchesOwnClaim(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	c, pool := newCatalog(t, d, 3, 1)
	rows, _ := c.Claim(ctx, 0, "c1", 3)
	if ok, err := c.MarkFailed(ctx, "other", rows[0].ID, "boom"); err != nil || ok {
		t.Fatalf("foreign container marked a row failed (%v)", err)
	}
	if ok, err := c.MarkFailed(ctx, "c1", rows[0].ID, "source object missing"); err != nil || !ok {
		t.Fatalf("mark failed: %v", err)
	}
	var msg string
	var retries int
	if err := pool.Row(`SELECT des_error, des_retries FROM objects WHERE id = $1`, rows[0].ID).Scan(&msg, &retries); err != nil {
		t.Fatal(err)
	}
	if msg != "source object missing" || retries != 1 {
		t.Fatalf("failed row: error %q retries %d", msg, retries)
	}
	if err := c.Commit(ctx, record("c1", rows[1:])); err != nil {
		t.Fatalf("commit of the two remaining rows: %v", err)
	}
	assertCounts(t, c, catalog.Counts{Packed: 2, Failed: 1})
	names, _ := c.ClaimedIDs(ctx, "c1")
	if len(names) != 0 {
		t.Fatalf("committed container still has claimed rows %v", names)
	}
}

func assertCounts(t *testing.T, c *catalog.Catalog, want catalog.Counts) {
	t.Helper()
	got, err := c.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.Rows() != want {
		t.Fatalf("counts = %+v, want %+v", got, want)
	}
}
