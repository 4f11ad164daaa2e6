package testworld_test

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/datavision/des/test/testworld"
)

// TestMariaDBDatabasesAreIsolated: the shared server answers as root over TCP on 127.0.0.1, and a
// table made in one test database is not seen in another.
func TestMariaDBDatabasesAreIsolated(t *testing.T) {
	m := testworld.Maria(t)
	t.Logf("MariaDB on port %d: %s", m.Port, m.Version)
	if !strings.Contains(m.Version, "MariaDB") || !strings.HasPrefix(m.DSN, "root@tcp(127.0.0.1:") {
		t.Fatalf("server %q at DSN %q", m.Version, m.DSN)
	}
	ctx := context.Background()
	a, dsnA := m.NewDatabase(t)
	b, dsnB := m.NewDatabase(t)
	if dsnA == dsnB {
		t.Fatalf("NewDatabase returned %q twice", dsnA)
	}
	var user, dbName string
	if err := a.QueryRowContext(ctx, "SELECT current_user(), database()").Scan(&user, &dbName); err != nil {
		t.Fatal(err)
	}
	if user != "root@127.0.0.1" || !strings.HasSuffix(dsnA, "/"+dbName) {
		t.Fatalf("connected as %q to %q with DSN %q", user, dbName, dsnA)
	}
	if _, err := a.ExecContext(ctx, "CREATE TABLE widgets (id BIGINT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ExecContext(ctx, "INSERT INTO widgets VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	_, err := b.ExecContext(ctx, "SELECT id FROM widgets")
	var merr *mysql.MySQLError
	if !errors.As(err, &merr) || merr.Number != 1146 { // ER_NO_SUCH_TABLE
		t.Fatalf("the other database's table from a second database: got %v, want error 1146 (no such table)", err)
	}
}

// TestMariaDBSkipLocked: with two transactions on separate connections, the second one's
// FOR UPDATE SKIP LOCKED passes over the row the first holds, and NOWAIT on that row is refused.
func TestMariaDBSkipLocked(t *testing.T) {
	db, _ := testworld.Maria(t).NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE TABLE jobs (id BIGINT PRIMARY KEY, status VARCHAR(16) NOT NULL) ENGINE=InnoDB"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO jobs VALUES (1, 'ready'), (2, 'ready'), (3, 'ready')"); err != nil {
		t.Fatal(err)
	}
	claim := func(tx *sql.Tx) int64 {
		t.Helper()
		var id int64
		// The timeout bounds a claim that would wait on the other's lock (innodb_lock_wait_timeout is 50s).
		qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
		defer qcancel()
		err := tx.QueryRowContext(qctx, "SELECT id FROM jobs WHERE status = 'ready' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED").Scan(&id)
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		return id
	}
	// Each transaction holds a connection of its own from db's pool.
	tx1, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx1.Rollback() }()
	tx2, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx2.Rollback() }()
	var conn1, conn2 int64
	if err := tx1.QueryRowContext(ctx, "SELECT connection_id()").Scan(&conn1); err != nil {
		t.Fatal(err)
	}
	if err := tx2.QueryRowContext(ctx, "SELECT connection_id()").Scan(&conn2); err != nil {
		t.Fatal(err)
	}
	if conn1 == conn2 {
		t.Fatalf("both transactions on connection %d", conn1)
	}
	if got := claim(tx1); got != 1 {
		t.Fatalf("first claim got row %d, want 1", got)
	}
	if got := claim(tx2); got != 2 {
		t.Fatalf("second claim got row %d, want 2 (row 1 is locked by the first)", got)
	}
	// The first's lock is real: asking for row 1 without waiting is refused.
	var id int64
	err = tx2.QueryRowContext(ctx, "SELECT id FROM jobs WHERE id = 1 FOR UPDATE NOWAIT").Scan(&id)
	var merr *mysql.MySQLError
	if !errors.As(err, &merr) || merr.Number != 1205 { // ER_LOCK_WAIT_TIMEOUT
		t.Fatalf("NOWAIT on the row the first transaction holds: got %v (row %d), want error 1205", err, id)
	}
	if err := tx1.Commit(); err != nil {
		t.Fatal(err)
	}
	// Once the first commits, its row is free again.
	if err := tx2.QueryRowContext(ctx, "SELECT id FROM jobs WHERE id = 1 FOR UPDATE NOWAIT").Scan(&id); err != nil {
		t.Fatalf("row 1 after the first committed: %v", err)
	}
}

// TestMariaDBRestartKeepsDataAndCloseLeavesNothing: on a server of its own (the shared one stays up
// for the other tests), data written before Restart is there after it, and after Close nothing
// listens on the port any more.
func TestMariaDBRestartKeepsDataAndCloseLeavesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	m, err := testworld.StartMariaDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			m.Close()
		}
	}()
	t.Logf("MariaDB %s on port %d: initialised and ready in %s", m.Version, m.Port, time.Since(began).Round(time.Millisecond))

	db, dsn := m.NewDatabase(t)
	if _, err := db.ExecContext(ctx, "CREATE TABLE kept (id BIGINT PRIMARY KEY, note VARCHAR(64) NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO kept VALUES (1, 'before restart'), (2, 'ÿ✓ utf8mb4 😀')"); err != nil {
		t.Fatal(err)
	}

	began = time.Now()
	if err := m.Restart(ctx, 200*time.Millisecond); err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Logf("Restart (200ms down) ready again in %s", time.Since(began).Round(time.Millisecond))
	// A fresh handle: the old pool's connections were cut by the restart.
	db2, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	var n int
	var note string
	if err := db2.QueryRowContext(ctx, "SELECT COUNT(*), MAX(note) FROM kept").Scan(&n, &note); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if n != 2 || note != "ÿ✓ utf8mb4 😀" {
		t.Fatalf("after restart: %d rows, max note %q; want 2 and the utf8mb4 note", n, note)
	}

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port))
	_ = db2.Close()
	m.Close()
	closed = true
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		_ = conn.Close()
		t.Fatalf("something still listens on %s after Close", addr)
	}
	t.Logf("after Close, %s: %v", addr, err)
}
