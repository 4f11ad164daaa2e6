package catalog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
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

func (c *Catalog) selectUnnamed(ctx context.Context, tx pgx.Tx, q MarkQuery) ([]int64, error) {
	m := c.m
	// Rows the packer owns (claimed, packed) are never touched even if they somehow lack a name.
	sel := fmt.Sprintf(`SELECT %[1]s FROM %[2]s
		WHERE %[3]s IS NULL AND %[1]s > $1
		  AND %[4]s <= now() - make_interval(secs => $2)
		  AND %[5]s IS DISTINCT FROM $3 AND %[5]s IS DISTINCT FROM $4
		  AND (%[5]s IS DISTINCT FROM $5 OR %[6]s < $6)
		ORDER BY %[1]s LIMIT $7 FOR UPDATE SKIP LOCKED`,
		col(m.ID), m.tableIdent(), col(m.DesName), col(m.CreatedAt), col(m.Status), colRetries)
	rows, err := tx.Query(ctx, sel, q.AfterID, q.MinAge.Seconds(), m.Claimed, m.Packed, m.Failed, q.MaxRetries, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("select unnamed rows: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("select unnamed rows: %w", err)
	}
	return ids, nil
}

// setNames names the rows in one statement. If the database refuses it, it names them one by one, each
// in a savepoint, to find the rows it refuses.
func (c *Catalog) setNames(ctx context.Context, tx pgx.Tx, as []Assignment) (int64, []MarkFailure, error) {
	ids := make([]int64, len(as))
	names := make([]string, len(as))
	shards := make([]int32, len(as))
	for i, a := range as {
		ids[i], names[i], shards[i] = a.ID, a.Name, a.Shard
	}
	stmt := c.nameStatement()
	n, err := inSavepoint(ctx, tx, stmt, ids, names, shards, c.m.Ready)
	if !isRowError(ctx, err) {
		return n, nil, err
	}
	var marked int64
	var failed []MarkFailure
	for i := range as {
		n, err := inSavepoint(ctx, tx, stmt, ids[i:i+1], names[i:i+1], shards[i:i+1], c.m.Ready)
		switch {
		case isRowError(ctx, err):
			failed = append(failed, MarkFailure{ID: ids[i], Error: truncate(err.Error(), maxErrorLen)})
		case err != nil:
			return 0, nil, err
		default:
			marked += n
		}
	}
	return marked, failed, nil
}

// nameStatement sets name, shard and ready on the rows of three parallel arrays, never on a named row.
func (c *Catalog) nameStatement() string {
	m := c.m
	return fmt.Sprintf(`UPDATE %[1]s AS r SET %[2]s = a.name, %[3]s = a.shard, %[4]s = $4, %[5]s = NULL
		FROM unnest($1::bigint[], $2::text[], $3::integer[]) AS a(id, name, shard)
		WHERE r.%[6]s = a.id AND r.%[2]s IS NULL`,
		m.tableIdent(), col(m.DesName), col(m.Shard), col(m.Status), colError, col(m.ID))
}

// inSavepoint runs the name statement in a savepoint, so that a refused row does not abort the batch.
func inSavepoint(ctx context.Context, tx pgx.Tx, stmt string, ids []int64, names []string, shards []int32, ready string) (int64, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("savepoint: %w", err)
	}
	tag, err := sp.Exec(ctx, stmt, ids, names, shards, ready)
	if err != nil {
		_ = sp.Rollback(ctx)
		return 0, err
	}
	if err := sp.Commit(ctx); err != nil {
		return 0, fmt.Errorf("release savepoint: %w", err)
	}
	return tag.RowsAffected(), nil
}

// setFailed moves refused rows to failed, still unnamed, counting the failure.
func (c *Catalog) setFailed(ctx context.Context, tx pgx.Tx, failed []MarkFailure) error {
	if len(failed) == 0 {
		return nil
	}
	m := c.m
	ids := make([]int64, len(failed))
	msgs := make([]string, len(failed))
	for i, f := range failed {
		ids[i], msgs[i] = f.ID, f.Error
	}
	q := fmt.Sprintf(`UPDATE %[1]s AS r SET %[2]s = $3, %[3]s = a.err, %[4]s = r.%[4]s + 1
		FROM unnest($1::bigint[], $2::text[]) AS a(id, err)
		WHERE r.%[5]s = a.id AND r.%[6]s IS NULL`,
		m.tableIdent(), col(m.Status), colError, colRetries, col(m.ID), col(m.DesName))
	if _, err := tx.Exec(ctx, q, ids, msgs, m.Failed); err != nil {
		return fmt.Errorf("record %d failed rows: %w", len(failed), err)
	}
	return nil
}

// isRowError reports whether err is the database refusing a statement (as opposed to a lost connection
// or a cancelled context), i.e. something a row's values may be the cause of.
func isRowError(ctx context.Context, err error) bool {
	var pgErr *pgconn.PgError
	return ctx.Err() == nil && errors.As(err, &pgErr) && !IsUnavailable(err)
}
