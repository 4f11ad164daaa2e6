package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// DES-owned columns, added by Migrate.
const (
	colContainer    = "des_container"
	colContainerKey = "des_container_key"
	colError        = "des_error"
	colRetries      = "des_retries"
	colClaimedAt    = "des_claimed_at"
	colPackedAt     = "des_packed_at"
	colFailedAt     = "des_failed_at"
	// Where a packed row's payload is (placement.go): written by the commit, read by the reader.
	colOffset      = "des_offset"
	colLength      = "des_length"
	colCRC32C      = "des_crc32c"
	colExternalKey = "des_external_key"
	// Source deletion (reclaim.go): the ETag the packer fetched, and what reclaiming did with the source.
	colSourceETag       = "des_source_etag"
	colSourceVerifiedAt = "des_source_verified_at"
	colSourceDeletedAt  = "des_source_deleted_at"
	colSourceRefused    = "des_source_refused"
)

// Index names are the table's name and a suffix. The backlog index (ready rows with the columns the
// claim and the fill read) replaced _des_ready, which the migration drops.
const (
	suffixBacklog = "_des_backlog"
	suffixReadyV1 = "_des_ready"
)

// desColumns are the DES-owned columns, in the order the migration adds them.
var desColumns = []string{colContainer, colContainerKey, colError, colRetries, colClaimedAt, colPackedAt, colFailedAt,
	colOffset, colLength, colCRC32C, colExternalKey, colSourceETag, colSourceVerifiedAt, colSourceDeletedAt, colSourceRefused}

var (
	// ErrTableMissing means the catalog table does not exist.
	ErrTableMissing = errors.New("catalog table does not exist")
	// ErrColumnMissing means a mapped or DES-owned column does not exist.
	ErrColumnMissing = errors.New("catalog column does not exist")
	// ErrRolledBack means a commit found fewer claimed rows than the container holds: someone rolled
	// the container back first. Nothing was changed.
	ErrRolledBack = errors.New("container was rolled back before its commit")
)

// Catalog runs DES's statements against one catalog table.
type Catalog struct {
	db    *DB
	m     Mapping
	where Where
}

// New checks the mapping; it does not touch the database.
func New(db *DB, m Mapping) (*Catalog, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("catalog mapping: %w", err)
	}
	where, err := m.ParseWhere()
	if err != nil {
		return nil, fmt.Errorf("catalog mapping: %w", err)
	}
	return &Catalog{db: db, m: m, where: where}, nil
}

// Mapping returns the mapping the catalog was made with.
func (c *Catalog) Mapping() Mapping { return c.m }

// Driver is the catalog database's dialect.
func (c *Catalog) Driver() Driver { return c.db.Driver() }

// Migrate adds the DES-owned columns, indexes and the des_containers table. It is idempotent and safe
// to run concurrently (a database lock serialises it). The table must exist and have the mapped
// columns, which DES's indexes are made of: without them it returns ErrTableMissing or
// ErrColumnMissing, naming them, and changes nothing.
func (c *Catalog) Migrate(ctx context.Context) error {
	have, err := c.db.d.columns(ctx, c, "")
	if err != nil {
		return fmt.Errorf("inspect catalog table %s: %w", c.m.Table, err)
	}
	if len(have) == 0 {
		return fmt.Errorf("%w: %s", ErrTableMissing, c.m.Table)
	}
	if missing := c.missingMapped(setOf(have)); len(missing) > 0 {
		return fmt.Errorf("%w in %s: %s", ErrColumnMissing, c.m.Table, strings.Join(missing, ", "))
	}
	return c.db.d.migrate(ctx, c)
}

// missingMapped names the mapped columns the table lacks (the user's columns: no migration adds them).
func (c *Catalog) missingMapped(present map[string]bool) []string {
	var missing []string
	for role, column := range c.m.requiredColumns() {
		if !present[column] {
			missing = append(missing, fmt.Sprintf("%s (columns.%s)", column, role))
		}
	}
	sort.Strings(missing)
	return missing
}

// Check verifies that the server can run the protocol and that the table and every mapped and
// DES-owned column exist, naming what is missing.
func (c *Catalog) Check(ctx context.Context) error {
	have, err := c.db.d.columns(ctx, c, "")
	if err != nil {
		return fmt.Errorf("inspect catalog table %s: %w", c.m.Table, err)
	}
	if err := c.db.d.checkServer(ctx, c); err != nil {
		return err
	}
	if len(have) == 0 {
		return fmt.Errorf("%w: %s", ErrTableMissing, c.m.Table)
	}
	present := setOf(have)
	missing := c.missingMapped(present)
	for _, column := range desColumns {
		if !present[column] {
			missing = append(missing, column+" (DES-owned: run `manager migrate` or set catalog.allowMigration)")
		}
	}
	counters, err := c.missingCounters(ctx)
	if err != nil {
		return err
	}
	missing = append(missing, counters...)
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%w in %s: %s", ErrColumnMissing, c.m.Table, strings.Join(missing, ", "))
	}
	return nil
}

