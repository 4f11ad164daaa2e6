package desformat

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSummaryOfWriterAndReaderAgree(t *testing.T) {
	files := []testFile{{name: "a", data: pattern(1000, 1)}, {name: "empty"}, {name: "b.pdf", data: pattern(70000, 2), meta: `{"mime":"application/pdf"}`}}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := w.Add(context.Background(), FileHeader{Name: f.name, Size: int64(len(f.data)), Meta: []byte(f.meta)}, bytes.NewReader(f.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := w.Summary()
	if want.Files != 3 || want.PayloadBytes != 71000 || want.Size != int64(buf.Len()) {
		t.Fatalf("writer summary %+v for a %d-byte archive", want, buf.Len())
	}
	got, err := openBytes(t, buf.Bytes(), ReaderOptions{}).Summary(context.Background())
	if err != nil || got != want {
		t.Fatalf("reader summary %+v (%v), writer said %+v", got, err, want)
	}

	// A changed payload checksum in the meta region changes the summary.
	other := writeArchive(t, WriterOptions{}, []testFile{{name: "a", data: pattern(1000, 9)}, {name: "empty"}, files[2]})
	changed, err := openBytes(t, other, ReaderOptions{}).Summary(context.Background())
	if err != nil || changed.MetaCRC == want.MetaCRC {
		t.Fatalf("different payload, same meta CRC %08x (%v)", changed.MetaCRC, err)
	}
}

func TestSummaryNeedsOurChecksums(t *testing.T) {
	dir, _ := v1Archives(t)
	b, err := os.ReadFile(filepath.Join(dir, "mixed-60.des"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openBytes(t, b, ReaderOptions{}).Summary(context.Background()); !errors.Is(err, ErrChecksum) {
		t.Fatalf("summary of a v1 archive: %v, want ErrChecksum", err)
	}
}
