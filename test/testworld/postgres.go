package testworld

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresServer is a private PostgreSQL cluster in a temp directory, listening on 127.0.0.1.
type PostgresServer struct {
	// DSN connects to the cluster's maintenance database as the superuser.
	DSN     string
	Version string
	Port    int

	dir  string
	proc *process
	dbs  atomic.Int64
	// start runs the server process again on the same data and port (Restart).
	start func() (*process, error)
}

// postgresBinDir finds initdb and postgres: $DES_PG_BIN, else the newest Debian install.
func postgresBinDir() (string, error) {
	if d := os.Getenv("DES_PG_BIN"); d != "" {
		return d, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(matches) == 0 {
		if p, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p), nil
		}
		return "", fmt.Errorf("testworld: PostgreSQL server binaries not found: run `make test-deps` (apt-get install postgresql) or set DES_PG_BIN")
	}
	sort.Slice(matches, func(i, j int) bool { return pgMajor(matches[i]) > pgMajor(matches[j]) })
	return filepath.Dir(matches[0]), nil
}

func pgMajor(binPath string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(binPath))))
	return n
}

// runAs makes a command run as the postgres OS user when we are root: initdb and postgres refuse
// to run as root.
func runAs(cmd *exec.Cmd, cred *syscall.Credential) *exec.Cmd {
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return cmd
}

func postgresCredential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("testworld: running as root needs the 'postgres' OS user (apt-get install postgresql): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, fmt.Errorf("chown %s: %w", dir, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// StartPostgres initialises and starts a new cluster. Close stops it and removes its files.
func StartPostgres(ctx context.Context) (_ *PostgresServer, err error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	// Not under t.TempDir(): the postgres user must be able to reach it.
	dir, err := os.MkdirTemp("", "des-pg-")
	if err != nil {
		return nil, err
	}
	s := &PostgresServer{dir: dir}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	cred, err := postgresCredential(dir)
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := runAs(exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"), cred)
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	if s.Port, err = freePort(); err != nil {
		return nil, err
	}
	s.start = func() (*process, error) {
		cmd := runAs(exec.Command(filepath.Join(bin, "postgres"),
			"-D", data, "-p", strconv.Itoa(s.Port), "-h", "127.0.0.1", "-k", dir,
			// Durability is not under test here; speed is welcome.
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=300"), cred)
		return startProcess("postgres", cmd)
	}
	if s.proc, err = s.start(); err != nil {
		return nil, err
	}
	s.DSN = fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", hostPort(s.Port))
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Restart stops the server (fast shutdown: every connection is cut) and starts it again on the same
// data and port after down has passed, as a database failover or maintenance restart would.
func (s *PostgresServer) Restart(ctx context.Context, down time.Duration) error {
	return restart(ctx, &s.proc, syscall.SIGINT, down, s.start, s.waitReady)
}

func (s *PostgresServer) waitReady(ctx context.Context) error {
	return s.proc.waitReady(ctx, 60*time.Second, func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, s.DSN)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		return conn.QueryRow(ctx, "SELECT version()").Scan(&s.Version)
	})
}

// Close stops the server (fast shutdown) and deletes its data directory.
func (s *PostgresServer) Close() {
	if s.proc != nil {
		s.proc.stop(syscall.SIGINT, 10*time.Second)
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// CreateDatabase makes a new empty database and returns its DSN; tests sharing one server stay
// isolated by using a database each.
func (s *PostgresServer) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("des_test_%d", s.dbs.Add(1))
	conn, err := pgx.Connect(ctx, s.DSN)
	if err != nil {
		return "", fmt.Errorf("connect to create database: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", hostPort(s.Port), name), nil
}

// NewDatabase creates a database for one test and returns a pool on it, closed when the test ends.
func (s *PostgresServer) NewDatabase(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	ctx := context.Background()
	dsn, err := s.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatalf("pool for %s: %v", dsn, err)
	}
	t.Cleanup(pool.Close)
	return pool, dsn
}
