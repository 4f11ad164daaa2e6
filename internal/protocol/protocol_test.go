package protocol

import (
	"strings"
	"testing"
	"time"
)

func TestNames(t *testing.T) {
	day := time.Date(2026, 11, 26, 23, 59, 0, 0, time.FixedZone("CET", 3600))
	cases := []struct{ got, want string }{
		{LeaseName("daily", 0x2a), "des-daily-002a"},
		{ShardHex(4095), "0fff"},
		{ShardPrefix("scans", day, 7), "scans/2026-11-26/0007"},
		{ContainerKey("a/b", day, 0xffff, "c1"), "a/b/2026-11-26/ffff/c1/c1.des"},
		{LegacyContainerKey("a/b", day, 0xffff, "c1"), "a/b/2026-11-26/ffff/c1.des"},
		{ContainerPrefix("a/b", day, 0xffff, "c1"), "a/b/2026-11-26/ffff/c1"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if got := LeaseName(strings.Repeat("x", 300), 1); len(got) > 253 {
		t.Fatalf("lease name is %d bytes", len(got))
	}
}

func TestContainerIDsAreUniqueAndOrdered(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	a, b := NewContainerID(now), NewContainerID(now.Add(time.Millisecond))
	if len(a) != 17 || a[0] != 'c' || a >= b {
		t.Fatalf("ids %q, %q: want c+16 hex, time-ordered", a, b)
	}
	if got := ContainerPrefix("p", now, 1, a); got != "p/2027-01-15/0001/"+a {
		t.Fatalf("ContainerPrefix = %q", got)
	}
}
