package reader_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/reader"
	"github.com/datavision/des/test/testworld"
)

const (
	benchFiles   = 1000
	benchSize    = 4 << 10
	benchWorkers = 8 // requests in flight for the one-file-per-request variants
)

// BenchmarkSidecarVsDirect reads 1000 × 4 KiB files (one op = all 1000) four ways, in the same run and
// against the same S3 server:
//
//	direct-GET:      1000 GETs of the payloads stored as standalone objects (the baseline)
//	direct-range:    1000 ranged GETs of the payloads in the container, sent with the SDK by this process
//	                 (what reading containers costs the store itself, sidecar or not)
//	sidecar-single:  1000 GET /v1/containers/{key}/files/{name} from one container (index cached)
//	sidecar-lookup:  1000 GET /v1/files/{name} (container found by day and shard; cached)
//	sidecar-catalog: 1000 GET /v1/files/{name} placed by the catalog (real PostgreSQL; no index at all)
//	sidecar-batch:   one POST /v1/batch with the 1000 names
//
// The one-file variants keep benchWorkers requests in flight. Each reports s3-requests/op and the CPU
// time of this process per file (client and reader; versitygw and PostgreSQL run apart); the parent
// logs time, CPU and request ratios against direct-GET.
func BenchmarkSidecarVsDirect(b *testing.B) {
	writer := newStore(b)
	bucket := testworld.S3Store(b).NewBucket(b)
	names := desNames(b, benchFiles, testShard, 11)
	files := make([]file, benchFiles)
	for i, n := range names {
		files[i] = file{name: n, data: randomBytes(benchSize, uint64(i))}
	}
	key := shardKey(testDay.Time(), testShard, "c00000000000000b0")
	putContainer(b, writer, bucket, key, files, 0)
	parallel(benchFiles, 16, func(i int) { putObject(b, writer, bucket, "direct/"+names[i], files[i].data) })

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	type result struct {
		perOp   time.Duration
		reqs    float64
		cpuFile time.Duration
	}
	results := map[string]result{}
	measure := func(name string, requests func() int64, warm, op func(b *testing.B)) {
		b.Run(name, func(b *testing.B) {
			warm(b)
			before, start, cpu0, n := requests(), time.Now(), processCPU(b), 0
			for b.Loop() {
				op(b)
				n++
			}
			elapsed, cpu := time.Since(start), processCPU(b)-cpu0
			reqs := float64(requests()-before) / float64(n)
			cpuFile := cpu / time.Duration(n*benchFiles)
			b.ReportMetric(reqs, "s3-requests/op")
			b.ReportMetric(float64(benchFiles)/elapsed.Seconds()*float64(n), "files/s")
			b.ReportMetric(float64(cpuFile)/float64(time.Microsecond), "cpu-µs/file")
			results[name] = result{perOp: elapsed / time.Duration(n), reqs: reqs, cpuFile: cpuFile}
		})
	}

	direct := newStore(b)
	getDirect := func(b *testing.B, i int) {
		b.Helper()
		body, _, err := direct.Get(context.Background(), bucket, "direct/"+names[i], nil)
		if err != nil {
			b.Fatal(err)
		}
		defer body.Close()
		expectLen(b, body, benchSize)
	}
	measure("direct-GET", func() int64 { return direct.Stats().Requests },
		func(b *testing.B) { b.Helper(); getDirect(b, 0) },
		func(b *testing.B) { b.Helper(); parallel(benchFiles, benchWorkers, func(i int) { getDirect(b, i) }) })
	getRange := func(b *testing.B, i int) {
		b.Helper()
		rng := &objstore.Range{Off: int64(desformat.HeaderSize + i*benchSize), Len: benchSize}
		body, _, err := direct.Get(context.Background(), bucket, key, rng)
		if err != nil {
			b.Fatal(err)
		}
		defer body.Close()
		expectLen(b, body, benchSize)
	}
	measure("direct-range", func() int64 { return direct.Stats().Requests },
		func(b *testing.B) { b.Helper(); getRange(b, 0) },
		func(b *testing.B) { b.Helper(); parallel(benchFiles, benchWorkers, func(i int) { getRange(b, i) }) })

	w := newWorld(b, bucket, reader.Config{})
	get := func(b *testing.B, u string) {
		b.Helper()
		resp, err := client.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: %d", u, resp.StatusCode)
		}
		expectLen(b, resp.Body, benchSize)
	}
	warmContainer := func(b *testing.B) { b.Helper(); get(b, w.fileURL(key, names[0])) }
	measure("sidecar-single", w.requests, warmContainer,
		func(b *testing.B) {
			b.Helper()
			parallel(benchFiles, benchWorkers, func(i int) { get(b, w.fileURL(key, names[i])) })
		})
	measure("sidecar-lookup", w.requests,
		func(b *testing.B) { b.Helper(); get(b, w.http.URL+"/v1/files/"+names[0]) },
		func(b *testing.B) {
			b.Helper()
			parallel(benchFiles, benchWorkers, func(i int) { get(b, w.http.URL+"/v1/files/"+names[i]) })
		})
	// The comparison of access paths is made on PostgreSQL, the default catalog database.
	cw := newCatalogWorld(b, catalog.Postgres)
	cw.pack(writer, testDay.Time(), "c00000000000000f1", files)
	wc := newWorld(b, cw.bucket, reader.Config{Catalog: cw.readOnly})
	measure("sidecar-catalog", wc.requests,
		func(b *testing.B) { b.Helper(); get(b, wc.http.URL+"/v1/files/"+names[0]) },
		func(b *testing.B) {
			b.Helper()
			parallel(benchFiles, benchWorkers, func(i int) { get(b, wc.http.URL+"/v1/files/"+names[i]) })
		})
	measure("sidecar-batch", w.requests, warmContainer, func(b *testing.B) {
		b.Helper()
		resp, err := client.Post(w.http.URL+"/v1/batch", "application/json", batchBody(key, names))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		if parts := readParts(b, resp); len(parts) != benchFiles {
			b.Fatalf("%d parts", len(parts))
		}
	})

	base, ok := results["direct-GET"]
	if !ok {
		return
	}
	for _, name := range []string{"direct-range", "sidecar-single", "sidecar-lookup", "sidecar-catalog", "sidecar-batch"} {
		if r, ok := results[name]; ok {
			b.Logf("%-15s time %8.2fms = %.3f × direct (%.2fms); S3 requests %6.0f = %.4f × direct (%.0f); CPU %5.0fµs/file = %.2f × direct (%.0fµs)",
				name, ms(r.perOp), float64(r.perOp)/float64(base.perOp), ms(base.perOp), r.reqs, r.reqs/base.reqs, base.reqs,
				float64(r.cpuFile)/1e3, float64(r.cpuFile)/float64(base.cpuFile), float64(base.cpuFile)/1e3)
		}
	}
}

