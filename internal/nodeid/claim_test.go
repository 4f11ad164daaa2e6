package nodeid_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/datavision/des/internal/lease"
	"github.com/datavision/des/internal/naming"
	"github.com/datavision/des/internal/nodeid"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/test/testworld"
)

func TestMain(m *testing.M) { testworld.Main(m, testworld.Kube) }

// fast makes claims renew several times a second and lose within a second of failing renewals.
func fast(ns, identity string, candidates ...int) nodeid.Options {
	return nodeid.Options{
		Namespace: ns, Identity: identity, Candidates: candidates,
		LeaseDuration: 2 * time.Second, RenewInterval: 200 * time.Millisecond, RenewDeadline: time.Second,
	}
}

func acquire(t *testing.T, o nodeid.Options) *nodeid.Claim {
	t.Helper()
	c, err := nodeid.Acquire(context.Background(), testworld.K8s(t).Client, o)
	if err != nil {
		t.Fatalf("acquire as %s: %v", o.Identity, err)
	}
	t.Cleanup(func() { _ = c.Release(context.Background()) })
	return c
}

func getLease(t *testing.T, ns string, node int) *coordinationv1.Lease {
	t.Helper()
	var l coordinationv1.Lease
	if err := testworld.K8s(t).Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: nodeid.LeaseName(node)}, &l); err != nil {
		t.Fatalf("get lease of node %d: %v", node, err)
	}
	return &l
}

func waitLost(t *testing.T, c *nodeid.Claim, within time.Duration) {
	t.Helper()
	select {
	case <-c.Lost():
	case <-time.After(within):
		t.Fatalf("claim of node %d still held after %s", c.Node(), within)
	}
	if !errors.Is(c.Err(), nodeid.ErrLost) || c.Held() {
		t.Fatalf("lost claim: Err = %v, Held = %v", c.Err(), c.Held())
	}
	if err := c.Admit([]naming.Name{nameAt(time.Now())}); !errors.Is(err, nodeid.ErrLost) {
		t.Fatalf("Admit after loss = %v, want ErrLost", err)
	}
}

func nameAt(t time.Time) naming.Name {
	return naming.Name{Prefix: "T", Day: naming.DayOf(t), TimeBits: uint32(t.UnixMilli())}
}

// TestConcurrentClaimersNeverShareANodeID races many claimers for few node ids: each id has one winner.
func TestConcurrentClaimersNeverShareANodeID(t *testing.T) {
	ns := testworld.K8s(t).NewNamespace(t)
	const claimers, ids = 12, 4
	var (
		mu     sync.Mutex
		owners = map[int]string{}
		wg     sync.WaitGroup
	)
	for i := range claimers {
		wg.Go(func() {
			id := fmt.Sprintf("pod-%d", i)
			c, err := nodeid.Acquire(context.Background(), testworld.K8s(t).Client, fast(ns, id, 0, 1, 2, 3))
			if errors.Is(err, nodeid.ErrNoFreeNode) {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { _ = c.Release(context.Background()) })
			mu.Lock()
			defer mu.Unlock()
			if prev, dup := owners[c.Node()]; dup {
				t.Errorf("node %d claimed by %s and %s", c.Node(), prev, id)
			}
			owners[c.Node()] = id
		})
	}
	wg.Wait()
	if len(owners) != ids {
		t.Fatalf("%d node ids claimed, want %d: %v", len(owners), ids, owners)
	}
	for node, id := range owners {
		l := getLease(t, ns, node)
		if lease.Holder(l) != id || l.Labels[protocol.LabelManagedBy] != protocol.ManagedByDES {
			t.Errorf("lease of node %d: holder %q labels %v, want holder %s", node, lease.Holder(l), l.Labels, id)
		}
	}
}

