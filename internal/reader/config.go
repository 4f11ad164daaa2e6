package reader

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/naming"
	"github.com/datavision/des/internal/objstore"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultCacheBytes         = 256 << 20
	DefaultTailSize           = 1 << 20
	DefaultMaxMetaCache       = 64 << 20
	DefaultMaxConcurrentOpens = 2
	DefaultMaxBatchNames      = 1000
	DefaultFetchConcurrency   = 8
	DefaultVerifyBuffer       = 4 << 20
	DefaultBatchMaxRange      = 4 << 20
	DefaultListTTL            = 30 * time.Second
	DefaultMissRefresh        = 2 * time.Second
	DefaultOpenTimeout        = time.Minute
	DefaultLookAheadDays      = 1
	DefaultCatalogTimeout     = 3 * time.Second
	DefaultPlacementEntries   = 20_000
	DefaultPlacementTTL       = 10 * time.Minute
	DefaultShardBits          = int(desv1.DefaultShardBits)
)

// Config configures a Server.
type Config struct {
	// Store is the object store client (read-only credentials suffice). Required.
	Store *objstore.Store
	// Bucket holds the containers and their external payloads. Required.
	Bucket string
	// Prefixes are the archive prefixes whose containers may be read (at least one). A key is readable
	// only if it lies strictly below one of them.
	Prefixes []string
	// ShardBits is the naming.Shard width used by the archive (the DesSource's spec.naming.shardBits).
	ShardBits int

	// CacheBytes bounds the (estimated) memory of cached container indexes.
	CacheBytes int64
	// TailSize is the size of the suffix read that opens a container: when index and meta fit in it,
	// opening costs one request.
	TailSize int64
	// MaxMetaCache bounds one read of the meta region at open (at most 8 MiB is read at once anyway):
	// the region is streamed in chunks, each summarised into per-entry checksum, content type and
	// external key, and dropped, so that serving a file needs no meta request whatever the container's
	// size.
	MaxMetaCache int64
	// MaxConcurrentOpens bounds the container opens in flight: a burst of cold reads over many
	// containers fetches at most this many indexes (each up to ~100 MB at a million entries) at once.
	MaxConcurrentOpens int
	// VerifyBuffer is the largest payload fetched whole and verified before the response starts.
	VerifyBuffer int64
	// OpenTimeout bounds one container open; opens run detached from the request that started them so
	// that one client leaving does not fail the others waiting for the same container.
	OpenTimeout time.Duration

	// MaxBatchNames caps the names in one batch request.
	MaxBatchNames int
	// Batch controls range coalescing (256 KiB gaps, 4 MiB ranges when zero). Memory per batch is about
	// FetchConcurrency × max(MaxRange, VerifyBuffer).
	Batch desformat.BatchOptions
	// FetchConcurrency is the number of range GETs in flight per batch.
	FetchConcurrency int

	// ListTTL is how long candidate container lists are reused; MissRefresh is the minimum age at which a
	// list is refreshed early because a name was not found in it.
	ListTTL     time.Duration
	MissRefresh time.Duration
	// LookAheadDays is how many days after a name's day are searched at least (DefaultLookAheadDays
	// when 0, none when negative); every day up to today is searched in any case, since a backlog can
	// pack a name days after it was issued. It matters only for names dated in the future of this
	// clock.
	LookAheadDays int

	// Catalog, when set, is asked first where a file is (the DesSource's catalog: a read-only role is
	// enough): a placed file then costs one ranged GET, with no listing and no index. When it fails,
	// the reader falls back to searching the archive.
	Catalog Locator
	// CatalogTimeout bounds one catalog lookup (DefaultCatalogTimeout when 0), so that a hung
	// database turns into a fallback quickly instead of a hung request.
	CatalogTimeout time.Duration
	// PlacementEntries bounds the placements kept from catalog answers (DefaultPlacementEntries when
	// 0, none when negative), each for PlacementTTL (DefaultPlacementTTL when 0): a committed file's
	// placement never changes, so a warm read by name costs one GET and no catalog query. Names the
	// catalog does not have packed are never kept (they may be packed a moment later).
	PlacementEntries int
	PlacementTTL     time.Duration

	// Kube, when set, lists DesContainer resources of Namespace to find a name's containers (listing
	// the bucket remains the fallback, since DesContainers are deleted after retention).
	Kube      client.Reader
	Namespace string

	// Auth, when enabled, requires a Kubernetes bearer token allowed to read this reader's files on
	// every route but the probes and /metrics (the read service; see auth.go).
	Auth AuthConfig

	// IndexTier, when set, shares opened container indexes between replicas through Redis (see
	// indextier.go): a container another replica opened costs no index request. The caller closes it.
	IndexTier *RedisIndexTier

	// Logger receives structured logs (ctrl.Log named "reader" when unset). Credentials are never logged.
	Logger logr.Logger
}

