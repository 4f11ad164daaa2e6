// Package objstoretest wraps a real S3 client to inject faults and observe concurrency in tests. The
// requests that are not failed go to the real server unchanged.
package objstoretest

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/datavision/des/internal/objstore"
)

// Operation names are the S3 API method names: "GetObject", "UploadPart", ...

// Rule injects a fault into calls of one operation.
type Rule struct {
	Op string
	// Nth selects the call (1-based, counted per operation since Wrap); 0 selects every call.
	Nth int
	// Range, when set, selects only the GetObject calls whose Range header is exactly this
	// ("bytes=2000-2999"). Concurrent readers send their calls in no fixed order, so "the third call"
	// is not a fixed range of the object; a range is.
	Range string
	// Err is returned instead of sending the request (nil: send it).
	Err error
	// Delay is waited before the call (or before failing it), honouring the context.
	Delay time.Duration
	// RewriteRange changes a GetObject's Range header before it is sent, to imitate stores that misread
	// ranges (return "" to send no Range at all).
	RewriteRange func(rng string) string
	// DropContentRange removes Content-Range from a GetObject answer, as some stores do.
	DropContentRange bool
	// LoseResponse sends the request to the server and then answers ErrResponseLost instead of its
	// answer: the store did the work, the client never heard (a timeout, a reset connection).
	LoseResponse bool
	// DeleteKeyError makes a DeleteObjects answer an error for the keys it returns a code for: those
	// keys are taken out of the request (the store keeps them) and reported failed with that code, as
	// a store does for a key it refuses (AccessDenied, InternalError, or PreconditionFailed where it
	// enforces ETags). The other keys go to the server.
	DeleteKeyError func(key string) (code string)
	// After runs once the real call returned, before its answer is handed back: a test makes
	// something else fail at that instant (cancel a context, close a database pool).
	After func()
}

// ErrResponseLost is what a LoseResponse rule answers after the real call.
var ErrResponseLost = errors.New("objstoretest: the response was lost after the store handled the request")

// Faults is an objstore.API that forwards to a real client except where a Rule applies. It counts calls
// and, per operation, the calls in flight (for GetObject until its body is closed).
type Faults struct {
	next objstore.API

	mu       sync.Mutex
	rules    []Rule
	calls    map[string]int
	inFlight map[string]int
	maxIn    map[string]int
}

// Wrap returns a Faults forwarding to next.
func Wrap(next objstore.API) *Faults {
	return &Faults{next: next, calls: map[string]int{}, inFlight: map[string]int{}, maxIn: map[string]int{}}
}

// Add installs rules.
func (f *Faults) Add(rules ...Rule) *Faults {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, rules...)
	return f
}

// FailNth makes the nth call of op fail with err without reaching the server.
func (f *Faults) FailNth(op string, n int, err error) *Faults {
	return f.Add(Rule{Op: op, Nth: n, Err: err})
}

// Calls returns how many times op was called.
func (f *Faults) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// MaxInFlight returns the largest number of concurrent calls of op seen.
func (f *Faults) MaxInFlight(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxIn[op]
}

// matching returns the rules applying to the nth call of op, for the byte range rng ("" if none).
func (f *Faults) matching(op string, n int, rng string) []Rule {
	var out []Rule
	for _, r := range f.rules {
		if r.Op == op && (r.Nth == 0 || r.Nth == n) && (r.Range == "" || r.Range == rng) {
			out = append(out, r)
		}
	}
	return out
}

// enter counts the call, applies the rules' delay and error, and returns the function that ends the
// in-flight period and the rules that apply. rng is the call's Range header ("" if none).
func (f *Faults) enter(ctx context.Context, op, rng string) (func(), []Rule, error) {
	f.mu.Lock()
	f.calls[op]++
	n := f.calls[op]
	f.inFlight[op]++
	f.maxIn[op] = max(f.maxIn[op], f.inFlight[op])
	rules := f.matching(op, n, rng)
	f.mu.Unlock()
	var delay time.Duration
	var err error
	for _, r := range rules {
		delay += r.Delay
		if err == nil {
			err = r.Err
		}
	}
	var once sync.Once
	leave := func() {
		once.Do(func() {
			f.mu.Lock()
			f.inFlight[op]--
			f.mu.Unlock()
		})
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			leave()
			return leave, nil, ctx.Err()
		}
	}
	if err != nil {
		leave()
	}
	return leave, rules, err
}

// call runs one operation through the rules.
func call[In, Out any](ctx context.Context, f *Faults, op string, in In, optFns []func(*s3.Options),
	next func(context.Context, In, ...func(*s3.Options)) (Out, error)) (Out, error) {
	leave, rules, err := f.enter(ctx, op, "")
	if err != nil {
		var zero Out
		return zero, err
	}
	defer leave()
	out, err := next(ctx, in, optFns...)
	for _, r := range rules {
		if r.After != nil {
			r.After()
		}
	}
	for _, r := range rules {
		if r.LoseResponse && err == nil {
			var zero Out
			return zero, ErrResponseLost
		}
	}
	return out, err
}

