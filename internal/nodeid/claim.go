package nodeid

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/datavision/des/internal/naming"
	"github.com/datavision/des/internal/protocol"
)

// Defaults of Options.
const (
	DefaultLeaseDuration = 15 * time.Second
)

var (
	// ErrNoFreeNode means every candidate node id is held by someone else.
	ErrNoFreeNode = errors.New("no free naming node id")
	// ErrLost is wrapped by Admit's error and the claim's cause once the Lease is lost or released.
	ErrLost = errors.New("naming node lease lost")
	// ErrNotCovered means a name's millisecond is beyond the Lease's watermark (the clock jumped ahead of
	// the last renewal); the name must not be issued.
	ErrNotCovered = errors.New("name is later than the node lease's watermark")
)

// Options configure Acquire.
type Options struct {
	// Namespace of the node Leases.
	Namespace string
	// Identity of the holder, usually the pod name.
	Identity string
	// LeaseDuration is written into the Lease (whole seconds, at least 1 s); DefaultLeaseDuration when 0.
	LeaseDuration time.Duration
	// RenewInterval between renewals; a third of LeaseDuration when 0.
	RenewInterval time.Duration
	// RenewDeadline: a claim not renewed for this long is lost; two thirds of LeaseDuration when 0. It
	// must be shorter than LeaseDuration so the holder stops before others may judge the Lease expired.
	RenewDeadline time.Duration
	// Candidates are the node ids to try, in order; when empty, all ids starting at a random one, so that
	// replicas starting together rarely contend for the same Lease.
	Candidates []int
	// Now is the wall clock written into Leases; time.Now when nil.
	Now func() time.Time
	// Log receives claim and loss messages; discarded when zero.
	Log logr.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.Namespace == "" || o.Identity == "" {
		return o, errors.New("node lease: namespace and identity are required")
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.LeaseDuration < time.Second || o.LeaseDuration%time.Second != 0 {
		return o, fmt.Errorf("node lease: duration %s must be whole seconds, at least 1s", o.LeaseDuration)
	}
	if o.RenewInterval == 0 {
		o.RenewInterval = o.LeaseDuration / 3
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = o.LeaseDuration * 2 / 3
	}
	if o.RenewInterval >= o.RenewDeadline || o.RenewDeadline >= o.LeaseDuration {
		return o, fmt.Errorf("node lease: want renew interval (%s) < renew deadline (%s) < duration (%s)",
			o.RenewInterval, o.RenewDeadline, o.LeaseDuration)
	}
	for _, n := range o.Candidates {
		if n < 0 || n >= NodeCount {
			return o, fmt.Errorf("node lease: candidate node id %d out of range 0..%d", n, NodeCount-1)
		}
	}
	if len(o.Candidates) == 0 {
		start := rand.IntN(NodeCount)
		for i := range NodeCount {
			o.Candidates = append(o.Candidates, (start+i)%NodeCount)
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
	return o, nil
}

// Claim is the exclusive use of one node id while its Lease is held. It is safe for concurrent use.
type Claim struct {
	client client.Client
	opts   Options
	node   int
	after  int64 // names must be later than this Unix millisecond

	mu        sync.RWMutex
	lease     *coordinationv1.Lease // as last written by us
	until     int64                 // watermark of the last successful write
	renewedAt time.Time             // monotonic start of the last successful write
	held      bool
	used      atomic.Int64 // latest millisecond admitted

	ctx      context.Context
	cancel   context.CancelCauseFunc
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// Acquire claims the first free or expired node id among opts.Candidates and starts renewing its Lease in
// the background. ctx bounds the acquisition only: the claim lasts until Release or until the Lease is
// lost. It returns ErrNoFreeNode when every candidate is held.
func Acquire(ctx context.Context, c client.Client, opts Options) (*Claim, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	var list coordinationv1.LeaseList
	if err := c.List(ctx, &list, client.InNamespace(opts.Namespace),
		client.MatchingLabels{protocol.LabelComponent: ComponentNaming}); err != nil {
		return nil, fmt.Errorf("list node leases in %s: %w", opts.Namespace, err)
	}
	existing := make(map[string]*coordinationv1.Lease, len(list.Items))
	for i := range list.Items {
		existing[list.Items[i].Name] = &list.Items[i]
	}
	for _, node := range opts.Candidates {
		claim, err := tryClaim(ctx, c, opts, node, existing[LeaseName(node)])
		switch {
		case err == nil:
			go claim.renewLoop()
			return claim, nil
		case errors.Is(err, errBusy), apierrors.IsAlreadyExists(err), apierrors.IsConflict(err):
			// Held, or another claimer won the race for it: try the next id.
			continue
		default:
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w in %s (%d candidates)", ErrNoFreeNode, opts.Namespace, len(opts.Candidates))
}

var errBusy = errors.New("node lease held")

// tryClaim creates the Lease of node, or takes it over if it is free or expired.
func tryClaim(ctx context.Context, c client.Client, opts Options, node int, l *coordinationv1.Lease) (*Claim, error) {
	now := opts.Now()
	if Classify(l, now) == Held {
		return nil, errBusy
	}
	after := startAfter(l, now, opts.LeaseDuration)
	until := max(after, now.UnixMilli()) + opts.LeaseDuration.Milliseconds()
	started := time.Now()

	lease := l.DeepCopy()
	if lease == nil {
		lease = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: LeaseName(node), Namespace: opts.Namespace}}
	}
	if lease.Labels == nil {
		lease.Labels = map[string]string{}
	}
	lease.Labels[protocol.LabelManagedBy] = protocol.ManagedByDES
	lease.Labels[protocol.LabelComponent] = ComponentNaming
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	lease.Annotations[AnnotationUsedUntil] = strconv.FormatInt(until, 10)
	if Holder(lease) != opts.Identity {
		lease.Spec.LeaseTransitions = ptr.To(ptr.Deref(lease.Spec.LeaseTransitions, 0) + 1)
	}
	lease.Spec.HolderIdentity = ptr.To(opts.Identity)
	lease.Spec.LeaseDurationSeconds = ptr.To(int32(opts.LeaseDuration / time.Second))
	lease.Spec.AcquireTime = &metav1.MicroTime{Time: now}
	lease.Spec.RenewTime = &metav1.MicroTime{Time: now}

	var err error
	if l == nil {
		err = c.Create(ctx, lease)
	} else {
		// lease carries l's resourceVersion: the update fails with a conflict if anyone changed it since.
		err = c.Update(ctx, lease)
	}
	if err != nil {
		return nil, fmt.Errorf("claim node lease %s/%s: %w", opts.Namespace, LeaseName(node), err)
	}
	opts.Log.Info("claimed naming node id", "node", node, "lease", lease.Name,
		"previousHolder", Holder(l), "startAfterMs", after)
	claimCtx, cancel := context.WithCancelCause(context.Background())
	claim := &Claim{
		client: c, opts: opts, node: node, after: after,
		lease: lease, until: until, renewedAt: started, held: true,
		ctx: claimCtx, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{}),
	}
	claim.used.Store(after)
	return claim, nil
}

// Node is the claimed node id.
func (c *Claim) Node() int { return c.node }

// LeaseName is the name of the claimed Lease.
func (c *Claim) LeaseName() string { return LeaseName(c.node) }

// After is the time every name of this claim must be later than; pass it as naming.Config.After.
func (c *Claim) After() time.Time { return time.UnixMilli(c.after) }

// NewGenerator returns a name generator for the claimed node id that starts after the previous holder.
func (c *Claim) NewGenerator(prefix string) (*naming.Generator, error) {
	return naming.NewGenerator(naming.Config{Prefix: prefix, Node: c.node, After: c.After()})
}

// Lost is closed when the claim ends: Lease lost, renewals failing past the deadline, or Release.
func (c *Claim) Lost() <-chan struct{} { return c.ctx.Done() }

// Context is cancelled when the claim ends; its cause says why.
func (c *Claim) Context() context.Context { return c.ctx }

// Err is nil while the claim is held, else why it ended (wrapping ErrLost).
func (c *Claim) Err() error { return context.Cause(c.ctx) }

// Held reports whether names may currently be issued under the claim.
func (c *Claim) Held() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.heldLocked() == nil
}

func (c *Claim) heldLocked() error {
	if !c.held {
		return context.Cause(c.ctx)
	}
	if since := time.Since(c.renewedAt); since >= c.opts.RenewDeadline {
		return fmt.Errorf("%w: %s not renewed for %s", ErrLost, c.LeaseName(), since.Round(time.Millisecond))
	}
	return nil
}

// Admit must be called with a batch of generated names before any of them is handed out or stored: it
// fails with an error wrapping ErrLost when the claim no longer holds its Lease, and with ErrNotCovered
// when a name is later than the watermark the Lease promises. A batch that is not admitted must be
// discarded.
func (c *Claim) Admit(names []naming.Name) error {
	if len(names) == 0 {
		return nil
	}
	// Names lie after c.after, which may be ahead of the clock (a previous holder's clock ran fast).
	ref := time.UnixMilli(max(time.Now().UnixMilli(), c.after))
	latest := int64(0)
	for i, n := range names {
		if ms := UnixMilli(n, ref); i == 0 || ms > latest {
			latest = ms
		}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if err := c.heldLocked(); err != nil {
		return err
	}
	if latest > c.until {
		return fmt.Errorf("%w: %d > %d", ErrNotCovered, latest, c.until)
	}
	for {
		used := c.used.Load()
		if latest <= used || c.used.CompareAndSwap(used, latest) {
			return nil
		}
	}
}

// Release stops renewing and, if the Lease is still ours, hands it back: the holder is cleared and the
// watermark lowered to the last millisecond admitted, so the next holder starts right after it. Admit
// fails from the moment Release is called. Releasing a lost claim does nothing.
func (c *Claim) Release(ctx context.Context) error {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
	c.mu.Lock()
	wasHeld := c.held
	c.held = false
	c.cancel(fmt.Errorf("%w: released", ErrLost))
	lease := c.lease.DeepCopy()
	c.mu.Unlock()
	if !wasHeld {
		return nil
	}
	lease.Spec.HolderIdentity = nil
	lease.Spec.RenewTime = &metav1.MicroTime{Time: c.opts.Now()}
	lease.Annotations[AnnotationUsedUntil] = strconv.FormatInt(c.used.Load(), 10)
	err := c.client.Update(ctx, lease)
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		// Taken or deleted meanwhile: nothing of ours left to release.
		return nil
	}
	if err != nil {
		return fmt.Errorf("release node lease %s: %w", lease.Name, err)
	}
	c.opts.Log.Info("released naming node id", "node", c.node, "lastUsedMs", c.used.Load())
	return nil
}

// renewLoop renews until Release or loss.
func (c *Claim) renewLoop() {
	defer close(c.done)
	timer := time.NewTimer(c.opts.RenewInterval)
	defer timer.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-timer.C:
		}
		c.mu.RLock()
		deadline := c.renewedAt.Add(c.opts.RenewDeadline)
		c.mu.RUnlock()
		err := c.renew(deadline)
		if err == nil {
			timer.Reset(c.opts.RenewInterval)
			continue
		}
		if errors.Is(err, ErrLost) || !time.Now().Before(deadline) {
			c.lose(err)
			return
		}
		// A transient failure: retry soon, still within the deadline.
		c.opts.Log.Info("renewing naming node lease failed; retrying", "node", c.node, "error", err.Error())
		timer.Reset(min(c.opts.RenewInterval, time.Until(deadline)/2+time.Millisecond))
	}
}

