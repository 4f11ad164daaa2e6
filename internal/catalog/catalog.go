package catalog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
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
	pool *pgxpool.Pool
	m    Mapping
}

// New checks the mapping; it does not touch the database.
func New(pool *pgxpool.Pool, m Mapping) (*Catalog, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("catalog mapping: %w", err)
	}
	return &Catalog{pool: pool, m: m}, nil
}

// Mapping returns the mapping the catalog was made with.
func (c *Catalog) Mapping() Mapping { return c.m }

// Migrate adds the DES-owned columns, indexes and the des_containers table. It is idempotent and safe
// to run concurrently (an advisory lock serialises it).
func (c *Catalog) Migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('des-migrate'))`); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		for _, stmt := range c.migrationStatements() {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("migrate catalog %s: %s: %w", c.m.Table, firstWords(stmt), err)
			}
		}
		return nil
	})
}

func (c *Catalog) migrationStatements() []string {
	t := c.m.tableIdent()
	_, name := c.m.schemaAndTable()
	index := func(suffix string) string { return col(truncate(name, 63-len(suffix)) + suffix) }
	return []string{
		fmt.Sprintf(`ALTER TABLE %s
			ADD COLUMN IF NOT EXISTS %s text,
			ADD COLUMN IF NOT EXISTS %s text,
			ADD COLUMN IF NOT EXISTS %s text,
			ADD COLUMN IF NOT EXISTS %s integer NOT NULL DEFAULT 0,
			ADD COLUMN IF NOT EXISTS %s timestamptz,
			ADD COLUMN IF NOT EXISTS %s timestamptz,
			ADD COLUMN IF NOT EXISTS %s timestamptz,
			ADD COLUMN IF NOT EXISTS %s bigint,
			ADD COLUMN IF NOT EXISTS %s bigint,
			ADD COLUMN IF NOT EXISTS %s bigint,
			ADD COLUMN IF NOT EXISTS %s text,
			ADD COLUMN IF NOT EXISTS %s text,
			ADD COLUMN IF NOT EXISTS %s timestamptz,
			ADD COLUMN IF NOT EXISTS %s timestamptz,
			ADD COLUMN IF NOT EXISTS %s text`,
			t, colContainer, colContainerKey, colError, colRetries, colClaimedAt, colPackedAt, colFailedAt,
			colOffset, colLength, colCRC32C, colExternalKey,
			colSourceETag, colSourceVerifiedAt, colSourceDeletedAt, colSourceRefused),
		// Claims scan ready rows of one shard in id order.
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (%s, %s) WHERE %s = %s`,
			index("_des_ready"), t, col(c.m.Shard), col(c.m.ID), col(c.m.Status), literal(c.m.Ready)),
		// The marker looks for rows without a DES name; without this it rescans named rows every run.
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (%s) WHERE %s IS NULL`,
			index("_des_unnamed"), t, col(c.m.ID), col(c.m.DesName)),
		// Commit, roll-back and recovery find a container's rows.
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (%s) WHERE %s IS NOT NULL`,
			index("_des_container"), t, colContainer, colContainer),
		// The claim sweep finds old claims; the retry step finds failed rows.
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (%s) WHERE %s = %s`,
			index("_des_claimed"), t, colClaimedAt, col(c.m.Status), literal(c.m.Claimed)),
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (%s) WHERE %s = %s`,
			index("_des_failed"), t, col(c.m.ID), col(c.m.Status), literal(c.m.Failed)),
		// The reader finds a file's placement by its DES name (Locate).
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (%s)`, index("_des_name"), t, col(c.m.DesName)),
		c.fenceTableStatement(),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
			key text PRIMARY KEY,
			container text NOT NULL UNIQUE,
			bucket text NOT NULL,
			source text NOT NULL,
			shard integer NOT NULL,
			day date NOT NULL,
			files bigint NOT NULL,
			bytes bigint NOT NULL,
			object_size bigint NOT NULL,
			payload_checksum text NOT NULL,
			index_checksum text NOT NULL,
			writer text NOT NULL,
			committed_at timestamptz NOT NULL DEFAULT now())`, c.m.containersIdent()),
		// Source deletion's progress per container (reclaim.go); added apart so older catalogs migrate.
		fmt.Sprintf(`ALTER TABLE %s
			ADD COLUMN IF NOT EXISTS sources_verified_at timestamptz,
			ADD COLUMN IF NOT EXISTS sources_deleted_at timestamptz`, c.m.containersIdent()),
		// Reclaiming looks for a source's committed containers whose sources are not done, oldest first;
		// finished containers (the vast majority, eventually) drop out of the index.
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS des_containers_reclaim ON %s (source, shard, committed_at)
			WHERE sources_deleted_at IS NULL`, c.m.containersIdent()),
	}
}

// Check verifies that the table and every mapped and DES-owned column exist, naming what is missing.
func (c *Catalog) Check(ctx context.Context) error {
	schema, name := c.m.schemaAndTable()
	rows, err := c.pool.Query(ctx, `
		SELECT a.attname FROM pg_attribute a
		JOIN pg_class t ON t.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = t.relnamespace
		WHERE t.relname = $1 AND t.relkind IN ('r', 'p', 'v')
		  AND (($2 = '' AND n.nspname = ANY (current_schemas(false))) OR n.nspname = $2)
		  AND a.attnum > 0 AND NOT a.attisdropped`, name, schema)
	if err != nil {
		return fmt.Errorf("inspect catalog table %s: %w", c.m.Table, err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("inspect catalog table %s: %w", c.m.Table, err)
	}
	if len(have) == 0 {
		return fmt.Errorf("%w: %s", ErrTableMissing, c.m.Table)
	}
	present := map[string]bool{}
	for _, h := range have {
		present[h] = true
	}
	var missing []string
	for role, column := range c.m.requiredColumns() {
		if !present[column] {
			missing = append(missing, fmt.Sprintf("%s (columns.%s)", column, role))
		}
	}
	for _, column := range desColumns {
		if !present[column] {
			missing = append(missing, column+" (DES-owned: run `manager migrate` or set catalog.allowMigration)")
		}
	}
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

// Claim marks up to limit ready rows of a shard as claimed by container and returns them in id order.
// Concurrent claimers get disjoint rows (FOR UPDATE SKIP LOCKED). A container that was rolled back or
// committed claims nothing: the error is ErrContainerClosed (see fence.go).
func (c *Catalog) Claim(ctx context.Context, shard int, container string, limit int) ([]Row, error) {
	m := c.m
	// $5 (the default bucket) is always referenced so PostgreSQL can type it.
	bucket := "$5::text"
	if m.Bucket != "" {
		bucket = fmt.Sprintf("COALESCE(%s, $5::text)", col(m.Bucket))
	}
	q := fmt.Sprintf(`
		UPDATE %[1]s SET %[2]s = $4, %[3]s = $3, %[4]s = now()
		WHERE %[5]s IN (
			SELECT %[5]s FROM %[1]s WHERE %[6]s = $1 AND %[2]s = $2
			ORDER BY %[5]s LIMIT $6 FOR UPDATE SKIP LOCKED)
		RETURNING %[5]s, %[7]s, %[8]s, %[9]s, %[10]s`,
		m.tableIdent(), col(m.Status), colContainer, colClaimedAt, col(m.ID), col(m.Shard),
		bucket, col(m.Key), col(m.Size), col(m.DesName))
	var claimed []Row
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		state, inserted, err := c.lockFence(ctx, tx, container, "SHARE")
		if err != nil {
			return err
		}
		if state != fenceOpen {
			return fmt.Errorf("%w (%s)", ErrContainerClosed, state)
		}
		rows, err := tx.Query(ctx, q, shard, m.Ready, container, m.Claimed, m.DefaultBucket, limit)
		if err != nil {
			return err
		}
		claimed, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Row, error) {
			var row Row
			err := r.Scan(&row.ID, &row.Bucket, &row.Key, &row.Size, &row.Name)
			return row, err
		})
		if err == nil && inserted && len(claimed) == 0 {
			err = c.dropFence(ctx, tx, container)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim rows of shard %d for %s: %w", shard, container, err)
	}
	sort.Slice(claimed, func(i, j int) bool { return claimed[i].ID < claimed[j].ID })
	return claimed, nil
}

// MarkFailed moves one row claimed by container to failed with the error text and the time, counting
// the failure. It changes nothing if the row is no longer claimed by container or container is closed.
func (c *Catalog) MarkFailed(ctx context.Context, container string, id int64, cause string) (bool, error) {
	m := c.m
	q := fmt.Sprintf(`UPDATE %s SET %s = $1, %s = NULL, %s = $2, %s = %s + 1, %s = now()
		WHERE %s = $3 AND %s = $4 AND %s = $5`,
		m.tableIdent(), col(m.Status), colContainer, colError, colRetries, colRetries, colFailedAt,
		col(m.ID), colContainer, col(m.Status))
	moved := false
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		state, _, err := c.lockFence(ctx, tx, container, "SHARE")
		if err != nil || state != fenceOpen {
			return err
		}
		tag, err := tx.Exec(ctx, q, m.Failed, cause, id, container, m.Claimed)
		moved = err == nil && tag.RowsAffected() == 1
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
}

// Commit moves exactly the rows claimed by rec.Container to packed, writes each row's placement
// (rec.Placements, one per file) and records the container, in one transaction. If the container was
// rolled back (its fence is closed), or the rows claimed by it are not exactly the placed ones, nothing
// changes and the error is ErrRolledBack. Committing an already committed container is a no-op.
func (c *Catalog) Commit(ctx context.Context, rec Record) error {
	if rec.Files <= 0 {
		return fmt.Errorf("commit %s: a container without files is never committed", rec.Container)
	}
	if int64(len(rec.Placements)) != rec.Files {
		return fmt.Errorf("commit %s: %d placements for %d files", rec.Container, len(rec.Placements), rec.Files)
	}
	m := c.m
	insert := fmt.Sprintf(`INSERT INTO %s (key, container, bucket, source, shard, day, files, bytes,
		object_size, payload_checksum, index_checksum, writer) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
		m.containersIdent())
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if done, err := containerRecorded(ctx, tx, m, rec.Container); err != nil || done {
			return err // already committed: nothing to do
		}
		state, _, err := c.lockFence(ctx, tx, rec.Container, "UPDATE")
		switch {
		case err != nil:
			return err
		case state == fenceCommitted:
			return nil // a concurrent commit of the same container won while we waited for the fence
		case state != fenceOpen:
			return fmt.Errorf("%w: the container is %s", ErrRolledBack, state)
		}
		if err := c.packPlaced(ctx, tx, rec); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, insert, rec.Key, rec.Container, rec.Bucket, rec.Source, rec.Shard,
			rec.Day.UTC().Format(time.DateOnly), rec.Files, rec.Bytes, rec.ObjectSize,
			rec.PayloadChecksum, rec.IndexChecksum, rec.Writer)
		if err != nil {
			return err
		}
		return c.setFence(ctx, tx, rec.Container, fenceCommitted)
	})
	if err != nil {
		return fmt.Errorf("commit container %s: %w", rec.Container, err)
	}
	return nil
}

