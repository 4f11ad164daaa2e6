package packer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
)

// reorderSlack is how many windows of fetched items may wait for the writer (see stream).
const reorderSlack = 4

// firstBatch is the size of a container's first claim: small, because nothing is known yet about the
// rows' sizes and maxBytes is checked between claims.
const firstBatch = 16

// stream is step 4: it writes every row claimed for C, in claim order, into C's upload, or marks it
// failed. Three stages run at once: the claimer (claims more rows while the limits allow), the
// fetcher (fetches source objects ahead, bounded by the window and the prefetch budget) and the writer
// (this goroutine). Any error ends all three; the caller abandons C.
func (p *Packer) stream(work, leased context.Context, c *container, first []catalog.Row) error {
	if err := p.openUpload(leased, c); err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(work)
	defer cancel(nil)
	rows := make(chan catalog.Row, p.tune.ClaimBatch)
	// The writer takes items in claim order, so one slow GET holds up the items behind it: with room
	// for only Window of them, the fetchers would idle until it ends. Room for reorderSlack times as
	// many keeps Window GETs in flight (the concurrency of the window) while the writer waits; the
	// prefetch budget still bounds their bytes.
	items := make(chan *item, reorderSlack*p.tune.Window)
	var wg sync.WaitGroup
	var claimErr error
	wg.Go(func() { claimErr = p.claimMore(ctx, c, first, rows) })
	wg.Go(func() { p.fetchAhead(ctx, rows, items, &wg) })

	err := p.writeAll(ctx, c, items)
	if err != nil {
		cancel(err)
	}
	for it := range items { // let the fetcher finish and return its budget
		<-it.done
		p.budget.Release(it.cost)
		putBuffer(it.data)
	}
	wg.Wait()
	switch {
	case err != nil:
		return err
	case claimErr != nil:
		return claimErr
	case work.Err() != nil:
		return context.Cause(work)
	}
	return nil
}

// openUpload starts C's object: a create-only upload whose multipart id is recorded in C's status
// before the first part is sent, and the format writer on top of it.
func (p *Packer) openUpload(leased context.Context, c *container) error {
	spec := c.obj.Spec
	// The upload lives on the leased context: SIGTERM must not cut the parts of a container that is
	// being completed; abandoning aborts it explicitly.
	c.upload = p.d.Archive.NewUploader(leased, spec.Bucket, spec.Key, objstore.UploadOptions{
		PartSize:    partSize(p.tune.PartSize, p.lim),
		Concurrency: p.tune.UploadConcurrency,
		IfNoneMatch: true,
		ContentType: "application/octet-stream",
		OnUploadID: func(id string) error {
			c.log.V(1).Info("multipart upload started", "uploadID", id)
			return p.setStatus(leased, c.obj, func(st *desv1.DesContainerStatus) error {
				if st.Phase != desv1.PhaseWriting {
					return fmt.Errorf("%w: %s", errContainerFinal, st.Phase)
				}
				st.UploadID = id
				return nil
			})
		},
	})
	// Big payloads live under C's own prefix, so create-only writes add nothing: C is their only writer.
	big := p.d.Archive.Blobs(spec.Bucket, objstore.UploadOptions{
		PartSize: p.tune.BigFilePartSize, Concurrency: p.tune.BigFileConcurrency, ContentType: "application/octet-stream",
	})
	var err error
	if c.placed, err = newPlacementSpill(p.tune.TempDir); err != nil {
		return fmt.Errorf("start archive %s: %w", spec.Key, err)
	}
	c.writer, err = desformat.NewWriter(c.upload, desformat.WriterOptions{
		External: big, ExternalThreshold: p.lim.bigFileThreshold, ExternalPrefix: c.prefix,
		SpillDir: p.tune.TempDir,
	})
	if err != nil {
		return fmt.Errorf("start archive %s: %w", spec.Key, err)
	}
	return nil
}

