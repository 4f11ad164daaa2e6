package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/protocol"
)

// defaultSweepGrace is how old an unaccounted upload or object must be before the sweep removes it.
// A packer creates its DesContainer before it starts the upload, so the grace only guards against
// clock skew between the store and the controller, and against slow listings.
const defaultSweepGrace = time.Hour

// archiveItem is an object or an unfinished multipart upload found under an archive prefix.
type archiveItem struct {
	Key      string
	UploadID string // set for multipart uploads
	Time     time.Time
}

// orphans picks the items that no committed container (committed) and no unfinished DesContainer
// (live) accounts for, and that are older than grace. Items of shards not in shards are left to
// the DesShard that owns them. Both sets hold per-container prefixes (protocol.OwnerPrefix): an item
// belongs to the container whose prefix it is under, whichever layout that container's object has,
// so a committed container's big payloads are kept with it.
func orphans(items []archiveItem, dayPrefix string, shards map[string]bool, live, committed map[string]bool, now time.Time, grace time.Duration) []archiveItem {
	var out []archiveItem
	for _, it := range items {
		owner := protocol.OwnerPrefix(it.Key)
		if owner == "" || !shards[protocol.ShardOfKey(it.Key, dayPrefix)] || live[owner] || now.Sub(it.Time) < grace {
			continue
		}
		if it.UploadID == "" && committed[owner] {
			continue
		}
		out = append(out, it)
	}
	return out
}

// accountedPrefixes are the per-container prefixes the sweep must leave alone because a DesContainer
// of the DesShard still stands for them: every unfinished container, and a Failed one (it waits for
// a person, with its object as evidence). A rolled-back container's debris is the sweep's, and a
// committed container's objects are kept by the catalog's record (only a stray upload of its key is
// swept). Each container accounts for the prefix of the key in its spec and for the prefix the
// protocol derives from its name, day and shard, so a spec that names another key (which recovery
// refuses to touch, KeyNotOwned) cannot expose the container's real objects to the sweep.
func accountedPrefixes(prefix string, containers []desv1.DesContainer) map[string]bool {
	prefixes := map[string]bool{}
	for i := range containers {
		c := &containers[i]
		if c.Status.Phase == desv1.PhaseRolledBack || c.Status.Phase == desv1.PhaseCommitted {
			continue
		}
		prefixes[protocol.PrefixOfContainerKey(c.Spec.Key)] = true
		day, err := time.Parse(time.DateOnly, c.Spec.Day)
		if id, ok := protocol.ContainerIDOf(c.Spec.ShardRef, c.Name); ok && err == nil {
			prefixes[protocol.ContainerPrefix(prefix, day, c.Spec.Shard, id)] = true
		}
	}
	return prefixes
}

// sweeper removes what crashed or partitioned packers left in the archive that recovery could not
// see: uploads and objects of containers that have no DesContainer anymore. It looks at today's and
// yesterday's prefixes only; older debris is rare and cheap to leave for a person.
type sweeper struct {
	store  *objstore.Store
	cat    *catalog.Catalog
	bucket string
	prefix string
	grace  time.Duration
}

func (s *sweeper) sweep(ctx context.Context, shards []int32, containers []desv1.DesContainer, now time.Time) (int, error) {
	want := map[string]bool{}
	for _, id := range shards {
		want[protocol.ShardHex(id)] = true
	}
	live := accountedPrefixes(s.prefix, containers)
	removed := 0
	for _, day := range []time.Time{now, now.Add(-24 * time.Hour)} {
		dayPrefix := protocol.DayPrefix(s.prefix, day)
		items, err := s.list(ctx, dayPrefix)
		if err != nil {
			return removed, err
		}
		committed, err := s.committed(ctx, items)
		if err != nil {
			return removed, err
		}
		for _, it := range orphans(items, dayPrefix, want, live, committed, now, s.grace) {
			if err := s.remove(ctx, it); err != nil {
				return removed, err
			}
			removed++
		}
	}
	return removed, nil
}

func (s *sweeper) list(ctx context.Context, dayPrefix string) ([]archiveItem, error) {
	var items []archiveItem
	for o, err := range s.store.List(ctx, s.bucket, objstore.ListOptions{Prefix: dayPrefix}) {
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dayPrefix, err)
		}
		items = append(items, archiveItem{Key: o.Key, Time: o.LastModified})
	}
	for u, err := range s.store.ListMultipartUploads(ctx, s.bucket, dayPrefix) {
		if err != nil {
			return nil, fmt.Errorf("list uploads under %s: %w", dayPrefix, err)
		}
		items = append(items, archiveItem{Key: u.Key, UploadID: u.UploadID, Time: u.Initiated})
	}
	return items, nil
}

// committed is the set of per-container prefixes of items whose container the catalog records as
// committed. The catalog records a container's key, which is either of the two keys of its prefix
// (protocol.ContainerKeysOf): both are asked for.
func (s *sweeper) committed(ctx context.Context, items []archiveItem) (map[string]bool, error) {
	var prefixes []string
	for _, it := range items {
		if p := protocol.OwnerPrefix(it.Key); p != "" {
			prefixes = append(prefixes, p)
		}
	}
	recorded, err := committedPrefixes(ctx, s.cat, prefixes)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(recorded))
	for p := range recorded {
		out[p] = true
	}
	return out, nil
}

// committedPrefixes returns, for each per-container prefix whose container the catalog records as
// committed under either of its keys (protocol.ContainerKeysOf: both layouts share the prefix's
// _bigFiles/), the key recorded. The sweep keeps such prefixes; recovery refuses to clear them.
func committedPrefixes(ctx context.Context, cat *catalog.Catalog, prefixes []string) (map[string]string, error) {
	prefixOf := map[string]string{}
	for _, p := range prefixes {
		key, legacy := protocol.ContainerKeysOf(p)
		prefixOf[key], prefixOf[legacy] = p, p
	}
	if len(prefixOf) == 0 {
		return nil, nil
	}
	recorded, err := cat.RecordedKeys(ctx, slices.Collect(maps.Keys(prefixOf)))
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(recorded))
	for k := range recorded {
		out[prefixOf[k]] = k
	}
	return out, nil
}

func (s *sweeper) remove(ctx context.Context, it archiveItem) error {
	var err error
	if it.UploadID != "" {
		err = s.store.AbortMultipart(ctx, s.bucket, it.Key, it.UploadID)
	} else {
		err = s.store.Delete(ctx, s.bucket, it.Key)
	}
	if err != nil && !errors.Is(err, objstore.ErrNotFound) {
		return fmt.Errorf("remove orphan %s: %w", it.Key, err)
	}
	return nil
}
