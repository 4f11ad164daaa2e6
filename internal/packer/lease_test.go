package packer_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/lease"
	"github.com/datavision/des/internal/packer"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/test/objstoretest"
	"github.com/datavision/des/test/testworld"
)

// The Lease itself (one winner, take-over only when expired, every way of losing it) is tested in
// internal/lease; these tests check what the packer does with it.

func steal(t *testing.T, c client.Client, ns, name, holder string) {
	t.Helper()
	l := &coordinationv1.Lease{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, l); err != nil {
		t.Fatal(err)
	}
	l.Spec.HolderIdentity = ptr.To(holder)
	if err := c.Update(context.Background(), l); err != nil {
		t.Fatal(err)
	}
}

// Two packers racing for one shard: one holds the Lease and packs, the other skips the shard (or, if
// it comes after the first released the Lease, finds nothing left); no row is claimed twice.
func TestTwoPackersRaceForOneShard(t *testing.T) {
	testworld.ForEachDialect(t, testTwoPackersRaceForOneShard)
}

func testTwoPackersRaceForOneShard(t *testing.T, d catalog.Driver) {
	w := newWorld(t, worldOptions{driver: d, shards: []int32{9}, threshold: threshold, limits: desv1.ContainerLimits{MaxFiles: 100}})
	w.countClaims()
	w.addRows(9, []int64{100, 5000, 20000}, 600, nil)
	metrics := map[string]*packer.Metrics{"pod-a": packer.NewMetrics(nil), "pod-b": packer.NewMetrics(nil)}
	var wg sync.WaitGroup
	for id, m := range metrics {
		wg.Go(func() {
			if err := w.packerWith(id, nil, packer.Tuning{}, m).Run(w.ctx); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		})
	}
	wg.Wait()
	w.check(nil)
	w.checkClaimedOnce()
	pods := map[string]int{}
	for _, c := range w.containers() {
		pods[c.Status.Pod]++
	}
	if len(pods) != 1 {
		t.Errorf("containers written by %v, want one packer", pods)
	}
	skipped := counterValue(t, metrics["pod-a"].ShardsSkipped) + counterValue(t, metrics["pod-b"].ShardsSkipped)
	t.Logf("containers by pod %v, shards skipped %v", pods, skipped)
}

// A packer whose Lease is taken away stops at once: it commits nothing more, aborts its upload and
// leaves the open container to recovery, which rolls it back; a fresh packer then packs everything.
func TestLeaseLostStopsThePackerAtOnce(t *testing.T) {
	testworld.ForEachDialect(t, testLeaseLostStopsThePackerAtOnce)
}

func testLeaseLostStopsThePackerAtOnce(t *testing.T, d catalog.Driver) {
	w := newWorld(t, worldOptions{driver: d, shards: []int32{5}, threshold: threshold, limits: desv1.ContainerLimits{MaxFiles: 50}})
	w.addRows(5, []int64{3000}, 400, nil)
	// The 75th source GET (inside the second container) hangs until the Lease is lost, so the steal
	// below always finds the packer writing that container, never between containers or committing.
	slow := objstoretest.Wrap(w.store.API()).
		Add(objstoretest.Rule{Op: "GetObject", Delay: 5 * time.Millisecond}).
		Add(objstoretest.Rule{Op: "GetObject", Nth: 75, Delay: 5 * time.Minute})
	tune := packer.Tuning{Window: 2, LeaseDuration: 3 * time.Second, LeaseRenewInterval: 200 * time.Millisecond, LeaseRenewDeadline: 2 * time.Second}
	var runErr error
	var wg sync.WaitGroup
	wg.Go(func() { runErr = w.packer("pod-a", slow, tune).Run(w.ctx) })
	waitFor(t, func() bool { return w.counts().Packed >= 50 && slow.Calls("GetObject") >= 75 })
	steal(t, w.kube, w.ns, protocol.LeaseName("ds", 5), "intruder")
	wg.Wait()
	if !errors.Is(runErr, lease.ErrLost) {
		t.Fatalf("Run: %v, want ErrLost", runErr)
	}
	open := 0
	for _, c := range w.containers() {
		if !c.Status.Phase.IsFinal() {
			open++
		}
	}
	if open != 1 {
		t.Errorf("%d unfinished containers, want the one being written: %v", open, phases(w.containers()))
	}
	if n := w.counts(); n.Claimed == 0 {
		t.Errorf("no rows left claimed: the packer should leave its container to recovery (%+v)", n)
	}
	w.expireLeases()
	if fwd, back := recoverAll(t, w); fwd != 0 || back != 1 {
		t.Errorf("recovery rolled %d forward and %d back, want 0 and 1", fwd, back)
	}
	if err := w.packer("pod-b", nil, packer.Tuning{}).Run(w.ctx); err != nil {
		t.Fatal(err)
	}
	w.check(nil)
}

// TestPackerTakesOverALeaseItSawUnchanged: a packer died holding a shard Lease whose renewTime its
// clock put ten minutes ahead. Judged by renewTime the Lease is held for ten more minutes; the next
// packer watches it instead, sees it unchanged for a whole Lease duration on its own clock, takes it
// over and packs the shard.
func TestPackerTakesOverALeaseItSawUnchanged(t *testing.T) {
	testworld.ForEachDialect(t, testPackerTakesOverALeaseItSawUnchanged)
}

func testPackerTakesOverALeaseItSawUnchanged(t *testing.T, d catalog.Driver) {
	w := newWorld(t, worldOptions{driver: d, shards: []int32{5}, threshold: threshold})
	w.addRows(5, []int64{1000}, 20, nil)
	future := metav1.NewMicroTime(time.Now().Add(10 * time.Minute))
	w.create(&coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: protocol.LeaseName(w.ds.Name, 5), Namespace: w.ns,
			Labels: map[string]string{protocol.LabelDesShard: w.ds.Name, protocol.LabelShard: "5"}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("ghost"), LeaseDurationSeconds: ptr.To(int32(2)),
			AcquireTime: &future, RenewTime: &future},
	})
	tune := packer.Tuning{LeaseDuration: 2 * time.Second, LeaseRenewInterval: 500 * time.Millisecond, LeaseRenewDeadline: 1500 * time.Millisecond}
	start := time.Now()
	if err := w.packer("pod-a", nil, tune).Run(w.ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := w.counts(); n.Packed != 20 {
		t.Fatalf("rows after the run: %+v, want all 20 packed (the dead holder's Lease taken over)", n)
	}
	if waited := time.Since(start); waited < 2*time.Second {
		t.Fatalf("the Lease was taken over after %s, before a whole Lease duration of watching", waited)
	}
	w.check(nil)
}
