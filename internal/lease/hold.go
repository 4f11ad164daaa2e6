package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Hold is a Lease this process holds, renewed in the background until Release or loss. It is safe
// for concurrent use.
type Hold struct {
	c    client.Client
	opts Options

	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the renew loop has ended

	mu        sync.Mutex
	lease     *coordinationv1.Lease // as last written by us
	renewedAt time.Time             // monotonic start of the last successful write
	watchdog  *time.Timer
}

func start(c client.Client, opts Options, l *coordinationv1.Lease, begun time.Time) *Hold {
	ctx, cancel := context.WithCancelCause(context.Background())
	h := &Hold{c: c, opts: opts, ctx: ctx, cancel: cancel, done: make(chan struct{}), lease: l, renewedAt: begun}
	h.mu.Lock()
	defer h.mu.Unlock()
	// The watchdog ends the hold when renewals stall, even if a renewal call itself hangs.
	h.watchdog = time.AfterFunc(time.Until(begun.Add(opts.RenewDeadline)), func() { _ = h.Err() })
	go h.renewLoop()
	return h
}

// Name is the name of the held Lease.
func (h *Hold) Name() string { return h.opts.Name }

// Context is cancelled when the hold ends; its cause wraps ErrLost, or is ErrReleased.
func (h *Hold) Context() context.Context { return h.ctx }

// Lost is closed when the hold ends.
func (h *Hold) Lost() <-chan struct{} { return h.ctx.Done() }

// Lease returns a copy of the Lease as last written by this holder.
func (h *Hold) Lease() *coordinationv1.Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lease.DeepCopy()
}

// Err is nil while the Lease is held, else why it is not. It checks the renew deadline itself rather
// than trusting the watchdog to have fired.
func (h *Hold) Err() error {
	if err := context.Cause(h.ctx); err != nil {
		return err
	}
	h.mu.Lock()
	since := time.Since(h.renewedAt)
	h.mu.Unlock()
	if since < h.opts.RenewDeadline {
		return nil
	}
	h.lose(fmt.Errorf("%w: %s not renewed for %s", ErrLost, h.opts.Name, since.Round(time.Millisecond)))
	return context.Cause(h.ctx)
}

// lose ends the hold with cause, unless it has already ended.
func (h *Hold) lose(cause error) {
	h.mu.Lock()
	first := h.ctx.Err() == nil
	h.cancel(cause)
	h.mu.Unlock()
	if first {
		h.opts.Log.Error(cause, "lease lost", "lease", h.opts.Name, "holder", h.opts.Identity)
	}
}

func (h *Hold) renewLoop() {
	defer close(h.done)
	timer := time.NewTimer(h.opts.RenewInterval)
	defer timer.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-timer.C:
		}
		err := h.renew()
		switch {
		case err == nil:
			timer.Reset(h.opts.RenewInterval)
		case errors.Is(err, ErrLost):
			h.lose(err)
			return
		case h.ctx.Err() == nil:
			// A brief API outage: try again soon; the watchdog ends the hold at the deadline.
			h.opts.Log.Error(err, "lease renewal failed; retrying", "lease", h.opts.Name)
			timer.Reset(min(time.Second, h.opts.RenewInterval/2))
		}
	}
}

// renew writes a new renew time. The request may not outlive the renew deadline, nor the hold:
// Release must not wait for a slow API server.
func (h *Hold) renew() error {
	h.mu.Lock()
	l := h.lease.DeepCopy()
	deadline := h.renewedAt.Add(h.opts.RenewDeadline)
	h.mu.Unlock()
	ctx, cancel := context.WithDeadline(h.ctx, deadline)
	defer cancel()
	begun := time.Now()
	l, err := h.write(ctx, l, StageRenew, 2)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx.Err() == nil {
		h.lease, h.renewedAt = l, begun
		h.watchdog.Reset(time.Until(begun.Add(h.opts.RenewDeadline)))
	}
	return nil
}

// write stamps l for stage and updates it. A conflict is resolved by re-reading the Lease: still ours,
// the change is applied to that version (at most attempts writes in all); anyone else's, or gone, the
// result wraps ErrLost.
func (h *Hold) write(ctx context.Context, l *coordinationv1.Lease, stage Stage, attempts int) (*coordinationv1.Lease, error) {
	for attempt := 1; ; attempt++ {
		now := h.opts.Now()
		l.Spec.RenewTime = &metav1.MicroTime{Time: now}
		if stage == StageRelease {
			l.Spec.HolderIdentity = nil
		}
		decorate(l, h.opts, stage, now)
		err := h.c.Update(ctx, l)
		switch {
		case err == nil:
			return l, nil
		case apierrors.IsNotFound(err):
			return nil, fmt.Errorf("%w: %s was deleted", ErrLost, h.opts.Name)
		case !apierrors.IsConflict(err) || attempt >= attempts:
			return nil, fmt.Errorf("write lease %s (%s): %w", h.opts.Name, stageName[stage], err)
		}
		if l, err = h.reread(ctx); err != nil {
			return nil, err
		}
	}
}

var stageName = map[Stage]string{StageClaim: "claim", StageRenew: "renew", StageRelease: "release"}

// reread fetches the Lease after a conflict; it is still ours only if we hold it since our claim.
func (h *Hold) reread(ctx context.Context) (*coordinationv1.Lease, error) {
	h.mu.Lock()
	acquired := h.lease.Spec.AcquireTime.DeepCopy()
	h.mu.Unlock()
	cur := &coordinationv1.Lease{}
	err := h.c.Get(ctx, client.ObjectKey{Namespace: h.opts.Namespace, Name: h.opts.Name}, cur)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("%w: %s was deleted", ErrLost, h.opts.Name)
	case err != nil:
		return nil, fmt.Errorf("re-read lease %s: %w", h.opts.Name, err)
	case Holder(cur) != h.opts.Identity || !cur.Spec.AcquireTime.Equal(acquired):
		return nil, fmt.Errorf("%w: %s taken by %q", ErrLost, h.opts.Name, Holder(cur))
	}
	return cur, nil
}

// Confirm checks that the Lease is still this holder's, by the renew deadline (Err) and by reading
// the Lease itself: the API server must name this holder with the acquire time of its claim. A
// process frozen past its Lease (SIGSTOP, a paused VM) learns so here, before it acts, even when its
// watchdog has not run yet. A Lease found lost ends the hold.
func (h *Hold) Confirm(ctx context.Context) error {
	if err := h.Err(); err != nil {
		return err
	}
	if _, err := h.reread(ctx); err != nil {
		if errors.Is(err, ErrLost) {
			h.lose(err)
		}
		return err
	}
	return h.Err() // the read may have taken past the deadline
}

// Release ends the hold and, if the Lease is still ours, clears its holder so the lock is Free at
// once rather than after the Lease expires. Releasing a lost or released hold writes nothing.
func (h *Hold) Release(ctx context.Context) error {
	wasHeld := h.Err() == nil
	h.mu.Lock()
	h.cancel(ErrReleased) // Err fails from here on, and a renewal in flight is abandoned
	l := h.lease.DeepCopy()
	h.mu.Unlock()
	<-h.done
	h.watchdog.Stop()
	if !wasHeld {
		return nil
	}
	_, err := h.write(ctx, l, StageRelease, 3)
	if errors.Is(err, ErrLost) {
		return nil // taken or deleted meanwhile: nothing of ours left to clear
	}
	if err != nil {
		return err
	}
	h.opts.Log.Info("lease released", "lease", h.opts.Name, "holder", h.opts.Identity)
	return nil
}
