package desformat

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Fuzz targets. Seeds come from testdata/fuzz/<Target>/ (regenerate with
// DES_WRITE_FUZZ_CORPUS=1 go test -run TestWriteFuzzCorpus) plus f.Add.
//
//	go test ./internal/desformat -run '^$' -fuzz '^FuzzOpen$' -fuzztime 30s -fuzzminimizetime 2s
//	go test ./internal/desformat -run '^$' -fuzz '^FuzzParseFooter$' -fuzztime 30s -fuzzminimizetime 2s
//	go test ./internal/desformat -run '^$' -fuzz '^FuzzParseIndex$' -fuzztime 30s -fuzzminimizetime 2s
//
// Keep -fuzzminimizetime short for short runs: the default (60s) spends a
// 30s budget minimising the first new input of FuzzOpen, with the exec
// counter frozen at 0/sec, which looks like a hang but is not.

func seedArchives(t testing.TB) [][]byte {
	t.Helper()
	seeds := [][]byte{
		writeArchive(t, WriterOptions{}, nil),
		writeArchive(t, WriterOptions{}, corruptionFiles()),
		buildV1(t, []v1File{{"a", []byte("x"), `{"size":1}`}, {"a", nil, `{}`}}),
	}
	dir := v1TestdataDir(t)
	for _, name := range []string{"empty.des", "one-small.des", "zero-byte.des", "unicode-names.des", "external-big.des"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

func FuzzOpen(f *testing.F) {
	for _, s := range seedArchives(f) {
		f.Add(s, uint16(0))
		f.Add(s, uint16(FooterSize+7))
	}
	f.Fuzz(func(t *testing.T, data []byte, tail uint16) {
		r, err := NewReader(bytes.NewReader(data), int64(len(data)), ReaderOptions{TailSize: int64(tail), PrefetchMeta: tail%2 == 1})
		if err != nil {
			if !isTyped(err) {
				t.Fatalf("untyped open error: %v", err)
			}
			return
		}
		ctx := context.Background()
		var names []string
		for _, e := range r.Entries() {
			names = append(names, e.Name)
			if e.DataOffset < 0 || e.Size < 0 || (!e.IsExternal() && e.DataOffset+e.Size > int64(len(data))) {
				t.Fatalf("entry %q out of bounds: %+v", e.Name, e)
			}
			got, err := r.ReadFile(ctx, e.Name)
			if err == nil && int64(len(got)) != e.Size {
				t.Fatalf("%q: read %d bytes, size %d", e.Name, len(got), e.Size)
			}
			if crc, has, cerr := r.Checksum(e.Name); err == nil && cerr == nil && has && crc != crcUpdate(0, got) {
				t.Fatalf("%q: verified read returned bytes with the wrong checksum", e.Name)
			}
			_, _ = r.Meta(e.Name) // errors are expected; panics are not
		}
		if p, err := r.PlanBatch(names, BatchOptions{MaxGap: int64(tail) - 100, MaxRange: int64(tail) * 3}); err == nil {
			_ = p.Execute(ctx, bytes.NewReader(data), func(string, []byte) error { return nil })
		}
		_, _ = r.Verify(ctx)
	})
}

func FuzzParseFooter(f *testing.F) {
	for _, s := range seedArchives(f) {
		f.Add(s[len(s)-FooterSize:], int64(len(s)))
	}
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		ft, err := parseFooter(b)
		if err != nil {
			return
		}
		if got := appendFooter(nil, &ft); !bytes.Equal(got, b) {
			t.Fatalf("footer does not round-trip:\n%x\n%x", got, b)
		}
		if ft.validate(size) != nil {
			return
		}
		limit := uint64(size) - FooterSize
		prev := uint64(HeaderSize)
		for _, r := range []region{ft.dataRegion(), ft.metaRegion(), ft.indexRegion()} {
			if r.start < prev || r.end < r.start || r.end > limit {
				t.Fatalf("validated footer has bad region %+v (prev end %d, limit %d)", r, prev, limit)
			}
			prev = r.end
		}
		if ft.FileCount*minEntrySize > ft.IndexLength {
			t.Fatalf("validated footer: %d entries in %d bytes", ft.FileCount, ft.IndexLength)
		}
	})
}

func FuzzParseIndex(f *testing.F) {
	for _, s := range seedArchives(f) {
		r, err := NewReader(bytes.NewReader(s), int64(len(s)), ReaderOptions{})
		if err != nil {
			f.Fatal(err)
		}
		ft := r.Footer()
		f.Add(s[ft.IndexStart:ft.IndexStart+ft.IndexLength], ft.FileCount, ft.DataStart, ft.DataLength, ft.MetaStart, ft.MetaLength)
	}
	f.Fuzz(func(t *testing.T, idx []byte, count, dStart, dLen, mStart, mLen uint64) {
		ft := Footer{Version: 1, DataStart: dStart, DataLength: dLen, MetaStart: mStart, MetaLength: mLen,
			IndexLength: uint64(len(idx)), FileCount: count}
		// parseIndex runs after validate; give it a footer that passed.
		ft.IndexStart = max(HeaderSize, mStart+mLen)
		if ft.validate(int64(min(ft.IndexStart+ft.IndexLength+FooterSize, 1<<62))) != nil {
			return
		}
		entries, err := parseIndex(idx, &ft)
		if err != nil {
			return
		}
		if uint64(len(entries)) != count {
			t.Fatalf("%d entries, footer says %d", len(entries), count)
		}
		n := 0
		for _, e := range entries {
			n += 2 + len(e.Name) + entryFixedSize
			if !ft.metaRegion().contains(uint64(e.MetaOffset), uint64(e.MetaLength)) {
				t.Fatalf("meta of %q outside region", e.Name)
			}
			if !e.IsExternal() && e.Size > 0 && !ft.dataRegion().contains(uint64(e.DataOffset), uint64(e.Size)) {
				t.Fatalf("data of %q outside region", e.Name)
			}
		}
		if n != len(idx) {
			t.Fatalf("entries cover %d of %d index bytes", n, len(idx))
		}
	})
}

// TestWriteFuzzCorpus regenerates testdata/fuzz seed files on request.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("DES_WRITE_FUZZ_CORPUS") == "" {
		return // generator, not a check: the seeds are committed
	}
	write := func(target string, i int, values ...any) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.WriteString("go test fuzz v1\n")
		for _, v := range values {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%q)\n", v)
			default:
				fmt.Fprintf(&b, "%T(%v)\n", v, v)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range seedArchives(t) {
		write("FuzzOpen", i, s, uint16(FooterSize+i))
		write("FuzzParseFooter", i, s[len(s)-FooterSize:], int64(len(s)))
		r := openBytes(t, s, ReaderOptions{})
		ft := r.Footer()
		write("FuzzParseIndex", i, s[ft.IndexStart:ft.IndexStart+ft.IndexLength], ft.FileCount, ft.DataStart, ft.DataLength, ft.MetaStart, ft.MetaLength)
	}
}
