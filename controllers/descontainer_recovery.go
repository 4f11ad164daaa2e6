package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/utils/ptr"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/containercheck"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/protocol"
)

// writerVerdict says whether the packer that writes a container may still be working on it.
type writerVerdict struct {
	alive bool
	// recheck is when the verdict may change (the Lease's expiry as this controller judges it), if alive.
	recheck time.Duration
	why     string
}

// judgeWriter decides whether a container's writer is alive from the shard Lease as read and as the
// controller's lease.Observer judged it (seen). A writer is alive while its pod holds the Lease; a
// container too young to have recorded its pod yet gets one Lease period of grace.
//
// The Job does not decide: a Job is marked FailureTarget (and then Failed) before its pods get SIGTERM,
// and a packer that gets SIGTERM still finishes the container it is committing. The writer is gone
// only when its Lease is expired, released or held by someone else; the Job only explains why.
func judgeWriter(c *desv1.DesContainer, l *coordinationv1.Lease, seen leaseObservation, job *batchv1.Job, now time.Time) writerVerdict {
	pod := c.Status.Pod
	if pod == "" {
		// The creation time is the API server's clock against ours; the grace is a Lease period
		// after which a packer that created the container and never recorded itself counts as gone.
		age := now.Sub(c.CreationTimestamp.Time)
		if age < protocol.LeaseDuration {
			return writerVerdict{alive: true, recheck: protocol.LeaseDuration - age, why: "just created"}
		}
		return writerVerdict{why: "no writer recorded a Lease period after creation" + jobSays(job)}
	}
	switch holder := leaseHolder(l); {
	case seen.State == leaseHeld && holder == pod:
		why := "writer holds the shard Lease"
		if _, failed := jobFinished(job); failed {
			why += fmt.Sprintf(" (its Job %s is failing; the writer lives until the Lease expires)", job.Name)
		}
		return writerVerdict{alive: true, recheck: seen.Left, why: why}
	case seen.State == leaseHeld:
		return writerVerdict{why: fmt.Sprintf("shard Lease is held by %s, not the writer %s", holder, pod)}
	case seen.State == leaseExpired:
		return writerVerdict{why: fmt.Sprintf("writer %s stopped renewing the shard Lease", pod) + jobSays(job)}
	default:
		return writerVerdict{why: fmt.Sprintf("writer %s released the shard Lease without finishing", pod) + jobSays(job)}
	}
}

// jobSays adds a failed Job to a verdict's reason.
func jobSays(job *batchv1.Job) string {
	if _, failed := jobFinished(job); failed {
		return fmt.Sprintf("; Job %s failed", job.Name)
	}
	return ""
}

// recoveryOutcome is where recovery leaves a container.
type recoveryOutcome struct {
	phase  desv1.ContainerPhase
	reason string
	// summary of the object when it was found and verified.
	summary *desformat.Summary
	// refused is set, and phase empty, when the container names an archive location it does not own
	// (see checkOwned): nothing was deleted and the phase stays for a person to decide.
	refused error
	// quiet means there was nothing to repair: a deleted container that claimed no rows and left no
	// upload or object (the packer deletes a container that found nothing to claim).
	quiet bool
}

// errKeyCommitted means the catalog records a container's key as committed by another container.
var errKeyCommitted = errors.New("the catalog records this key as committed")

// recoverer repairs one container whose writer is gone, following docs/protocol.md: roll forward when
// the object verifies against the claimed rows, otherwise roll back — rows first (the database
// decides who wins), cleanup after. It only ever deletes in bucket, under prefix: the DesShard's
// archive.
type recoverer struct {
	cat            *catalog.Catalog
	store          *objstore.Store
	record         func(desformat.Summary) catalog.Record
	bucket, prefix string
}

