package connect

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/datavision/des/internal/catalog"
)

// ErrInvalidDSN replaces the driver's parse error, which may quote the DSN and so its password.
var ErrInvalidDSN = errors.New("the catalog DSN is not a valid connection string for its driver")

// DSN formats, for the messages of ErrInvalidDSN.
var dsnFormats = map[catalog.Driver]string{
	catalog.Postgres: "postgres://user:password@host:5432/database or host=… user=… key=value pairs",
	catalog.MySQL:    "user:password@tcp(host:3306)/database",
}

// PoolOptions size a pool; zero fields keep the defaults.
type PoolOptions struct {
	MaxConns       int32
	ConnectTimeout time.Duration
}

// Pool is an open catalog database and what redaction needs to keep its password out of errors.
type Pool struct {
	DB      *catalog.DB
	secrets []string
}

// Close closes the pool's connections.
func (p *Pool) Close() { _ = p.DB.Close() }

// Open returns a pool on dsn for driver. Both drivers connect lazily, so a wrong host or password
// shows up at the first query or Ping; every error it returns is redacted.
func Open(_ context.Context, driver catalog.Driver, dsn string, o PoolOptions) (*Pool, error) {
	var (
		db  *sql.DB
		pw  string
		err error
	)
	switch driver {
	case catalog.Postgres:
		db, pw, err = openPostgres(dsn, o)
	case catalog.MySQL:
		db, pw, err = openMySQL(dsn, o)
	default:
		_, err = catalog.ParseDriver(string(driver))
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	// database/sql's pool: as many idle connections as open ones (its default of two would close
	// and reopen connections under load), recycled as pgx's pool did.
	maxConns := int(o.MaxConns)
	if maxConns <= 0 {
		maxConns = max(4, runtime.NumCPU())
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(30 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	cdb, err := catalog.NewDB(driver, db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &Pool{DB: cdb, secrets: passwordForms(pw)}, nil
}

// openPostgres opens dsn with pgx's database/sql driver, which passes Go slices as arrays.
func openPostgres(dsn string, o PoolOptions) (*sql.DB, string, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, "", fmt.Errorf("%w: PostgreSQL wants %s", ErrInvalidDSN, dsnFormats[catalog.Postgres]) // never wrap err
	}
	if o.ConnectTimeout > 0 {
		cfg.ConnectTimeout = o.ConnectTimeout
	}
	return stdlib.OpenDB(*cfg), cfg.Password, nil
}

// openMySQL opens dsn with go-sql-driver/mysql, with the session settings the catalog's MySQL dialect
// relies on, whatever the DSN says: times in UTC (time_zone '+00:00', so TIMESTAMP columns and
// UTC_TIMESTAMP agree, and DATETIME values read and written as UTC), DATETIME read as time.Time, and
// arguments interpolated client-side (one round trip per statement instead of prepare, execute and
// close; the driver falls back to server-side statements for character sets where that is unsafe).
func openMySQL(dsn string, o PoolOptions) (*sql.DB, string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, "", fmt.Errorf("%w: MySQL wants %s", ErrInvalidDSN, dsnFormats[catalog.MySQL]) // never wrap err
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.InterpolateParams = true
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	if o.ConnectTimeout > 0 {
		cfg.Timeout = o.ConnectTimeout
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("%w: MySQL wants %s", ErrInvalidDSN, dsnFormats[catalog.MySQL])
	}
	return sql.OpenDB(conn), cfg.Passwd, nil
}

// Ping checks that the catalog answers; its error, like Open's, never holds the password.
func (p *Pool) Ping(ctx context.Context) error {
	if err := p.DB.Ping(ctx); err != nil {
		return &redactedError{err: fmt.Errorf("reach the catalog database: %w", err), secrets: p.secrets}
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
	pool  *Pool
	users map[string]bool
	used  time.Time
}

// Get returns the pool for driver and dsn on behalf of slot (e.g. "namespace/secret/key").
func (c *PoolCache) Get(ctx context.Context, slot string, driver catalog.Driver, dsn string) (*Pool, error) {
	key := sha256.Sum256([]byte(string(driver) + "\x00" + dsn))
	c.mu.Lock()
	now := c.now()
	stale := c.releaseLocked(slot, key, now)
	e, err := c.entryLocked(ctx, key, driver, dsn)
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

func (c *PoolCache) entryLocked(ctx context.Context, key [sha256.Size]byte, driver catalog.Driver, dsn string) (*cachedPool, error) {
	if e, ok := c.pools[key]; ok {
		return e, nil
	}
	p, err := Open(ctx, driver, dsn, c.Options)
	if err != nil {
		return nil, err
	}
	e := &cachedPool{pool: p, users: map[string]bool{}}
	c.pools[key] = e
	return e, nil
}

// releaseLocked drops slot from a pool of another DSN and removes the pools left without users or
// idle too long; it returns them for closing.
func (c *PoolCache) releaseLocked(slot string, key [sha256.Size]byte, now time.Time) []*Pool {
	if c.pools == nil {
		c.pools, c.slots = map[[sha256.Size]byte]*cachedPool{}, map[string][sha256.Size]byte{}
	}
	if old, ok := c.slots[slot]; ok && old != key {
		delete(c.pools[old].users, slot)
		delete(c.slots, slot)
	}
	var stale []*Pool
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
