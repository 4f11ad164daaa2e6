package testworld

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// RedisServer is a private redis-server listening on 127.0.0.1, without persistence, in a temp
// directory.
type RedisServer struct {
	// Addr is host:port on 127.0.0.1.
	Addr    string
	Version string
	Port    int

	dir      string
	proc     *process
	prefixes atomic.Int64
}

// StartRedis starts a new redis-server (from $DES_REDIS_SERVER, else PATH). Close stops it and
// removes its directory.
func StartRedis(ctx context.Context) (_ *RedisServer, err error) {
	bin := os.Getenv("DES_REDIS_SERVER")
	if bin == "" {
		if bin, err = exec.LookPath("redis-server"); err != nil {
			return nil, fmt.Errorf("testworld: redis-server not found: run `make test-deps` (apt-get install redis-server) or set DES_REDIS_SERVER")
		}
	}
	dir, err := os.MkdirTemp("", "des-redis-")
	if err != nil {
		return nil, err
	}
	s := &RedisServer{dir: dir}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Port, err = freePort(); err != nil {
		return nil, err
	}
	s.Addr = hostPort(s.Port)
	// No config file: every setting on the command line, nothing written to disk (no RDB, no AOF),
	// no protected-mode surprises since only loopback is bound.
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(s.Port), "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "", "--databases", "16")
	if s.proc, err = startProcess("redis-server", cmd); err != nil {
		return nil, err
	}
	if err := s.proc.waitReady(ctx, 30*time.Second, s.ping); err != nil {
		return nil, err
	}
	return s, nil
}

// ping sends INFO server over a plain connection (RESP is simple enough) and records the version.
func (s *RedisServer) ping(ctx context.Context) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("INFO server\r\n")); err != nil {
		return err
	}
	br := bufio.NewReader(conn)
	head, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(head, "$") {
		return fmt.Errorf("unexpected INFO answer %q", strings.TrimSpace(head))
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			s.Version = v
			return nil
		}
	}
}

// NewPrefix returns a key prefix no other caller of this server gets, so tests sharing it stay
// isolated.
func (s *RedisServer) NewPrefix(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("des-test-%d:", s.prefixes.Add(1))
}

// Pause freezes the server (SIGSTOP): connections stay open and commands get no answer, as with a hung
// or overloaded Redis. Resume undoes it.
func (s *RedisServer) Pause() error { return s.proc.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume lets a paused server run again.
func (s *RedisServer) Resume() error { return s.proc.cmd.Process.Signal(syscall.SIGCONT) }

// Close stops the server and deletes its directory.
func (s *RedisServer) Close() {
	if s.proc != nil {
		_ = s.Resume() // a paused server would not act on SIGTERM
		s.proc.stop(syscall.SIGTERM, 10*time.Second)
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}
