package lease

import (
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
)

// State is what a Lease says about its lock at a given time.
type State int

const (
	// Free means no Lease, or a Lease without a holder (released).
	Free State = iota
	// Held means a holder renewed it within its duration; the lock is in use.
	Held
	// Expired means a holder stopped renewing; the lock may be taken over (and its work recovered).
	Expired
)

func (s State) String() string {
	switch s {
	case Free:
		return "Free"
	case Held:
		return "Held"
	case Expired:
		return "Expired"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Classify judges l (nil: no Lease) at now; see the package doc.
func Classify(l *coordinationv1.Lease, now time.Time) State {
	if Holder(l) == "" {
		return Free
	}
	expiry := Expiry(l)
	if !expiry.IsZero() && now.Before(expiry) {
		return Held
	}
	return Expired
}

// Holder returns the holder identity of l, or "".
func Holder(l *coordinationv1.Lease) string {
	if l == nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// Expiry is when l expires unless renewed (zero when it cannot be told).
func Expiry(l *coordinationv1.Lease) time.Time {
	if l == nil || l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return time.Time{}
	}
	return l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
}
