package reader

import (
	"container/list"
	"sync"
	"time"
)

// expiringLRU is a bounded least-recently-used map whose entries also expire. It holds the reader's
// small caches of answers that are cheap to lose: token decisions (auth.go) and file placements
// (locate.go).
type expiringLRU[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *lruEntry, most recently used first
	byKey map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key     K
	v       V
	expires time.Time
}

func newExpiringLRU[K comparable, V any](size int) *expiringLRU[K, V] {
	return &expiringLRU[K, V]{max: size, order: list.New(), byKey: map[K]*list.Element{}}
}

// get returns key's value unless it is absent or expired at now.
func (c *expiringLRU[K, V]) get(key K, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.byKey[key]
	if !ok {
		return zero, false
	}
	e := el.Value.(*lruEntry[K, V])
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.byKey, key)
		return zero, false
	}
	c.order.MoveToFront(el)
	return e.v, true
}

// put stores v until expires, evicting the least recently used entries beyond the bound.
func (c *expiringLRU[K, V]) put(key K, v V, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		e := el.Value.(*lruEntry[K, V])
		e.v, e.expires = v, expires
		c.order.MoveToFront(el)
		return
	}
	c.byKey[key] = c.order.PushFront(&lruEntry[K, V]{key: key, v: v, expires: expires})
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.byKey, oldest.Value.(*lruEntry[K, V]).key)
	}
}

// len is the number of entries (expired ones included until looked up or evicted).
func (c *expiringLRU[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
