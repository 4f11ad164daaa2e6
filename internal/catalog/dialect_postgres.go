package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// postgresDialect is PostgreSQL (through pgx's database/sql driver, which takes Go slices as arrays).
type postgresDialect struct{}

func (postgresDialect) driver() Driver { return Postgres }
func (postgresDialect) numbered() bool { return true }

func (postgresDialect) ident(parts ...string) string { return pgx.Identifier(parts).Sanitize() }

func (postgresDialect) now() string { return "now()" }

func (postgresDialect) before(micros string) string {
	return fmt.Sprintf("(now() - CAST(%s AS double precision) * interval '1 microsecond')", micros)
}

func (postgresDialect) bigint(expr string) string { return "CAST(" + expr + " AS bigint)" }

func (postgresDialect) in(q *query, expr string, list any) string {
	return expr + " = ANY(" + q.arg(list) + ")"
}

func (postgresDialect) rows(q *query, alias string, cols []rowCol) string {
	arrays := make([]string, len(cols))
	names := make([]string, len(cols))
	for i, c := range cols {
		arrays[i] = q.arg(c.values) + "::" + c.pgType + "[]"
		names[i] = c.name
	}
	return fmt.Sprintf("unnest(%s) AS %s(%s)", strings.Join(arrays, ", "), alias, strings.Join(names, ", "))
}

func (postgresDialect) updateJoin(q *query, table, alias, rowSet, on string, sets []set, where string) *query {
	assign := make([]string, len(sets))
	for i, s := range sets {
		assign[i] = s.column + " = " + s.expr
	}
	q.add("UPDATE %s AS %s SET %s FROM %s WHERE %s", table, alias, strings.Join(assign, ", "), rowSet, on)
	if where != "" {
		q.add(" AND %s", where)
	}
	return q
}

func (postgresDialect) lockShare() string { return "FOR SHARE" }

func (postgresDialect) insertIgnoring(insert string) string {
	return insert + " ON CONFLICT DO NOTHING"
}
func (postgresDialect) ignoredErr(error) bool { return false }

func (d postgresDialect) upsertState(q *query, table, container, to, from string) *query {
	return q.add(`INSERT INTO %[1]s AS f (container, state, changed_at) VALUES (%[2]s, %[3]s, now())
		ON CONFLICT (container) DO UPDATE SET state = %[3]s, changed_at = now() WHERE f.state = %[4]s`,
		table, q.arg(container), q.arg(to), q.arg(from))
}

// txOptions is PostgreSQL's default, READ COMMITTED: each statement sees what committed before it,
// which the roll-back relies on (fence.go).
func (postgresDialect) txOptions() *sql.TxOptions { return nil }

func (postgresDialect) isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

func (postgresDialect) isUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	return pgconn.SafeToRetry(err)
}

func (d postgresDialect) isRefused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && !d.isUnavailable(err) && !d.isDeadlock(err)
}

