package connect_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/connect"
	"github.com/datavision/des/test/testworld"
)

// fakeClock is a settable time source for the caches' idle eviction.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// alive reports whether a pool still serves queries; a closed pgx pool refuses Acquire.
func alive(ctx context.Context, t *testing.T, p interface {
	Ping(context.Context) error
}) bool {
	t.Helper()
	return p.Ping(ctx) == nil
}

// TestPoolCache runs the cache against the real PostgreSQL: the DSN "rotates" between two databases
// (as a new password would give a new DSN), and the pool of the old one must be closed.
func TestPoolCache(t *testing.T) {
	ctx := context.Background()
	pg := testworld.PG(t)
	dsnA, err := pg.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dsnB, err := pg.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name       string
		advance    time.Duration
		slot, dsn  string
		samePool   bool // as the previous step's pool
		wantLen    int
		prevClosed bool // the previous step's pool must be closed after this step
	}{
		{"first use opens a pool", 0, "ns/cat/dsn", dsnA, false, 1, false},
		{"same slot and DSN reuse it", time.Minute, "ns/cat/dsn", dsnA, true, 1, false},
		{"another slot on the same DSN shares it", 0, "ns/other/dsn", dsnA, true, 1, false},
		{"rotation in one slot keeps the pool the other slot uses", 0, "ns/cat/dsn", dsnB, false, 2, false},
		{"rotation in the last slot closes the old pool", 0, "ns/other/dsn", dsnB, true, 1, false},
		{"an idle pool is closed at the next Get", time.Hour, "ns/third/dsn", dsnA, false, 1, true},
	}
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	cache := &connect.PoolCache{Options: connect.PoolOptions{MaxConns: 2}, Idle: 30 * time.Minute, Now: clock.Now}
	defer cache.Close()
	var all []interface{ Ping(context.Context) error }
	var prev interface{ Ping(context.Context) error }
	for _, st := range steps {
		clock.Add(st.advance)
		p, err := cache.Get(ctx, st.slot, catalog.Postgres, st.dsn)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if (prev == p) != st.samePool {
			t.Fatalf("%s: same pool = %v, want %v", st.name, prev == p, st.samePool)
		}
		if got := cache.Len(); got != st.wantLen {
			t.Fatalf("%s: %d pools open, want %d", st.name, got, st.wantLen)
		}
		if st.prevClosed && alive(ctx, t, prev) {
			t.Fatalf("%s: the previous pool still answers", st.name)
		}
		if !alive(ctx, t, p) {
			t.Fatalf("%s: the returned pool does not answer", st.name)
		}
		all = append(all, p)
		prev = p
	}
	// The first pool (database A) was replaced in both slots in step 5: it must be closed since.
	if alive(ctx, t, all[0]) {
		t.Fatal("the pool of the rotated-away DSN is still open")
	}
	cache.Close()
	if alive(ctx, t, all[len(all)-1]) || cache.Len() != 0 {
		t.Fatal("Close left a pool open")
	}
}

func TestPoolCacheRefusesInvalidDSN(t *testing.T) {
	cache := &connect.PoolCache{}
	defer cache.Close()
	if _, err := cache.Get(context.Background(), "ns/s/k", catalog.Postgres, "postgres://u:Xpw@h:bad/db"); !errors.Is(err, connect.ErrInvalidDSN) {
		t.Fatalf("err = %v, want ErrInvalidDSN", err)
	}
	if cache.Len() != 0 {
		t.Fatal("a failed Get left a pool")
	}
}
