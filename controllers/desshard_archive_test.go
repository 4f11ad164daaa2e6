package controllers

import (
	"fmt"
	"slices"
	"testing"
	"time"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/protocol"
)

// TestShardStatusAndSweep: a run reports pending rows and containers per phase, and removes the
// archive debris no container accounts for while leaving the live container's upload alone, and
// committed containers of either layout (protocol.ContainerKey, protocol.LegacyContainerKey) with
// their big payloads.
func TestShardStatusAndSweep(t *testing.T) {
	w := newCrashWorld(t, desv1.PhaseWriting)
	w.db.Exec(t, `INSERT INTO objects (source_key, size, status, des_name, shard) VALUES ('x', 1, 'ready', 'N_x', $1), ('y', 1, 'ready', 'N_y', $1)`, crashShard)

	liveUpload := w.store.NewUploader(w.ctx, w.bucket, w.con.Spec.Key, objstore.UploadOptions{PartSize: objstore.MinPartSize})
	if _, err := liveUpload.Write(make([]byte, objstore.MinPartSize+1)); err != nil {
		t.Fatal(err)
	}
	day := w.clock.Now()
	orphanKey := protocol.ContainerKey("arch", day, crashShard, "c0000000000000001")
	if _, err := w.store.Put(w.ctx, w.bucket, orphanKey, []byte("left by a crashed packer"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	otherShard := protocol.ContainerKey("arch", day, crashShard+1, "c0000000000000002")
	if _, err := w.store.Put(w.ctx, w.bucket, otherShard, []byte("another DesShard's"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// Committed containers, one per layout, each with a big payload under its prefix; and the same
	// left by crashed packers, with no record and no DesContainer.
	put := func(key string) {
		t.Helper()
		if _, err := w.store.Put(w.ctx, w.bucket, key, []byte("payload of "+key), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var kept, swept []string
	for i, layout := range []func(string, time.Time, int32, string) string{protocol.ContainerKey, protocol.LegacyContainerKey} {
		committed, orphan := fmt.Sprintf("c00000000000001%d0", i), fmt.Sprintf("c00000000000001%d1", i)
		key := layout("arch", day, crashShard, committed)
		w.db.Exec(t, `INSERT INTO des_containers (key, container, bucket, source, shard, day, files, bytes, object_size,
			payload_checksum, index_checksum, writer) VALUES ($1, $2, $3, 'src', $4, now(), 1, 1, 1, 'x', 'y', 'packer-pod-0')`,
			key, protocol.ContainerName("daily", committed), w.bucket, crashShard)
		kept = append(kept, key, protocol.BigFilesPrefix(key)+"N_big")
		orphanKey := layout("arch", day, crashShard, orphan)
		swept = append(swept, orphanKey, protocol.BigFilesPrefix(orphanKey)+"N_big")
	}
	swept = append(swept, protocol.BigFilesPrefix(protocol.ContainerKey("arch", day, crashShard, "c0000000000000130"))+"N_only_big")
	for _, k := range append(slices.Clone(kept), swept...) {
		put(k)
	}
	orphanUpload := w.store.NewUploader(w.ctx, w.bucket, protocol.ContainerKey("arch", day, crashShard, "c0000000000000003"), objstore.UploadOptions{PartSize: objstore.MinPartSize})
	if _, err := orphanUpload.Write(make([]byte, objstore.MinPartSize+1)); err != nil {
		t.Fatal(err)
	}

	w.clock.Step(90 * time.Minute) // everything above is now older than the sweep's grace of an hour
	w.reconcile(w.shardReconciler(), "daily")

	var keys, uploads []string
	for o, err := range w.store.List(w.ctx, w.bucket, objstore.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, o.Key)
	}
	for u, err := range w.store.ListMultipartUploads(w.ctx, w.bucket, "") {
		if err != nil {
			t.Fatal(err)
		}
		uploads = append(uploads, u.Key)
	}
	wantKeys := append([]string{otherShard}, kept...)
	slices.Sort(wantKeys)
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("objects after the sweep:\n%v\nwant\n%v\n(swept: %v)", keys, wantKeys, swept)
	}
	if !slices.Equal(uploads, []string{w.con.Spec.Key}) {
		t.Errorf("uploads after the sweep: %v, want only the live container's", uploads)
	}

	ds := &desv1.DesShard{}
	ds.Namespace, ds.Name = w.ns, "daily"
	w.get(ds)
	t.Logf("conditions: %+v", ds.Status.Conditions)
	if ds.Status.Containers[string(desv1.PhaseWriting)] != 1 {
		t.Errorf("containers by phase = %v", ds.Status.Containers)
	}
	if len(ds.Status.Shards) != 1 || ds.Status.Shards[0].ID != crashShard || ds.Status.Shards[0].PendingRows != 2 {
		t.Errorf("shard status = %+v, want shard %d with 2 pending rows", ds.Status.Shards, crashShard)
	}
}
