package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Range is a byte range of an object: Len bytes from Off.
type Range struct {
	Off int64
	Len int64
}

// End is the offset just past the range.
func (r Range) End() int64 { return r.Off + r.Len }

// header is the HTTP Range value; Len must be > 0.
func (r Range) header() string { return fmt.Sprintf("bytes=%d-%d", r.Off, r.End()-1) }

// ObjectReader reads one object with Range GETs. It implements io.ReaderAt, is safe for concurrent use,
// and counts its requests and bytes. Copies made by WithContext share the counters and the tail cache.
type ObjectReader struct {
	*objectState
	ctx context.Context
}

// objectState is what all copies of a reader share. Only the counters change after open.
type objectState struct {
	store       *Store
	bucket, key string
	size        int64
	etag        string // pins reads to the version opened (If-Match); empty if the store gave none
	tail        []byte // the object's last len(tail) bytes, fetched at open
	requests    atomic.Int64
	bytes       atomic.Int64
}

// OpenReaderAt opens bucket/key for reading with one request. With tailHint > 0 it fetches the object's
// last tailHint bytes (all of it when smaller) with a suffix range and learns the size from Content-Range;
// those bytes are returned and kept, so ReadAt inside them costs nothing. Callers must not modify the
// returned slice. With tailHint <= 0 it sends a HEAD and returns no tail.
//
// Stores that answer the suffix range wrongly (no or inconsistent Content-Range, the whole object) are
// detected; the reader then learns the size another way and fetches the tail with a normal range.
//
// The reader is bound to ctx: a reader kept beyond ctx's life (a cache) must be used through WithContext.
func (s *Store) OpenReaderAt(ctx context.Context, bucket, key string, tailHint int64) (*ObjectReader, []byte, error) {
	r := &ObjectReader{objectState: &objectState{store: s, bucket: bucket, key: key}, ctx: ctx}
	var err error
	if tailHint <= 0 {
		err = r.openByHead()
	} else {
		err = r.openBySuffix(tailHint)
	}
	if err != nil {
		return nil, nil, err
	}
	return r, r.tail, nil
}

// NewObjectReader makes a reader for an object whose size (and ETag, may be empty) the caller already
// knows, for example from a listing. It sends nothing until read.
func (s *Store) NewObjectReader(ctx context.Context, bucket, key string, size int64, etag string) *ObjectReader {
	return &ObjectReader{objectState: &objectState{store: s, bucket: bucket, key: key, size: size, etag: etag}, ctx: ctx}
}

// WithContext returns a copy of r whose requests use ctx; it shares r's counters and tail cache.
func (r *ObjectReader) WithContext(ctx context.Context) *ObjectReader {
	return &ObjectReader{objectState: r.objectState, ctx: ctx}
}

// Size is the object's size in bytes.
func (r *ObjectReader) Size() int64 { return r.size }

// ETag is the object's ETag as the server gave it (with quotes).
func (r *ObjectReader) ETag() string { return r.etag }

// Bucket is the bucket of the object read.
func (r *ObjectReader) Bucket() string { return r.bucket }

// Key is the key of the object read.
func (r *ObjectReader) Key() string { return r.key }

// Stats returns the requests sent and payload bytes received through this reader and its copies.
func (r *ObjectReader) Stats() Stats {
	return Stats{Requests: r.requests.Load(), Bytes: r.bytes.Load()}
}

func (r *ObjectReader) openByHead() error {
	r.requests.Add(1)
	info, err := r.store.Head(r.ctx, r.bucket, r.key)
	if err != nil {
		return err
	}
	r.size, r.etag = info.Size, info.ETag
	return nil
}

