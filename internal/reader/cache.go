package reader

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"
)

// CacheStats describes the index cache.
type CacheStats struct {
	Hits      int64 // lookups answered from memory
	Misses    int64 // lookups that had to wait for an open (their own or a concurrent one)
	Opens     int64 // containers actually opened (Misses minus collapsed waits)
	Evictions int64
	// Rejected counts opened containers not kept because the ones they would have evicted were asked
	// for at least as often (see admit); Oversized those larger than the whole budget.
	Rejected  int64
	Oversized int64
	Entries   int
	Bytes     int64 // memory the cached containers report holding
}

// indexCache keeps opened containers in an LRU bounded by the memory they hold, with a
// frequency-aware admission: when requests cycle over more containers than fit, plain LRU would
// evict each one just before it is asked for again and reopen on every request; here a newcomer
// only displaces containers asked for less often, so the resident set stays and only the excess
// misses. Lookups of a container being opened wait for that open instead of starting another, and
// at most maxOpens opens run at once.
type indexCache struct {
	maxBytes    int64
	openTimeout time.Duration
	base        context.Context // lifetime of the server: opens are detached from requests
	open        func(ctx context.Context, key string) (*container, error)
	opening     chan struct{} // semaphore: one token per open in flight

	flights flightGroup[*container]

	mu      sync.Mutex
	lru     *list.List // of *container, most recent first
	entries map[string]*list.Element
	freq    frequency
	stats   CacheStats
}

func newIndexCache(base context.Context, maxBytes int64, openTimeout time.Duration, maxOpens int, open func(context.Context, string) (*container, error)) *indexCache {
	return &indexCache{
		maxBytes: maxBytes, openTimeout: openTimeout, base: base, open: open,
		opening: make(chan struct{}, max(maxOpens, 1)),
		lru:     list.New(), entries: make(map[string]*list.Element), freq: newFrequency(frequencyWindow),
	}
}

// get returns the container for key, opening it at most once however many callers ask concurrently.
// hit reports whether it came from memory.
func (c *indexCache) get(ctx context.Context, key string) (ct *container, hit bool, err error) {
	if ct := c.lookup(key); ct != nil {
		return ct, true, nil
	}
	ct, _, err = c.flights.do(ctx, c.base, key, func(base context.Context) (*container, error) {
		// A flight that finished between our lookup and this one already filled the cache.
		if ct := c.peek(key); ct != nil {
			return ct, nil
		}
		ctx, cancel := context.WithTimeout(base, c.openTimeout)
		defer cancel()
		// The wait for a slot counts against the open timeout: a queue longer than that fails
		// instead of growing without bound.
		select {
		case c.opening <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait to open container %s: %w", key, context.Cause(ctx))
		}
		defer func() { <-c.opening }()
		c.count(func(s *CacheStats) { s.Opens++ })
		ct, err := c.open(ctx, key)
		if err != nil {
			return nil, err
		}
		c.add(ct)
		return ct, nil
	})
	return ct, false, err
}

func (c *indexCache) count(f func(*CacheStats)) {
	c.mu.Lock()
	f(&c.stats)
	c.mu.Unlock()
}

// lookup returns a cached container and counts the hit or miss, and the request for admission.
func (c *indexCache) lookup(key string) *container {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.freq.record(key)
	el, ok := c.entries[key]
	if !ok {
		c.stats.Misses++
		return nil
	}
	c.stats.Hits++
	c.lru.MoveToFront(el)
	return el.Value.(*container)
}

// peek returns a cached container without counting or reordering.
func (c *indexCache) peek(key string) *container {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		return el.Value.(*container)
	}
	return nil
}

// add caches ct if admit lets it displace the least recently used entries it needs room from. A
// container larger than the whole budget is served to its waiters but not kept: caching it would
// evict everything else.
func (c *indexCache) add(ct *container) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ct.cost > c.maxBytes {
		c.stats.Oversized++
		return
	}
	if old, ok := c.entries[ct.key]; ok {
		c.removeLocked(old)
	}
	var victims []resident
	for el, freed := c.lru.Back(), int64(0); el != nil && c.stats.Bytes-freed+ct.cost > c.maxBytes; el = el.Prev() {
		v := el.Value.(*container)
		victims = append(victims, resident{cost: v.cost, freq: c.freq.of(v.key)})
		freed += v.cost
	}
	evict, ok := admit(c.freq.of(ct.key), ct.cost, c.stats.Bytes, c.maxBytes, victims)
	if !ok {
		c.stats.Rejected++
		return
	}
	for range evict {
		c.removeLocked(c.lru.Back())
		c.stats.Evictions++
	}
	c.entries[ct.key] = c.lru.PushFront(ct)
	c.stats.Bytes += ct.cost
}

// resident is what admission knows of a cached container.
type resident struct {
	cost int64
	freq uint32
}

// admit decides whether a newcomer of the given cost and request frequency enters a cache holding
// used of limit bytes. victims are the residents in eviction order (least recently used first); the
// newcomer needs the first evict of them gone to fit, and gets in only if it was asked for more often
// than each of those (TinyLFU's rule), so a cyclic scan over too many containers cannot flush the
// ones that are in use. A newcomer that fits without evicting is always admitted.
func admit(freq uint32, cost, used, limit int64, victims []resident) (evict int, ok bool) {
	for _, v := range victims {
		if used+cost <= limit {
			break
		}
		if freq <= v.freq {
			return 0, false
		}
		used -= v.cost
		evict++
	}
	return evict, used+cost <= limit
}

// drop forgets key, if cached: its object proved different from what was opened.
func (c *indexCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.removeLocked(el)
	}
}

func (c *indexCache) removeLocked(el *list.Element) {
	ct := c.lru.Remove(el).(*container)
	delete(c.entries, ct.key)
	c.stats.Bytes -= ct.cost
}

// snapshot returns the counters.
func (c *indexCache) snapshot() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries = len(c.entries)
	return s
}

// frequencyWindow is how many requests the frequency history covers before it ages: enough to see
// several rounds over the containers a sidecar serves, short enough that a container nobody asks for
// any more loses its place within about that many requests (each a reopen for the newcomer).
const frequencyWindow = 1024

// maxFrequency caps a count (TinyLFU's 4-bit counters): a container asked for thousands of times
// in the past cannot keep its place for thousands of requests once it goes cold.
const maxFrequency = 15

// frequency counts recent requests per container key, up to maxFrequency. Every window requests all
// counts are halved (and zeros dropped), so past popularity fades and the map holds at most about
// 1.5 × window keys.
type frequency struct {
	counts map[string]uint32
	n      int
	window int
}

func newFrequency(window int) frequency {
	return frequency{counts: map[string]uint32{}, window: window}
}

func (f *frequency) record(key string) {
	if c := f.counts[key]; c < maxFrequency {
		f.counts[key] = c + 1
	}
	f.n++
	if f.n >= f.window {
		f.age()
	}
}

func (f *frequency) age() {
	f.n = 0
	for k, v := range f.counts {
		if v /= 2; v == 0 {
			delete(f.counts, k)
		} else {
			f.counts[k] = v
		}
	}
}

func (f *frequency) of(key string) uint32 { return f.counts[key] }