// claimBatch claims the next batch of rows for C, sized by the limits; none once a limit is reached.
func (p *Packer) claimBatch(ctx context.Context, c *container) ([]catalog.Row, error) {
	n := p.nextBatch(c)
	if n == 0 {
		return nil, nil
	}
	// The Lease is read back before every claim: a packer that was frozen past its Lease must not
	// take rows. The catalog's fence is what makes a late claim harmless; this makes it rare.
	if err := c.held.Confirm(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	rows, err := p.d.Catalog.Claim(ctx, int(c.shard), c.obj.Name, int(n))
	c.log.V(1).Info("claimed", "asked", n, "rows", len(rows), "seconds", time.Since(start).Seconds())
	if err != nil {
		p.d.Metrics.Errors.WithLabelValues("claim").Inc()
		return nil, err
	}
	c.lastBatch = n
	c.claimed += int64(len(rows))
	for _, r := range rows {
		c.claimedBytes += r.Size
	}
	return rows, nil
}

// nextBatch is how many rows to claim next: 0 once maxFiles, maxBytes (by the rows' sizes), maxAge or
// the time budget is reached. Batches start small and grow, and are cut to the bytes left at the
// average row size so far, so a container ends close to maxBytes rather than a whole batch beyond.
func (p *Packer) nextBatch(c *container) int64 {
	t := p.d.Now()
	if c.claimed >= p.lim.maxFiles || c.claimedBytes >= p.lim.maxBytes ||
		t.Sub(c.opened) >= p.lim.maxAge || !t.Before(p.cfg.Deadline) {
		return 0
	}
	n := min(int64(p.tune.ClaimBatch), p.lim.maxFiles-c.claimed)
	if c.claimed == 0 {
		return min(n, firstBatch)
	}
	avg := max(c.claimedBytes/c.claimed, 1)
	return max(1, min(n, 2*c.lastBatch, (p.lim.maxBytes-c.claimedBytes+avg-1)/avg))
}

// claimMore feeds the first batch and then further claims to out, in claim order, until a limit is
// reached or no ready rows remain.
func (p *Packer) claimMore(ctx context.Context, c *container, batch []catalog.Row, out chan<- catalog.Row) error {
	defer close(out)
	for len(batch) > 0 {
		for _, r := range batch {
			select {
			case out <- r:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		var err error
		if batch, err = p.claimBatch(ctx, c); err != nil {
			return fmt.Errorf("claim rows for shard %d: %w", c.shard, err)
		}
	}
	return nil
}

// writeAll is the writer stage: each row, in claim order, goes into the archive or is marked failed.
func (p *Packer) writeAll(ctx context.Context, c *container, items <-chan *item) error {
	for it := range items {
		<-it.done
		err := p.writeItem(ctx, c, it)
		p.budget.Release(it.cost)
		putBuffer(it.data) // the writer copied it
		it.data = nil
		if err != nil {
			return err
		}
		p.progress(ctx, c)
	}
	return nil
}

func (p *Packer) writeItem(ctx context.Context, c *container, it *item) error {
	switch {
	case it.err != nil && ctx.Err() != nil:
		return context.Cause(ctx)
	case it.err != nil:
		return p.rowFailed(ctx, c, it.row, it.err)
	case it.stream:
		return p.writeStreamed(ctx, c, it.row)
	}
	err := c.writer.Add(ctx, header(it.row), bytes.NewReader(it.data))
	if errors.Is(err, desformat.ErrDuplicateName) {
		// Detected before anything was written: the writer is still usable.
		return p.rowFailed(ctx, c, it.row, &sourceError{kind: "invalid", row: it.row, err: err})
	}
	if err != nil {
		return fmt.Errorf("write %q into %s: %w", it.row.Name, c.obj.Spec.Key, err)
	}
	return c.added(it.row, false, it.etag)
}

func header(r catalog.Row) desformat.FileHeader {
	return desformat.FileHeader{Name: r.Name, Size: r.Size}
}

// writeStreamed copies a source object that was not fetched ahead straight from its GET into the
// archive, or into its own object under _bigFiles/ when it is big.
func (p *Packer) writeStreamed(ctx context.Context, c *container, row catalog.Row) error {
	external := row.Size >= p.lim.bigFileThreshold
	var body io.ReadCloser
	var etag string
	// Only the request is tried again: once bytes entered the archive, a payload cannot be restarted.
	err := p.retrySource(ctx, func() error {
		var err error
		body, etag, err = p.open(ctx, row)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return p.rowFailed(ctx, c, row, err)
	}
	defer body.Close()
	src := &errReader{r: body}
	err = c.writer.Add(ctx, header(row), src)
	switch {
	case err == nil:
		return c.added(row, external, etag)
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case src.err != nil || errors.Is(err, desformat.ErrSizeMismatch):
		ferr := p.rowFailed(ctx, c, row, &sourceError{kind: "unreadable", row: row, err: err})
		if ferr != nil || external {
			return ferr // an external payload failed before anything entered the archive
		}
		return fmt.Errorf("source object s3://%s/%s failed in the middle of its payload: %w", row.Bucket, row.Key, err)
	case errors.Is(err, desformat.ErrDuplicateName):
		return p.rowFailed(ctx, c, row, &sourceError{kind: "invalid", row: row, err: err})
	}
	return fmt.Errorf("write %q into %s: %w", row.Name, c.obj.Spec.Key, err)
}

// added records a row written into C, with where the writer put it and the ETag of the source object
// as it was fetched (the commit records both in the row).
func (c *container) added(row catalog.Row, external bool, etag string) error {
	if l, ok := c.writer.Last(); ok {
		if err := c.placed.add(&catalog.Placement{ID: row.ID, Location: l, SourceETag: etag}); err != nil {
			return fmt.Errorf("container %s: %w", c.obj.Name, err)
		}
	}
	c.files++
	c.bytes += row.Size
	c.sourceFailures = 0
	if external {
		c.external = append(c.external, desformat.ExternalKey(c.prefix, row.Name))
	}
	return nil
}

// rowFailed marks a row whose source object is missing or unreadable failed, so packing goes on
// without it. Many unreadable objects in a row mean the source store is failing: the container is
// abandoned instead, rather than burning the retries of every row.
func (p *Packer) rowFailed(ctx context.Context, c *container, row catalog.Row, cause error) error {
	var se *sourceError
	if errors.As(cause, &se) && se.kind == "unreadable" {
		c.sourceFailures++
		if c.sourceFailures >= p.tune.MaxSourceFailures {
			return fmt.Errorf("%d source objects in a row could not be read; last: %w", c.sourceFailures, cause)
		}
	}
	moved, err := p.d.Catalog.MarkFailed(ctx, c.obj.Name, row.ID, truncate(cause.Error(), 2000))
	if err != nil {
		p.d.Metrics.Errors.WithLabelValues("catalog").Inc()
		return fmt.Errorf("mark row %d failed: %w", row.ID, err)
	}
	if !moved {
		return fmt.Errorf("row %d is no longer claimed by %s: the container was rolled back", row.ID, c.obj.Name)
	}
	c.failed++
	p.d.Metrics.FilesFailed.Inc()
	c.log.Error(cause, "row failed", "id", row.ID, "key", row.Key)
	return nil
}

// progress writes the files and bytes so far into C's status now and then. It is best effort: a
// missed update costs nothing.
func (p *Packer) progress(ctx context.Context, c *container) {
	t := p.d.Now()
	if t.Sub(c.lastProgress) < p.tune.ProgressInterval {
		return
	}
	rate := float64(c.files) / t.Sub(c.opened).Seconds()
	c.lastProgress = t
	c.log.Info("progress", "files", c.files, "bytes", c.bytes, "failedRows", c.failed, "filesPerSecond", int(rate))
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cur := c.obj.DeepCopy()
	cur.Status.Files, cur.Status.Bytes = c.files, c.bytes
	if err := p.d.Kube.Status().Update(ctx, cur); err != nil {
		c.log.Error(err, "progress not recorded; the next update retries")
		return
	}
	c.obj = cur
}

// errReader remembers the error of the reader it wraps, to tell source failures from archive ones.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// dbUnreachable reports a failure to reach the database (as opposed to a statement it refused), after
// which an idempotent statement may be repeated.
func dbUnreachable(err error) bool {
	if catalog.IsUnavailable(err) {
		return true
	}
	var pgErr *pgconn.PgError
	return !errors.As(err, &pgErr) && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, catalog.ErrRolledBack) && isNetworkError(err)
}