// Row is one claimed source object.
type Row struct {
	ID     int64
	Bucket string
	Key    string
	Size   int64
	Name   string
}

// filter is " AND <source filter>" for a statement on the table aliased by alias ("" or "t."), or ""
// when the source has no filter.
func (c *Catalog) filter(q *query, alias string) string {
	w := c.where.sql(q, func(column string) string { return alias + c.col(column) })
	if w == "" {
		return ""
	}
	return " AND " + w
}

// bucketColumn is the expression of a row's bucket: the mapped column, or NULL when every object is
// in the default bucket (orDefault fills it in).
func (c *Catalog) bucketColumn(alias string) string {
	if c.m.Bucket == "" {
		return "NULL"
	}
	return alias + c.col(c.m.Bucket)
}

func (c *Catalog) orDefault(bucket sql.NullString) string {
	if bucket.Valid {
		return bucket.String
	}
	return c.m.DefaultBucket
}

// Claim marks up to limit ready rows of a shard as claimed by container and returns them in id order.
// Concurrent claimers get disjoint rows (FOR UPDATE SKIP LOCKED). A container that was rolled back or
// committed claims nothing: the error is ErrContainerClosed (see fence.go).
func (c *Catalog) Claim(ctx context.Context, shard int, container string, limit int) ([]Row, error) {
	m := c.m
	sel := c.q("")
	sel.add(`SELECT %s, %s, %s, %s, %s FROM %s WHERE %s = %s AND %s = %s%s ORDER BY %s LIMIT %s FOR UPDATE SKIP LOCKED`,
		c.col(m.ID), c.bucketColumn(""), c.col(m.Key), c.col(m.Size), c.col(m.DesName), c.table(),
		c.col(m.Shard), sel.arg(shard), c.col(m.Status), sel.arg(m.Ready), c.filter(sel, ""), c.col(m.ID), sel.arg(limit))
	var claimed []Row
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		claimed = nil
		state, inserted, err := c.lockFence(ctx, tx, container, false)
		if err != nil {
			return err
		}
		if state != fenceOpen {
			return fmt.Errorf("%w (%s)", ErrContainerClosed, state)
		}
		claimed, err = collect(ctx, tx, sel, func(r *sql.Rows) (Row, error) {
			var row Row
			var bucket sql.NullString
			err := r.Scan(&row.ID, &bucket, &row.Key, &row.Size, &row.Name)
			row.Bucket = c.orDefault(bucket)
			return row, err
		})
		if err != nil {
			return err
		}
		if len(claimed) == 0 {
			if inserted {
				return c.dropFence(ctx, tx, container)
			}
			return nil
		}
		return c.setClaimed(ctx, tx, container, claimed)
	})
	if err != nil {
		return nil, fmt.Errorf("claim rows of shard %d for %s: %w", shard, container, err)
	}
	sort.Slice(claimed, func(i, j int) bool { return claimed[i].ID < claimed[j].ID })
	return claimed, nil
}

// setClaimed moves the rows a claim selected (and locked) to claimed by container.
func (c *Catalog) setClaimed(ctx context.Context, tx *sql.Tx, container string, rows []Row) error {
	m := c.m
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	q := c.q("")
	q.add(`UPDATE %s SET %s = %s, %s = %s, %s = %s WHERE %s AND %s = %s`,
		c.table(), c.col(m.Status), q.arg(m.Claimed), colContainer, q.arg(container), colClaimedAt, c.db.d.now(),
		q.in(c.col(m.ID), ids), c.col(m.Status), q.arg(m.Ready))
	n, err := exec(ctx, tx, q)
	if err == nil && n != int64(len(rows)) {
		err = fmt.Errorf("%d of %d locked rows changed", n, len(rows))
	}
	return err
}

