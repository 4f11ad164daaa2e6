package catalog

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// mysqlDialect is MySQL ≥ 8.0.1 and MariaDB ≥ 10.6, through go-sql-driver/mysql. Where the two
// differ (VALUES row constructors, FOR SHARE, ADD COLUMN IF NOT EXISTS) it uses what both accept.
// Sessions run with time_zone '+00:00' (internal/connect sets it), so TIMESTAMP columns and
// UTC_TIMESTAMP agree, and DATETIME columns are taken to hold UTC.
type mysqlDialect struct{}

func (mysqlDialect) driver() Driver { return MySQL }
func (mysqlDialect) numbered() bool { return false }

func (mysqlDialect) ident(parts ...string) string {
	quoted := make([]string, len(parts))
	for i, p := range parts {
		quoted[i] = "`" + strings.ReplaceAll(p, "`", "``") + "`"
	}
	return strings.Join(quoted, ".")
}

func (mysqlDialect) now() string { return "UTC_TIMESTAMP(6)" }

func (mysqlDialect) before(micros string) string {
	return fmt.Sprintf("(UTC_TIMESTAMP(6) - INTERVAL (%s) MICROSECOND)", micros)
}

func (mysqlDialect) bigint(expr string) string { return "CAST(" + expr + " AS SIGNED)" }

// in lists the values, one placeholder each; an empty list matches nothing.
func (mysqlDialect) in(q *query, expr string, list any) string {
	vals := elements(list)
	if len(vals) == 0 {
		return expr + " IN (NULL)"
	}
	ph := make([]string, len(vals))
	for i, v := range vals {
		ph[i] = q.arg(v)
	}
	return expr + " IN (" + strings.Join(ph, ", ") + ")"
}

// rows is a derived table of SELECTs joined by UNION ALL: the one row constructor MySQL (VALUES ROW)
// and MariaDB (VALUES) share. The column types follow from all rows' values together.
func (mysqlDialect) rows(q *query, alias string, cols []rowCol) string {
	values := make([][]any, len(cols))
	for i, c := range cols {
		values[i] = elements(c.values)
	}
	var b strings.Builder
	b.WriteString("(")
	for r := range values[0] {
		if r > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT ")
		for i, c := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(q.arg(values[i][r]))
			if r == 0 {
				b.WriteString(" AS " + c.name)
			}
		}
	}
	b.WriteString(") AS " + alias)
	return b.String()
}

func (mysqlDialect) updateJoin(q *query, table, alias, rowSet, on string, sets []set, where string) *query {
	assign := make([]string, len(sets))
	for i, s := range sets {
		assign[i] = alias + "." + s.column + " = " + s.expr
	}
	q.add("UPDATE %s AS %s JOIN %s ON %s SET %s", table, alias, rowSet, on, strings.Join(assign, ", "))
	if where != "" {
		q.add(" WHERE %s", where)
	}
	return q
}

// lockShare is the spelling both accept (MySQL 8 also has FOR SHARE, MariaDB 10.6 does not).
func (mysqlDialect) lockShare() string { return "LOCK IN SHARE MODE" }

// insertIgnoring leaves the INSERT as it is and ignores its duplicate-key error (ignoredErr): INSERT
// IGNORE would also turn other errors (a value too long) into warnings.
func (mysqlDialect) insertIgnoring(insert string) string { return insert }
func (mysqlDialect) ignoredErr(err error) bool           { return mysqlErrno(err) == errDupEntry }

// upsertState changes changed_at before state: MySQL evaluates an ON DUPLICATE KEY UPDATE's
// assignments left to right, each seeing the ones before.
func (mysqlDialect) upsertState(q *query, table, container, to, from string) *query {
	return q.add(`INSERT INTO %[1]s (container, state, changed_at) VALUES (%[2]s, %[3]s, UTC_TIMESTAMP(6))
		ON DUPLICATE KEY UPDATE changed_at = IF(state = %[4]s, UTC_TIMESTAMP(6), changed_at),
			state = IF(state = %[5]s, %[6]s, state)`,
		table, q.arg(container), q.arg(to), q.arg(from), q.arg(from), q.arg(to))
}

