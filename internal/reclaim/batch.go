package reclaim

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
)

// Refusal reasons: the label of des_source_deletions_refused_total and the first word of the reason
// recorded in the row.
const (
	ReasonCRCMismatch = "crc_mismatch" // the archived copy does not match (or is missing)
	ReasonNoCRC       = "no_crc"       // no CRC-32C was recorded when the source was fetched
	ReasonChanged     = "changed"      // the source object is not the one packed (ETag or content)
	ReasonSizeChanged = "size_changed" // the source object has another size than the one packed
)

// state is where one row is in its batch.
type state int

const (
	pending  state = iota // not decided yet
	verified              // archived copy matches; after the source check: may be deleted
	gone                  // the source object is missing: record it deleted
	refused               // kept, with a reason
	failed                // left for the next pass (a store error)
	deleted               // deleted by this pass
	wouldGo               // dry run: passed every check
)

// row is one catalog row on its way through a batch.
type row struct {
	catalog.ReclaimRow
	state  state
	reason string // label, when refused
	msg    string // what a person reads, when refused
	etag   string // the ETag to delete (checked by HEAD or GET, or the recorded one)
}

func (w *row) refuse(reason, format string, args ...any) {
	w.state, w.reason, w.msg = refused, reason, reason+": "+fmt.Sprintf(format, args...)
}

// batch is up to BatchSize rows of one container, verified, deleted and recorded together.
type batch struct {
	r       *Reclaimer
	rc      catalog.ReclaimContainer
	archive *objstore.ObjectReader
	log     logr.Logger
	rows    []*row
	stats   Stats
}

// run is the order that makes a crash harmless: verify (read back, source check), delete, record.
func (b *batch) run(ctx context.Context) error {
	if err := b.readBack(ctx); err != nil {
		b.failPending(err)
		return b.record(ctx, err)
	}
	b.checkSources(ctx)
	if !b.r.o.DryRun {
		b.delete(ctx)
	}
	return b.record(ctx, nil)
}

// failPending leaves every undecided row for the next pass.
func (b *batch) failPending(err error) {
	for _, w := range b.rows {
		if w.state == pending || w.state == verified {
			w.state = failed
		}
	}
	b.log.Error(err, "reading back the archived copies failed; the batch is left for the next pass", "rows", len(b.rows))
}

