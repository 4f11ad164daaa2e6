package objstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/test/objstoretest"
)

func TestOpenReaderAtCostsOneRequest(t *testing.T) {
	s, bucket := newStore(t)
	const hint = 4096
	for _, size := range []int{0, 1, 10, hint - 1, hint, hint + 1, 300_000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			data := randomBytes(size, uint64(size))
			key := fmt.Sprintf("obj-%d", size)
			put(t, s, bucket, key, data)
			before := s.Stats()

			r, tail, err := s.OpenReaderAt(context.Background(), bucket, key, hint)
			if err != nil {
				t.Fatal(err)
			}
			wantTail := data[max(0, size-hint):]
			assertSame(t, tail, wantTail)
			if r.Size() != int64(size) {
				t.Fatalf("size %d, want %d", r.Size(), size)
			}
			if got := r.Stats(); got != (objstore.Stats{Requests: 1, Bytes: int64(len(wantTail))}) {
				t.Fatalf("reader stats %+v after open", got)
			}
			wire := s.Stats()
			if wire.Requests-before.Requests != 1 || wire.Gets-before.Gets != 1 {
				t.Fatalf("wire requests %+v -> %+v, want exactly one GET", before, wire)
			}

			// The format reader asks for the same tail again: served from memory.
			again := make([]byte, len(wantTail))
			if n, err := r.ReadAt(again, int64(size-len(wantTail))); n != len(again) || (err != nil && !errors.Is(err, io.EOF)) {
				t.Fatalf("ReadAt tail: %d, %v", n, err)
			}
			assertSame(t, again, wantTail)
			if got := r.Stats().Requests; got != 1 {
				t.Fatalf("re-reading the tail sent a request (%d total)", got)
			}
		})
	}
}

func TestOpenReaderAtWithoutHintUsesHead(t *testing.T) {
	s, bucket := newStore(t)
	put(t, s, bucket, "k", []byte("hello"))
	r, tail, err := s.OpenReaderAt(context.Background(), bucket, "k", 0)
	if err != nil {
		t.Fatal(err)
	}
	if tail != nil || r.Size() != 5 || r.Stats().Requests != 1 || s.Stats().Heads != 1 {
		t.Fatalf("tail %q size %d stats %+v wire %+v", tail, r.Size(), r.Stats(), s.Stats())
	}
}

// TestReadAtRanges reads a multipart object (parts of 5 MiB) so ranges cross part boundaries.
func TestReadAtRanges(t *testing.T) {
	s, bucket := newStore(t)
	const part = 5 << 20
	data := randomBytes(2*part+12345, 7)
	size := int64(len(data))
	u := s.NewUploader(context.Background(), bucket, "multi", objstore.UploadOptions{PartSize: part, Concurrency: 2})
	if _, err := u.Write(data); err != nil {
		t.Fatal(err)
	}
	if res, err := u.Complete(); err != nil || res.Parts != 3 {
		t.Fatalf("upload: %+v, %v", res, err)
	}
	const hint = 1000
	r, _, err := s.OpenReaderAt(context.Background(), bucket, "multi", hint)
	if err != nil {
		t.Fatal(err)
	}
	tailOff := size - hint

	tests := []struct {
		name      string
		off       int64
		len       int
		wantN     int
		wantEOF   bool
		wantReqs  int64
		wantBytes int64 // fetched from the store
	}{
		{"start", 0, 100, 100, false, 1, 100},
		{"across first part boundary", part - 10, 20, 20, false, 1, 20},
		{"across second part boundary", 2*part - 1, 2, 2, false, 1, 2},
		{"a whole part and more", part - 1, part + 2, part + 2, false, 1, part + 2},
		{"one byte", 12345, 1, 1, false, 1, 1},
		{"inside tail", tailOff + 10, 100, 100, false, 0, 0},
		{"overlapping tail fetches only the rest", tailOff - 50, 100, 100, false, 1, 50},
		{"exactly to the end", size - 5000, 5000, 5000, false, 1, 4000},
		{"past the end", size - 10, 20, 10, true, 0, 0},
		{"past the end, not cached", tailOff - 100, hint + 200, hint + 100, true, 1, 100},
		{"zero length", 42, 0, 0, false, 0, 0},
		{"zero length at the end", size, 0, 0, true, 0, 0},
		{"beyond the end", size + 10, 10, 0, true, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := r.Stats()
			p := make([]byte, tc.len)
			n, err := r.ReadAt(p, tc.off)
			if n != tc.wantN || errors.Is(err, io.EOF) != tc.wantEOF || (err != nil && !errors.Is(err, io.EOF)) {
				t.Fatalf("ReadAt(%d, %d) = %d, %v; want %d, EOF=%t", tc.len, tc.off, n, err, tc.wantN, tc.wantEOF)
			}
			if tc.wantN > 0 {
				assertSame(t, p[:n], data[tc.off:tc.off+int64(n)])
			}
			after := r.Stats()
			if after.Requests-before.Requests != tc.wantReqs || after.Bytes-before.Bytes != tc.wantBytes {
				t.Fatalf("cost %d requests, %d bytes; want %d, %d", after.Requests-before.Requests,
					after.Bytes-before.Bytes, tc.wantReqs, tc.wantBytes)
			}
		})
	}

	t.Run("negative offset", func(t *testing.T) {
		if _, err := r.ReadAt(make([]byte, 1), -1); err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("io.SectionReader reads it all", func(t *testing.T) {
		got, err := io.ReadAll(io.NewSectionReader(r, 0, size))
		if err != nil {
			t.Fatal(err)
		}
		assertSame(t, got, data)
	})
	t.Run("OpenRange streams", func(t *testing.T) {
		body, err := r.OpenRange(objstore.Range{Off: part - 3, Len: 6})
		if err != nil {
			t.Fatal(err)
		}
		defer body.Close()
		got, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		assertSame(t, got, data[part-3:part+3])
	})
}

func TestErrors(t *testing.T) {
	s, bucket := newStore(t)
	ctx := context.Background()
	put(t, s, bucket, "k", []byte("0123456789"))

	openHint := func(hint int64) func() error {
		return func() error { _, _, err := s.OpenReaderAt(ctx, bucket, "missing", hint); return err }
	}
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"open missing key (suffix GET)", openHint(100), objstore.ErrNotFound},
		{"open missing key (HEAD)", openHint(0), objstore.ErrNotFound},
		{"head missing key", func() error { _, err := s.Head(ctx, bucket, "missing"); return err }, objstore.ErrNotFound},
		{"get missing key", func() error { _, _, err := s.Get(ctx, bucket, "missing", nil); return err }, objstore.ErrNotFound},
		{"missing bucket", func() error { _, _, err := s.Get(ctx, "no-such-bucket", "k", nil); return err }, objstore.ErrNoSuchBucket},
		{"416 past the end", func() error {
			_, _, err := s.Get(ctx, bucket, "k", &objstore.Range{Off: 100, Len: 10})
			return err
		}, objstore.ErrInvalidRange},
		{"zero-length range is not sent", func() error {
			_, _, err := s.Get(ctx, bucket, "k", &objstore.Range{Off: 3, Len: 0})
			return err
		}, objstore.ErrInvalidRange},
		{"create-only put on existing key", func() error {
			_, err := s.Put(ctx, bucket, "k", []byte("x"), objstore.PutOptions{IfNoneMatch: true})
			return err
		}, objstore.ErrExists},
		{"abort unknown upload", func() error { return s.AbortMultipart(ctx, bucket, "k", "bogus") }, objstore.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var oe *objstore.Error
			if !errors.As(err, &oe) || !strings.Contains(err.Error(), "s3://") {
				t.Fatalf("error %v lacks context", err)
			}
		})
	}
	// Suffix open, get, bucket, 416; the empty range sent nothing. The two whole-object GETs go out on
	// the fast path first and, not answered with an object, again through the SDK, which types the
	// error: two more GETs, and two fallbacks.
	if st := s.Stats(); st.Gets != 6 || st.FastFallbacks != 2 {
		t.Fatalf("%d GETs and %d fast-path fallbacks, want 6 and 2", st.Gets, st.FastFallbacks)
	}
}