// txOptions is READ COMMITTED, as on PostgreSQL: each statement sees what committed before it (the
// roll-back relies on it, fence.go), and InnoDB takes no gap locks, which would make SKIP LOCKED
// claims and the marker block each other.
func (mysqlDialect) txOptions() *sql.TxOptions {
	return &sql.TxOptions{Isolation: sql.LevelReadCommitted}
}

// MySQL and MariaDB error numbers DES tells apart.
const (
	errDupEntry            = 1062
	errTooManyConnections  = 1040
	errServerShutdown      = 1053
	errLockWaitTimeout     = 1205
	errDeadlock            = 1213
	errConnectionKilled    = 1927 // MariaDB
	errClientIdleTimeout   = 4031 // MySQL 8.0.24 and later
	errQueryInterrupted    = 1317
	errServerGoneAwayReply = 2006
)

func mysqlErrno(err error) uint16 {
	var my *mysql.MySQLError
	if errors.As(err, &my) {
		return my.Number
	}
	return 0
}

func (mysqlDialect) isDeadlock(err error) bool { return mysqlErrno(err) == errDeadlock }

func (mysqlDialect) isUnavailable(err error) bool {
	switch mysqlErrno(err) {
	case errTooManyConnections, errServerShutdown, errConnectionKilled, errClientIdleTimeout,
		errQueryInterrupted, errServerGoneAwayReply:
		return true
	}
	var netErr net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.As(err, &netErr)
}

func (d mysqlDialect) isRefused(err error) bool {
	n := mysqlErrno(err)
	return n != 0 && !d.isUnavailable(err) && n != errDeadlock && n != errLockWaitTimeout
}

// MySQL column types of the DES-owned columns. Names DES makes (containers, keys) compare byte by
// byte (…_bin), whatever the table's default collation.
var mysqlColumnTypes = map[string]string{
	colContainer:        "VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin",
	colContainerKey:     "VARCHAR(700) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
	colError:            "TEXT",
	colRetries:          "INT NOT NULL DEFAULT 0",
	colClaimedAt:        "DATETIME(6)",
	colPackedAt:         "DATETIME(6)",
	colFailedAt:         "DATETIME(6)",
	colOffset:           "BIGINT",
	colLength:           "BIGINT",
	colCRC32C:           "BIGINT",
	colExternalKey:      "VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
	colSourceETag:       "VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
	colSourceVerifiedAt: "DATETIME(6)",
	colSourceDeletedAt:  "DATETIME(6)",
	colSourceRefused:    "TEXT",
}

// migrateLockTimeout is how long a migration waits, in seconds, for a concurrent one to finish.
const migrateLockTimeout = 120

// migrate adds the missing DES-owned columns and indexes and creates DES's tables. MySQL commits
// each DDL statement on its own, so the steps are each idempotent (what exists is left alone, found
// through information_schema, since MySQL has no ADD COLUMN IF NOT EXISTS) and a named lock keeps
// concurrent migrations apart.
func (d mysqlDialect) migrate(ctx context.Context, c *Catalog) error {
	conn, err := c.db.sql.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migration connection: %w", err)
	}
	defer conn.Close()
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK('des-migrate', ?)`, migrateLockTimeout).Scan(&got); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	if got.Int64 != 1 {
		return fmt.Errorf("migration lock: another migration held it for %ds", migrateLockTimeout)
	}
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT RELEASE_LOCK('des-migrate')`) }()
	// MySQL commits each ALTER at once: a migration cut off after adding the counters and before
	// counting leaves them at 0 for containers reclaimed before, until their next reclaim pass (Count
	// stays exact).
	seed, err := c.countersMissing(ctx)
	if err != nil {
		return err
	}
	stmts, err := d.migrationStatements(ctx, c)
	if err != nil {
		return err
	}
	for _, stmt := range stmts {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("migrate catalog %s: %s: %w", c.m.Table, firstWords(stmt), err)
		}
	}
	if seed {
		return c.seedCounters(ctx, conn)
	}
	return nil
}

