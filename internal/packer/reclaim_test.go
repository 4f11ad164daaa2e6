package packer_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/packer"
	"github.com/datavision/des/test/testworld"
)

// setDeleteSource changes the world's DesSource.spec.deleteSource (the packer reads it at its start).
func (w *world) setDeleteSource(d desv1.DeleteSource) {
	w.t.Helper()
	src := &desv1.DesSource{}
	if err := w.kube.Get(w.ctx, client.ObjectKeyFromObject(w.src), src); err != nil {
		w.t.Fatal(err)
	}
	src.Spec.DeleteSource = d
	if err := w.kube.Update(w.ctx, src); err != nil {
		w.t.Fatal(err)
	}
}

var deleteNow = desv1.DeleteSource{Policy: desv1.DeleteAfterVerify, Check: desv1.CheckHead, DeletesPerSecond: 100000}

// checkSources checks what verified deletion promises at any instant: a source object is missing only
// if its row is packed in a committed container whose copy reads back byte-exact, and a row recorded
// as deleted has no source object. It returns how many source objects are gone.
func (w *world) checkSources() (gone int) {
	w.t.Helper()
	t, ctx := w.t, w.ctx
	key := "c." + w.ident("key")
	type row struct {
		name, key, status, refused, container, external string
		deleted, committed                              bool
		off, length                                     int64
	}
	var all []row
	w.query(`SELECT o.des_name, o.source_key, o.status, o.des_source_deleted_at IS NOT NULL,
		coalesce(o.des_source_refused, ''), coalesce(o.des_container_key, ''), coalesce(o.des_offset, -1), coalesce(o.des_length, -1),
		coalesce(o.des_external_key, ''), `+key+` IS NOT NULL
		FROM objects o LEFT JOIN des_containers c ON `+key+` = o.des_container_key`, nil, func(rows *sql.Rows) error {
		var r row
		if err := rows.Scan(&r.name, &r.key, &r.status, &r.deleted, &r.refused, &r.container, &r.off, &r.length, &r.external, &r.committed); err != nil {
			return err
		}
		all = append(all, r)
		return nil
	})
	for _, r := range all {
		_, err := w.store.Head(ctx, w.source, r.key)
		missing := objstoreNotFound(err)
		if err != nil && !missing {
			t.Fatal(err)
		}
		if r.deleted && !missing {
			t.Errorf("row %s is recorded deleted but its source object exists", r.name)
		}
		if !missing {
			continue
		}
		gone++
		if r.status != "packed" || !r.committed || r.refused != "" {
			t.Errorf("source of %s is gone, but its row is %s (committed container: %v, refused %q)", r.name, r.status, r.committed, r.refused)
			continue
		}
		var got []byte
		if r.external != "" {
			got = w.readAll(r.external, nil)
		} else {
			got = w.readAll(r.container, &objstore.Range{Off: r.off, Len: r.length})
		}
		if !bytes.Equal(got, w.content[r.name]) {
			t.Errorf("source of %s is gone and its archived copy differs (%d bytes, want %d)", r.name, len(got), len(w.content[r.name]))
		}
	}
	return gone
}

