package reader_test

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/naming"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/reader"
	"github.com/datavision/des/test/testworld"
)

// BenchmarkMillionEntryContainer serves a 1,000,000-entry container (Snowflake DES names, 16-byte
// payloads) from the real S3 server with the default configuration, and reports:
//
//	open-s             time of the first read (open included)
//	heap-held-MiB      Go heap in use after the first read and a GC, minus before (what stays)
//	rss-peak-MiB       peak RSS during the first read (VmHWM, reset just before) minus RSS before it
//	rss-held-MiB       VmRSS after the first read and a GC, minus before
//	charged-MiB        bytes the index cache charges (0 when the container is not kept)
//	s3-requests/read   S3 requests per read after the first (b.Loop: one read per op)
//	reopens/read       container opens per read after the first
//
// Run it alone, once:
//
//	hack/run-tests.sh -run '^$' -bench MillionEntry -benchtime 3x -timeout 30m ./internal/reader/
//
// The archive is built and uploaded before measuring and dropped, so its 140 MB do not count.
func BenchmarkMillionEntryContainer(b *testing.B) {
	const n = 1_000_000
	bucket := testworld.S3Store(b).NewBucket(b)
	key := shardKey(testDay.Time(), testShard, "cmillion")
	names := millionNames(b, n)
	putMillion(b, newStore(b), bucket, key, names)

	w := newWorld(b, bucket, reader.Config{})
	get := func(i int) {
		b.Helper()
		resp, body := do(b, "GET", w.fileURL(key, names[i]), nil, nil)
		mustStatus(b, resp, body, 200)
		if len(body) != 16 {
			b.Fatalf("file %d: %d bytes", i, len(body))
		}
	}
	heap0, rss0 := settle()
	resetPeakRSS(b)
	start := time.Now()
	get(n / 3)
	openTime := time.Since(start)
	peak := procStatus(b, "VmHWM")
	heap1, rss1 := settle()
	st := w.srv.CacheStats()

	before, opens, reads := w.requests(), st.Opens, 0
	for b.Loop() {
		get((reads*7919 + 1) % n)
		reads++
	}
	after := w.srv.CacheStats()
	b.ReportMetric(openTime.Seconds(), "open-s")
	b.ReportMetric(mib(int64(heap1)-int64(heap0)), "heap-held-MiB")
	b.ReportMetric(mib(peak-rss0), "rss-peak-MiB")
	b.ReportMetric(mib(rss1-rss0), "rss-held-MiB")
	b.ReportMetric(mib(st.Bytes), "charged-MiB")
	b.ReportMetric(float64(w.requests()-before)/float64(reads), "s3-requests/read")
	b.ReportMetric(float64(after.Opens-opens)/float64(reads), "reopens/read")
	b.Logf("RSS before the first read %.1f MiB, peak %.1f MiB, after %.1f MiB", mib(rss0), mib(peak), mib(rss1))
	b.Logf("open %v, cache after first read %+v, after %d more reads %+v", openTime, st, reads, after)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// millionNames returns n distinct DES names of testDay (any shard: the container route needs none).
func millionNames(b *testing.B, n int) []string {
	b.Helper()
	at := time.Date(2026, 2, 24, 1, 0, 0, 0, time.UTC)
	g, err := naming.NewGenerator(naming.Config{Prefix: "DES", Node: 3, Now: func() time.Time { at = at.Add(time.Millisecond / 64); return at }})
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, n)
	for i := range names {
		name, err := g.NewForDay(testDay)
		if err != nil {
			b.Fatal(err)
		}
		names[i] = name + ".pdf"
	}
	return names
}

// putMillion writes the container in memory and uploads it; the bytes are garbage afterwards.
func putMillion(b *testing.B, s *objstore.Store, bucket, key string, names []string) {
	b.Helper()
	var buf bytes.Buffer
	w, err := desformat.NewWriter(&buf, desformat.WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 16)
	for i, name := range names {
		payload[0], payload[1], payload[2] = byte(i), byte(i>>8), byte(i>>16)
		if err := w.Add(context.Background(), desformat.FileHeader{Name: name, Size: 16}, bytes.NewReader(payload)); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("container: %d entries, %d bytes", len(names), buf.Len())
	putObject(b, s, bucket, key, buf.Bytes())
}

// settle collects garbage, returns it to the OS, and reports HeapInuse and VmRSS.
func settle() (heap uint64, rss int64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, procStatusOr("VmRSS")
}

// resetPeakRSS resets VmHWM to the current RSS (Linux: "5" to clear_refs).
func resetPeakRSS(b *testing.B) {
	b.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset peak RSS (%v): rss-peak-MiB is the process's peak", err)
	}
}

func procStatus(b *testing.B, field string) int64 {
	b.Helper()
	v := procStatusOr(field)
	if v < 0 {
		b.Fatalf("no %s in /proc/self/status", field)
	}
	return v
}

// procStatusOr returns a /proc/self/status field in bytes, or -1.
func procStatusOr(field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}
