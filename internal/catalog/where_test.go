package catalog_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/test/testworld"
)

// TestSourceFilterLimitsWhatDESTakes: with a source filter and custom status values, the marker
// names, the claims take, the fill policy sums, the retry step returns and the counts count only
// the matching rows, on both databases; the other rows are left exactly as they were.
func TestSourceFilterLimitsWhatDESTakes(t *testing.T) { testworld.ForEachDialect(t, testSourceFilter) }

func testSourceFilter(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	db := testworld.NewCatalogDB(t, d)
	db.CreateObjects(t, testworld.ObjectsTable{StatusDefault: "NEW", CreatedAgo: time.Hour})
	// Rows 1–8: keys in/ and out/ alternately, sizes 10, 20, … 80.
	var rows []testworld.ObjectRow
	for i := 1; i <= 8; i++ {
		dir := "in"
		if i%2 == 0 {
			dir = "out"
		}
		rows = append(rows, testworld.ObjectRow{Key: fmt.Sprintf("%s/%d", dir, i), Size: int64(10 * i)})
	}
	db.InsertObjects(t, "", rows)
	m := catalog.DefaultMapping("objects", "source-bucket")
	m.Ready, m.Claimed, m.Packed, m.Failed = "R", "C", "P", "F"
	m.Where = "source_key LIKE 'in/%' AND size < 70 AND created_at < '2999-01-01'"
	c := db.NewCatalog(t, m)
	if err := c.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	// The marker names rows 1, 3, 5 (7 is too big; even rows are out/).
	marked, _ := markAll(t, c, catalog.MarkQuery{Limit: 2, MaxRetries: 3})
	if marked != 3 {
		t.Fatalf("marked %d rows, want 3", marked)
	}
	if got := names(t, db); !slices.Equal(got, []string{"1=N_1", "3=N_3", "5=N_5"}) {
		t.Fatalf("named rows %v", got)
	}
	// Rows outside the filter that someone else made ready are not DES's either.
	db.Exec(t, `UPDATE objects SET status = 'R', des_name = CONCAT('X_', id), shard = 1 WHERE id IN (2, 7)`)
	fill, err := c.FillByShard(ctx, []int32{0, 1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(fill) != 2 || fill[1].Rows != 2 || fill[1].Bytes != 60 || fill[3].Rows != 1 || fill[3].Bytes != 30 {
		t.Fatalf("fill = %+v, want only rows 1 (shard 1), 3 (shard 3) and 5 (shard 1)", fill)
	}
	claimed, err := c.Claim(ctx, 1, "c1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 2 || claimed[0].ID != 1 || claimed[1].ID != 5 {
		t.Fatalf("claim took %+v, want rows 1 and 5", claimed)
	}
	assertCounts(t, c, catalog.Counts{Ready: 1, Claimed: 2})

	// A failure of a matching row is retried; the status values are the source's own.
	if ok, err := c.MarkFailed(ctx, "c1", 5, "503"); err != nil || !ok {
		t.Fatalf("mark failed: %v", err)
	}
	var status string
	db.QueryRow(t, `SELECT status FROM objects WHERE id = 5`, nil, &status)
	if status != "F" {
		t.Fatalf("failed row has status %q, want F", status)
	}
	db.Exec(t, `UPDATE objects SET status = 'F', des_retries = 1 WHERE id = 2`) // outside the filter
	if n, err := c.RetryFailed(ctx, catalog.RetryPolicy{MaxRetries: 3, MaxBackoff: time.Hour, Batch: 10}); err != nil || n != 1 {
		t.Fatalf("retry moved %d rows (%v), want only row 5", n, err)
	}
	if err := c.Commit(ctx, record("c1", claimed[:1])); err != nil {
		t.Fatal(err)
	}
	assertCounts(t, c, catalog.Counts{Ready: 2, Packed: 1})
	db.QueryRow(t, `SELECT status FROM objects WHERE id = 2`, nil, &status)
	if status != "F" {
		t.Fatalf("row 2, outside the filter, has status %q, want it left F", status)
	}
}

// names lists the named rows as "id=name".
func names(t *testing.T, db *testworld.CatalogDB) []string {
	t.Helper()
	var out []string
	db.Query(t, `SELECT id, des_name FROM objects WHERE des_name IS NOT NULL ORDER BY id`, nil, func(r *sql.Rows) error {
		var id int64
		var name string
		err := r.Scan(&id, &name)
		out = append(out, fmt.Sprintf("%d=%s", id, name))
		return err
	})
	return out
}

func TestMappingRefusesABadFilter(t *testing.T) {
	m := catalog.DefaultMapping("objects", "b")
	m.Where = "status = 'ready'"
	if _, err := catalog.New(nil, m); !errors.Is(err, catalog.ErrInvalidWhere) {
		t.Fatalf("New with a filter on the status column: %v, want ErrInvalidWhere", err)
	}
}