// TestTakeOver checks which existing Leases a claimer takes and where its names start.
func TestTakeOver(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name      string
		holder    string
		renewed   time.Time
		watermark string
		wantTaken bool
	}{
		{"fresh lease of another pod is left alone", "other", now, "", false},
		{"fresh lease of our own identity is left alone", "me", now, "", false},
		{"expired lease is taken, after its watermark", "dead", now.Add(-time.Hour), "1900000000000", true},
		{"released lease is taken, after its watermark", "", now.Add(-time.Second), "1800000000000", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := testworld.K8s(t).NewNamespace(t)
			l := &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: nodeid.LeaseName(7), Namespace: ns,
					Labels: map[string]string{protocol.LabelComponent: nodeid.ComponentNaming}},
				Spec: coordinationv1.LeaseSpec{
					LeaseDurationSeconds: ptr.To(int32(15)), RenewTime: &metav1.MicroTime{Time: tc.renewed},
					LeaseTransitions: ptr.To(int32(4)),
				},
			}
			if tc.holder != "" {
				l.Spec.HolderIdentity = ptr.To(tc.holder)
			}
			if tc.watermark != "" {
				l.Annotations = map[string]string{nodeid.AnnotationUsedUntil: tc.watermark}
			}
			if err := testworld.K8s(t).Client.Create(context.Background(), l); err != nil {
				t.Fatal(err)
			}
			c, err := nodeid.Acquire(context.Background(), testworld.K8s(t).Client, fast(ns, "me", 7))
			if !tc.wantTaken {
				if !errors.Is(err, nodeid.ErrNoFreeNode) {
					t.Fatalf("Acquire = %v, want ErrNoFreeNode", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Release(context.Background()) }() // the test is about the watermark
			want, _ := strconv.ParseInt(tc.watermark, 10, 64)
			if c.After().UnixMilli() != want {
				t.Fatalf("After = %d, want the previous watermark %d", c.After().UnixMilli(), want)
			}
			got := getLease(t, ns, 7)
			if lease.Holder(got) != "me" || *got.Spec.LeaseTransitions != 5 {
				t.Fatalf("taken lease: holder %q transitions %d", lease.Holder(got), *got.Spec.LeaseTransitions)
			}
			g, _ := c.NewGenerator("T")
			n, _ := g.Next()
			if n.TimeBits != uint32(want+1) || n.Node != 7 {
				t.Fatalf("first name %s: time bits %d node %d, want %d (just after the watermark) node 7", n, n.TimeBits, n.Node, uint32(want+1))
			}
			if err := c.Admit([]naming.Name{n}); err != nil {
				t.Fatalf("Admit of the first name after a watermark ahead of the clock: %v", err)
			}
		})
	}
}

func TestRenewalKeepsTheLeaseAndRaisesTheWatermark(t *testing.T) {
	ns := testworld.K8s(t).NewNamespace(t)
	c := acquire(t, fast(ns, "pod-a", 0))
	first := getLease(t, ns, 0)
	// Past the renew deadline (only renewals keep the claim) and past the first watermark, which a new
	// Lease sets two durations ahead: renewals must have raised it.
	time.Sleep(2500 * time.Millisecond)
	if !c.Held() {
		t.Fatalf("claim lost while renewing: %v", c.Err())
	}
	later := getLease(t, ns, 0)
	w1, _ := nodeid.UsedUntil(first)
	w2, _ := nodeid.UsedUntil(later)
	if !later.Spec.RenewTime.After(first.Spec.RenewTime.Time) || w2 <= w1 {
		t.Fatalf("renewals: renew time %v -> %v, watermark %d -> %d", first.Spec.RenewTime, later.Spec.RenewTime, w1, w2)
	}
	if least := later.Spec.RenewTime.Add(2 * time.Second).UnixMilli(); w2 < least {
		t.Fatalf("watermark %d is less than a lease duration after the renew time (%d)", w2, least)
	}
	if err := c.Admit([]naming.Name{nameAt(time.Now())}); err != nil {
		t.Fatalf("Admit while held: %v", err)
	}
	if err := c.Admit([]naming.Name{nameAt(time.Now()), nameAt(time.Now().Add(time.Hour))}); !errors.Is(err, nodeid.ErrNotCovered) {
		t.Fatalf("Admit of a name an hour ahead = %v, want ErrNotCovered", err)
	}
}

// TestLoss takes a held Lease away in the ways it can happen; the claim must end within its deadline.
func TestLoss(t *testing.T) {
	cases := []struct {
		name string
		take func(t *testing.T, l *coordinationv1.Lease) error
	}{
		{"stolen by another holder", func(t *testing.T, l *coordinationv1.Lease) error {
			t.Helper()
			l.Spec.HolderIdentity = ptr.To("thief")
			l.Spec.AcquireTime = &metav1.MicroTime{Time: time.Now()}
			l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
			return testworld.K8s(t).Client.Update(context.Background(), l)
		}},
		{"deleted", func(t *testing.T, l *coordinationv1.Lease) error {
			t.Helper()
			return testworld.K8s(t).Client.Delete(context.Background(), l)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := testworld.K8s(t).NewNamespace(t)
			c := acquire(t, fast(ns, "pod-a", 1))
			if err := tc.take(t, getLease(t, ns, 1)); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			waitLost(t, c, 2*time.Second)
			t.Logf("loss noticed after %s", time.Since(start).Round(time.Millisecond))
			if err := c.Release(context.Background()); err != nil {
				t.Fatalf("release of a lost claim: %v", err)
			}
		})
	}
}

