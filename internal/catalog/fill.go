package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/datavision/des/internal/fill"
)

// FillByShard sums up the ready rows of each of the given shards (count, bytes, oldest creation time):
// what the fill policy decides on (internal/fill). Shards without ready rows are absent. The rows
// counted are those a claim takes (the same predicate, served by the same partial index).
func (c *Catalog) FillByShard(ctx context.Context, shards []int32) (map[int32]fill.Stats, error) {
	m := c.m
	q := fmt.Sprintf(`SELECT %[1]s, count(*), COALESCE(sum(%[4]s), 0)::bigint, min(%[5]s)
		FROM %[2]s WHERE %[3]s = $1 AND %[1]s = ANY($2) GROUP BY 1`,
		col(m.Shard), m.tableIdent(), col(m.Status), col(m.Size), col(m.CreatedAt))
	rows, err := c.pool.Query(ctx, q, m.Ready, shards)
	if err != nil {
		return nil, fmt.Errorf("sum up ready rows per shard: %w", err)
	}
	defer rows.Close()
	out := make(map[int32]fill.Stats, len(shards))
	for rows.Next() {
		var (
			s      int32
			st     fill.Stats
			oldest *time.Time
		)
		if err := rows.Scan(&s, &st.Rows, &st.Bytes, &oldest); err != nil {
			return nil, fmt.Errorf("sum up ready rows per shard: %w", err)
		}
		if oldest != nil {
			st.Oldest = *oldest
		}
		out[s] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sum up ready rows per shard: %w", err)
	}
	return out, nil
}
