package packer_test

import (
	"database/sql"
	"testing"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/packer"
	"github.com/datavision/des/test/testworld"
)

// TestCommitRecordsSourceETags: every committed row carries the ETag of its source object as the
// packer fetched it, whether it was fetched ahead (small), streamed into the container (larger than
// the prefetch share) or streamed into its own big-payload object: source deletion deletes only that
// version.
func TestCommitRecordsSourceETags(t *testing.T) {
	testworld.ForEachDialect(t, testCommitRecordsSourceETags)
}

func testCommitRecordsSourceETags(t *testing.T, d catalog.Driver) {
	w := newWorld(t, worldOptions{driver: d, shards: []int32{2}, threshold: threshold, limits: desv1.ContainerLimits{MaxFiles: 100}})
	// 0 and 4096 are fetched ahead; 100000 is streamed (above a quarter of the 256 KiB prefetch
	// budget); 300000 goes to _bigFiles/.
	w.addRows(2, []int64{0, 4096, 100000, 300000}, 12, nil)
	if err := w.packer("pod-a", nil, packer.Tuning{PrefetchBytes: 256 << 10}).Run(w.ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	w.check(nil)
	n := 0
	w.query(`SELECT source_key, coalesce(des_source_etag, '') FROM objects`, nil, func(rows *sql.Rows) error {
		var key, etag string
		if err := rows.Scan(&key, &etag); err != nil {
			return err
		}
		info, err := w.store.Head(w.ctx, w.source, key)
		if err != nil {
			return err
		}
		if etag == "" || etag != info.ETag {
			t.Errorf("row of %s records ETag %q, the source object has %q", key, etag, info.ETag)
		}
		n++
		return nil
	})
	if n != 12 {
		t.Fatalf("%d rows checked, want 12", n)
	}
}
