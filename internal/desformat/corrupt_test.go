package desformat

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func corruptionFiles() []testFile {
	return []testFile{
		{name: "empty", data: nil},
		{name: "one", data: []byte{42}},
		{name: "small", data: pattern(100, 1), meta: `{"mime":"text/plain","n":12345678901234567890}`},
		{name: "żółw", data: pattern(5000, 2)},
		{name: "last", data: pattern(300, 3)},
	}
}

// isTyped reports whether an open error is one of the documented kinds.
func isTyped(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, ErrBadMagic) || errors.Is(err, ErrUnsupportedVersion)
}

// readAllFiles reads every file and checks the invariant that matters most:
// a read returns the original bytes or an error, never other bytes.
// It returns how many reads failed.
func readAllFiles(t *testing.T, r *Reader, files []testFile, where string) (failed int) {
	t.Helper()
	ctx := context.Background()
	for _, f := range files {
		got, err := r.ReadFile(ctx, f.name)
		if err != nil {
			failed++
			continue
		}
		if !bytes.Equal(got, f.data) {
			t.Fatalf("%s: ReadFile(%q) returned wrong bytes without error", where, f.name)
		}
	}
	return failed
}

func TestTruncation(t *testing.T) {
	files := corruptionFiles()
	b := writeArchive(t, WriterOptions{}, files)
	for n := 0; n < len(b); n++ {
		_, err := NewReader(bytes.NewReader(b[:n]), int64(n), ReaderOptions{TailSize: 128})
		if err == nil {
			t.Fatalf("truncated to %d of %d bytes: open succeeded", n, len(b))
		}
		if !isTyped(err) {
			t.Fatalf("truncated to %d: untyped error %v", n, err)
		}
	}
}

// TestByteFlips flips each byte of one of our archives. Index and footer
// damage must fail the open, data damage must fail the affected read,
// and nothing may ever yield wrong bytes.
func TestByteFlips(t *testing.T) {
	files := corruptionFiles()
	orig := writeArchive(t, WriterOptions{}, files)
	r0 := openBytes(t, orig, ReaderOptions{})
	f := r0.Footer()
	regionOf := func(i int) string {
		switch u := uint64(i); {
		case u < HeaderSize:
			return RegionHeader
		case u < f.MetaStart:
			return RegionData
		case u < f.IndexStart:
			return RegionMeta
		case u < f.IndexStart+f.IndexLength:
			return RegionIndex
		}
		return RegionFooter
	}
	ctx := context.Background()
	for i := range orig {
		for _, mask := range []byte{0x01, 0x80} {
			b := bytes.Clone(orig)
			b[i] ^= mask
			region := regionOf(i)
			footerReserved := i >= len(b)-FooterSize+9 && i < len(b)-FooterSize+16
			r, err := NewReader(bytes.NewReader(b), int64(len(b)), ReaderOptions{})
			if err != nil {
				if !isTyped(err) {
					t.Fatalf("flip %d (%s): untyped open error %v", i, region, err)
				}
				continue
			}
			if (region == RegionIndex || region == RegionFooter) && !footerReserved {
				t.Fatalf("flip %d (%s): open succeeded", i, region)
			}
			failed := readAllFiles(t, r, files, region)
			rep, verr := r.Verify(ctx)
			if verr != nil {
				t.Fatal(verr)
			}
			switch region {
			case RegionData:
				if failed != 1 || rep.ProblemCount != 1 || !errors.Is(rep.Problems[0], ErrChecksum) {
					t.Fatalf("flip %d (data): %d failed reads, verify %v", i, failed, rep.Err())
				}
			case RegionHeader:
				if i < 9 && rep.ProblemCount == 0 {
					t.Fatalf("flip %d (header magic/version): Verify found nothing", i)
				}
			}
		}
	}
}

