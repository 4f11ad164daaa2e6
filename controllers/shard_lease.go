package controllers

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/datavision/des/internal/lease"
)

// Shard Leases are judged by internal/lease, the code the packer holds them with: by one lease.Observer
// per process (what this controller saw change, on its own clock), busy on the cached Lease, a writer
// gone on uncached reads; lease.Classify (renewTime against our clock) only where no observer is set.
// These names exist because the reconcilers call their Lease variables "lease", which would hide the
// package.

type (
	leaseState       = lease.State
	leaseObservation = lease.Observation
)

const (
	leaseHeld    = lease.Held
	leaseExpired = lease.Expired
)

func classifyLease(l *coordinationv1.Lease, now time.Time) leaseState { return lease.Classify(l, now) }

func leaseHolder(l *coordinationv1.Lease) string { return lease.Holder(l) }

// observeLease judges l with the process's observer o, or, without one (reconcilers built by tests),
// by renewTime against now.
func observeLease(o *lease.Observer, l *coordinationv1.Lease, now time.Time) leaseObservation {
	if o != nil {
		return o.Observe(l, now)
	}
	return leaseObservation{State: classifyLease(l, now), Left: lease.Expiry(l).Sub(now)}
}
