package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
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
	m := c.m
	// Rows failed before des_failed_at existed have none: they are due at once.
	q := fmt.Sprintf(`UPDATE %[1]s SET %[2]s = $1 WHERE %[3]s IN (
		SELECT %[3]s FROM %[1]s
		WHERE %[2]s = $2 AND %[4]s IS NOT NULL AND %[5]s < $3
		  AND COALESCE(%[6]s, '-infinity') <= now() - make_interval(secs => least($4 * power(2, greatest(%[5]s - 1, 0)), $5))
		ORDER BY %[3]s LIMIT $6 FOR UPDATE SKIP LOCKED)`,
		m.tableIdent(), col(m.Status), col(m.ID), col(m.DesName), colRetries, colFailedAt)
	var total int64
	for {
		tag, err := c.pool.Exec(ctx, q, m.Ready, m.Failed, p.MaxRetries, p.Backoff.Seconds(), p.MaxBackoff.Seconds(), p.Batch)
		if err != nil {
			return total, fmt.Errorf("return failed rows of %s to ready: %w", m.Table, err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(p.Batch) {
			return total, nil
		}
	}
}

// ClaimHolders returns the containers holding rows claimed before claimedBefore, sorted. The claim
// sweep asks the cluster about each: rows claimed by a container that is final or gone go back (with
// RollBack, which also closes the container against a writer that might still be around).
func (c *Catalog) ClaimHolders(ctx context.Context, claimedBefore time.Time, limit int) ([]string, error) {
	m := c.m
	q := fmt.Sprintf(`SELECT DISTINCT %[1]s FROM %[2]s WHERE %[3]s = $1 AND %[4]s < $2 AND %[1]s IS NOT NULL ORDER BY 1 LIMIT $3`,
		colContainer, m.tableIdent(), col(m.Status), colClaimedAt)
	rows, err := c.pool.Query(ctx, q, m.Claimed, claimedBefore, limit)
	if err != nil {
		return nil, fmt.Errorf("containers holding claims: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("containers holding claims: %w", err)
	}
	return names, nil
}