// TestReadAfterOverwrite: reads are pinned to the version opened, so a replaced object fails instead of
// mixing bytes of two versions.
func TestReadAfterOverwrite(t *testing.T) {
	s, bucket := newStore(t)
	put(t, s, bucket, "k", randomBytes(10000, 1))
	r, _, err := s.OpenReaderAt(context.Background(), bucket, "k", 100)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, bucket, "k", randomBytes(10000, 2))
	if _, err := r.ReadAt(make([]byte, 10), 0); !errors.Is(err, objstore.ErrChanged) {
		t.Fatalf("got %v, want ErrChanged", err)
	}
}

// TestSuffixFallback imitates stores that mishandle "bytes=-N", on top of the real server.
func TestSuffixFallback(t *testing.T) {
	base, bucket := newStore(t)
	data := randomBytes(50_000, 3)
	put(t, base, bucket, "k", data)
	const hint = 1000
	suffixAsPrefix := func(rng string) string { // "bytes=-N" read as "bytes=0-(N-1)"
		if n, ok := strings.CutPrefix(rng, "bytes=-"); ok {
			v, _ := strconv.Atoi(n)
			return fmt.Sprintf("bytes=0-%d", v-1)
		}
		return rng
	}
	ignoreSuffix := func(rng string) string {
		if strings.HasPrefix(rng, "bytes=-") {
			return ""
		}
		return rng
	}
	tests := []struct {
		name     string
		rule     objstoretest.Rule
		wantReqs int64
	}{
		{"reads suffix as prefix", objstoretest.Rule{Op: "GetObject", Nth: 1, RewriteRange: suffixAsPrefix}, 2},
		{"ignores suffix (whole object)", objstoretest.Rule{Op: "GetObject", Nth: 1, RewriteRange: ignoreSuffix}, 2},
		{"no Content-Range", objstoretest.Rule{Op: "GetObject", Nth: 1, DropContentRange: true}, 3}, // GET, HEAD, GET
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, f := faulty(base)
			f.Add(tc.rule)
			r, tail, err := s.OpenReaderAt(context.Background(), bucket, "k", hint)
			if err != nil {
				t.Fatal(err)
			}
			assertSame(t, tail, data[len(data)-hint:])
			if r.Size() != int64(len(data)) || r.Stats().Requests != tc.wantReqs {
				t.Fatalf("size %d, stats %+v; want %d requests", r.Size(), r.Stats(), tc.wantReqs)
			}
		})
	}
}
