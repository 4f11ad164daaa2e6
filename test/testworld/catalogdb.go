package testworld

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/connect"
)

// Dialects are the catalog databases DES speaks; tests of the catalog protocol run over all of them
// (ForEachDialect).
var Dialects = []catalog.Driver{catalog.Postgres, catalog.MySQL}

// ForEachDialect runs test once per catalog database, as a subtest named after the driver. The
// package's TestMain must allow both Postgres and MariaDB.
func ForEachDialect(t *testing.T, test func(t *testing.T, driver catalog.Driver)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(string(d), func(t *testing.T) { test(t, d) })
	}
}

// CatalogDB is a new empty database of one dialect, opened the way DES opens a catalog
// (internal/connect, with its session settings), for one test.
type CatalogDB struct {
	Driver catalog.Driver
	// DSN connects to the database as a superuser, in the driver's format.
	DSN string
	// Pool is DES's pool on it; Exec and friends run the test's own statements through it.
	Pool *connect.Pool
}

// NewCatalogDB makes an empty database in the package's server of driver; it is closed when t ends.
func NewCatalogDB(t testing.TB, driver catalog.Driver) *CatalogDB {
	t.Helper()
	ctx := context.Background()
	var (
		dsn string
		err error
	)
	switch driver {
	case catalog.Postgres:
		dsn, err = PG(t).CreateDatabase(ctx)
	case catalog.MySQL:
		dsn, err = Maria(t).CreateDatabase(ctx)
	default:
		t.Fatalf("testworld: no test database for driver %q", driver)
	}
	if err != nil {
		t.Fatal(err)
	}
	pool, err := connect.Open(ctx, driver, dsn, connect.PoolOptions{MaxConns: 20})
	if err != nil {
		t.Fatalf("open %s test database: %v", driver, err)
	}
	t.Cleanup(pool.Close)
	return &CatalogDB{Driver: driver, DSN: dsn, Pool: pool}
}

// SQL is the database's pool.
func (d *CatalogDB) SQL() *sql.DB { return d.Pool.DB.SQL() }

// placeholder finds PostgreSQL's $n, which the test statements are written with.
var placeholder = regexp.MustCompile(`\$\d+`)

// Placeholders rewrites a statement written with PostgreSQL's placeholders ($1, $2, … in order, each
// used once) for driver: MySQL takes ? instead.
func Placeholders(driver catalog.Driver, stmt string) string {
	if driver == catalog.MySQL {
		return placeholder.ReplaceAllString(stmt, "?")
	}
	return stmt
}

// Dialect rewrites a statement of the test for the database (see Placeholders).
func (d *CatalogDB) Dialect(stmt string) string { return Placeholders(d.Driver, stmt) }

// Exec runs a statement of the test (see Dialect) and fails the test if it fails.
func (d *CatalogDB) Exec(t testing.TB, stmt string, args ...any) int64 {
	t.Helper()
	res, err := d.SQL().ExecContext(context.Background(), d.Dialect(stmt), args...)
	if err != nil {
		t.Fatalf("%s: %v", abbreviate(stmt), err)
	}
	n, _ := res.RowsAffected()
	return n
}

// QueryRow runs a query of the test (see Dialect) and scans its one row.
func (d *CatalogDB) QueryRow(t testing.TB, stmt string, args []any, dest ...any) {
	t.Helper()
	if err := d.SQL().QueryRowContext(context.Background(), d.Dialect(stmt), args...).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", abbreviate(stmt), err)
	}
}

// abbreviate keeps a failed statement's message readable.
func abbreviate(stmt string) string {
	if len(stmt) > 300 {
		return stmt[:300] + " …"
	}
	return stmt
}

// ObjectsTable describes the test catalog table CreateObjects makes: a user's table shaped like
// catalog.DefaultMapping, without any DES-owned column.
type ObjectsTable struct {
	// Name is "objects" when empty.
	Name string
	// Bucket adds a nullable bucket column.
	Bucket bool
	// StatusDefault is the status of rows inserted without one ("new" when empty).
	StatusDefault string
	// CreatedAgo makes rows inserted without created_at this old.
	CreatedAgo time.Duration
	// Extra columns or constraints, in the dialect's SQL, appended to the column list.
	Extra []string
}

// CreateObjects makes the test catalog table.
func (d *CatalogDB) CreateObjects(t testing.TB, o ObjectsTable) {
	t.Helper()
	d.Exec(t, ObjectsDDL(d.Driver, o))
}

// ObjectsDDL is the CREATE TABLE statement of the test catalog table in driver's dialect.
func ObjectsDDL(driver catalog.Driver, o ObjectsTable) string {
	if o.Name == "" {
		o.Name = "objects"
	}
	if o.StatusDefault == "" {
		o.StatusDefault = "new"
	}
	var cols []string
	if driver == catalog.MySQL {
		cols = []string{"id BIGINT AUTO_INCREMENT PRIMARY KEY", "source_key VARCHAR(1024) NOT NULL",
			"size BIGINT NOT NULL DEFAULT 1", fmt.Sprintf("status VARCHAR(32) DEFAULT '%s'", o.StatusDefault),
			"des_name VARCHAR(255)", "shard INT",
			fmt.Sprintf("created_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6) - INTERVAL %d MICROSECOND)", o.CreatedAgo.Microseconds())}
		if o.Bucket {
			cols = append(cols, "bucket VARCHAR(255)")
		}
	} else {
		cols = []string{"id bigserial PRIMARY KEY", "source_key text NOT NULL", "size bigint NOT NULL DEFAULT 1",
			fmt.Sprintf("status text DEFAULT '%s'", o.StatusDefault), "des_name text", "shard integer",
			fmt.Sprintf("created_at timestamptz NOT NULL DEFAULT now() - interval '%d microseconds'", o.CreatedAgo.Microseconds())}
		if o.Bucket {
			cols = append(cols, "bucket text")
		}
	}
	cols = append(cols, o.Extra...)
	return fmt.Sprintf("CREATE TABLE %s (%s)", o.Name, strings.Join(cols, ", "))
}

