package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/test/testworld"
)

// TestRolledBackContainerChangesNothing is issue 12's reproduction: after recovery rolls C back, a
// writer that still believes it owns C must not be able to claim, fail or commit anything for it.
func TestRolledBackContainerChangesNothing(t *testing.T) {
	testworld.ForEachDialect(t, testRolledBackContainerChangesNothing)
}

func testRolledBackContainerChangesNothing(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	c, pool := newCatalog(t, d, 8, 1)
	first, err := c.Claim(ctx, 0, "ds-c1", 4)
	if err != nil || len(first) != 4 {
		t.Fatalf("claim: %d rows, %v", len(first), err)
	}
	if n, err := c.RollBack(ctx, "ds-c1"); err != nil || n != 4 {
		t.Fatalf("roll-back moved %d rows (%v)", n, err)
	}
	late, err := c.Claim(ctx, 0, "ds-c1", 4)
	if !errors.Is(err, catalog.ErrContainerClosed) || len(late) != 0 {
		t.Fatalf("late claim for a rolled-back container: %d rows, %v; want none and ErrContainerClosed", len(late), err)
	}
	if ok, err := c.MarkFailed(ctx, "ds-c1", first[0].ID, "late"); err != nil || ok {
		t.Fatalf("late mark-failed changed a row (%v)", err)
	}
	if err := c.Commit(ctx, record("ds-c1", first)); !errors.Is(err, catalog.ErrRolledBack) {
		t.Fatalf("late commit: %v, want ErrRolledBack", err)
	}
	// A roll-back sticks even if the rows are claimed again by someone else, and the late writer's
	// commit of exactly as many rows as are claimed (by the new owner) changes nothing.
	if _, err := c.Claim(ctx, 0, "ds-c2", 4); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(ctx, record("ds-c1", first)); !errors.Is(err, catalog.ErrRolledBack) {
		t.Fatalf("late commit after another claim: %v", err)
	}
	assertCounts(t, c, catalog.Counts{Ready: 4, Claimed: 4})
	if open, err := c.IsOpen(ctx, "ds-c1"); err != nil || open {
		t.Fatalf("rolled-back container open=%v (%v)", open, err)
	}
	var fences int
	if err := pool.Row(`SELECT count(*) FROM des_container_fences`).Scan(&fences); err != nil || fences != 2 {
		t.Fatalf("%d fences (%v), want 2", fences, err)
	}
}

// TestClaimsRacingRollBackLeaveNothingClaimed runs a writer that claims one row at a time against a
// roll-back at a random instant: whatever the interleaving, the container ends with no claimed row.
func TestClaimsRacingRollBackLeaveNothingClaimed(t *testing.T) {
	testworld.ForEachDialect(t, testClaimsRacingRollBackLeaveNothingClaimed)
}

func testClaimsRacingRollBackLeaveNothingClaimed(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	c, _ := newCatalog(t, d, 400, 1)
	for i := range 20 {
		name := fmt.Sprintf("ds-race-%d", i)
		var wg sync.WaitGroup
		var claimErr error
		wg.Go(func() {
			for {
				rows, err := c.Claim(ctx, 0, name, 1)
				if err != nil || len(rows) == 0 {
					claimErr = err
					return
				}
			}
		})
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
		if _, err := c.RollBack(ctx, name); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if claimErr != nil && !errors.Is(claimErr, catalog.ErrContainerClosed) {
			t.Fatalf("claim: %v", claimErr)
		}
		if names, err := c.ClaimedIDs(ctx, name); err != nil || len(names) != 0 {
			t.Fatalf("round %d: %d rows still claimed by a rolled-back container (%v)", i, len(names), err)
		}
	}
	assertCounts(t, c, catalog.Counts{Ready: 400})
}

// TestEmptyClaimLeavesNoFence: packing runs over empty shards must not grow the fence table.
func TestEmptyClaimLeavesNoFence(t *testing.T) {
	testworld.ForEachDialect(t, testEmptyClaimLeavesNoFence)
}

