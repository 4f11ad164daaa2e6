package catalog

import (
	"context"
	"database/sql"
	"fmt"
)

// The counters of source deletion, one pair per committed container in des_containers. They are kept
// by the statement that changes what they count (RecordReclaimed) and recomputed from the container's
// rows when a reclaim pass over it ends (FinishReclaim), so Tally sums one row per container instead
// of scanning every packed row. Only DES marks sources deleted or verified. Refusals are not counted
// here: a person clears them by hand, and the status must show that at once; they are few, and
// counted through their own index.
const (
	counterDeleted  = "sources_deleted"
	counterVerified = "sources_verified"
)

var sourceCounters = []string{counterDeleted, counterVerified}

// missingCounters names the counter columns des_containers lacks (none when the table does not exist
// yet: the migration that creates it adds them).
func (c *Catalog) missingCounters(ctx context.Context) ([]string, error) {
	have, err := c.db.d.columns(ctx, c, "des_containers")
	if err != nil {
		return nil, fmt.Errorf("inspect des_containers: %w", err)
	}
	if len(have) == 0 {
		return nil, nil
	}
	present := setOf(have)
	var missing []string
	for _, column := range sourceCounters {
		if !present[column] {
			missing = append(missing, "des_containers."+column+" (DES-owned: run `manager migrate` or set catalog.allowMigration)")
		}
	}
	return missing, nil
}

// Tally counts what a DesSource's status shows at a cost that follows the work, not the table, so it
// can run every minute on a catalog of a billion rows:
//   - the rows waiting for something (unnamed, ready, claimed, failed) are counted exactly, each through
//     the index that the statements working on them use, so the cost is the size of that backlog;
//   - so are refused sources, which wait for a person, through the index on the refusal;
//   - packed rows, committed containers and deleted and verified sources are sums over the source's
//     des_containers rows, one per container, whose files column and counters the commit and the
//     reclaim statements keep.
//
// It equals Count for the rows DES packed. Rows packed or deleted outside DES (a status set by hand)
// are counted by Count only. Count is the exact census: one pass over the whole table, on request.
func (c *Catalog) Tally(ctx context.Context, source string) (Tally, error) {
	var t Tally
	if err := c.tallyQueues(ctx, &t.Counts); err != nil {
		return t, fmt.Errorf("count waiting catalog rows: %w", err)
	}
	if err := c.tallyContainers(ctx, source, &t); err != nil {
		return t, fmt.Errorf("sum the containers of %s: %w", source, err)
	}
	return t, nil
}

// Tally is Counts plus what only the container records know.
type Tally struct {
	Counts
	// Containers is the number of containers committed from the source.
	Containers int64
}

// tallyQueues counts the backlogs and the refusals. Each count names its state's predicate exactly as
// the partial index it should use does (PostgreSQL), or as the leading column of the index (MySQL).
func (c *Catalog) tallyQueues(ctx context.Context, n *Counts) error {
	m := c.m
	name, status := c.col(m.DesName), c.col(m.Status)
	q := c.q("")
	filter := c.filter(q, "")
	// A named row in state value: all rows in that state less the unnamed ones. Each side is read
	// from one index alone (the state's, the unnamed rows'), where asking for a name on every row
	// of the state would visit each row in the table (a 100,000-row backlog cost seconds on MySQL).
	named := func(value string) string {
		return fmt.Sprintf(`((SELECT count(*) FROM %[1]s WHERE %[2]s = %[3]s%[5]s) - (SELECT count(*) FROM %[1]s WHERE %[4]s IS NULL AND %[2]s = %[3]s%[5]s))`,
			c.table(), status, q.arg(value), name, filter)
	}
	q.add(`SELECT (SELECT count(*) FROM %[1]s WHERE %[2]s IS NULL%[3]s), %[4]s, %[5]s, %[6]s,
		(SELECT count(*) FROM %[1]s WHERE %[7]s IS NOT NULL AND %[8]s = %[9]s%[3]s),
		(SELECT coalesce(min(%[7]s), '') FROM %[1]s WHERE %[7]s IS NOT NULL AND %[8]s = %[10]s%[3]s)`,
		c.table(), name, filter, named(m.Ready), named(m.Claimed), named(m.Failed),
		colSourceRefused, status, q.arg(m.Packed), q.arg(m.Packed))
	return queryRow(ctx, c.db.sql, q, &n.Unnamed, &n.Ready, &n.Claimed, &n.Failed, &n.SourcesRefused, &n.RefusedExample)
}

