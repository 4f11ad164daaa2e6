package controllers

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/datavision/des/internal/lease"
)

// Shard Leases are judged by internal/lease, the code the packer holds them with: busy by Classify on
// the cached Lease, a writer gone by a lease.Observer on uncached reads (DesContainerReconciler.Leases).
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
