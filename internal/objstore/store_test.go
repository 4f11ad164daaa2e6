package objstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/datavision/des/internal/objstore"
)

func TestPutGetHeadDelete(t *testing.T) {
	s, bucket := newStore(t)
	ctx := context.Background()
	data := randomBytes(1000, 1)
	res, err := s.Put(ctx, bucket, "a/b", data, objstore.PutOptions{
		IfNoneMatch: true, ContentType: "text/plain", Metadata: map[string]string{"des-version": "2"},
	})
	if err != nil || res.Size != 1000 || res.ETag == "" {
		t.Fatalf("put: %+v, %v", res, err)
	}
	info, err := s.Head(ctx, bucket, "a/b")
	if err != nil || info.Size != 1000 || info.ETag != res.ETag || info.ContentType != "text/plain" || info.Metadata["des-version"] != "2" {
		t.Fatalf("head: %+v, %v", info, err)
	}
	body, ginfo, err := s.Get(ctx, bucket, "a/b", &objstore.Range{Off: 10, Len: 5})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(body)
	body.Close()
	assertSame(t, got, data[10:15])
	if ginfo.Size != 1000 {
		t.Fatalf("ranged get reports size %d, want the object's", ginfo.Size)
	}
	if err := s.Delete(ctx, bucket, "a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Head(ctx, bucket, "a/b"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := s.Delete(ctx, bucket, "a/b"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
}

func TestList(t *testing.T) {
	s, bucket := newStore(t)
	ctx := context.Background()
	var keys []string
	for i := range 7 {
		k := fmt.Sprintf("p/2024-01-0%d/c%d", i%3, i)
		keys = append(keys, k)
		put(t, s, bucket, k, []byte(k))
	}
	put(t, s, bucket, "q/other", nil)
	slices.Sort(keys)

	collect := func(opts objstore.ListOptions) []string {
		var out []string
		for o, err := range s.List(ctx, bucket, opts) {
			if err != nil {
				t.Fatal(err)
			}
			if !o.IsPrefix && o.Size != int64(len(o.Key)) {
				t.Fatalf("%s: size %d", o.Key, o.Size)
			}
			out = append(out, o.Key)
		}
		return out
	}
	tests := []struct {
		name string
		opts objstore.ListOptions
		want []string
	}{
		{"prefix, pages of 2", objstore.ListOptions{Prefix: "p/", PageSize: 2}, keys},
		{"delimiter", objstore.ListOptions{Prefix: "p/", Delimiter: "/"}, []string{"p/2024-01-00/", "p/2024-01-01/", "p/2024-01-02/"}},
		{"start after", objstore.ListOptions{Prefix: "p/", StartAfter: keys[4]}, keys[5:]},
		{"nothing", objstore.ListOptions{Prefix: "zzz"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := collect(tc.opts); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("break stops paging", func(t *testing.T) {
		before := s.Stats().Gets
		for _, err := range s.List(ctx, bucket, objstore.ListOptions{Prefix: "p/", PageSize: 2}) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		if n := s.Stats().Gets - before; n != 1 {
			t.Fatalf("%d list requests for one item", n)
		}
	})
	t.Run("error ends the sequence", func(t *testing.T) {
		var errs int
		for _, err := range s.List(ctx, "no-such-bucket", objstore.ListOptions{}) {
			if !errors.Is(err, objstore.ErrNoSuchBucket) {
				t.Fatalf("got %v", err)
			}
			errs++
		}
		if errs != 1 {
			t.Fatalf("%d errors", errs)
		}
	})
}

func TestListMultipartUploadsPages(t *testing.T) {
	defer objstore.SetMultipartPageSize(1)()
	s, bucket := newStore(t)
	ctx := context.Background()
	want := map[string]bool{}
	for i := range 4 {
		u := s.NewUploader(ctx, bucket, fmt.Sprintf("x/%d", i/2), objstore.UploadOptions{PartSize: partSize})
		if _, err := u.Write(make([]byte, partSize+1)); err != nil {
			t.Fatal(err)
		}
		want[u.UploadID()] = true
		t.Cleanup(func() { _ = u.Abort(ctx) }) // the test checks the listing, not the abort
	}
	for mu, err := range s.ListMultipartUploads(ctx, bucket, "x/") {
		if err != nil {
			t.Fatal(err)
		}
		if !want[mu.UploadID] {
			t.Fatalf("unexpected %+v", mu)
		}
		delete(want, mu.UploadID)
	}
	if len(want) != 0 {
		t.Fatalf("not listed: %v", want)
	}
	if n := s.Stats().Gets; n < 4 {
		t.Fatalf("%d list requests: pages of 1 were not used", n)
	}
}