// readBack reads every row's payload back from the archive and compares its CRC-32C with the one
// recorded at fetch. Payloads inside the container are read in coalesced ranges (they were written in
// id order, so a batch's payloads mostly touch); external ones with one GET each.
func (b *batch) readBack(ctx context.Context) error {
	byName := make(map[string]*row, len(b.rows))
	var locs []desformat.Location
	var external []*row
	for _, w := range b.rows {
		switch {
		case !w.HasCRC:
			w.refuse(ReasonNoCRC, "no CRC-32C was recorded when the source was fetched (packed by DES v1 or before placements were recorded): the source is kept")
		case w.Location.Size != w.Size:
			w.refuse(ReasonCRCMismatch, "the archived copy is %d bytes, the catalog says %d: the source is kept", w.Location.Size, w.Size)
		case w.IsExternal():
			external = append(external, w)
		case w.Location.Size == 0:
			b.compare(w, desformat.PayloadCRC(nil))
		case w.Offset < 0 || w.Offset+w.Location.Size > b.archive.Size():
			w.refuse(ReasonCRCMismatch, "the recorded placement [%d, +%d) lies outside the %d-byte container: the source is kept",
				w.Offset, w.Location.Size, b.archive.Size())
		default:
			byName[w.Name] = w
			locs = append(locs, w.Location)
		}
	}
	plan := desformat.PlanLocations(locs, desformat.DefaultBatchOptions)
	ranges := make([]objstore.Range, len(plan))
	for i, p := range plan {
		ranges[i] = objstore.Range{Off: p.Offset, Len: p.Length}
	}
	err := objstore.FetchRanges(ctx, b.archive, ranges, b.r.o.Concurrency, func(i int, data []byte) error {
		for _, s := range plan[i].Spans {
			b.compare(byName[s.Name], desformat.PayloadCRC(data[s.Offset:s.Offset+s.Length]))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read back %d ranges of %s: %w", len(ranges), b.rc.Key, err)
	}
	b.each(ctx, external, b.readExternal)
	return nil
}

// compare decides a row by the CRC-32C of its archived copy.
func (b *batch) compare(w *row, got uint32) {
	if got != w.CRC32C {
		w.refuse(ReasonCRCMismatch, "archived copy does not match the fetched CRC-32C (archive %08x, fetched %08x): the source is kept", got, w.CRC32C)
		return
	}
	w.state = verified
}

// readExternal reads back a big payload stored in its own object.
func (b *batch) readExternal(ctx context.Context, w *row) {
	body, _, err := b.r.d.Archive.Get(ctx, b.rc.Bucket, w.ExternalKey, nil)
	if errors.Is(err, objstore.ErrNotFound) {
		w.refuse(ReasonCRCMismatch, "the archived copy s3://%s/%s is missing: the source is kept", b.rc.Bucket, w.ExternalKey)
		return
	}
	if err != nil {
		b.fail(w, err, "read back a big payload")
		return
	}
	defer body.Close()
	n, crc, err := payloadCRC(body)
	switch {
	case err != nil:
		b.fail(w, err, "read back a big payload")
	case n != w.Size:
		w.refuse(ReasonCRCMismatch, "the archived copy s3://%s/%s is %d bytes, the catalog says %d: the source is kept", b.rc.Bucket, w.ExternalKey, n, w.Size)
	default:
		b.compare(w, crc)
	}
}

// checkSources makes sure each verified row's source object is still the one packed (see Mode).
func (b *batch) checkSources(ctx context.Context) {
	var check []*row
	for _, w := range b.rows {
		if w.state != verified {
			continue
		}
		if w.SourceETag != "" && b.r.o.Mode == Conditional && !b.r.o.DryRun {
			w.etag = w.SourceETag // the delete's ETag condition is the check
			continue
		}
		check = append(check, w)
	}
	b.each(ctx, check, func(ctx context.Context, w *row) {
		if w.SourceETag == "" {
			b.compareSource(ctx, w)
		} else {
			b.headSource(ctx, w)
		}
	})
}

// headSource compares the source's ETag and size with the ones recorded when it was fetched.
func (b *batch) headSource(ctx context.Context, w *row) {
	info, err := b.r.d.Source.Head(ctx, w.Bucket, w.Key)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		w.state = gone
	case err != nil:
		b.fail(w, err, "check the source object")
	case info.Size != w.Size:
		w.refuse(ReasonSizeChanged, "source object changed since it was packed: %d bytes, packed %d: the source is kept", info.Size, w.Size)
	case info.ETag != w.SourceETag:
		w.refuse(ReasonChanged, "source object changed since it was packed: ETag %s, packed %s: the source is kept", info.ETag, w.SourceETag)
	default:
		w.etag = info.ETag
	}
}

// compareSource handles a row committed without an ETag (a recovery's roll-forward): the source's
// bytes are read and compared with the archived CRC-32C; if they match, the ETag of that read is the
// version deleted.
func (b *batch) compareSource(ctx context.Context, w *row) {
	body, info, err := b.r.d.Source.Get(ctx, w.Bucket, w.Key, nil)
	if errors.Is(err, objstore.ErrNotFound) {
		w.state = gone
		return
	}
	if err != nil {
		b.fail(w, err, "read the source object")
		return
	}
	defer body.Close()
	if info.Size != w.Size {
		w.refuse(ReasonSizeChanged, "source object changed since it was packed: %d bytes, packed %d: the source is kept", info.Size, w.Size)
		return
	}
	n, crc, err := payloadCRC(body)
	switch {
	case err != nil:
		b.fail(w, err, "read the source object")
	case n != w.Size || crc != w.CRC32C:
		w.refuse(ReasonChanged, "source object differs from the archived copy (%d bytes, CRC-32C %08x; archived %08x); no ETag was recorded: the source is kept",
			n, crc, w.CRC32C)
	default:
		w.etag = info.ETag
	}
}

// payloadCRC reads r to its end and returns how many bytes it gave and their PayloadCRC.
func payloadCRC(r io.Reader) (int64, uint32, error) {
	h := desformat.NewPayloadHash()
	n, err := io.Copy(h, r)
	return n, h.Sum32(), err
}

// fail leaves a row for the next pass.
func (b *batch) fail(w *row, err error, what string) {
	w.state = failed
	b.log.Error(err, what+" failed; the row is left for the next pass", "id", w.ID, "bucket", w.Bucket, "key", w.Key)
}

// each runs fn for rows with at most Concurrency at once.
func (b *batch) each(ctx context.Context, rows []*row, fn func(context.Context, *row)) {
	var g errgroup.Group
	g.SetLimit(b.r.o.Concurrency)
	for _, w := range rows {
		g.Go(func() error {
			if ctx.Err() != nil {
				w.state = failed
				return nil
			}
			fn(ctx, w)
			return nil
		})
	}
	_ = g.Wait() // fn reports through the row
}
