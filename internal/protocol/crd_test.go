package protocol

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

// TestContainerKeysPassTheCRD checks, against the Go patterns the CRDs state
// (api/v1alpha1.TestMarkersUseTheGoPatterns ties them to the markers), that every key ContainerKey
// and LegacyContainerKey build from a prefix the DesShard CRD accepts is one the DesContainer CRD
// accepts, with the day, shard and id segments its rules compare: the packer never writes a
// container whose resource the API server would refuse, and legacy containers stay valid.
func TestContainerKeysPassTheCRD(t *testing.T) {
	keyRE, prefixRE := regexp.MustCompile(desv1.ContainerKeyPattern), regexp.MustCompile(desv1.ArchivePrefixPattern)
	nestedRE := regexp.MustCompile(desv1.NestedContainerKeyPattern)
	rng := rand.New(rand.NewPCG(1, 2))
	last := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).UnixMilli()
	cases := []struct {
		prefix string
		shards []int32 // besides random ones
	}{
		{"des", []int32{0, MaxShard}},
		{"archive/v1", []int32{0xabc}},
		{"a.b-c_d", nil},
		{".hidden/..x/y.", nil},
		{"A/B/C/D/E/F/G", nil},
		{strings.Repeat("p", 200) + "/" + strings.Repeat("q", 300), nil},
	}
	for _, tc := range cases {
		if !prefixRE.MatchString(tc.prefix) {
			t.Fatalf("test prefix %q does not pass ArchivePrefixPattern", tc.prefix)
		}
		shards := tc.shards
		for range 200 {
			shards = append(shards, int32(rng.IntN(MaxShard+1)))
		}
		for _, shard := range shards {
			day := time.UnixMilli(rng.Int64N(last)).UTC()
			id := NewContainerID(day)
			checkKeyPassesTheCRD(t, keyRE, nestedRE, ContainerKey(tc.prefix, day, shard, id), day, shard, id, true)
			checkKeyPassesTheCRD(t, keyRE, nestedRE, LegacyContainerKey(tc.prefix, day, shard, id), day, shard, id, false)
		}
	}
}

// checkKeyPassesTheCRD checks key against ContainerKeyPattern and reads its day, shard and ids at
// the offsets from the end that the DesContainer's CEL rules use (api/v1alpha1 descontainer_types.go:
// 18 characters further for a key that matches NestedContainerKeyPattern).
func checkKeyPassesTheCRD(t *testing.T, keyRE, nestedRE *regexp.Regexp, key string, day time.Time, shard int32, id string, nested bool) {
	t.Helper()
	if !keyRE.MatchString(key) {
		t.Fatalf("key %q does not pass ContainerKeyPattern", key)
	}
	if nestedRE.MatchString(key) != nested {
		t.Fatalf("key %q: NestedContainerKeyPattern matches = %v, want %v", key, !nested, nested)
	}
	n, shift := len(key), 0
	if nested {
		shift = 18
		if folder, file := key[n-39:n-22], key[n-21:n-4]; folder != id || file != id {
			t.Fatalf("key %q: the id rule compares %q with %q, want %q twice", key, folder, file, id)
		}
	}
	if got := key[n-37-shift : n-27-shift]; got != day.Format(time.DateOnly) {
		t.Fatalf("key %q: the day rule reads %q, want %q", key, got, day.Format(time.DateOnly))
	}
	if got := key[n-26-shift : n-22-shift]; got != ShardHex(shard) {
		t.Fatalf("key %q: the shard rule reads %q, want %q", key, got, ShardHex(shard))
	}
}

// TestArchivePrefixPatternRefusesResolvableSegments: path.Join would resolve these, so keys would
// leave the prefix or lose a segment.
func TestArchivePrefixPatternRefusesResolvableSegments(t *testing.T) {
	prefixRE := regexp.MustCompile(desv1.ArchivePrefixPattern)
	for _, bad := range []string{"a//b", "./a", "a/../b", "..", ".", "a/.", "a/", "/a", "", "a b", "a\\b"} {
		if prefixRE.MatchString(bad) {
			t.Errorf("ArchivePrefixPattern accepts %q", bad)
		}
	}
}
