package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/datavision/des/internal/objstore"
)

func TestBlobs(t *testing.T) {
	s, bucket := newStore(t)
	ctx := context.Background()
	blobs := s.Blobs(bucket, objstore.UploadOptions{PartSize: partSize, IfNoneMatch: true})

	for _, size := range []int{0, 1000, partSize + 1} {
		data := randomBytes(size, uint64(size)+100)
		key := "prefix/_bigFiles/file-" + strconv.Itoa(size)
		if err := blobs.Put(ctx, key, bytes.NewReader(data), int64(size)); err != nil {
			t.Fatal(err)
		}
		body, n, err := blobs.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(body)
		body.Close()
		if n != int64(size) {
			t.Fatalf("size %d, want %d", n, size)
		}
		assertSame(t, got, data)

		ra, n, err := blobs.OpenReaderAt(ctx, key)
		if err != nil || n != int64(size) {
			t.Fatalf("OpenReaderAt: %d, %v", n, err)
		}
		got, err = io.ReadAll(io.NewSectionReader(ra, 0, n))
		if err != nil {
			t.Fatal(err)
		}
		assertSame(t, got, data)
	}

	t.Run("create-only", func(t *testing.T) {
		err := blobs.Put(ctx, "prefix/_bigFiles/file-0", strings.NewReader("again"), 5)
		if !errors.Is(err, objstore.ErrExists) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("size mismatch stores nothing", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			have int
			want int64
		}{{"short", 10, 11}, {"long", 12, 11}, {"short multipart", partSize + 2, partSize + 3}, {"long multipart", partSize + 4, partSize + 3}} {
			err := blobs.Put(ctx, "mismatch", bytes.NewReader(make([]byte, tc.have)), tc.want)
			if err == nil {
				t.Fatalf("%s: accepted", tc.name)
			}
			if _, err := s.Head(ctx, bucket, "mismatch"); !errors.Is(err, objstore.ErrNotFound) {
				t.Fatalf("%s: object stored: %v", tc.name, err)
			}
		}
		assertNoUploads(t, s, bucket)
	})
	t.Run("missing", func(t *testing.T) {
		if _, _, err := blobs.Open(ctx, "nope"); !errors.Is(err, objstore.ErrNotFound) {
			t.Fatalf("got %v", err)
		}
	})
}
