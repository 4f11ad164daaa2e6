package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"
)

// maxErrorLen bounds the error text stored in des_error.
const maxErrorLen = 1000

// MarkQuery selects the rows of one marker batch: rows without a DES name, created at least MinAge ago,
// with an id above AfterID, that are neither claimed nor packed, and that have not already failed
// MaxRetries times. The marker passes the last id of each batch as the next AfterID, so that one run visits
// every row at most once: a row that fails is retried by a later run, not by the same one.
type MarkQuery struct {
	AfterID    int64
	Limit      int
	MinAge     time.Duration
	MaxRetries int
}

// FirstID is the AfterID of a run's first batch.
const FirstID = math.MinInt64

// Assignment is the DES name and shard chosen for one row.
type Assignment struct {
	ID    int64
	Name  string
	Shard int32
}

// MarkFailure is a row that could not be named.
type MarkFailure struct {
	ID    int64
	Error string
}

// MarkResult says what one batch did.
type MarkResult struct {
	// Selected rows were locked by the batch; 0 means no row is left for this run.
	Selected int
	// LastID is the highest selected id, the next batch's AfterID.
	LastID int64
	// Marked rows got their name and shard and moved to ready.
	Marked int64
	// Failed rows moved to failed with their error and one more retry.
	Failed []MarkFailure
}

// Mark names one batch of rows in one transaction. It locks the rows q selects (FOR UPDATE SKIP LOCKED, so
// concurrent markers take disjoint rows), asks assign for their names and shards, and moves them to ready.
// Every update is guarded by "des_name IS NULL", so a row is never renamed. A row whose update the
// database refuses (a check constraint, a unique index) goes to failed with the error text and des_retries
// + 1; the other rows of the batch are still named. When assign fails or the database is unavailable the
// transaction is rolled back and nothing changes.
func (c *Catalog) Mark(ctx context.Context, q MarkQuery, assign func(ids []int64) ([]Assignment, error)) (MarkResult, error) {
	if q.Limit <= 0 {
		return MarkResult{}, fmt.Errorf("mark: batch limit %d must be positive", q.Limit)
	}
	var res MarkResult
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		res = MarkResult{}
		ids, err := c.selectUnnamed(ctx, tx, q)
		if err != nil || len(ids) == 0 {
			return err
		}
		res.Selected, res.LastID = len(ids), ids[len(ids)-1]
		as, err := assign(ids)
		if err != nil {
			return fmt.Errorf("assign names to %d rows: %w", len(ids), err)
		}
		res.Marked, res.Failed, err = c.setNames(ctx, tx, as)
		if err != nil {
			return err
		}
		return c.setFailed(ctx, tx, res.Failed)
	})
	if err != nil {
		return MarkResult{}, fmt.Errorf("mark rows of %s after id %d: %w", c.m.Table, q.AfterID, err)
	}
	return res, nil
}

func (c *Catalog) selectUnnamed(ctx context.Context, tx *sql.Tx, mq MarkQuery) ([]int64, error) {
	m := c.m
	status := c.col(m.Status)
	// Rows the packer owns (claimed, packed) are never touched even if they somehow lack a name.
	q := c.q("")
	q.add(`SELECT %[1]s FROM %[2]s
		WHERE %[3]s IS NULL AND %[1]s > %[4]s AND %[5]s <= %[6]s
		  AND (%[7]s IS NULL OR %[7]s NOT IN (%[8]s, %[9]s))
		  AND (%[7]s IS NULL OR %[7]s <> %[10]s OR %[11]s < %[12]s)%[14]s
		ORDER BY %[1]s LIMIT %[13]s FOR UPDATE SKIP LOCKED`,
		c.col(m.ID), c.table(), c.col(m.DesName), q.arg(mq.AfterID), c.col(m.CreatedAt),
		c.db.d.before(q.arg(mq.MinAge.Microseconds())), status, q.arg(m.Claimed), q.arg(m.Packed),
		q.arg(m.Failed), colRetries, q.arg(mq.MaxRetries), q.arg(mq.Limit), c.filter(q, ""))
	ids, err := collect(ctx, tx, q, scanOne[int64])
	if err != nil {
		return nil, fmt.Errorf("select unnamed rows: %w", err)
	}
	return ids, nil
}

