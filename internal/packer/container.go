package packer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/lease"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/protocol"
)

// cleanupTimeout bounds abandoning a container after SIGTERM, inside the pod's termination grace
// period (30 s by default).
const cleanupTimeout = 20 * time.Second

// dbBackoff waits out a database restart (about 25 s) for the statements that are safe to repeat.
var dbBackoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 8, Cap: 5 * time.Second}

// container is one DesContainer while the packer writes it.
type container struct {
	obj    *desv1.DesContainer
	shard  int32
	day    time.Time
	prefix string // the container's own prefix: its big payloads go to prefix/_bigFiles/
	opened time.Time
	log    logr.Logger
	held   *lease.Hold // the shard Lease, confirmed before each claim

	// Owned by the claimer while the container streams.
	claimed, claimedBytes int64
	lastBatch             int64

	// Owned by the writer loop.
	upload         *objstore.Upload
	writer         *desformat.Writer
	files, bytes   int64
	failed         int64
	external       []string        // keys of the big payloads written
	placed         *placementSpill // where each file went, for the commit
	sourceFailures int             // unreadable source objects in a row
	lastProgress   time.Time

	result  objstore.Result
	summary desformat.Summary // of the closed archive: counts and checksums
	// completing is set once the object's completion was sent: from then on an object may exist at
	// the key even if the store's answer said otherwise.
	completing bool
}

// packContainer writes one container of shard: steps 2 to 6. It reports whether the shard may have
// more ready rows.
func (p *Packer) packContainer(ctx context.Context, held *lease.Hold, shard int32, log logr.Logger) (bool, error) {
	// leased is cancelled only when the Lease is lost: finishing an uploaded container must survive
	// SIGTERM. work is also cancelled by SIGTERM: it is what claims, fetches and writes.
	leased := held.Context()
	c, err := p.createContainer(leased, shard, log)
	if err != nil {
		return false, p.leaseOr(held, err)
	}
	c.held = held
	defer c.release()
	work, cancel := context.WithCancelCause(leased)
	defer cancel(nil)
	defer context.AfterFunc(ctx, func() { cancel(ErrStopped) })()

	first, err := p.claimBatch(work, c)
	if err != nil {
		return false, p.abandon(ctx, held, c, fmt.Errorf("claim rows for shard %d: %w", shard, err))
	}
	if len(first) == 0 {
		return false, p.dropEmpty(leased, c)
	}
	if err := p.stream(work, leased, c, first); err != nil {
		return false, p.abandon(ctx, held, c, err)
	}
	if c.files == 0 {
		return true, p.rollBackEmpty(leased, c)
	}
	if err := p.completeUpload(leased, c); err != nil {
		return false, p.abandon(ctx, held, c, err)
	}
	if err := p.markUploaded(leased, c); err != nil {
		// The object is complete and the rows claimed: recovery rolls C forward.
		return false, p.leaseOr(held, fmt.Errorf("container %s left to recovery: %w", c.obj.Name, err))
	}
	return true, p.commit(leased, held, c)
}

// release frees the container's temporary files, however it ended.
func (c *container) release() {
	var errs []error
	if c.writer != nil {
		errs = append(errs, c.writer.Abort()) // nothing after a Close
	}
	errs = append(errs, c.placed.close())
	if err := errors.Join(errs...); err != nil {
		c.log.Error(err, "temporary files not released")
	}
}

// createContainer is step 2: the DesContainer exists before any row is claimed for it, so recovery
// can always find the claimer of a row.
func (p *Packer) createContainer(ctx context.Context, shard int32, log logr.Logger) (*container, error) {
	ds := p.cfg.DesShard
	t := p.d.Now().UTC()
	id := protocol.NewContainerID(t)
	obj := &desv1.DesContainer{
		ObjectMeta: metav1.ObjectMeta{
			Name:      protocol.ContainerName(ds.Name, id),
			Namespace: ds.Namespace,
			Labels: map[string]string{
				protocol.LabelDesShard:  ds.Name,
				protocol.LabelShard:     strconv.Itoa(int(shard)),
				protocol.LabelSource:    p.cfg.Source.Name,
				protocol.LabelManagedBy: protocol.ManagedByDES,
			},
			Finalizers: []string{protocol.FinalizerRecovery},
			// A plain owner reference (not controller): garbage collection follows the DesShard, and
			// the DesShard controller's Owns(Job) watch is not involved.
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: desv1.GroupVersion.String(), Kind: "DesShard", Name: ds.Name, UID: ds.UID,
			}},
		},
		Spec: desv1.DesContainerSpec{
			ShardRef: ds.Name,
			Shard:    shard,
			Day:      t.Format(time.DateOnly),
			Bucket:   ds.Spec.Archive.Bucket,
			Key:      protocol.ContainerKey(ds.Spec.Archive.Prefix, t, shard, id),
		},
	}
	if err := p.createObject(ctx, obj); err != nil {
		p.d.Metrics.Errors.WithLabelValues("create").Inc()
		return nil, fmt.Errorf("create DesContainer %s: %w", obj.Name, err)
	}
	c := &container{
		obj: obj, shard: shard, day: t, opened: t, lastProgress: t,
		prefix: protocol.ContainerPrefix(ds.Spec.Archive.Prefix, t, shard, id),
		log:    log.WithValues("container", obj.Name),
	}
	err := p.setPhase(ctx, obj, desv1.PhaseWriting, func(st *desv1.DesContainerStatus) {
		st.Job, st.Pod, st.StartedAt = p.cfg.Job, p.cfg.Identity, now(t)
	})
	if err != nil {
		// Nothing is claimed yet: the container can simply go.
		if derr := p.deleteContainer(context.WithoutCancel(ctx), obj); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	c.log.V(1).Info("container created", "key", obj.Spec.Key)
	return c, nil
}