// TestByteFlipsV1 flips bytes of the reference archives (no checksums):
// open errors are typed and nothing panics.
func TestByteFlipsV1(t *testing.T) {
	dir, ms := v1Archives(t)
	for _, m := range ms {
		orig, err := os.ReadFile(filepath.Join(dir, m.Archive))
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range flipPositions(len(orig)) {
			b := bytes.Clone(orig)
			b[i] ^= 0x55
			r, err := NewReader(bytes.NewReader(b), int64(len(b)), ReaderOptions{})
			if err != nil {
				if !isTyped(err) {
					t.Fatalf("%s flip %d: untyped open error %v", m.Archive, i, err)
				}
				continue
			}
			for _, e := range r.Entries() {
				_, _ = r.ReadFile(context.Background(), e.Name) // errors are expected; panics are not
				_, _ = r.Meta(e.Name)
			}
			_, _ = r.Verify(context.Background())
		}
	}
}

// flipPositions is every byte of small archives; for large ones, every
// seventh byte of the structure-heavy tail plus a sample of the payloads.
func flipPositions(n int) []int {
	var out []int
	if n <= 10000 {
		for i := range n {
			out = append(out, i)
		}
		return out
	}
	for i := 0; i < n-4000; i += (n - 4000) / 100 {
		out = append(out, i)
	}
	for i := n - 4000; i < n; i += 7 {
		out = append(out, i)
	}
	return out
}

// lie rewrites one footer field of a v1-style archive (no index checksum,
// so the bounds checks themselves are exercised).
func lie(b []byte, field int, v uint64) []byte {
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint64(b[len(b)-FooterSize+16+8*field:], v)
	return b
}

const (
	fDataStart = iota
	fDataLen
	fMetaStart
	fMetaLen
	fIndexStart
	fIndexLen
	fFileCount
)

