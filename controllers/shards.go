package controllers

import (
	"fmt"
	"sort"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

// expandShards returns the sorted, distinct shard ids a DesShard serves, checked against the source's
// shard width. The CRD schema bounds ids to 16 bits; only the source knows its actual width.
func expandShards(spec desv1.DesShardSpec, shardBits int32) ([]int32, error) {
	limit := int32(1) << shardBits
	seen := map[int32]bool{}
	add := func(id int32) error {
		if id < 0 || id >= limit {
			return fmt.Errorf("shard %d is out of range: the source has %d shard bits, so ids are 0..%d", id, shardBits, limit-1)
		}
		seen[id] = true
		return nil
	}
	for _, id := range spec.Shards {
		if err := add(id); err != nil {
			return nil, err
		}
	}
	for _, r := range spec.ShardRanges {
		if r.From > r.To {
			return nil, fmt.Errorf("shard range %d..%d is empty", r.From, r.To)
		}
		for id := r.From; id <= r.To; id++ {
			if err := add(id); err != nil {
				return nil, err
			}
		}
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("no shards selected")
	}
	out := make([]int32, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// groupShards splits shards into consecutive groups of at most n; each group is one Job's work.
func groupShards(shards []int32, n int) [][]int32 {
	if n < 1 {
		n = 1
	}
	var groups [][]int32
	for len(shards) > 0 {
		k := min(n, len(shards))
		groups = append(groups, shards[:k:k])
		shards = shards[k:]
	}
	return groups
}
