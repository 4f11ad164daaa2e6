package controllers

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
)

// LeaseState classifies a shard Lease.
type LeaseState int

const (
	// LeaseFree: no Lease, no holder, or released.
	LeaseFree LeaseState = iota
	// LeaseHeld: a holder renewed it within its duration; the shard is busy.
	LeaseHeld
	// LeaseExpired: a holder stopped renewing; its work may need recovery.
	LeaseExpired
)

func (s LeaseState) String() string {
	return [...]string{"Free", "Held", "Expired"}[s]
}

// classifyLease decides whether a shard is busy. A nil Lease is free.
func classifyLease(l *coordinationv1.Lease, now time.Time) LeaseState {
	if l == nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
		return LeaseFree
	}
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return LeaseExpired
	}
	expiry := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
	if now.Before(expiry) {
		return LeaseHeld
	}
	return LeaseExpired
}

// leaseHolder returns the holder identity, or "".
func leaseHolder(l *coordinationv1.Lease) string {
	if l == nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}
