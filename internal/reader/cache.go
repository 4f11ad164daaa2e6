package reader

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// CacheStats describes the index cache.
type CacheStats struct {
	Hits      int64 // lookups answered from memory
	Misses    int64 // lookups that had to wait for an open (their own or a concurrent one)
	Opens     int64 // containers actually opened (Misses minus collapsed waits)
	Evictions int64
	Entries   int
	Bytes     int64 // estimated memory of the cached entries
}

// indexCache keeps opened containers in an LRU bounded by their estimated size. Lookups of a
// container being opened wait for that open instead of starting another.
type indexCache struct {
	maxBytes    int64
	openTimeout time.Duration
	base        context.Context // lifetime of the server: opens are detached from requests
	open        func(ctx context.Context, key string) (*container, error)

	flights flightGroup[*container]

	mu      sync.Mutex
	lru     *list.List // of *container, most recent first
	entries map[string]*list.Element
	stats   CacheStats
}

func newIndexCache(base context.Context, maxBytes int64, openTimeout time.Duration, open func(context.Context, string) (*container, error)) *indexCache {
	return &indexCache{
		maxBytes: maxBytes, openTimeout: openTimeout, base: base, open: open,
		lru: list.New(), entries: make(map[string]*list.Element),
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

// lookup returns a cached container and counts the hit or miss.
func (c *indexCache) lookup(key string) *container {
	c.mu.Lock()
	defer c.mu.Unlock()
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

// add caches ct and evicts the least recently used entries beyond the budget. A container larger than
// the whole budget is served to its waiters but not kept: caching it would evict everything else.
func (c *indexCache) add(ct *container) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ct.cost > c.maxBytes {
		return
	}
	if old, ok := c.entries[ct.key]; ok {
		c.removeLocked(old)
	}
	c.entries[ct.key] = c.lru.PushFront(ct)
	c.stats.Bytes += ct.cost
	for c.stats.Bytes > c.maxBytes {
		c.removeLocked(c.lru.Back())
		c.stats.Evictions++
	}
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
