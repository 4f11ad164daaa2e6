// Package lease holds one shard lock of docs/protocol.md ("Shard locks"): a coordination.k8s.io/v1
// Lease taken by a packer pod before it touches a shard and renewed while it works on it.
//
// Taking the Lease is a Create, or an Update carrying the resourceVersion that was read; the API server
// accepts exactly one of competing writes, so two packers never both win. A Lease whose holder still
// renews it is never taken, whoever the holder is (even the same identity: a previous incarnation might
// still run). Once held, the Lease is renewed every RenewInterval; the holder's Context is cancelled as
// soon as a renewal finds another holder or the Lease gone, or when no renewal succeeded for
// RenewDeadline, which is shorter than the Lease duration so the packer stops before anyone may judge
// the Lease expired.
package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/datavision/des/internal/leasestate"
	"github.com/datavision/des/internal/protocol"
)

var (
	// ErrHeld means another holder renews the Lease: the shard is busy.
	ErrHeld = errors.New("lease is held by another holder")
	// ErrLost is the cause of a holder's Context once the Lease is lost.
	ErrLost = errors.New("lease lost")
	// ErrReleased is the cause of a holder's Context after Release.
	ErrReleased = errors.New("lease released")
)

// Options configure Acquire.
type Options struct {
	Namespace, Name string
	// Labels are set on the Lease when it is created or taken.
	Labels map[string]string
	// Identity is the holder, the packer's pod name.
	Identity string
	// Duration is written into the Lease (whole seconds); protocol.LeaseDuration when 0.
	Duration time.Duration
	// RenewInterval between renewals; protocol.LeaseRenewInterval when 0.
	RenewInterval time.Duration
	// RenewDeadline: the hold is lost when no renewal succeeded for this long; two thirds of Duration
	// when 0. It must be shorter than Duration.
	RenewDeadline time.Duration
	// Now is the clock written into the Lease; time.Now when nil.
	Now func() time.Time
	Log logr.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.Namespace == "" || o.Name == "" || o.Identity == "" {
		return o, errors.New("lease: namespace, name and identity are required")
	}
	if o.Duration == 0 {
		o.Duration = protocol.LeaseDuration
	}
	if o.RenewInterval == 0 {
		o.RenewInterval = protocol.LeaseRenewInterval
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = o.Duration * 2 / 3
	}
	if o.Duration < time.Second || o.Duration%time.Second != 0 {
		return o, fmt.Errorf("lease: duration %s must be whole seconds", o.Duration)
	}
	if o.RenewInterval >= o.RenewDeadline || o.RenewDeadline >= o.Duration {
		return o, fmt.Errorf("lease: want renew interval (%s) < renew deadline (%s) < duration (%s)",
			o.RenewInterval, o.RenewDeadline, o.Duration)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
	return o, nil
}

// Action is what a claimer does with a Lease it read.
type Action int

const (
	// Create: there is no Lease.
	Create Action = iota
	// Take: the Lease has no holder or expired; update it with the resourceVersion read.
	Take
	// Skip: a holder renewed it within its duration.
	Skip
)

func (a Action) String() string {
	switch a {
	case Create:
		return "Create"
	case Take:
		return "Take"
	case Skip:
		return "Skip"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Decide says what a claimer does with l (nil: no Lease) at now. A held Lease without renew time or
// duration cannot be judged fresh and counts as expired, as the controller judges it.
func Decide(l *coordinationv1.Lease, now time.Time) Action {
	switch {
	case l == nil:
		return Create
	case leasestate.Classify(l, now) == leasestate.Held:
		return Skip
	}
	return Take
}

// Holder returns the holder identity of l, or "".
func Holder(l *coordinationv1.Lease) string { return leasestate.Holder(l) }

// Expiry is when l expires unless renewed (zero when it cannot be told).
func Expiry(l *coordinationv1.Lease) time.Time { return leasestate.Expiry(l) }

// HeldError is returned by Acquire when another holder has the Lease.
type HeldError struct {
	Holder string
	Until  time.Time
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("lease is held by %q until %s", e.Holder, e.Until.Format(time.RFC3339))
}

func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Held is a Lease this process holds. It is safe for concurrent use.
type Held struct {
	c    client.Client
	opts Options

	ctx    context.Context
	cancel context.CancelCauseFunc
	stop   chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	lease    *coordinationv1.Lease // as last written by us
	watchdog *time.Timer
}

// Acquire takes the Lease if it is free or expired and starts renewing it. ctx bounds the acquisition
// only. It returns an error matching ErrHeld when another holder has it or won a race for it.
func Acquire(ctx context.Context, c client.Client, opts Options) (*Held, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	key := client.ObjectKey{Namespace: opts.Namespace, Name: opts.Name}
	existing := &coordinationv1.Lease{}
	if err := c.Get(ctx, key, existing); apierrors.IsNotFound(err) {
		existing = nil
	} else if err != nil {
		return nil, fmt.Errorf("get lease %s: %w", opts.Name, err)
	}
	now := opts.Now()
	var l *coordinationv1.Lease
	switch Decide(existing, now) {
	case Skip:
		return nil, &HeldError{Holder: Holder(existing), Until: Expiry(existing)}
	case Create:
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: opts.Namespace, Name: opts.Name}}
		claim(l, opts, now)
		err = c.Create(ctx, l)
	case Take:
		l = existing.DeepCopy()
		claim(l, opts, now)
		l.Spec.LeaseTransitions = ptr.To(ptr.Deref(l.Spec.LeaseTransitions, 0) + 1)
		err = c.Update(ctx, l)
	}
	if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) {
		// Someone else wrote the Lease between our read and our write: they won.
		return nil, fmt.Errorf("%w: lost the race for lease %s", ErrHeld, opts.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("take lease %s: %w", opts.Name, err)
	}
	return start(c, opts, l), nil
}

// claim makes l ours as of now.
func claim(l *coordinationv1.Lease, opts Options, now time.Time) {
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	for k, v := range opts.Labels {
		l.Labels[k] = v
	}
	t := metav1.NewMicroTime(now)
	l.Spec.HolderIdentity = ptr.To(opts.Identity)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(opts.Duration / time.Second))
	l.Spec.AcquireTime = &t
	l.Spec.RenewTime = &t
}