// rowQuerier is a pool or a transaction.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// containerRecorded reports whether des_containers has container, through q (a pool or a transaction).
func containerRecorded(ctx context.Context, q rowQuerier, m Mapping, container string) (bool, error) {
	var n int
	err := q.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s WHERE container = $1`, m.containersIdent()), container).Scan(&n)
	return n > 0, err
}

// IsCommitted reports whether the container has a permanent record.
func (c *Catalog) IsCommitted(ctx context.Context, container string) (bool, error) {
	done, err := containerRecorded(ctx, c.pool, c.m, container)
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
	q := fmt.Sprintf(`UPDATE %s SET %s = $1, %s = NULL, %s = NULL WHERE %s = $2 AND %s = $3`,
		m.tableIdent(), col(m.Status), colContainer, colClaimedAt, colContainer, col(m.Status))
	var moved int64
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if err := c.closeFence(ctx, tx, container); err != nil {
			return err
		}
		// A separate statement, so that it sees the rows of a claim that held the fence until now.
		tag, err := tx.Exec(ctx, q, m.Ready, container, m.Claimed)
		moved = tag.RowsAffected()
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

// Count counts the rows of the catalog per state.
func (c *Catalog) Count(ctx context.Context) (Counts, error) {
	m := c.m
	q := fmt.Sprintf(`SELECT
		count(*) FILTER (WHERE %[1]s IS NULL),
		count(*) FILTER (WHERE %[1]s IS NOT NULL AND %[2]s = $1),
		count(*) FILTER (WHERE %[1]s IS NOT NULL AND %[2]s = $2),
		count(*) FILTER (WHERE %[1]s IS NOT NULL AND %[2]s = $3),
		count(*) FILTER (WHERE %[1]s IS NOT NULL AND %[2]s = $4),
		count(*) FILTER (WHERE %[4]s IS NOT NULL),
		count(*) FILTER (WHERE %[5]s IS NOT NULL),
		count(*) FILTER (WHERE %[6]s IS NOT NULL),
		count(*) FILTER (WHERE %[2]s = $3 AND %[4]s IS NULL AND %[6]s IS NULL),
		coalesce(min(%[6]s), '')
		FROM %[3]s`, col(m.DesName), col(m.Status), m.tableIdent(), colSourceDeletedAt, colSourceVerifiedAt, colSourceRefused)
	var n Counts
	err := c.pool.QueryRow(ctx, q, m.Ready, m.Claimed, m.Packed, m.Failed).
		Scan(&n.Unnamed, &n.Ready, &n.Claimed, &n.Packed, &n.Failed,
			&n.SourcesDeleted, &n.SourcesVerified, &n.SourcesRefused, &n.SourcesWaiting, &n.RefusedExample)
	if err != nil {
		return n, fmt.Errorf("count catalog rows: %w", err)
	}
	return n, nil
}

// IsUnavailable reports whether err means the database could not be reached (as opposed to a
// statement that failed), so callers can retry later instead of marking anything failed.
func IsUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	return pgconn.SafeToRetry(err) || errors.Is(err, context.DeadlineExceeded)
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
	rows, err := c.pool.Query(ctx, fmt.Sprintf(`SELECT key FROM %s WHERE key = ANY($1)`, c.m.containersIdent()), keys)
	if err != nil {
		return nil, fmt.Errorf("look up committed container keys: %w", err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("look up committed container keys: %w", err)
	}
	out := make(map[string]bool, len(found))
	for _, k := range found {
		out[k] = true
	}
	return out, nil
}
