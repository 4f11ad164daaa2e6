package packer

import (
	"runtime/debug"
	"testing"

	"github.com/go-logr/logr"
)

func TestSoftMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		content string
		want    int64
		ok      bool
	}{
		{"max\n", 0, false},                 // cgroup v2 without a limit
		{"9223372036854771712\n", 0, false}, // cgroup v1 without a limit
		{"268435456\n", 241591910, true},    // 256 MiB
		{"134217728", 120795955, true},      // 128 MiB, no newline
		{"", 0, false},
		{"-1\n", 0, false},
		{"garbage\n", 0, false},
	} {
		got, ok := softMemoryLimit(tc.content)
		if got != tc.want || ok != tc.ok {
			t.Errorf("softMemoryLimit(%q) = %d, %v; want %d, %v", tc.content, got, ok, tc.want, tc.ok)
		}
	}
}

// TestTuneMemoryHonoursGOGC: the packer's GC percent applies unless GOGC says otherwise.
func TestTuneMemoryHonoursGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOMEMLIMIT", "1GiB") // leave the test binary's limit alone
	t.Setenv("GOGC", "")
	debug.SetGCPercent(100)
	tuneMemory(logr.Discard())
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GC percent without GOGC: %d, want %d", got, gcPercent)
	}
	t.Setenv("GOGC", "100")
	tuneMemory(logr.Discard())
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent with GOGC=100: %d, want 100 (left alone)", got)
	}
}
