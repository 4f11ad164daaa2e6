package controllers

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/datavision/des/internal/leasestate"
)

// LeaseState classifies a shard Lease (see internal/leasestate).
type LeaseState = leasestate.State

const (
	LeaseFree    = leasestate.Free
	LeaseHeld    = leasestate.Held
	LeaseExpired = leasestate.Expired
)

func classifyLease(l *coordinationv1.Lease, now time.Time) LeaseState {
	return leasestate.Classify(l, now)
}

func leaseHolder(l *coordinationv1.Lease) string { return leasestate.Holder(l) }
