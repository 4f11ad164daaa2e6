package scale_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/test/testworld"
)

func TestMain(m *testing.M) {
	testworld.MainWith(m, testworld.Postgres|testworld.MariaDB|testworld.Kube|testworld.S3, testworld.KubeOptions{Scheme: testworld.Scheme()})
}

// The catalog the scale run builds: DES_SCALE_ROWS rows (default 1,000,000; `make test-scale` uses
// 10,000,000) over 4096 shards. Most are packed, in containers of about 1,000 rows with their
// des_containers records, as a catalog looks after months of packing; a backlog waits in every state.
const (
	scaleShards   = 4096
	rowsPerBucket = 1000 // rows g with the same g / rowsPerBucket share a container
)

// state is the state of row g (1-based): 0.1 % unnamed, 1 % ready, 0.01 % failed, the rest packed.
func stateSQL(g string) string {
	return fmt.Sprintf(`CASE WHEN %[1]s %% 1000 = 1 THEN 'new' WHEN %[1]s %% 100 = 0 THEN 'ready'
		WHEN %[1]s %% 10000 = 2 THEN 'failed' ELSE 'packed' END`, g)
}

func scaleRows(t *testing.T) int {
	t.Helper()
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("DES_SCALE_ROWS")); err == nil && v > 0 {
		n = v
	}
	if n < 100_000 {
		t.Fatalf("DES_SCALE_ROWS=%d: a scale run needs at least 100,000 rows for the plans to mean anything", n)
	}
	return n
}

// loadCatalog makes the objects table with DES's columns and indexes, fills it with n rows in chunks
// of a million and records their containers, then refreshes the planner's statistics.
func loadCatalog(t *testing.T, d catalog.Driver, n int) (*testworld.CatalogDB, *catalog.Catalog) {
	t.Helper()
	db := testworld.NewCatalogDB(t, d)
	db.CreateObjects(t, testworld.ObjectsTable{})
	c := db.NewCatalog(t, catalog.DefaultMapping("objects", "source-bucket"))
	ctx := context.Background()
	if err := c.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const chunk = 1_000_000
	for lo := 1; lo <= n; lo += chunk {
		hi := min(lo+chunk-1, n)
		db.Exec(t, insertRows(d, lo, hi))
	}
	db.Exec(t, insertContainers(d))
	if d == catalog.MySQL {
		db.Exec(t, `ANALYZE TABLE objects, des_containers`)
	} else {
		// What autovacuum does to a table after a bulk load: statistics, and the visibility map that
		// lets counts read an index alone.
		db.Exec(t, `VACUUM ANALYZE objects`)
		db.Exec(t, `VACUUM ANALYZE des_containers`)
	}
	t.Logf("%s: %d rows loaded and analysed in %s", d, n, time.Since(start).Round(time.Second))
	return db, c
}

