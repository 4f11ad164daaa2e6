package packer

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
)

// gcPercent is the packer's GOGC. What the packer holds is mostly a few long-lived buffers (the
// upload's parts in flight, the fetch window, the name table of the open container); its garbage is
// small and per file. Go's default (100) lets the heap grow to twice the live heap before collecting,
// which for the packer doubles those buffers in RSS for nothing. At 25 the heap stays within 1.25× of
// the live one; the extra collections cost little, because the big buffers hold no pointers and are
// never scanned (docs/scale.md has the figures).
const gcPercent = 25

// memoryLimitShare is the part of the container's memory limit given to Go as its soft limit
// (GOMEMLIMIT): the rest is for the binary, the stacks and what the runtime has not yet returned.
const memoryLimitShare = 0.9

// cgroupMemoryFiles hold the container's memory limit, for cgroup v2 and v1.
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// tuneMemory sets the packer's GC: gcPercent unless GOGC is set, and a soft memory limit of
// memoryLimitShare of the container's memory limit unless GOMEMLIMIT is set. A Job with a memory
// limit then collects harder as it nears the limit instead of being OOM-killed in the middle of a
// container.
func tuneMemory(log logr.Logger) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	for _, path := range cgroupMemoryFiles {
		content, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if limit, ok := softMemoryLimit(string(content)); ok {
			debug.SetMemoryLimit(limit)
			log.V(1).Info("soft memory limit from the container's", "bytes", limit, "file", path)
		}
		return
	}
}

// softMemoryLimit is the soft limit for a cgroup memory limit file's content: memoryLimitShare of it,
// or false when there is no limit ("max" in cgroup v2; v1 reports a huge number instead).
func softMemoryLimit(content string) (int64, bool) {
	limit, err := strconv.ParseInt(strings.TrimSpace(content), 10, 64)
	if err != nil || limit <= 0 || limit >= 1<<62 {
		return 0, false
	}
	return int64(float64(limit) * memoryLimitShare), true
}