func start(c client.Client, opts Options, l *coordinationv1.Lease) *Held {
	ctx, cancel := context.WithCancelCause(context.Background())
	h := &Held{c: c, opts: opts, ctx: ctx, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{}), lease: l}
	// The watchdog ends the hold when renewals stall, even if a renewal call itself hangs.
	h.watchdog = time.AfterFunc(opts.RenewDeadline, func() {
		h.lose(fmt.Errorf("%w: not renewed for %s", ErrLost, opts.RenewDeadline))
	})
	opts.Log.Info("lease acquired", "lease", opts.Name, "holder", opts.Identity)
	go h.renewLoop()
	return h
}

// Context is cancelled when the Lease is lost (cause ErrLost) or released (cause ErrReleased).
func (h *Held) Context() context.Context { return h.ctx }

// Err returns nil while the Lease is held, else why it is not.
func (h *Held) Err() error {
	if h.ctx.Err() == nil {
		return nil
	}
	return context.Cause(h.ctx)
}

func (h *Held) lose(cause error) {
	if h.ctx.Err() == nil {
		h.opts.Log.Info("lease lost", "lease", h.opts.Name, "cause", cause.Error())
	}
	h.cancel(cause)
}

func (h *Held) renewLoop() {
	defer close(h.done)
	retry := min(time.Second, h.opts.RenewInterval/2)
	timer := time.NewTimer(h.opts.RenewInterval)
	defer timer.Stop()
	for {
		select {
		case <-h.stop:
			return
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
		default:
			// A brief API outage: try again soon; the watchdog ends the hold at the deadline.
			h.opts.Log.Info("lease renewal failed, retrying", "lease", h.opts.Name, "error", err.Error())
			timer.Reset(retry)
		}
	}
}

// renew writes a new renew time. A conflict is resolved by reading the Lease: still ours, renew that
// version; anyone else's (or gone), the hold is lost.
func (h *Held) renew() error {
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.RenewDeadline/2)
	defer cancel()
	h.mu.Lock()
	l := h.lease.DeepCopy()
	h.mu.Unlock()
	begun := time.Now()
	for attempt := 0; ; attempt++ {
		l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(h.opts.Now()))
		err := h.c.Update(ctx, l)
		if err == nil {
			h.mu.Lock()
			h.lease = l
			// Measured from before the write: the server may have stored it any time after.
			h.watchdog.Reset(h.opts.RenewDeadline - time.Since(begun))
			h.mu.Unlock()
			return nil
		}
		if attempt > 0 || (!apierrors.IsConflict(err) && !apierrors.IsNotFound(err)) {
			return fmt.Errorf("renew lease %s: %w", h.opts.Name, err)
		}
		fresh := &coordinationv1.Lease{}
		if err := h.c.Get(ctx, client.ObjectKeyFromObject(l), fresh); apierrors.IsNotFound(err) {
			return fmt.Errorf("%w: lease %s was deleted", ErrLost, h.opts.Name)
		} else if err != nil {
			return fmt.Errorf("renew lease %s: %w", h.opts.Name, err)
		}
		if holder := Holder(fresh); holder != h.opts.Identity {
			return fmt.Errorf("%w: lease %s is now held by %q", ErrLost, h.opts.Name, holder)
		}
		l = fresh
	}
}

// Release stops renewing and clears the holder if the Lease is still ours, so the shard is free at
// once rather than after the Lease expires. The Context is cancelled either way.
func (h *Held) Release(ctx context.Context) error {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	<-h.done
	h.watchdog.Stop()
	if h.ctx.Err() != nil {
		return nil // lost: not ours to clear
	}
	defer h.cancel(ErrReleased)
	h.mu.Lock()
	l := h.lease.DeepCopy()
	h.mu.Unlock()
	for attempt := 0; attempt < 3; attempt++ {
		l.Spec.HolderIdentity = nil
		err := h.c.Update(ctx, l)
		if err == nil {
			h.opts.Log.Info("lease released", "lease", h.opts.Name)
			return nil
		}
		if !apierrors.IsConflict(err) {
			return fmt.Errorf("release lease %s: %w", h.opts.Name, err)
		}
		fresh := &coordinationv1.Lease{}
		if err := h.c.Get(ctx, client.ObjectKeyFromObject(l), fresh); err != nil {
			return client.IgnoreNotFound(err)
		}
		if Holder(fresh) != h.opts.Identity {
			return nil
		}
		l = fresh
	}
	return fmt.Errorf("release lease %s: conflicts persist", h.opts.Name)
}
