package desformat

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// refIndex is the v1 name table written the obvious way (a map and a slice), the model the compact
// index must agree with.
type refIndex struct {
	last  map[string]int // name → position of its last entry
	order []string       // names in first-occurrence order
}

func newRefIndex(names []string) refIndex {
	r := refIndex{last: map[string]int{}}
	for i, n := range names {
		if _, ok := r.last[n]; !ok {
			r.order = append(r.order, n)
		}
		r.last[n] = i
	}
	return r
}

// TestCompactIndexMatchesModel opens v1-layout archives with random names, many repeated, and checks
// every lookup and listing against the map-and-slice model.
func TestCompactIndexMatchesModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, tc := range []struct {
		n, distinct int
	}{{0, 1}, {1, 1}, {2, 1}, {7, 3}, {100, 100}, {1000, 40}, {5000, 4999}} {
		t.Run(fmt.Sprintf("%d-entries-%d-names", tc.n, tc.distinct), func(t *testing.T) {
			var files []v1File
			var names []string
			for i := range tc.n {
				name := fmt.Sprintf("DES_%d.bin", rng.IntN(tc.distinct))
				names = append(names, name)
				files = append(files, v1File{name, []byte(fmt.Sprint(i)), fmt.Sprintf(`{"i":%d}`, i)})
			}
			archive := buildV1(t, files)
			r := openBytes(t, archive, ReaderOptions{})
			ref := newRefIndex(names)
			if r.NumIndexEntries() != tc.n || r.Len() != len(ref.order) {
				t.Fatalf("NumIndexEntries %d, Len %d; want %d, %d", r.NumIndexEntries(), r.Len(), tc.n, len(ref.order))
			}
			all := r.IndexEntries()
			for i, e := range all {
				if e.Name != names[i] || !reflect.DeepEqual(r.IndexEntry(i), e) {
					t.Fatalf("IndexEntries[%d] = %+v, IndexEntry = %+v; want name %q", i, e, r.IndexEntry(i), names[i])
				}
			}
			listing := r.Entries()
			if len(listing) != len(ref.order) {
				t.Fatalf("Entries has %d names, want %d", len(listing), len(ref.order))
			}
			for k, e := range listing {
				want := all[ref.last[ref.order[k]]]
				if !reflect.DeepEqual(e, want) {
					t.Fatalf("Entries[%d] = %+v, want the last %q: %+v", k, e, ref.order[k], want)
				}
				st, err := r.Stat(e.Name)
				if err != nil || !reflect.DeepEqual(st, want) {
					t.Fatalf("Stat(%q) = %+v, %v; want %+v", e.Name, st, err, want)
				}
				if p, ok := r.Lookup(e.Name); !ok || p != ref.last[e.Name] {
					t.Fatalf("Lookup(%q) = %d, %v; want %d", e.Name, p, ok, ref.last[e.Name])
				}
				data, err := r.ReadFile(context.Background(), e.Name)
				if err != nil || string(data) != fmt.Sprint(ref.last[e.Name]) {
					t.Fatalf("ReadFile(%q) = %q, %v; want the last entry's payload", e.Name, data, err)
				}
			}
			for _, absent := range []string{"", "DES_-1.bin", "x"} {
				if _, err := r.Stat(absent); err == nil {
					t.Fatalf("Stat(%q) succeeded", absent)
				}
				if _, ok := r.Lookup(absent); ok {
					t.Fatalf("Lookup(%q) found something", absent)
				}
			}
		})
	}
}

