package catalog

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/datavision/des/internal/fill"
)

// FillByShard sums up the ready rows of each of the given shards (count, bytes, oldest creation time):
// what the fill policy decides on (internal/fill). Shards without ready rows are absent. The rows
// counted are those a claim takes (the same predicate, served by the same partial index).
func (c *Catalog) FillByShard(ctx context.Context, shards []int32) (map[int32]fill.Stats, error) {
	m := c.m
	q := c.q("")
	q.add(`SELECT %[1]s, count(*), %[2]s, min(%[3]s) FROM %[4]s WHERE %[5]s = %[6]s AND %[7]s%[8]s GROUP BY %[1]s`,
		c.col(m.Shard), c.db.d.bigint("COALESCE(sum("+c.col(m.Size)+"), 0)"), c.col(m.CreatedAt), c.table(),
		c.col(m.Status), q.arg(m.Ready), q.in(c.col(m.Shard), shards), c.filter(q, ""))
	out, err := collectMap(ctx, c.db.sql, q, func(r *sql.Rows) (shard int32, st fill.Stats, err error) {
		var oldest sql.NullTime
		err = r.Scan(&shard, &st.Rows, &st.Bytes, &oldest)
		if oldest.Valid {
			st.Oldest = oldest.Time
		}
		return shard, st, err
	})
	if err != nil {
		return nil, fmt.Errorf("sum up ready rows per shard: %w", err)
	}
	return out, nil
}
