package objstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Multipart limits of S3.
const (
	MinPartSize = 5 << 20 // every part but the last
	MaxParts    = 10000
)

// Uploader defaults.
const (
	DefaultPartSize          = 16 << 20
	DefaultUploadConcurrency = 4
)

// abortTimeout bounds the clean-up after a failure, which runs even when the upload's context is gone.
const abortTimeout = 30 * time.Second

// ErrUploadClosed is returned by Write, Complete and Close after the upload finished or was aborted.
var ErrUploadClosed = errors.New("objstore: upload already completed or aborted")

// UploadOptions configure NewUploader.
type UploadOptions struct {
	// PartSize is the size of every part but the last (DefaultPartSize if 0, at least MinPartSize). An
	// object of at most PartSize bytes goes up in one PUT. Objects above PartSize × MaxParts fail.
	PartSize int64
	// Concurrency is the number of parts uploaded at once (DefaultUploadConcurrency if 0). Memory use is
	// at most PartSize × (Concurrency+1).
	Concurrency int
	// IfNoneMatch makes the write create-only: ErrExists if the key exists (checked before the first
	// part and enforced by If-None-Match on the final PUT or CompleteMultipartUpload).
	IfNoneMatch  bool
	ContentType  string
	Metadata     map[string]string
	CacheControl string
	// OnUploadID is called with the multipart upload's ID once it exists and before any part is sent, so
	// that it can be recorded for recovery. An error aborts the upload. Never called for a single PUT.
	OnUploadID func(uploadID string) error
}

func (o UploadOptions) withDefaults() UploadOptions {
	if o.PartSize <= 0 {
		o.PartSize = DefaultPartSize
	}
	o.PartSize = max(o.PartSize, MinPartSize)
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultUploadConcurrency
	}
	return o
}

// Upload streams one object. Write buffers up to PartSize; full parts go up in the background. Complete
// (or Close) finishes it; Abort cancels it. Any failure aborts the multipart upload before it is reported,
// so no upload is left behind. An Upload is not safe for concurrent use, except UploadID.
type Upload struct {
	store       *Store
	bucket, key string
	opts        UploadOptions
	parentCtx   context.Context
	ctx         context.Context // canceled on the first part failure or Abort
	cancel      context.CancelFunc

	buf      []byte        // the part being filled
	free     chan []byte   // recycled part buffers
	slots    chan struct{} // one per part in flight
	wg       sync.WaitGroup
	nextPart int32
	size     int64
	done     bool  // completed or aborted
	failure  error // why it was aborted, returned again by later calls
	result   Result
	// createdSince is when a CreateMultipartUpload whose outcome is unknown was sent (zero if none):
	// the store may hold an upload whose ID never reached us.
	createdSince time.Time

	mu       sync.Mutex // guards the fields below, shared with part goroutines and UploadID
	uploadID string
	parts    []s3types.CompletedPart
	err      error // first part failure
}

// NewUploader starts streaming bucket/key. Nothing is sent until the data exceeds one part or Complete is
// called. ctx governs the whole upload, including parts sent in the background.
func (s *Store) NewUploader(ctx context.Context, bucket, key string, opts UploadOptions) *Upload {
	opts = opts.withDefaults()
	uctx, cancel := context.WithCancel(ctx)
	return &Upload{
		store: s, bucket: bucket, key: key, opts: opts,
		parentCtx: ctx, ctx: uctx, cancel: cancel,
		free:  make(chan []byte, opts.Concurrency+1),
		slots: make(chan struct{}, opts.Concurrency),
	}
}

// UploadID is the multipart upload's ID, empty until one was created (never, for a single PUT).
func (u *Upload) UploadID() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.uploadID
}

// Write buffers p, sending full parts in the background. A part that is full is only sent once more data
// arrives, so an object of exactly PartSize bytes still goes up in one PUT.
func (u *Upload) Write(p []byte) (int, error) {
	if u.done {
		return 0, u.closedErr()
	}
	written := 0
	for len(p) > 0 {
		if len(u.buf) == cap(u.buf) && int64(cap(u.buf)) < u.opts.PartSize {
			u.grow(len(p))
			continue
		}
		if len(u.buf) == cap(u.buf) {
			if err := u.sendPart(); err != nil {
				return written, u.fail(err)
			}
			continue
		}
		n := copy(u.buf[len(u.buf):cap(u.buf)], p)
		u.buf = u.buf[:len(u.buf)+n]
		p = p[n:]
		written += n
		u.size += int64(n)
	}
	if err := u.partErr(); err != nil {
		return written, u.fail(err)
	}
	return written, nil
}

// Close completes the upload (io.WriteCloser); see Complete.
func (u *Upload) Close() error {
	_, err := u.Complete()
	return err
}