func (rc *recoverer) recover(ctx context.Context, c *desv1.DesContainer) (recoveryOutcome, error) {
	if done, err := rc.cat.IsCommitted(ctx, c.Name); err != nil || done {
		return recoveryOutcome{phase: desv1.PhaseCommitted, reason: "the catalog records the commit"}, err
	}
	if refused, err := rc.checkOwned(ctx, c); err != nil || refused != nil {
		if err != nil {
			return recoveryOutcome{}, err
		}
		return rc.refuse(ctx, c, refused)
	}
	v, found, err := rc.verifyObject(ctx, c)
	if err != nil {
		return recoveryOutcome{}, err
	}
	if found != nil {
		return rc.rollBack(ctx, c, found.Error(), errors.Is(found, containercheck.ErrNoObject))
	}
	rec := rc.record(v.summary)
	rec.Placements = v.placements
	err = rc.cat.Commit(ctx, rec)
	if err == nil {
		return recoveryOutcome{phase: desv1.PhaseCommitted, reason: "rolled forward: the object verifies against the claimed rows", summary: &v.summary}, nil
	}
	if !errors.Is(err, catalog.ErrRolledBack) {
		return recoveryOutcome{}, err
	}
	return rc.rollBack(ctx, c, "its rows were no longer all claimed", false)
}

// checkOwned returns, as refused, why the container's bucket and key are not its own to delete: not
// the DesShard's archive bucket, not exactly a key the protocol gives its name, day and shard under
// the DesShard's prefix, or a key of its prefix (either layout) that the catalog records as
// committed. A DesContainer's spec is written by whoever may create DesContainers; recovery must not
// be a way to delete arbitrary objects. err is for failing to ask the catalog.
func (rc *recoverer) checkOwned(ctx context.Context, c *desv1.DesContainer) (refused, err error) {
	if err := protocol.CheckContainerBucket(rc.bucket, c.Spec.Bucket); err != nil {
		return err, nil
	}
	if err := protocol.CheckContainerKey(rc.prefix, c.Spec.ShardRef, c.Spec.Day, c.Spec.Shard, c.Name, c.Spec.Key); err != nil {
		return err, nil
	}
	// Both keys of the container's prefix: they share its _bigFiles/, which a roll-back deletes, so
	// a commit recorded under either (by another container) makes the prefix not this one's to clear.
	prefix := protocol.PrefixOfContainerKey(c.Spec.Key)
	recorded, err := committedPrefixes(ctx, rc.cat, []string{prefix})
	if err != nil {
		return nil, err
	}
	if k, ok := recorded[prefix]; ok {
		return fmt.Errorf("%w: %s", errKeyCommitted, k), nil
	}
	return nil, nil
}

// refuse handles a container whose archive location is not its own. Its rows are still rolled back:
// the catalog is keyed by the container's name, not its key, and the guarded roll-back only returns
// rows this container claimed, so it cannot harm another container; leaving them claimed would stall
// those files until a person acts. Nothing in the store is touched and the phase stays.
func (rc *recoverer) refuse(ctx context.Context, c *desv1.DesContainer, refused error) (recoveryOutcome, error) {
	if _, won, err := rc.returnRows(ctx, c); err != nil || won != nil {
		return ptr.Deref(won, recoveryOutcome{}), err
	}
	return recoveryOutcome{refused: fmt.Errorf("recovery deletes nothing at %s/%s (its claimed rows were returned to ready): %w",
		c.Spec.Bucket, c.Spec.Key, refused)}, nil
}

// refusedReason is the Degraded reason of a refused recovery.
func refusedReason(err error) desv1.ConditionReason {
	if errors.Is(err, errKeyCommitted) {
		return desv1.ReasonKeyCommitted
	}
	return desv1.ReasonKeyNotOwned
}

// verifiedObject is what recovery learnt from a container's object that verifies: its summary, and
// the placement of each claimed row in it, which the roll-forward commit records.
type verifiedObject struct {
	summary    desformat.Summary
	placements []catalog.Placement
}

// verifyObject checks the object at the container's key through containercheck, the checks `kubectl
// des verify` makes too: it must open (footer, index checksum), its summary must match what the
// writer recorded, and its names must be exactly the claimed rows. A finding is returned as
// problem (a containercheck.Problem, ErrNoObject when nothing is stored); err is for failures to
// look at all (retry later).
func (rc *recoverer) verifyObject(ctx context.Context, c *desv1.DesContainer) (verifiedObject, *containercheck.Problem, error) {
	var v verifiedObject
	rec := containercheck.Recorded{IndexChecksum: c.Status.IndexChecksum, PayloadChecksum: c.Status.PayloadChecksum}
	obj, err := containercheck.Open(ctx, rc.store, c.Spec.Bucket, c.Spec.Key, rec)
	if err != nil {
		found, err := asProblem(err)
		return v, found, err
	}
	v.summary = obj.Summary
	claimed, err := rc.cat.ClaimedIDs(ctx, c.Name)
	if err != nil {
		return v, nil, err
	}
	if v.placements, err = obj.PlaceClaimed(ctx, claimed); err != nil {
		found, err := asProblem(err)
		return v, found, err
	}
	return v, nil, nil
}

