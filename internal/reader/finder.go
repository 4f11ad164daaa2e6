package reader

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/protocol"
)

// Finder lists the containers that may hold the names of one shard written on one day.
type Finder interface {
	// Containers returns container keys, using cached answers no older than maxAge.
	Containers(ctx context.Context, day time.Time, shard int32, maxAge time.Duration) ([]string, error)
	// Days returns the days (UTC midnights) on which the finder knows containers, in any order.
	Days(ctx context.Context, maxAge time.Duration) ([]time.Time, error)
}

// ttlCache caches values per key for a while, with concurrent refreshes of one key collapsed.
type ttlCache[V any] struct {
	ttl        time.Duration
	maxEntries int
	base       context.Context
	timeout    time.Duration

	flights flightGroup[V]
	mu      sync.Mutex
	entries map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v  V
	at time.Time
}

func newTTLCache[V any](base context.Context, ttl, timeout time.Duration, maxEntries int) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, maxEntries: maxEntries, base: base, timeout: timeout, entries: map[string]ttlEntry[V]{}}
}

// get returns key's value if it is younger than min(maxAge, ttl), else loads it with fill.
func (c *ttlCache[V]) get(ctx context.Context, key string, maxAge time.Duration, fill func(context.Context) (V, error)) (V, error) {
	maxAge = min(maxAge, c.ttl)
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && time.Since(e.at) < maxAge {
		return e.v, nil
	}
	v, _, err := c.flights.do(ctx, c.base, key, func(base context.Context) (V, error) {
		ctx, cancel := context.WithTimeout(base, c.timeout)
		defer cancel()
		v, err := fill(ctx)
		if err == nil {
			c.put(key, v)
		}
		return v, err
	})
	return v, err
}

func (c *ttlCache[V]) put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.maxEntries {
		c.evictLocked()
	}
	c.entries[key] = ttlEntry[V]{v: v, at: time.Now()}
}

// evictLocked drops expired entries, and everything if that was not enough: the cache only saves
// requests, so a rare full reset is cheaper than tracking recency.
func (c *ttlCache[V]) evictLocked() {
	for k, e := range c.entries {
		if time.Since(e.at) >= c.ttl {
			delete(c.entries, k)
		}
	}
	if len(c.entries) >= c.maxEntries {
		clear(c.entries)
	}
}

const maxListCacheEntries = 4096

// ListFinder finds containers by listing <prefix>/<day>/<shard-hex>/ in the bucket, in both layouts
// (protocol.ContainerKey and protocol.LegacyContainerKey).
type ListFinder struct {
	store    *objstore.Store
	bucket   string
	prefixes []string
	cache    *ttlCache[[]string]
}

// NewListFinder lists the given prefixes of bucket; lists are reused for ttl.
func NewListFinder(base context.Context, store *objstore.Store, bucket string, prefixes []string, ttl, timeout time.Duration) *ListFinder {
	return &ListFinder{store: store, bucket: bucket, prefixes: prefixes,
		cache: newTTLCache[[]string](base, ttl, timeout, maxListCacheEntries)}
}

// Containers lists the containers directly below each prefix's shard folder (see list).
func (f *ListFinder) Containers(ctx context.Context, day time.Time, shard int32, maxAge time.Duration) ([]string, error) {
	var out []string
	for _, p := range f.prefixes {
		dir := protocol.ShardPrefix(p, day, shard) + "/"
		keys, err := f.cache.get(ctx, dir, maxAge, func(ctx context.Context) ([]string, error) {
			return f.list(ctx, dir)
		})
		if err != nil {
			return nil, err
		}
		out = append(out, keys...)
	}
	return out, nil
}