// GetObject runs the S3 call through the fault rules, then (unless a rule answers) the real client. It
// keeps the call in flight until the body is closed: that is when the connection is free.
func (f *Faults) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	leave, rules, err := f.enter(ctx, "GetObject", aws.ToString(in.Range))
	if err != nil {
		return nil, err
	}
	in = rewriteRange(in, rules)
	out, err := f.next.GetObject(ctx, in, optFns...)
	if err != nil {
		leave()
		return nil, err
	}
	for _, r := range rules {
		if r.DropContentRange {
			out.ContentRange = nil
		}
	}
	out.Body = &leavingBody{ReadCloser: out.Body, leave: leave}
	return out, nil
}

func rewriteRange(in *s3.GetObjectInput, rules []Rule) *s3.GetObjectInput {
	for _, r := range rules {
		if r.RewriteRange == nil {
			continue
		}
		c := *in
		c.Range = nil
		if v := r.RewriteRange(aws.ToString(in.Range)); v != "" {
			c.Range = aws.String(v)
		}
		in = &c
	}
	return in
}

type leavingBody struct {
	io.ReadCloser
	leave func()
}

func (b *leavingBody) Close() error {
	b.leave()
	return b.ReadCloser.Close()
}

// HeadObject runs the S3 call through the fault rules, then (unless a rule answers) the real client.
func (f *Faults) HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return call(ctx, f, "HeadObject", in, optFns, f.next.HeadObject)
}

// PutObject runs the S3 call through the fault rules, then (unless a rule answers) the real client.
func (f *Faults) PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	return call(ctx, f, "PutObject", in, optFns, f.next.PutObject)
}

// DeleteObject runs the S3 call through the fault rules, then (unless a rule answers) the real client.
func (f *Faults) DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	return call(ctx, f, "DeleteObject", in, optFns, f.next.DeleteObject)
}

// DeleteObjects runs the S3 call through the fault rules, then (unless a rule answers) the real client;
// keys a DeleteKeyError rule picks are kept and reported failed.
func (f *Faults) DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error) {
	f.mu.Lock()
	rules := f.matching("DeleteObjects", f.calls["DeleteObjects"]+1, "")
	f.mu.Unlock()
	var refused []types.Error
	for _, r := range rules {
		if r.DeleteKeyError == nil || in.Delete == nil {
			continue
		}
		c, d := *in, *in.Delete
		d.Objects = nil
		for _, o := range in.Delete.Objects {
			if code := r.DeleteKeyError(aws.ToString(o.Key)); code != "" {
				refused = append(refused, types.Error{Key: o.Key, Code: aws.String(code), Message: aws.String("objstoretest: injected")})
			} else {
				d.Objects = append(d.Objects, o)
			}
		}
		c.Delete = &d
		in = &c
	}
	if len(refused) > 0 && len(in.Delete.Objects) == 0 {
		// Nothing left to send (S3 refuses an empty Delete): answer for the store.
		leave, _, err := f.enter(ctx, "DeleteObjects", "")
		if err != nil {
			return nil, err
		}
		leave()
		return &s3.DeleteObjectsOutput{Errors: refused}, nil
	}
	out, err := call(ctx, f, "DeleteObjects", in, optFns, f.next.DeleteObjects)
	if err == nil && out != nil {
		out.Errors = append(out.Errors, refused...)
	}
	return out, err
}

// ListObjectsV2 runs the S3 call through the fault rules, then (unless a rule answers) the real client.
func (f *Faults) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	return call(ctx, f, "ListObjectsV2", in, optFns, f.next.ListObjectsV2)
}

// CreateMultipartUpload runs the S3 call through the fault rules, then (unless a rule answers) the real client.
func (f *Faults) CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	return call(ctx, f, "CreateMultipartUpload", in, optFns, f.next.CreateMultipartUpload)
}

// UploadPart runs the S3 call through the fault rules, then (unless a rule answers) the real client.
func (f *Faults) UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	return call(ctx, f, "UploadPart", in, optFns, f.next.UploadPart)
}

// CompleteMultipartUpload runs the S3 call through the fault rules, then (unless a rule answers) the real client.
func (f *Faults) CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	return call(ctx, f, "CompleteMultipartUpload", in, optFns, f.next.CompleteMultipartUpload)
}

// AbortMultipartUpload runs the S3 call through the fault rules, then (unless a rule answers) the real client.
func (f *Faults) AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	return call(ctx, f, "AbortMultipartUpload", in, optFns, f.next.AbortMultipartUpload)
}

// ListMultipartUploads runs the S3 call through the fault rules, then (unless a rule answers) the real client.
func (f *Faults) ListMultipartUploads(ctx context.Context, in *s3.ListMultipartUploadsInput, optFns ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error) {
	return call(ctx, f, "ListMultipartUploads", in, optFns, f.next.ListMultipartUploads)
}

// ListParts runs the S3 call through the fault rules, then (unless a rule answers) the real client.
func (f *Faults) ListParts(ctx context.Context, in *s3.ListPartsInput, optFns ...func(*s3.Options)) (*s3.ListPartsOutput, error) {
	return call(ctx, f, "ListParts", in, optFns, f.next.ListParts)
}

var _ objstore.API = (*Faults)(nil)
