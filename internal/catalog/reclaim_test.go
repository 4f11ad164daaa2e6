package catalog_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/test/testworld"
)

// commitWithETags claims n rows of shard 0 for container and commits them with an ETag per row.
func commitWithETags(t *testing.T, c *catalog.Catalog, container string, n int, etag func(id int64) string) []catalog.Row {
	t.Helper()
	ctx := context.Background()
	rows, err := c.Claim(ctx, 0, container, n)
	if err != nil {
		t.Fatal(err)
	}
	rec := record(container, rows)
	rec.Key = "archive/" + container + ".des"
	for i := range rec.Placements {
		rec.Placements[i].SourceETag = etag(rec.Placements[i].ID)
	}
	if err := c.Commit(ctx, rec); err != nil {
		t.Fatal(err)
	}
	return rows
}

func reclaimIDs(t *testing.T, c *catalog.Catalog, container string, dryRun bool) []int64 {
	t.Helper()
	rows, err := c.ReclaimRows(context.Background(), container, catalog.FirstID, dryRun, 1000)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	return ids
}

func containerNames(t *testing.T, c *catalog.Catalog, dryRun bool) []string {
	t.Helper()
	cs, err := c.ReclaimContainers(context.Background(), "src", nil, 0, dryRun, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rc := range cs {
		out = append(out, rc.Container)
	}
	return out
}

// TestReclaimOffersOnlyCommittedRows: a rolled-back container's rows are never offered, its container
// never listed; a row packed again in a new container after the roll-back carries the new ETag; the
// rows carry their placement and ETag; a roll-forward's rows (no ETag) carry none.
func TestReclaimOffersOnlyCommittedRows(t *testing.T) {
	testworld.ForEachDialect(t, testReclaimOffersOnlyCommittedRows)
}

func testReclaimOffersOnlyCommittedRows(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	c, pool := newCatalog(t, d, 9, 1)
	first := commitWithETags(t, c, "c1", 3, func(id int64) string { return fmt.Sprintf(`"old-%d"`, id) })

	rolled, err := c.Claim(ctx, 0, "c2", 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := reclaimIDs(t, c, "c2", false); len(got) != 0 {
		t.Fatalf("claimed rows of an uncommitted container offered: %v", got)
	}
	if _, err := c.RollBack(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	// A container record whose rows are not packed by it (a hand-made record) offers nothing either.
	mustExec(t, pool, `INSERT INTO des_containers (`+pool.Ident("key")+`, container, bucket, source, shard, day, files, bytes, object_size,
		payload_checksum, index_checksum, writer, committed_at) VALUES ('k2', 'c2', 'archive', 'src', 0, '2026-11-26', 3, 3, 3, 'p', 'i', 'w', `+pool.Ago(time.Hour)+`)`)
	if got := reclaimIDs(t, c, "c2", false); len(got) != 0 {
		t.Fatalf("rolled-back rows offered: %v", got)
	}
	mustExec(t, pool, `DELETE FROM des_containers WHERE container = 'c2'`)

	again := commitWithETags(t, c, "c3", 3, func(id int64) string { return fmt.Sprintf(`"new-%d"`, id) })
	if again[0].ID != rolled[0].ID {
		t.Fatalf("re-claim took rows %v, the rolled-back ones were %v", again, rolled)
	}
	rows, err := c.ReclaimRows(ctx, "c3", catalog.FirstID, false, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		want := fmt.Sprintf(`"new-%d"`, r.ID)
		if r.SourceETag != want || r.ID != again[i].ID || r.Key != again[i].Key || r.Bucket != "source-bucket" ||
			!r.HasCRC || r.CRC32C != uint32(r.ID)*2654435761 || r.Location.Size != again[i].Size {
			t.Errorf("row %d = %+v, want ETag %s and the committed placement", i, r, want)
		}
	}
	if got, want := containerNames(t, c, false), []string{"c1", "c3"}; !slices.Equal(got, want) {
		t.Fatalf("containers to reclaim = %v, want %v", got, want)
	}
	if got := reclaimIDs(t, c, "c1", false); len(got) != len(first) {
		t.Fatalf("c1 offers %v", got)
	}
	// Paging: after the first id only the rest.
	page, _ := c.ReclaimRows(ctx, "c1", first[0].ID, false, 1)
	if len(page) != 1 || page[0].ID != first[1].ID {
		t.Fatalf("page after %d = %+v", first[0].ID, page)
	}

	// A roll-forward places without ETags.
	claimed, _ := c.Claim(ctx, 0, "c4", 3)
	rec := record("c4", claimed)
	rec.Key = "archive/c4.des"
	if err := c.Commit(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rows, _ = c.ReclaimRows(ctx, "c4", catalog.FirstID, false, 10)
	for _, r := range rows {
		if r.SourceETag != "" {
			t.Errorf("row %d packed without an ETag has %q", r.ID, r.SourceETag)
		}
	}
}

// TestReclaimRecordAndFinish walks one container through a dry run and a real pass: what each
// statement records, what is offered next, when the container is finished, and the counts.
func TestReclaimRecordAndFinish(t *testing.T) {
	testworld.ForEachDialect(t, testReclaimRecordAndFinish)
}

func testReclaimRecordAndFinish(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	c, _ := newCatalog(t, d, 6, 1)
	rows := commitWithETags(t, c, "c1", 5, func(id int64) string { return fmt.Sprint(id) })
	id := func(i int) int64 { return rows[i].ID }
	type step struct {
		name              string
		do                func() error
		dryOffers, offers []int64
		finishDry, finish bool
		counts            catalog.Counts
	}
	all := []int64{id(0), id(1), id(2), id(3), id(4)}
	steps := []step{
		{name: "nothing yet", do: func() error { return nil },
			dryOffers: all, offers: all,
			counts: catalog.Counts{Ready: 1, Packed: 5, SourcesWaiting: 5}},
		{name: "dry run verifies 0-2, refuses 3", do: func() error {
			if err := c.RecordReclaimed(ctx, "c1", nil, []int64{id(0), id(1), id(2)}); err != nil {
				return err
			}
			return c.RefuseReclaim(ctx, "c1", map[int64]string{id(3): "crc_mismatch: the archived copy differs"})
		},
			dryOffers: []int64{id(4)}, offers: []int64{id(0), id(1), id(2), id(4)},
			counts: catalog.Counts{Ready: 1, Packed: 5, SourcesVerified: 3, SourcesRefused: 1, SourcesWaiting: 4,
				RefusedExample: "crc_mismatch: the archived copy differs"}},
		{name: "dry run verifies 4", do: func() error { return c.RecordReclaimed(ctx, "c1", nil, []int64{id(4)}) },
			offers: []int64{id(0), id(1), id(2), id(4)}, finishDry: true,
			counts: catalog.Counts{Ready: 1, Packed: 5, SourcesVerified: 4, SourcesRefused: 1, SourcesWaiting: 4,
				RefusedExample: "crc_mismatch: the archived copy differs"}},
		{name: "deletes 0, 1, and a row of no container is ignored", do: func() error {
			return c.RecordReclaimed(ctx, "c1", []int64{id(0), id(1), 6}, nil)
		},
			offers: []int64{id(2), id(4)},
			counts: catalog.Counts{Ready: 1, Packed: 5, SourcesDeleted: 2, SourcesVerified: 4, SourcesRefused: 1, SourcesWaiting: 2,
				RefusedExample: "crc_mismatch: the archived copy differs"}},
		{name: "a refusal of a deleted row changes nothing", do: func() error {
			return c.RefuseReclaim(ctx, "c1", map[int64]string{id(0): "late"})
		},
			offers: []int64{id(2), id(4)},
			counts: catalog.Counts{Ready: 1, Packed: 5, SourcesDeleted: 2, SourcesVerified: 4, SourcesRefused: 1, SourcesWaiting: 2,
				RefusedExample: "crc_mismatch: the archived copy differs"}},
		{name: "deletes the rest", do: func() error { return c.RecordReclaimed(ctx, "c1", []int64{id(2), id(4)}, nil) },
			finish: true,
			counts: catalog.Counts{Ready: 1, Packed: 5, SourcesDeleted: 4, SourcesVerified: 4, SourcesRefused: 1,
				RefusedExample: "crc_mismatch: the archived copy differs"}},
	}
	finished := map[bool]bool{}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := reclaimIDs(t, c, "c1", true); !slices.Equal(got, s.dryOffers) {
			t.Errorf("%s: dry run offers %v, want %v", s.name, got, s.dryOffers)
		}
		if got := reclaimIDs(t, c, "c1", false); !slices.Equal(got, s.offers) {
			t.Errorf("%s: offers %v, want %v", s.name, got, s.offers)
		}
		got, err := c.Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got != s.counts {
			t.Errorf("%s: counts %+v, want %+v", s.name, got, s.counts)
		}
		checkTally(t, c, s.name, got, 1)
		// Finish is true once, when nothing is left; then the container is no longer listed.
		for _, dry := range []bool{true, false} {
			want, wasDone := s.finish, finished[dry]
			if dry {
				want = s.finishDry
			}
			byShard, err := c.ReclaimByShard(ctx, "src", []int32{0}, 0, dry)
			if err != nil {
				t.Fatal(err)
			}
			if waiting := byShard[0] == 1; waiting == wasDone {
				t.Errorf("%s: shard 0 has %d containers waiting (dry run %v), finished before: %v", s.name, byShard[0], dry, wasDone)
			}
			done, err := c.FinishReclaim(ctx, "c1", dry)
			if err != nil {
				t.Fatal(err)
			}
			if done != want {
				t.Errorf("%s: FinishReclaim(dry run %v) = %v, want %v", s.name, dry, done, want)
			}
			finished[dry] = finished[dry] || done
			if names := containerNames(t, c, dry); finished[dry] != (len(names) == 0) {
				t.Errorf("%s: finished %v but containers to reclaim (dry run %v) are %v", s.name, finished[dry], dry, names)
			}
		}
	}
	// Another source, a delay longer than the containers' age or other shards see nothing.
	for _, tc := range []struct {
		source string
		shards []int32
		delay  time.Duration
	}{
		{"other", nil, 0},
		{"src", []int32{1}, 0},
		{"src", nil, time.Hour},
	} {
		cs, err := c.ReclaimContainers(ctx, tc.source, tc.shards, tc.delay, false, 10)
		if err != nil || len(cs) != 0 {
			t.Errorf("ReclaimContainers(%+v) = %v, %v", tc, cs, err)
		}
	}
}