func TestFooterLies(t *testing.T) {
	v1 := buildV1(t, []v1File{{"a", []byte("aaaa"), `{"size":4}`}, {"b", []byte("bb"), `{"size":2}`}})
	r := openBytes(t, v1, ReaderOptions{})
	f := r.Footer()
	size := uint64(len(v1))
	tests := []struct {
		name   string
		b      []byte
		want   error
		region string
	}{
		{"huge file_count", lie(v1, fFileCount, 1<<62), ErrCorrupt, RegionFooter},
		{"max file_count", lie(v1, fFileCount, ^uint64(0)), ErrCorrupt, RegionFooter},
		{"file_count+1", lie(v1, fFileCount, f.FileCount+1), ErrCorrupt, ""},
		{"file_count-1", lie(v1, fFileCount, f.FileCount-1), ErrCorrupt, RegionIndex},
		{"file_count 0", lie(v1, fFileCount, 0), ErrCorrupt, RegionIndex},
		{"index past EOF", lie(v1, fIndexStart, size), ErrCorrupt, RegionFooter},
		{"index length huge", lie(v1, fIndexLen, 1<<60), ErrCorrupt, RegionFooter},
		{"index length wraps", lie(v1, fIndexLen, ^uint64(0)-f.IndexStart+1), ErrCorrupt, RegionFooter},
		{"data length huge", lie(v1, fDataLen, 1<<62), ErrCorrupt, RegionFooter},
		{"data start in header", lie(v1, fDataStart, 3), ErrCorrupt, RegionFooter},
		{"meta overlaps data", lie(v1, fMetaStart, f.DataStart), ErrCorrupt, RegionFooter},
		{"index overlaps meta", lie(v1, fIndexStart, f.MetaStart+1), ErrCorrupt, ""},
		{"meta shorter than entries", lie(v1, fMetaLen, 5), ErrCorrupt, RegionIndex},
		{"data shorter than entries", lie(v1, fDataLen, 3), ErrCorrupt, RegionIndex},
		{"bad magic", append(bytes.Clone(v1[:len(v1)-FooterSize]), append([]byte("DESFOOT2"), v1[len(v1)-FooterSize+8:]...)...), ErrBadMagic, ""},
		{"version 2", func() []byte { b := bytes.Clone(v1); b[len(b)-FooterSize+8] = 2; return b }(), ErrUnsupportedVersion, ""},
		{"too small", v1[len(v1)-FooterSize:], ErrCorrupt, RegionFooter},
		{"tiny", []byte("DES"), ErrCorrupt, RegionFooter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(tc.b), int64(len(tc.b)), ReaderOptions{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var ce *CorruptError
			if tc.region != "" && (!errors.As(err, &ce) || ce.Region != tc.region) {
				t.Fatalf("got %v, want region %s", err, tc.region)
			}
		})
	}
	// Our archives detect the same lies through the index checksum.
	ours := writeArchive(t, WriterOptions{}, corruptionFiles())
	_, err := NewReader(bytes.NewReader(ours), int64(len(ours)), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fo := openBytes(t, ours, ReaderOptions{}).Footer()
	swapped := lie(ours, fDataLen, fo.DataLength-1) // still in bounds: only the CRC sees it
	swapped = lie(swapped, fMetaStart, fo.MetaStart)
	if _, err := NewReader(bytes.NewReader(swapped), int64(len(swapped)), ReaderOptions{}); !errors.Is(err, ErrChecksum) {
		t.Fatalf("in-bounds footer lie: %v, want ErrChecksum", err)
	}
}

func TestIndexEntryLies(t *testing.T) {
	v1 := buildV1(t, []v1File{{"a", []byte("aaaa"), `{"size":4}`}})
	f := openBytes(t, v1, ReaderOptions{}).Footer()
	entry := int(f.IndexStart) + 2 + 1 // fixed part of the only entry
	put := func(off int, v uint64) []byte {
		b := bytes.Clone(v1)
		binary.LittleEndian.PutUint64(b[entry+off:], v)
		return b
	}
	nameLen := bytes.Clone(v1)
	binary.LittleEndian.PutUint16(nameLen[f.IndexStart:], 0xffff)
	zeroName := bytes.Clone(v1)
	binary.LittleEndian.PutUint16(zeroName[f.IndexStart:], 0)
	for name, b := range map[string][]byte{
		"data offset past region":  put(0, f.MetaStart),
		"data length past region":  put(8, 1<<40),
		"data offset wraps":        put(0, ^uint64(0)-1),
		"meta offset in data":      put(16, f.DataStart),
		"meta length huge":         put(24, 1<<62),
		"name length past index":   nameLen,
		"empty name":               zeroName,
		"external size over int64": func() []byte { b := put(8, 1<<63); b[entry+32] = 1; return b }(),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(b), int64(len(b)), ReaderOptions{})
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Region != RegionIndex {
				t.Fatalf("got %v, want index corruption", err)
			}
		})
	}
}

// sparseArchive is a ReaderAt of a claimed huge size that is zero except
// for a footer at its end.
type sparseArchive struct {
	size   int64
	footer []byte
}

func (s *sparseArchive) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	fs := s.size - int64(len(s.footer))
	for i := range p {
		if o := off + int64(i); o >= fs && o < s.size {
			p[i] = s.footer[o-fs]
		}
	}
	return len(p), nil
}

// TestNoHugeAllocations: footers claiming enormous indexes or counts in a
// (claimed) 1 TiB archive are rejected without allocating for the claim.
func TestNoHugeAllocations(t *testing.T) {
	const tib = 1 << 40
	for _, tc := range []struct {
		name  string
		index uint64
		count uint64
	}{
		{"900 GiB index", 900 << 30, 900 << 30 / 40},
		{"2 GiB index", 2 << 30, 1 << 20},
		{"count beyond index", 1 << 20, 1 << 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ft := Footer{Version: 1, DataStart: 16, IndexStart: tib - FooterSize - tc.index, IndexLength: tc.index, FileCount: tc.count}
			ft.MetaStart = ft.IndexStart
			ft.DataLength = ft.MetaStart - 16
			ra := &sparseArchive{size: tib, footer: appendFooter(nil, &ft)}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := NewReader(ra, tib, ReaderOptions{})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
				t.Fatalf("allocated %d bytes for a lying footer", grew)
			}
		})
	}
}
