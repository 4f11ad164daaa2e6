package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/datavision/des/internal/desformat"
)

// Source deletion ("reclaim", internal/reclaim) deletes a row's source object once its payload is
// safely in a committed container. The catalog records each step in the row, so that a crash at any
// instant neither loses a file nor deletes one twice:
//
//	des_source_etag         the source object's ETag as the packer fetched it (written by the commit)
//	des_source_verified_at  the archived copy was read back and matched, and the source checked
//	des_source_deleted_at   the source object is gone (deleted by DES, or found gone)
//	des_source_refused      why the source is kept (NULL otherwise)
//
// and per container in des_containers (sources_verified_at after a dry run, sources_deleted_at once
// every row is deleted or refused). Every statement here touches only rows still packed in the named
// container, and only when that container has its permanent record: a rolled-back container's rows
// are never offered for deletion.

// ReclaimContainer is a committed container whose sources are not all deleted or refused.
type ReclaimContainer struct {
	Container, Key, Bucket string
	Shard                  int
	CommittedAt            time.Time
}

// ReclaimRow is one packed row whose source may be deleted: where its payload is in the archive
// (Location: offset, length, CRC-32C, external key) and which source object the packer fetched.
type ReclaimRow struct {
	ID                int64
	Bucket, Key, Name string
	// Size is the catalog's size of the source object.
	Size int64
	desformat.Location
	// SourceETag is "" when the commit did not know it (a recovery's roll-forward).
	SourceETag string
}

// reclaimWhere is the condition on des_containers d of the containers reclaiming still has to visit:
// of the source, of the shards (all of them when there are none), committed at least delay ago by
// the database's clock, not finished.
func (c *Catalog) reclaimWhere(q *query, source string, shards []int32, delay time.Duration, dryRun bool) string {
	w := "d.source = " + q.arg(source)
	if len(shards) > 0 {
		w += " AND " + q.in("d.shard", shards)
	}
	w += " AND d.committed_at <= " + c.db.d.before(q.arg(delay.Microseconds())) + " AND d.sources_deleted_at IS NULL"
	if dryRun {
		w += ` AND d.sources_verified_at IS NULL`
	}
	return w
}

// ReclaimContainers returns up to limit committed containers of source (in shards, all when empty),
// committed at least delay ago by the database's clock (the one that stamped committed_at, so a
// packer or controller whose clock is off still waits the delay), whose sources are not all done (in a
// dry run: not all verified either), oldest first, so that the files packed longest ago are reclaimed
// first and a pass cut short by its deadline resumes where it stopped.
func (c *Catalog) ReclaimContainers(ctx context.Context, source string, shards []int32, delay time.Duration, dryRun bool, limit int) ([]ReclaimContainer, error) {
	q := c.q("")
	q.add(`SELECT d.container, d.%s, d.bucket, d.shard, d.committed_at FROM %s AS d
		WHERE %s ORDER BY d.committed_at, d.container LIMIT %s`,
		c.col("key"), c.containers(), c.reclaimWhere(q, source, shards, delay, dryRun), q.arg(limit))
	out, err := collect(ctx, c.db.sql, q, func(r *sql.Rows) (ReclaimContainer, error) {
		var rc ReclaimContainer
		err := r.Scan(&rc.Container, &rc.Key, &rc.Bucket, &rc.Shard, &rc.CommittedAt)
		return rc, err
	})
	if err != nil {
		return nil, fmt.Errorf("containers to reclaim of %s: %w", source, err)
	}
	return out, nil
}

// ReclaimByShard counts, per shard, the containers ReclaimContainers would return (without a limit):
// the controller makes a shard due when its sources are waiting.
func (c *Catalog) ReclaimByShard(ctx context.Context, source string, shards []int32, delay time.Duration, dryRun bool) (map[int32]int64, error) {
	q := c.q("")
	q.add(`SELECT d.shard, count(*) FROM %s AS d WHERE %s GROUP BY d.shard`,
		c.containers(), c.reclaimWhere(q, source, shards, delay, dryRun))
	out, err := collectMap(ctx, c.db.sql, q, func(r *sql.Rows) (shard int32, n int64, err error) {
		err = r.Scan(&shard, &n)
		return shard, n, err
	})
	if err != nil {
		return nil, fmt.Errorf("containers to reclaim per shard of %s: %w", source, err)
	}
	return out, nil
}