// tallyContainers sums the source's container records: packed files and the source deletion
// counters.
func (c *Catalog) tallyContainers(ctx context.Context, source string, t *Tally) error {
	q := c.q("")
	q.add(`SELECT count(*), coalesce(sum(files), 0), coalesce(sum(%s), 0), coalesce(sum(%s), 0)
		FROM %s WHERE source = %s`, counterDeleted, counterVerified, c.containers(), q.arg(source))
	n := &t.Counts
	if err := queryRow(ctx, c.db.sql, q, &t.Containers, &n.Packed, &n.SourcesDeleted, &n.SourcesVerified); err != nil {
		return err
	}
	n.SourcesWaiting = max(n.Packed-n.SourcesDeleted-n.SourcesRefused, 0)
	return nil
}

// addCounters adds to container's counters, inside the transaction that changed the rows.
func (c *Catalog) addCounters(ctx context.Context, tx *sql.Tx, container string, deleted, verified int64) error {
	if deleted == 0 && verified == 0 {
		return nil
	}
	q := c.q("")
	q.add(`UPDATE %[1]s SET %[2]s = %[2]s + %[3]s, %[4]s = %[4]s + %[5]s WHERE container = %[6]s`,
		c.containers(), counterDeleted, q.arg(deleted), counterVerified, q.arg(verified), q.arg(container))
	_, err := exec(ctx, tx, q)
	return err
}

// recountStatement sets the counters of the containers matching where (on des_containers AS d) from
// their rows: after a reclaim pass over one container, and once by the migration that adds them.
func (c *Catalog) recountStatement(q *query, where string) *query {
	m := c.m
	count := func(cond string) string {
		return fmt.Sprintf(`(SELECT count(*) FROM %s AS t WHERE t.%s = d.container AND t.%s = %s AND %s)`,
			c.table(), colContainer, c.col(m.Status), q.arg(m.Packed), cond)
	}
	return q.add(`UPDATE %s AS d SET %s = %s, %s = %s WHERE %s`, c.containers(),
		counterDeleted, count("t."+colSourceDeletedAt+" IS NOT NULL"),
		counterVerified, count("t."+colSourceVerifiedAt+" IS NOT NULL"), where)
}

// recount recomputes one container's counters.
func (c *Catalog) recount(ctx context.Context, container string) error {
	q := c.q("")
	if _, err := exec(ctx, c.db.sql, c.recountStatement(q, "d.container = "+q.arg(container))); err != nil {
		return fmt.Errorf("recount the sources of %s: %w", container, err)
	}
	return nil
}

// countersMissing reports whether des_containers exists without (some of) its counters: the migration
// then adds them and counts what earlier reclaim passes did, once.
func (c *Catalog) countersMissing(ctx context.Context) (bool, error) {
	missing, err := c.missingCounters(ctx)
	return len(missing) > 0, err
}

// seedCounters counts every container's sources from its rows, through on (the migration's
// transaction or connection).
func (c *Catalog) seedCounters(ctx context.Context, on querier) error {
	if _, err := exec(ctx, on, c.recountStatement(c.q(""), "1 = 1")); err != nil {
		return fmt.Errorf("migrate catalog %s: count the sources of existing containers: %w", c.m.Table, err)
	}
	return nil
}