// openBySuffix sends "bytes=-n" and accepts the answer only when it is self-consistent.
func (r *ObjectReader) openBySuffix(n int64) error {
	r.requests.Add(1)
	out, err := r.store.api.GetObject(r.ctx, &s3.GetObjectInput{
		Bucket: aws.String(r.bucket), Key: aws.String(r.key), Range: aws.String("bytes=-" + strconv.FormatInt(n, 10)),
	})
	if err != nil {
		err = opErr("GetObject", r.bucket, r.key, err)
		if errors.Is(err, ErrInvalidRange) {
			// AWS answers a suffix range on an empty object with 416; the HEAD tells.
			return r.openByHead()
		}
		return err
	}
	defer out.Body.Close()
	r.etag = aws.ToString(out.ETag)
	status := responseStatus(out.ResultMetadata)
	length := aws.ToInt64(out.ContentLength)
	cr, hasCR := parseContentRange(aws.ToString(out.ContentRange))
	switch {
	case hasCR && cr.total >= 0 && cr.isSuffixOf(n) && length == cr.length():
		r.size = cr.total
		return r.readTail(out.Body, length)
	case !hasCR && status == http.StatusOK && out.ContentLength != nil && length <= n:
		// The whole object, because it is smaller than the hint (versitygw does this for empty objects).
		r.size = length
		return r.readTail(out.Body, length)
	}
	// The store misread the suffix range. Drop the body unread (it may be the whole object), learn the
	// size, and fetch the tail with a plain range.
	switch {
	case hasCR && cr.total >= 0:
		r.size = cr.total
	case !hasCR && status == http.StatusOK && out.ContentLength != nil:
		r.size = length
	default:
		if err := r.openByHead(); err != nil {
			return err
		}
	}
	return r.fetchTail(n)
}

func (r *ObjectReader) readTail(body io.Reader, n int64) error {
	tail := make([]byte, n)
	if _, err := io.ReadFull(body, tail); err != nil {
		return &Error{Op: "GetObject", Bucket: r.bucket, Key: r.key, Err: fmt.Errorf("read tail: %w", err)}
	}
	r.bytes.Add(n)
	r.tail = tail
	return nil
}

func (r *ObjectReader) fetchTail(n int64) error {
	n = min(n, r.size)
	tail := make([]byte, n)
	if n > 0 {
		if err := r.fetch(tail, r.size-n); err != nil {
			return err
		}
	}
	r.tail = tail
	return nil
}