// completeUpload is the first half of step 5: close the archive and complete the upload.
func (p *Packer) completeUpload(ctx context.Context, c *container) error {
	c.completing = true
	if err := c.writer.Close(); err != nil {
		// The writer's last write sends the last part; nothing was completed.
		return fmt.Errorf("finish archive %s: %w", c.obj.Spec.Key, err)
	}
	start := time.Now()
	res, err := c.upload.Complete()
	p.d.Metrics.UploadSeconds.Observe(time.Since(start).Seconds())
	c.summary = c.writer.Summary()
	if err != nil {
		p.d.Metrics.Errors.WithLabelValues("upload").Inc()
		if res, err = p.confirmComplete(ctx, c, fmt.Errorf("complete upload of %s: %w", c.obj.Spec.Key, err)); err != nil {
			return err
		}
	}
	c.result = res
	if c.summary.Files != c.files || c.summary.PayloadBytes != c.bytes || c.summary.Size != res.Size {
		return fmt.Errorf("archive %s: the writer counted %d files, %d bytes, %d-byte object; the packer %d, %d, %d",
			c.obj.Spec.Key, c.summary.Files, c.summary.PayloadBytes, c.summary.Size, c.files, c.bytes, res.Size)
	}
	return nil
}

// confirmComplete finds out what a failed completion left at the key. The store may have completed
// the object and lost its answer (a timeout; the retry then gets 412 or NoSuchUpload): if the object
// there is exactly the archive written (size, index and payload checksums), it is this container's and
// the packer goes on to commit it. Anything else at the key is deleted (the key is this container's
// alone), so no object that no committed container accounts for stays under the archive prefix.
func (p *Packer) confirmComplete(ctx context.Context, c *container, cause error) (objstore.Result, error) {
	spec := c.obj.Spec
	ra, _, err := p.d.Archive.OpenReaderAt(ctx, spec.Bucket, spec.Key, desformat.DefaultTailSize)
	if errors.Is(err, objstore.ErrNotFound) {
		return objstore.Result{}, cause
	}
	if err != nil {
		return objstore.Result{}, errors.Join(cause, fmt.Errorf("look for the object after the failure: %w", err))
	}
	problem := p.sameArchive(ctx, ra, c.summary)
	if problem == "" {
		c.log.Info("the store completed the object but its answer was lost; going on", "key", spec.Key, "error", cause.Error())
		return objstore.Result{Size: ra.Size()}, nil
	}
	if err := p.d.Archive.Delete(ctx, spec.Bucket, spec.Key); err != nil {
		return objstore.Result{}, errors.Join(cause, fmt.Errorf("delete the object found at the key (%s): %w", problem, err))
	}
	return objstore.Result{}, fmt.Errorf("%w; the object found at the key was deleted: %s", cause, problem)
}

// sameArchive says how the object read by ra differs from the archive the writer closed ("" if not).
func (p *Packer) sameArchive(ctx context.Context, ra *objstore.ObjectReader, want desformat.Summary) string {
	r, err := desformat.NewReader(ra, ra.Size(), desformat.ReaderOptions{TailSize: desformat.DefaultTailSize})
	if err != nil {
		return fmt.Sprintf("it does not open: %v", err)
	}
	got, err := r.Summary(ctx)
	switch {
	case err != nil:
		return fmt.Sprintf("it does not verify: %v", err)
	case want.Files == 0:
		return "the writer did not close the archive"
	case got.Size != want.Size || got.Files != want.Files || got.IndexChecksum() != want.IndexChecksum() || got.PayloadChecksum() != want.PayloadChecksum():
		return fmt.Sprintf("it holds %d files, %d bytes, checksums %s/%s; the writer closed %d, %d, %s/%s",
			got.Files, got.Size, got.IndexChecksum(), got.PayloadChecksum(), want.Files, want.Size, want.IndexChecksum(), want.PayloadChecksum())
	}
	return ""
}

