package containercheck

import (
	"context"
	"errors"
	"fmt"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
)

// maxRowProblems caps RowReport.Problems; ProblemCount keeps the total.
const maxRowProblems = 100

// RowReport is the comparison of a committed container's catalog rows with its object.
type RowReport struct {
	// Rows is how many rows the catalog records as packed by the container; Files how many files the
	// object holds.
	Rows, Files int
	// Matched rows have their file in the object exactly where their placement says, or (Unplaced)
	// were packed before placements were recorded and have their name in the object, where a reader
	// finds them through the index.
	Matched, Unplaced int
	ProblemCount      int
	Problems          []error // the first maxRowProblems problems
}

func (r *RowReport) problem(format string, a ...any) {
	r.ProblemCount++
	if len(r.Problems) < maxRowProblems {
		r.Problems = append(r.Problems, fmt.Errorf(format, a...))
	}
}

// Err is nil when every row matches and every file has its row, else a Problem (ErrRows) naming the
// first mismatch and joining the reported ones.
func (r *RowReport) Err() error {
	if r.ProblemCount == 0 {
		return nil
	}
	what := fmt.Sprintf("%d mismatches", r.ProblemCount)
	if r.ProblemCount == 1 {
		what = "1 mismatch"
	}
	return problem(ErrRows, errors.Join(r.Problems...), "%s between the catalog's %d rows and the object's %d files; the first: %v",
		what, r.Rows, r.Files, r.Problems[0])
}

// CompareRows compares the rows the catalog records as packed by the container (catalog.ContainerRows,
// all of them) with the object's files. A row matches when a reader would serve exactly the object's
// bytes for it: its key has its des_containers record, naming this bucket and the object's size, its
// key is the object's, and its placement (offset, size, CRC-32C, external key) is the file's in the
// object. Every file of the object must have exactly one such row.
func (o *Object) CompareRows(ctx context.Context, rows []catalog.ContainerRow) (*RowReport, error) {
	locs, err := o.Locations(ctx)
	if err != nil {
		return nil, err
	}
	return compareRows(o.Bucket, o.Key, o.Reader.Size(), locs, rows), nil
}

func compareRows(bucket, key string, size int64, locs []desformat.Location, rows []catalog.ContainerRow) *RowReport {
	rep := &RowReport{Rows: len(rows), Files: len(locs)}
	files := make(map[string]desformat.Location, len(locs))
	for _, l := range locs {
		files[l.Name] = l
	}
	seen := make(map[string]bool, len(rows))
	badKeys := map[string]bool{} // a key's record is judged once, not once per row
	for i := range rows {
		row := &rows[i]
		if seen[row.Name] {
			rep.problem("%q: the catalog records more than one packed row of this name (row %d is another)", row.Name, row.ID)
			continue
		}
		seen[row.Name] = true
		if !checkRecord(rep, row, bucket, key, size, badKeys) {
			continue
		}
		file, ok := files[row.Name]
		switch {
		case !ok:
			rep.problem("%q (row %d): the catalog records it packed in this container, the object holds no such file", row.Name, row.ID)
		case !row.Placed:
			rep.Matched++
			rep.Unplaced++
		case row.Location != file:
			rep.problem("%q (row %d): the catalog places it at %s, the object has it at %s", row.Name, row.ID, describe(row.Location), describe(file))
		default:
			rep.Matched++
		}
	}
	for _, l := range locs {
		if !seen[l.Name] {
			rep.problem("%q: in the object, but the catalog records no row of it packed in this container", l.Name)
		}
	}
	return rep
}

// checkRecord reports whether the row's container key is this object's, with the record a reader
// relies on (bucket, object size). A wrong record is reported once per key; the row is not matched.
func checkRecord(rep *RowReport, row *catalog.ContainerRow, bucket, key string, size int64, badKeys map[string]bool) bool {
	var why string
	switch {
	case row.Key != key:
		why = fmt.Sprintf("rows of this container are recorded under key %q, the object is %q", row.Key, key)
	case !row.Recorded:
		why = fmt.Sprintf("des_containers has no record of key %q: a reader serves none of its rows", row.Key)
	case row.Bucket != bucket:
		why = fmt.Sprintf("des_containers records key %q in bucket %q, the object is in %q", row.Key, row.Bucket, bucket)
	case row.ObjectSize != size:
		why = fmt.Sprintf("des_containers records a %d-byte object at %q, the object is %d bytes", row.ObjectSize, row.Key, size)
	default:
		return true
	}
	if !badKeys[row.Key] {
		badKeys[row.Key] = true
		rep.problem("%q (row %d): %s", row.Name, row.ID, why)
	} else {
		rep.ProblemCount++ // counted, not repeated
	}
	return false
}

// describe is a placement as a person compares two of them.
func describe(l desformat.Location) string {
	crc := "no crc"
	if l.HasCRC {
		crc = fmt.Sprintf("crc32c %08x", l.CRC32C)
	}
	if l.IsExternal() {
		return fmt.Sprintf("external %q size %d %s", l.ExternalKey, l.Size, crc)
	}
	return fmt.Sprintf("offset %d size %d %s", l.Offset, l.Size, crc)
}