// Complete sends what is buffered and finishes the object. On failure the upload is aborted and the error
// returned (ErrExists for a create-only write on an existing key).
func (u *Upload) Complete() (Result, error) {
	if u.done {
		if u.failure == nil && u.result != (Result{}) {
			return u.result, nil
		}
		return Result{}, u.closedErr()
	}
	if u.UploadID() == "" {
		return u.putSingle()
	}
	if len(u.buf) > 0 {
		if err := u.sendPart(); err != nil {
			return Result{}, u.fail(err)
		}
	}
	u.wg.Wait()
	if err := u.partErr(); err != nil {
		return Result{}, u.fail(err)
	}
	etag, err := u.store.complete(u.ctx, u.bucket, u.key, u.UploadID(), u.parts, u.opts.IfNoneMatch)
	if err != nil {
		return Result{}, u.fail(err)
	}
	u.finish(Result{Size: u.size, ETag: etag, Parts: len(u.parts), UploadID: u.UploadID()})
	return u.result, nil
}

// Abort stops the upload and aborts the multipart upload if one was created. It is a no-op after a
// failure already aborted it; after a successful Complete it returns ErrUploadClosed.
func (u *Upload) Abort(ctx context.Context) error {
	if u.done {
		if u.failure == nil && u.result != (Result{}) {
			return ErrUploadClosed
		}
		return nil
	}
	u.failure = ErrUploadClosed
	return u.abort(ctx)
}

// closedErr is what calls after the end return: the failure that ended the upload, if any.
func (u *Upload) closedErr() error {
	if u.failure != nil && !errors.Is(u.failure, ErrUploadClosed) {
		return fmt.Errorf("%w: %w", ErrUploadClosed, u.failure)
	}
	return ErrUploadClosed
}

// grow enlarges the first buffer step by step, so a small object never costs a whole PartSize of memory.
func (u *Upload) grow(need int) {
	newCap := min(max(2*cap(u.buf), len(u.buf)+need, 64<<10), int(u.opts.PartSize))
	nb := make([]byte, len(u.buf), newCap)
	copy(nb, u.buf)
	u.buf = nb
}

func (u *Upload) abort(ctx context.Context) error {
	u.done = true
	u.cancel()
	u.wg.Wait() // parts still in flight could otherwise outlive the abort
	u.buf = nil
	id := u.UploadID()
	if id == "" {
		if !u.createdSince.IsZero() {
			return u.abortUnheard(ctx)
		}
		return nil
	}
	return u.store.abortFully(ctx, u.bucket, u.key, id)
}

// clockSkew is how far the store's clock may be behind ours when abortUnheard compares its
// Initiated times with the moment the create was sent.
const clockSkew = time.Minute

// createOutcomeUnknown reports whether a failed CreateMultipartUpload may still have created the
// upload: the request was cut off (a cancelled context, a timeout, a reset connection) or the store
// answered a server error. A 4xx answer means the store refused it and created nothing.
func createOutcomeUnknown(err error) bool {
	var resp *smithyhttp.ResponseError
	if errors.As(err, &resp) {
		return resp.HTTPStatusCode() >= 500
	}
	return true
}

// abortUnheard aborts the uploads of this key that a create whose answer never arrived may have
// started: the store can create the upload and the client still see an error (a cancel that lands
// while the request is in flight), and without its ID the upload would be left behind. Only uploads
// initiated since the create was sent (less clockSkew) are touched; an older one belongs to an earlier
// writer whose recovery may still complete it. DES keys are per container, so no other live writer
// uses this key.
func (u *Upload) abortUnheard(ctx context.Context) error {
	since := u.createdSince.Add(-clockSkew)
	var errs []error
	for up, err := range u.store.KeyUploads(ctx, u.bucket, u.key) {
		if err != nil {
			return fmt.Errorf("list uploads of %s after a create with no answer: %w", u.key, err)
		}
		if up.Initiated.Before(since) {
			continue
		}
		if err := u.store.abortFully(ctx, u.bucket, u.key, up.UploadID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// abortAttempts and abortRecheck bound abortFully's repeats.
const (
	abortAttempts = 5
	abortRecheck  = 200 * time.Millisecond
)

// abortFully aborts a multipart upload until the store no longer lists it. A part upload the store
// was still processing when the abort arrived (its client had already given up) can bring the
// upload back: S3's documentation says to abort "multiple times" for that reason, and versitygw
// does it too (seen under load in TestS3FailuresRollBackTheContainer).
func (s *Store) abortFully(ctx context.Context, bucket, key, id string) error {
	for attempt := 1; ; attempt++ {
		if err := s.AbortMultipart(ctx, bucket, key, id); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		// Give a part the store is still writing the time to land before looking (a rare path:
		// aborts follow failures).
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(abortRecheck):
		}
		listed, err := s.uploadListed(ctx, bucket, key, id)
		if err != nil || !listed {
			return err
		}
		if attempt == abortAttempts {
			return fmt.Errorf("upload %s of %s is still listed after %d aborts", id, key, attempt)
		}
	}
}

// uploadListed reports whether the store still lists upload id of key.
func (s *Store) uploadListed(ctx context.Context, bucket, key, id string) (bool, error) {
	for up, err := range s.KeyUploads(ctx, bucket, key) {
		if err != nil {
			return false, fmt.Errorf("list uploads of %s: %w", key, err)
		}
		if up.UploadID == id {
			return true, nil
		}
	}
	return false, nil
}

// fail aborts the upload after err and returns err, joined with the abort's own failure if any.
func (u *Upload) fail(err error) error {
	if u.done {
		return err
	}
	u.failure = err
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.parentCtx), abortTimeout)
	defer cancel()
	if aerr := u.abort(ctx); aerr != nil {
		return errors.Join(err, fmt.Errorf("abort after failure: %w", aerr))
	}
	return err
}

