package objstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/datavision/des/internal/objstore"
)

func exists(t *testing.T, s *objstore.Store, bucket, key string) bool {
	t.Helper()
	_, err := s.Head(context.Background(), bucket, key)
	if errors.Is(err, objstore.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// TestDeleteObjectsReportsEveryKey: more keys than one request takes are deleted, each reported in
// the order given; a missing key is reported too.
func TestDeleteObjectsReportsEveryKey(t *testing.T) {
	ctx := context.Background()
	s, bucket := newStore(t)
	fs, faults := faulty(s)
	var objs []objstore.DeleteObject
	for i := range objstore.MaxDeleteObjects + 5 {
		key := fmt.Sprintf("k/%04d", i)
		if i%100 != 7 { // some keys were never there
			put(t, s, bucket, key, []byte{byte(i)})
		}
		objs = append(objs, objstore.DeleteObject{Key: key})
	}
	res, err := fs.DeleteObjects(ctx, bucket, objs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(objs) || faults.Calls("DeleteObjects") != 2 {
		t.Fatalf("%d results in %d requests for %d keys", len(res), faults.Calls("DeleteObjects"), len(objs))
	}
	for i, r := range res {
		if r.Key != objs[i].Key || (!r.Deleted && !r.NotFound()) {
			t.Fatalf("result %d = %+v for %s", i, r, objs[i].Key)
		}
	}
	for _, i := range []int{0, 999, 1000, 1004} {
		if exists(t, s, bucket, objs[i].Key) {
			t.Errorf("%s still exists", objs[i].Key)
		}
	}
}

// TestDeleteObjectsRequestFailure: a failed request is an error, with no result for its keys, and
// deletes nothing.
func TestDeleteObjectsRequestFailure(t *testing.T) {
	s, bucket := newStore(t)
	put(t, s, bucket, "a", []byte("a"))
	fs, faults := faulty(s)
	faults.FailNth("DeleteObjects", 1, errors.New("injected: connection reset"))
	res, err := fs.DeleteObjects(context.Background(), bucket, []objstore.DeleteObject{{Key: "a"}})
	if err == nil || len(res) != 0 {
		t.Fatalf("DeleteObjects = %v, %v; want an error and no results", res, err)
	}
	if !exists(t, s, bucket, "a") {
		t.Fatal("a failed request deleted the object")
	}
}

// TestVersitygwDeleteConditions pins down what the test world's store (versitygw) does with an ETag
// condition on a delete, since source deletion must be safe whether the store enforces it or not:
// see the assertions for the finding.
func TestVersitygwDeleteConditions(t *testing.T) {
	ctx := context.Background()
	s, bucket := newStore(t)
	wrong := `"00000000000000000000000000000000"`

	t.Run("DeleteObjects with the right ETag", func(t *testing.T) {
		res := mustPut(t, s, bucket, "right")
		got, err := s.DeleteObjects(ctx, bucket, []objstore.DeleteObject{{Key: "right", ETag: res.ETag}})
		if err != nil {
			t.Fatal(err)
		}
		if !got[0].Deleted || exists(t, s, bucket, "right") {
			t.Fatalf("result %+v; the object exists: %v", got[0], exists(t, s, bucket, "right"))
		}
	})
	t.Run("DeleteObjects with a wrong ETag", func(t *testing.T) {
		mustPut(t, s, bucket, "wrong")
		got, err := s.DeleteObjects(ctx, bucket, []objstore.DeleteObject{{Key: "wrong", ETag: wrong}})
		if err != nil {
			t.Fatal(err)
		}
		kept := exists(t, s, bucket, "wrong")
		t.Logf("versitygw: DeleteObjects with a wrong ETag answered %+v; object kept: %v", got[0], kept)
		assertDeleteFinding(t, "DeleteObjects", got[0].PreconditionFailed(), kept)
	})
	t.Run("DeleteObject with a wrong If-Match", func(t *testing.T) {
		mustPut(t, s, bucket, "ifmatch")
		_, err := s.API().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("ifmatch"), IfMatch: aws.String(wrong)})
		kept := exists(t, s, bucket, "ifmatch")
		t.Logf("versitygw: DeleteObject with a wrong If-Match answered %v; object kept: %v", err, kept)
		assertDeleteFinding(t, "DeleteObject If-Match", err != nil, kept)
	})
	t.Run("DeleteObjects with an ETag of a missing key", func(t *testing.T) {
		got, err := s.DeleteObjects(ctx, bucket, []objstore.DeleteObject{{Key: "never", ETag: wrong}})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("versitygw: DeleteObjects of a missing key with an ETag answered %+v", got[0])
		if !got[0].Deleted && !got[0].NotFound() && !got[0].PreconditionFailed() {
			t.Fatalf("missing key: %+v", got[0])
		}
	})
}

func mustPut(t *testing.T, s *objstore.Store, bucket, key string) objstore.Result {
	t.Helper()
	res, err := s.Put(context.Background(), bucket, key, []byte("payload of "+key), objstore.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// The finding for versitygw v1.8.0, the test world's store: it IGNORES the ETag of a DeleteObjects
// key (the object is deleted and reported deleted, no PreconditionFailed), but HONOURS If-Match on a
// single DeleteObject (412 PreconditionFailed, the object is kept). A missing key in DeleteObjects is
// reported deleted, as AWS does. So against versitygw, source deletion must check each source (HEAD)
// before a DeleteObjects: reclaim's Head mode, not its Conditional mode.
var enforced = map[string]bool{"DeleteObjects": false, "DeleteObject If-Match": true}

// assertDeleteFinding checks one conditional delete with a wrong ETag against the finding: the store
// either refused it and kept the object, or ignored the condition and deleted it.
func assertDeleteFinding(t *testing.T, what string, refused, kept bool) {
	t.Helper()
	if refused != kept {
		t.Fatalf("%s: the store refused the delete: %v, kept the object: %v", what, refused, kept)
	}
	if kept != enforced[what] {
		t.Fatalf("%s: the store kept the object: %v; this test expected %v (the store changed: update the finding)", what, kept, enforced[what])
	}
}
