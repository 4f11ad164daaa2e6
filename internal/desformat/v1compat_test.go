package desformat

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestV1ReferenceArchives reads every archive written by the original v1
// writer and compares it with its manifest: names in order, sizes, content
// hashes, meta, external payloads.
func TestV1ReferenceArchives(t *testing.T) {
	dir, ms := v1Archives(t)
	for _, m := range ms {
		t.Run(m.Archive, func(t *testing.T) {
			ctx := context.Background()
			opts := ReaderOptions{}
			if m.External != nil {
				opts.External = NewDirStore(filepath.Join(dir, filepath.FromSlash(m.External.Dir)))
			}
			r := openFile(t, filepath.Join(dir, m.Archive), opts)
			entries := r.Entries()
			if len(entries) != len(m.Files) {
				t.Fatalf("got %d entries, manifest has %d", len(entries), len(m.Files))
			}
			for i, want := range m.Files {
				e := entries[i]
				if e.Name != want.Name || e.Size != want.Size || e.IsExternal() != want.External {
					t.Fatalf("entry %d = {%q %d ext=%v}, want {%q %d ext=%v}", i, e.Name, e.Size, e.IsExternal(), want.Name, want.Size, want.External)
				}
				data, err := r.ReadFile(ctx, e.Name)
				if err != nil {
					t.Fatalf("ReadFile(%q): %v", e.Name, err)
				}
				if got := sha(data); got != want.SHA256 {
					t.Errorf("%q: sha256 %s, want %s", e.Name, got, want.SHA256)
				}
				meta, err := r.Meta(e.Name)
				if err != nil {
					t.Fatalf("Meta(%q): %v", e.Name, err)
				}
				if !jsonEqual(t, meta, want.Meta) {
					t.Errorf("%q: meta %s, want %s", e.Name, meta, want.Meta)
				}
				checkV1MetaBytes(t, e, meta)
				if _, has, err := r.Checksum(e.Name); err != nil || has {
					t.Errorf("%q: v1 archive reports checksum=%v err=%v", e.Name, has, err)
				}
			}
			checkBatchMatches(t, r, m)
			rep, err := r.Verify(ctx)
			if err != nil || rep.Err() != nil {
				t.Fatalf("Verify: %v / %v", err, rep.Err())
			}
			if rep.Checksummed != 0 || rep.Unchecksummed != len(m.Files) || rep.ExternalSkipped != 0 {
				t.Errorf("Verify report %+v", rep)
			}
		})
	}
}

// checkV1MetaBytes re-encodes stored v1 meta with our encoder (without the
// crc32c key) and expects the identical bytes: our escaping and key order
// are byte-compatible with the v1 writer.
func checkV1MetaBytes(t *testing.T, e Entry, meta []byte) {
	t.Helper()
	mf := metaFields{size: e.Size}
	if e.IsExternal() {
		mi, err := parseMetaInfo(meta, false)
		if err != nil {
			t.Fatal(err)
		}
		mf.extKey = mi.externalKey
	}
	got, err := appendMeta(nil, meta, &mf)
	if err != nil {
		t.Fatalf("%q: re-encode meta: %v", e.Name, err)
	}
	if !bytes.Equal(got, meta) {
		t.Errorf("%q: re-encoded meta\n got %s\nwant %s", e.Name, got, meta)
	}
}

