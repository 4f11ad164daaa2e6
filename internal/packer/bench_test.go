package packer_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/packer"
	"github.com/datavision/des/test/testworld"
)

// BenchmarkPackVsGet packs DES_PACKER_BENCH_FILES (default 20,000) source objects of 4 KiB with
// `manager pack` (this binary re-executed, as in a Job) and compares its rate with simply GETting the
// same objects with the same concurrency (the packer's window) in the same run: the rate the packer
// cannot beat. It reports both rates, their ratio and the packer's peak RSS (getrusage of the child,
// what /usr/bin/time -v reports).
//
//	hack/run-tests.sh -run '^$' -bench PackVsGet -benchtime 1x ./internal/packer/
func BenchmarkPackVsGet(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("DES_PACKER_BENCH_FILES")); err == nil && v > 0 {
		n = v
	}
	const size = 4 << 10
	w := newWorld(b, worldOptions{shards: []int32{0}})
	s3 := testworld.S3Store(b)
	store := s3.NewStore(b)
	w.store = store
	w.addRows(0, []int64{size}, n, nil)
	keys := make([]string, 0, n)
	w.query(`SELECT source_key FROM objects ORDER BY id`, nil, func(r *sql.Rows) error {
		var k string
		err := r.Scan(&k)
		keys = append(keys, k)
		return err
	})
	dir := childFiles(b, w)
	mb := float64(n) * size / 1e6

	for b.Loop() {
		w.exec(`UPDATE objects SET status = 'ready', des_container = NULL, des_container_key = NULL`)
		getSeconds := getAll(b, store, w.source, keys, packer.DefaultWindow)
		packSeconds, rssKB := packChild(b, w, dir)
		if c := w.counts(); c.Packed != int64(n) {
			b.Fatalf("%d of %d rows packed", c.Packed, n)
		}
		b.ReportMetric(float64(n)/getSeconds, "get-files/s")
		b.ReportMetric(float64(n)/packSeconds, "pack-files/s")
		b.ReportMetric(mb/getSeconds, "get-MB/s")
		b.ReportMetric(mb/packSeconds, "pack-MB/s")
		b.ReportMetric(getSeconds/packSeconds, "pack/get")
		b.ReportMetric(float64(rssKB)/1024, "pack-peak-RSS-MiB")
	}
}

// getAll GETs every key with concurrency requests in flight, reading each body to the end.
func getAll(b *testing.B, store *objstore.Store, bucket string, keys []string, concurrency int) float64 {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(keys)) {
					return
				}
				body, _, err := store.Get(context.Background(), bucket, keys[i], nil)
				if err != nil {
					b.Error(err)
					return
				}
				_, err = io.Copy(io.Discard, body)
				body.Close()
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start).Seconds()
}

// packChild runs `manager pack` to the end as a separate process and returns its wall time and peak
// RSS in KiB.
func packChild(b *testing.B, w *world, dir string) (float64, int64) {
	b.Helper()
	args := []string{"--desshard=ds", "--shards=0", "--namespace=" + w.ns, "--identity=bench", "--job=bench",
		"--kubeconfig=" + filepath.Join(dir, "kubeconfig"), "--catalog-dsn-file=" + filepath.Join(dir, "dsn"),
		"--source-credentials-dir=" + filepath.Join(dir, "s3"), "--archive-credentials-dir=" + filepath.Join(dir, "s3"),
		"--zap-log-level=" + envOr("DES_PACKER_BENCH_LOG", "error")}
	encoded, _ := json.Marshal(args)
	// /usr/bin/time measures the packer's own peak RSS: getrusage of a child started by this (large)
	// test process would report this process's RSS, which the child shares until it execs.
	rssFile := filepath.Join(dir, "rss")
	cmd := exec.Command("/usr/bin/time", "-f", "%M", "-o", rssFile, os.Args[0])
	cmd.Env = append(os.Environ(), childArgsEnv+"="+string(encoded))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("manager pack: %v", err)
	}
	elapsed := time.Since(start).Seconds()
	out, err := os.ReadFile(rssFile)
	if err != nil {
		b.Fatal(err)
	}
	rss, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		b.Fatalf("peak RSS %q: %v", out, err)
	}
	return elapsed, rss
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
