package lease_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/datavision/des/internal/lease"
	"github.com/datavision/des/test/testworld"
)

func TestMain(m *testing.M) { testworld.Main(m, testworld.Kube) }

// fast is Lease timing short enough for tests to see renewals and losses.
func fast(ns, name, identity string) lease.Options {
	return lease.Options{Namespace: ns, Name: name, Identity: identity,
		Duration: 3 * time.Second, RenewInterval: 200 * time.Millisecond, RenewDeadline: 2 * time.Second}
}

func acquire(t *testing.T, c client.Client, o lease.Options) *lease.Hold {
	t.Helper()
	h, err := lease.Acquire(context.Background(), c, o)
	if err != nil {
		t.Fatalf("acquire %s as %s: %v", o.Name, o.Identity, err)
	}
	t.Cleanup(func() { _ = h.Release(context.Background()) })
	return h
}

func get(t *testing.T, ns, name string) *coordinationv1.Lease {
	t.Helper()
	l := &coordinationv1.Lease{}
	if err := testworld.K8s(t).Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, l); err != nil {
		t.Fatalf("get lease %s: %v", name, err)
	}
	return l
}

func waitLost(t *testing.T, h *lease.Hold, within time.Duration) {
	t.Helper()
	start := time.Now()
	select {
	case <-h.Lost():
	case <-time.After(within):
		t.Fatalf("hold of %s still valid after %s: %v", h.Name(), within, h.Err())
	}
	if err := h.Err(); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("lost hold: Err = %v, want ErrLost", err)
	}
	t.Logf("loss noticed after %s: %v", time.Since(start).Round(time.Millisecond), h.Err())
}

func TestOnlyOneOfManyWins(t *testing.T) {
	kube := testworld.K8s(t)
	ns := kube.NewNamespace(t)
	var mu sync.Mutex
	var won []*lease.Hold
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			h, err := lease.Acquire(context.Background(), kube.Client, fast(ns, "des-ds-0001", fmt.Sprintf("pod-%d", i)))
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
	if !errors.Is(won[0].Err(), lease.ErrReleased) {
		t.Fatalf("released hold: Err = %v, want ErrReleased", won[0].Err())
	}
	if s := lease.Classify(get(t, ns, "des-ds-0001"), time.Now()); s != lease.Free {
		t.Fatalf("released Lease is %s, want Free", s)
	}
	// Released: the next claimer takes it at once.
	acquire(t, kube.Client, fast(ns, "des-ds-0001", "pod-next"))
}

func TestTakeOverOnlyWhenExpired(t *testing.T) {
	kube := testworld.K8s(t)
	ns := kube.NewNamespace(t)
	ctx := context.Background()
	first := acquire(t, kube.Client, fast(ns, "l", "pod-a"))
	for _, id := range []string{"pod-b", "pod-a"} {
		// A fresh Lease is never taken, not even by its own identity: that may be a later incarnation.
		if _, err := lease.Acquire(ctx, kube.Client, fast(ns, "l", id)); !errors.Is(err, lease.ErrHeld) {
			t.Fatalf("%s acquires a fresh Lease: %v, want ErrHeld", id, err)
		}
	}
	stopRenewing(first)
	time.Sleep(3 * time.Second)
	acquire(t, kube.Client, fast(ns, "l", "pod-b"))
	l := get(t, ns, "l")
	if lease.Holder(l) != "pod-b" || ptr.Deref(l.Spec.LeaseTransitions, -1) != 1 {
		t.Errorf("holder %q, transitions %d; want pod-b, 1", lease.Holder(l), ptr.Deref(l.Spec.LeaseTransitions, -1))
	}
}

// stopRenewing makes a holder stop without releasing, as a killed process would: Release on a
// cancelled context cannot clear the holder, but renewals stop all the same.
func stopRenewing(h *lease.Hold) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = h.Release(ctx)
}

// TestClaimWritesOnlyTheVersionRead: Claim never overwrites a Lease other than the one it was given.
func TestClaimWritesOnlyTheVersionRead(t *testing.T) {
	kube := testworld.K8s(t)
	ns := kube.NewNamespace(t)
	ctx := context.Background()
	foreign := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "l", Labels: map[string]string{"owner": "other"}}}
	if err := kube.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	stale := foreign.DeepCopy()
	foreign.Labels["owner"] = "still-other"
	if err := kube.Client.Update(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	for name, existing := range map[string]*coordinationv1.Lease{"not read (create)": nil, "stale version": stale} {
		if _, err := lease.Claim(ctx, kube.Client, fast(ns, "l", "me"), existing); !errors.Is(err, lease.ErrHeld) {
			t.Errorf("%s: Claim = %v, want ErrHeld", name, err)
		}
	}
	if l := get(t, ns, "l"); lease.Holder(l) != "" || l.ResourceVersion != foreign.ResourceVersion {
		t.Fatalf("foreign Lease written: holder %q, version %s -> %s", lease.Holder(l), foreign.ResourceVersion, l.ResourceVersion)
	}
}

