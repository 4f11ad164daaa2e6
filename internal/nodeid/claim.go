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
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/datavision/des/internal/lease"
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
	// ErrLost is wrapped by Admit's error and Err once the Lease is lost or released.
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
	if o.LeaseDuration == 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	// The timing rules are the lease package's; check them once for every candidate.
	lo, err := o.lease(0).WithDefaults()
	if err != nil {
		return o, fmt.Errorf("node lease: %w", err)
	}
	o.RenewInterval, o.RenewDeadline, o.Now = lo.RenewInterval, lo.RenewDeadline, lo.Now
	for _, n := range o.Candidates {
		if n < 0 || n >= NodeCount {
			return o, fmt.Errorf("%w: candidate node id %d out of range 0..%d", lease.ErrOptions, n, NodeCount-1)
		}
	}
	if len(o.Candidates) == 0 {
		start := rand.IntN(NodeCount)
		for i := range NodeCount {
			o.Candidates = append(o.Candidates, (start+i)%NodeCount)
		}
	}
	return o, nil
}

// lease is the lease package's view of the Lease of node.
func (o Options) lease(node int) lease.Options {
	return lease.Options{
		Namespace: o.Namespace, Name: LeaseName(node), Identity: o.Identity,
		Labels:   map[string]string{protocol.LabelManagedBy: protocol.ManagedByDES, protocol.LabelComponent: ComponentNaming},
		Duration: o.LeaseDuration, RenewInterval: o.RenewInterval, RenewDeadline: o.RenewDeadline,
		Now: o.Now, Log: o.Log.WithValues("node", node),
	}
}

// Claim is the exclusive use of one node id while its Lease is held. It is safe for concurrent use.
type Claim struct {
	hold     *lease.Hold
	node     int
	duration time.Duration
	log      logr.Logger
	after    int64        // names must be later than this Unix millisecond; set once, at the claim
	promised atomic.Int64 // highest watermark ever sent to the API server
	used     atomic.Int64 // latest millisecond admitted

	mu       sync.RWMutex // held shared by Admit, exclusively by Release: no name slips past a release
	released bool
}

// Acquire claims the first free or expired node id among opts.Candidates and starts renewing its Lease in
// the background. ctx bounds the acquisition only: the claim lasts until Release or until the Lease is
// lost. It returns ErrNoFreeNode when every candidate is held.
func Acquire(ctx context.Context, c client.Client, opts Options) (*Claim, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	existing, err := listLeases(ctx, c, opts.Namespace)
	if err != nil {
		return nil, err
	}
	for _, node := range opts.Candidates {
		claim, err := claimNode(ctx, c, opts, node, existing[LeaseName(node)])
		switch {
		case err == nil:
			return claim, nil
		case errors.Is(err, lease.ErrHeld):
			continue // held, or another claimer won the race for it: try the next id
		default:
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w in %s (%d candidates)", ErrNoFreeNode, opts.Namespace, len(opts.Candidates))
}

// listLeases returns the node Leases of ns by name. Only listed Leases are ever updated: an object of
// the same name without our labels belongs to someone else and stays untouched.
func listLeases(ctx context.Context, c client.Client, ns string) (map[string]*coordinationv1.Lease, error) {
	var list coordinationv1.LeaseList
	if err := c.List(ctx, &list, client.InNamespace(ns),
		client.MatchingLabels{protocol.LabelComponent: ComponentNaming}); err != nil {
		return nil, fmt.Errorf("list node leases in %s: %w", ns, err)
	}
	existing := make(map[string]*coordinationv1.Lease, len(list.Items))
	for i := range list.Items {
		existing[list.Items[i].Name] = &list.Items[i]
	}
	return existing, nil
}

// claimNode creates the Lease of node, or takes over l if it is free or expired.
func claimNode(ctx context.Context, c client.Client, opts Options, node int, l *coordinationv1.Lease) (*Claim, error) {
	claim := &Claim{node: node, duration: opts.LeaseDuration, log: opts.Log.WithValues("node", node)}
	lo := opts.lease(node)
	lo.Decorate = claim.watermark
	hold, err := lease.Claim(ctx, c, lo, l)
	if err != nil {
		return nil, fmt.Errorf("claim node lease %s/%s: %w", opts.Namespace, LeaseName(node), err)
	}
	claim.hold = hold
	claim.used.Store(claim.after)
	claim.log.Info("claimed naming node id", "lease", LeaseName(node), "previousHolder", lease.Holder(l), "startAfterMs", claim.after)
	return claim, nil
}

// watermark is the lease package's Decorate hook: it writes AnnotationUsedUntil into every write of the
// Lease (see the package doc).
func (c *Claim) watermark(l *coordinationv1.Lease, stage lease.Stage, now time.Time) {
	var until int64
	switch stage {
	case lease.StageClaim:
		c.after = startAfter(l, now, c.duration)
		until = max(c.after, now.UnixMilli()) + c.duration.Milliseconds()
	case lease.StageRenew:
		// Never lower the watermark while holding: names up to the old one may already be out.
		until = max(c.promised.Load(), now.Add(c.duration).UnixMilli())
	case lease.StageRelease:
		until = c.used.Load()
	}
	c.promised.Store(max(c.promised.Load(), until))
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[AnnotationUsedUntil] = strconv.FormatInt(until, 10)
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
func (c *Claim) Lost() <-chan struct{} { return c.hold.Lost() }

// Context is cancelled when the claim ends; its cause says why.
func (c *Claim) Context() context.Context { return c.hold.Context() }

// Err is nil while the claim is held, else why it ended (wrapping ErrLost).
func (c *Claim) Err() error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.errLocked()
}

// Held reports whether names may currently be issued under the claim.
func (c *Claim) Held() bool { return c.Err() == nil }

func (c *Claim) errLocked() error {
	if err := c.hold.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrLost, err)
	}
	if c.released {
		return fmt.Errorf("%w: %s released", ErrLost, c.LeaseName())
	}
	return nil
}

// Admit must be called with a batch of generated names before any of them is handed out or stored: it
// fails with an error wrapping ErrLost when the claim no longer holds its Lease, and with ErrNotCovered
// when a name is later than the watermark of the last successful write of the Lease. A batch that is
// not admitted must be discarded.
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
	if err := c.errLocked(); err != nil {
		return err
	}
	if until, _ := UsedUntil(c.hold.Lease()); latest > until {
		return fmt.Errorf("%w: %d > %d", ErrNotCovered, latest, until)
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
// fails from the moment Release is called. Releasing a lost claim writes nothing.
func (c *Claim) Release(ctx context.Context) error {
	c.mu.Lock()
	wasHeld := c.errLocked() == nil
	c.released = true
	c.mu.Unlock()
	if err := c.hold.Release(ctx); err != nil {
		return fmt.Errorf("release node lease %s: %w", c.LeaseName(), err)
	}
	if wasHeld {
		c.log.Info("released naming node id", "lastUsedMs", c.used.Load())
	}
	return nil
}