// setNames names the rows in one statement. If the database refuses it, it names them one by one, each
// in a savepoint, to find the rows it refuses.
func (c *Catalog) setNames(ctx context.Context, tx *sql.Tx, as []Assignment) (int64, []MarkFailure, error) {
	n, err := c.inSavepoint(ctx, tx, c.nameStatement(as))
	if !c.isRowError(ctx, err) {
		return n, nil, err
	}
	var marked int64
	var failed []MarkFailure
	for i := range as {
		n, err := c.inSavepoint(ctx, tx, c.nameStatement(as[i:i+1]))
		switch {
		case c.isRowError(ctx, err):
			failed = append(failed, MarkFailure{ID: as[i].ID, Error: truncate(err.Error(), maxErrorLen)})
		case err != nil:
			return 0, nil, err
		default:
			marked += n
		}
	}
	return marked, failed, nil
}

// nameStatement sets name, shard and ready on the assigned rows, never on a named row.
func (c *Catalog) nameStatement(as []Assignment) *query {
	m := c.m
	ids := make([]int64, len(as))
	names := make([]string, len(as))
	shards := make([]int32, len(as))
	for i, a := range as {
		ids[i], names[i], shards[i] = a.ID, a.Name, a.Shard
	}
	q := c.q("")
	rows := q.rows("a", rowCol{"id", "bigint", ids}, rowCol{"name", "text", names}, rowCol{"shard", "integer", shards})
	return q.updateJoin(c.table(), "r", rows, "r."+c.col(m.ID)+" = a.id",
		[]set{{c.col(m.DesName), "a.name"}, {c.col(m.Shard), "a.shard"}, {c.col(m.Status), q.arg(m.Ready)}, {colError, "NULL"}},
		"r."+c.col(m.DesName)+" IS NULL")
}

// savepoint names the savepoint of inSavepoint; both dialects speak SAVEPOINT.
const savepoint = "des_mark_rows"

// inSavepoint runs q in a savepoint, so that a refused row does not abort the batch.
func (c *Catalog) inSavepoint(ctx context.Context, tx *sql.Tx, q *query) (int64, error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+savepoint); err != nil {
		return 0, fmt.Errorf("savepoint: %w", err)
	}
	n, err := exec(ctx, tx, q)
	if err != nil {
		_, _ = tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+savepoint)
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+savepoint); err != nil {
		return 0, fmt.Errorf("release savepoint: %w", err)
	}
	return n, nil
}

// setFailed moves refused rows to failed, still unnamed, counting the failure.
func (c *Catalog) setFailed(ctx context.Context, tx *sql.Tx, failed []MarkFailure) error {
	if len(failed) == 0 {
		return nil
	}
	m := c.m
	ids := make([]int64, len(failed))
	msgs := make([]string, len(failed))
	for i, f := range failed {
		ids[i], msgs[i] = f.ID, f.Error
	}
	q := c.q("")
	rows := q.rows("a", rowCol{"id", "bigint", ids}, rowCol{"err", "text", msgs})
	q.updateJoin(c.table(), "r", rows, "r."+c.col(m.ID)+" = a.id",
		[]set{{c.col(m.Status), q.arg(m.Failed)}, {colError, "a.err"}, {colRetries, "r." + colRetries + " + 1"}},
		"r."+c.col(m.DesName)+" IS NULL")
	if _, err := exec(ctx, tx, q); err != nil {
		return fmt.Errorf("record %d failed rows: %w", len(failed), err)
	}
	return nil
}

// isRowError reports whether err is the database refusing a statement (as opposed to a lost connection
// or a cancelled context), i.e. something a row's values may be the cause of.
func (c *Catalog) isRowError(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil && c.db.d.isRefused(err)
}
