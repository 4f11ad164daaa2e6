package client_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/datavision/des/pkg/client"
	"github.com/datavision/des/pkg/des"
	"github.com/datavision/des/test/testworld"
)

// startNames runs one name service replica in-process until the test ends. With run false it
// never claims a node id, so it answers 503 like a replica that lost its Lease.
func startNames(t *testing.T, run bool) *client.Names {
	t.Helper()
	c, err := client.NewNames(testworld.StartNameService(t, "DES", "pod-a", run), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNames(t *testing.T) {
	c := startNames(t, true)
	day := des.Day{Year: 2026, Month: time.February, Day: 24}
	tests := []struct {
		name   string
		count  int
		opts   client.NameOptions
		prefix string
		day    des.Day // zero: today (UTC)
		bits   int
	}{
		{"defaults", 3, client.NameOptions{}, "DES", des.Day{}, 12},
		{"prefix, day and shard width", 5, client.NameOptions{Prefix: "SCAN", Day: day, ShardBits: 4}, "SCAN", day, 4},
		{"many", 2000, client.NameOptions{ShardBits: 16}, "DES", des.Day{}, 16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.New(ctx(t), tc.count, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			checkNames(t, got, tc.count, tc.prefix, tc.day, tc.bits)
		})
	}
}

// checkNames checks count distinct names of prefix and day (zero: today) with their shards.
func checkNames(t *testing.T, got []client.AssignedName, count int, prefix string, day des.Day, bits int) {
	t.Helper()
	if len(got) != count {
		t.Fatalf("%d names, want %d", len(got), count)
	}
	seen := map[string]bool{}
	for _, a := range got {
		n, err := des.ParseName(a.Name)
		if err != nil {
			t.Fatal(err)
		}
		shard, _ := des.Shard(a.Name, bits)
		wantDay := day
		if wantDay == (des.Day{}) {
			wantDay = des.DayOf(time.Now())
		}
		// A name issued just before midnight carries yesterday: accept either for "today".
		dayOK := n.Day == wantDay || (day == des.Day{} && n.Day == des.DayOf(time.Now().Add(-time.Minute)))
		if n.Prefix != prefix || !dayOK || a.Shard != shard || seen[a.Name] {
			t.Fatalf("%+v: prefix %q day %v shard %d (want %q, %v, %d, unique)", a, n.Prefix, n.Day, shard, prefix, wantDay, a.Shard)
		}
		seen[a.Name] = true
	}
}

func TestNamesErrors(t *testing.T) {
	up := startNames(t, true)
	down := startNames(t, false)
	tests := []struct {
		name   string
		c      *client.Names
		count  int
		opts   client.NameOptions
		status int    // 0: refused by the client before any request
		msg    string // part of the server's message
	}{
		{"count 0", up, 0, client.NameOptions{}, 0, ""},
		{"count too large", up, client.MaxNamesPerRequest + 1, client.NameOptions{}, 0, ""},
		{"shard width out of range", up, 1, client.NameOptions{ShardBits: 17}, http.StatusBadRequest, "shardBits"},
		{"bad prefix", up, 1, client.NameOptions{Prefix: "no_underscores"}, http.StatusBadRequest, "prefix"},
		{"no node id held", down, 1, client.NameOptions{}, http.StatusServiceUnavailable, "node id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.c.New(ctx(t), tc.count, tc.opts)
			if err == nil {
				t.Fatalf("got %d names and no error", len(got))
			}
			var se *client.StatusError
			isStatus := errors.As(err, &se)
			switch {
			case tc.status == 0 && isStatus:
				t.Fatalf("%v: the client should refuse this itself", err)
			case tc.status != 0 && (!isStatus || se.Status != tc.status || !strings.Contains(se.Message, tc.msg)):
				t.Fatalf("%v: want status %d with a message about %q", err, tc.status, tc.msg)
			}
		})
	}
}
