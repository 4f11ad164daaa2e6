package objstore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// MaxDeleteObjects is the most keys one DeleteObjects request may name (the S3 limit).
const MaxDeleteObjects = 1000

// Per-key error codes of DeleteObjects that callers act on.
const (
	CodeNoSuchKey          = "NoSuchKey"
	CodePreconditionFailed = "PreconditionFailed"
	// CodeNotReported is set on a key the store's answer named neither as deleted nor as failed.
	CodeNotReported = "NotReported"
)

// DeleteObject is one key of DeleteObjects. ETag, when set, asks the store to delete the object only
// if it is still that version; stores that do not enforce it delete it anyway (see the tests of this
// package for what the test world's store does), so callers that must not delete a changed object
// check it first.
type DeleteObject struct {
	Key  string
	ETag string
}

// DeleteResult is what the store said about one key: Deleted, or the error Code and Message (a missing
// key is usually reported Deleted, as S3 does; some stores answer NoSuchKey).
type DeleteResult struct {
	Key     string
	Deleted bool
	Code    string
	Message string
}

// NotFound reports a key the store says does not exist.
func (r DeleteResult) NotFound() bool { return !r.Deleted && r.Code == CodeNoSuchKey }

// PreconditionFailed reports a key the store kept because its ETag was not the one sent.
func (r DeleteResult) PreconditionFailed() bool {
	return !r.Deleted && r.Code == CodePreconditionFailed
}

// DeleteObjects deletes objs from bucket with one DeleteObjects request per MaxDeleteObjects keys
// (not quiet, so the store reports every key) and returns one result per object, in objs' order. The
// error is set only when a request as a whole failed; the results of the requests before it are
// returned with it, those of the failed request and after it are absent (the caller learns nothing
// about them and must treat them as not deleted).
func (s *Store) DeleteObjects(ctx context.Context, bucket string, objs []DeleteObject) ([]DeleteResult, error) {
	out := make([]DeleteResult, 0, len(objs))
	for start := 0; start < len(objs); start += MaxDeleteObjects {
		chunk := objs[start:min(start+MaxDeleteObjects, len(objs))]
		res, err := s.deleteChunk(ctx, bucket, chunk)
		if err != nil {
			return out, err
		}
		out = append(out, res...)
	}
	return out, nil
}

func (s *Store) deleteChunk(ctx context.Context, bucket string, objs []DeleteObject) ([]DeleteResult, error) {
	ids := make([]types.ObjectIdentifier, len(objs))
	for i, o := range objs {
		ids[i] = types.ObjectIdentifier{Key: aws.String(o.Key)}
		setString(&ids[i].ETag, o.ETag)
	}
	resp, err := s.api.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(bucket),
		Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(false)},
	})
	if err != nil {
		return nil, opErr("DeleteObjects", bucket, fmt.Sprintf("(%d keys from %s)", len(objs), objs[0].Key), err)
	}
	deleted := make(map[string]bool, len(resp.Deleted))
	for _, d := range resp.Deleted {
		deleted[aws.ToString(d.Key)] = true
	}
	failed := make(map[string]types.Error, len(resp.Errors))
	for _, e := range resp.Errors {
		failed[aws.ToString(e.Key)] = e
	}
	out := make([]DeleteResult, len(objs))
	for i, o := range objs {
		r := DeleteResult{Key: o.Key}
		// An error wins over a success for the same key: a store that names a key in both did not
		// delete it with certainty.
		if e, ok := failed[o.Key]; ok {
			r.Code, r.Message = aws.ToString(e.Code), aws.ToString(e.Message)
		} else if deleted[o.Key] {
			r.Deleted = true
		} else {
			r.Code, r.Message = CodeNotReported, "the store's answer does not mention this key"
		}
		out[i] = r
	}
	return out, nil
}
