package packer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

// errContainerFinal means the DesContainer already reached another final phase: someone else (the
// controller's recovery) finished it.
var errContainerFinal = errors.New("container already has a final phase")

// apiBackoff spans about half a minute: long enough for an API server restart, short enough to finish
// within a pod's termination grace period.
var apiBackoff = wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 9, Cap: 5 * time.Second}

// retriableAPIError reports errors worth retrying with a fresh read: conflicts and a briefly
// unavailable API server.
func retriableAPIError(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) ||
		isNetworkError(err)
}

func isNetworkError(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// setStatus applies mutate to C's status and writes it. The first attempt uses the copy we hold (we
// are its only writer while we hold the Lease); a conflict or a brief API outage is retried on a
// fresh read. mutate sees the current status and may refuse with an error, which is returned as is.
func (p *Packer) setStatus(ctx context.Context, c *desv1.DesContainer, mutate func(*desv1.DesContainerStatus) error) error {
	cur := c.DeepCopy()
	fresh := false
	err := retry.OnError(apiBackoff, retriableAPIError, func() error {
		if fresh {
			// A new object: decoding into the old one would keep fields the server no longer has.
			cur = &desv1.DesContainer{}
			if err := p.d.Kube.Get(ctx, client.ObjectKeyFromObject(c), cur); err != nil {
				return err
			}
		}
		fresh = true
		if err := mutate(&cur.Status); err != nil {
			return err
		}
		return p.d.Kube.Status().Update(ctx, cur)
	})
	if err != nil {
		p.d.Metrics.Errors.WithLabelValues("status").Inc()
		return fmt.Errorf("update status of DesContainer %s: %w", c.Name, err)
	}
	cur.DeepCopyInto(c)
	return nil
}

// setPhase moves C to phase, refusing to leave another final phase. fill sets the phase's fields.
func (p *Packer) setPhase(ctx context.Context, c *desv1.DesContainer, phase desv1.ContainerPhase, fill func(*desv1.DesContainerStatus)) error {
	return p.setStatus(ctx, c, func(st *desv1.DesContainerStatus) error {
		if st.Phase.IsFinal() && st.Phase != phase {
			return fmt.Errorf("%w: %s, not moving it to %s", errContainerFinal, st.Phase, phase)
		}
		st.Phase = phase
		if fill != nil {
			fill(st)
		}
		return nil
	})
}

// setRolledBack records that C's rows went back to ready.
func (p *Packer) setRolledBack(ctx context.Context, c *desv1.DesContainer, reason string) error {
	return p.setPhase(ctx, c, desv1.PhaseRolledBack, func(st *desv1.DesContainerStatus) {
		st.Reason = truncate(reason, 1024)
	})
}

// createObject creates obj, retrying a briefly unavailable API server. AlreadyExists after a retry is
// our own earlier attempt whose answer was lost.
func (p *Packer) createObject(ctx context.Context, obj client.Object) error {
	attempt := 0
	return retry.OnError(apiBackoff, retriableAPIError, func() error {
		attempt++
		err := p.d.Kube.Create(ctx, obj)
		if apierrors.IsAlreadyExists(err) && attempt > 1 {
			return p.d.Kube.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		}
		return err
	})
}

// deleteContainer removes a DesContainer that never held a row: our finalizer first (nothing needs
// recovering), then the object.
func (p *Packer) deleteContainer(ctx context.Context, c *desv1.DesContainer) error {
	err := retry.OnError(apiBackoff, retriableAPIError, func() error {
		cur := &desv1.DesContainer{}
		if err := p.d.Kube.Get(ctx, client.ObjectKeyFromObject(c), cur); err != nil {
			return err
		}
		if !controllerutil.RemoveFinalizer(cur, protocol.FinalizerRecovery) {
			return nil
		}
		return p.d.Kube.Update(ctx, cur)
	})
	if err == nil {
		err = retry.OnError(apiBackoff, retriableAPIError, func() error {
			return p.d.Kube.Delete(ctx, c, client.Preconditions{UID: &c.UID})
		})
	}
	return client.IgnoreNotFound(err)
}

func now(t time.Time) *metav1.Time { return &metav1.Time{Time: t} }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
