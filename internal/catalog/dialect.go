package catalog

import (
	"context"
	"database/sql"
)

// A dialect is what differs between the SQL of PostgreSQL and of MySQL/MariaDB. The statements of the
// protocol (claims, commits, roll-backs, the marker, reclaiming) are written once, in this package's
// other files, from these fragments; the migration and the inspection of the table are the dialect's
// own, since the two databases describe and change tables too differently to share them.
type dialect interface {
	driver() Driver
	// numbered says whether placeholders are $1, $2, … (reusable) rather than positional ?.
	numbered() bool
	// ident quotes a (possibly qualified) identifier; the parts are checked names.
	ident(parts ...string) string
	// now is the database's current time, in UTC where the type has no zone.
	now() string
	// before is "now minus micros microseconds", micros an SQL expression.
	before(micros string) string
	// bigint casts an integer expression (a sum, say) to a 64-bit integer.
	bigint(expr string) string
	// in is "expr is one of list" (see query.in).
	in(q *query, expr string, list any) string
	// rows is a row set of cols (see query.rows).
	rows(q *query, alias string, cols []rowCol) string
	// updateJoin is an UPDATE of table joined with a row set (see query.updateJoin).
	updateJoin(q *query, table, alias, rowSet, on string, sets []set, where string) *query
	// lockShare is the clause of a SELECT that takes shared row locks.
	lockShare() string
	// insertIgnoring makes "INSERT INTO … VALUES …" a no-op when the row's key exists; ignoredErr
	// says whether an error is that no-op where the dialect reports it as one (MySQL's duplicate key).
	insertIgnoring(insert string) string
	ignoredErr(err error) bool
	// upsertState inserts container's fence in state to, or moves an existing fence to it only when
	// it is in state from (see fence.go).
	upsertState(q *query, table, container, to, from string) *query
	// txOptions is the isolation the protocol's transactions run at.
	txOptions() *sql.TxOptions
	// isDeadlock says the database aborted the transaction to break a deadlock: run it again.
	isDeadlock(err error) bool
	// isUnavailable says err is a lost or refused connection, not a refused statement.
	isUnavailable(err error) bool
	// isRefused says the database refused a statement for its values (a constraint, a type).
	isRefused(err error) bool
	// migrate adds what DES owns to the catalog (see Catalog.Migrate).
	migrate(ctx context.Context, c *Catalog) error
	// columns lists the columns of table (the mapped table when "", else one of DES's tables in the
	// mapped table's schema), none when it does not exist.
	columns(ctx context.Context, c *Catalog, table string) ([]string, error)
	// checkServer says whether the server can run the protocol (row locks, SKIP LOCKED).
	checkServer(ctx context.Context, c *Catalog) error
}