// TestLabelChangeIsNotALoss: someone else writing the Lease without taking it must not end the claim,
// and the renewal that resolves the conflict writes the watermark again, never lower, even when the
// other writer dropped it.
func TestLabelChangeIsNotALoss(t *testing.T) {
	ns := testworld.K8s(t).NewNamespace(t)
	c := acquire(t, fast(ns, "pod-a", 2))
	l := getLease(t, ns, 2)
	before, _ := nodeid.UsedUntil(l)
	l.Labels["team"] = "storage"
	delete(l.Annotations, nodeid.AnnotationUsedUntil)
	if err := testworld.K8s(t).Client.Update(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if !c.Held() {
		t.Fatalf("claim lost after a label change: %v", c.Err())
	}
	got := getLease(t, ns, 2)
	if after, ok := nodeid.UsedUntil(got); !ok || after < before || got.Labels["team"] != "storage" {
		t.Fatalf("after the conflict: watermark %d -> %d (present %v), labels %v", before, after, ok, got.Labels)
	}
}

// TestReleaseHandsOverAfterTheLastUsedMillisecond: a released node id is free at once, and its next holder
// starts right after the last millisecond the previous holder admitted, not a lease duration later.
func TestReleaseHandsOverAfterTheLastUsedMillisecond(t *testing.T) {
	ns := testworld.K8s(t).NewNamespace(t)
	a := acquire(t, fast(ns, "pod-a", 9))
	g, err := a.NewGenerator("T")
	if err != nil {
		t.Fatal(err)
	}
	// A new Lease starts a duration ahead of the clock, so the generator runs ahead; take its last name.
	var last naming.Name
	batch := make([]naming.Name, 600)
	for i := range batch {
		if batch[i], err = g.Next(); err != nil {
			t.Fatal(err)
		}
		last = batch[i]
	}
	if err := a.Admit(batch); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a.Held() || !errors.Is(a.Admit(batch), nodeid.ErrLost) {
		t.Fatal("released claim still admits names")
	}
	if l := getLease(t, ns, 9); lease.Classify(l, time.Now()) != lease.Free {
		t.Fatalf("released lease is %s", lease.Classify(l, time.Now()))
	}
	b := acquire(t, fast(ns, "pod-b", 9))
	if want := nodeid.UnixMilli(last, time.Now()); b.After().UnixMilli() != want {
		t.Fatalf("next holder starts after %d, want the last admitted millisecond %d", b.After().UnixMilli(), want)
	}
	gb, _ := b.NewGenerator("T")
	n, _ := gb.Next()
	if nodeid.UnixMilli(n, time.Now()) <= nodeid.UnixMilli(last, time.Now()) {
		t.Fatalf("next holder's first name %s is not after the previous holder's last %s", n, last)
	}
}

// TestLeaseOfOtherOwnerIsNotTouched: a Lease with our name but created by someone else (no DES labels, so
// not listed) is never overwritten.
func TestLeaseOfOtherOwnerIsNotTouched(t *testing.T) {
	ns := testworld.K8s(t).NewNamespace(t)
	foreign := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: nodeid.LeaseName(4), Namespace: ns}}
	if err := testworld.K8s(t).Client.Create(context.Background(), foreign); err != nil {
		t.Fatal(err)
	}
	_, err := nodeid.Acquire(context.Background(), testworld.K8s(t).Client, fast(ns, "me", 4))
	if !errors.Is(err, nodeid.ErrNoFreeNode) {
		t.Fatalf("Acquire over a foreign Lease = %v, want ErrNoFreeNode", err)
	}
	if l := getLease(t, ns, 4); lease.Holder(l) != "" {
		t.Fatalf("foreign lease now held by %q", lease.Holder(l))
	}
	if err := testworld.K8s(t).Client.Delete(context.Background(), foreign); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}