// MarkFailed moves one row claimed by container to failed with the error text and the time, counting
// the failure. It changes nothing if the row is no longer claimed by container or container is closed.
func (c *Catalog) MarkFailed(ctx context.Context, container string, id int64, cause string) (bool, error) {
	m := c.m
	q := c.q("")
	q.add(`UPDATE %s SET %s = %s, %s = NULL, %s = %s, %s = %s + 1, %s = %s WHERE %s = %s AND %s = %s AND %s = %s`,
		c.table(), c.col(m.Status), q.arg(m.Failed), colContainer, colError, q.arg(cause), colRetries, colRetries,
		colFailedAt, c.db.d.now(), c.col(m.ID), q.arg(id), colContainer, q.arg(container), c.col(m.Status), q.arg(m.Claimed))
	moved := false
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		moved = false
		state, _, err := c.lockFence(ctx, tx, container, false)
		if err != nil || state != fenceOpen {
			return err
		}
		n, err := exec(ctx, tx, q)
		moved = err == nil && n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("mark row %d failed: %w", id, err)
	}
	return moved, nil
}

// Record is the permanent record of a committed container (table des_containers).
type Record struct {
	Key             string
	Container       string
	Bucket          string
	Source          string
	Shard           int
	Day             time.Time
	Files           int64
	Bytes           int64
	ObjectSize      int64
	PayloadChecksum string
	IndexChecksum   string
	Writer          string
	// Placements say where each file of the container is, one per claimed row (placement.go).
	Placements []Placement
	// PlacementSource, when set instead of Placements, yields them from elsewhere (the packer's
	// temporary file), so that a million-file commit does not hold them all in memory.
	PlacementSource PlacementSource
}

// placements returns the record's placements, from whichever field holds them.
func (rec *Record) placements() (PlacementSource, error) {
	switch {
	case rec.PlacementSource == nil:
		return PlacementList(rec.Placements), nil
	case rec.Placements != nil:
		return nil, errors.New("both Placements and PlacementSource are set")
	}
	return rec.PlacementSource, nil
}

// Commit moves exactly the rows claimed by rec.Container to packed, writes each row's placement
// (rec.Placements, one per file) and records the container, in one transaction. If the container was
// rolled back (its fence is closed), or the rows claimed by it are not exactly the placed ones, nothing
// changes and the error is ErrRolledBack. Committing an already committed container is a no-op.
func (c *Catalog) Commit(ctx context.Context, rec Record) error {
	if rec.Files <= 0 {
		return fmt.Errorf("commit %s: a container without files is never committed", rec.Container)
	}
	placed, err := rec.placements()
	if err != nil {
		return fmt.Errorf("commit %s: %w", rec.Container, err)
	}
	if placed.Len() != rec.Files {
		return fmt.Errorf("commit %s: %d placements for %d files", rec.Container, placed.Len(), rec.Files)
	}
	insert := c.q("")
	insert.add(`INSERT INTO %s (%s, container, bucket, source, shard, day, files, bytes, object_size,
		payload_checksum, index_checksum, writer, committed_at)
		VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)`,
		c.containers(), c.col("key"), insert.arg(rec.Key), insert.arg(rec.Container), insert.arg(rec.Bucket),
		insert.arg(rec.Source), insert.arg(rec.Shard), insert.arg(rec.Day.UTC().Format(time.DateOnly)),
		insert.arg(rec.Files), insert.arg(rec.Bytes), insert.arg(rec.ObjectSize), insert.arg(rec.PayloadChecksum),
		insert.arg(rec.IndexChecksum), insert.arg(rec.Writer), c.db.d.now())
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		if done, err := c.containerRecorded(ctx, tx, rec.Container); err != nil || done {
			return err // already committed: nothing to do
		}
		state, _, err := c.lockFence(ctx, tx, rec.Container, true)
		switch {
		case err != nil:
			return err
		case state == fenceCommitted:
			return nil // a concurrent commit of the same container won while we waited for the fence
		case state != fenceOpen:
			return fmt.Errorf("%w: the container is %s", ErrRolledBack, state)
		}
		if err := c.packPlaced(ctx, tx, rec, placed); err != nil {
			return err
		}
		if _, err := exec(ctx, tx, insert); err != nil {
			return err
		}
		return c.setFence(ctx, tx, rec.Container, fenceCommitted)
	})
	if err != nil {
		return fmt.Errorf("commit container %s: %w", rec.Container, err)
	}
	return nil
}

// containerRecorded reports whether des_containers has container, through on (a pool or a transaction).
func (c *Catalog) containerRecorded(ctx context.Context, on querier, container string) (bool, error) {
	q := c.q("")
	q.add(`SELECT count(*) FROM %s WHERE container = %s`, c.containers(), q.arg(container))
	var n int
	err := queryRow(ctx, on, q, &n)
	return n > 0, err
}

// IsCommitted reports whether the container has a permanent record.
func (c *Catalog) IsCommitted(ctx context.Context, container string) (bool, error) {
	done, err := c.containerRecorded(ctx, c.db.sql, container)
	if err != nil {
		return false, fmt.Errorf("look up container %s: %w", container, err)
	}
	return done, nil
}