func insertRows(d catalog.Driver, lo, hi int) string {
	cols := `source_key, size, status, des_name, shard, des_container, des_container_key, des_offset, des_length, des_crc32c, des_packed_at`
	if d == catalog.MySQL {
		g := "seq"
		packed := stateSQL(g) + " = 'packed'"
		return fmt.Sprintf(`INSERT INTO objects (%s) SELECT CONCAT('src/', %[2]s), 4096, %[3]s,
			IF(%[2]s %% 1000 = 1, NULL, CONCAT('N_', %[2]s)), %[2]s %% %[4]d,
			IF(%[5]s, CONCAT('c', %[2]s DIV %[6]d), NULL), IF(%[5]s, CONCAT('archive/c', %[2]s DIV %[6]d, '.des'), NULL),
			IF(%[5]s, 16 + 4096 * (%[2]s %% %[6]d), NULL), IF(%[5]s, 4096, NULL), IF(%[5]s, %[2]s, NULL), IF(%[5]s, UTC_TIMESTAMP(6), NULL)
			FROM seq_%[7]d_to_%[8]d`, cols, g, stateSQL(g), scaleShards, packed, rowsPerBucket, lo, hi)
	}
	g := "g"
	packed := stateSQL(g) + " = 'packed'"
	return fmt.Sprintf(`INSERT INTO objects (%s) SELECT 'src/' || %[2]s, 4096, %[3]s,
		CASE WHEN %[2]s %% 1000 = 1 THEN NULL ELSE 'N_' || %[2]s END, %[2]s %% %[4]d,
		CASE WHEN %[5]s THEN 'c' || (%[2]s / %[6]d) END, CASE WHEN %[5]s THEN 'archive/c' || (%[2]s / %[6]d) || '.des' END,
		CASE WHEN %[5]s THEN 16 + 4096 * (%[2]s %% %[6]d) END, CASE WHEN %[5]s THEN 4096 END,
		CASE WHEN %[5]s THEN %[2]s END, CASE WHEN %[5]s THEN now() END
		FROM generate_series(%[7]d, %[8]d) AS %[2]s`, cols, g, stateSQL(g), scaleShards, packed, rowsPerBucket, lo, hi)
}

func insertContainers(d catalog.Driver) string {
	now := "now()"
	if d == catalog.MySQL {
		now = "UTC_TIMESTAMP(6)"
	}
	return fmt.Sprintf(`INSERT INTO des_containers (%s, container, bucket, source, shard, day, files, bytes, object_size,
		payload_checksum, index_checksum, writer, committed_at)
		SELECT min(des_container_key), des_container, 'archive', 'src', min(shard), %s, count(*), sum(size), sum(size) + 1000,
			'p', 'i', 'scale', %s
		FROM objects WHERE des_container IS NOT NULL GROUP BY des_container`, quoteKey(d), dateOf(d), now)
}

func quoteKey(d catalog.Driver) string {
	if d == catalog.MySQL {
		return "`key`"
	}
	return `"key"`
}

func dateOf(d catalog.Driver) string {
	if d == catalog.MySQL {
		return "UTC_DATE()"
	}
	return "current_date"
}

// operation is one thing DES does to the catalog, as a caller of internal/catalog does it.
type operation struct {
	name string
	// who runs it and how often, for the report
	who string
	// census operations read the whole table on purpose (on request only): not held to "no full scan"
	census bool
	// coveredBy names the index that holds every column the operation reads. Its plan must use it,
	// and on MySQL say "Using index" (the rows are never read). PostgreSQL decides per plan whether an
	// index-only scan beats visiting the rows, from how much of the table the visibility map has
	// marked all-visible: at 10 M rows it scans the index alone; on a small table just written to it
	// may visit the rows, so there only the index is required.
	coveredBy string
	run       func(ctx context.Context) error
}

// measured is an operation's wall time and the statements it sent, with their plans.
type measured struct {
	op         operation
	took       time.Duration
	statements []catalog.Statement
	plans      []string
	fullScans  []string // statements whose plan reads all of objects
	tableReads []string // statements whose plan reads rows of objects, not only a covering index (MySQL)
}

