package objstore

import (
	"context"
	"fmt"
	"io"
	"iter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Store is an S3 client configured for DES. It is safe for concurrent use.
type Store struct {
	api   API
	cfg   Config
	stats *storeStats
	// fast sends payload range GETs without the SDK's middleware (nil: always the SDK).
	fast *fastGetter
}

// NewFromAPI wraps an already configured client (for example testworld's). Its StoreStats stay zero:
// only New installs the wire counter.
func NewFromAPI(api API) *Store {
	return &Store{api: api, cfg: Config{}.withDefaults(), stats: &storeStats{}}
}

// WithAPI returns a Store that sends its calls through api (typically a wrapper around s.API()) and
// shares s's configuration and counters. It has no fast path: every call goes through api.
func (s *Store) WithAPI(api API) *Store {
	c := *s
	c.api = api
	c.fast = nil // every call goes through api, so a wrapper sees (and may fault) every request
	return &c
}

// API returns the underlying client.
func (s *Store) API() API { return s.api }

// Stats returns the wire counters (all zero for a Store from NewFromAPI).
func (s *Store) Stats() StoreStats { return s.stats.snapshot() }

// ObjectInfo describes an object, or a common prefix in a delimited listing (IsPrefix).
type ObjectInfo struct {
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
	ContentType  string            // Head and Get only
	Metadata     map[string]string // Head and Get only
	IsPrefix     bool
}

// Result describes a written object. Parts and UploadID are zero for a single PUT.
type Result struct {
	Size     int64
	ETag     string
	Parts    int
	UploadID string
}

// PutOptions are the options of a single-request write.
type PutOptions struct {
	// IfNoneMatch makes the write create-only: ErrExists when the key already exists.
	IfNoneMatch  bool
	ContentType  string
	Metadata     map[string]string
	CacheControl string
}

// Put writes a small object in one PUT. data is sent as is (and re-sent on retries); stream large or
// unknown-size objects with NewUploader.
func (s *Store) Put(ctx context.Context, bucket, key string, data []byte, opts PutOptions) (Result, error) {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          byteReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		Metadata:      opts.Metadata,
	}
	setString(&in.ContentType, opts.ContentType)
	setString(&in.CacheControl, opts.CacheControl)
	if opts.IfNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := s.api.PutObject(ctx, in)
	if err != nil {
		return Result{}, createErr("PutObject", bucket, key, err)
	}
	return Result{Size: int64(len(data)), ETag: aws.ToString(out.ETag)}, nil
}

// Get streams an object, or the part of it in rng (nil for all of it). The caller closes the body.
// A zero-length range is refused without a request: "bytes=N-(N-1)" is invalid and some stores answer it
// with the whole object.
func (s *Store) Get(ctx context.Context, bucket, key string, rng *Range) (io.ReadCloser, ObjectInfo, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if rng != nil {
		if rng.Len <= 0 || rng.Off < 0 {
			return nil, ObjectInfo{}, &Error{Op: "GetObject", Bucket: bucket, Key: key, Kind: ErrInvalidRange,
				Err: fmt.Errorf("range %+v is empty or negative; not sent", *rng)}
		}
		in.Range = aws.String(rng.header())
	}
	if f := s.fast; rng == nil && f.usable() {
		body, info, err := f.getObject(ctx, bucket, key)
		if err == nil {
			s.stats.fastGets.Add(1)
			return body, info, nil
		}
		if ctx.Err() != nil {
			return nil, ObjectInfo{}, opErr("GetObject", bucket, key, ctx.Err())
		}
		s.stats.fastFallbacks.Add(1)
	}
	out, err := s.api.GetObject(ctx, in)
	if err != nil {
		return nil, ObjectInfo{}, opErr("GetObject", bucket, key, err)
	}
	info := ObjectInfo{
		Key: key, Size: aws.ToInt64(out.ContentLength), ETag: aws.ToString(out.ETag),
		LastModified: aws.ToTime(out.LastModified), ContentType: aws.ToString(out.ContentType), Metadata: out.Metadata,
	}
	if cr, ok := parseContentRange(aws.ToString(out.ContentRange)); ok && cr.total >= 0 {
		info.Size = cr.total // the object's size, not the range's
	}
	return out.Body, info, nil
}

// Head returns an object's metadata.
func (s *Store) Head(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	out, err := s.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return ObjectInfo{}, opErr("HeadObject", bucket, key, err)
	}
	return ObjectInfo{
		Key: key, Size: aws.ToInt64(out.ContentLength), ETag: aws.ToString(out.ETag),
		LastModified: aws.ToTime(out.LastModified), ContentType: aws.ToString(out.ContentType), Metadata: out.Metadata,
	}, nil
}

// Delete removes an object. Deleting a missing key succeeds, as in S3.
func (s *Store) Delete(ctx context.Context, bucket, key string) error {
	_, err := s.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	return opErr("DeleteObject", bucket, key, err)
}

// ListOptions select the keys List returns.
type ListOptions struct {
	Prefix string
	// Delimiter (usually "/") groups keys below the next delimiter into one IsPrefix entry.
	Delimiter string
	// StartAfter resumes a listing after this key.
	StartAfter string
	// PageSize is the number of keys per request (the server's maximum, 1000, when 0).
	PageSize int32
}

// List yields the bucket's keys in lexical order, requesting pages as the loop advances; breaking out of
// the loop stops listing. Within a page, common prefixes come after the objects. An error ends the
// sequence.
func (s *Store) List(ctx context.Context, bucket string, opts ListOptions) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}
		setString(&in.Prefix, opts.Prefix)
		setString(&in.Delimiter, opts.Delimiter)
		setString(&in.StartAfter, opts.StartAfter)
		if opts.PageSize > 0 {
			in.MaxKeys = aws.Int32(opts.PageSize)
		}
		for {
			out, err := s.api.ListObjectsV2(ctx, in)
			if err != nil {
				yield(ObjectInfo{}, opErr("ListObjectsV2", bucket, opts.Prefix, err))
				return
			}
			if !yieldPage(out, yield) {
				return
			}
			if !aws.ToBool(out.IsTruncated) || aws.ToString(out.NextContinuationToken) == "" {
				return
			}
			in.ContinuationToken = out.NextContinuationToken
		}
	}
}

func yieldPage(out *s3.ListObjectsV2Output, yield func(ObjectInfo, error) bool) bool {
	for _, o := range out.Contents {
		info := ObjectInfo{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), ETag: aws.ToString(o.ETag),
			LastModified: aws.ToTime(o.LastModified)}
		if !yield(info, nil) {
			return false
		}
	}
	for _, p := range out.CommonPrefixes {
		if !yield(ObjectInfo{Key: aws.ToString(p.Prefix), IsPrefix: true}, nil) {
			return false
		}
	}
	return true
}

func setString(dst **string, v string) {
	if v != "" {
		*dst = aws.String(v)
	}
}
