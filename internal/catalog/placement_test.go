package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/test/testworld"
)

// TestCommitRecordsPlacements: after a commit, Locate answers each packed name with exactly the
// placement the commit was given and the container's bucket from its permanent record, across more
// rows than one statement places; names that are not packed are absent.
func TestCommitRecordsPlacements(t *testing.T) {
	testworld.ForEachDialect(t, testCommitRecordsPlacements)
}

func testCommitRecordsPlacements(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	const n = 12_345 // more than two placement statements
	c, _ := newCatalog(t, d, n, 1)
	claimed, err := c.Claim(ctx, 0, "c1", n-5) // the last five rows stay ready
	if err != nil {
		t.Fatal(err)
	}
	rec := record("c1", claimed)
	// An external payload, and one without a checksum (as in a v1 archive).
	rec.Placements[7].Offset, rec.Placements[7].ExternalKey = 0, "archive/2026-11-26/0000/c1/_bigFiles/N_8"
	rec.Placements[9].HasCRC, rec.Placements[9].CRC32C = false, 0
	if err := c.Commit(ctx, rec); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, n+1)
	for i := 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("N_%d", i))
	}
	names = append(names, "no-such-name")
	got, err := c.Locate(ctx, names)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(claimed) {
		t.Fatalf("Locate found %d names, %d are packed", len(got), len(claimed))
	}
	for _, p := range rec.Placements {
		fl, ok := got[p.Name]
		want := catalog.FileLocation{Key: rec.Key, Bucket: rec.Bucket, ObjectSize: rec.ObjectSize, Placed: true, Location: p.Location}
		if !ok || fl != want {
			t.Fatalf("Locate(%q) = %+v (found %v), want %+v", p.Name, fl, ok, want)
		}
	}
	for _, name := range []string{fmt.Sprintf("N_%d", n), "no-such-name"} {
		if fl, ok := got[name]; ok {
			t.Errorf("Locate answered %q, which is not packed: %+v", name, fl)
		}
	}
}

// TestCommitRefusesPlacementsOfOtherRows: a commit must pack exactly the rows claimed by the
// container. Placements naming a row claimed by another container, or leaving one of its own rows out,
// change nothing.
func TestCommitRefusesPlacementsOfOtherRows(t *testing.T) {
	testworld.ForEachDialect(t, testCommitRefusesPlacementsOfOtherRows)
}

func testCommitRefusesPlacementsOfOtherRows(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		alter func(own, other []catalog.Row) []catalog.Row
	}{
		{"a row of another container instead of one of its own", func(own, other []catalog.Row) []catalog.Row {
			return append(append([]catalog.Row{}, own[1:]...), other[0])
		}},
		{"one of its own rows left out", func(own, _ []catalog.Row) []catalog.Row { return own[1:] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newCatalog(t, d, 10, 1)
			own, err := c.Claim(ctx, 0, "c1", 4)
			if err != nil {
				t.Fatal(err)
			}
			other, err := c.Claim(ctx, 0, "c2", 4)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Commit(ctx, record("c1", tc.alter(own, other))); !errors.Is(err, catalog.ErrRolledBack) {
				t.Fatalf("commit: %v, want ErrRolledBack", err)
			}
			assertCounts(t, c, catalog.Counts{Ready: 2, Claimed: 8})
			if done, _ := c.IsCommitted(ctx, "c1"); done {
				t.Fatal("the refused commit left a record")
			}
		})
	}
}

// TestLocateRowPackedWithoutPlacement: rows packed before placements were recorded are still found,
// with their container and size only, so a reader opens that container instead of searching for it.
func TestLocateRowPackedWithoutPlacement(t *testing.T) {
	testworld.ForEachDialect(t, testLocateRowPackedWithoutPlacement)
}

