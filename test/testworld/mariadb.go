package testworld

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MariaDBServer is a private MariaDB server in a temp directory, listening on 127.0.0.1.
type MariaDBServer struct {
	// DSN is a go-sql-driver DSN as root to no database: "root@tcp(127.0.0.1:PORT)/".
	DSN string
	// Version is the server's SELECT version().
	Version string
	Port    int

	dir  string
	proc *process
	dbs  atomic.Int64
	// start runs the server process again on the same data and port (Restart).
	start func() (*process, error)
}

// mariadbBinaries finds mariadbd and mariadb-install-db: both in $DES_MARIADB_BIN, else each in PATH
// or where Debian puts it (/usr/sbin is often not in a test runner's PATH).
func mariadbBinaries() (mariadbd, installDB string, err error) {
	if d := os.Getenv("DES_MARIADB_BIN"); d != "" {
		mariadbd, installDB = filepath.Join(d, "mariadbd"), filepath.Join(d, "mariadb-install-db")
		for _, p := range []string{mariadbd, installDB} {
			if _, err := os.Stat(p); err != nil {
				return "", "", fmt.Errorf("testworld: DES_MARIADB_BIN=%s: %w", d, err)
			}
		}
		return mariadbd, installDB, nil
	}
	find := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
			p := filepath.Join(dir, name)
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return p
			}
		}
		return ""
	}
	mariadbd, installDB = find("mariadbd"), find("mariadb-install-db")
	if mariadbd == "" || installDB == "" {
		return "", "", fmt.Errorf("testworld: MariaDB server binaries (mariadbd, mariadb-install-db) not found: run `make test-deps` (apt-get install mariadb-server) or set DES_MARIADB_BIN")
	}
	return mariadbd, installDB, nil
}

// StartMariaDB initialises and starts a new server. Close stops it and removes its files.
func StartMariaDB(ctx context.Context) (_ *MariaDBServer, err error) {
	mariadbd, installDB, err := mariadbBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "des-maria-")
	if err != nil {
		return nil, fmt.Errorf("mariadb temp dir: %w", err)
	}
	s := &MariaDBServer{dir: dir}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	// As root, mariadbd refuses to start unless told --user=root. Running it as root is the choice
	// over switching to the mysql OS user: if mariadbd switched user itself (--user=mysql), the kernel
	// would clear the parent-death signal startProcess sets, and a killed test run could leave the
	// server behind; and the temp dir would have to be handed to that user.
	var asUser []string
	if os.Geteuid() == 0 {
		asUser = []string{"--user=root"}
	}
	data := filepath.Join(dir, "data")
	// --auth-root-authentication-method=normal makes root@localhost, root@127.0.0.1, root@::1 (and
	// root@hostname) with no password, so TCP from 127.0.0.1 works as root with the server's
	// --skip-name-resolve. --force skips the script's host name lookup, which fails on machines whose
	// host name does not resolve and matters not here.
	initArgs := append([]string{"--no-defaults", "--datadir=" + data,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--force"}, asUser...)
	initCmd := exec.CommandContext(ctx, installDB, initArgs...)
	initCmd.Dir = dir
	if out, err := initCmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %w: %s", err, out)
	}
	if s.Port, err = freePort(); err != nil {
		return nil, err
	}
	args := append([]string{
		"--no-defaults", // must come first: no /etc/mysql config, only what is below
		"--datadir=" + data,
		"--port=" + strconv.Itoa(s.Port),
		"--bind-address=127.0.0.1",
		"--socket=" + filepath.Join(dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(dir, "mysqld.pid"),
		"--tmpdir=" + dir,
		"--skip-log-bin",
		// Durability is not under test here; speed is welcome.
		"--innodb-flush-log-at-trx-commit=0",
		"--innodb-doublewrite=0",
		"--sync-binlog=0",
		"--innodb-buffer-pool-size=128M",
		"--max-connections=300",
		"--skip-name-resolve",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_bin",
	}, asUser...)
	s.start = func() (*process, error) {
		return startProcess("mariadbd", exec.Command(mariadbd, args...))
	}
	if s.proc, err = s.start(); err != nil {
		return nil, err
	}
	s.DSN = fmt.Sprintf("root@tcp(%s)/", hostPort(s.Port))
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Restart stops the server (SIGTERM: a clean shutdown that cuts every connection) and starts it
// again on the same data and port after down has passed, as a database failover or maintenance
// restart would.
func (s *MariaDBServer) Restart(ctx context.Context, down time.Duration) error {
	return restart(ctx, &s.proc, syscall.SIGTERM, down, s.start, s.waitReady)
}

func (s *MariaDBServer) waitReady(ctx context.Context) error {
	cfg, err := mysql.ParseDSN(s.DSN)
	if err != nil {
		return fmt.Errorf("parse mariadb DSN %q: %w", s.DSN, err)
	}
	// A short dial timeout so one check cannot use up the whole wait.
	cfg.Timeout = 2 * time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("mariadb connector: %w", err)
	}
	return s.proc.waitReady(ctx, 60*time.Second, func(ctx context.Context) error {
		db := sql.OpenDB(conn)
		defer db.Close()
		return db.QueryRowContext(ctx, "SELECT version()").Scan(&s.Version)
	})
}

// Close stops the server (SIGTERM: mariadbd's clean shutdown) and deletes its directory.
func (s *MariaDBServer) Close() {
	if s.proc != nil {
		s.proc.stop(syscall.SIGTERM, 10*time.Second)
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// CreateDatabase makes a new empty database des_test_N and returns its DSN as root; tests sharing
// one server stay isolated by using a database each.
func (s *MariaDBServer) CreateDatabase(ctx context.Context) (dsn string, err error) {
	name := fmt.Sprintf("des_test_%d", s.dbs.Add(1))
	db, err := sql.Open("mysql", s.DSN)
	if err != nil {
		return "", fmt.Errorf("open %s to create database: %w", s.DSN, err)
	}
	defer db.Close()
	// name is ours (des_test_N), so quoting it with backticks is enough.
	if _, err := db.ExecContext(ctx, "CREATE DATABASE `"+name+"`"); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return fmt.Sprintf("root@tcp(%s)/%s", hostPort(s.Port), name), nil
}

// NewDatabase creates a database for one test and returns a handle on it, closed when the test
// ends, with its DSN.
func (s *MariaDBServer) NewDatabase(t testing.TB) (*sql.DB, string) {
	t.Helper()
	dsn, err := s.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, dsn
}
