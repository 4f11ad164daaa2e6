package desformat

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
)

// countingReaderAt records every ReadAt, as a remote store would see it.
type countingReaderAt struct {
	mu    sync.Mutex
	r     *bytes.Reader
	calls [][2]int64 // offset, length
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	c.calls = append(c.calls, [2]int64{off, int64(len(p))})
	c.mu.Unlock()
	return c.r.ReadAt(p, off)
}

func (c *countingReaderAt) reset() [][2]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls := c.calls
	c.calls = nil
	return calls
}

func TestOpenReadCount(t *testing.T) {
	small := writeArchive(t, WriterOptions{}, corruptionFiles())
	var many []testFile
	for i := range 3000 {
		many = append(many, testFile{name: fmt.Sprintf("DES_20251115_(0E8A8B9E%04X_05).pdf", i), data: []byte{byte(i)}})
	}
	large := writeArchive(t, WriterOptions{}, many)
	for _, tc := range []struct {
		name      string
		b         []byte
		opts      ReaderOptions
		wantReads int
	}{
		{"small archive: one tail read", small, ReaderOptions{}, 1},
		{"index larger than tail: two reads", large, ReaderOptions{}, 2},
		{"big tail covers it: one read", large, ReaderOptions{TailSize: 1 << 20}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ra := &countingReaderAt{r: bytes.NewReader(tc.b)}
			if _, err := NewReader(ra, int64(len(tc.b)), tc.opts); err != nil {
				t.Fatal(err)
			}
			if calls := ra.reset(); len(calls) != tc.wantReads {
				t.Fatalf("open issued %d reads %v, want %d", len(calls), calls, tc.wantReads)
			}
		})
	}
	// With PrefetchMeta, reading every file's meta costs no further reads.
	ra := &countingReaderAt{r: bytes.NewReader(large)}
	r, err := NewReader(ra, int64(len(large)), ReaderOptions{PrefetchMeta: true})
	if err != nil {
		t.Fatal(err)
	}
	ra.reset()
	for _, e := range r.Entries() {
		if _, _, err := r.Checksum(e.Name); err != nil {
			t.Fatal(err)
		}
	}
	if calls := ra.reset(); len(calls) != 0 {
		t.Fatalf("meta reads after PrefetchMeta: %d", len(calls))
	}
}

// TestNoZeroLengthReads: empty payloads never turn into a range request
// (bytes=N-(N-1) is invalid and some stores answer with the whole object).
func TestNoZeroLengthReads(t *testing.T) {
	files := []testFile{{name: "e1"}, {name: "x", data: []byte("x")}, {name: "e2"}, {name: "e3", meta: `{"a":1}`}}
	b := writeArchive(t, WriterOptions{}, files)
	b1 := buildV1(t, []v1File{{"e", nil, `{"size":0}`}, {"y", []byte("y"), `{"size":1}`}})
	for _, arch := range [][]byte{b, b1} {
		ra := &countingReaderAt{r: bytes.NewReader(arch)}
		r, err := NewReader(ra, int64(len(arch)), ReaderOptions{TailSize: FooterSize})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var names []string
		for _, e := range r.Entries() {
			names = append(names, e.Name)
			if _, err := r.ReadFile(ctx, e.Name); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.ReadBatch(ctx, names, DefaultBatchOptions, func(string, []byte) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if rep, err := r.Verify(ctx); err != nil || rep.Err() != nil {
			t.Fatal(err, rep.Err())
		}
		for _, c := range ra.reset() {
			if c[1] == 0 {
				t.Fatalf("zero-length read at %d", c[0])
			}
		}
	}
}
