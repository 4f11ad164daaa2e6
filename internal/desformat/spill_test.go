package desformat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// addStep is one Add of a script: its name, payload and meta, and the error class it must get.
type addStep struct {
	name, meta string
	data       []byte
	want       error
}

// runScript feeds steps to w and fails on an unexpected outcome; it returns the archive, the
// locations Last gave after each successful Add, and the summary.
func runScript(t *testing.T, w *Writer, out *bytes.Buffer, steps []addStep) ([]byte, []Location, Summary) {
	t.Helper()
	var locs []Location
	for i, st := range steps {
		fh := FileHeader{Name: st.name, Size: int64(len(st.data))}
		if st.meta != "" {
			fh.Meta = json.RawMessage(st.meta)
		}
		err := w.Add(context.Background(), fh, bytes.NewReader(st.data))
		if st.want == nil && err != nil || st.want != nil && !errors.Is(err, st.want) {
			t.Fatalf("step %d Add(%q): %v, want %v", i, st.name, err, st.want)
		}
		if err == nil {
			l, _ := w.Last()
			locs = append(locs, l)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return out.Bytes(), locs, w.Summary()
}

// collideAll makes every name hash alike, so the spilled duplicate check must compare names.
func collideAll(w *Writer) {
	if s, ok := w.store.(*spillStore); ok {
		s.hash = func(string) uint64 { return 42 }
	}
}

// TestSpillWriterSameArchive: the spilling writer writes byte for byte the archive of the in-memory
// writer, accepts and refuses the same names, and reports the same locations and summary.
func TestSpillWriterSameArchive(t *testing.T) {
	var files []addStep
	for _, f := range roundTripFiles() {
		files = append(files, addStep{name: f.name, data: f.data, meta: f.meta})
	}
	mixed := []addStep{
		{name: "a", data: []byte("1")},
		{name: "b", data: []byte("22"), meta: `{"k":"v"}`},
		{name: "a", data: []byte("x"), want: ErrDuplicateName},
		{name: "c", meta: `[1]`, want: ErrInvalidMeta},
		{name: "c", data: pattern(5000, 3)},
		{name: "b", want: ErrDuplicateName},
		{name: "big", data: pattern(70000, 4)},
		{name: "big", data: pattern(7, 4), want: ErrDuplicateName},
		{name: "aa"}, // same prefix, other length
		{name: "", want: ErrInvalidName},
	}
	var many []addStep
	for i := range 3000 {
		many = append(many, addStep{name: fmt.Sprintf("f%05d", i), data: pattern(i%300, uint32(i))})
		if i%97 == 0 {
			many = append(many, addStep{name: fmt.Sprintf("f%05d", i/2), want: ErrDuplicateName})
		}
	}
	for _, tc := range []struct {
		name    string
		steps   []addStep
		opts    WriterOptions
		collide bool
	}{
		{"empty", nil, WriterOptions{}, false},
		{"round-trip files", files, WriterOptions{}, false},
		{"rejections in between", mixed, WriterOptions{}, false},
		{"rejections, all hashes colliding", mixed, WriterOptions{}, true},
		{"3000 files and duplicates", many, WriterOptions{}, false},
		{"400 files, all hashes colliding", many[:400], WriterOptions{}, true}, // quadratic: every add re-reads every name
		{"external payloads", mixed, WriterOptions{External: NewDirStore(t.TempDir()), ExternalThreshold: 4096, ExternalPrefix: "p"}, false},
		{"tiny buffer", many, WriterOptions{BufferSize: 16}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var memOut, spillOut bytes.Buffer
			mem, err := NewWriter(&memOut, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			wantB, wantLocs, wantSum := runScript(t, mem, &memOut, tc.steps)

			dir := t.TempDir()
			opts := tc.opts
			opts.SpillDir = dir
			if opts.External != nil {
				opts.External = NewDirStore(t.TempDir())
			}
			sp, err := NewWriter(&spillOut, opts)
			if err != nil {
				t.Fatal(err)
			}
			if tc.collide {
				collideAll(sp)
			}
			gotB, gotLocs, gotSum := runScript(t, sp, &spillOut, tc.steps)
			if !bytes.Equal(gotB, wantB) {
				t.Fatalf("spilled archive differs: %d bytes, in-memory %d", len(gotB), len(wantB))
			}
			if fmt.Sprint(gotLocs) != fmt.Sprint(wantLocs) || gotSum != wantSum {
				t.Fatalf("locations or summary differ:\n got %v %+v\nwant %v %+v", gotLocs, gotSum, wantLocs, wantSum)
			}
			checkNoSpillFiles(t, dir)
		})
	}
}

func checkNoSpillFiles(t *testing.T, dir string) {
	t.Helper()
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("%d files left in the spill directory, first %s", len(left), left[0].Name())
	}
}

// TestSpillWriterReleases: every way a spilling Writer ends closes and removes its temporary files,
// and an Abort-ed Writer refuses further use.
func TestSpillWriterReleases(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		end  func(w *Writer) error // the last call, and the error class it must return
		want error
	}{
		{"close", func(w *Writer) error { return w.Close() }, nil},
		{"abort", func(w *Writer) error { return w.Abort() }, nil},
		{"abort then close", func(w *Writer) error { _ = w.Abort(); return w.Close() }, ErrWriterClosed},
		{"close then abort", func(w *Writer) error { _ = w.Close(); return w.Abort() }, nil},
		{"close after a poisoning add", func(w *Writer) error {
			if err := w.Add(ctx, FileHeader{Name: "short", Size: 10}, strings.NewReader("abc")); !errors.Is(err, ErrSizeMismatch) {
				t.Fatalf("short payload: %v", err)
			}
			return w.Close()
		}, ErrWriterClosed},
		{"close after an output failure", func(w *Writer) error {
			_ = w.Add(ctx, FileHeader{Name: "big", Size: 1 << 20}, bytes.NewReader(make([]byte, 1<<20)))
			return w.Close()
		}, errBrokenOutput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := NewWriter(&brokenAfter{n: 1 << 19}, WriterOptions{SpillDir: dir, BufferSize: 4096})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Add(ctx, FileHeader{Name: "one", Size: 3}, strings.NewReader("abc")); err != nil {
				t.Fatal(err)
			}
			err = tc.end(w)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			checkNoSpillFiles(t, dir)
			if w.store != nil {
				t.Fatal("the Writer still holds its spill store")
			}
			if err := w.Add(ctx, FileHeader{Name: "late"}, strings.NewReader("")); !errors.Is(err, ErrWriterClosed) {
				t.Fatalf("Add after the end: %v", err)
			}
		})
	}
	if _, err := NewWriter(&bytes.Buffer{}, WriterOptions{SpillDir: "/nonexistent/des-spill"}); err == nil {
		t.Fatal("NewWriter with a missing spill directory succeeded")
	}
}

