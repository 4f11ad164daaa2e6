package packer

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/objstore"
)

// Config is the work of one packer run.
type Config struct {
	DesShard *desv1.DesShard
	Source   *desv1.DesSource
	// Shards to pack, in order.
	Shards []int32
	// Identity is the pod name: the Lease holder and status.pod of the containers.
	Identity string
	// Job is the packer Job's name, recorded in status.job.
	Job string
	// Deadline ends the time budget: no container is started and no row claimed after it.
	Deadline time.Time
	Tuning   Tuning
}

// Tuning holds performance settings; zero fields take the defaults below.
type Tuning struct {
	// Window is the number of source objects fetched ahead of the writer.
	Window int
	// PrefetchBytes bounds the bytes of fetched objects waiting for the writer. Objects larger than a
	// quarter of it, and big payloads, are not fetched ahead but streamed when their turn comes.
	PrefetchBytes int64
	// ClaimBatch is the most rows claimed by one statement.
	ClaimBatch int
	// PartSize of the container upload; raised when needed to fit the limits into 10,000 parts.
	PartSize int64
	// UploadConcurrency is the number of container parts uploaded at once.
	UploadConcurrency int
	// BigFilePartSize and BigFileConcurrency configure the upload of one big payload.
	BigFilePartSize    int64
	BigFileConcurrency int
	// ProgressInterval between progress updates of the open container's status.
	ProgressInterval time.Duration
	// MaxSourceFailures in a row (other than missing objects) abandon the container: the source store
	// is failing, and marking every row failed would only burn their retries.
	MaxSourceFailures int
	// TempDir holds the open container's temporary files: its index, meta and placements, some 200
	// bytes per file, so that the packer's memory does not grow with the files of a container
	// (default: os.TempDir(), which is $TMPDIR).
	TempDir string
	// LeaseDuration, LeaseRenewInterval and LeaseRenewDeadline override the protocol's Lease timing
	// (tests only).
	LeaseDuration, LeaseRenewInterval, LeaseRenewDeadline time.Duration
}

// Defaults of Tuning.
const (
	DefaultWindow             = 64
	DefaultPrefetchBytes      = 64 << 20
	DefaultClaimBatch         = 1000
	DefaultPartSize           = 8 << 20
	DefaultUploadConcurrency  = 4
	DefaultBigFilePartSize    = 8 << 20
	DefaultBigFileConcurrency = 2
	DefaultProgressInterval   = 15 * time.Second
	DefaultMaxSourceFailures  = 50
)

func (t Tuning) withDefaults() Tuning {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def64 := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&t.Window, DefaultWindow)
	def64(&t.PrefetchBytes, DefaultPrefetchBytes)
	def(&t.ClaimBatch, DefaultClaimBatch)
	def64(&t.PartSize, DefaultPartSize)
	def(&t.UploadConcurrency, DefaultUploadConcurrency)
	def64(&t.BigFilePartSize, DefaultBigFilePartSize)
	def(&t.BigFileConcurrency, DefaultBigFileConcurrency)
	def(&t.MaxSourceFailures, DefaultMaxSourceFailures)
	if t.ProgressInterval <= 0 {
		t.ProgressInterval = DefaultProgressInterval
	}
	if t.TempDir == "" {
		t.TempDir = os.TempDir()
	}
	return t
}

// Deps are the clients the packer works through.
type Deps struct {
	// Kube reads and writes DesContainers and Leases; it must not be a cached client.
	Kube    client.Client
	Catalog *catalog.Catalog
	// Source reads the source objects; Archive receives the containers and big payloads.
	Source, Archive *objstore.Store
	Metrics         *Metrics
	Log             logr.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (c *Config) validate() error {
	switch {
	case c.DesShard == nil || c.Source == nil:
		return errors.New("packer: DesShard and DesSource are required")
	case len(c.Shards) == 0:
		return errors.New("packer: no shards to pack")
	case c.Identity == "":
		return errors.New("packer: identity (pod name) is required")
	case c.Deadline.IsZero():
		return errors.New("packer: deadline is required")
	}
	for _, s := range c.Shards {
		if !servesShard(c.DesShard.Spec, c.Source.Spec.Naming.ShardBits, s) {
			return fmt.Errorf("packer: shard %d is not served by DesShard %s", s, c.DesShard.Name)
		}
	}
	return nil
}

// servesShard reports whether the DesShard spec lists shard and the source's shard width admits it.
func servesShard(spec desv1.DesShardSpec, shardBits int32, shard int32) bool {
	if shard < 0 || (shardBits > 0 && shard >= int32(1)<<shardBits) {
		return false
	}
	for _, s := range spec.Shards {
		if s == shard {
			return true
		}
	}
	for _, r := range spec.ShardRanges {
		if r.From <= shard && shard <= r.To {
			return true
		}
	}
	return false
}

// limits are a DesShard's container limits with the CRD defaults applied, for objects created without
// the API server's defaulting (tests, old objects).
type limits struct {
	maxBytes, maxFiles int64
	maxAge             time.Duration
	bigFileThreshold   int64
}

func shardLimits(spec desv1.DesShardSpec) limits {
	l := limits{
		maxBytes: spec.Limits.MaxBytes, maxFiles: spec.Limits.MaxFiles,
		maxAge: spec.Limits.MaxAge.Duration, bigFileThreshold: spec.BigFileThreshold,
	}
	if l.maxBytes <= 0 {
		l.maxBytes = desv1.DefaultMaxBytes
	}
	if l.maxFiles <= 0 {
		l.maxFiles = desv1.DefaultMaxFiles
	}
	if l.maxAge <= 0 {
		l.maxAge = desv1.DefaultMaxAge
	}
	if l.bigFileThreshold <= 0 {
		l.bigFileThreshold = desv1.DefaultBigFileThreshold
	}
	return l
}

// partSize is the container upload's part size: at least the tuned one, and large enough that a
// container at its limits (payload plus roughly 512 bytes of meta and index per file) fits in 9,000
// parts, leaving headroom below S3's 10,000.
func partSize(tuned int64, l limits) int64 {
	need := (l.maxBytes + l.maxFiles*512 + 8999) / 9000
	return max(tuned, need, objstore.MinPartSize)
}
