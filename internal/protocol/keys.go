package protocol

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/datavision/des/internal/desformat"
)

// ContainerSuffix ends every container object key.
const ContainerSuffix = ".des"

// IsContainerKey reports whether key names a container object (not a big payload or a stranger).
func IsContainerKey(key string) bool {
	return strings.HasSuffix(key, ContainerSuffix) && len(key) > len(ContainerSuffix)
}

// PrefixOfContainerKey is the per-container prefix of a container key, the ContainerPrefix its big
// payloads live under: the key's folder when the object sits inside a folder named after it
// (ContainerKey: .../<id>/<id>.des), else the key without ContainerSuffix (LegacyContainerKey:
// .../<id>.des, and archives named by hand). A key that is not a container key is returned as is.
func PrefixOfContainerKey(key string) string {
	if !IsContainerKey(key) {
		return key
	}
	dir, file := path.Split(key)
	stem := strings.TrimSuffix(file, ContainerSuffix)
	if stem != "" && (dir == stem+"/" || strings.HasSuffix(dir, "/"+stem+"/")) {
		return strings.TrimSuffix(dir, "/")
	}
	return strings.TrimSuffix(key, ContainerSuffix)
}

// BigFilesPrefix is the prefix of the big payloads of the container with key containerKey:
// <container prefix>/_bigFiles/ (the format's external layout, desformat.ExternalKey). For a
// ContainerKey that is path.Dir(key)+"/_bigFiles/", where a v1 reader looks.
func BigFilesPrefix(containerKey string) string {
	return PrefixOfContainerKey(containerKey) + "/" + desformat.BigFilesDir + "/"
}

// OwnerPrefix is the per-container prefix (ContainerPrefix) an archive key belongs to, for the keys
// DES writes under a shard folder <...>/<YYYY-MM-DD>/<shard-hex>/: a container object in either
// layout (<id>/<id>.des or the legacy <id>.des), an upload of one, or a big payload
// <id>/_bigFiles/<name>. It is "" for anything else, which no sweep may touch. The prefix, not a
// container key, is the owner: a big payload of <id>/ belongs to whichever of the two keys
// (ContainerKeysOf) holds the container, and both layouts put big payloads under the same prefix.
func OwnerPrefix(key string) string {
	dir, file := path.Split(key)
	folder, last := path.Split(strings.TrimSuffix(dir, "/"))
	var owner string
	switch id, isObject := strings.CutSuffix(file, ContainerSuffix); {
	case last == desformat.BigFilesDir && file != "" && folder != "":
		owner = strings.TrimSuffix(folder, "/")
	case isObject && IsContainerID(id) && last == id:
		owner = strings.TrimSuffix(dir, "/")
	case isObject && IsContainerID(id):
		owner = dir + id
	}
	if !isContainerPrefix(owner) {
		return ""
	}
	return owner
}

// isContainerPrefix reports whether p is shaped <...>/<YYYY-MM-DD>/<shard-hex>/<container-id>, as
// ContainerPrefix makes it (the archive prefix may be empty).
func isContainerPrefix(p string) bool {
	rest, id := path.Split(p)
	rest, shard := path.Split(strings.TrimSuffix(rest, "/"))
	_, day := path.Split(strings.TrimSuffix(rest, "/"))
	if !IsContainerID(id) || !isShardHex(shard) {
		return false
	}
	_, err := time.Parse(time.DateOnly, day)
	return err == nil
}

// isShardHex reports whether s is a shard id as ShardHex writes it: 4 lower-case hex digits.
func isShardHex(s string) bool { return len(s) == 4 && isLowerHex(s) }

