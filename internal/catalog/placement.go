package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/datavision/des/internal/desformat"
)

// Placement is where one committed row's payload is: the commit writes it into the row's DES-owned
// location columns (des_offset, des_length, des_crc32c, des_external_key) in the transaction that
// packs the row, so that a reader can serve the file by name with one ranged GET and check it, without
// listing the archive or opening the container's index.
type Placement struct {
	// ID is the row's id (the mapped id column).
	ID int64
	desformat.Location
	// SourceETag is the ETag of the source object as the packer fetched it ("" when unknown, as in a
	// recovery's roll-forward): source deletion deletes only that object (reclaim.go).
	SourceETag string
}

// PlacementSource is a commit's placements, one per file, in any order. A commit reads them in
// chunks inside its transaction, and reads them again from the first if the transaction is tried
// again, so Chunks must yield the same placements each time.
type PlacementSource interface {
	// Len is the number of placements Chunks yields.
	Len() int64
	// Chunks calls fn with consecutive chunks of at most size placements, from the first, and stops
	// at fn's first error. fn does not keep the chunk.
	Chunks(size int, fn func([]Placement) error) error
}

// PlacementList is a PlacementSource held in memory.
type PlacementList []Placement

// Len implements PlacementSource.
func (l PlacementList) Len() int64 { return int64(len(l)) }

// Chunks implements PlacementSource.
func (l PlacementList) Chunks(size int, fn func([]Placement) error) error {
	for start := 0; start < len(l); start += size {
		if err := fn(l[start:min(start+size, len(l))]); err != nil {
			return err
		}
	}
	return nil
}

// placementChunk bounds the rows one statement of a commit places: a million-file container is
// committed in a few hundred statements of one transaction instead of one statement whose parameter
// arrays alone would be tens of megabytes.
const placementChunk = 5000

// packPlaced moves the rows of placed (rec's placements) from claimed to packed with their
// placements, inside tx. The rows claimed by rec.Container must be exactly those: otherwise someone rolled the
// container back (some rows are gone) or it holds rows it did not write, and ErrRolledBack makes the
// caller's transaction change nothing.
func (c *Catalog) packPlaced(ctx context.Context, tx *sql.Tx, rec Record, placed PlacementSource) error {
	m := c.m
	count := c.q("")
	count.add(`SELECT count(*) FROM %s WHERE %s = %s AND %s = %s`,
		c.table(), colContainer, count.arg(rec.Container), c.col(m.Status), count.arg(m.Claimed))
	var claimed int64
	if err := queryRow(ctx, tx, count, &claimed); err != nil {
		return err
	}
	if claimed != rec.Files {
		return fmt.Errorf("%w: %d rows are claimed by the container, it holds %d files", ErrRolledBack, claimed, rec.Files)
	}
	var n int64
	err := placed.Chunks(placementChunk, func(chunk []Placement) error {
		moved, err := exec(ctx, tx, c.placeStatement(rec, chunk))
		if err != nil {
			return err
		}
		if moved != int64(len(chunk)) {
			return fmt.Errorf("%w: %d of %d placed rows were claimed by the container", ErrRolledBack, moved, len(chunk))
		}
		n += int64(len(chunk))
		return nil
	})
	if err != nil {
		return err
	}
	// Every chunk placed only rows claimed by the container, and as many as it claims: unless the
	// source yielded fewer than it said, which must not commit a container with unplaced rows.
	if n != rec.Files {
		return fmt.Errorf("the placements yielded %d rows, the container holds %d files", n, rec.Files)
	}
	return nil
}

// placeStatement moves the rows of chunk, claimed by rec.Container, to packed in rec.Key with their
// placements. A packing starts source deletion anew: whatever an earlier packing of the row recorded
// about its source (it cannot have been committed, but the columns are the user's table's) is cleared.
func (c *Catalog) placeStatement(rec Record, chunk []Placement) *query {
	m := c.m
	a := placementColumns(chunk)
	q := c.q("")
	rows := q.rows("l", rowCol{"id", "bigint", a.ids}, rowCol{"off", "bigint", a.offs}, rowCol{"len", "bigint", a.lens},
		rowCol{"crc", "bigint", a.crcs}, rowCol{"ext", "text", a.exts}, rowCol{"etag", "text", a.etags})
	return q.updateJoin(c.table(), "t", rows, "t."+c.col(m.ID)+" = l.id", []set{
		{c.col(m.Status), q.arg(m.Packed)}, {colContainerKey, q.arg(rec.Key)}, {colPackedAt, c.db.d.now()},
		{colOffset, "l.off"}, {colLength, "l.len"}, {colCRC32C, "l.crc"}, {colExternalKey, "l.ext"},
		{colSourceETag, "l.etag"}, {colSourceVerifiedAt, "NULL"}, {colSourceDeletedAt, "NULL"}, {colSourceRefused, "NULL"},
	}, fmt.Sprintf("t.%s = %s AND t.%s = %s", colContainer, q.arg(rec.Container), c.col(m.Status), q.arg(m.Claimed)))
}

