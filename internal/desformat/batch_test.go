package desformat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

func batchArchive(t *testing.T, store ExternalStore) ([]testFile, []byte) {
	t.Helper()
	var files []testFile
	sizes := []int{0, 1, 100, 4096, 70000, 0, 10, 200000, 3, 0}
	for i := 0; i < 200; i++ {
		files = append(files, testFile{name: fmt.Sprintf("f%03d", i), data: pattern(sizes[i%len(sizes)], uint32(i))})
	}
	return files, writeArchive(t, WriterOptions{External: store, ExternalThreshold: 150000}, files)
}

func TestPlanBatchInvariants(t *testing.T) {
	store := NewDirStore(t.TempDir())
	files, b := batchArchive(t, store)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, opts := range []BatchOptions{
		{MaxGap: -1}, {MaxGap: 0}, {MaxGap: 5000, MaxRange: 20000}, DefaultBatchOptions, {MaxGap: 1 << 30, MaxRange: 1 << 40},
	} {
		for _, prefetch := range []bool{false, true} {
			r := openBytes(t, b, ReaderOptions{External: store, PrefetchMeta: prefetch, TailSize: FooterSize})
			var names []string
			for _, f := range files {
				if rng.IntN(2) == 0 {
					names = append(names, f.name, f.name) // repeats are planned once
				}
			}
			p, err := r.PlanBatch(names, opts)
			if err != nil {
				t.Fatal(err)
			}
			checkPlan(t, r, p, names, opts)
			if prefetch && len(p.Meta) != 0 {
				t.Errorf("PrefetchMeta: plan still has %d meta ranges", len(p.Meta))
			}
			got := map[string][]byte{}
			err = r.ReadBatch(context.Background(), names, opts, func(name string, data []byte) error {
				if _, dup := got[name]; dup {
					return fmt.Errorf("%s yielded twice", name)
				}
				got[name] = bytes.Clone(data)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if d, ok := got[f.name]; ok && !bytes.Equal(d, f.data) {
					t.Fatalf("%s: wrong bytes", f.name)
				}
			}
		}
	}
}

func checkPlan(t *testing.T, r *Reader, p *Plan, names []string, opts BatchOptions) {
	t.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	seen := map[string]bool{}
	mark := func(n string) {
		if seen[n] || !want[n] {
			t.Fatalf("%s planned twice or not requested", n)
		}
		seen[n] = true
	}
	var prevEnd int64 = -1
	for _, rg := range p.Data {
		if rg.Offset < prevEnd {
			t.Fatalf("ranges unsorted or overlapping at %d", rg.Offset)
		}
		prevEnd = rg.Offset + rg.Length
		if rg.Length > max(opts.MaxRange, 0) && opts.MaxRange > 0 && len(rg.Spans) > 1 {
			t.Fatalf("merged range of %d bytes exceeds MaxRange %d", rg.Length, opts.MaxRange)
		}
		var end int64
		for i, s := range rg.Spans {
			e, _ := r.Stat(s.Name)
			if e.Size == 0 || e.IsExternal() {
				t.Fatalf("range for empty or external %s", s.Name)
			}
			if rg.Offset+s.Offset != e.DataOffset || s.Length != e.Size {
				t.Fatalf("span %s misplaced", s.Name)
			}
			if i > 0 && (opts.MaxGap < 0 || s.Offset-end > opts.MaxGap) {
				t.Fatalf("gap %d inside a range exceeds MaxGap %d", s.Offset-end, opts.MaxGap)
			}
			end = s.Offset + s.Length
			mark(s.Name)
		}
		if end != rg.Length {
			t.Fatalf("range length %d, last span ends at %d", rg.Length, end)
		}
	}
	for _, n := range p.Empty {
		mark(n)
	}
	for _, n := range p.External {
		mark(n)
	}
	if len(seen) != len(want) {
		t.Fatalf("planned %d of %d names", len(seen), len(want))
	}
}

func TestPlanBatchErrors(t *testing.T) {
	files, b := batchArchive(t, NewDirStore(t.TempDir()))
	r := openBytes(t, b, ReaderOptions{})
	if _, err := r.PlanBatch([]string{"f001", "nope"}, DefaultBatchOptions); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown name: %v", err)
	}
	// Corrupt one payload: batch execution must refuse its bytes.
	e, _ := r.Stat("f003")
	bad := bytes.Clone(b)
	bad[e.DataOffset+10] ^= 1
	r = openBytes(t, bad, ReaderOptions{})
	err := r.ReadBatch(context.Background(), []string{"f002", "f003"}, DefaultBatchOptions, func(string, []byte) error { return nil })
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("corrupt payload in batch: %v, want ErrChecksum", err)
	}
	// Deliver refuses a short buffer instead of slicing out of range.
	p, _ := r.PlanBatch([]string{"f002"}, DefaultBatchOptions)
	if err := p.Data[0].Deliver(make([]byte, 3), func(string, []byte) error { return nil }); err == nil {
		t.Fatal("Deliver accepted a short buffer")
	}
	_ = files
}

func TestCoalesce(t *testing.T) {
	spans := []Span{{Name: "c", Offset: 300, Length: 50}, {Name: "a", Offset: 100, Length: 10}, {Name: "b", Offset: 115, Length: 10}, {Name: "d", Offset: 1000, Length: 5000}}
	got := coalesce(spans, BatchOptions{MaxGap: 10, MaxRange: 1000})
	want := []Range{
		{Offset: 100, Length: 25, Spans: []Span{{Name: "a", Offset: 0, Length: 10}, {Name: "b", Offset: 15, Length: 10}}},
		{Offset: 300, Length: 50, Spans: []Span{{Name: "c", Offset: 0, Length: 50}}},
		{Offset: 1000, Length: 5000, Spans: []Span{{Name: "d", Offset: 0, Length: 5000}}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("coalesce:\n got %v\nwant %v", got, want)
	}
	got = coalesce([]Span{{Name: "a", Offset: 0, Length: 600}, {Name: "b", Offset: 600, Length: 600}}, BatchOptions{MaxRange: 1000})
	if len(got) != 2 {
		t.Fatalf("MaxRange not applied: %v", got)
	}
}
