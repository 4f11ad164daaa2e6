package catalog_test

import (
	"context"
	"testing"
	"time"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/fill"
	"github.com/datavision/des/test/testworld"
)

// TestFillByShard sums up exactly the rows a claim would take: ready rows of the asked shards, with
// their bytes and oldest creation time; claimed, packed and other shards' rows are left out.
func TestFillByShard(t *testing.T) { testworld.ForEachDialect(t, testFillByShard) }

func testFillByShard(t *testing.T, d catalog.Driver) {
	c, pool := newCatalog(t, d, 0, 1)
	ctx := context.Background()
	old := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	mustExec(t, pool, `INSERT INTO objects (source_key, size, status, des_name, shard, created_at) VALUES
		('a', 10, 'ready', 'N_a', 1, $1), ('b', 20, 'ready', 'N_b', 1, $2),
		('c', 5, 'claimed', 'N_c', 1, $3), ('d', 7, 'packed', 'N_d', 1, $4),
		('e', 1, 'ready', 'N_e', 2, $5), ('f', 3, 'ready', 'N_f', 3, $6)`,
		old, old.Add(time.Hour), old.Add(-24*time.Hour), old.Add(-24*time.Hour), old, old)
	got, err := c.FillByShard(ctx, []int32{1, 2, 4})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]fill.Stats{1: {Rows: 2, Bytes: 30, Oldest: old}, 2: {Rows: 1, Bytes: 1, Oldest: old}}
	if len(got) != len(want) {
		t.Fatalf("FillByShard = %+v, want %+v", got, want)
	}
	for id, w := range want {
		g := got[id]
		if g.Rows != w.Rows || g.Bytes != w.Bytes || !g.Oldest.Equal(w.Oldest) {
			t.Errorf("shard %d: %+v, want %+v", id, g, w)
		}
	}
}
