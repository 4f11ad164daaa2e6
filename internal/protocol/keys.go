package protocol

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/datavision/des/internal/desformat"
)

// ContainerSuffix ends every container object key.
const ContainerSuffix = ".des"

// IsContainerKey reports whether key names a container object (not a big payload or a stranger).
func IsContainerKey(key string) bool {
	return strings.HasSuffix(key, ContainerSuffix) && len(key) > len(ContainerSuffix)
}

// PrefixOfContainerKey is the per-container prefix of a container key (the key without
// ContainerSuffix): the ContainerPrefix its big payloads live under.
func PrefixOfContainerKey(key string) string {
	if IsContainerKey(key) {
		return strings.TrimSuffix(key, ContainerSuffix)
	}
	return key
}

// BigFilesPrefix is the prefix of the big payloads of the container with key containerKey:
// <container prefix>/_bigFiles/ (the format's external layout, desformat.ExternalKey).
func BigFilesPrefix(containerKey string) string {
	return PrefixOfContainerKey(containerKey) + "/" + desformat.BigFilesDir + "/"
}

// OwnerKey is the container key an archive key belongs to: the key itself for a container, the
// container of a big payload under its _bigFiles/, and "" for anything DES did not write (which no
// sweep or recovery may touch).
func OwnerKey(key string) string {
	if i := strings.Index(key, "/"+desformat.BigFilesDir+"/"); i > 0 {
		return key[:i] + ContainerSuffix
	}
	if IsContainerKey(key) {
		return key
	}
	return ""
}

// ShardOfKey is the shard hex of a key laid out <prefix>/<day>/<shard-hex>/..., given the day's
// DayPrefix; "" when the key is not under it.
func ShardOfKey(key, dayPrefix string) string {
	rest, ok := strings.CutPrefix(key, dayPrefix)
	if !ok {
		return ""
	}
	if i := strings.IndexByte(rest, '/'); i > 0 {
		return rest[:i]
	}
	return ""
}

// FormatShardList is a shard set as the packer's --shards flag and the Job annotation
// AnnotationShards carry it: decimal ids, comma-separated.
func FormatShardList(shards []int32) string {
	parts := make([]string, len(shards))
	for i, s := range shards {
		parts[i] = strconv.Itoa(int(s))
	}
	return strings.Join(parts, ",")
}

// MaxShard is the largest shard id (naming uses at most 16 shard bits).
const MaxShard = 1<<16 - 1

// ParseShardList reads FormatShardList's output; spaces around ids are allowed, an empty string is
// the empty set, and anything that is not a shard id, or a shard listed twice, is an error naming it.
func ParseShardList(s string) ([]int32, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]int32, 0, len(parts))
	seen := make(map[int64]bool, len(parts))
	for _, p := range parts {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
		if err != nil || n < 0 || n > MaxShard {
			return nil, fmt.Errorf("shard list %q: %q is not a shard id (0..%d)", s, p, MaxShard)
		}
		if seen[n] {
			// The controller never lists a shard twice; a person who did made a typo worth hearing about.
			return nil, fmt.Errorf("shard list %q: shard %d is listed twice", s, n)
		}
		seen[n] = true
		out = append(out, int32(n))
	}
	return out, nil
}