// ownRows is the guard of every row statement of reclaiming: the row t is still packed by container
// and the container has its permanent record.
func (c *Catalog) ownRows(q *query, container string) string {
	return fmt.Sprintf(`t.%s = %s AND t.%s = %s AND EXISTS (SELECT 1 FROM %s AS d WHERE d.container = %s AND d.%s = t.%s)`,
		colContainer, q.arg(container), c.col(c.m.Status), q.arg(c.m.Packed), c.containers(), q.arg(container),
		c.col("key"), colContainerKey)
}

// sourcesLeft is the condition on a row t that reclaiming still has to do: its source is neither
// deleted nor refused (in a dry run: nor verified). ReclaimRows offers those rows, and FinishReclaim
// finishes a container that has none left.
func sourcesLeft(dryRun bool) string {
	w := fmt.Sprintf(`t.%s IS NULL AND t.%s IS NULL`, colSourceDeletedAt, colSourceRefused)
	if dryRun {
		w += fmt.Sprintf(` AND t.%s IS NULL`, colSourceVerifiedAt)
	}
	return w
}

// ReclaimRows returns up to limit rows of container, in id order after afterID, whose source is neither
// deleted nor refused (in a dry run: not verified either). Rows are returned in id order because the
// packer wrote them in that order: a batch's payloads lie mostly side by side in the archive.
func (c *Catalog) ReclaimRows(ctx context.Context, container string, afterID int64, dryRun bool, limit int) ([]ReclaimRow, error) {
	m := c.m
	q := c.q("")
	q.add(`SELECT t.%[1]s, %[2]s, t.%[3]s, t.%[4]s, t.%[5]s, t.%[6]s, t.%[7]s, t.%[8]s, t.%[9]s, t.%[10]s
		FROM %[11]s AS t WHERE %[12]s AND t.%[1]s > %[13]s AND %[14]s ORDER BY t.%[1]s LIMIT %[15]s`,
		c.col(m.ID), c.bucketColumn("t."), c.col(m.Key), c.col(m.DesName), c.col(m.Size), colOffset, colLength,
		colCRC32C, colExternalKey, colSourceETag, c.table(), c.ownRows(q, container), q.arg(afterID),
		sourcesLeft(dryRun), q.arg(limit))
	out, err := collect(ctx, c.db.sql, q, func(r *sql.Rows) (ReclaimRow, error) {
		var rr ReclaimRow
		var bucket sql.NullString
		var off, length, crc *int64
		var ext, etag *string
		if err := r.Scan(&rr.ID, &bucket, &rr.Key, &rr.Name, &rr.Size, &off, &length, &crc, &ext, &etag); err != nil {
			return rr, err
		}
		rr.Bucket = c.orDefault(bucket)
		rr.Location.Name = rr.Name
		rr.Location.Size = rr.Size
		// A row packed before placements were recorded has no offset and no CRC: reclaiming keeps it.
		if off != nil && length != nil {
			rr.Offset, rr.Location.Size = *off, *length
			if crc != nil {
				rr.CRC32C, rr.HasCRC = uint32(*crc), true
			}
		}
		if ext != nil {
			rr.ExternalKey = *ext
		}
		if etag != nil {
			rr.SourceETag = *etag
		}
		return rr, nil
	})
	if err != nil {
		return nil, fmt.Errorf("rows to reclaim of %s: %w", container, err)
	}
	return out, nil
}