// readAll reads an archive object, or the range of it (an empty range reads nothing).
func (w *world) readAll(key string, rng *objstore.Range) []byte {
	w.t.Helper()
	if rng != nil && rng.Len == 0 {
		return []byte{}
	}
	body, _, err := w.store.Get(w.ctx, w.bucket, key, rng)
	if err != nil {
		w.t.Fatal(err)
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

func objstoreNotFound(err error) bool { return errors.Is(err, objstore.ErrNotFound) }

// TestPackerDeletesVerifiedSources: with spec.deleteSource AfterVerify, a packer run packs its
// shards and then deletes their source objects, each after its copy was read back; an object
// overwritten after it was packed is kept and its row says why; with a delay, nothing is deleted
// before it has passed; a dry run deletes nothing.
func TestPackerDeletesVerifiedSources(t *testing.T) {
	testworld.ForEachDialect(t, testPackerDeletesVerifiedSources)
}

func testPackerDeletesVerifiedSources(t *testing.T, d catalog.Driver) {
	w := newWorld(t, worldOptions{driver: d, shards: []int32{4}, threshold: 64 << 10, limits: desv1.ContainerLimits{MaxFiles: 60}})
	w.addRows(4, []int64{0, 10, 4000, 70000}, 150, nil)

	// A delay of an hour: the run packs and deletes nothing.
	w.setDeleteSource(desv1.DeleteSource{Policy: desv1.DeleteAfterVerify, Delay: metav1.Duration{Duration: time.Hour}, Check: desv1.CheckHead})
	if err := w.packer("pod-a", nil, packer.Tuning{}).Run(w.ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if gone := w.checkSources(); gone != 0 {
		t.Fatalf("%d sources deleted before the delay passed", gone)
	}
	// Overwritten after it was packed: the next pass must keep it.
	if _, err := w.store.Put(w.ctx, w.source, "src/4/DES_04_000002_4000.bin", []byte("a newer version"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	dry := deleteNow
	dry.DryRun = true
	w.setDeleteSource(dry)
	if err := w.packer("pod-b", nil, packer.Tuning{}).Run(w.ctx); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if gone := w.checkSources(); gone != 0 {
		t.Fatalf("a dry run deleted %d sources", gone)
	}

	w.setDeleteSource(deleteNow)
	if err := w.packer("pod-c", nil, packer.Tuning{}).Run(w.ctx); err != nil {
		t.Fatalf("Run with deletion: %v", err)
	}
	if gone := w.checkSources(); gone != 149 {
		t.Errorf("%d sources deleted, want 149 (all but the overwritten one)", gone)
	}
	var refused string
	w.db.QueryRow(t, `SELECT coalesce(des_source_refused, '') FROM objects WHERE des_name = 'DES_04_000002_4000.bin'`, nil, &refused)
	if refused == "" {
		t.Error("the overwritten source's row has no refusal reason")
	}
	t.Logf("refusal: %s", refused)
	if n := w.counts(); n.SourcesDeleted != 149 || n.SourcesRefused != 1 || n.SourcesWaiting != 0 {
		t.Errorf("counts %+v, want 149 deleted, 1 refused, 0 waiting", n)
	}
	w.check(nil) // every file still reads back from its committed container
}

// reclaimKillPlan picks an instant of a deletion pass to SIGKILL the packer at: its source HEADs, its
// read-back GETs of the archive, its DeleteObjects requests (before the store acts, or after it acted
// and before the packer hears), or a time.
func reclaimKillPlan(rng *rand.Rand, i int) killPoint {
	switch i % 6 {
	case 0:
		return killPoint{phase: "check", op: "source-head", nth: 1 + rng.IntN(150)}
	case 1:
		return killPoint{phase: "read-back", op: "archive-get", nth: 1 + rng.IntN(6)}
	case 2:
		return killPoint{phase: "delete", op: "delete-objects", nth: 1 + rng.IntN(2)}
	case 3, 4:
		return killPoint{phase: "delete", op: "delete-objects", nth: 1 + rng.IntN(2), after: true, delay: time.Duration(rng.IntN(20)) * time.Millisecond}
	}
	return killPoint{phase: "any", op: "time", delay: time.Duration(50+rng.IntN(400)) * time.Millisecond} // a pass takes about half a second
}

// TestKillDuringSourceDeletion SIGKILLs packer processes at random instants of their deletion passes,
// with new rows packed between the kills, and one source overwritten between its fetch and its
// deletion. After every kill, no source object is missing unless its file reads back byte-exact from
// a committed container; at the end every source is deleted but the overwritten one, which is kept and
// refused, and every file reads back byte-exact.
func TestKillDuringSourceDeletion(t *testing.T) {
	testworld.ForEachDialect(t, testKillDuringSourceDeletion)
}

func testKillDuringSourceDeletion(t *testing.T, d catalog.Driver) {
	kills := 10
	if testing.Short() {
		kills = 5
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 11))
	t.Logf("seed %d", seed)

	w, proxy, dir := newKillWorld(t, d, 100)
	sizes := []int64{0, 1000, 30000, 70000, 65535, 5}
	overwritten := ""

	outcomes := map[string]int{}
	done := 0
	for run := 0; done < kills && run < 3*kills; run++ {
		// New work for the pass: rows packed by a packer that keeps their sources.
		w.setDeleteSource(desv1.DeleteSource{Policy: desv1.DeleteNever})
		names := w.addRows(int32(run%2), sizes, 120, nil)
		if err := w.packer(fmt.Sprintf("pod-pack-%d", run), nil, packer.Tuning{}).Run(w.ctx); err != nil {
			t.Fatalf("pack: %v", err)
		}
		if overwritten == "" {
			overwritten = names[2]
			key := fmt.Sprintf("src/%d/%s", run%2, overwritten)
			if _, err := w.store.Put(w.ctx, w.source, key, []byte("overwritten after its fetch"), objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		w.setDeleteSource(deleteNow)
		p := reclaimKillPlan(rng, run) // by run: a point a pass did not reach is not tried again
		killed, fired, logFile := runChild(t, w, proxy, dir, fmt.Sprintf("pod-%d", run), &p)
		gone := w.checkSources()
		if !killed {
			t.Logf("run %d (%s): the packer finished before the kill point (%d sources gone)", run, p, gone)
			continue
		}
		done++
		outcomes[p.phase]++
		t.Logf("kill %d at %s (request %s): %d sources gone; log %s", done, p, fired, gone, logFile)
		w.expireLeases()
	}
	if done < kills {
		t.Errorf("only %d kills happened, want %d", done, kills)
	}
	proxy.arm(killPoint{op: "never"}, nil)
	runChild(t, w, proxy, dir, "pod-final", nil)
	n := w.counts()
	gone := w.checkSources()
	total := int(n.Packed)
	if gone != total-1 || n.SourcesDeleted != int64(total-1) || n.SourcesRefused != 1 || n.SourcesWaiting != 0 {
		t.Errorf("at the end %d of %d sources are gone, counts %+v; want all but the overwritten one deleted and it refused", gone, total, n)
	}
	w.check(nil)
	t.Logf("%d kills %v; %d files, %d sources deleted, %d refused", done, outcomes, total, n.SourcesDeleted, n.SourcesRefused)
}
