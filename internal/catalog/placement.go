package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

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

// placementChunk bounds the rows one statement of a commit places: a million-file container is
// committed in a few hundred statements of one transaction instead of one statement whose parameter
// arrays alone would be tens of megabytes.
const placementChunk = 5000

// packPlaced moves the rows of rec.Placements from claimed to packed with their placements, inside
// tx. The rows claimed by rec.Container must be exactly those: otherwise someone rolled the
// container back (some rows are gone) or it holds rows it did not write, and ErrRolledBack makes the
// caller's transaction change nothing.
func (c *Catalog) packPlaced(ctx context.Context, tx pgx.Tx, rec Record) error {
	m := c.m
	var claimed int64
	err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s = $1 AND %s = $2`,
		m.tableIdent(), colContainer, col(m.Status)), rec.Container, m.Claimed).Scan(&claimed)
	if err != nil {
		return err
	}
	if claimed != rec.Files {
		return fmt.Errorf("%w: %d rows are claimed by the container, it holds %d files", ErrRolledBack, claimed, rec.Files)
	}
	// A packing starts source deletion anew: whatever an earlier packing of the row recorded about
	// its source (it cannot have been committed, but the columns are the user's table's) is cleared.
	update := fmt.Sprintf(`UPDATE %[1]s AS t SET %[2]s = $1, %[3]s = $2, %[4]s = now(),
		%[5]s = l.off, %[6]s = l.len, %[7]s = l.crc, %[8]s = l.ext,
		%[11]s = l.etag, %[12]s = NULL, %[13]s = NULL, %[14]s = NULL
		FROM unnest($5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::text[])
			AS l(id, off, len, crc, ext, etag)
		WHERE t.%[9]s = l.id AND t.%[10]s = $3 AND t.%[2]s = $4`,
		m.tableIdent(), col(m.Status), colContainerKey, colPackedAt,
		colOffset, colLength, colCRC32C, colExternalKey, col(m.ID), colContainer,
		colSourceETag, colSourceVerifiedAt, colSourceDeletedAt, colSourceRefused)
	for start := 0; start < len(rec.Placements); start += placementChunk {
		chunk := rec.Placements[start:min(start+placementChunk, len(rec.Placements))]
		a := placementColumns(chunk)
		tag, err := tx.Exec(ctx, update, m.Packed, rec.Key, rec.Container, m.Claimed, a.ids, a.offs, a.lens, a.crcs, a.exts, a.etags)
		if err != nil {
			return err
		}
		if moved := tag.RowsAffected(); moved != int64(len(chunk)) {
			return fmt.Errorf("%w: %d of %d placed rows were claimed by the container", ErrRolledBack, moved, len(chunk))
		}
	}
	return nil
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
	rows, err := c.pool.Query(ctx, fmt.Sprintf(`SELECT %s, %s FROM %s WHERE %s = $1 AND %s = $2`,
		col(m.DesName), col(m.ID), m.tableIdent(), colContainer, col(m.Status)), container, m.Claimed)
	if err != nil {
		return nil, fmt.Errorf("rows claimed by %s: %w", container, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var id int64
		if err := rows.Scan(&name, &id); err != nil {
			return nil, fmt.Errorf("rows claimed by %s: %w", container, err)
		}
		out[name] = id
	}
	if err := rows.Err(); err != nil {
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
	// DISTINCT ON keeps one row per name, the latest packed, should the catalog hold a name twice.
	q := fmt.Sprintf(`SELECT DISTINCT ON (t.%[1]s) t.%[1]s, t.%[2]s, d.bucket, d.object_size, t.%[3]s,
			t.%[4]s, t.%[5]s, t.%[6]s, t.%[7]s
		FROM %[8]s AS t JOIN %[9]s AS d ON d.key = t.%[2]s
		WHERE t.%[1]s = ANY($1) AND t.%[10]s = $2
		ORDER BY t.%[1]s, t.%[11]s DESC NULLS LAST`,
		col(m.DesName), colContainerKey, col(m.Size), colOffset, colLength, colCRC32C, colExternalKey,
		m.tableIdent(), m.containersIdent(), col(m.Status), colPackedAt)
	rows, err := c.pool.Query(ctx, q, names, m.Packed)
	if err != nil {
		return nil, fmt.Errorf("locate %d names: %w", len(names), err)
	}
	defer rows.Close()
	out := make(map[string]FileLocation, len(names))
	for rows.Next() {
		var fl FileLocation
		var size int64
		var off, length, crc *int64
		var ext *string
		if err := rows.Scan(&fl.Name, &fl.Key, &fl.Bucket, &fl.ObjectSize, &size, &off, &length, &crc, &ext); err != nil {
			return nil, fmt.Errorf("locate %d names: %w", len(names), err)
		}
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
		out[fl.Name] = fl
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("locate %d names: %w", len(names), err)
	}
	return out, nil
}
