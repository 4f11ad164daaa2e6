package desformat

import (
	"context"
	"testing"
)

// VerifyProgress reports every index entry once, in index order, after checking it: a damaged
// entry is reported too, so a progress display reaches its total.
func TestVerifyProgressReportsEveryEntry(t *testing.T) {
	files := []testFile{{name: "a", data: pattern(1000, 1)}, {name: "b"}, {name: "c", data: pattern(70, 2)}}
	b := writeArchive(t, WriterOptions{}, files)
	b[HeaderSize+10] ^= 1 // inside a's payload
	r := openBytes(t, b, ReaderOptions{})
	var names []string
	var bytes int64
	rep, err := r.VerifyProgress(context.Background(), func(e Entry) {
		names = append(names, e.Name)
		bytes += e.Size
	})
	if err != nil || rep.ProblemCount != 1 {
		t.Fatalf("VerifyProgress: %+v, %v; want one problem", rep, err)
	}
	if len(names) != 3 || names[0] != "a" || names[1] != "b" || names[2] != "c" || bytes != 1070 {
		t.Fatalf("reported %q (%d bytes), want a, b, c (1070 bytes)", names, bytes)
	}
}