// migrate runs the migration in one transaction, serialised by an advisory lock: PostgreSQL's DDL is
// transactional, so a failed migration leaves the table as it was.
func (d postgresDialect) migrate(ctx context.Context, c *Catalog) error {
	return c.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('des-migrate'))`); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		seed, err := c.countersMissing(ctx)
		if err != nil {
			return err
		}
		for _, stmt := range d.migrationStatements(c) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migrate catalog %s: %s: %w", c.m.Table, firstWords(stmt), err)
			}
		}
		if seed {
			return c.seedCounters(ctx, tx)
		}
		return nil
	})
}

func (postgresDialect) migrationStatements(c *Catalog) []string {
	m := c.m
	t := c.table()
	_, name := m.schemaAndTable()
	index := func(suffix string) string { return c.col(truncate(name, 63-len(suffix)) + suffix) }
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
		// Claims scan ready rows of one shard in id order. The fill (FillByShard, on every DesShard
		// reconcile) sums their sizes and ages: with those in the index it never reads the table. Key
		// columns rather than INCLUDE, which PostgreSQL has only from 11 on.
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (%s, %s, %s, %s) WHERE %s = %s`,
			index(suffixBacklog), t, c.col(m.Shard), c.col(m.ID), c.col(m.Size), c.col(m.CreatedAt),
			c.col(m.Status), literal(m.Ready)),
		// The backlog index replaces the older _des_ready (shard, id); two would only double the
		// upkeep of every ready row. Looked up on this very table, so that a namesake index of a
		// table in another schema is never touched.
		fmt.Sprintf(`DO $$
			DECLARE ix text;
			BEGIN
				SELECT format('%%I.%%I', n.nspname, i.relname) INTO ix
				FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
				WHERE x.indrelid = %s::regclass AND i.relname = %s;
				IF ix IS NOT NULL THEN EXECUTE 'DROP INDEX ' || ix; END IF;
			END $$`, literal(t), literal(truncate(name, 63-len(suffixReadyV1))+suffixReadyV1)),
		// The marker looks for rows without a DES name; without this it rescans named rows every run.
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (%s) WHERE %s IS NULL`,
			index("_des_unnamed"), t, c.col(m.ID), c.col(m.DesName)),
		// Commit, roll-back and recovery find a container's rows.
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (%s) WHERE %s IS NOT NULL`,
			index("_des_container"), t, colContainer, colContainer),
		// The claim sweep finds old claims; the retry step finds failed rows.
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (%s) WHERE %s = %s`,
			index("_des_claimed"), t, colClaimedAt, c.col(m.Status), literal(m.Claimed)),
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (%s) WHERE %s = %s`,
			index("_des_failed"), t, c.col(m.ID), c.col(m.Status), literal(m.Failed)),
		// The status counts refused sources, which wait for a person (tally.go).
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (%s) WHERE %s IS NOT NULL`,
			index("_des_refused"), t, colSourceRefused, colSourceRefused),
		// The reader finds a file's placement by its DES name (Locate).
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (%s)`, index("_des_name"), t, c.col(m.DesName)),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
			container text PRIMARY KEY,
			state text NOT NULL CHECK (state IN (%s, %s, %s)),
			changed_at timestamptz NOT NULL DEFAULT now())`,
			c.fences(), literal(fenceOpen), literal(fenceClosed), literal(fenceCommitted)),
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
			committed_at timestamptz NOT NULL DEFAULT now())`, c.containers()),
		// Source deletion's progress per container (reclaim.go); added apart so older catalogs migrate.
		fmt.Sprintf(`ALTER TABLE %s
			ADD COLUMN IF NOT EXISTS sources_verified_at timestamptz,
			ADD COLUMN IF NOT EXISTS sources_deleted_at timestamptz`, c.containers()),
		// Source deletion's counters per container (tally.go), summed for the status instead of
		// counting rows.
		fmt.Sprintf(`ALTER TABLE %s
			ADD COLUMN IF NOT EXISTS %s bigint NOT NULL DEFAULT 0,
			ADD COLUMN IF NOT EXISTS %s bigint NOT NULL DEFAULT 0`, c.containers(), counterDeleted, counterVerified),
		// The status sums a source's containers.
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS des_containers_source ON %s (source)`, c.containers()),
		// Reclaiming looks for a source's committed containers whose sources are not done, oldest first;
		// finished containers (the vast majority, eventually) drop out of the index.
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS des_containers_reclaim ON %s (source, shard, committed_at)
			WHERE sources_deleted_at IS NULL`, c.containers()),
	}
}

// columns reads the table's columns from the catalog: an unqualified table is looked up on the
// search path, as the statements will find it.
func (postgresDialect) columns(ctx context.Context, c *Catalog, table string) ([]string, error) {
	schema, name := c.m.schemaAndTable()
	if table != "" {
		name = table
	}
	q := c.q("")
	q.add(`SELECT a.attname FROM pg_attribute a
		JOIN pg_class t ON t.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = t.relnamespace
		WHERE t.relname = %[1]s AND t.relkind IN ('r', 'p', 'v')
		  AND ((%[2]s = '' AND n.nspname = ANY (current_schemas(false))) OR n.nspname = %[2]s)
		  AND a.attnum > 0 AND NOT a.attisdropped`, q.arg(name), q.arg(schema))
	return collect(ctx, c.db.sql, q, scanOne[string])
}

// checkServer has nothing to check: every PostgreSQL DES can reach (9.5 and later) has SKIP LOCKED.
func (postgresDialect) checkServer(context.Context, *Catalog) error { return nil }

// literal quotes a string as an SQL literal; only used where PostgreSQL takes no parameters (DDL).
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
