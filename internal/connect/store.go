package connect

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/datavision/des/internal/objstore"
)

// DefaultStoreIdle is how long StoreCache keeps a client no reconcile asked for.
const DefaultStoreIdle = 15 * time.Minute

// StoreCache keeps one S3 client (and so one HTTP transport with its idle connections) per store
// configuration, instead of a new one per reconcile. The key is a hash of everything that tells
// clients apart: endpoint, region, addressing, credentials and CA bundle; a rotated key makes a new
// entry, and the old one is dropped once idle (a client holds no server-side state, only idle TCP
// connections that its transport closes itself).
type StoreCache struct {
	// Idle is DefaultStoreIdle when zero; Now is time.Now when nil.
	Idle time.Duration
	Now  func() time.Time

	mu     sync.Mutex
	stores map[[sha256.Size]byte]*cachedStore
}

type cachedStore struct {
	store *objstore.Store
	used  time.Time
}

// Get returns the client for cfg, building it on first use.
func (c *StoreCache) Get(ctx context.Context, cfg objstore.Config) (*objstore.Store, error) {
	key := storeKey(cfg)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.evictLocked(key, now)
	if e, ok := c.stores[key]; ok {
		e.used = now
		return e.store, nil
	}
	s, err := objstore.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("object store client: %w", err)
	}
	c.stores[key] = &cachedStore{store: s, used: now}
	return s, nil
}

func (c *StoreCache) evictLocked(keep [sha256.Size]byte, now time.Time) {
	if c.stores == nil {
		c.stores = map[[sha256.Size]byte]*cachedStore{}
	}
	idle := c.Idle
	if idle <= 0 {
		idle = DefaultStoreIdle
	}
	for k, e := range c.stores {
		if k != keep && now.Sub(e.used) > idle {
			delete(c.stores, k)
		}
	}
}

// Len is the number of cached clients.
func (c *StoreCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.stores)
}

func (c *StoreCache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// storeKey hashes the fields of cfg that change the client. Fields are length-prefixed so that no two
// configurations share an encoding; the hash keeps credentials out of the map's keys.
func storeKey(cfg objstore.Config) [sha256.Size]byte {
	var b strings.Builder
	for _, f := range []string{cfg.Endpoint, cfg.Region, fmt.Sprint(cfg.PathStyle), cfg.AccessKeyID, cfg.SecretAccessKey,
		cfg.SessionToken, cfg.CredentialsDir, cfg.CAFile, string(cfg.CAPEM), cfg.RequestTimeout.String(),
		fmt.Sprint(cfg.MaxAttempts), cfg.MaxBackoff.String()} {
		fmt.Fprintf(&b, "%d:%s;", len(f), f)
	}
	return sha256.Sum256([]byte(b.String()))
}