func (c Config) withDefaults() Config {
	setDefault(&c.CacheBytes, DefaultCacheBytes)
	setDefault(&c.TailSize, DefaultTailSize)
	setDefault(&c.MaxMetaCache, DefaultMaxMetaCache)
	setDefault(&c.MaxConcurrentOpens, DefaultMaxConcurrentOpens)
	setDefault(&c.VerifyBuffer, DefaultVerifyBuffer)
	setDefault(&c.OpenTimeout, DefaultOpenTimeout)
	setDefault(&c.MaxBatchNames, DefaultMaxBatchNames)
	setDefault(&c.FetchConcurrency, DefaultFetchConcurrency)
	setDefault(&c.ListTTL, DefaultListTTL)
	setDefault(&c.MissRefresh, DefaultMissRefresh)
	setDefault(&c.ShardBits, DefaultShardBits)
	setDefault(&c.CatalogTimeout, DefaultCatalogTimeout)
	setDefault(&c.PlacementTTL, DefaultPlacementTTL)
	switch {
	case c.PlacementEntries == 0:
		c.PlacementEntries = DefaultPlacementEntries
	case c.PlacementEntries < 0:
		c.PlacementEntries = 0
	}
	switch {
	case c.LookAheadDays == 0:
		c.LookAheadDays = DefaultLookAheadDays
	case c.LookAheadDays < 0:
		c.LookAheadDays = 0
	}
	if c.Batch == (desformat.BatchOptions{}) {
		// Smaller merged ranges than desformat's default: a batch holds FetchConcurrency of them.
		c.Batch = desformat.BatchOptions{MaxGap: desformat.DefaultMaxGap, MaxRange: DefaultBatchMaxRange}
	}
	if c.Logger.GetSink() == nil {
		c.Logger = ctrl.Log.WithName("reader")
	}
	c.Prefixes = normalizePrefixes(c.Prefixes)
	return c
}

func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

func (c Config) validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("no object store"))
	}
	if c.Bucket == "" {
		errs = append(errs, errors.New("no bucket"))
	}
	if len(c.Prefixes) == 0 {
		errs = append(errs, errors.New("no archive prefix: refusing to serve a whole bucket"))
	}
	for _, p := range c.Prefixes {
		if !cleanKey(p) {
			errs = append(errs, fmt.Errorf("archive prefix %q is not a clean relative key prefix", p))
		}
	}
	if c.ShardBits < naming.MinShardBits || c.ShardBits > naming.MaxShardBits {
		errs = append(errs, fmt.Errorf("shard bits %d outside %d..%d", c.ShardBits, naming.MinShardBits, naming.MaxShardBits))
	}
	if c.Kube != nil && c.Namespace == "" {
		errs = append(errs, errors.New("a Kubernetes client needs a namespace for DesContainer lookups"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reader: invalid configuration: %w", err)
	}
	return nil
}

// normalizePrefixes drops surrounding slashes and duplicates, so "archive/" and "/archive" both mean
// the keys below "archive/".
func normalizePrefixes(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range in {
		p = strings.Trim(p, "/")
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// cleanKey reports whether k is a relative slash-separated key without empty, "." or ".." segments
// (those could alias other keys on stores that normalize paths).
func cleanKey(k string) bool {
	if k == "" || strings.HasPrefix(k, "/") || strings.HasSuffix(k, "/") || strings.Contains(k, "\\") {
		return false
	}
	for seg := range strings.SplitSeq(k, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return path.Clean(k) == k
}

// errForbiddenKey is returned for keys outside the archive prefixes.
var errForbiddenKey = errors.New("key is outside the configured archive prefixes")

// checkKey allows only clean keys strictly below a configured prefix.
func (c *Config) checkKey(key string) error {
	if !cleanKey(key) {
		return fmt.Errorf("%w: %q is not a clean object key", errForbiddenKey, key)
	}
	for _, p := range c.Prefixes {
		if strings.HasPrefix(key, p+"/") {
			return nil
		}
	}
	return fmt.Errorf("%w: %q", errForbiddenKey, key)
}
