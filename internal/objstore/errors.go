package objstore

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"
)

// Sentinels matched with errors.Is on the errors this package returns.
var (
	// ErrNotFound: the key (404 NoSuchKey / NotFound) or the multipart upload (NoSuchUpload) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNoSuchBucket: the bucket does not exist (usually a configuration error, hence distinct).
	ErrNoSuchBucket = errors.New("bucket not found")
	// ErrExists: a create-only write (If-None-Match: *) found the key already present (412).
	ErrExists = errors.New("object already exists")
	// ErrChanged: the object changed since it was opened (412 on a read pinned with If-Match).
	ErrChanged = errors.New("object changed since it was opened")
	// ErrInvalidRange: the range is not satisfiable (416), or lies outside the object.
	ErrInvalidRange = errors.New("invalid range")
)

// Error is an S3 operation's failure with its context. It matches its Kind sentinel with errors.Is and
// unwraps to the underlying (usually SDK) error.
type Error struct {
	Op     string // S3 operation, e.g. "GetObject"
	Bucket string
	Key    string
	Kind   error // one of the sentinels, or nil
	Err    error
}

func (e *Error) Error() string {
	loc := e.Bucket
	if e.Key != "" {
		loc += "/" + e.Key
	}
	if e.Kind != nil {
		return fmt.Sprintf("objstore: %s s3://%s: %v: %v", e.Op, loc, e.Kind, e.Err)
	}
	return fmt.Sprintf("objstore: %s s3://%s: %v", e.Op, loc, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) and friends work without hiding the SDK error from errors.As.
func (e *Error) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// opErr wraps err from a read or a plain write. A 412 there can only come from If-Match.
func opErr(op, bucket, key string, err error) error {
	return wrap(op, bucket, key, err, ErrChanged)
}

// createErr wraps err from a create-only write, where 412 means the key exists.
func createErr(op, bucket, key string, err error) error {
	return wrap(op, bucket, key, err, ErrExists)
}

func wrap(op, bucket, key string, err error, on412 error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Bucket: bucket, Key: key, Kind: classify(err, on412), Err: err}
}

// classify maps S3 error codes, falling back to HTTP status because HEAD responses carry no body and
// third-party stores are loose with codes.
func classify(err error, on412 error) error {
	code, status := errorCode(err), httpStatus(err)
	switch {
	case code == "NoSuchBucket":
		return ErrNoSuchBucket
	case code == "NoSuchKey", code == "NotFound", code == "NoSuchUpload", status == 404:
		return ErrNotFound
	case code == "PreconditionFailed", status == 412:
		return on412
	case code == "InvalidRange", status == 416:
		return ErrInvalidRange
	}
	return nil
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// IsPermanent reports whether err is the store's refusal that repeating the same request will not
// change: a 4xx answer other than throttling and timeouts (403 AccessDenied, 404, 400, 412, 416). Network
// errors, cut bodies, 5xx and throttling (429, 503 SlowDown, RequestTimeout) are not permanent.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	switch errorCode(err) {
	case "SlowDown", "RequestTimeout", "RequestTimeTooSkewed", "Throttling", "ThrottlingException", "TooManyRequests":
		return false
	}
	status := httpStatus(err)
	return status >= 400 && status < 500 && status != 408 && status != 429
}