func (u *Upload) finish(r Result) {
	u.done, u.result, u.buf = true, r, nil
	u.cancel()
}

// putSingle sends the whole (small) object in one PUT; no multipart upload is ever created for it.
func (u *Upload) putSingle() (Result, error) {
	res, err := u.store.Put(u.ctx, u.bucket, u.key, u.buf, PutOptions{
		IfNoneMatch: u.opts.IfNoneMatch, ContentType: u.opts.ContentType,
		Metadata: u.opts.Metadata, CacheControl: u.opts.CacheControl,
	})
	if err != nil {
		return Result{}, u.fail(err)
	}
	u.finish(res)
	return res, nil
}

// sendPart hands the full buffer to a background upload, starting the multipart upload first if needed.
// It blocks while Concurrency parts are in flight.
func (u *Upload) sendPart() error {
	if u.UploadID() == "" {
		if err := u.create(); err != nil {
			return err
		}
	}
	if u.nextPart >= MaxParts {
		return fmt.Errorf("objstore: upload s3://%s/%s: more than %d parts of %d bytes; use a larger PartSize",
			u.bucket, u.key, MaxParts, u.opts.PartSize)
	}
	select {
	case u.slots <- struct{}{}:
	case <-u.ctx.Done():
		if err := u.partErr(); err != nil {
			return err
		}
		return u.ctx.Err()
	}
	u.nextPart++
	data := u.buf
	u.buf = u.newBuffer()
	u.wg.Add(1)
	go u.uploadPart(u.nextPart, data)
	return nil
}

// create starts the multipart upload and reports its ID before any part is sent.
func (u *Upload) create() error {
	if u.opts.IfNoneMatch {
		// Fail before sending gigabytes; the conditional complete is what actually guarantees it.
		exists, err := u.store.exists(u.ctx, u.bucket, u.key)
		if err != nil {
			return err
		}
		if exists {
			return &Error{Op: "CreateMultipartUpload", Bucket: u.bucket, Key: u.key, Kind: ErrExists,
				Err: errors.New("key exists (checked with HEAD before uploading)")}
		}
	}
	in := &s3.CreateMultipartUploadInput{Bucket: aws.String(u.bucket), Key: aws.String(u.key), Metadata: u.opts.Metadata}
	setString(&in.ContentType, u.opts.ContentType)
	setString(&in.CacheControl, u.opts.CacheControl)
	sent := time.Now()
	out, err := u.store.api.CreateMultipartUpload(u.ctx, in)
	if err != nil {
		if createOutcomeUnknown(err) {
			u.createdSince = sent
		}
		return opErr("CreateMultipartUpload", u.bucket, u.key, err)
	}
	u.mu.Lock()
	u.uploadID = aws.ToString(out.UploadId)
	u.mu.Unlock()
	if u.opts.OnUploadID != nil {
		if err := u.opts.OnUploadID(u.uploadID); err != nil {
			return fmt.Errorf("objstore: upload s3://%s/%s: OnUploadID: %w", u.bucket, u.key, err)
		}
	}
	return nil
}

func (u *Upload) uploadPart(num int32, data []byte) {
	defer u.wg.Done()
	out, err := u.store.api.UploadPart(u.ctx, &s3.UploadPartInput{
		Bucket: aws.String(u.bucket), Key: aws.String(u.key), UploadId: aws.String(u.UploadID()),
		PartNumber: aws.Int32(num), Body: byteReader(data), ContentLength: aws.Int64(int64(len(data))),
	})
	u.mu.Lock()
	if err != nil && u.err == nil {
		u.err = opErr("UploadPart", u.bucket, u.key, fmt.Errorf("part %d: %w", num, err))
		u.cancel() // stop the other parts: the upload is lost anyway
	}
	if err == nil {
		u.parts = append(u.parts, s3types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
	}
	u.mu.Unlock()
	u.releaseBuffer(data)
	<-u.slots
}

func (u *Upload) partErr() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// newBuffer reuses a sent part's buffer when one is free. At most Concurrency+1 exist: one per part in
// flight (a slot is held until its buffer is back) plus the one being filled.
func (u *Upload) newBuffer() []byte {
	select {
	case b := <-u.free:
		return b[:0]
	default:
		return make([]byte, 0, u.opts.PartSize)
	}
}

func (u *Upload) releaseBuffer(b []byte) {
	select {
	case u.free <- b:
	default:
	}
}
