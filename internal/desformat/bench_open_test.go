package desformat

import (
	"bytes"
	"runtime"
	"testing"
)

// BenchmarkOpenMillion opens an in-memory 1,000,000-entry archive (DES-like names, 16-byte payloads)
// and looks one name up: time and allocations per open, plus the heap the open Reader keeps
// (heap-held-MiB, after a GC, with the Reader alive) and the bytes allocated by one open
// (alloc-MiB/open, a bound on the transient peak).
//
//	go test ./internal/desformat -run '^$' -bench OpenMillion -benchtime 5x
func BenchmarkOpenMillion(b *testing.B) {
	names := benchNames(1_000_000)
	var buf bytes.Buffer
	if err := packDES(&buf, names, pattern(16, 1)); err != nil {
		b.Fatal(err)
	}
	archive := buf.Bytes()
	open := func() *Reader {
		r, err := NewReader(bytes.NewReader(archive), int64(len(archive)), ReaderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Stat(names[len(names)/2]); err != nil {
			b.Fatal(err)
		}
		return r
	}
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	r := open()
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	runtime.KeepAlive(r)
	b.ReportAllocs()
	for b.Loop() {
		open()
	}
	// After the loop: b.Loop's first call resets user metrics.
	b.ReportMetric(float64(int64(ms1.HeapInuse)-int64(ms0.HeapInuse))/(1<<20), "heap-held-MiB")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/(1<<20), "alloc-MiB/open")
}
