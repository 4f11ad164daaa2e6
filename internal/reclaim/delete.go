package reclaim

import (
	"context"
	"errors"
	"fmt"

	"github.com/datavision/des/internal/objstore"
)

// delete deletes the sources of the verified rows with DeleteObjects, per bucket, in requests of at
// most MaxDeleteObjects keys (and at most the rate's burst), each key carrying the ETag it was checked
// at. Only what the store reports deleted (or missing) is marked so; anything else is kept or left
// for the next pass.
func (b *batch) delete(ctx context.Context) {
	byBucket := map[string][]*row{}
	var buckets []string
	for _, w := range b.rows {
		if w.state != verified {
			continue
		}
		if _, ok := byBucket[w.Bucket]; !ok {
			buckets = append(buckets, w.Bucket)
		}
		byBucket[w.Bucket] = append(byBucket[w.Bucket], w)
	}
	step := min(objstore.MaxDeleteObjects, b.r.limiter.Burst())
	for _, bucket := range buckets {
		rows := byBucket[bucket]
		for start := 0; start < len(rows); start += step {
			b.deleteChunk(ctx, bucket, rows[start:min(start+step, len(rows))])
		}
	}
}

func (b *batch) deleteChunk(ctx context.Context, bucket string, rows []*row) {
	if err := b.r.limiter.WaitN(ctx, len(rows)); err != nil {
		b.failAll(rows, err)
		return
	}
	objs := make([]objstore.DeleteObject, len(rows))
	for i, w := range rows {
		objs[i] = objstore.DeleteObject{Key: w.Key, ETag: w.etag}
	}
	res, err := b.r.d.Source.DeleteObjects(ctx, bucket, objs)
	if err != nil {
		// The store may or may not have deleted some: the next pass's check tells (404 → recorded).
		b.failAll(rows, err)
		return
	}
	var recheck []*row
	for i, r := range res {
		w := rows[i]
		switch {
		case r.Deleted:
			w.state = deleted
		case r.NotFound():
			w.state = gone
		case r.PreconditionFailed():
			recheck = append(recheck, w)
		default:
			b.fail(w, fmt.Errorf("DeleteObjects s3://%s/%s: %s: %s", bucket, w.Key, r.Code, r.Message), "delete the source object")
		}
	}
	// A store that enforces the ETag kept these: gone meanwhile, or changed.
	b.each(ctx, recheck, b.recheck)
}

// recheck HEADs a source whose conditional delete was refused.
func (b *batch) recheck(ctx context.Context, w *row) {
	info, err := b.r.d.Source.Head(ctx, w.Bucket, w.Key)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		w.state = gone
	case err != nil:
		b.fail(w, err, "check a source object whose delete was refused")
	case info.ETag != w.etag:
		w.refuse(ReasonChanged, "source object changed since it was packed: ETag %s, packed %s: the source is kept", info.ETag, w.etag)
	default:
		b.fail(w, fmt.Errorf("the store refused to delete s3://%s/%s at ETag %s, which it still has", w.Bucket, w.Key, w.etag), "delete the source object")
	}
}

func (b *batch) failAll(rows []*row, err error) {
	for _, w := range rows {
		w.state = failed
	}
	b.log.Error(err, "deleting source objects failed; the rows are left for the next pass", "rows", len(rows))
}

// record writes what the batch found into the catalog, after the deletions: refusals, then the rows
// deleted or found gone (in a dry run: the rows verified). It counts and logs each outcome. cause, if
// set, is returned with any recording error.
func (b *batch) record(ctx context.Context, cause error) error {
	refusals := map[int64]string{}
	var goneIDs, verifiedIDs []int64
	m := b.r.d.Metrics
	for _, w := range b.rows {
		switch w.state {
		case refused:
			refusals[w.ID] = w.msg
		case deleted:
			goneIDs = append(goneIDs, w.ID)
		case gone:
			if b.r.o.DryRun {
				verifiedIDs = append(verifiedIDs, w.ID)
			} else {
				goneIDs = append(goneIDs, w.ID)
			}
		case verified:
			if b.r.o.DryRun {
				w.state = wouldGo
				verifiedIDs = append(verifiedIDs, w.ID)
			} else {
				// Not deleted, not failed: cannot happen, but never record what was not done.
				w.state = failed
			}
		}
	}
	// Counted before recording: a deletion happened even if its record fails (the next pass records it).
	for _, w := range b.rows {
		switch w.state {
		case deleted:
			b.stats.Deleted++
			m.Deleted.Inc()
		case gone:
			b.stats.AlreadyGone++
		case wouldGo:
			b.stats.WouldDelete++
		case refused:
			b.stats.Refused++
			m.Refused.WithLabelValues(w.reason).Inc()
			b.log.Info("source kept", "id", w.ID, "bucket", w.Bucket, "key", w.Key, "reason", w.msg)
		case failed:
			b.stats.Errors++
			m.Errors.Inc()
		}
	}
	errs := []error{cause}
	if err := b.r.d.Catalog.RefuseReclaim(ctx, b.rc.Container, refusals); err != nil {
		errs = append(errs, err)
	}
	if err := b.r.d.Catalog.RecordReclaimed(ctx, b.rc.Container, goneIDs, verifiedIDs); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