func checkBatchMatches(t *testing.T, r *Reader, m manifest) {
	t.Helper()
	want := map[string]string{}
	var names []string
	for _, f := range m.Files {
		want[f.Name] = f.SHA256
		names = append(names, f.Name)
	}
	got := map[string]string{}
	err := r.ReadBatch(context.Background(), names, DefaultBatchOptions, func(name string, data []byte) error {
		got[name] = sha(data)
		return nil
	})
	if err != nil {
		t.Fatalf("ReadBatch: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("ReadBatch yielded %d files, want %d", len(got), len(want))
	}
	for n, h := range want {
		if got[n] != h {
			t.Errorf("ReadBatch %q: sha256 %s, want %s", n, got[n], h)
		}
	}
}

func openFile(t testing.TB, path string, opts ReaderOptions) *Reader {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(f, st.Size(), opts)
	if err != nil {
		t.Fatalf("NewReader(%s): %v", path, err)
	}
	return r
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestV1ExternalWithoutStore: the v1 reader returned archive bytes at
// offset 0 for external payloads; we must refuse instead.
func TestV1ExternalWithoutStore(t *testing.T) {
	dir := v1TestdataDir(t)
	r := openFile(t, filepath.Join(dir, "external-big.des"), ReaderOptions{})
	_, err := r.ReadFile(context.Background(), "big-1")
	if !errors.Is(err, ErrNoExternalStore) {
		t.Fatalf("ReadFile(big-1) without store: %v, want ErrNoExternalStore", err)
	}
	if _, err := r.Section("big-1"); err == nil {
		t.Fatal("Section on an external payload succeeded")
	}
	rep, err := r.Verify(context.Background())
	if err != nil || rep.Err() != nil || rep.ExternalSkipped != 2 {
		t.Fatalf("Verify without store: %+v, %v", rep, err)
	}
	small, err := r.ReadFile(context.Background(), "small-2")
	if err != nil || len(small) != 200 {
		t.Fatalf("small-2: %d bytes, %v", len(small), err)
	}
}

// TestV1ExternalWrongObject: an external object whose size differs from the
// index is reported, never returned.
func TestV1ExternalWrongObject(t *testing.T) {
	dir := v1TestdataDir(t)
	store := t.TempDir()
	key := "2025-11-25/shard_07/_bigFiles/big-1"
	if err := os.MkdirAll(filepath.Join(store, filepath.Dir(key)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(store, key), []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := openFile(t, filepath.Join(dir, "external-big.des"), ReaderOptions{External: NewDirStore(store)})
	_, err := r.ReadFile(context.Background(), "big-1")
	if !errors.Is(err, ErrCorrupt) || !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("ReadFile: %v, want corrupt external size mismatch", err)
	}
	if _, err := r.ReadFile(context.Background(), "big-2"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing external object: %v", err)
	}
}

// TestV1DuplicateNames builds a v1-style archive (no checksums) with a
// repeated name: lookups see the last entry, listing the first position.
func TestV1DuplicateNames(t *testing.T) {
	b := buildV1(t, []v1File{
		{"a", []byte("first a"), `{"size":7}`},
		{"b", []byte("bee"), `{"size":3}`},
		{"a", []byte("second a!"), `{"size":9}`},
		{"c", nil, `{"size":0}`},
	})
	r := openBytes(t, b, ReaderOptions{})
	var names []string
	for _, e := range r.Entries() {
		names = append(names, e.Name)
	}
	if got := fmtList(names); got != "a,b,c" {
		t.Fatalf("Entries order %s, want a,b,c", got)
	}
	data, err := r.ReadFile(context.Background(), "a")
	if err != nil || string(data) != "second a!" {
		t.Fatalf("ReadFile(a) = %q, %v; want the last entry", data, err)
	}
	if len(r.IndexEntries()) != 4 {
		t.Fatalf("IndexEntries = %d, want 4", len(r.IndexEntries()))
	}
	rep, err := r.Verify(context.Background())
	if err != nil || rep.Err() != nil || rep.Duplicates != 1 {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
	if _, err := r.Stat("zzz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Stat(zzz) = %v, want ErrNotFound", err)
	}
}

func fmtList(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(x)
	}
	return b.String()
}

type v1File struct {
	name string
	data []byte
	meta string
}

// buildV1 writes an archive the way the v1 writer does (no checksums,
// zero reserved bytes), independently of Writer, for reader tests.
func buildV1(t testing.TB, files []v1File) []byte {
	t.Helper()
	var data, meta, index bytes.Buffer
	type pos struct{ d, m uint64 }
	var ps []pos
	for _, f := range files {
		ps = append(ps, pos{uint64(HeaderSize + data.Len()), uint64(meta.Len())})
		data.Write(f.data)
		meta.WriteString(f.meta)
	}
	metaStart := uint64(HeaderSize + data.Len())
	for i, f := range files {
		index.Write(appendIndexEntry(nil, f.name, ps[i].d, uint64(len(f.data)), metaStart+ps[i].m, uint64(len(f.meta)), 0))
	}
	var out bytes.Buffer
	out.WriteString(HeaderMagic)
	out.Write([]byte{1, 0, 0, 0, 0, 0, 0, 0})
	out.Write(data.Bytes())
	out.Write(meta.Bytes())
	out.Write(index.Bytes())
	f := Footer{Version: 1, DataStart: HeaderSize, DataLength: uint64(data.Len()), MetaStart: metaStart,
		MetaLength: uint64(meta.Len()), IndexStart: metaStart + uint64(meta.Len()), IndexLength: uint64(index.Len()),
		FileCount: uint64(len(files))}
	out.Write(appendFooter(nil, &f))
	return out.Bytes()
}

func TestDuplicateOrderInterleaved(t *testing.T) {
	var files []v1File
	for i, n := range []string{"a", "b", "a", "c", "b", "c", "d", "a"} {
		files = append(files, v1File{n, []byte(fmt.Sprint(i)), "{}"})
	}
	r := openBytes(t, buildV1(t, files), ReaderOptions{})
	var got []string
	for _, e := range r.Entries() {
		data, err := r.ReadFile(context.Background(), e.Name)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Name+"="+string(data))
	}
	if s := fmtList(got); s != "a=7,b=4,c=5,d=6" {
		t.Fatalf("got %s, want a=7,b=4,c=5,d=6", s)
	}
}