// ObjectRow is one row InsertObjects adds, of Size bytes (0 is an empty object); a row without a status
// gets the table's default, one without a name or shard NULL.
type ObjectRow struct {
	Key    string
	Size   int64
	Status string
	Name   string
	Shard  *int32
	// NullStatus inserts a NULL status instead of the table's default.
	NullStatus bool
}

// insertChunk bounds the rows of one INSERT (MySQL takes at most 65535 placeholders).
const insertChunk = 2000

// InsertObjects adds rows to the test table (named table, "objects" when empty) in a few multi-row
// INSERTs. Rows without a status get the table's default, rows without a name or shard NULL.
func (d *CatalogDB) InsertObjects(t testing.TB, table string, rows []ObjectRow) {
	t.Helper()
	if err := InsertObjects(context.Background(), d.SQL(), d.Driver, table, rows); err != nil {
		t.Fatal(err)
	}
}

// InsertObjects is CatalogDB.InsertObjects on any pool of driver (the demo's seeding uses it).
func InsertObjects(ctx context.Context, db *sql.DB, driver catalog.Driver, table string, rows []ObjectRow) error {
	if table == "" {
		table = "objects"
	}
	for start := 0; start < len(rows); start += insertChunk {
		chunk := rows[start:min(start+insertChunk, len(rows))]
		var values []string
		var args []any
		ph := func(v any) string {
			args = append(args, v)
			return fmt.Sprintf("$%d", len(args))
		}
		for _, r := range chunk {
			var name, shard any
			if r.Name != "" {
				name = r.Name
			}
			if r.Shard != nil {
				shard = *r.Shard
			}
			// Placeholders in the order they appear: MySQL's are positional.
			key, sz := ph(r.Key), ph(r.Size)
			status := "DEFAULT"
			switch {
			case r.NullStatus:
				status = "NULL"
			case r.Status != "":
				status = ph(r.Status)
			}
			values = append(values, fmt.Sprintf("(%s, %s, %s, %s, %s)", key, sz, status, ph(name), ph(shard)))
		}
		stmt := fmt.Sprintf("INSERT INTO %s (source_key, size, status, des_name, shard) VALUES %s", table, strings.Join(values, ", "))
		if _, err := db.ExecContext(ctx, Placeholders(driver, stmt), args...); err != nil {
			return fmt.Errorf("insert %d catalog rows: %w", len(chunk), err)
		}
	}
	return nil
}

// Shard is a shard number for ObjectRow.
func Shard(s int32) *int32 { return &s }

// NewCatalog makes the catalog DES would make on the test database for mapping m.
func (d *CatalogDB) NewCatalog(t testing.TB, m catalog.Mapping) *catalog.Catalog {
	t.Helper()
	c, err := catalog.New(d.Pool.DB, m)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Ago is the SQL expression of the database's current time minus d (plus, when d is negative).
func (d *CatalogDB) Ago(dur time.Duration) string {
	if d.Driver == catalog.MySQL {
		return fmt.Sprintf("(UTC_TIMESTAMP(6) - INTERVAL %d MICROSECOND)", dur.Microseconds())
	}
	return fmt.Sprintf("(now() - interval '%d microseconds')", dur.Microseconds())
}

// Query runs a query of the test (see Dialect) and calls scan for each row.
func (d *CatalogDB) Query(t testing.TB, stmt string, args []any, scan func(r *sql.Rows) error) {
	t.Helper()
	rows, err := d.SQL().QueryContext(context.Background(), d.Dialect(stmt), args...)
	if err != nil {
		t.Fatalf("%s: %v", abbreviate(stmt), err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// Ident quotes an identifier for the database: needed for names that are reserved words in one
// dialect (key is in MySQL).
func (d *CatalogDB) Ident(name string) string { return Ident(d.Driver, name) }

// Ident quotes an identifier for driver.
func Ident(driver catalog.Driver, name string) string {
	if driver == catalog.MySQL {
		return "`" + name + "`"
	}
	return `"` + name + `"`
}

// Row runs a query of the test (see Dialect) for its one row.
func (d *CatalogDB) Row(stmt string, args ...any) *sql.Row {
	return d.SQL().QueryRowContext(context.Background(), d.Dialect(stmt), args...)
}

// OpenCatalogDB opens dsn the way DES does, for a test that makes its database itself; the pool is
// closed when t ends.
func OpenCatalogDB(t testing.TB, driver catalog.Driver, dsn string) *catalog.DB {
	t.Helper()
	pool, err := connect.Open(context.Background(), driver, dsn, connect.PoolOptions{MaxConns: 20})
	if err != nil {
		t.Fatalf("open %s catalog: %v", driver, err)
	}
	t.Cleanup(pool.Close)
	return pool.DB
}
