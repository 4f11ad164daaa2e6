package testworld_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/datavision/des/test/testworld"
)

// TestRedisPart: the private redis-server answers on 127.0.0.1, hands out distinct prefixes, and stops
// answering while paused.
func TestRedisPart(t *testing.T) {
	rs := testworld.RedisStore(t)
	if rs.Version == "" || !strings.HasPrefix(rs.Addr, "127.0.0.1:") {
		t.Fatalf("redis-server %q at %q", rs.Version, rs.Addr)
	}
	if a, b := rs.NewPrefix(t), rs.NewPrefix(t); a == b {
		t.Fatalf("NewPrefix returned %q twice", a)
	}
	ping := func(wait time.Duration) error {
		conn, err := net.DialTimeout("tcp", rs.Addr, time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(wait))
		if _, err := conn.Write([]byte("PING\r\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err == nil && line != "+PONG\r\n" {
			t.Fatalf("PING answered %q", line)
		}
		return err
	}
	if err := ping(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := rs.Pause(); err != nil {
		t.Fatal(err)
	}
	err := ping(200 * time.Millisecond)
	if rerr := rs.Resume(); rerr != nil {
		t.Fatal(rerr)
	}
	if err == nil {
		t.Fatal("a paused redis-server answered PING")
	}
	if err := ping(5 * time.Second); err != nil {
		t.Fatalf("after Resume: %v", err)
	}
}
