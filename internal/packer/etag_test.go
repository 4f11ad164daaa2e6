package packer_test

import (
	"testing"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/packer"
)

// TestCommitRecordsSourceETags: every committed row carries the ETag of its source object as the
// packer fetched it, whether it was fetched ahead (small), streamed into the container (larger than
// the prefetch share) or streamed into its own big-payload object: source deletion deletes only that
// version.
func TestCommitRecordsSourceETags(t *testing.T) {
	w := newWorld(t, worldOptions{shards: []int32{2}, threshold: threshold, limits: desv1.ContainerLimits{MaxFiles: 100}})
	// 0 and 4096 are fetched ahead; 100000 is streamed (above a quarter of the 256 KiB prefetch
	// budget); 300000 goes to _bigFiles/.
	w.addRows(2, []int64{0, 4096, 100000, 300000}, 12, nil)
	if err := w.packer("pod-a", nil, packer.Tuning{PrefetchBytes: 256 << 10}).Run(w.ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	w.check(nil)
	rows, err := w.pool.Query(w.ctx, `SELECT source_key, coalesce(des_source_etag, '') FROM objects`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var key, etag string
		if err := rows.Scan(&key, &etag); err != nil {
			t.Fatal(err)
		}
		info, err := w.store.Head(w.ctx, w.source, key)
		if err != nil {
			t.Fatal(err)
		}
		if etag == "" || etag != info.ETag {
			t.Errorf("row of %s records ETag %q, the source object has %q", key, etag, info.ETag)
		}
		n++
	}
	if err := rows.Err(); err != nil || n != 12 {
		t.Fatalf("%d rows checked (%v), want 12", n, err)
	}
}
