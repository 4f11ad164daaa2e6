package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/test/testworld"
)

// newUnnamedCatalog creates a migrated catalog table without rows, whose rows are an hour old unless
// inserted with another created_at.
func newUnnamedCatalog(t *testing.T, driver catalog.Driver) (*catalog.Catalog, *testworld.CatalogDB) {
	t.Helper()
	db := testworld.NewCatalogDB(t, driver)
	db.CreateObjects(t, testworld.ObjectsTable{CreatedAgo: time.Hour})
	c := db.NewCatalog(t, catalog.DefaultMapping("objects", "source-bucket"))
	if err := c.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c, db
}

// insertKeys adds n rows with the table's defaults, keyed key(1) … key(n).
func insertKeys(t *testing.T, db *testworld.CatalogDB, n int, key func(i int) string) {
	t.Helper()
	rows := make([]testworld.ObjectRow, n)
	for i := range rows {
		rows[i].Key, rows[i].Size = key(i+1), 1
	}
	db.InsertObjects(t, "", rows)
}

func kN(i int) string { return fmt.Sprintf("k%d", i) }

// nameByID is an assign function whose names are derived from the ids.
func nameByID(ids []int64) ([]catalog.Assignment, error) {
	as := make([]catalog.Assignment, len(ids))
	for i, id := range ids {
		as[i] = catalog.Assignment{ID: id, Name: fmt.Sprintf("N_%d", id), Shard: int32(id % 4)}
	}
	return as, nil
}

// markAll is one marker run: batches until no row is left; it returns the rows marked and failed.
func markAll(t *testing.T, c *catalog.Catalog, q catalog.MarkQuery) (marked, failed int64) {
	t.Helper()
	q.AfterID = catalog.FirstID
	for {
		res, err := c.Mark(context.Background(), q, nameByID)
		if err != nil {
			t.Fatal(err)
		}
		if res.Selected == 0 {
			return marked, failed
		}
		if res.Marked+int64(len(res.Failed)) != int64(res.Selected) {
			t.Fatalf("batch selected %d rows, marked %d, failed %d", res.Selected, res.Marked, len(res.Failed))
		}
		marked, failed = marked+res.Marked, failed+int64(len(res.Failed))
		q.AfterID = res.LastID
	}
}

type rowState struct {
	Status  *string
	Name    *string
	Shard   *int32
	Error   *string
	Retries int
}

func (r rowState) String() string {
	s := func(p *string) string {
		if p == nil {
			return "NULL"
		}
		return *p
	}
	shard := "NULL"
	if r.Shard != nil {
		shard = fmt.Sprint(*r.Shard)
	}
	return fmt.Sprintf("status=%s name=%s shard=%s error=%q retries=%d", s(r.Status), s(r.Name), shard, s(r.Error), r.Retries)
}

func row(t *testing.T, pool *testworld.CatalogDB, key string) rowState {
	t.Helper()
	var r rowState
	err := pool.Row(`SELECT status, des_name, shard, des_error, des_retries FROM objects WHERE source_key = $1`, key).
		Scan(&r.Status, &r.Name, &r.Shard, &r.Error, &r.Retries)
	if err != nil {
		t.Fatalf("row %s: %v", key, err)
	}
	return r
}

func TestMarkNamesEachRowOnce(t *testing.T) { testworld.ForEachDialect(t, testMarkNamesEachRowOnce) }

func testMarkNamesEachRowOnce(t *testing.T, d catalog.Driver) {
	c, pool := newUnnamedCatalog(t, d)
	insertKeys(t, pool, 10, kN)
	q := catalog.MarkQuery{Limit: 4, MaxRetries: 3}
	if marked, failed := markAll(t, c, q); marked != 10 || failed != 0 {
		t.Fatalf("first run marked %d, failed %d; want 10, 0", marked, failed)
	}
	for i := 1; i <= 10; i++ {
		got := row(t, pool, fmt.Sprintf("k%d", i))
		if got.String() != fmt.Sprintf("status=ready name=N_%d shard=%d error=\"NULL\" retries=0", i, i%4) {
			t.Fatalf("row k%d: %s", i, got)
		}
	}
	if marked, _ := markAll(t, c, q); marked != 0 {
		t.Fatalf("second run marked %d rows", marked)
	}
	assertCounts(t, c, catalog.Counts{Ready: 10})
}

// TestMarkSelectsOnlyUnnamedOldUnownedRows covers which rows a batch takes.
func TestMarkSelectsOnlyUnnamedOldUnownedRows(t *testing.T) {
	testworld.ForEachDialect(t, testMarkSelectsOnlyUnnamedOldUnownedRows)
}

