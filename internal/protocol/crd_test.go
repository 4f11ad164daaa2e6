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
// builds from a prefix the DesShard CRD accepts is one the DesContainer CRD accepts, with the day
// and shard segments its cross-field rule compares: the packer never writes a container whose
// resource the API server would refuse.
func TestContainerKeysPassTheCRD(t *testing.T) {
	keyRE, prefixRE := regexp.MustCompile(desv1.ContainerKeyPattern), regexp.MustCompile(desv1.ArchivePrefixPattern)
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
			key := ContainerKey(tc.prefix, day, shard, NewContainerID(day))
			if !keyRE.MatchString(key) {
				t.Fatalf("ContainerKey(%q, %s, %d) = %q does not pass ContainerKeyPattern", tc.prefix, day, shard, key)
			}
			if want := "/" + day.Format(time.DateOnly) + "/" + ShardHex(shard) + "/c"; !strings.Contains(key, want) {
				t.Fatalf("key %q lacks %q, which the DesContainer rule compares with spec.day and spec.shard", key, want)
			}
		}
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