// Days lists the day folders directly below each prefix (one delimited LIST per prefix, cached).
func (f *ListFinder) Days(ctx context.Context, maxAge time.Duration) ([]time.Time, error) {
	var out []time.Time
	for _, p := range f.prefixes {
		dir := p + "/"
		days, err := f.cache.get(ctx, "days:"+dir, maxAge, func(ctx context.Context) ([]string, error) {
			return f.listDays(ctx, dir)
		})
		if err != nil {
			return nil, err
		}
		for _, d := range days {
			if t, err := time.Parse(time.DateOnly, d); err == nil {
				out = append(out, t)
			}
		}
	}
	return out, nil
}

// listDays returns the names of the YYYY-MM-DD folders directly below dir.
func (f *ListFinder) listDays(ctx context.Context, dir string) ([]string, error) {
	var days []string
	for obj, err := range f.store.List(ctx, f.bucket, objstore.ListOptions{Prefix: dir, Delimiter: "/"}) {
		if err != nil {
			return nil, fmt.Errorf("list days under %s: %w", dir, err)
		}
		if !obj.IsPrefix {
			continue
		}
		d := strings.TrimSuffix(strings.TrimPrefix(obj.Key, dir), "/")
		if _, err := time.Parse(time.DateOnly, d); err == nil {
			days = append(days, d)
		}
	}
	return days, nil
}

// list returns the container keys of one shard folder from a single delimited LIST, in listing
// order. A container of the current layout is a folder <dir><id>/ holding <id>/<id>.des, so a
// common prefix whose last segment is a container id stands for that key (no LIST of the folder).
// A legacy container is an object <dir><id>.des, and its big payloads make a folder <dir><id>/ as
// well: when both are listed, the folder belongs to the object and adds no key.
func (f *ListFinder) list(ctx context.Context, dir string) ([]string, error) {
	var keys []string
	objects := map[string]bool{}
	nested := map[string]string{} // key inside a listed folder → the legacy key of the same container
	for obj, err := range f.store.List(ctx, f.bucket, objstore.ListOptions{Prefix: dir, Delimiter: "/"}) {
		if err != nil {
			return nil, fmt.Errorf("list containers under %s: %w", dir, err)
		}
		switch {
		case obj.IsPrefix:
			folder := strings.TrimSuffix(obj.Key, "/")
			if !protocol.IsContainerID(strings.TrimPrefix(folder, dir)) {
				continue // not a container's folder (a person's, or v1's shard-wide _bigFiles/)
			}
			key, legacy := protocol.ContainerKeysOf(folder)
			nested[key] = legacy
			keys = append(keys, key)
		case protocol.IsContainerKey(obj.Key):
			objects[obj.Key] = true
			keys = append(keys, obj.Key)
		}
	}
	return slices.DeleteFunc(keys, func(k string) bool { return objects[nested[k]] }), nil
}

// KubeFinder finds containers from the Committed DesContainer resources of one namespace. It never
// lists the namespace: a year of containers of 4096 shards is over a million resources. It asks the
// API server for those of one day and shard, or of one key, by field selectors on the selectable
// fields spec.day, spec.shard and spec.key, and reuses each answer for the TTL.
type KubeFinder struct {
	client    client.Reader
	namespace string
	bucket    string
	cache     *ttlCache[dayShard]
	keys      *ttlCache[bool]
	log       logr.Logger
	// noSelectors is set once the API server refused a field selector.
	noSelectors atomic.Bool
}

// dayShard is what the DesContainers of one day and shard say.
type dayShard struct {
	committed []string // keys of Committed containers
}

// maxKubeCacheEntries bounds the answers kept: as many (day, shard) pairs as the listing finder keeps
// lists, and as many keys.
const maxKubeCacheEntries = maxListCacheEntries

// NewKubeFinder reads DesContainers of namespace that live in bucket.
func NewKubeFinder(base context.Context, c client.Reader, namespace, bucket string, ttl, timeout time.Duration, log logr.Logger) *KubeFinder {
	return &KubeFinder{client: c, namespace: namespace, bucket: bucket, log: log,
		cache: newTTLCache[dayShard](base, ttl, timeout, maxKubeCacheEntries),
		keys:  newTTLCache[bool](base, ttl, timeout, maxKubeCacheEntries)}
}

