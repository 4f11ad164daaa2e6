package controllers

import (
	"cmp"
	"context"
	"fmt"
	"path"
	"slices"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

// archiveClaim is the part of the archive a DesShard writes and sweeps: its shards under one bucket
// and prefix. Two DesShards whose claims overlap would sweep and recover each other's objects.
type archiveClaim struct {
	key     client.ObjectKey
	created time.Time
	// location is the bucket and the prefix as keys are joined (protocol.ShardPrefix), so "des" and
	// "des/" are one place. The endpoint is left out on purpose: one store is often reached by more
	// than one URL, and refusing two DesShards on different stores is a false alarm a person fixes with
	// a prefix, while missing an overlap loses objects.
	location string
	shards   []int32
}

func claimOf(ds *desv1.DesShard, shards []int32) archiveClaim {
	return archiveClaim{key: client.ObjectKeyFromObject(ds), created: ds.CreationTimestamp.Time,
		location: ds.Spec.Archive.Bucket + "/" + path.Join(ds.Spec.Archive.Prefix), shards: shards}
}

// earlier orders claims by creation, then namespace/name: the first to exist keeps the archive.
func (a archiveClaim) earlier(b archiveClaim) bool {
	if !a.created.Equal(b.created) {
		return a.created.Before(b.created)
	}
	return cmp.Less(a.key.String(), b.key.String())
}

// overlap is an earlier DesShard that claims some of the same shards in the same archive location.
type overlap struct {
	other  client.ObjectKey
	shards []int32
}

// findOverlap returns the earliest DesShard in others created before me whose claim shares shards
// with mine, or nil. A later DesShard is refused whatever the earlier one's own state: the rule must
// not depend on which of the two was reconciled last.
func findOverlap(me archiveClaim, others []archiveClaim) *overlap {
	slices.SortFunc(others, func(a, b archiveClaim) int {
		switch {
		case a.earlier(b):
			return -1
		case b.earlier(a):
			return 1
		}
		return 0
	})
	for _, o := range others {
		if o.key == me.key || o.location != me.location || !o.earlier(me) {
			continue
		}
		if shared := intersect(me.shards, o.shards); len(shared) > 0 {
			return &overlap{other: o.key, shards: shared}
		}
	}
	return nil
}

// intersect returns the ids of sorted a that are also in b.
func intersect(a, b []int32) []int32 {
	in := make(map[int32]bool, len(b))
	for _, id := range b {
		in[id] = true
	}
	var out []int32
	for _, id := range a {
		if in[id] {
			out = append(out, id)
		}
	}
	return out
}

// specShards are the shard ids a DesShard's spec lists, unchecked against its source's width: only the
// overlap matters here, and a DesShard with invalid ids is refused on its own.
func specShards(spec desv1.DesShardSpec) []int32 {
	seen := map[int32]bool{}
	for _, id := range spec.Shards {
		seen[id] = true
	}
	for _, r := range spec.ShardRanges {
		for id := r.From; id <= r.To && id <= protocol.MaxShard; id++ {
			seen[id] = true
		}
	}
	out := make([]int32, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// checkOverlap refuses a DesShard whose archive shards an earlier DesShard of any namespace already
// claims. It lists every DesShard (the cache holds them all, so this is a scan of memory) rather
// than using a field index: the location is two fields, and a reader without the cache (tests, or
// an uncached client) cannot serve a field selector on a custom resource's spec.
func (r *DesShardReconciler) checkOverlap(ctx context.Context, ds *desv1.DesShard, shards []int32) (*notReady, error) {
	list := &desv1.DesShardList{}
	if err := r.List(ctx, list); err != nil {
		return nil, fmt.Errorf("list DesShards: %w", err)
	}
	others := make([]archiveClaim, 0, len(list.Items))
	for i := range list.Items {
		others = append(others, claimOf(&list.Items[i], specShards(list.Items[i].Spec)))
	}
	o := findOverlap(claimOf(ds, shards), others)
	if o == nil {
		return nil, nil
	}
	return &notReady{desv1.ReasonOverlapsDesShard, fmt.Sprintf(
		"shards %s of archive s3://%s are already DesShard %s's (created earlier): two DesShards would sweep and recover each other's objects; give this one another prefix or other shards",
		protocol.FormatShardList(o.shards), path.Join(ds.Spec.Archive.Bucket, ds.Spec.Archive.Prefix), o.other)}, nil
}