// TestCatalogAtScale runs every hot catalog operation once on a catalog of DES_SCALE_ROWS rows, on
// both databases, times it, EXPLAINs every statement it sent, and fails if one on a hot path reads
// the whole catalog table. The census (Count) is timed beside the tally for the ratio. The report
// goes to the log and, when DES_SCALE_REPORT names a file, into it (markdown).
func TestCatalogAtScale(t *testing.T) {
	scaleReports = nil
	testworld.ForEachDialect(t, testCatalogAtScale)
	out := strings.Join(scaleReports, "\n")
	t.Log("\n" + out)
	if path := os.Getenv("DES_SCALE_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// scaleReports collects each database's report for TestCatalogAtScale.
var scaleReports []string

func testCatalogAtScale(t *testing.T, d catalog.Driver) {
	n := scaleRows(t)
	db, c := loadCatalog(t, d, n)
	sizes := tableSizes(t, db, d)
	results := runOperations(t, c, db, d)
	scaleReports = append(scaleReports, report(d, n, results)+sizesReport(n, sizes))
	for _, r := range results {
		if !r.op.census && len(r.fullScans) > 0 {
			t.Errorf("%s: %s reads the whole catalog table:\n%s", d, r.op.name, strings.Join(r.fullScans, "\n---\n"))
		}
		if ix := r.op.coveredBy; ix != "" {
			plans := strings.Join(r.plans, "\n")
			if !regexp.MustCompile(`\b` + ix + `\b`).MatchString(plans) {
				t.Errorf("%s: %s does not use the index %s:\n%s", d, r.op.name, ix, plans)
			}
			if len(r.tableReads) > 0 {
				t.Errorf("%s: %s reads the catalog table's rows, not only the index %s:\n%s", d, r.op.name, ix, strings.Join(r.tableReads, "\n---\n"))
			}
		}
	}
}

func runOperations(t *testing.T, c *catalog.Catalog, db *testworld.CatalogDB, d catalog.Driver) []measured {
	t.Helper()
	all := make([]int32, scaleShards)
	for i := range all {
		all[i] = int32(i)
	}
	var claimed []catalog.Row
	names := make([]string, 0, 100)
	for g := 3; len(names) < 100; g += 7919 { // packed rows spread over the table
		if g%1000 != 1 && g%100 != 0 && g%10000 != 2 {
			names = append(names, fmt.Sprintf("N_%d", g))
		}
	}
	ops := []operation{
		{name: "claim a shard's ready rows", who: "packer, per batch", run: func(ctx context.Context) (err error) {
			claimed, err = c.Claim(ctx, 0, "scale-commit", 1000)
			if err == nil && len(claimed) == 0 {
				err = fmt.Errorf("shard 0 has no ready row")
			}
			return err
		}},
		{name: "guarded commit of those rows", who: "packer, per container", run: func(ctx context.Context) error {
			return c.Commit(ctx, record("scale-commit", claimed))
		}},
		{name: "claim and roll back", who: "recovery, per dead container", run: func(ctx context.Context) error {
			if _, err := c.Claim(ctx, 1, "scale-rollback", 1000); err != nil {
				return err
			}
			_, err := c.RollBack(ctx, "scale-rollback")
			return err
		}},
		{name: "fill of one shard", who: "packer, per container", run: func(ctx context.Context) error {
			_, err := c.FillByShard(ctx, []int32{7})
			return err
		}},
		{name: "fill of 4096 shards", who: "controller, per DesShard reconcile", coveredBy: "objects_des_backlog", run: func(ctx context.Context) error {
			_, err := c.FillByShard(ctx, all)
			return err
		}},
		{name: "tally (status counts)", who: "controller, per DesSource per minute", run: func(ctx context.Context) error {
			_, err := c.Tally(ctx, "src")
			return err
		}},
		{name: "census (exact counts)", who: "on request only", census: true, run: func(ctx context.Context) error {
			_, err := c.Count(ctx)
			return err
		}},
		{name: "marker: name 1,000 rows", who: "marker CronJob, per batch", run: func(ctx context.Context) error {
			_, err := c.Mark(ctx, catalog.MarkQuery{AfterID: catalog.FirstID, Limit: 1000, MaxRetries: 5}, func(ids []int64) ([]catalog.Assignment, error) {
				out := make([]catalog.Assignment, len(ids))
				for i, id := range ids {
					out[i] = catalog.Assignment{ID: id, Name: fmt.Sprintf("M_%d", id), Shard: int32(id % scaleShards)}
				}
				return out, nil
			})
			return err
		}},
		{name: "locate 100 names", who: "reader, per batch of names", run: func(ctx context.Context) error {
			got, err := c.Locate(ctx, names)
			if err == nil && len(got) != len(names) {
				err = fmt.Errorf("located %d of %d names", len(got), len(names))
			}
			return err
		}},
		{name: "containers to reclaim", who: "reclaim Job, per run", run: func(ctx context.Context) error {
			_, err := c.ReclaimContainers(ctx, "src", nil, 0, false, 100)
			return err
		}},
		{name: "rows to reclaim of a container", who: "reclaim Job, per batch", run: func(ctx context.Context) error {
			_, err := c.ReclaimRows(ctx, "c5", catalog.FirstID, false, 1000)
			return err
		}},
		{name: "retry failed rows", who: "controller, per DesSource pass", run: func(ctx context.Context) error {
			_, err := c.RetryFailed(ctx, catalog.RetryPolicy{MaxRetries: 5, Backoff: 0, MaxBackoff: time.Minute, Batch: 1000})
			return err
		}},
		{name: "holders of old claims", who: "controller, per DesSource pass", run: func(ctx context.Context) error {
			_, err := c.ClaimHolders(ctx, time.Now().Add(-time.Hour), 100)
			return err
		}},
	}
	var out []measured
	for _, op := range ops {
		m := measured{op: op}
		ctx := catalog.WithTrace(context.Background(), func(s catalog.Statement) { m.statements = append(m.statements, s) })
		start := time.Now()
		if err := op.run(ctx); err != nil {
			t.Fatalf("%s: %s: %v", d, op.name, err)
		}
		m.took = time.Since(start)
		for _, s := range m.statements {
			plan, full, covered := explain(t, db.SQL(), d, s)
			if os.Getenv("DES_SCALE_PLANS") != "" {
				t.Logf("%s: %s\n%s\n%s", d, op.name, s.Text, plan)
			}
			m.plans = append(m.plans, plan)
			if full {
				m.fullScans = append(m.fullScans, s.Text+"\n"+plan)
			}
			if !covered {
				m.tableReads = append(m.tableReads, s.Text+"\n"+plan)
			}
		}
		out = append(out, m)
	}
	return out
}

// explain returns the plan of s, whether it reads all of the objects table, and whether its plan
// promises to read objects through indexes alone: on MySQL "Using index" (a covering index); always
// true on PostgreSQL, whose plans leave that to the visibility map when they run (see coveredBy).
func explain(t *testing.T, db *sql.DB, d catalog.Driver, s catalog.Statement) (plan string, full, covered bool) {
	t.Helper()
	verb := strings.ToUpper(strings.Fields(s.Text)[0])
	if !slices.Contains([]string{"SELECT", "UPDATE", "DELETE", "INSERT", "WITH"}, verb) {
		return "", false, true
	}
	covered = true
	rows, err := db.Query("EXPLAIN "+s.Text, s.Args...)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", s.Text, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	full = false
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		if d != catalog.MySQL {
			line := vals[0].String
			lines = append(lines, line)
			full = full || strings.Contains(line, "Seq Scan on objects")
			continue
		}
		fields := map[string]string{}
		var parts []string
		for i, col := range cols {
			fields[strings.ToLower(col)] = vals[i].String
			parts = append(parts, col+"="+vals[i].String)
		}
		lines = append(lines, strings.Join(parts, " "))
		// ALL reads the table, index reads a whole index of it: both cost the whole table.
		onObjects := fields["table"] == "objects" || fields["table"] == "t"
		if (fields["type"] == "ALL" || fields["type"] == "index") && onObjects {
			full = true
		}
		// "Using index" (not "Using index condition") says the index covers the statement.
		if onObjects && !slices.ContainsFunc(strings.Split(fields["extra"], "; "), func(e string) bool {
			return e == "Using index" || strings.HasPrefix(e, "Using index for ")
		}) {
			covered = false
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n"), full, covered
}

// record is the commit of rows as container, placed one after another.
func record(container string, rows []catalog.Row) catalog.Record {
	rec := catalog.Record{Key: "archive/2026-12-03/0000/" + container + ".des", Container: container, Bucket: "archive",
		Source: "src", Shard: 0, Day: time.Now().UTC().Truncate(24 * time.Hour), Files: int64(len(rows)),
		ObjectSize: 100, PayloadChecksum: "p", IndexChecksum: "i", Writer: "scale"}
	off := int64(16)
	for _, r := range rows {
		rec.Placements = append(rec.Placements, catalog.Placement{ID: r.ID, Location: desformat.Location{
			Name: r.Name, Offset: off, Size: r.Size, CRC32C: 1, HasCRC: true}, SourceETag: "e"})
		off += r.Size
		rec.Bytes += r.Size
	}
	return rec
}

func report(d catalog.Driver, n int, results []measured) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s, %d rows, %d shards\n\n", d, n, scaleShards)
	fmt.Fprintf(&b, "| operation | who, how often | time | statements | reads the whole table |\n|---|---|---:|---:|---|\n")
	var tally, census time.Duration
	for _, r := range results {
		scan := "no"
		if len(r.fullScans) > 0 {
			scan = fmt.Sprintf("**yes** (%d)", len(r.fullScans))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s |\n", r.op.name, r.op.who, ms(r.took), len(r.statements), scan)
		switch {
		case r.op.census:
			census = r.took
		case strings.HasPrefix(r.op.name, "tally"):
			tally = r.took
		}
	}
	if tally > 0 {
		fmt.Fprintf(&b, "\nTally / census: %.4f× (%s against %s).\n", tally.Seconds()/census.Seconds(), ms(tally), ms(census))
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// relationSize is the disk size of a table and of its indexes.
type relationSize struct {
	name         string
	data, index  int64
	rows         int64
	indexDetails []string
}

// tableSizes reads the sizes of the catalog table and des_containers as the database reports them.
func tableSizes(t *testing.T, db *testworld.CatalogDB, d catalog.Driver) []relationSize {
	t.Helper()
	var out []relationSize
	for _, table := range []string{"objects", "des_containers"} {
		r := relationSize{name: table}
		if d == catalog.MySQL {
			db.QueryRow(t, `SELECT data_length, index_length FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?`,
				[]any{table}, &r.data, &r.index)
		} else {
			db.QueryRow(t, `SELECT pg_table_size($1::regclass), pg_indexes_size($1::regclass)`, []any{table}, &r.data, &r.index)
			r.indexDetails = indexSizes(t, db, table)
		}
		db.QueryRow(t, `SELECT count(*) FROM `+table, nil, &r.rows)
		out = append(out, r)
	}
	return out
}

// indexSizes lists the PostgreSQL indexes of table with their sizes.
func indexSizes(t *testing.T, db *testworld.CatalogDB, table string) []string {
	t.Helper()
	rows, err := db.SQL().Query(`SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes WHERE relname = $1 ORDER BY 1`, table)
	must(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		var size int64
		must(t, rows.Scan(&name, &size))
		out = append(out, fmt.Sprintf("%s %.1f MiB", name, float64(size)/(1<<20)))
	}
	must(t, rows.Err())
	return out
}

func sizesReport(n int, sizes []relationSize) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n| table | rows | data | indexes | bytes per catalog row (data + indexes) |\n|---|---:|---:|---:|---:|\n")
	for _, r := range sizes {
		fmt.Fprintf(&b, "| %s | %d | %.0f MiB | %.0f MiB | %.0f |\n", r.name, r.rows, float64(r.data)/(1<<20), float64(r.index)/(1<<20),
			float64(r.data+r.index)/float64(n))
	}
	for _, r := range sizes {
		if len(r.indexDetails) > 0 {
			fmt.Fprintf(&b, "\nIndexes of %s: %s.\n", r.name, strings.Join(r.indexDetails, ", "))
		}
	}
	return b.String()
}