// placementArrays are the parameter arrays of the placing statement, one element per placement.
type placementArrays struct {
	ids, offs, lens []int64
	crcs            []*int64
	exts, etags     []*string
}

// placementColumns turns placements into the statement's parameter arrays; a missing checksum (a v1
// archive), an internal payload's external key or an unknown source ETag is NULL.
func placementColumns(ps []Placement) placementArrays {
	n := len(ps)
	a := placementArrays{ids: make([]int64, n), offs: make([]int64, n), lens: make([]int64, n),
		crcs: make([]*int64, n), exts: make([]*string, n), etags: make([]*string, n)}
	for i := range ps {
		p := &ps[i]
		a.ids[i], a.offs[i], a.lens[i] = p.ID, p.Offset, p.Size
		if p.HasCRC {
			v := int64(p.CRC32C)
			a.crcs[i] = &v
		}
		if p.ExternalKey != "" {
			a.exts[i] = &p.ExternalKey
		}
		if p.SourceETag != "" {
			a.etags[i] = &p.SourceETag
		}
	}
	return a
}

// ClaimedIDs returns the rows claimed by container, by DES name. Recovery uses it to roll a container
// forward: the object's index gives each name's placement, this gives each name's row.
func (c *Catalog) ClaimedIDs(ctx context.Context, container string) (map[string]int64, error) {
	m := c.m
	q := c.q("")
	q.add(`SELECT %s, %s FROM %s WHERE %s = %s AND %s = %s`,
		c.col(m.DesName), c.col(m.ID), c.table(), colContainer, q.arg(container), c.col(m.Status), q.arg(m.Claimed))
	out, err := collectMap(ctx, c.db.sql, q, func(r *sql.Rows) (name string, id int64, err error) {
		err = r.Scan(&name, &id)
		return name, id, err
	})
	if err != nil {
		return nil, fmt.Errorf("rows claimed by %s: %w", container, err)
	}
	return out, nil
}

// ErrPlacementMismatch means the object's names are not the rows claimed by the container.
var ErrPlacementMismatch = errors.New("the object's files are not the rows claimed by the container")

// PlaceClaimed pairs each location of a container's object with the row claimed under its name
// (claimed, from ClaimedIDs). Every location must have a claimed row and every claimed row a location.
func PlaceClaimed(locs []desformat.Location, claimed map[string]int64) ([]Placement, error) {
	if len(locs) != len(claimed) {
		return nil, fmt.Errorf("%w: the object holds %d files, %d rows are claimed", ErrPlacementMismatch, len(locs), len(claimed))
	}
	out := make([]Placement, len(locs))
	for i, l := range locs {
		id, ok := claimed[l.Name]
		if !ok {
			return nil, fmt.Errorf("%w: %q is in the object but no row claimed by the container has that name", ErrPlacementMismatch, l.Name)
		}
		out[i] = Placement{ID: id, Location: l}
	}
	return out, nil
}

// FileLocation is where the catalog says a packed file is.
type FileLocation struct {
	// Key, Bucket and ObjectSize are the committed container's object (from des_containers).
	Key, Bucket string
	ObjectSize  int64
	// Placed is false for rows packed before placements were recorded: only the container is known,
	// and Location holds just the size.
	Placed bool
	desformat.Location
}

