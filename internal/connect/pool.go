package connect

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrInvalidDSN replaces pgx's parse error, which may quote the DSN and so its password.
var ErrInvalidDSN = errors.New("the catalog DSN is not a valid PostgreSQL connection string")

// PoolOptions size a pool; zero fields keep pgx's defaults.
type PoolOptions struct {
	MaxConns       int32
	ConnectTimeout time.Duration
}

// Open returns a pool on dsn. pgx connects lazily, so a wrong host or password shows up at the first
// query or Ping; every error it returns is redacted.
func Open(ctx context.Context, dsn string, o PoolOptions) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, ErrInvalidDSN // never wrap err: see ErrInvalidDSN
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	if o.ConnectTimeout > 0 {
		cfg.ConnConfig.ConnectTimeout = o.ConnectTimeout
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, RedactError(fmt.Errorf("open catalog pool: %w", err), dsn)
	}
	return p, nil
}

// Ping checks that the catalog answers; its error, like Open's, never holds the password.
func Ping(ctx context.Context, p *pgxpool.Pool) error {
	if err := p.Ping(ctx); err != nil {
		pw := p.Config().ConnConfig.Password
		return &redactedError{err: fmt.Errorf("reach the catalog database: %w", err), secrets: passwordForms(pw)}
	}
	return nil
}

// DefaultPoolIdle is how long PoolCache keeps a pool no reconcile asked for.
const DefaultPoolIdle = 15 * time.Minute

// PoolCache keeps one pool per DSN for the controller, so reconciles do not reconnect every time.
// Pools are keyed by the DSN's hash (the cache keeps no DSN text) and claimed by slots, one per Secret
// key: when a slot's DSN changes (a rotated password) the old pool is closed as soon as no slot uses
// it, and pools unused for Idle are closed at the next Get (the controller's periodic rechecks make
// one every minute), so a deleted DesSource does not keep its connections.
type PoolCache struct {
	Options PoolOptions
	// Idle is DefaultPoolIdle when zero; Now is time.Now when nil (tests move time).
	Idle time.Duration
	Now  func() time.Time

	mu    sync.Mutex
	pools map[[sha256.Size]byte]*cachedPool
	slots map[string][sha256.Size]byte
}

type cachedPool struct {
	pool  *pgxpool.Pool
	users map[string]bool
	used  time.Time
}

// Get returns the pool for dsn on behalf of slot (e.g. "namespace/secret/key").
func (c *PoolCache) Get(ctx context.Context, slot, dsn string) (*pgxpool.Pool, error) {
	key := sha256.Sum256([]byte(dsn))
	c.mu.Lock()
	now := c.now()
	stale := c.releaseLocked(slot, key, now)
	e, err := c.entryLocked(ctx, key, dsn)
	if err == nil {
		e.users[slot], e.used = true, now
		c.slots[slot] = key
	}
	c.mu.Unlock()
	// Close blocks until borrowed connections return; outside the lock other slots are not held up.
	for _, p := range stale {
		p.Close()
	}
	if err != nil {
		return nil, err
	}
	return e.pool, nil
}

func (c *PoolCache) entryLocked(ctx context.Context, key [sha256.Size]byte, dsn string) (*cachedPool, error) {
	if e, ok := c.pools[key]; ok {
		return e, nil
	}
	p, err := Open(ctx, dsn, c.Options)
	if err != nil {
		return nil, err
	}
	e := &cachedPool{pool: p, users: map[string]bool{}}
	c.pools[key] = e
	return e, nil
}

// releaseLocked drops slot from a pool of another DSN and removes the pools left without users or
// idle too long; it returns them for closing.
func (c *PoolCache) releaseLocked(slot string, key [sha256.Size]byte, now time.Time) []*pgxpool.Pool {
	if c.pools == nil {
		c.pools, c.slots = map[[sha256.Size]byte]*cachedPool{}, map[string][sha256.Size]byte{}
	}
	if old, ok := c.slots[slot]; ok && old != key {
		delete(c.pools[old].users, slot)
		delete(c.slots, slot)
	}
	var stale []*pgxpool.Pool
	for k, e := range c.pools {
		if k != key && (len(e.users) == 0 || now.Sub(e.used) > c.idle()) {
			stale = append(stale, e.pool)
			c.dropLocked(k)
		}
	}
	return stale
}

func (c *PoolCache) dropLocked(key [sha256.Size]byte) {
	for slot := range c.pools[key].users {
		delete(c.slots, slot)
	}
	delete(c.pools, key)
}

// Len is the number of open pools.
func (c *PoolCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pools)
}

// Close closes every pool.
func (c *PoolCache) Close() {
	c.mu.Lock()
	pools := c.pools
	c.pools, c.slots = nil, nil
	c.mu.Unlock()
	for _, e := range pools {
		e.pool.Close()
	}
}

func (c *PoolCache) idle() time.Duration {
	if c.Idle > 0 {
		return c.Idle
	}
	return DefaultPoolIdle
}

func (c *PoolCache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}
