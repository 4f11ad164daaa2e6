package desformat

import (
	"bytes"
	"context"
	"hash/crc32"
	"path/filepath"
	"testing"
)

// TestLocationsMatchWriter checks that what the writer reports after each Add, what a reader
// recomputes from the archive alone, and the bytes at those places agree, for internal, empty and
// external payloads: the catalog records these locations and the reader trusts them without opening
// the index.
func TestLocationsMatchWriter(t *testing.T) {
	store := NewDirStore(t.TempDir())
	files := roundTripFiles()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{External: store, ExternalThreshold: 65536, ExternalPrefix: "p/2026-12-01/0007/c1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := w.Last(); ok {
		t.Fatal("Last before any Add reported a location")
	}
	var written []Location
	for _, f := range files {
		if err := w.Add(context.Background(), FileHeader{Name: f.name, Size: int64(len(f.data))}, bytes.NewReader(f.data)); err != nil {
			t.Fatal(err)
		}
		l, ok := w.Last()
		if !ok || l.Name != f.name {
			t.Fatalf("Last after adding %q = %+v, %v", f.name, l, ok)
		}
		written = append(written, l)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	archive := buf.Bytes()
	r := openBytes(t, archive, ReaderOptions{External: store})
	read, err := r.Locations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(read) != len(written) {
		t.Fatalf("reader found %d locations, writer %d", len(read), len(written))
	}
	external := 0
	for i, want := range written {
		got := read[i]
		if got != want {
			t.Errorf("%q: reader says %+v, writer %+v", want.Name, got, want)
		}
		data := files[i].data
		if got.IsExternal() {
			external++
			rc, _, err := store.Open(context.Background(), got.ExternalKey)
			if err != nil {
				t.Fatalf("%q: external key %q: %v", got.Name, got.ExternalKey, err)
			}
			var b bytes.Buffer
			_, _ = b.ReadFrom(rc)
			rc.Close()
			if !bytes.Equal(b.Bytes(), data) {
				t.Errorf("%q: external object differs", got.Name)
			}
		} else if !bytes.Equal(archive[got.Offset:got.Offset+got.Size], data) {
			t.Errorf("%q: bytes at offset %d differ", got.Name, got.Offset)
		}
		if !got.HasCRC || got.CRC32C != crc32.Checksum(data, castagnoli) {
			t.Errorf("%q: crc32c %08x (has %v), payload has %08x", got.Name, got.CRC32C, got.HasCRC, crc32.Checksum(data, castagnoli))
		}
	}
	if external == 0 {
		t.Fatal("no external payload was written: the test does not cover external keys")
	}
}

// TestLocationsOfV1Archive: a v1 archive has no payload checksums; locations still point at the bytes.
func TestLocationsOfV1Archive(t *testing.T) {
	dir, archives := v1Archives(t)
	for _, m := range archives {
		r := openFile(t, filepath.Join(dir, m.Archive), ReaderOptions{})
		locs, err := r.Locations(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", m.Archive, err)
		}
		if len(locs) != r.Len() {
			t.Fatalf("%s: %d locations for %d names", m.Archive, len(locs), r.Len())
		}
		for _, l := range locs {
			if l.HasCRC {
				t.Errorf("%s: %q claims a crc32c in a v1 archive", m.Archive, l.Name)
			}
			e, err := r.Stat(l.Name)
			if err != nil || (!e.IsExternal() && (e.DataOffset != l.Offset || e.Size != l.Size)) {
				t.Errorf("%s: %q location %+v, entry %+v (%v)", m.Archive, l.Name, l, e, err)
			}
		}
	}
}