func testEmptyClaimLeavesNoFence(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	c, pool := newCatalog(t, d, 2, 2)
	if rows, err := c.Claim(ctx, 7, "ds-empty", 10); err != nil || len(rows) != 0 {
		t.Fatalf("claim of an empty shard: %d rows, %v", len(rows), err)
	}
	var fences int
	if err := pool.Row(`SELECT count(*) FROM des_container_fences`).Scan(&fences); err != nil || fences != 0 {
		t.Fatalf("%d fences after an empty claim (%v)", fences, err)
	}
	// A roll-back of a container that never claimed still closes it.
	if _, err := c.RollBack(ctx, "ds-empty"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Claim(ctx, 0, "ds-empty", 1); !errors.Is(err, catalog.ErrContainerClosed) {
		t.Fatalf("claim after the roll-back of an unused container: %v", err)
	}
}

// TestFailedRowsReturnToReadyWhileRetriesRemain is issue 12's second reproduction: a row the packer
// failed once (a 503 from the source) must return to ready, keep its name and shard, and stay failed
// failed once it has failed MaxRetries times.
func TestFailedRowsReturnToReadyWhileRetriesRemain(t *testing.T) {
	testworld.ForEachDialect(t, testFailedRowsReturnToReadyWhileRetriesRemain)
}

func testFailedRowsReturnToReadyWhileRetriesRemain(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	c, pool := newCatalog(t, d, 1, 1)
	policy := catalog.RetryPolicy{MaxRetries: 3, Backoff: 0, MaxBackoff: time.Hour, Batch: 10}
	var name string
	for attempt := 1; attempt <= 3; attempt++ {
		container := fmt.Sprintf("ds-try-%d", attempt) // each packing run claims for a new container
		rows, err := c.Claim(ctx, 0, container, 1)
		if err != nil || len(rows) != 1 {
			t.Fatalf("attempt %d: claimed %d rows (%v)", attempt, len(rows), err)
		}
		name = rows[0].Name
		if ok, err := c.MarkFailed(ctx, container, rows[0].ID, "503 SlowDown"); err != nil || !ok {
			t.Fatalf("mark failed: %v", err)
		}
		moved, err := c.RetryFailed(ctx, policy)
		if err != nil {
			t.Fatal(err)
		}
		want := int64(1)
		if attempt >= policy.MaxRetries { // des_retries has reached the limit
			want = 0
		}
		if moved != want {
			t.Fatalf("attempt %d: %d rows returned to ready, want %d", attempt, moved, want)
		}
	}
	assertCounts(t, c, catalog.Counts{Failed: 1})
	var gotName, msg string
	var retries int
	if err := pool.Row(`SELECT des_name, des_error, des_retries FROM objects`).Scan(&gotName, &msg, &retries); err != nil {
		t.Fatal(err)
	}
	if gotName != name || msg != "503 SlowDown" || retries != 3 {
		t.Fatalf("row after three failures: name %q (was %q), error %q, retries %d", gotName, name, msg, retries)
	}
}

func TestRetryWaitsOutAGrowingBackoff(t *testing.T) {
	testworld.ForEachDialect(t, testRetryWaitsOutAGrowingBackoff)
}

func testRetryWaitsOutAGrowingBackoff(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	c, pool := newCatalog(t, d, 3, 1)
	mustExec(t, pool, `UPDATE objects SET status = 'failed', des_retries = id, des_failed_at = `+pool.Ago(150*time.Second))
	// Backoff 60 s: one failure waits 60 s, two 120 s, three 240 s; only the first two are due.
	moved, err := c.RetryFailed(ctx, catalog.RetryPolicy{MaxRetries: 5, Backoff: time.Minute, MaxBackoff: time.Hour, Batch: 1})
	if err != nil || moved != 2 {
		t.Fatalf("moved %d rows (%v), want 2", moved, err)
	}
	var stillFailed int64
	if err := pool.Row(`SELECT id FROM objects WHERE status = 'failed'`).Scan(&stillFailed); err != nil || stillFailed != 3 {
		t.Fatalf("row still failed: %d (%v), want 3", stillFailed, err)
	}
}

func TestClaimHoldersFindsOldClaims(t *testing.T) {
	testworld.ForEachDialect(t, testClaimHoldersFindsOldClaims)
}

func testClaimHoldersFindsOldClaims(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	c, pool := newCatalog(t, d, 4, 2)
	for _, name := range []string{"ds-old", "ds-new"} {
		if _, err := c.Claim(ctx, 0, name, 2); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(t, pool, `UPDATE objects SET des_claimed_at = `+pool.Ago(2*time.Hour)+` WHERE des_container = 'ds-old'`)
	got, err := c.ClaimHolders(ctx, time.Now().Add(-time.Hour), 10)
	if err != nil || len(got) != 1 || got[0] != "ds-old" {
		t.Fatalf("claim holders = %v (%v), want [ds-old]", got, err)
	}
}

// TestConcurrentCommitsOfOneContainer: the packer and a roll-forward may commit the same container at
// once; both must succeed (the second is a no-op) and the rows are packed once.
func TestConcurrentCommitsOfOneContainer(t *testing.T) {
	testworld.ForEachDialect(t, testConcurrentCommitsOfOneContainer)
}

func testConcurrentCommitsOfOneContainer(t *testing.T, d catalog.Driver) {
	ctx := context.Background()
	for round := range 10 {
		c, _ := newCatalog(t, d, 5, 1)
		name := fmt.Sprintf("ds-twice-%d", round)
		claimed, err := c.Claim(ctx, 0, name, 5)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() { errs[i] = c.Commit(ctx, record(name, claimed)) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: commit %d of two at once: %v", round, i, err)
			}
		}
		assertCounts(t, c, catalog.Counts{Packed: 5})
	}
}
