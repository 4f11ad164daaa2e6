package packer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/packer"
	"github.com/datavision/des/internal/packer/lease"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/test/objstoretest"
	"github.com/datavision/des/test/testworld"
)

// fastLease is Lease timing short enough for tests to see renewals and losses.
func fastLease(ns, name, identity string) lease.Options {
	return lease.Options{Namespace: ns, Name: name, Identity: identity,
		Duration: 3 * time.Second, RenewInterval: 300 * time.Millisecond, RenewDeadline: 2 * time.Second}
}

func TestLeaseOnlyOneOfManyWins(t *testing.T) {
	kube := testworld.K8s(t)
	ns := kube.NewNamespace(t)
	var mu sync.Mutex
	var won []*lease.Held
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			h, err := lease.Acquire(context.Background(), kube.Client, fastLease(ns, "des-ds-0001", fmt.Sprintf("pod-%d", i)))
			switch {
			case err == nil:
				mu.Lock()
				won = append(won, h)
				mu.Unlock()
			case !errors.Is(err, lease.ErrHeld):
				t.Errorf("pod-%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d holders, want exactly 1", len(won))
	}
	if err := won[0].Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Released: the next claimer takes it at once.
	h, err := lease.Acquire(context.Background(), kube.Client, fastLease(ns, "des-ds-0001", "pod-next"))
	if err != nil {
		t.Fatalf("acquire a released Lease: %v", err)
	}
	defer h.Release(context.Background())
}

func TestLeaseTakeoverOnlyWhenExpired(t *testing.T) {
	kube := testworld.K8s(t)
	ns := kube.NewNamespace(t)
	ctx := context.Background()
	first, err := lease.Acquire(ctx, kube.Client, fastLease(ns, "l", "pod-a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lease.Acquire(ctx, kube.Client, fastLease(ns, "l", "pod-b")); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("acquire a fresh Lease: %v, want ErrHeld", err)
	}
	// The holder dies without releasing (its renewals stop); after the duration the Lease is taken over.
	stopRenewing(t, first)
	time.Sleep(3 * time.Second)
	second, err := lease.Acquire(ctx, kube.Client, fastLease(ns, "l", "pod-b"))
	if err != nil {
		t.Fatalf("acquire an expired Lease: %v", err)
	}
	defer second.Release(ctx)
	l := &coordinationv1.Lease{}
	if err := kube.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "l"}, l); err != nil {
		t.Fatal(err)
	}
	if lease.Holder(l) != "pod-b" || ptr.Deref(l.Spec.LeaseTransitions, 0) != 1 {
		t.Errorf("holder %q, transitions %d; want pod-b, 1", lease.Holder(l), ptr.Deref(l.Spec.LeaseTransitions, 0))
	}
}

// stopRenewing makes a holder stop without releasing, as a killed process would.
func stopRenewing(t *testing.T, h *lease.Held) {
	t.Helper()
	// Release on a cancelled context cannot clear the holder; renewals stop all the same.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = h.Release(ctx)
}

func TestLeaseLostWhenAnotherHolderAppears(t *testing.T) {
	kube := testworld.K8s(t)
	ns := kube.NewNamespace(t)
	ctx := context.Background()
	h, err := lease.Acquire(ctx, kube.Client, fastLease(ns, "l", "pod-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release(ctx)
	steal(t, kube.Client, ns, "l", "intruder")
	select {
	case <-h.Context().Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the holder did not notice another holder")
	}
	if err := h.Err(); !errors.Is(err, lease.ErrLost) {
		t.Errorf("cause %v, want ErrLost", err)
	}
}

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
	w := newWorld(t, worldOptions{shards: []int32{9}, threshold: threshold, limits: desv1.ContainerLimits{MaxFiles: 100}})
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
	w := newWorld(t, worldOptions{shards: []int32{5}, threshold: threshold, limits: desv1.ContainerLimits{MaxFiles: 50}})
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
		if !isFinalPhase(c.Status.Phase) {
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