// containerCounterStatements add the counters to a des_containers made before they existed.
func (d mysqlDialect) containerCounterStatements(ctx context.Context, c *Catalog) ([]string, error) {
	have, err := d.columns(ctx, c, "des_containers")
	if err != nil || len(have) == 0 {
		return nil, err // no table yet: its CREATE has the counters
	}
	present := setOf(have)
	var adds []string
	for _, column := range sourceCounters {
		if !present[column] {
			adds = append(adds, fmt.Sprintf("ADD COLUMN %s BIGINT NOT NULL DEFAULT 0", column))
		}
	}
	if len(adds) == 0 {
		return nil, nil
	}
	return []string{fmt.Sprintf("ALTER TABLE %s %s", c.containers(), strings.Join(adds, ", "))}, nil
}

// migrationStatements are the statements that bring the table up to date, given what it has.
func (d mysqlDialect) migrationStatements(ctx context.Context, c *Catalog) ([]string, error) {
	m := c.m
	t := c.table()
	have, err := d.columns(ctx, c, "")
	if err != nil {
		return nil, fmt.Errorf("inspect catalog table %s: %w", m.Table, err)
	}
	if len(have) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrTableMissing, m.Table)
	}
	present := setOf(have)
	var adds []string
	for _, column := range desColumns {
		if !present[column] {
			adds = append(adds, fmt.Sprintf("ADD COLUMN %s %s", c.col(column), mysqlColumnTypes[column]))
		}
	}
	var stmts []string
	if len(adds) > 0 {
		stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s %s", t, strings.Join(adds, ", ")))
	}
	indexes, err := d.indexes(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("inspect indexes of %s: %w", m.Table, err)
	}
	_, name := m.schemaAndTable()
	// MySQL has no partial indexes: each leads with the column the partial one's condition was on.
	for _, ix := range []struct{ suffix, columns string }{
		// claims: ready rows of a shard in id order; the fill reads their sizes and ages from it alone
		{suffixBacklog, c.cols(m.Status, m.Shard, m.ID, m.Size, m.CreatedAt)},
		{"_des_unnamed", c.cols(m.DesName, m.ID)},            // the marker; and Locate by name
		{"_des_container", c.cols(colContainer)},             // commit, roll-back, recovery
		{"_des_claimed", c.cols(m.Status, colClaimedAt)},     // the claim sweep
		{"_des_failed", c.cols(m.Status, colFailedAt, m.ID)}, // the retry step
		// the status counts refused sources (tally.go); a prefix is enough to find the non-NULL ones
		{"_des_refused", c.col(colSourceRefused) + "(16)"},
	} {
		ixName := truncate(name, 64-len(ix.suffix)) + ix.suffix
		if !indexes[ixName] {
			stmts = append(stmts, fmt.Sprintf("CREATE INDEX %s ON %s (%s)", c.col(ixName), t, ix.columns))
		}
	}
	// The backlog index replaces the older _des_ready (status, shard, id), created first above.
	if v1 := truncate(name, 64-len(suffixReadyV1)) + suffixReadyV1; indexes[v1] {
		stmts = append(stmts, fmt.Sprintf("DROP INDEX %s ON %s", c.col(v1), t))
	}
	counters, err := d.containerCounterStatements(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("inspect des_containers: %w", err)
	}
	return append(append(stmts,
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
			container VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
			state VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL CHECK (state IN (%s, %s, %s)),
			changed_at DATETIME(6) NOT NULL) ENGINE=InnoDB`,
			c.fences(), literal(fenceOpen), literal(fenceClosed), literal(fenceCommitted)),
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s ("+
			"`key` VARCHAR(700) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PRIMARY KEY,"+
			` container VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL UNIQUE,
			bucket VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
			source VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
			shard INT NOT NULL,
			day DATE NOT NULL,
			files BIGINT NOT NULL,
			bytes BIGINT NOT NULL,
			object_size BIGINT NOT NULL,
			payload_checksum VARCHAR(255) NOT NULL,
			index_checksum VARCHAR(255) NOT NULL,
			writer VARCHAR(255) NOT NULL,
			committed_at DATETIME(6) NOT NULL,
			sources_verified_at DATETIME(6) NULL,
			sources_deleted_at DATETIME(6) NULL,
			sources_deleted BIGINT NOT NULL DEFAULT 0,
			sources_verified BIGINT NOT NULL DEFAULT 0,
			INDEX des_containers_reclaim (source, sources_deleted_at, shard, committed_at)) ENGINE=InnoDB`,
			c.containers())), counters...), nil
}

// schemaArg is the table's schema (database), or the connection's when the table is unqualified.
func (mysqlDialect) schemaArg(q *query, c *Catalog) string {
	schema, _ := c.m.schemaAndTable()
	return fmt.Sprintf("COALESCE(NULLIF(%s, ''), DATABASE())", q.arg(schema))
}

// columns lists the table's columns in lower case (MySQL column names are case-insensitive).
func (d mysqlDialect) columns(ctx context.Context, c *Catalog, table string) ([]string, error) {
	_, name := c.m.schemaAndTable()
	if table != "" {
		name = table
	}
	q := c.q("")
	q.add(`SELECT LOWER(column_name) FROM information_schema.columns WHERE table_schema = %s AND table_name = %s`,
		d.schemaArg(q, c), q.arg(name))
	return collect(ctx, c.db.sql, q, scanOne[string])
}

func (d mysqlDialect) indexes(ctx context.Context, c *Catalog) (map[string]bool, error) {
	_, name := c.m.schemaAndTable()
	q := c.q("")
	q.add(`SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema = %s AND table_name = %s`,
		d.schemaArg(q, c), q.arg(name))
	names, err := collect(ctx, c.db.sql, q, scanOne[string])
	return setOf(names), err
}

// ErrServerUnsupported means the catalog's server or table cannot run DES's claims: MySQL before
// 8.0.1 and MariaDB before 10.6 have no FOR UPDATE SKIP LOCKED, and a table not in InnoDB has no row
// locks or transactions.
var ErrServerUnsupported = errors.New("the catalog database cannot run DES's claims")

var versionRe = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)`)

