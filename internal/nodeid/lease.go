package nodeid

import (
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/datavision/des/internal/naming"
)

const (
	// NodeCount is the number of node ids a DES name can carry.
	NodeCount = 256
	// LeaseNamePrefix starts the name of every node Lease: des-name-node-<id>.
	LeaseNamePrefix = "des-name-node-"
	// AnnotationUsedUntil holds the Unix millisecond that no name of the Lease's holder exceeds.
	AnnotationUsedUntil = "des.datavision.io/names-used-until-ms"
	// ComponentNaming is the app.kubernetes.io/component label of node Leases.
	ComponentNaming = "name-node"
)

// LeaseName is the name of the Lease that reserves node id node.
func LeaseName(node int) string { return LeaseNamePrefix + strconv.Itoa(node) }

// UsedUntil returns the watermark of l in Unix milliseconds; ok is false when l has none or it does not
// parse.
func UsedUntil(l *coordinationv1.Lease) (ms int64, ok bool) {
	if l == nil {
		return 0, false
	}
	v, found := l.Annotations[AnnotationUsedUntil]
	if !found {
		return 0, false
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	return ms, err == nil
}

// startAfter is the millisecond after which a new holder of l may issue names: the previous holder's
// watermark, or, without one, a lease duration ahead of the claimer's clock (see the package doc).
func startAfter(l *coordinationv1.Lease, now time.Time, d time.Duration) int64 {
	if ms, ok := UsedUntil(l); ok {
		return ms
	}
	return now.Add(d).UnixMilli()
}

// UnixMilli returns the full Unix millisecond of a generated name from its 32 time bits, taking the value
// nearest to near. Names are admitted moments after they are generated and a generator's lead over its
// clock is bounded by a lease duration, far less than the 24 days this is exact for.
func UnixMilli(n naming.Name, near time.Time) int64 {
	ms := near.UnixMilli()
	return ms + int64(int32(n.TimeBits-uint32(ms)))
}
