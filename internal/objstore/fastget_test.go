package objstore_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/test/testworld"
)

// TestFastRangeGets: payload range GETs go out on the fast path, signed so that the real S3 server
// accepts them for keys with any characters, and return exactly the range; failures fall back to the
// SDK path, which types them as before.
func TestFastRangeGets(t *testing.T) {
	s, bucket := newStore(t)
	ctx := context.Background()
	data := randomBytes(10_000, 7)
	keys := []string{
		"plain/key.des",
		"scans/2026-12-01/00a1/c0190a2b3c4d5e6f7/c0190a2b3c4d5e6f7.des",
		"names/SCAN_20261201_(33F43F780100_DF).pdf",
		"spaces and +plus/percent%25 and %41/tilde~star*",
		"unicode/naïve résumé ✓ 日本.txt",
		"punct/!$&'()*,;=:@[]{}|^`\"<>\\#?x",
	}
	for _, key := range keys {
		t.Run(key, func(t *testing.T) {
			if _, err := s.Put(ctx, bucket, key, data, objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			before := s.Stats()
			r := s.NewObjectReader(ctx, bucket, key, int64(len(data)), "")
			got := make([]byte, 1234)
			if _, err := r.ReadAt(got, 4321); err != nil {
				t.Fatal(err)
			}
			body, err := r.OpenRange(objstore.Range{Off: 0, Len: 100})
			if err != nil {
				t.Fatal(err)
			}
			head, _ := io.ReadAll(body)
			body.Close()
			if !bytes.Equal(got, data[4321:4321+1234]) || !bytes.Equal(head, data[:100]) {
				t.Fatal("the fast path returned other bytes")
			}
			after := s.Stats()
			if fast, back := after.FastGets-before.FastGets, after.FastFallbacks-before.FastFallbacks; fast != 2 || back != 0 {
				t.Fatalf("%d fast GETs, %d fallbacks; want 2 and 0 (the store refused the signature?)", fast, back)
			}
			if reqs := after.Requests - before.Requests; reqs != 2 {
				t.Fatalf("%d requests on the wire, want 2", reqs)
			}
		})
	}

	t.Run("a failure is typed by the SDK path", func(t *testing.T) {
		r := s.NewObjectReader(ctx, bucket, "gone/never-written", 100, "")
		before := s.Stats()
		_, err := r.ReadAt(make([]byte, 10), 0)
		if !errors.Is(err, objstore.ErrNotFound) {
			t.Fatalf("read of a missing object: %v, want ErrNotFound", err)
		}
		if back := s.Stats().FastFallbacks - before.FastFallbacks; back != 1 {
			t.Fatalf("%d fallbacks, want 1", back)
		}
	})
	t.Run("a changed object is refused by If-Match", func(t *testing.T) {
		r, _, err := s.OpenReaderAt(ctx, bucket, keys[0], 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(ctx, bucket, keys[0], randomBytes(10_000, 8), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.ReadAt(make([]byte, 10), 0); !errors.Is(err, objstore.ErrChanged) {
			t.Fatalf("read of a replaced object: %v, want ErrChanged", err)
		}
	})
	t.Run("a refused signature turns the fast path off", func(t *testing.T) {
		cfg := testworld.S3Store(t).StoreConfig()
		cfg.SecretAccessKey = "not-the-secret"
		bad, err := objstore.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := bad.NewObjectReader(ctx, bucket, keys[0], 10_000, "").ReadAt(make([]byte, 10), 0); err == nil {
				t.Fatal("a read with a wrong secret succeeded")
			}
		}
		if st := bad.Stats(); st.FastGets != 0 || st.FastFallbacks != 1 {
			t.Fatalf("fast GETs %d, fallbacks %d; want the fast path tried once", st.FastGets, st.FastFallbacks)
		}
	})
	t.Run("a wrapped API sees every request", func(t *testing.T) {
		w := s.WithAPI(s.API())
		before := s.Stats()
		if _, err := w.NewObjectReader(ctx, bucket, keys[0], 10_000, "").ReadAt(make([]byte, 10), 0); err != nil {
			t.Fatal(err)
		}
		if fast := s.Stats().FastGets - before.FastGets; fast != 0 {
			t.Fatalf("a store with a wrapped API sent %d fast GETs", fast)
		}
	})
}

// TestFastWholeGets: Store.Get of a whole object goes out on the fast path and reports exactly what the
// SDK path reports (size, ETag, type, time, metadata) and the same bytes; a missing object falls back
// to the SDK path, which types the error.
func TestFastWholeGets(t *testing.T) {
	s, bucket := newStore(t)
	sdk := s.WithAPI(s.API()) // no fast path
	ctx := context.Background()
	for _, tc := range []struct {
		key  string
		data []byte
		opts objstore.PutOptions
	}{
		{"plain/small", randomBytes(4096, 1), objstore.PutOptions{}},
		{"empty/object", nil, objstore.PutOptions{}},
		{"typed/with meta ✓", randomBytes(70_000, 2), objstore.PutOptions{ContentType: "application/pdf", Metadata: map[string]string{"origin": "scanner-7"}}},
		{"punct/!$&'()*,;=:@[]{}|^`\"<>\\#?x", randomBytes(10, 3), objstore.PutOptions{}},
	} {
		t.Run(tc.key, func(t *testing.T) {
			if _, err := s.Put(ctx, bucket, tc.key, tc.data, tc.opts); err != nil {
				t.Fatal(err)
			}
			read := func(st *objstore.Store) ([]byte, objstore.ObjectInfo) { return getObject(t, st, bucket, tc.key) }
			before := s.Stats()
			got, info := read(s)
			if fast := s.Stats().FastGets - before.FastGets; fast != 1 {
				t.Fatalf("%d fast GETs, want 1", fast)
			}
			want, wantInfo := read(sdk)
			if !bytes.Equal(got, want) || !bytes.Equal(got, tc.data) {
				t.Fatal("the fast path returned other bytes")
			}
			if !info.LastModified.Equal(wantInfo.LastModified) {
				t.Fatalf("fast path reports modification at %v, the SDK %v", info.LastModified, wantInfo.LastModified)
			}
			info.LastModified, wantInfo.LastModified = time.Time{}, time.Time{}
			if fmt.Sprint(info) != fmt.Sprint(wantInfo) {
				t.Fatalf("fast path reports %+v, the SDK %+v", info, wantInfo)
			}
		})
	}
	t.Run("a gzip-encoded object comes back as stored", func(t *testing.T) {
		var zipped bytes.Buffer
		zw := gzip.NewWriter(&zipped)
		_, _ = zw.Write(bytes.Repeat([]byte("compressible "), 1000))
		_ = zw.Close()
		_, err := s.API().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("zipped/object"),
			Body: bytes.NewReader(zipped.Bytes()), ContentEncoding: aws.String("gzip")})
		if err != nil {
			t.Fatal(err)
		}
		body, info, err := s.Get(ctx, bucket, "zipped/object", nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(body)
		body.Close()
		if err != nil || !bytes.Equal(got, zipped.Bytes()) || info.Size != int64(zipped.Len()) {
			t.Fatalf("got %d bytes (size %d, err %v), want the %d stored", len(got), info.Size, err, zipped.Len())
		}
	})
	t.Run("a missing object is typed by the SDK path", func(t *testing.T) {
		before := s.Stats()
		_, _, err := s.Get(ctx, bucket, "gone/never-written", nil)
		if !errors.Is(err, objstore.ErrNotFound) {
			t.Fatalf("Get of a missing key: %v, want ErrNotFound", err)
		}
		if back := s.Stats().FastFallbacks - before.FastFallbacks; back != 1 {
			t.Fatalf("%d fallbacks, want 1", back)
		}
		// A 404 must not turn the fast path off for the objects that exist.
		body, _, err := s.Get(ctx, bucket, "plain/small", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, body)
		body.Close()
		if fast := s.Stats().FastGets - before.FastGets; fast != 1 {
			t.Fatalf("after a 404, %d fast GETs, want 1", fast)
		}
	})
}
