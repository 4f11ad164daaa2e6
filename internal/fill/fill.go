// Package fill decides when a shard has enough ready rows to be packed: the fill policy of a
// DesShard's spec.limits. A run that packed every ready row of every shard made containers as small as
// whatever happened to be ready (a dozen files, with an hourly run and a few thousand files a day over
// 256 shards); the policy waits until a shard fills a container, but never longer than MaxWait.
//
// The controller decides with it which shards get a Job, and the packer decides with it whether to
// start another container once a full one is written (so a shard's remainder waits for more rows
// instead of becoming a small container). Both ask the catalog for the same Stats, so they agree.
package fill

import (
	"fmt"
	"time"
)

// Policy is a DesShard's fill policy, with defaults applied.
type Policy struct {
	// MinFiles and MinBytes of ready rows make a shard due.
	MinFiles, MinBytes int64
	// MaxFiles and MaxBytes are the container limits: ready rows that fill a whole container make the
	// shard due whatever MinFiles and MinBytes say.
	MaxFiles, MaxBytes int64
	// MaxWait is how long the oldest ready row may wait before its shard is due however empty.
	MaxWait time.Duration
}

// Stats are a shard's ready rows.
type Stats struct {
	Rows, Bytes int64
	// Oldest is the creation time of the oldest ready row (zero when unknown or no rows).
	Oldest time.Time
}

// Reason says why a shard is due or not.
type Reason string

const (
	// Empty means no ready rows.
	Empty Reason = "Empty"
	// MinFiles means enough ready rows.
	MinFiles Reason = "MinFiles"
	// MinBytes means enough ready bytes.
	MinBytes Reason = "MinBytes"
	// MaxWait means the oldest ready row has waited long enough.
	MaxWait Reason = "MaxWait"
	// Waiting means some ready rows, not enough yet.
	Waiting Reason = "Waiting"
)

// Decision is the verdict for one shard.
type Decision struct {
	Due    bool
	Reason Reason
	// PackBy is when the oldest ready row has waited MaxWait: a Waiting shard becomes due then, and a
	// due shard still unpacked past it holds rows that are late (the controller's
	// des_desshard_pack_overdue_seconds). Zero without ready rows or when the oldest row's time is unknown.
	PackBy time.Time
}

// Decide applies the policy to a shard's stats at now. A row whose creation time is unknown (zero
// Oldest with rows) counts as having waited long enough: a policy that could hold rows for ever is
// worse than one small container.
func Decide(p Policy, s Stats, now time.Time) Decision {
	minFiles, minBytes := p.thresholds()
	if s.Rows <= 0 {
		return Decision{Reason: Empty}
	}
	var packBy time.Time
	if !s.Oldest.IsZero() {
		packBy = s.Oldest.Add(p.MaxWait)
	}
	switch {
	case s.Rows >= minFiles:
		return Decision{Due: true, Reason: MinFiles, PackBy: packBy}
	case s.Bytes >= minBytes:
		return Decision{Due: true, Reason: MinBytes, PackBy: packBy}
	case packBy.IsZero(), !now.Before(packBy):
		return Decision{Due: true, Reason: MaxWait, PackBy: packBy}
	}
	return Decision{Reason: Waiting, PackBy: packBy}
}

// thresholds are MinFiles and MinBytes, lowered to what fills one container.
func (p Policy) thresholds() (files, bytes int64) {
	files, bytes = p.MinFiles, p.MinBytes
	if p.MaxFiles > 0 && p.MaxFiles < files {
		files = p.MaxFiles
	}
	if p.MaxBytes > 0 && p.MaxBytes < bytes {
		bytes = p.MaxBytes
	}
	return files, bytes
}

// Describe says in a few words how full a waiting shard is, for logs and status messages.
func Describe(p Policy, s Stats, d Decision) string {
	if d.Reason != Waiting {
		return fmt.Sprintf("%s: %d rows, %d bytes", d.Reason, s.Rows, s.Bytes)
	}
	files, bytes := p.thresholds()
	return fmt.Sprintf("waiting: %d of %d rows, %d of %d bytes; packed by %s at the latest",
		s.Rows, files, s.Bytes, bytes, d.PackBy.UTC().Format(time.RFC3339))
}
