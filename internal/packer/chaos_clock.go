//go:build chaos

package packer

import (
	"math/rand/v2"
	"time"

	"github.com/go-logr/logr"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

// This file is compiled only into the end-to-end suite's image (`make image-chaos`, build tag chaos):
// it gives packers clocks that are off by minutes, which processes on one machine cannot otherwise
// have, so the e2e proves that nothing in DES compares the packer's clock with another machine's.
// Product builds have none of it (chaos_clock_off.go).

// annotationClockSkew on a DesShard (a duration such as "3m") makes each of its packers pick a clock
// offset uniformly in [-skew, +skew).
const annotationClockSkew = "des.datavision.io/chaos-clock-skew"

// chaosClock returns the packer's skewed clock, or nil for the real one.
func chaosClock(ds *desv1.DesShard, log logr.Logger) func() time.Time {
	v := ds.Annotations[annotationClockSkew]
	if v == "" {
		return nil
	}
	skew, err := time.ParseDuration(v)
	if err != nil || skew <= 0 {
		log.Info("CHAOS: ignoring a clock skew that is not a positive duration", "annotation", annotationClockSkew, "value", v)
		return nil
	}
	offset := time.Duration(rand.Int64N(int64(2*skew))) - skew
	log.Info("CHAOS: this packer's clock is off", "offset", offset.String())
	return func() time.Time { return time.Now().Add(offset) }
}