// TestLoss takes a held Lease away in every way the package doc lists: each ends the hold within the
// renew deadline, and releasing a lost hold writes nothing.
func TestLoss(t *testing.T) {
	cases := []struct {
		name string
		// take acts on the held Lease; stall, when set, makes the holder's own renewals fail.
		take  func(t *testing.T, c client.Client, l *coordinationv1.Lease)
		stall func(ctx context.Context) error
	}{
		{name: "another holder", take: func(t *testing.T, c client.Client, l *coordinationv1.Lease) {
			t.Helper()
			l.Spec.HolderIdentity = ptr.To("intruder")
			update(t, c, l)
		}},
		{name: "same identity, acquired again", take: func(t *testing.T, c client.Client, l *coordinationv1.Lease) {
			t.Helper()
			l.Spec.AcquireTime = &metav1.MicroTime{Time: time.Now().Add(time.Second)}
			update(t, c, l)
		}},
		{name: "deleted", take: func(t *testing.T, c client.Client, l *coordinationv1.Lease) {
			t.Helper()
			if err := c.Delete(context.Background(), l); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "renewals hang", stall: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
		{name: "renewals fail", stall: func(context.Context) error {
			return apierrors.NewServiceUnavailable("api server restarting")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kube := testworld.K8s(t)
			ns := kube.NewNamespace(t)
			var stalled atomic.Bool
			c := stallable(t, &stalled, tc.stall)
			h := acquire(t, c, fast(ns, "l", "pod-a"))
			before := get(t, ns, "l")
			if tc.take != nil {
				tc.take(t, kube.Client, before)
			} else {
				stalled.Store(true)
			}
			waitLost(t, h, 2500*time.Millisecond)
			var after coordinationv1.Lease
			err := kube.Client.Get(context.Background(), client.ObjectKeyFromObject(before), &after)
			if err := h.Release(context.Background()); err != nil {
				t.Fatalf("release of a lost hold: %v", err)
			}
			var released coordinationv1.Lease
			err2 := kube.Client.Get(context.Background(), client.ObjectKeyFromObject(before), &released)
			if (err == nil) != (err2 == nil) || after.ResourceVersion != released.ResourceVersion {
				t.Fatalf("Release of a lost hold wrote the Lease: version %s -> %s (%v, %v)", after.ResourceVersion, released.ResourceVersion, err, err2)
			}
		})
	}
}

func update(t *testing.T, c client.Client, l *coordinationv1.Lease) {
	t.Helper()
	if err := c.Update(context.Background(), l); err != nil {
		t.Fatal(err)
	}
}

// stallable is the real client whose Lease updates run stall instead once stalled is set: the fault
// injection of an API server that stops answering or refuses.
func stallable(t *testing.T, stalled *atomic.Bool, stall func(context.Context) error) client.Client {
	t.Helper()
	kube := testworld.K8s(t)
	base, err := client.NewWithWatch(kube.Config, client.Options{Scheme: kube.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return interceptor.NewClient(base, interceptor.Funcs{
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if stalled.Load() && stall != nil {
				return stall(ctx)
			}
			return c.Update(ctx, obj, opts...)
		},
	})
}

// TestForeignWriteIsNotALoss: someone else writing the Lease without taking it causes a conflict that
// the re-read resolves; the hold survives, the hook's annotation is written on the new version, and
// Release still frees the Lease.
func TestForeignWriteIsNotALoss(t *testing.T) {
	kube := testworld.K8s(t)
	ns := kube.NewNamespace(t)
	var stages sync.Map
	o := fast(ns, "l", "pod-a")
	o.Decorate = func(l *coordinationv1.Lease, s lease.Stage, now time.Time) {
		stages.Store(s, true)
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations["example/renewed"] = now.UTC().Format(time.RFC3339Nano)
	}
	h := acquire(t, kube.Client, o)
	l := get(t, ns, "l")
	l.Labels = map[string]string{"team": "storage"}
	delete(l.Annotations, "example/renewed")
	update(t, kube.Client, l)
	time.Sleep(800 * time.Millisecond)
	if err := h.Err(); err != nil {
		t.Fatalf("hold lost after a foreign write: %v", err)
	}
	got := get(t, ns, "l")
	if got.Labels["team"] != "storage" || got.Annotations["example/renewed"] == "" || !got.Spec.RenewTime.After(l.Spec.RenewTime.Time) {
		t.Fatalf("after the conflict: labels %v, annotations %v, renew %v -> %v", got.Labels, got.Annotations, l.Spec.RenewTime, got.Spec.RenewTime)
	}
	if err := h.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := lease.Classify(get(t, ns, "l"), time.Now()); s != lease.Free {
		t.Fatalf("released Lease is %s", s)
	}
	for _, s := range []lease.Stage{lease.StageClaim, lease.StageRenew, lease.StageRelease} {
		if _, ok := stages.Load(s); !ok {
			t.Errorf("Decorate never saw stage %d", s)
		}
	}
}