// renew writes a new renew time and watermark. The request may not outlive the renew deadline.
func (c *Claim) renew(deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	go func() {
		// Release must not wait for a slow API server.
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	started := time.Now()
	c.mu.RLock()
	lease := c.lease.DeepCopy()
	until := c.until
	c.mu.RUnlock()

	now := c.opts.Now()
	// Never lower the watermark while holding: names up to the old one may already be out.
	until = max(until, now.Add(c.opts.LeaseDuration).UnixMilli())
	lease.Spec.RenewTime = &metav1.MicroTime{Time: now}
	lease.Annotations[AnnotationUsedUntil] = strconv.FormatInt(until, 10)
	err := c.client.Update(ctx, lease)
	if apierrors.IsConflict(err) {
		// Someone wrote the Lease: it is still ours only if we are still its holder since our acquisition.
		lease, err = c.reread(ctx, lease)
		if err == nil {
			err = c.client.Update(ctx, lease)
		}
	}
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: %s was deleted", ErrLost, c.LeaseName())
	case err != nil:
		return fmt.Errorf("renew %s: %w", c.LeaseName(), err)
	}
	c.mu.Lock()
	c.lease, c.until, c.renewedAt = lease, until, started
	c.mu.Unlock()
	return nil
}

// reread fetches the Lease after a conflict and returns want's changes on top of it, or ErrLost if the
// Lease changed hands.
func (c *Claim) reread(ctx context.Context, want *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	var cur coordinationv1.Lease
	if err := c.client.Get(ctx, client.ObjectKeyFromObject(want), &cur); err != nil {
		return nil, err
	}
	if Holder(&cur) != c.opts.Identity || !cur.Spec.AcquireTime.Equal(want.Spec.AcquireTime) {
		return nil, fmt.Errorf("%w: %s taken by %q", ErrLost, c.LeaseName(), Holder(&cur))
	}
	if cur.Annotations == nil {
		cur.Annotations = map[string]string{}
	}
	cur.Spec.RenewTime = want.Spec.RenewTime
	cur.Annotations[AnnotationUsedUntil] = want.Annotations[AnnotationUsedUntil]
	return &cur, nil
}

func (c *Claim) lose(err error) {
	if !errors.Is(err, ErrLost) {
		err = fmt.Errorf("%w: %w", ErrLost, err)
	}
	// Under the lock, so that no Admit sees the claim neither held nor ended.
	c.mu.Lock()
	c.held = false
	c.cancel(err)
	c.mu.Unlock()
	c.opts.Log.Info("lost naming node id; no more names are issued under it", "node", c.node, "reason", err.Error())
}
