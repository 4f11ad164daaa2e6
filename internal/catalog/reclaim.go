package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
// of the source, of the shards (all of them when $2 is empty), committed at least $3 ago by the
// database's clock, not finished.
func reclaimWhere(dryRun bool) string {
	w := `d.source = $1 AND (cardinality($2::integer[]) = 0 OR d.shard = ANY($2::integer[]))
		AND d.committed_at <= now() - $3::interval AND d.sources_deleted_at IS NULL`
	if dryRun {
		w += ` AND d.sources_verified_at IS NULL`
	}
	return w
}

// ReclaimContainers returns up to limit committed containers of source (in shards, all when empty),
// committed at least delay ago by the database's clock (the one that stamped committed_at, so a
// packer or controller whose clock is off still waits the delay), whose sources are not all done (in a dry run: not all verified
// either), oldest first, so that the files packed longest ago are reclaimed first and a pass cut short
// by its deadline resumes where it stopped.
func (c *Catalog) ReclaimContainers(ctx context.Context, source string, shards []int32, delay time.Duration, dryRun bool, limit int) ([]ReclaimContainer, error) {
	q := fmt.Sprintf(`SELECT d.container, d.key, d.bucket, d.shard, d.committed_at FROM %s AS d
		WHERE %s ORDER BY d.committed_at, d.container LIMIT $4`, c.m.containersIdent(), reclaimWhere(dryRun))
	rows, err := c.pool.Query(ctx, q, source, nonNil(shards), delay, limit)
	if err != nil {
		return nil, fmt.Errorf("containers to reclaim of %s: %w", source, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReclaimContainer, error) {
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
	q := fmt.Sprintf(`SELECT d.shard, count(*) FROM %s AS d WHERE %s GROUP BY 1`, c.m.containersIdent(), reclaimWhere(dryRun))
	rows, err := c.pool.Query(ctx, q, source, nonNil(shards), delay)
	if err != nil {
		return nil, fmt.Errorf("containers to reclaim per shard of %s: %w", source, err)
	}
	defer rows.Close()
	out := map[int32]int64{}
	for rows.Next() {
		var s int32
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("containers to reclaim per shard of %s: %w", source, err)
		}
		out[s] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("containers to reclaim per shard of %s: %w", source, err)
	}
	return out, nil
}

// nonNil makes an empty shard list an empty array rather than NULL, which cardinality() would not
// count as empty.
func nonNil(shards []int32) []int32 {
	if shards == nil {
		return []int32{}
	}
	return shards
}

// ownRows is the guard of every row statement of reclaiming, for container $1: the row is still packed
// by it (status $2) and the container has its permanent record.
func (c *Catalog) ownRows() string {
	return fmt.Sprintf(`t.%s = $1 AND t.%s = $2 AND EXISTS (SELECT 1 FROM %s AS d WHERE d.container = $1 AND d.key = t.%s)`,
		colContainer, col(c.m.Status), c.m.containersIdent(), colContainerKey)
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
	bucket := "$5::text"
	if m.Bucket != "" {
		bucket = fmt.Sprintf("COALESCE(t.%s, $5::text)", col(m.Bucket))
	}
	q := fmt.Sprintf(`SELECT t.%[1]s, %[2]s, t.%[3]s, t.%[4]s, t.%[5]s, t.%[6]s, t.%[7]s, t.%[8]s, t.%[9]s, t.%[10]s
		FROM %[11]s AS t WHERE %[12]s AND t.%[1]s > $3 AND %[13]s ORDER BY t.%[1]s LIMIT $4`,
		col(m.ID), bucket, col(m.Key), col(m.DesName), col(m.Size), colOffset, colLength, colCRC32C, colExternalKey,
		colSourceETag, m.tableIdent(), c.ownRows(), sourcesLeft(dryRun))
	rows, err := c.pool.Query(ctx, q, container, m.Packed, afterID, limit, m.DefaultBucket)
	if err != nil {
		return nil, fmt.Errorf("rows to reclaim of %s: %w", container, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReclaimRow, error) {
		var rr ReclaimRow
		var off, length, crc *int64
		var ext, etag *string
		if err := r.Scan(&rr.ID, &rr.Bucket, &rr.Key, &rr.Name, &rr.Size, &off, &length, &crc, &ext, &etag); err != nil {
			return rr, err
		}
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
// after the deletions happened, never before; a row already recorded deleted is left as it is, so a
// repeated record changes nothing.
func (c *Catalog) RecordReclaimed(ctx context.Context, container string, deleted, verified []int64) error {
	if len(deleted) == 0 && len(verified) == 0 {
		return nil
	}
	m := c.m
	del := fmt.Sprintf(`UPDATE %s AS t SET %s = now(), %s = COALESCE(t.%s, now())
		WHERE %s AND t.%s = ANY($3) AND t.%s IS NULL`,
		m.tableIdent(), colSourceDeletedAt, colSourceVerifiedAt, colSourceVerifiedAt, c.ownRows(), col(m.ID), colSourceDeletedAt)
	ver := fmt.Sprintf(`UPDATE %s AS t SET %s = now() WHERE %s AND t.%s = ANY($3) AND t.%s IS NULL`,
		m.tableIdent(), colSourceVerifiedAt, c.ownRows(), col(m.ID), colSourceDeletedAt)
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if len(deleted) > 0 {
			if _, err := tx.Exec(ctx, del, container, m.Packed, deleted); err != nil {
				return err
			}
		}
		if len(verified) > 0 {
			if _, err := tx.Exec(ctx, ver, container, m.Packed, verified); err != nil {
				return err
			}
		}
		return nil
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
	q := fmt.Sprintf(`UPDATE %s AS t SET %s = l.reason FROM unnest($3::bigint[], $4::text[]) AS l(id, reason)
		WHERE %s AND t.%s = l.id AND t.%s IS NULL`,
		m.tableIdent(), colSourceRefused, c.ownRows(), col(m.ID), colSourceDeletedAt)
	if _, err := c.pool.Exec(ctx, q, container, m.Packed, ids, reasons); err != nil {
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
	q := fmt.Sprintf(`UPDATE %[1]s AS d SET %[2]s = now() WHERE d.container = $1 AND d.%[2]s IS NULL
		AND NOT EXISTS (SELECT 1 FROM %[3]s AS t WHERE t.%[4]s = $1 AND t.%[5]s = $2 AND %[6]s)`,
		m.containersIdent(), mark, m.tableIdent(), colContainer, col(m.Status), sourcesLeft(dryRun))
	tag, err := c.pool.Exec(ctx, q, container, m.Packed)
	if err != nil {
		return false, fmt.Errorf("finish reclaiming %s: %w", container, err)
	}
	return tag.RowsAffected() == 1, nil
}