var errBrokenOutput = errors.New("output broke")

// brokenAfter accepts n bytes, then fails every write.
type brokenAfter struct{ n int }

func (b *brokenAfter) Write(p []byte) (int, error) {
	if len(p) > b.n {
		n := b.n
		b.n = 0
		return n, errBrokenOutput
	}
	b.n -= len(p)
	return len(p), nil
}

// TestSpillWriterMemoryBounded fails if what a spilling Writer holds grows with the files again: it
// writes n and 10n tiny files and compares the live heap (after a GC) before Close. Only the
// duplicate check's name set may grow (an offset and a hash tag per name, with slack); the in-memory
// writer, measured the same way, must grow far more, or this test would not notice a regression.
func TestSpillWriterMemoryBounded(t *testing.T) {
	const n = 20000
	perFile := func(opts WriterOptions) float64 {
		small, large := heapHeld(t, opts, n), heapHeld(t, opts, 10*n)
		return float64(large-small) / (9 * n)
	}
	spill := perFile(WriterOptions{SpillDir: t.TempDir()})
	mem := perFile(WriterOptions{})
	t.Logf("live heap per file: spilling %.1f B, in memory %.1f B", spill, mem)
	// The name set's 4-byte slots are between 3/8 and 3/4 full: at most 10.7 bytes per name. 16 bytes
	// leave room for that and nothing else per file.
	const bound = 16
	if spill > bound {
		t.Fatalf("a spilling Writer holds %.1f bytes more per file (bound %d)", spill, bound)
	}
	if mem < 3*bound {
		t.Fatalf("the in-memory Writer grows only %.1f bytes per file: the measurement no longer sees growth", mem)
	}
}

// heapHeld adds files tiny payloads and returns the live heap while the Writer holds them.
func heapHeld(t *testing.T, opts WriterOptions, files int) uint64 {
	t.Helper()
	ctx := context.Background()
	w, err := NewWriter(discard{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("tiny")
	var r bytes.Reader
	for i := range files {
		r.Reset(payload)
		if err := w.Add(ctx, FileHeader{Name: fmt.Sprintf("DES_20251115_(%010X_05).bin", i), Size: 4, Meta: json.RawMessage(`{"k":"v"}`)}, &r); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	held := ms.HeapAlloc
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(w)
	return held
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