// ReadAt reads len(p) bytes at off, with io.ReaderAt semantics: fewer bytes only at the end of the object,
// with io.EOF. An empty p or a read inside the cached tail sends nothing.
func (r *ObjectReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("objstore: read s3://%s/%s: negative offset %d", r.bucket, r.key, off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	n := min(int64(len(p)), r.size-off)
	if err := r.fill(p[:n], off); err != nil {
		return 0, err
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// fill reads exactly len(dst) bytes at off, which the caller has checked lie inside the object. The part
// covered by the tail comes from memory, so only the rest is requested.
func (r *ObjectReader) fill(dst []byte, off int64) error {
	tailOff := r.size - int64(len(r.tail))
	if end := off + int64(len(dst)); len(r.tail) > 0 && end > tailOff {
		if off >= tailOff {
			copy(dst, r.tail[off-tailOff:])
			return nil
		}
		cached := end - tailOff
		copy(dst[int64(len(dst))-cached:], r.tail[:cached])
		dst = dst[:int64(len(dst))-cached]
	}
	if len(dst) == 0 {
		return nil
	}
	return r.fetch(dst, off)
}

// fetch reads dst from the store with one Range GET. The SDK retries failed requests but not a body that
// breaks off mid-way, so that case is retried here for the missing bytes only.
func (r *ObjectReader) fetch(dst []byte, off int64) error {
	for attempt := 1; ; attempt++ {
		n, bodyErr, err := r.fetchOnce(dst, off)
		dst, off = dst[n:], off+int64(n)
		if err == nil || !bodyErr || attempt >= r.store.cfg.MaxAttempts || r.ctx.Err() != nil {
			return err
		}
	}
}

// fetchOnce returns the bytes read and whether a failure happened while reading the body.
func (r *ObjectReader) fetchOnce(dst []byte, off int64) (int, bool, error) {
	rng := Range{Off: off, Len: int64(len(dst))}
	body, err := r.openRange(rng)
	if err != nil {
		return 0, false, err
	}
	defer body.Close()
	n, err := io.ReadFull(body, dst)
	r.bytes.Add(int64(n))
	if err != nil {
		return n, true, &Error{Op: "GetObject", Bucket: r.bucket, Key: r.key, Err: fmt.Errorf("read %s: %w", rng.header(), err)}
	}
	return n, false, nil
}

// OpenRange streams rng of the object (for large payloads that should not be buffered). The caller closes
// the body. rng must lie inside the object and must not be empty.
func (r *ObjectReader) OpenRange(rng Range) (io.ReadCloser, error) {
	if err := r.checkRange(rng); err != nil {
		return nil, err
	}
	if rng.Len == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	body, err := r.openRange(rng)
	if err != nil {
		return nil, err
	}
	return &countingBody{ReadCloser: body, n: &r.bytes}, nil
}

// openRange sends one Range GET pinned to the opened version and checks the answer is that range: on
// the fast path when the store has one, through the SDK otherwise or when the fast path did not get a
// plain answer (the SDK then retries and types the error).
func (r *ObjectReader) openRange(rng Range) (io.ReadCloser, error) {
	r.requests.Add(1)
	if f := r.store.fast; f.usable() {
		body, err := f.get(r.ctx, r.bucket, r.key, rng, r.etag)
		if err == nil {
			r.store.stats.fastGets.Add(1)
			return body, nil
		}
		if r.ctx.Err() != nil {
			return nil, opErr("GetObject", r.bucket, r.key, r.ctx.Err())
		}
		r.store.stats.fastFallbacks.Add(1)
	}
	in := &s3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(r.key), Range: aws.String(rng.header())}
	setString(&in.IfMatch, r.etag)
	out, err := r.store.api.GetObject(r.ctx, in)
	if err != nil {
		return nil, opErr("GetObject", r.bucket, r.key, err)
	}
	if err := checkRangeAnswer(out, rng); err != nil {
		out.Body.Close()
		return nil, &Error{Op: "GetObject", Bucket: r.bucket, Key: r.key, Err: err}
	}
	return out.Body, nil
}

// checkRangeAnswer rejects a response that is not the range asked for. A 200 with the whole object is
// accepted only for a range starting at 0: the caller reads just the first rng.Len bytes.
func checkRangeAnswer(out *s3.GetObjectOutput, rng Range) error {
	cr, ok := parseContentRange(aws.ToString(out.ContentRange))
	if ok && cr.start == rng.Off && cr.end == rng.End()-1 {
		return nil
	}
	if !ok && rng.Off == 0 && responseStatus(out.ResultMetadata) == http.StatusOK && aws.ToInt64(out.ContentLength) >= rng.Len {
		return nil
	}
	return fmt.Errorf("asked for %s, got status %d Content-Range %q: the store does not honour ranges",
		rng.header(), responseStatus(out.ResultMetadata), aws.ToString(out.ContentRange))
}

func (r *ObjectReader) checkRange(rng Range) error {
	if rng.Off < 0 || rng.Len < 0 || rng.End() > r.size {
		return &Error{Op: "GetObject", Bucket: r.bucket, Key: r.key, Kind: ErrInvalidRange,
			Err: fmt.Errorf("range [%d,%d) outside the %d-byte object", rng.Off, rng.End(), r.size)}
	}
	return nil
}

// contentRange is a parsed "bytes START-END/TOTAL" (total -1 for "*").
type contentRange struct{ start, end, total int64 }

func (c contentRange) length() int64 { return c.end - c.start + 1 }

// isSuffixOf checks the range is the last min(n, total) bytes, catching stores that read "bytes=-n" as
// "bytes=0-n".
func (c contentRange) isSuffixOf(n int64) bool {
	want := min(n, c.total)
	return c.end == c.total-1 && c.start == c.total-want
}

func parseContentRange(s string) (contentRange, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !ok {
		return contentRange{}, false
	}
	span, total, ok := strings.Cut(rest, "/")
	if !ok {
		return contentRange{}, false
	}
	a, b, ok := strings.Cut(span, "-")
	if !ok {
		return contentRange{}, false
	}
	var c contentRange
	var err1, err2, err3 error
	c.start, err1 = strconv.ParseInt(a, 10, 64)
	c.end, err2 = strconv.ParseInt(b, 10, 64)
	if total == "*" {
		c.total = -1
	} else {
		c.total, err3 = strconv.ParseInt(total, 10, 64)
	}
	if err1 != nil || err2 != nil || err3 != nil || c.start < 0 || c.end < c.start || (c.total >= 0 && c.end >= c.total) {
		return contentRange{}, false
	}
	return c, true
}

// responseStatus digs the HTTP status out of the SDK's result metadata (0 if unavailable, e.g. through a
// fake).
func responseStatus(md middleware.Metadata) int {
	if resp, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok && resp != nil {
		return resp.StatusCode
	}
	return 0
}
