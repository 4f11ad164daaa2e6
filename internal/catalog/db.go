package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Driver names a catalog database's SQL dialect, as DesSource.spec.catalog.driver does.
type Driver string

// The drivers DES speaks. MySQL covers MySQL ≥ 8.0.1 and MariaDB ≥ 10.6, the first versions with
// FOR UPDATE SKIP LOCKED, which claims and the marker need.
const (
	Postgres Driver = "postgres"
	MySQL    Driver = "mysql"
)

// ErrUnknownDriver means a driver name that is neither postgres nor mysql.
var ErrUnknownDriver = errors.New("unknown catalog driver")

// ParseDriver turns a DesSource's driver name into a Driver; "" is Postgres, the default.
func ParseDriver(name string) (Driver, error) {
	switch Driver(name) {
	case "", Postgres:
		return Postgres, nil
	case MySQL:
		return MySQL, nil
	}
	return "", fmt.Errorf("%w %q: want postgres or mysql", ErrUnknownDriver, name)
}

// DB is a pool of connections to a catalog database and the dialect DES speaks to it. internal/connect
// opens it (DSN parsing, session settings, redaction); everything DES says to it is in this package.
type DB struct {
	sql *sql.DB
	d   dialect
}

// NewDB wraps db, a pool opened with driver's database/sql driver (pgx's stdlib for Postgres,
// go-sql-driver for MySQL, with the session settings internal/connect gives it).
func NewDB(driver Driver, db *sql.DB) (*DB, error) {
	switch driver {
	case Postgres:
		return &DB{sql: db, d: postgresDialect{}}, nil
	case MySQL:
		return &DB{sql: db, d: mysqlDialect{}}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownDriver, driver)
}

// Driver is the database's dialect.
func (db *DB) Driver() Driver { return db.d.driver() }

// SQL is the underlying pool, for the few callers that run their own statements (tests, the demo's
// seeding).
func (db *DB) SQL() *sql.DB { return db.sql }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.sql.PingContext(ctx) }

// Close closes the pool.
func (db *DB) Close() error { return db.sql.Close() }

// querier is a pool or a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// exec runs q and returns the rows it affected.
func exec(ctx context.Context, on querier, q *query) (int64, error) {
	text, args := q.finish()
	trace(ctx, text, args)
	res, err := on.ExecContext(ctx, text, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// queryRow runs q, which returns at most one row, and scans it into dest (sql.ErrNoRows when none).
func queryRow(ctx context.Context, on querier, q *query, dest ...any) error {
	text, args := q.finish()
	trace(ctx, text, args)
	return on.QueryRowContext(ctx, text, args...).Scan(dest...)
}

// collect runs q and scans every row with scan.
func collect[T any](ctx context.Context, on querier, q *query, scan func(*sql.Rows) (T, error)) ([]T, error) {
	text, args := q.finish()
	trace(ctx, text, args)
	rows, err := on.QueryContext(ctx, text, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// collectMap runs q and scans every row into a key and a value with scan.
func collectMap[K comparable, V any](ctx context.Context, on querier, q *query, scan func(*sql.Rows) (K, V, error)) (map[K]V, error) {
	type kv struct {
		k K
		v V
	}
	pairs, err := collect(ctx, on, q, func(r *sql.Rows) (kv, error) {
		k, v, err := scan(r)
		return kv{k, v}, err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[K]V, len(pairs))
	for _, p := range pairs {
		out[p.k] = p.v
	}
	return out, nil
}

// scanOne is a collect scanner of rows with a single column.
func scanOne[T any](r *sql.Rows) (T, error) {
	var v T
	err := r.Scan(&v)
	return v, err
}

// txAttempts bounds how often inTx runs a transaction the database aborted to break a deadlock.
const txAttempts = 5

// inTx runs fn in one transaction of the dialect's isolation and commits it; an error from fn rolls it
// back. A transaction the database chose as a deadlock victim (MySQL aborts the whole transaction,
// where PostgreSQL's claims rarely meet) is run again from the start, so fn must set its results
// anew on every call.
func (c *Catalog) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = c.tryTx(ctx, fn)
		if err == nil || attempt == txAttempts || !c.db.d.isDeadlock(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 10 * time.Millisecond):
		}
	}
}

func (c *Catalog) tryTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := c.db.sql.BeginTx(ctx, c.db.d.txOptions())
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// q starts a statement in the catalog's dialect.
func (c *Catalog) q(format string, a ...any) *query { return newQuery(c.db.d).add(format, a...) }