// Locate returns the packed files among names, by name; names that are not packed (unknown, or not
// yet committed) are absent from the result. Only rows whose container has its permanent record are
// returned, so a reader never serves a container that was not committed. It needs nothing but SELECT
// on the catalog table and des_containers: a read-only role suffices.
func (c *Catalog) Locate(ctx context.Context, names []string) (map[string]FileLocation, error) {
	m := c.m
	q := c.q("")
	// Newest packing first, so that the first row of a name is kept should the catalog hold it twice.
	q.add(`SELECT t.%[1]s, t.%[2]s, d.bucket, d.object_size, t.%[3]s, t.%[4]s, t.%[5]s, t.%[6]s, t.%[7]s
		FROM %[8]s AS t JOIN %[9]s AS d ON d.%[10]s = t.%[2]s
		WHERE %[11]s AND t.%[12]s = %[13]s
		ORDER BY t.%[1]s, t.%[14]s IS NULL, t.%[14]s DESC`,
		c.col(m.DesName), colContainerKey, c.col(m.Size), colOffset, colLength, colCRC32C, colExternalKey,
		c.table(), c.containers(), c.col("key"), q.in("t."+c.col(m.DesName), names), c.col(m.Status), q.arg(m.Packed),
		colPackedAt)
	found, err := collect(ctx, c.db.sql, q, func(r *sql.Rows) (FileLocation, error) {
		var fl FileLocation
		var size int64
		var off, length, crc *int64
		var ext *string
		if err := r.Scan(&fl.Name, &fl.Key, &fl.Bucket, &fl.ObjectSize, &size, &off, &length, &crc, &ext); err != nil {
			return fl, err
		}
		setPlacement(&fl, size, off, length, crc, ext)
		return fl, nil
	})
	if err != nil {
		return nil, fmt.Errorf("locate %d names: %w", len(names), err)
	}
	out := make(map[string]FileLocation, len(found))
	for _, fl := range found {
		if _, dup := out[fl.Name]; !dup {
			out[fl.Name] = fl
		}
	}
	return out, nil
}

// ContainerRow is one row packed by a container, as a verifier compares it with the container's
// object: the row's id and where the catalog says its payload is.
type ContainerRow struct {
	ID int64
	// Recorded is false when des_containers has no record of the row's container key: a reader's
	// Locate would not return the row at all. Bucket and ObjectSize are then empty.
	Recorded bool
	FileLocation
}

// ContainerRows returns up to limit rows packed by container, in id order after afterID, each with
// the placement Locate would give it (the key's des_containers record supplies bucket and object
// size). Unlike Locate it finds rows by container, not by name, so a verifier also sees rows that
// name files the object does not hold. A read-only role suffices.
func (c *Catalog) ContainerRows(ctx context.Context, container string, afterID int64, limit int) ([]ContainerRow, error) {
	m := c.m
	q := c.q("")
	// LEFT JOIN: a row whose key has no record is a finding, not something to leave out.
	q.add(`SELECT t.%[1]s, t.%[2]s, t.%[3]s, d.bucket, d.object_size, t.%[4]s, t.%[5]s, t.%[6]s, t.%[7]s, t.%[8]s
		FROM %[9]s AS t LEFT JOIN %[10]s AS d ON d.%[11]s = t.%[3]s
		WHERE t.%[12]s = %[13]s AND t.%[14]s = %[15]s AND t.%[1]s > %[16]s ORDER BY t.%[1]s LIMIT %[17]s`,
		c.col(m.ID), c.col(m.DesName), colContainerKey, c.col(m.Size), colOffset, colLength, colCRC32C, colExternalKey,
		c.table(), c.containers(), c.col("key"), colContainer, q.arg(container), c.col(m.Status), q.arg(m.Packed),
		q.arg(afterID), q.arg(limit))
	out, err := collect(ctx, c.db.sql, q, func(r *sql.Rows) (ContainerRow, error) {
		var cr ContainerRow
		var key, bucket sql.NullString
		var objectSize sql.NullInt64
		var size int64
		var off, length, crc *int64
		var ext *string
		if err := r.Scan(&cr.ID, &cr.Name, &key, &bucket, &objectSize, &size, &off, &length, &crc, &ext); err != nil {
			return cr, err
		}
		cr.Key, cr.Recorded = key.String, bucket.Valid
		cr.Bucket, cr.ObjectSize = bucket.String, objectSize.Int64
		setPlacement(&cr.FileLocation, size, off, length, crc, ext)
		return cr, nil
	})
	if err != nil {
		return nil, fmt.Errorf("rows packed by %s: %w", container, err)
	}
	return out, nil
}

// setPlacement fills fl's placement from a row's columns as Locate reads them: without an offset and
// a length the row was packed before placements were recorded, and only its catalog size is known.
func setPlacement(fl *FileLocation, size int64, off, length, crc *int64, ext *string) {
	fl.Size = size
	if off != nil && length != nil {
		fl.Placed, fl.Offset, fl.Size = true, *off, *length
	}
	if crc != nil {
		fl.CRC32C, fl.HasCRC = uint32(*crc), true
	}
	if ext != nil {
		fl.ExternalKey = *ext
	}
}
