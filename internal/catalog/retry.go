package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// RetryPolicy says when a row that failed while being packed returns to ready: after Backoff ×
// 2^(failures-1), at most MaxBackoff, while it has failed fewer than MaxRetries times. Rows that have
// failed MaxRetries times stay failed, with their last error in des_error, for a person to look at.
type RetryPolicy struct {
	MaxRetries int
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Batch bounds the rows one statement moves; each batch is its own transaction.
	Batch int
}

// RetryFailed returns the failed rows that are due for another try to ready and reports how many
// moved. Only named rows are retried here (their name and shard are kept, so the next claim of their
// shard takes them); rows the marker could not name are retried by the marker's own selection.
func (c *Catalog) RetryFailed(ctx context.Context, p RetryPolicy) (int64, error) {
	if p.Batch <= 0 || p.MaxRetries < 0 || p.Backoff < 0 || p.MaxBackoff < p.Backoff {
		return 0, fmt.Errorf("retry failed rows: invalid policy %+v", p)
	}
	var total int64
	for {
		n, err := c.retryBatch(ctx, p)
		if err != nil {
			return total, fmt.Errorf("return failed rows of %s to ready: %w", c.m.Table, err)
		}
		total += n
		if n < int64(p.Batch) {
			return total, nil
		}
	}
}

// retryBatch returns up to p.Batch due failed rows to ready, in one transaction: it locks them (SKIP
// LOCKED, so concurrent retry steps take disjoint rows) and moves them.
func (c *Catalog) retryBatch(ctx context.Context, p RetryPolicy) (int64, error) {
	m := c.m
	sel := c.q("")
	// Rows failed before des_failed_at existed have none: they are due at once. The backoff doubles
	// with each failure up to MaxBackoff.
	backoff := fmt.Sprintf("LEAST(%s * POWER(2, GREATEST(%s - 1, 0)), %s)",
		sel.arg(p.Backoff.Microseconds()), colRetries, sel.arg(p.MaxBackoff.Microseconds()))
	sel.add(`SELECT %[1]s FROM %[2]s
		WHERE %[3]s = %[4]s AND %[5]s IS NOT NULL AND %[6]s < %[7]s AND (%[8]s IS NULL OR %[8]s <= %[9]s)%[11]s
		ORDER BY %[1]s LIMIT %[10]s FOR UPDATE SKIP LOCKED`,
		c.col(m.ID), c.table(), c.col(m.Status), sel.arg(m.Failed), c.col(m.DesName), colRetries, sel.arg(p.MaxRetries),
		colFailedAt, c.db.d.before(backoff), sel.arg(p.Batch), c.filter(sel, ""))
	var moved int64
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		moved = 0
		ids, err := collect(ctx, tx, sel, scanOne[int64])
		if err != nil || len(ids) == 0 {
			return err
		}
		up := c.q("")
		up.add(`UPDATE %s SET %s = %s WHERE %s AND %s = %s`,
			c.table(), c.col(m.Status), up.arg(m.Ready), up.in(c.col(m.ID), ids), c.col(m.Status), up.arg(m.Failed))
		moved, err = exec(ctx, tx, up)
		return err
	})
	return moved, err
}

// ClaimHolders returns the containers holding rows claimed before claimedBefore, sorted. The claim
// sweep asks the cluster about each: rows claimed by a container that is final or gone go back (with
// RollBack, which also closes the container against a writer that might still be around).
func (c *Catalog) ClaimHolders(ctx context.Context, claimedBefore time.Time, limit int) ([]string, error) {
	m := c.m
	q := c.q("")
	q.add(`SELECT DISTINCT %[1]s FROM %[2]s WHERE %[3]s = %[4]s AND %[5]s < %[6]s AND %[1]s IS NOT NULL ORDER BY 1 LIMIT %[7]s`,
		colContainer, c.table(), c.col(m.Status), q.arg(m.Claimed), colClaimedAt, q.arg(claimedBefore.UTC()), q.arg(limit))
	names, err := collect(ctx, c.db.sql, q, scanOne[string])
	if err != nil {
		return nil, fmt.Errorf("containers holding claims: %w", err)
	}
	return names, nil
}