// TestMemoryBytes checks that the reported memory covers what the Reader holds and that the compact
// arrays stay small next to the index bytes.
func TestMemoryBytes(t *testing.T) {
	const n = 20000
	files := make([]testFile, n)
	for i := range files {
		files[i] = testFile{name: fmt.Sprintf("DES_20260224_(0E8A%08X_%02X).pdf", i, i%256), data: pattern(16, uint32(i))}
	}
	archive := writeArchive(t, WriterOptions{}, files)
	r := openBytes(t, archive, ReaderOptions{TailSize: 4096})
	f := r.Footer()
	got := r.MemoryBytes()
	// What it holds: the 4 KiB tail, the index bytes, and the arrays.
	if least := int64(4096 + f.IndexLength); got < least {
		t.Errorf("MemoryBytes %d < tail + index %d", got, least)
	}
	if perEntry := float64(got-int64(4096+f.IndexLength)) / n; perEntry > 20 {
		t.Errorf("%.1f B per entry beyond the index bytes, want ≤ 20", perEntry)
	}
	// ReleaseCache drops the tail; everything still works from the index and the archive.
	r.ReleaseCache()
	if after := r.MemoryBytes(); after != got-4096 {
		t.Errorf("after ReleaseCache: %d bytes, want %d", after, got-4096)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		data, err := r.ReadFile(context.Background(), files[i].name)
		if err != nil || !bytes.Equal(data, files[i].data) {
			t.Fatalf("ReadFile(%q) after ReleaseCache: %v", files[i].name, err)
		}
	}
}

// TestReleaseCacheKeepsSharedIndex: when the index lies in the tail, releasing the tail must keep a
// copy of the index.
func TestReleaseCacheKeepsSharedIndex(t *testing.T) {
	files := []testFile{{name: "a", data: []byte("1")}, {name: "b", data: []byte("22")}}
	archive := writeArchive(t, WriterOptions{}, files)
	r := openBytes(t, archive, ReaderOptions{PrefetchMeta: true})
	before := r.Entries()
	r.ReleaseCache()
	if after := r.Entries(); !reflect.DeepEqual(before, after) {
		t.Fatalf("entries changed after ReleaseCache: %+v → %+v", before, after)
	}
	if r.MemoryBytes() >= int64(len(archive))+readerOverhead+r.idx.memory() {
		t.Errorf("MemoryBytes %d still counts the %d-byte tail", r.MemoryBytes(), len(archive))
	}
	for _, f := range files {
		if data, err := r.ReadFile(context.Background(), f.name); err != nil || !bytes.Equal(data, f.data) {
			t.Fatalf("ReadFile(%q) = %q, %v", f.name, data, err)
		}
	}
}

// TestParseMetaAndOpenWithMeta: ParseMeta sees what Open uses, and OpenWithMeta verifies with it.
func TestParseMetaAndOpenWithMeta(t *testing.T) {
	files := []testFile{{name: "a.txt", data: []byte("hello"), meta: `{"mime":"text/plain"}`}, {name: "b", data: []byte("x"), meta: `{"mime":7}`}}
	archive := writeArchive(t, WriterOptions{}, files)
	r := openBytes(t, archive, ReaderOptions{})
	for _, f := range files {
		meta, err := r.Meta(f.name)
		if err != nil {
			t.Fatal(err)
		}
		mi, err := r.ParseMeta(f.name, meta)
		if err != nil {
			t.Fatal(err)
		}
		want := crcUpdate(0, f.data)
		if !mi.HasCRC || mi.CRC32C != want || mi.ExternalKey != "" {
			t.Errorf("%s: %+v, want crc %08x", f.name, mi, want)
		}
		if wantMime := map[string]string{"a.txt": "text/plain", "b": ""}[f.name]; mi.Mime != wantMime {
			t.Errorf("%s: mime %q, want %q", f.name, mi.Mime, wantMime)
		}
		e, _ := r.Stat(f.name)
		fl, err := r.OpenWithMeta(context.Background(), e, mi)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAllHint(fl, e.Size)
		fl.Close()
		if err != nil || !bytes.Equal(got, f.data) {
			t.Errorf("%s: %q, %v", f.name, got, err)
		}
		// A wrong checksum is caught.
		mi.CRC32C ^= 1
		fl, _ = r.OpenWithMeta(context.Background(), e, mi)
		if _, err := readAllHint(fl, e.Size); err == nil {
			t.Errorf("%s: a wrong checksum was not reported", f.name)
		}
	}
	if _, err := r.ParseMeta("x", []byte(`{"crc32c":"zz"}`)); err == nil {
		t.Error("a malformed writer-owned crc32c was accepted")
	}
}