// markUploaded is the second half of step 5: record what the object holds.
func (p *Packer) markUploaded(ctx context.Context, c *container) error {
	return p.setPhase(ctx, c.obj, desv1.PhaseUploaded, func(st *desv1.DesContainerStatus) {
		st.Files, st.Bytes, st.ObjectSize = c.summary.Files, c.summary.PayloadBytes, c.summary.Size
		st.PayloadChecksum, st.IndexChecksum = c.summary.PayloadChecksum(), c.summary.IndexChecksum()
		st.UploadedAt = now(p.d.Now())
	})
}

// commit is step 6.
func (p *Packer) commit(ctx context.Context, held *lease.Hold, c *container) error {
	if err := held.Err(); err != nil {
		return fmt.Errorf("container %s left to recovery: %w", c.obj.Name, err)
	}
	ds := p.cfg.DesShard
	rec := catalog.Record{
		Key: c.obj.Spec.Key, Container: c.obj.Name, Bucket: c.obj.Spec.Bucket, Source: p.cfg.Source.Name,
		Shard: int(c.shard), Day: c.day, Files: c.summary.Files, Bytes: c.summary.PayloadBytes, ObjectSize: c.summary.Size,
		PayloadChecksum: c.summary.PayloadChecksum(), IndexChecksum: c.summary.IndexChecksum(),
		Writer: p.writerName(), PlacementSource: c.placed,
	}
	start := time.Now()
	err := retryDB(ctx, func(ctx context.Context) error { return p.d.Catalog.Commit(ctx, rec) })
	p.d.Metrics.CommitSeconds.Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, catalog.ErrRolledBack):
		return p.discard(ctx, c, fmt.Errorf("commit of DesShard %s shard %d: %w", ds.Name, c.shard, err))
	case err != nil:
		p.d.Metrics.Errors.WithLabelValues("commit").Inc()
		return p.leaseOr(held, fmt.Errorf("commit container %s (left Uploaded for recovery): %w", c.obj.Name, err))
	}
	p.d.Metrics.Containers.WithLabelValues(outcomeCommitted).Inc()
	p.d.Metrics.FilesPacked.Add(float64(c.files))
	p.d.Metrics.BytesPacked.Add(float64(c.bytes))
	p.d.Metrics.ContainerBytes.Observe(float64(c.result.Size))
	c.log.Info("container committed", "key", c.obj.Spec.Key, "files", c.files, "bytes", c.bytes,
		"objectSize", c.result.Size, "failedRows", c.failed, "seconds", p.d.Now().Sub(c.opened).Seconds())
	err = p.setPhase(ctx, c.obj, desv1.PhaseCommitted, func(st *desv1.DesContainerStatus) {
		st.CommittedAt = now(p.d.Now())
		st.Reason = ""
	})
	if err != nil {
		// The commit is durable (des_containers has it); recovery only has to record the phase. A
		// Lease lost meanwhile cancels the update: report the loss, which is what stops the packer.
		return p.leaseOr(held, fmt.Errorf("container %s is committed but its status is not: %w", c.obj.Name, err))
	}
	return nil
}

// discard handles a commit that found C rolled back (or holding other rows than it wrote): whatever
// is still claimed by C goes back too (the failed commit changed nothing), then the object and C's big
// payloads are deleted; they live under C's own prefix, so no other container's data is touched.
func (p *Packer) discard(ctx context.Context, c *container, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	c.log.Error(cause, "container was rolled back before its commit; deleting its object")
	errs := []error{cause}
	if _, err := p.rollBack(ctx, c); err != nil {
		errs = append(errs, err)
	}
	if err := p.d.Archive.Delete(ctx, c.obj.Spec.Bucket, c.obj.Spec.Key); err != nil {
		errs = append(errs, fmt.Errorf("delete object of rolled back container: %w", err))
	}
	errs = append(errs, p.deleteExternal(ctx, c)...)
	if len(errs) == 1 {
		if err := p.setRolledBack(ctx, c.obj, "RolledBackBeforeCommit: "+cause.Error()); err != nil {
			errs = append(errs, err)
		}
	}
	p.d.Metrics.Containers.WithLabelValues(outcomeRolledBack).Inc()
	return errors.Join(errs...)
}

// rollBackEmpty ends a container whose every claimed row failed: nothing to upload or commit.
func (p *Packer) rollBackEmpty(ctx context.Context, c *container) error {
	if err := c.upload.Abort(ctx); err != nil {
		return fmt.Errorf("abort upload of %s: %w", c.obj.Spec.Key, err)
	}
	if _, err := p.rollBack(ctx, c); err != nil {
		return err
	}
	p.d.Metrics.Containers.WithLabelValues(outcomeRolledBack).Inc()
	c.log.Info("every claimed row failed; container rolled back", "failedRows", c.failed)
	return p.setRolledBack(ctx, c.obj, fmt.Sprintf("NoFiles: all %d claimed rows failed", c.failed))
}

