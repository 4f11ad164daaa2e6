package lease

import (
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
)

// Observer judges Leases written by other processes without comparing their clocks to ours, as
// client-go's leader election does: it remembers, per Lease, the last (holderIdentity, renewTime,
// resourceVersion) it saw and the observer's own time when it first saw that value. A held Lease is
// Expired only once this observer has seen it unchanged for its leaseDurationSeconds.
//
// renewTime is compared for change only, never to our clock: a holder whose clock is minutes off
// still renews, and each renewal is a new value. An observer that knows nothing (a restarted
// controller) waits one full duration from its first sight: conservative, so safe.
//
// now must come from one monotonic source (time.Now, or a fake clock in tests). It is safe for
// concurrent use.
type Observer struct {
	mu   sync.Mutex
	seen map[string]sighting
}

// sighting is one Lease value and when this observer first saw it.
type sighting struct {
	holder, renew, version string
	since                  time.Time
}

// Observation is an Observer's judgement of one Lease.
type Observation struct {
	State State
	// Left is how long a Held Lease may stay unchanged before this observer judges it Expired.
	Left time.Duration
}

// NewObserver returns an Observer that has seen nothing.
func NewObserver() *Observer { return &Observer{seen: map[string]sighting{}} }

// Observe records l as seen at now and judges it. A nil Lease, or one without a holder, is Free; a
// held Lease without leaseDurationSeconds cannot be judged fresh and counts as Expired (as Classify).
func (o *Observer) Observe(l *coordinationv1.Lease, now time.Time) Observation {
	if Holder(l) == "" {
		if l != nil {
			o.Forget(l.Namespace, l.Name)
		}
		return Observation{State: Free}
	}
	if l.Spec.LeaseDurationSeconds == nil || *l.Spec.LeaseDurationSeconds <= 0 {
		return Observation{State: Expired}
	}
	duration := time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	cur := sighting{holder: Holder(l), version: l.ResourceVersion, since: now}
	if l.Spec.RenewTime != nil {
		cur.renew = l.Spec.RenewTime.UTC().Format(time.RFC3339Nano)
	}
	key := l.Namespace + "/" + l.Name
	o.mu.Lock()
	if o.seen == nil {
		o.seen = map[string]sighting{}
	}
	prev, ok := o.seen[key]
	if ok && prev.holder == cur.holder && prev.renew == cur.renew && prev.version == cur.version {
		cur.since = prev.since
	}
	o.seen[key] = cur
	o.mu.Unlock()
	unchanged := now.Sub(cur.since)
	if unchanged >= duration {
		return Observation{State: Expired}
	}
	return Observation{State: Held, Left: duration - unchanged}
}

// Forget drops what the observer knows of a Lease (deleted, or no longer of interest).
func (o *Observer) Forget(namespace, name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.seen, namespace+"/"+name)
}
