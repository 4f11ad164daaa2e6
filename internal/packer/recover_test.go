package packer_test

import (
	"path"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/controllers"
	"github.com/datavision/des/internal/lease"
	"github.com/datavision/des/internal/protocol"
)

// recoverAll runs the controller's DesContainer recovery (controllers.DesContainerReconciler) on
// every container, as the controller would after the writer died: unfinished ones are rolled forward
// or back, finished ones lose their finalizer. It returns how many it rolled forward and back.
func recoverAll(t *testing.T, w *world) (forward, back int) {
	t.Helper()
	connector := controllers.NewConnector(w.kube)
	defer connector.Close()
	// The controller gives a container whose writer recorded no pod yet a Lease period's grace
	// ("just created"), then recovers it. A kill can land in that window; the packers are all dead
	// here (checked below), so the clock is taken past the grace rather than the test waiting 30 s.
	r := &controllers.DesContainerReconciler{Client: w.kube, APIReader: w.kube, Connector: connector,
		Recorder: events.NewFakeRecorder(100), Clock: aheadClock{by: protocol.LeaseDuration + time.Second}}
	for _, c := range w.containers() {
		if held, holder := shardBusy(t, w, &c); held && !c.Status.Phase.IsFinal() {
			t.Fatalf("container %s: shard Lease still held by %s", c.Name, holder)
		}
		wasFinal := c.Status.Phase.IsFinal()
		if _, err := r.Reconcile(w.ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&c)}); err != nil {
			t.Fatalf("recover %s: %v", c.Name, err)
		}
		if wasFinal {
			continue
		}
		after := &desv1.DesContainer{}
		if err := w.kube.Get(w.ctx, client.ObjectKeyFromObject(&c), after); err != nil {
			t.Fatalf("container %s after recovery: %v", c.Name, err)
		}
		switch after.Status.Phase {
		case desv1.PhaseCommitted:
			forward++
		case desv1.PhaseRolledBack:
			back++
		default:
			t.Fatalf("recovery left %s in phase %q (%s)", c.Name, after.Status.Phase, after.Status.Reason)
		}
		t.Logf("recovered %s: %s (%s)", c.Name, after.Status.Phase, after.Status.Reason)
	}
	return forward, back
}

// aheadClock is the real clock moved forward: recovery judged as a controller would judge it later.
type aheadClock struct{ by time.Duration }

func (c aheadClock) Now() time.Time                  { return time.Now().Add(c.by) }
func (c aheadClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

func shardBusy(t *testing.T, w *world, c *desv1.DesContainer) (bool, string) {
	t.Helper()
	l := &coordinationv1.Lease{}
	err := w.kube.Get(w.ctx, client.ObjectKey{Namespace: w.ns, Name: protocol.LeaseName(c.Spec.ShardRef, c.Spec.Shard)}, l)
	if apierrors.IsNotFound(err) {
		return false, ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return lease.Classify(l, time.Now()) == lease.Held, lease.Holder(l)
}

// containerPrefix is where C's big payloads must be, by the v1 reader's rule rather than the
// protocol's functions: the folder of the container's key (<dir(key)>/_bigFiles/<name>).
func containerPrefix(c *desv1.DesContainer) string {
	return path.Dir(c.Spec.Key)
}

func removeFinalizer(t *testing.T, w *world, c *desv1.DesContainer) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := &desv1.DesContainer{}
		if err := w.kube.Get(w.ctx, client.ObjectKeyFromObject(c), cur); err != nil {
			return client.IgnoreNotFound(err)
		}
		if !controllerutil.RemoveFinalizer(cur, protocol.FinalizerRecovery) {
			return nil
		}
		return w.kube.Update(w.ctx, cur)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// testLogger sends the packer's logs to the test log (shown with -v or on failure).
func testLogger(t testing.TB) logr.Logger {
	t.Helper()
	return zap.New(zap.WriteTo(testWriter{t}), zap.UseDevMode(true))
}