// RollBack closes container, so that it can claim, fail or commit nothing more, and returns every row
// still claimed by it to ready, in one transaction; it reports how many rows moved. Rows of a
// committed container are packed, not claimed, so a late roll-back changes nothing.
func (c *Catalog) RollBack(ctx context.Context, container string) (int64, error) {
	m := c.m
	q := c.q("")
	q.add(`UPDATE %s SET %s = %s, %s = NULL, %s = NULL WHERE %s = %s AND %s = %s`,
		c.table(), c.col(m.Status), q.arg(m.Ready), colContainer, colClaimedAt, colContainer, q.arg(container),
		c.col(m.Status), q.arg(m.Claimed))
	var moved int64
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		moved = 0
		if err := c.closeFence(ctx, tx, container); err != nil {
			return err
		}
		// A separate statement, so that it sees the rows of a claim that held the fence until now.
		n, err := exec(ctx, tx, q)
		moved = n
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("roll back container %s: %w", container, err)
	}
	return moved, nil
}

// Counts counts rows per state; rows without a DES name count as unnamed whatever their status.
type Counts struct {
	Unnamed, Ready, Claimed, Packed, Failed int64
	// Source deletion (reclaim.go): rows whose source object is deleted, whose archived copy and
	// source were verified (by a dry run or before a deletion, so deleted rows count here too), whose
	// source is kept for a reason, and packed rows neither deleted nor refused.
	SourcesDeleted, SourcesVerified, SourcesRefused, SourcesWaiting int64
	// RefusedExample is one refusal reason ("" when nothing was refused), for a status message.
	RefusedExample string
}

// Rows returns only the row states (Unnamed … Failed), for comparisons that do not care about
// source deletion.
func (n Counts) Rows() Counts {
	return Counts{Unnamed: n.Unnamed, Ready: n.Ready, Claimed: n.Claimed, Packed: n.Packed, Failed: n.Failed}
}

// Count counts the rows of the catalog per state (only the rows the source filter matches).
func (c *Catalog) Count(ctx context.Context) (Counts, error) {
	m := c.m
	name, status := c.col(m.DesName), c.col(m.Status)
	q := c.q("")
	named := func(value string) string {
		return fmt.Sprintf("count(CASE WHEN %s IS NOT NULL AND %s = %s THEN 1 END)", name, status, q.arg(value))
	}
	q.add(`SELECT count(CASE WHEN %s IS NULL THEN 1 END), %s, %s, %s, %s,
		count(%s), count(%s), count(%s),
		count(CASE WHEN %s = %s AND %s IS NULL AND %s IS NULL THEN 1 END),
		coalesce(min(%s), '')
		FROM %s WHERE 1 = 1%s`, name, named(m.Ready), named(m.Claimed), named(m.Packed), named(m.Failed),
		colSourceDeletedAt, colSourceVerifiedAt, colSourceRefused,
		status, q.arg(m.Packed), colSourceDeletedAt, colSourceRefused, colSourceRefused, c.table(), c.filter(q, ""))
	var n Counts
	err := queryRow(ctx, c.db.sql, q, &n.Unnamed, &n.Ready, &n.Claimed, &n.Packed, &n.Failed,
		&n.SourcesDeleted, &n.SourcesVerified, &n.SourcesRefused, &n.SourcesWaiting, &n.RefusedExample)
	if err != nil {
		return n, fmt.Errorf("count catalog rows: %w", err)
	}
	return n, nil
}

// IsUnavailable reports whether err means the database could not be reached (as opposed to a
// statement that failed), so callers can retry later instead of marking anything failed.
func IsUnavailable(err error) bool {
	return postgresDialect{}.isUnavailable(err) || mysqlDialect{}.isUnavailable(err) ||
		errors.Is(err, context.DeadlineExceeded)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func firstWords(stmt string) string {
	f := strings.Fields(stmt)
	if len(f) > 4 {
		f = f[:4]
	}
	return strings.Join(f, " ")
}

// RecordedKeys returns which of the given object keys belong to committed containers.
func (c *Catalog) RecordedKeys(ctx context.Context, keys []string) (map[string]bool, error) {
	q := c.q("")
	key := c.col("key")
	q.add(`SELECT %s FROM %s WHERE %s`, key, c.containers(), q.in(key, keys))
	found, err := collect(ctx, c.db.sql, q, scanOne[string])
	if err != nil {
		return nil, fmt.Errorf("look up committed container keys: %w", err)
	}
	return setOf(found), nil
}
