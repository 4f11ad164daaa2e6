package controllers

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/datavision/des/internal/lease"
)

// Shard Leases are judged by internal/lease, the code the packer holds them with, so the controller and
// the packer cannot disagree on when a shard is busy or its writer gone. These names exist because the
// reconcilers call their Lease variables "lease", which would hide the package.

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

// leaseExpiry is when l expires unless renewed (zero when it cannot be told).
func leaseExpiry(l *coordinationv1.Lease) time.Time { return lease.Expiry(l) }
