package catalog_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/test/testworld"
)

// checkTally fails unless the cheap tally of source "src" says what the exact census said.
func checkTally(t *testing.T, c *catalog.Catalog, step string, want catalog.Counts, containers int64) {
	t.Helper()
	got, err := c.Tally(context.Background(), "src")
	if err != nil {
		t.Fatalf("%s: tally: %v", step, err)
	}
	if got.Counts != want || got.Containers != containers {
		t.Errorf("%s: tally %+v and %d containers, the census says %+v and %d", step, got.Counts, got.Containers, want, containers)
	}
}

func census(t *testing.T, c *catalog.Catalog) catalog.Counts {
	t.Helper()
	n, err := c.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTallyFollowsEveryState walks rows through every state (unnamed, ready, claimed, packed in two
// containers, failed, rolled back, deleted, verified, refused, a refusal cleared by hand) and checks
// after each step that the tally equals the census.
func TestTallyFollowsEveryState(t *testing.T) {
	testworld.ForEachDialect(t, testTallyFollowsEveryState)
}

func testTallyFollowsEveryState(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	c, db := newCatalog(t, d, 20, 1)
	mustExec(t, db, `UPDATE objects SET des_name = NULL WHERE id > 17`) // 3 rows wait for the marker
	must := func(step string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	checkTally(t, c, "fresh", catalog.Counts{Unnamed: 3, Ready: 17}, 0)

	a := commitWithETags(t, c, "a", 5, func(int64) string { return "e" })
	b := commitWithETags(t, c, "b", 4, func(int64) string { return "e" })
	checkTally(t, c, "two containers", census(t, c), 2)

	claimed, err := c.Claim(ctx, 0, "open", 3)
	must("claim", err)
	_, err = c.MarkFailed(ctx, "open", claimed[0].ID, "unreadable")
	must("fail", err)
	checkTally(t, c, "claimed and failed", census(t, c), 2)
	_, err = c.RollBack(ctx, "open")
	must("roll back", err)
	checkTally(t, c, "rolled back", census(t, c), 2)

	must("verify a", c.RecordReclaimed(ctx, "a", nil, []int64{a[0].ID, a[1].ID}))
	must("verify a again", c.RecordReclaimed(ctx, "a", nil, []int64{a[0].ID}))
	must("delete a", c.RecordReclaimed(ctx, "a", []int64{a[0].ID, a[2].ID, b[0].ID}, nil))
	must("delete a again", c.RecordReclaimed(ctx, "a", []int64{a[0].ID}, nil))
	must("refuse b", c.RefuseReclaim(ctx, "b", map[int64]string{b[1].ID: "etag_changed", b[2].ID: "crc_mismatch"}))
	must("refuse b again", c.RefuseReclaim(ctx, "b", map[int64]string{b[1].ID: "other"}))
	n := census(t, c)
	if n.SourcesDeleted != 2 || n.SourcesVerified != 3 || n.SourcesRefused != 2 {
		t.Fatalf("the steps did not do what the test means: %+v", n)
	}
	checkTally(t, c, "deleted, verified, refused", n, 2)

	// A person clears a refusal: the tally sees it at once.
	mustExec(t, db, `UPDATE objects SET des_source_refused = NULL WHERE id = `+strconv.FormatInt(b[1].ID, 10))
	checkTally(t, c, "refusal cleared", census(t, c), 2)
	_, err = c.FinishReclaim(ctx, "b", false)
	must("finish b", err)
	checkTally(t, c, "pass over b ended", census(t, c), 2)
}

// TestMigrateAddsAndCountsTheCounters: a catalog migrated before the counters existed is refused by
// Check until migrated; the migration adds them with what earlier reclaim passes did.
func TestMigrateAddsAndCountsTheCounters(t *testing.T) {
	testworld.ForEachDialect(t, testMigrateAddsAndCountsTheCounters)
}

func testMigrateAddsAndCountsTheCounters(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	c, db := newCatalog(t, d, 6, 1)
	rows := commitWithETags(t, c, "a", 4, func(int64) string { return "e" })
	if err := c.RecordReclaimed(ctx, "a", []int64{rows[0].ID}, []int64{rows[1].ID}); err != nil {
		t.Fatal(err)
	}
	if err := c.RefuseReclaim(ctx, "a", map[int64]string{rows[2].ID: "etag_changed"}); err != nil {
		t.Fatal(err)
	}
	want := census(t, c)
	for _, col := range []string{"sources_deleted", "sources_verified"} {
		mustExec(t, db, `ALTER TABLE des_containers DROP COLUMN `+col)
	}
	if err := c.Check(ctx); !errors.Is(err, catalog.ErrColumnMissing) {
		t.Fatalf("check of a catalog without the counters: %v, want ErrColumnMissing", err)
	}
	if err := c.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(ctx); err != nil {
		t.Fatalf("check after the migration: %v", err)
	}
	checkTally(t, c, "migrated", want, 1)
}
