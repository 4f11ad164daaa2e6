package lease

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/datavision/des/internal/protocol"
)

var (
	// ErrHeld means another holder renews the Lease, or won the race for it: the lock is busy.
	ErrHeld = errors.New("lease is held by another holder")
	// ErrLost is wrapped by the cause of a hold's Context once the Lease is lost.
	ErrLost = errors.New("lease lost")
	// ErrReleased is the cause of a hold's Context after Release.
	ErrReleased = errors.New("lease released")
	// ErrOptions means Options are incomplete or inconsistent.
	ErrOptions = errors.New("invalid lease options")
)

// Stage says which write a Decorate hook prepares.
type Stage int

const (
	// StageClaim is the write that creates or takes over the Lease.
	StageClaim Stage = iota
	// StageRenew is a renewal by the holder.
	StageRenew
	// StageRelease is the write that hands it back (holder already cleared).
	StageRelease
)

// Options configure Acquire and Claim.
type Options struct {
	Namespace, Name string
	// Labels are set on the Lease when it is created or taken.
	Labels map[string]string
	// Identity is the holder, usually the pod name.
	Identity string
	// Duration is written into the Lease (whole seconds, at least 1 s); protocol.LeaseDuration when 0.
	Duration time.Duration
	// RenewInterval between renewals; a third of Duration when 0 (protocol.LeaseRenewInterval for the
	// protocol's duration).
	RenewInterval time.Duration
	// RenewDeadline: the hold is lost when no renewal succeeded for this long; two thirds of Duration
	// when 0. It must lie between RenewInterval and Duration.
	RenewDeadline time.Duration
	// Decorate, when set, is called on every Lease about to be written, after this package set its
	// fields; now is the renew time being written. It must only touch labels and annotations.
	Decorate func(l *coordinationv1.Lease, stage Stage, now time.Time)
	// Now is the wall clock written into the Lease; time.Now when nil.
	Now func() time.Time
	// Log receives claims, losses and releases; the zero Logger discards them.
	Log logr.Logger
}

// WithDefaults returns o with its zero fields defaulted, or an error matching ErrOptions; callers
// that build Options for many Leases check them once up front.
func (o Options) WithDefaults() (Options, error) {
	if o.Namespace == "" || o.Name == "" || o.Identity == "" {
		return o, fmt.Errorf("%w: namespace, name and identity are required", ErrOptions)
	}
	if o.Duration == 0 {
		o.Duration = protocol.LeaseDuration
	}
	if o.Duration < time.Second || o.Duration%time.Second != 0 {
		return o, fmt.Errorf("%w: duration %s must be whole seconds, at least 1s", ErrOptions, o.Duration)
	}
	if o.RenewInterval == 0 {
		o.RenewInterval = o.Duration / 3
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = o.Duration * 2 / 3
	}
	if o.RenewInterval <= 0 || o.RenewInterval >= o.RenewDeadline || o.RenewDeadline >= o.Duration {
		return o, fmt.Errorf("%w: want 0 < renew interval (%s) < renew deadline (%s) < duration (%s)",
			ErrOptions, o.RenewInterval, o.RenewDeadline, o.Duration)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// HeldError is returned when another holder renews the Lease.
type HeldError struct {
	Holder string
	Until  time.Time
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("lease is held by %q until %s", e.Holder, e.Until.Format(time.RFC3339))
}

// Is makes a HeldError match ErrHeld.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Acquire reads the Lease and claims it (see Claim). ctx bounds the acquisition only.
func Acquire(ctx context.Context, c client.Client, opts Options) (*Hold, error) {
	opts, err := opts.WithDefaults()
	if err != nil {
		return nil, err
	}
	existing, err := Read(ctx, c, opts.Namespace, opts.Name)
	if err != nil {
		return nil, err
	}
	return claim(ctx, c, opts, existing, true)
}

// Read returns the Lease namespace/name as r has it, or nil when there is none.
func Read(ctx context.Context, r client.Reader, namespace, name string) (*coordinationv1.Lease, error) {
	l := &coordinationv1.Lease{}
	err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, l)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get lease %s/%s: %w", namespace, name, err)
	}
	return l, nil
}

// Claim takes the Lease as read by the caller (nil: there is none, create it) if it is Free or
// Expired, and starts renewing it. Only that version is written, so a claimer that lists its Leases
// by label never touches an unlisted object of the same name. ctx bounds the claim only; an error
// matching ErrHeld means the Lease is held or another claimer won the race.
func Claim(ctx context.Context, c client.Client, opts Options, existing *coordinationv1.Lease) (*Hold, error) {
	opts, err := opts.WithDefaults()
	if err != nil {
		return nil, err
	}
	return claim(ctx, c, opts, existing, true)
}

// TakeOver claims existing although its renewTime says it is held: the caller has itself seen it
// unchanged for a whole Lease duration on its own clock (Observer), so its holder is gone whatever
// that holder's clock wrote. The update carries existing's resourceVersion: a renewal since the
// caller read it makes the take-over fail with an error matching ErrHeld.
func TakeOver(ctx context.Context, c client.Client, opts Options, existing *coordinationv1.Lease) (*Hold, error) {
	opts, err := opts.WithDefaults()
	if err != nil {
		return nil, err
	}
	if existing == nil {
		return nil, errors.New("lease take-over: no Lease to take over")
	}
	return claim(ctx, c, opts, existing, false)
}

func claim(ctx context.Context, c client.Client, opts Options, existing *coordinationv1.Lease, judge bool) (*Hold, error) {
	now := opts.Now()
	if judge && Classify(existing, now) == Held {
		return nil, &HeldError{Holder: Holder(existing), Until: Expiry(existing)}
	}
	begun := time.Now()
	l := claimed(existing, opts, now)
	var err error
	if existing == nil {
		err = c.Create(ctx, l)
	} else {
		// l carries existing's resourceVersion: the update fails with a conflict if anyone wrote since.
		err = c.Update(ctx, l)
	}
	if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) {
		return nil, fmt.Errorf("%w: lost the race for lease %s/%s", ErrHeld, opts.Namespace, opts.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("claim lease %s/%s: %w", opts.Namespace, opts.Name, err)
	}
	opts.Log.Info("lease acquired", "lease", opts.Name, "holder", opts.Identity, "previousHolder", Holder(existing))
	return start(c, opts, l, begun), nil
}

// claimed is existing (or a new Lease) made ours as of now.
func claimed(existing *coordinationv1.Lease, opts Options, now time.Time) *coordinationv1.Lease {
	l := existing.DeepCopy()
	if l == nil {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: opts.Namespace, Name: opts.Name}}
		l.Spec.LeaseTransitions = ptr.To(int32(0))
	} else {
		// Every take-over is a transition, even from our own identity: that is another incarnation.
		l.Spec.LeaseTransitions = ptr.To(ptr.Deref(l.Spec.LeaseTransitions, 0) + 1)
	}
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	maps.Copy(l.Labels, opts.Labels)
	t := metav1.NewMicroTime(now)
	l.Spec.HolderIdentity = ptr.To(opts.Identity)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(opts.Duration / time.Second))
	l.Spec.AcquireTime = &t
	l.Spec.RenewTime = &t
	decorate(l, opts, StageClaim, now)
	return l
}

func decorate(l *coordinationv1.Lease, opts Options, stage Stage, now time.Time) {
	if opts.Decorate != nil {
		opts.Decorate(l, stage, now)
	}
}