// checkServer checks the server's version and the table's storage engine.
func (d mysqlDialect) checkServer(ctx context.Context, c *Catalog) error {
	var version string
	if err := c.db.sql.QueryRowContext(ctx, `SELECT VERSION()`).Scan(&version); err != nil {
		return fmt.Errorf("server version: %w", err)
	}
	if err := skipLockedSupported(version); err != nil {
		return err
	}
	_, name := c.m.schemaAndTable()
	q := c.q("")
	q.add(`SELECT COALESCE(engine, '') FROM information_schema.tables WHERE table_schema = %s AND table_name = %s`,
		d.schemaArg(q, c), q.arg(name))
	var engine string
	switch err := queryRow(ctx, c.db.sql, q, &engine); {
	case errors.Is(err, sql.ErrNoRows):
		return nil // Check reports the missing table
	case err != nil:
		return fmt.Errorf("storage engine of %s: %w", c.m.Table, err)
	case engine != "" && !strings.EqualFold(engine, "InnoDB"):
		return fmt.Errorf("%w: table %s uses the %s engine, which has no row locks or transactions; DES needs InnoDB",
			ErrServerUnsupported, c.m.Table, engine)
	}
	return nil
}

// skipLockedSupported says whether a server reporting version (SELECT VERSION()) has FOR UPDATE SKIP
// LOCKED: MariaDB from 10.6, MySQL from 8.0.1.
func skipLockedSupported(version string) error {
	v := versionRe.FindStringSubmatch(version)
	if v == nil {
		return fmt.Errorf("%w: cannot read the server version %q", ErrServerUnsupported, version)
	}
	major, _ := strconv.Atoi(v[1])
	minor, _ := strconv.Atoi(v[2])
	patch, _ := strconv.Atoi(v[3])
	product, need := "MySQL", [3]int{8, 0, 1}
	if strings.Contains(strings.ToLower(version), "mariadb") {
		product, need = "MariaDB", [3]int{10, 6, 0}
	}
	have := [3]int{major, minor, patch}
	for i := range have {
		if have[i] != need[i] {
			if have[i] < need[i] {
				return fmt.Errorf("%w: %s %d.%d.%d has no FOR UPDATE SKIP LOCKED; DES needs %s %d.%d.%d or later",
					ErrServerUnsupported, product, major, minor, patch, product, need[0], need[1], need[2])
			}
			break
		}
	}
	return nil
}

func setOf(names []string) map[string]bool {
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out
}
