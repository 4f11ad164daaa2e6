package packer_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/packer"
	"github.com/datavision/des/test/testworld"
)

// TestRemainderWaitsForTheFillPolicy: the packer fills containers while the shard's ready rows fill
// one, and leaves a remainder below minFiles for a later run instead of packing it into a small
// container; once that remainder's oldest row has waited maxWait, a run packs it. A shard below the
// policy from the start gets no container at all.
func TestRemainderWaitsForTheFillPolicy(t *testing.T) {
	testworld.ForEachDialect(t, testRemainderWaitsForTheFillPolicy)
}

func testRemainderWaitsForTheFillPolicy(t *testing.T, d catalog.Driver) {
	limits := desv1.ContainerLimits{MaxFiles: 100, MinFiles: 100, MaxWait: metav1.Duration{Duration: time.Hour}}
	w := newWorld(t, worldOptions{driver: d, shards: []int32{2, 5}, threshold: threshold, limits: limits})
	w.addRows(2, []int64{10, 2000}, 250, nil)
	w.addRows(5, []int64{10}, 40, nil)

	if err := w.packer("pod-a", nil, packer.Tuning{}).Run(w.ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := len(w.containers()); got != 2 {
		t.Errorf("%d DesContainers, want 2 full ones of shard 2", got)
	}
	if n := w.counts(); n.Packed != 200 || n.Ready != 90 {
		t.Errorf("rows after the first run: %+v, want 200 packed and 90 ready (50 of shard 2, 40 of shard 5)", n)
	}

	// An hour later the remainders have waited maxWait: both are packed.
	w.exec(`UPDATE objects SET created_at = created_at - INTERVAL '61' MINUTE WHERE status = 'ready'`) // both dialects' syntax
	if err := w.packer("pod-b", nil, packer.Tuning{}).Run(w.ctx); err != nil {
		t.Fatalf("second Run: %v", err)
	}
	if got := w.check(nil); got != 4 {
		t.Errorf("%d committed containers after maxWait, want 4", got)
	}
	if n := w.counts(); n.Packed != 290 || n.Ready != 0 {
		t.Errorf("rows after the second run: %+v, want all 290 packed", n)
	}
}
