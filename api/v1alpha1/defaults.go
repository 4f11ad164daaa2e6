package v1alpha1

import (
	"time"

	"github.com/datavision/des/internal/fill"
)

// Defaults of the API. The CRD schema applies them when an object is stored: the
// +kubebuilder:default markers cannot name a constant, so they state the same values, and
// TestDefaultsMatchTheSchema fails when a marker and its constant disagree. Code uses the constants
// for objects the schema never defaulted (a DesShard built in Go, a field left zero by an older
// version), so both paths give the same answer.
const (
	DefaultInterval               = time.Hour
	DefaultRetention              = 7 * 24 * time.Hour
	DefaultMaxContainers    int32 = 10_000
	DefaultShardsPerJob     int32 = 16
	DefaultMaxBytes         int64 = 4 << 30
	DefaultMaxFiles         int64 = 1_000_000
	DefaultMaxAge                 = 30 * time.Minute
	DefaultMinFiles         int64 = 10_000
	DefaultMinBytes         int64 = 1 << 30
	DefaultMaxWait                = 24 * time.Hour
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
	DefaultDeleteDelay            = time.Hour
	DefaultDeletesPerSecond int32 = 500
)

// IntervalOrDefault is the DesShard's interval between runs.
func (s *DesShardSpec) IntervalOrDefault() time.Duration {
	return durationOr(s.Interval.Duration, DefaultInterval)
}

// RetentionOrDefault is how long the DesShard's Committed DesContainers are kept.
func (s *DesShardSpec) RetentionOrDefault() time.Duration {
	return durationOr(s.Retention.Duration, DefaultRetention)
}

// MaxContainersOrDefault is how many finished DesContainers the DesShard keeps.
func (s *DesShardSpec) MaxContainersOrDefault() int {
	if s.MaxContainers <= 0 {
		return int(DefaultMaxContainers)
	}
	return int(s.MaxContainers)
}

// MinFilesOrDefault is the fill policy's MinFiles (MinBytesOrDefault and MaxWaitOrDefault its others).
func (l *ContainerLimits) MinFilesOrDefault() int64 { return int64Or(l.MinFiles, DefaultMinFiles) }

// MinBytesOrDefault is the fill policy's MinBytes.
func (l *ContainerLimits) MinBytesOrDefault() int64 { return int64Or(l.MinBytes, DefaultMinBytes) }

// MaxWaitOrDefault is the fill policy's MaxWait.
func (l *ContainerLimits) MaxWaitOrDefault() time.Duration {
	return durationOr(l.MaxWait.Duration, DefaultMaxWait)
}

func int64Or(v, def int64) int64 {
	if v <= 0 {
		return def
	}
	return v
}

func durationOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// DeletesSources reports whether packed source objects are to be deleted (or, in a dry run, checked).
func (d *DeleteSource) DeletesSources() bool { return d.Policy == DeleteAfterVerify }

// DeletesPerSecondOrDefault is the delete rate cap of one packer.
func (d *DeleteSource) DeletesPerSecondOrDefault() int32 {
	if d.DeletesPerSecond <= 0 {
		return DefaultDeletesPerSecond
	}
	return d.DeletesPerSecond
}

// FillPolicy is the fill policy of the limits, with defaults applied (internal/fill decides with it).
func (l *ContainerLimits) FillPolicy() fill.Policy {
	return fill.Policy{
		MinFiles: l.MinFilesOrDefault(), MinBytes: l.MinBytesOrDefault(),
		MaxFiles: int64Or(l.MaxFiles, DefaultMaxFiles), MaxBytes: int64Or(l.MaxBytes, DefaultMaxBytes),
		MaxWait: l.MaxWaitOrDefault(),
	}
}
