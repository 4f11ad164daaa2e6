package catalog_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/test/testworld"
)

// BenchmarkClaimAndCommit measures the catalog's share of packing on each database: one claim of
// rows rows into a new container and the commit of all of them with their placements (the two
// transactions a packer runs per container), then a reset of the rows to ready outside the timer.
// rows/s compares the dialects in the same run.
func BenchmarkClaimAndCommit(b *testing.B) {
	const rows = 5000
	for _, d := range testworld.Dialects {
		b.Run(string(d), func(b *testing.B) {
			ctx := context.Background()
			db := testworld.NewCatalogDB(b, d)
			db.CreateObjects(b, testworld.ObjectsTable{})
			objs := make([]testworld.ObjectRow, rows)
			for i := range objs {
				objs[i] = testworld.ObjectRow{Key: fmt.Sprintf("src/%d", i), Size: 4096, Status: "ready",
					Name: fmt.Sprintf("N_%d", i+1), Shard: testworld.Shard(0)}
			}
			db.InsertObjects(b, "", objs)
			c := db.NewCatalog(b, catalog.DefaultMapping("objects", "source-bucket"))
			if err := c.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				name := fmt.Sprintf("bench-%d", i)
				claimed, err := c.Claim(ctx, 0, name, rows)
				if err != nil || len(claimed) != rows {
					b.Fatalf("claimed %d rows: %v", len(claimed), err)
				}
				if err := c.Commit(ctx, record(name, claimed)); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				db.Exec(b, `UPDATE objects SET status = 'ready', des_container = NULL, des_container_key = NULL`)
				db.Exec(b, `DELETE FROM des_containers`)
				b.StartTimer()
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