func testLocateRowPackedWithoutPlacement(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	c, pool := newCatalog(t, d, 3, 1)
	claimed, _ := c.Claim(ctx, 0, "c1", 3)
	if err := c.Commit(ctx, record("c1", claimed)); err != nil {
		t.Fatal(err)
	}
	mustExec(t, pool, `UPDATE objects SET des_offset = NULL, des_length = NULL, des_crc32c = NULL WHERE id = $1`, claimed[1].ID)
	got, err := c.Locate(ctx, []string{claimed[1].Name})
	if err != nil {
		t.Fatal(err)
	}
	want := catalog.FileLocation{Key: "archive/2026-11-26/000/c1.des", Bucket: "archive", ObjectSize: 100,
		Location: desformat.Location{Name: claimed[1].Name, Size: claimed[1].Size}}
	if got[claimed[1].Name] != want {
		t.Fatalf("Locate = %+v, want %+v", got[claimed[1].Name], want)
	}
}

// TestClaimedIDsAndPlaceClaimed: roll-forward pairs an object's locations with the claimed rows.
func TestClaimedIDsAndPlaceClaimed(t *testing.T) {
	testworld.ForEachDialect(t, testClaimedIDsAndPlaceClaimed)
}

func testClaimedIDsAndPlaceClaimed(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	c, _ := newCatalog(t, d, 4, 1)
	claimed, _ := c.Claim(ctx, 0, "c1", 3)
	ids, err := c.ClaimedIDs(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || ids[claimed[2].Name] != claimed[2].ID {
		t.Fatalf("ClaimedIDs = %v for claimed rows %v", ids, claimed)
	}
	loc := func(name string) desformat.Location { return desformat.Location{Name: name, Size: 1} }
	for _, tc := range []struct {
		name string
		locs []desformat.Location
		ok   bool
	}{
		{"exactly the claimed rows", []desformat.Location{loc(claimed[2].Name), loc(claimed[0].Name), loc(claimed[1].Name)}, true},
		{"one row missing from the object", []desformat.Location{loc(claimed[0].Name), loc(claimed[1].Name)}, false},
		{"a name nobody claimed", []desformat.Location{loc(claimed[0].Name), loc(claimed[1].Name), loc("N_4")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := catalog.PlaceClaimed(tc.locs, ids)
			if !tc.ok {
				if !errors.Is(err, catalog.ErrPlacementMismatch) {
					t.Fatalf("PlaceClaimed = %v, %v; want ErrPlacementMismatch", ps, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range ps {
				if p.Name != tc.locs[i].Name || p.ID != ids[p.Name] {
					t.Errorf("placement %d = %+v", i, p)
				}
			}
		})
	}
}

// TestContainerRows: a container's packed rows come back in id order, page by page, each with the
// placement Locate gives it; a row whose key has no des_containers record is returned unrecorded, and
// rows of other containers or not packed are not returned.
func TestContainerRows(t *testing.T) { testworld.ForEachDialect(t, testContainerRows) }

func testContainerRows(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	c, pool := newCatalog(t, d, 6, 1)
	mine, _ := c.Claim(ctx, 0, "c1", 4)
	other, _ := c.Claim(ctx, 0, "c2", 1)
	rec := record("c1", mine)
	for _, r := range []catalog.Record{rec, record("c2", other)} {
		if err := c.Commit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(t, pool, `UPDATE objects SET des_container_key = 'elsewhere.des' WHERE id = $1`, mine[3].ID)
	var got []catalog.ContainerRow
	for after := int64(0); ; {
		page, err := c.ContainerRows(ctx, "c1", after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].ID
	}
	if len(got) != len(mine) {
		t.Fatalf("ContainerRows returned %d rows, c1 packed %d: %+v", len(got), len(mine), got)
	}
	for i, p := range rec.Placements {
		want := catalog.ContainerRow{ID: p.ID, Recorded: true, FileLocation: catalog.FileLocation{
			Key: rec.Key, Bucket: rec.Bucket, ObjectSize: rec.ObjectSize, Placed: true, Location: p.Location}}
		if i == 3 {
			want.Recorded, want.Key, want.Bucket, want.ObjectSize = false, "elsewhere.des", "", 0
		}
		if got[i] != want {
			t.Errorf("row %d = %+v, want %+v", i, got[i], want)
		}
	}
}