func dayShardKey(day string, shard int32) string { return fmt.Sprintf("%s/%d", day, shard) }

// Containers returns the Committed containers of day and shard.
func (f *KubeFinder) Containers(ctx context.Context, day time.Time, shard int32, maxAge time.Duration) ([]string, error) {
	d := day.UTC().Format(time.DateOnly)
	got, err := f.cache.get(ctx, dayShardKey(d, shard), maxAge, func(ctx context.Context) (dayShard, error) {
		var out dayShard
		err := f.each(ctx, fields.Set{"spec.day": d, "spec.shard": strconv.Itoa(int(shard))}, func(c *desv1.DesContainer) {
			if c.Status.Phase == desv1.PhaseCommitted {
				out.committed = append(out.committed, c.Spec.Key)
			}
		})
		return out, err
	})
	return got.committed, err
}

// Unaccounted reports whether key belongs to a DesContainer that is not Committed (being written,
// uploaded but not yet committed, rolled back, failed): an object there is not, or not yet, what the
// catalog packed, and the listing must not offer it. Objects whose DesContainer is gone (past its
// retention) are not known here and stay servable: recovery and the sweep delete rolled-back
// objects long before that.
func (f *KubeFinder) Unaccounted(ctx context.Context, key string, maxAge time.Duration) (bool, error) {
	return f.keys.get(ctx, key, maxAge, func(ctx context.Context) (bool, error) {
		bad := false
		err := f.each(ctx, fields.Set{"spec.key": key}, func(c *desv1.DesContainer) {
			bad = bad || c.Status.Phase != desv1.PhaseCommitted
		})
		return bad, err
	})
}

// Days knows no days of its own: every container DES commits has its key in the <prefix>/<day>/
// layout, whose days the listing finder reads from the bucket in one request per prefix.
func (f *KubeFinder) Days(context.Context, time.Duration) ([]time.Time, error) { return nil, nil }

// each calls fn for every DesContainer of the namespace in this finder's bucket whose fields match.
// An API server without selectable fields for custom resources (before Kubernetes 1.31, or with the
// CustomResourceFieldSelectors gate off) refuses the selector: from then on the finder lists the
// whole namespace and matches here, as DES did before, and says so once.
func (f *KubeFinder) each(ctx context.Context, match fields.Set, fn func(*desv1.DesContainer)) error {
	selector := match.AsSelector()
	if f.noSelectors.Load() {
		selector = fields.Everything()
	}
	opts := []client.ListOption{client.InNamespace(f.namespace), client.MatchingFieldsSelector{Selector: selector}, client.Limit(500)}
	for {
		var list desv1.DesContainerList
		err := f.client.List(ctx, &list, opts...)
		if apierrors.IsBadRequest(err) && !selector.Empty() {
			f.noSelectors.Store(true)
			f.log.Info("the API server refuses field selectors on DesContainers (Kubernetes < 1.31?): listing the namespace instead", "error", err.Error())
			return f.each(ctx, match, fn)
		}
		if err != nil {
			return fmt.Errorf("list DesContainers in %s with %s: %w", f.namespace, match, err)
		}
		for i := range list.Items {
			if c := &list.Items[i]; c.Spec.Bucket == f.bucket && match.AsSelector().Matches(containerFields(c)) {
				fn(c)
			}
		}
		if list.Continue == "" {
			return nil
		}
		opts = append(opts[:3:3], client.Continue(list.Continue))
	}
}

// containerFields are a DesContainer's selectable fields, to match a selector here as the API server
// does.
func containerFields(c *desv1.DesContainer) fields.Set {
	return fields.Set{"spec.day": c.Spec.Day, "spec.shard": strconv.Itoa(int(c.Spec.Shard)), "spec.key": c.Spec.Key}
}