// asProblem sorts an error of containercheck into a finding or a failure to look.
func asProblem(err error) (*containercheck.Problem, error) {
	if p, ok := containercheck.AsProblem(err); ok {
		return p, nil
	}
	return nil, err
}

// returnRows runs the roll-back statement for c and reports how many rows went back to ready. If
// the writer committed between recovery's checks and the roll-back, the writer won: committed is the
// outcome to record instead (the statement changed nothing).
func (rc *recoverer) returnRows(ctx context.Context, c *desv1.DesContainer) (moved int64, committed *recoveryOutcome, err error) {
	moved, err = rc.cat.RollBack(ctx, c.Name)
	if err != nil {
		return 0, nil, err
	}
	done, err := rc.cat.IsCommitted(ctx, c.Name)
	if err != nil || !done {
		return moved, nil, err
	}
	return moved, &recoveryOutcome{phase: desv1.PhaseCommitted, reason: "the writer committed before the roll-back"}, nil
}

func (rc *recoverer) rollBack(ctx context.Context, c *desv1.DesContainer, problem string, noObjectFound bool) (recoveryOutcome, error) {
	n, won, err := rc.returnRows(ctx, c)
	if err != nil || won != nil {
		return ptr.Deref(won, recoveryOutcome{}), err
	}
	found, err := rc.removeObjects(ctx, c)
	if err != nil {
		return recoveryOutcome{}, err
	}
	if n == 0 && found == 0 && noObjectFound && !c.DeletionTimestamp.IsZero() {
		return recoveryOutcome{phase: desv1.PhaseRolledBack, reason: "deleted before it held anything: nothing claimed, uploaded or stored", quiet: true}, nil
	}
	return recoveryOutcome{phase: desv1.PhaseRolledBack, reason: "rolled back: " + problem}, nil
}

// removeObjects aborts the container's uploads and deletes its object and big payloads, and says how
// many uploads and big payloads it found. Every step tolerates "already gone", so repeating it
// changes nothing. checkOwned has vouched for the container's bucket and key.
func (rc *recoverer) removeObjects(ctx context.Context, c *desv1.DesContainer) (int, error) {
	bucket, key := c.Spec.Bucket, c.Spec.Key
	found := 0
	if id := c.Status.UploadID; id != "" {
		found++
		if err := rc.store.AbortMultipart(ctx, bucket, key, id); err != nil && !errors.Is(err, objstore.ErrNotFound) {
			return found, fmt.Errorf("abort upload %s of %s: %w", id, key, err)
		}
	}
	for up, err := range rc.store.KeyUploads(ctx, bucket, key) {
		if err != nil {
			return found, fmt.Errorf("list uploads of %s: %w", key, err)
		}
		found++
		if err := rc.store.AbortMultipart(ctx, bucket, key, up.UploadID); err != nil && !errors.Is(err, objstore.ErrNotFound) {
			return found, fmt.Errorf("abort upload %s of %s: %w", up.UploadID, key, err)
		}
	}
	if err := rc.store.Delete(ctx, bucket, key); err != nil && !errors.Is(err, objstore.ErrNotFound) {
		return found, fmt.Errorf("delete %s: %w", key, err)
	}
	bigFiles := protocol.BigFilesPrefix(c.Spec.Key)
	for obj, err := range rc.store.List(ctx, bucket, objstore.ListOptions{Prefix: bigFiles}) {
		if err != nil {
			return found, fmt.Errorf("list %s: %w", bigFiles, err)
		}
		found++
		if err := rc.store.Delete(ctx, bucket, obj.Key); err != nil && !errors.Is(err, objstore.ErrNotFound) {
			return found, fmt.Errorf("delete %s: %w", obj.Key, err)
		}
	}
	return found, nil
}