func testMarkSelectsOnlyUnnamedOldUnownedRows(t *testing.T, d catalog.Driver) {
	cases := []struct {
		name     string
		insert   string        // values for (source_key, status, des_name, des_retries)
		age      time.Duration // of created_at
		wantName bool
	}{
		{"new unnamed row older than minAge", `'k', 'new', NULL, 0`, 10 * time.Minute, true},
		{"row without a status", `'k', NULL, NULL, 0`, 10 * time.Minute, true},
		{"row younger than minAge", `'k', 'new', NULL, 0`, time.Minute, false},
		{"row created in the future", `'k', 'new', NULL, 0`, -time.Minute, false},
		{"named row", `'k', 'ready', 'OTHER', 0`, time.Hour, false},
		{"unnamed claimed row (packer's)", `'k', 'claimed', NULL, 0`, time.Hour, false},
		{"unnamed packed row (packer's)", `'k', 'packed', NULL, 0`, time.Hour, false},
		{"failed row below the retry limit", `'k', 'failed', NULL, 2`, time.Hour, true},
		{"failed row at the retry limit", `'k', 'failed', NULL, 3`, time.Hour, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, pool := newUnnamedCatalog(t, d)
			mustExec(t, pool, `INSERT INTO objects (source_key, status, des_name, des_retries, created_at) VALUES (`+tc.insert+`, `+pool.Ago(tc.age)+`)`)
			before := row(t, pool, "k")
			marked, _ := markAll(t, c, catalog.MarkQuery{Limit: 10, MinAge: 5 * time.Minute, MaxRetries: 3})
			after := row(t, pool, "k")
			if tc.wantName {
				if marked != 1 || after.Name == nil || *after.Name != "N_1" || *after.Status != "ready" || after.Error != nil {
					t.Fatalf("marked %d; row %s, want named and ready", marked, after)
				}
				return
			}
			if marked != 0 || after.String() != before.String() {
				t.Fatalf("marked %d; row changed from %s to %s", marked, before, after)
			}
		})
	}
}

// TestMarkFailuresAreRetriedUpToTheLimit refuses some rows with a check constraint: they go to failed with
// the error and a retry count, one retry per run, until the limit; the other rows of their batches are named.
func TestMarkFailuresAreRetriedUpToTheLimit(t *testing.T) {
	testworld.ForEachDialect(t, testMarkFailuresAreRetriedUpToTheLimit)
}

func testMarkFailuresAreRetriedUpToTheLimit(t *testing.T, d catalog.Driver) {
	c, pool := newUnnamedCatalog(t, d)
	insertKeys(t, pool, 9, func(i int) string {
		if i%3 == 0 {
			return fmt.Sprintf("bad/%d", i)
		}
		return fmt.Sprintf("good/%d", i)
	})
	mustExec(t, pool, `ALTER TABLE objects ADD CONSTRAINT no_bad_names CHECK (des_name IS NULL OR source_key NOT LIKE 'bad/%')`)
	q := catalog.MarkQuery{Limit: 5, MaxRetries: 2}
	runs := []struct {
		wantMarked, wantFailed int64
		wantRetries            int
	}{
		{6, 3, 1}, // the good rows are named despite sharing batches with bad ones
		{0, 3, 2}, // retried once per run
		{0, 0, 2}, // at the limit: left failed
	}
	for i, r := range runs {
		marked, failed := markAll(t, c, q)
		if marked != r.wantMarked || failed != r.wantFailed {
			t.Fatalf("run %d: marked %d failed %d, want %d and %d", i+1, marked, failed, r.wantMarked, r.wantFailed)
		}
		got := row(t, pool, "bad/3")
		if *got.Status != "failed" || got.Name != nil || got.Retries != r.wantRetries ||
			got.Error == nil || !strings.Contains(*got.Error, "no_bad_names") {
			t.Fatalf("run %d: bad row %s, want failed, unnamed, %d retries, the constraint's error", i+1, got, r.wantRetries)
		}
	}
	assertCounts(t, c, catalog.Counts{Unnamed: 3, Ready: 6})

	// Once the cause is fixed and the limit raised, the next run names them and clears the error.
	mustExec(t, pool, `ALTER TABLE objects DROP CONSTRAINT no_bad_names`)
	if marked, failed := markAll(t, c, catalog.MarkQuery{Limit: 5, MaxRetries: 5}); marked != 3 || failed != 0 {
		t.Fatalf("run after the fix: marked %d failed %d", marked, failed)
	}
	if got := row(t, pool, "bad/6"); got.String() != `status=ready name=N_6 shard=2 error="NULL" retries=2` {
		t.Fatalf("retried row: %s", got)
	}
}

func TestMarkRollsBackWhenAssignFails(t *testing.T) {
	testworld.ForEachDialect(t, testMarkRollsBackWhenAssignFails)
}

func testMarkRollsBackWhenAssignFails(t *testing.T, d catalog.Driver) {
	c, pool := newUnnamedCatalog(t, d)
	insertKeys(t, pool, 5, kN)
	boom := errors.New("lease lost")
	_, err := c.Mark(context.Background(), catalog.MarkQuery{AfterID: catalog.FirstID, Limit: 5},
		func([]int64) ([]catalog.Assignment, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Mark = %v, want the assign error", err)
	}
	assertCounts(t, c, catalog.Counts{Unnamed: 5})
}

// TestConcurrentMarksAreDisjoint: SKIP LOCKED gives concurrent batches disjoint rows, and the guard keeps
// any row from being named twice.
func TestConcurrentMarksAreDisjoint(t *testing.T) {
	testworld.ForEachDialect(t, testConcurrentMarksAreDisjoint)
}

func testConcurrentMarksAreDisjoint(t *testing.T, d catalog.Driver) {
	c, pool := newUnnamedCatalog(t, d)
	const rows = 2000
	insertKeys(t, pool, rows, kN)
	var total atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			q := catalog.MarkQuery{AfterID: catalog.FirstID, Limit: 37, MaxRetries: 1}
			for {
				res, err := c.Mark(context.Background(), q, nameByID)
				if err != nil {
					t.Error(err)
					return
				}
				if res.Selected == 0 {
					return
				}
				total.Add(res.Marked)
				q.AfterID = res.LastID
			}
		})
	}
	wg.Wait()
	if total.Load() != rows {
		t.Fatalf("markers report %d rows marked, want %d", total.Load(), rows)
	}
	assertCounts(t, c, catalog.Counts{Ready: rows})
}
