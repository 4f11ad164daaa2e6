package controllers

import (
	"slices"
	"testing"
	"time"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/protocol"
)

// TestShardStatusAndSweep: a run reports pending rows and containers per phase, and removes the
// archive debris no container accounts for while leaving the live container's upload alone.
func TestShardStatusAndSweep(t *testing.T) {
	w := newCrashWorld(t, desv1.PhaseWriting)
	mustExec(t, w.pool, `INSERT INTO objects (source_key, size, status, des_name, shard) VALUES ('x', 1, 'ready', 'N_x', $1), ('y', 1, 'ready', 'N_y', $1)`, crashShard)

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
	if !slices.Equal(keys, []string{otherShard}) {
		t.Errorf("objects after the sweep: %v, want only %s", keys, otherShard)
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
