package v1alpha1

import "time"

// Defaults of the API. The CRD schema applies them when an object is stored: the
// +kubebuilder:default markers cannot name a constant, so they state the same values, and
// TestDefaultsMatchTheSchema fails when a marker and its constant disagree. Code uses the constants
// for objects the schema never defaulted (a DesShard built in Go, a field left zero by an older
// version), so both paths give the same answer.
const (
	DefaultInterval               = time.Hour
	DefaultRetention              = 7 * 24 * time.Hour
	DefaultShardsPerJob     int32 = 16
	DefaultMaxBytes         int64 = 4 << 30
	DefaultMaxFiles         int64 = 1_000_000
	DefaultMaxAge                 = 30 * time.Minute
	DefaultBigFileThreshold int64 = 64 << 20
	DefaultActiveDeadline   int64 = 3600 // seconds
	DefaultBackoffLimit     int32 = 2
	DefaultNamePrefix             = "DES"
	DefaultShardBits        int32 = 12
	DefaultMarkerSchedule         = "*/5 * * * *"
	DefaultMarkerBatchSize  int32 = 1000
	DefaultMarkerMinAge           = 5 * time.Minute
	DefaultMaxRetries       int32 = 5
	DefaultRegion                 = "us-east-1"
)

// IntervalOrDefault is the DesShard's interval between runs.
func (s *DesShardSpec) IntervalOrDefault() time.Duration {
	return durationOr(s.Interval.Duration, DefaultInterval)
}

// RetentionOrDefault is how long the DesShard's Committed DesContainers are kept.
func (s *DesShardSpec) RetentionOrDefault() time.Duration {
	return durationOr(s.Retention.Duration, DefaultRetention)
}

func durationOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