// processCPU is the user plus system CPU time this process has used.
func processCPU(b testing.TB) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func expectLen(b testing.TB, r io.Reader, want int64) {
	b.Helper()
	n, err := io.Copy(io.Discard, r)
	if err != nil || n != want {
		b.Fatalf("read %d bytes (%v), want %d", n, err, want)
	}
}

// parallel runs fn(0..n-1) on workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// BenchmarkAuthOverhead measures what the read service's authentication costs once a token's decision
// is cached, against the same reader without authentication, in the same run (handlers called
// directly, so that neither TLS nor the network hide it):
//
//	reject: GET /v1/files/ of an invalid name, answered 400 without S3 (the handler's cheapest work)
//	file:   GET of one 4 KiB file of a cached container (one S3 GET)
//
// One op is authOverheadBurst requests without authentication then as many with a cached token, timed
// separately, so that load from other processes affects both alike; it reports ns per request of each
// and their ratio (auth/no-auth).
func BenchmarkAuthOverhead(b *testing.B) {
	const authOverheadBurst = 32
	sw := newServiceWorld(b, reader.AuthConfig{CacheTTL: time.Hour}, true)
	plain, err := reader.New(reader.Config{Store: newStore(b), Bucket: sw.f.bucket, Prefixes: []string{testPrefix}, ShardBits: testShardBits})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(plain.Close)
	bearer := "Bearer " + sw.token(b, saAllowed, nil)
	routes := []struct {
		name, path string
		status     int
	}{
		{"reject", "/v1/files/" + "a%5Cb", 400},
		{"file", "/v1/containers/" + escapeKey(sw.f.keyA) + "/files/" + sw.f.desA[0], 200},
	}
	for _, rt := range routes {
		b.Run(rt.name, func(b *testing.B) {
			serve := func(h http.Handler, auth string) {
				req := httptest.NewRequest("GET", rt.path, http.NoBody)
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != rt.status {
					b.Fatalf("%s: status %d: %s", rt.path, rec.Code, rec.Body.Bytes())
				}
			}
			timed := func(h http.Handler, auth string) time.Duration {
				start := time.Now()
				for range authOverheadBurst {
					serve(h, auth)
				}
				return time.Since(start)
			}
			plainH, authH := plain.Handler(), sw.srv.Handler()
			serve(plainH, "")    // opens the container
			serve(authH, bearer) // fills the decision cache
			var base, auth time.Duration
			n := 0
			for b.Loop() {
				base += timed(plainH, "")
				auth += timed(authH, bearer)
				n += authOverheadBurst
			}
			b.ReportMetric(float64(base.Nanoseconds())/float64(n), "ns/req-no-auth")
			b.ReportMetric(float64(auth.Nanoseconds())/float64(n), "ns/req-auth")
			b.ReportMetric(float64(auth)/float64(base), "auth/no-auth")
		})
	}
}
