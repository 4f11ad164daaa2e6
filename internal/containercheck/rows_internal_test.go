package containercheck

import (
	"errors"
	"strings"
	"testing"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
)

// TestCompareRows: every way a catalog row can disagree with the object is a finding naming the
// file, and a row packed before placements were recorded matches by name.
func TestCompareRows(t *testing.T) {
	const bucket, key, size = "archive", "k.des", 1000
	locs := []desformat.Location{
		{Name: "a", Offset: 16, Size: 10, CRC32C: 1, HasCRC: true},
		{Name: "b", Offset: 26, Size: 20, CRC32C: 2, HasCRC: true},
		{Name: "big", Size: 500, CRC32C: 3, HasCRC: true, ExternalKey: "k/_bigFiles/big"},
	}
	good := func() []catalog.ContainerRow {
		var rows []catalog.ContainerRow
		for i, l := range locs {
			rows = append(rows, catalog.ContainerRow{ID: int64(i + 1), Recorded: true, FileLocation: catalog.FileLocation{
				Key: key, Bucket: bucket, ObjectSize: size, Placed: true, Location: l}})
		}
		return rows
	}
	for _, tc := range []struct {
		name     string
		alter    func(rows []catalog.ContainerRow) []catalog.ContainerRow
		problems int
		inText   string
		matched  int
	}{
		{"all match", func(r []catalog.ContainerRow) []catalog.ContainerRow { return r }, 0, "", 3},
		{"packed before placements", func(r []catalog.ContainerRow) []catalog.ContainerRow {
			r[1].Placed, r[1].Offset = false, 0
			return r
		}, 0, "", 3},
		{"wrong offset", func(r []catalog.ContainerRow) []catalog.ContainerRow {
			r[1].Offset++
			return r
		}, 1, `"b" (row 2): the catalog places it at offset 27 size 20 crc32c 00000002, the object has it at offset 26`, 2},
		{"wrong size", func(r []catalog.ContainerRow) []catalog.ContainerRow {
			r[0].Size = 11
			return r
		}, 1, `"a" (row 1): the catalog places it at offset 16 size 11`, 2},
		{"wrong checksum", func(r []catalog.ContainerRow) []catalog.ContainerRow {
			r[0].CRC32C = 9
			return r
		}, 1, "crc32c 00000009", 2},
		{"internal where the object has it external", func(r []catalog.ContainerRow) []catalog.ContainerRow {
			r[2].ExternalKey, r[2].Offset = "", 46
			return r
		}, 1, `the object has it at external "k/_bigFiles/big"`, 2},
		{"a row for a file the object lacks", func(r []catalog.ContainerRow) []catalog.ContainerRow {
			x := r[0]
			x.ID, x.Name = 9, "ghost"
			return append(r, x)
		}, 1, `"ghost" (row 9): the catalog records it packed in this container, the object holds no such file`, 3},
		{"a file without its row", func(r []catalog.ContainerRow) []catalog.ContainerRow { return r[:2] }, 1,
			`"big": in the object, but the catalog records no row of it`, 2},
		{"two rows of one name", func(r []catalog.ContainerRow) []catalog.ContainerRow {
			x := r[0]
			x.ID = 7
			return append(r, x)
		}, 1, `"a": the catalog records more than one packed row of this name (row 7 is another)`, 3},
		{"no des_containers record", func(r []catalog.ContainerRow) []catalog.ContainerRow {
			for i := range r {
				r[i].Recorded, r[i].Bucket, r[i].ObjectSize = false, "", 0
			}
			return r
		}, 3, `des_containers has no record of key "k.des"`, 0},
		{"another object size recorded", func(r []catalog.ContainerRow) []catalog.ContainerRow {
			for i := range r {
				r[i].ObjectSize = 999
			}
			return r
		}, 3, "des_containers records a 999-byte object", 0},
		{"another bucket recorded", func(r []catalog.ContainerRow) []catalog.ContainerRow {
			for i := range r {
				r[i].Bucket = "other"
			}
			return r
		}, 3, `in bucket "other", the object is in "archive"`, 0},
		{"another key", func(r []catalog.ContainerRow) []catalog.ContainerRow {
			r[0].Key = "x.des"
			return r
		}, 1, `rows of this container are recorded under key "x.des"`, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := compareRows(bucket, key, size, locs, tc.alter(good()))
			if rep.ProblemCount != tc.problems || rep.Matched != tc.matched {
				t.Fatalf("%d problems, %d matched, want %d, %d: %v", rep.ProblemCount, rep.Matched, tc.problems, tc.matched, rep.Problems)
			}
			err := rep.Err()
			if tc.problems == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrRows) || !strings.Contains(err.Error(), tc.inText) {
				t.Fatalf("Err() = %v, want ErrRows saying %q", err, tc.inText)
			}
			// A record problem shared by every row is said once, and counted for each.
			if len(rep.Problems) > 1 && strings.Contains(tc.inText, "des_containers") {
				t.Fatalf("the record problem is repeated: %v", rep.Problems)
			}
		})
	}
}
