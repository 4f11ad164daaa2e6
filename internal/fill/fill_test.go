package fill

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	p := Policy{MinFiles: 1000, MinBytes: 1 << 30, MaxFiles: 1_000_000, MaxBytes: 4 << 30, MaxWait: 24 * time.Hour}
	cases := []struct {
		name   string
		p      Policy
		s      Stats
		due    bool
		reason Reason
		packBy time.Time
	}{
		{"no rows", p, Stats{}, false, Empty, time.Time{}},
		{"below every threshold", p, Stats{Rows: 999, Bytes: 4 << 20, Oldest: now.Add(-time.Hour)}, false, Waiting, now.Add(23 * time.Hour)},
		{"exactly min files", p, Stats{Rows: 1000, Bytes: 1, Oldest: now}, true, MinFiles, now.Add(24 * time.Hour)},
		{"min bytes with few files", p, Stats{Rows: 3, Bytes: 1 << 30, Oldest: now}, true, MinBytes, now.Add(24 * time.Hour)},
		{"oldest row waited max wait", p, Stats{Rows: 1, Bytes: 1, Oldest: now.Add(-24 * time.Hour)}, true, MaxWait, now},
		{"due by min files and late: pack-by passed", p, Stats{Rows: 1000, Bytes: 1, Oldest: now.Add(-30 * time.Hour)}, true, MinFiles, now.Add(-6 * time.Hour)},
		{"oldest row a moment short of max wait", p, Stats{Rows: 1, Bytes: 1, Oldest: now.Add(-24*time.Hour + time.Nanosecond)}, false, Waiting, now.Add(time.Nanosecond)},
		{"unknown age counts as waited", p, Stats{Rows: 5, Bytes: 5}, true, MaxWait, time.Time{}},
		{"min files above max files: a full container is due", Policy{MinFiles: 500, MinBytes: 1 << 30, MaxFiles: 100, MaxWait: time.Hour}, Stats{Rows: 100, Bytes: 1, Oldest: now}, true, MinFiles, now.Add(time.Hour)},
		{"min bytes above max bytes: a full container is due", Policy{MinFiles: 500, MinBytes: 1 << 30, MaxBytes: 1 << 20, MaxWait: time.Hour}, Stats{Rows: 2, Bytes: 1 << 20, Oldest: now}, true, MinBytes, now.Add(time.Hour)},
		{"min files 1 packs whatever is ready", Policy{MinFiles: 1, MinBytes: 1 << 30, MaxWait: time.Hour}, Stats{Rows: 1, Bytes: 0, Oldest: now}, true, MinFiles, now.Add(time.Hour)},
		{"rows from the future wait from their time", p, Stats{Rows: 1, Bytes: 1, Oldest: now.Add(time.Hour)}, false, Waiting, now.Add(25 * time.Hour)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(c.p, c.s, now)
			if d.Due != c.due || d.Reason != c.reason || !d.PackBy.Equal(c.packBy) {
				t.Fatalf("Decide = %+v, want due=%v reason=%s packBy=%s", d, c.due, c.reason, c.packBy)
			}
			if desc := Describe(c.p, c.s, d); desc == "" {
				t.Fatal("empty description")
			}
		})
	}
}

func TestDescribeWaiting(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	p := Policy{MinFiles: 1000, MinBytes: 1 << 30, MaxFiles: 100, MaxWait: time.Hour}
	s := Stats{Rows: 7, Bytes: 70, Oldest: now}
	got := Describe(p, s, Decide(p, s, now))
	want := "waiting: 7 of 100 rows, 70 of 1073741824 bytes; packed by 2026-12-02T13:00:00Z at the latest"
	if got != want {
		t.Fatalf("Describe = %q, want %q", got, want)
	}
}