// RecordReclaimed records, in one transaction, the rows of container whose source is gone (deleted:
// deleted and verified now) and those verified by a dry run (verified: verified now). It is called only
// after the deletions happened, never before; a row already recorded deleted (or verified) is left as
// it is, so a repeated record changes nothing.
func (c *Catalog) RecordReclaimed(ctx context.Context, container string, deleted, verified []int64) error {
	if len(deleted) == 0 && len(verified) == 0 {
		return nil
	}
	m := c.m
	now := c.db.d.now()
	// Only rows not yet marked change, so what each statement reports changed is what the container's
	// counters gain. A deleted row counts as verified too, from the first verification on.
	verify := func(ids []int64) *query {
		q := c.q("")
		return q.add(`UPDATE %s AS t SET %s = %s WHERE %s AND %s AND t.%s IS NULL AND t.%s IS NULL`,
			c.table(), colSourceVerifiedAt, now, c.ownRows(q, container), q.in("t."+c.col(m.ID), ids),
			colSourceDeletedAt, colSourceVerifiedAt)
	}
	del := c.q("")
	del.add(`UPDATE %s AS t SET %s = %s WHERE %s AND %s AND t.%s IS NULL`,
		c.table(), colSourceDeletedAt, now, c.ownRows(del, container), del.in("t."+c.col(m.ID), deleted), colSourceDeletedAt)
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		var nDeleted, nVerified int64
		for _, step := range []struct {
			ids []int64
			q   *query
			n   *int64
		}{{deleted, verify(deleted), &nVerified}, {deleted, del, &nDeleted}, {verified, verify(verified), &nVerified}} {
			if len(step.ids) == 0 {
				continue
			}
			n, err := exec(ctx, tx, step.q)
			if err != nil {
				return err
			}
			*step.n += n
		}
		return c.addCounters(ctx, tx, container, nDeleted, nVerified)
	})
	if err != nil {
		return fmt.Errorf("record reclaimed sources of %s (%d deleted, %d verified): %w", container, len(deleted), len(verified), err)
	}
	return nil
}

// RefuseReclaim records why the sources of some rows of container are kept (id → reason). A refused
// row is not offered again: a person looks at the reason and clears it to retry. Rows already
// recorded deleted are not refused.
func (c *Catalog) RefuseReclaim(ctx context.Context, container string, refusals map[int64]string) error {
	if len(refusals) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(refusals))
	reasons := make([]string, 0, len(refusals))
	for id, r := range refusals {
		ids = append(ids, id)
		reasons = append(reasons, truncate(r, maxErrorLen))
	}
	m := c.m
	q := c.q("")
	rows := q.rows("l", rowCol{"id", "bigint", ids}, rowCol{"reason", "text", reasons})
	q.updateJoin(c.table(), "t", rows, "t."+c.col(m.ID)+" = l.id", []set{{colSourceRefused, "l.reason"}},
		c.ownRows(q, container)+" AND t."+colSourceDeletedAt+" IS NULL")
	_, err := exec(ctx, c.db.sql, q)
	if err != nil {
		return fmt.Errorf("record %d refused source deletions of %s: %w", len(ids), container, err)
	}
	return nil
}

// FinishReclaim marks container done (sources_deleted_at; in a dry run sources_verified_at) when no row
// of it is left to do, so ReclaimContainers stops returning it; it reports whether it did. Checking
// and marking are one statement, so a row recorded meanwhile cannot be missed.
func (c *Catalog) FinishReclaim(ctx context.Context, container string, dryRun bool) (bool, error) {
	m := c.m
	mark := "sources_deleted_at"
	if dryRun {
		mark = "sources_verified_at"
	}
	q := c.q("")
	q.add(`UPDATE %[1]s AS d SET %[2]s = %[3]s WHERE d.container = %[4]s AND d.%[2]s IS NULL
		AND NOT EXISTS (SELECT 1 FROM %[5]s AS t WHERE t.%[6]s = %[4]s AND t.%[7]s = %[8]s AND %[9]s)`,
		c.containers(), mark, c.db.d.now(), q.arg(container), c.table(), colContainer, c.col(m.Status),
		q.arg(m.Packed), sourcesLeft(dryRun))
	n, err := exec(ctx, c.db.sql, q)
	if err != nil {
		return false, fmt.Errorf("finish reclaiming %s: %w", container, err)
	}
	// The pass that ends here read every row of the container: recounting them costs as much again,
	// and keeps the counters true whatever happened to the container's rows since it was committed.
	if err := c.recount(ctx, container); err != nil {
		return false, err
	}
	return n == 1, nil
}