// dropEmpty ends a container that claimed nothing (step 3). Without the right to delete, it is marked
// RolledBack instead and the controller removes it after retention.
func (p *Packer) dropEmpty(ctx context.Context, c *container) error {
	p.d.Metrics.Containers.WithLabelValues(outcomeEmpty).Inc()
	err := p.deleteContainer(ctx, c.obj)
	if apierrors.IsForbidden(err) {
		c.log.Error(err, "not allowed to delete an empty DesContainer; marking it RolledBack")
		return p.setRolledBack(ctx, c.obj, "NothingToPack: no ready rows")
	}
	if err != nil {
		return fmt.Errorf("delete empty DesContainer %s: %w", c.obj.Name, err)
	}
	return nil
}

// abandon gives up the container being written. A lost Lease stops everything at once (step 1: abort
// the upload, commit nothing, recovery rolls C back). Otherwise (an error, or SIGTERM) the packer
// cleans up itself: upload aborted, big payloads deleted, rows rolled back, phase RolledBack.
func (p *Packer) abandon(ctx context.Context, held *lease.Hold, c *container, cause error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if lost := held.Err(); lost != nil {
		p.abortUpload(cctx, c)
		c.log.Error(cause, "Lease lost: container left to recovery")
		return fmt.Errorf("container %s left to recovery: %w", c.obj.Name, lost)
	}
	stopped := ctx.Err() != nil
	reason := "Abandoned: " + cause.Error()
	if stopped {
		cause, reason = ErrStopped, "Abandoned: the packer was stopped while writing"
	} else {
		p.d.Metrics.Errors.WithLabelValues("container").Inc()
	}
	c.log.Error(cause, "abandoning container")
	p.abortUpload(cctx, c)
	errs := []error{cause}
	errs = append(errs, p.deleteExternal(cctx, c)...)
	if c.completing {
		// A completion that failed may still have created the object (see confirmComplete).
		if err := p.d.Archive.Delete(cctx, c.obj.Spec.Bucket, c.obj.Spec.Key); err != nil {
			errs = append(errs, fmt.Errorf("delete object of abandoned container: %w", err))
		}
	}
	if _, err := p.rollBack(cctx, c); err != nil {
		// The rows stay claimed by C, which stays Writing: recovery finishes the job.
		return errors.Join(append(errs, err)...)
	}
	if err := p.setRolledBack(cctx, c.obj, reason); err != nil {
		errs = append(errs, err)
	}
	p.d.Metrics.Containers.WithLabelValues(outcomeAbandoned).Inc()
	return errors.Join(errs...)
}

func (p *Packer) abortUpload(ctx context.Context, c *container) {
	if c.upload == nil {
		return
	}
	if err := c.upload.Abort(ctx); err != nil && !errors.Is(err, objstore.ErrUploadClosed) {
		c.log.Error(err, "abort upload; recovery aborts it by the upload id in the status")
	}
}

// deleteExternal deletes the big payloads written for C.
func (p *Packer) deleteExternal(ctx context.Context, c *container) []error {
	var errs []error
	for _, key := range c.external {
		if err := p.d.Archive.Delete(ctx, c.obj.Spec.Bucket, key); err != nil {
			errs = append(errs, fmt.Errorf("delete big payload: %w", err))
		}
	}
	return errs
}

// rollBack returns C's claimed rows to ready (the guarded roll-back statement).
func (p *Packer) rollBack(ctx context.Context, c *container) (int64, error) {
	var n int64
	err := retryDB(ctx, func(ctx context.Context) error {
		var err error
		n, err = p.d.Catalog.RollBack(ctx, c.obj.Name)
		return err
	})
	if err != nil {
		p.d.Metrics.Errors.WithLabelValues("rollback").Inc()
	}
	return n, err
}

// leaseOr reports a lost Lease as the cause when it is one: that is what the operator must see.
func (p *Packer) leaseOr(held *lease.Hold, err error) error {
	if lost := held.Err(); lost != nil && !errors.Is(err, lost) {
		return fmt.Errorf("%w (%w)", lost, err)
	}
	return err
}

func (p *Packer) writerName() string {
	if p.cfg.Job == "" {
		return p.cfg.Identity
	}
	return p.cfg.Job + "/" + p.cfg.Identity
}

// retryDB runs an idempotent catalog statement, waiting out a restarting database.
func retryDB(ctx context.Context, op func(context.Context) error) error {
	return retry.OnError(dbBackoff, func(err error) bool {
		return ctx.Err() == nil && dbUnreachable(err)
	}, func() error { return op(ctx) })
}