// isLowerHex reports whether s is made of lower-case hex digits only, as ShardHex and NewContainerID
// write them.
func isLowerHex(s string) bool {
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// ContainerKeysOf are the keys the object of the container with per-container prefix p may have:
// ContainerKey's (inside p) and LegacyContainerKey's (next to p). The catalog records one of them.
func ContainerKeysOf(p string) (key, legacy string) {
	return p + "/" + path.Base(p) + ContainerSuffix, p + ContainerSuffix
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

// Errors of CheckContainerKey and CheckContainerBucket. Each matches ErrKeyNotOwned: whatever part
// is wrong, the key is not the container's to delete.
var (
	// ErrKeyNotOwned means an archive location is not the one the protocol gives the container.
	ErrKeyNotOwned = errors.New("archive key is not the container's")
	// ErrOtherBucket: the container names a bucket other than its DesShard's archive bucket.
	ErrOtherBucket = fmt.Errorf("%w: other bucket", ErrKeyNotOwned)
	// ErrOutsidePrefix: the key is not under the DesShard's archive prefix.
	ErrOutsidePrefix = fmt.Errorf("%w: outside the DesShard's prefix", ErrKeyNotOwned)
	// ErrOtherDay: the key is not under the container's day (spec.day), or that day is not a date.
	ErrOtherDay = fmt.Errorf("%w: other day", ErrKeyNotOwned)
	// ErrOtherShard: the key is not under the container's shard (spec.shard).
	ErrOtherShard = fmt.Errorf("%w: other shard", ErrKeyNotOwned)
	// ErrOtherContainer: the key's container id is not the one in the container's name, or the name
	// is not <desshard>-<container-id>.
	ErrOtherContainer = fmt.Errorf("%w: other container id", ErrKeyNotOwned)
)

// CheckContainerBucket is nil when a container's bucket is its DesShard's archive bucket.
func CheckContainerBucket(archiveBucket, bucket string) error {
	if bucket != archiveBucket {
		return fmt.Errorf("%w: bucket %q is not the archive bucket %q", ErrOtherBucket, bucket, archiveBucket)
	}
	return nil
}

// CheckContainerKey is nil when key is exactly a key the protocol gives the DesContainer name of
// DesShard desShard with archive prefix prefix, day (YYYY-MM-DD) and shard:
// ContainerKey(prefix, day, shard, id) where name is ContainerName(desShard, id), or
// LegacyContainerKey of the same, which containers written before the current layout have (both
// have the same per-container prefix, so recovery deletes the same big payloads). Otherwise it says,
// with an error matching ErrKeyNotOwned, the first part that differs. Recovery checks this before
// deleting anything a DesContainer names: a container's spec is written by whoever may create
// DesContainers, and must not be a way to delete arbitrary objects.
func CheckContainerKey(prefix, desShard, day string, shard int32, name, key string) error {
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return fmt.Errorf("%w: day %q is not YYYY-MM-DD", ErrOtherDay, day)
	}
	id, ok := ContainerIDOf(desShard, name)
	if !ok {
		return fmt.Errorf("%w: name %q is not %s-<container-id>", ErrOtherContainer, name, desShard)
	}
	want, legacy := ContainerKey(prefix, d, shard, id), LegacyContainerKey(prefix, d, shard, id)
	switch shardPrefix := ShardPrefix(prefix, d, shard) + "/"; {
	case key == want, key == legacy:
		return nil
	case !strings.HasPrefix(key, under(prefix)):
		return fmt.Errorf("%w: key %q is not under %q", ErrOutsidePrefix, key, under(prefix))
	case !strings.HasPrefix(key, DayPrefix(prefix, d)):
		return fmt.Errorf("%w: key %q is not under %q", ErrOtherDay, key, DayPrefix(prefix, d))
	case !strings.HasPrefix(key, shardPrefix):
		return fmt.Errorf("%w: key %q is not under %q", ErrOtherShard, key, shardPrefix)
	default:
		return fmt.Errorf("%w: key %q is neither %q nor the legacy %q", ErrOtherContainer, key, want, legacy)
	}
}

// under is the key prefix of everything under an archive prefix ("" for the bucket's root), joined
// as ShardPrefix joins it.
func under(prefix string) string {
	p := path.Join(prefix)
	if p == "" {
		return ""
	}
	return p + "/"
}

// ContainerIDOf is the container id in a DesContainer name made by ContainerName(desShard, id).
func ContainerIDOf(desShard, name string) (string, bool) {
	id, ok := strings.CutPrefix(name, desShard+"-")
	if !ok || !IsContainerID(id) {
		return "", false
	}
	return id, true
}

// IsContainerID reports whether id is what NewContainerID makes: "c" and 16 lower-case hex digits.
func IsContainerID(id string) bool { return len(id) == 17 && id[0] == 'c' && isLowerHex(id[1:]) }
