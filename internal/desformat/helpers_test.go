package desformat

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/datavision/des/test/v1testdata"
)

func v1TestdataDir(t testing.TB) string {
	t.Helper()
	return v1testdata.Dir(t)
}

type manifest = v1testdata.Manifest

// v1Archives returns the manifests of all reference archives.
func v1Archives(t testing.TB) (string, []manifest) {
	t.Helper()
	dir := v1TestdataDir(t)
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []manifest
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var m manifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if m.Archive != "" { // naming.json pins names, not an archive
			out = append(out, m)
		}
	}
	if len(out) < 6 {
		t.Fatalf("found only %d reference archives in %s", len(out), dir)
	}
	return dir, out
}

// openBytes opens an in-memory archive.
func openBytes(t testing.TB, b []byte, opts ReaderOptions) *Reader {
	t.Helper()
	r, err := NewReader(bytes.NewReader(b), int64(len(b)), opts)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	return r
}

// jsonEqual compares two JSON texts semantically, numbers as literals.
func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	da, err := DecodeMeta(a)
	if err != nil {
		t.Fatalf("decode %s: %v", a, err)
	}
	db, err := DecodeMeta(b)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return reflect.DeepEqual(da, db)
}

type testFile struct {
	name string
	data []byte
	meta string
}

// writeArchive writes files with opts and returns the archive bytes.
func writeArchive(t testing.TB, opts WriterOptions, files []testFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		fh := FileHeader{Name: f.name, Size: int64(len(f.data))}
		if f.meta != "" {
			fh.Meta = json.RawMessage(f.meta)
		}
		if err := w.Add(context.Background(), fh, bytes.NewReader(f.data)); err != nil {
			t.Fatalf("Add(%q): %v", f.name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes()
}

// pattern returns n deterministic pseudo-random bytes.
func pattern(n int, seed uint32) []byte {
	b := make([]byte, n)
	x := seed*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}
