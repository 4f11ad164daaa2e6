// Package containercheck reads a container's object back and checks it: against what its writer
// recorded (the DesContainer's checksums), against the catalog's rows, and payload by payload.
//
// Why a package of its own: crash recovery (controllers) decides from these checks whether to roll a
// container forward or back, and `kubectl des verify` must judge a container by the same rules, so
// that "verify says it is good" and "recovery would keep it" cannot drift apart. It has no Kubernetes
// imports: callers pass what they read from their resources.
//
// Findings about the object are *Problem errors (errors.Is with ErrNoObject, ErrDamaged,
// ErrChecksums, ErrPayloads, ErrRows); any other error is a failure to look (the store or the
// catalog did not answer), after which nothing is known about the object.
package containercheck

import (
	"context"
	"errors"
	"fmt"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
)

// Kinds of Problem.
var (
	// ErrNoObject: nothing is stored at the container's key.
	ErrNoObject = errors.New("no object at its key")
	// ErrDamaged: the object does not open as an archive, or its meta region does not parse.
	ErrDamaged = errors.New("the object does not verify")
	// ErrChecksums: the object's index or payload checksum is not the one its writer recorded.
	ErrChecksums = errors.New("the object's checksums differ from the recorded ones")
	// ErrPayloads: payloads do not read back as their index and checksums say (Reader.Verify).
	ErrPayloads = errors.New("payloads do not verify")
	// ErrRows: the catalog's rows of the container are not the object's files where the object has them.
	ErrRows = errors.New("the catalog rows do not match the object")
)

// Problem is a finding about the object, as opposed to a failure to look at it. Its text is the
// finding as a person reads it; recovery records it as a reason.
type Problem struct {
	// Kind is one of the ErrNoObject … ErrRows sentinels.
	Kind error
	msg  string
	// Err is the underlying cause, if any (a desformat error, catalog.ErrPlacementMismatch, …).
	Err error
}

func (p *Problem) Error() string { return p.msg }

// Unwrap exposes Kind and Err to errors.Is and errors.As.
func (p *Problem) Unwrap() []error {
	if p.Err == nil {
		return []error{p.Kind}
	}
	return []error{p.Kind, p.Err}
}

func problem(kind, cause error, format string, a ...any) *Problem {
	return &Problem{Kind: kind, msg: fmt.Sprintf(format, a...), Err: cause}
}

// AsProblem returns err's Problem, if err is one (or wraps one).
func AsProblem(err error) (*Problem, bool) {
	var p *Problem
	ok := errors.As(err, &p)
	return p, ok
}

// Recorded is what the container's writer recorded about the object (the DesContainer's status).
// Empty checksums mean the writer recorded none yet: the summary is then not compared.
type Recorded struct {
	IndexChecksum, PayloadChecksum string
}

// Object is a container's object, opened: its footer and index checksum verified, its summary
// recomputed and compared with what the writer recorded.
type Object struct {
	Bucket, Key string
	Reader      *desformat.Reader
	Summary     desformat.Summary

	locs []desformat.Location // Locations, read once
}

// Open opens the object at bucket/key in store and checks it against rec. External payloads are read
// from the same bucket, as the packer writes them.
func Open(ctx context.Context, store *objstore.Store, bucket, key string, rec Recorded) (*Object, error) {
	ra, _, err := store.OpenReaderAt(ctx, bucket, key, desformat.DefaultTailSize)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, problem(ErrNoObject, err, "%s", ErrNoObject)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	opts := desformat.ReaderOptions{TailSize: desformat.DefaultTailSize, External: store.Blobs(bucket, objstore.UploadOptions{})}
	// Every failure to open or summarise counts as damage, as recovery has always judged it: the tail
	// is already fetched, so what fails here is almost always the bytes, not the store.
	r, err := desformat.NewReader(ra, ra.Size(), opts)
	if err != nil {
		return nil, problem(ErrDamaged, err, "%s: %v", ErrDamaged, err)
	}
	o := &Object{Bucket: bucket, Key: key, Reader: r}
	if o.Summary, err = r.Summary(ctx); err != nil {
		return nil, problem(ErrDamaged, err, "%s: %v", ErrDamaged, err)
	}
	if err := checkRecorded(o.Summary, rec); err != nil {
		return nil, err
	}
	return o, nil
}

// checkRecorded compares the object's summary with the writer's record, when there is one.
func checkRecorded(s desformat.Summary, rec Recorded) error {
	if rec.IndexChecksum == "" {
		return nil
	}
	if rec.IndexChecksum != s.IndexChecksum() || rec.PayloadChecksum != s.PayloadChecksum() {
		return problem(ErrChecksums, nil, "the object's checksums %s/%s differ from the recorded %s/%s",
			s.IndexChecksum(), s.PayloadChecksum(), rec.IndexChecksum, rec.PayloadChecksum)
	}
	return nil
}

// Locations returns every file's location in the object (read once). Meta that does not parse is a
// Problem; a failed read of the meta region is not.
func (o *Object) Locations(ctx context.Context) ([]desformat.Location, error) {
	if o.locs != nil {
		return o.locs, nil
	}
	locs, err := o.Reader.Locations(ctx)
	if err != nil {
		if ctx.Err() != nil || !errors.Is(err, desformat.ErrCorrupt) {
			return nil, fmt.Errorf("read the placements in %s: %w", o.Key, err)
		}
		return nil, problem(ErrDamaged, err, "%s: %v", ErrDamaged, err)
	}
	o.locs = locs
	return locs, nil
}

// PlaceClaimed pairs the object's files with the rows claimed by the container (catalog.ClaimedIDs):
// each file must have exactly one claimed row of its name and each claimed row a file. The placements
// are what a roll-forward commit records.
func (o *Object) PlaceClaimed(ctx context.Context, claimed map[string]int64) ([]catalog.Placement, error) {
	locs, err := o.Locations(ctx)
	if err != nil {
		return nil, err
	}
	ps, err := catalog.PlaceClaimed(locs, claimed)
	if err != nil {
		return nil, problem(ErrRows, err, "the object holds %d files but %d rows are claimed by the container (%v)", len(locs), len(claimed), err)
	}
	return ps, nil
}

// VerifyPayloads reads every payload back (external ones from the bucket) and checks its length and
// CRC-32C, and every meta object, as `des verify` does; checked (when not nil) is called after each
// index entry, for a progress bar. The report is returned either way; the error is a Problem when
// anything failed to verify, or the failure that stopped the reading.
func (o *Object) VerifyPayloads(ctx context.Context, checked func(desformat.Entry)) (*desformat.VerifyReport, error) {
	rep, err := o.Reader.VerifyProgress(ctx, checked)
	if err != nil {
		return rep, fmt.Errorf("verify the payloads of %s: %w", o.Key, err)
	}
	if rep.ProblemCount > 0 {
		return rep, problem(ErrPayloads, rep.Err(), "%d of %d payloads or their meta do not verify; the first: %v",
			rep.ProblemCount, rep.Entries, rep.Problems[0])
	}
	return rep, nil
}
