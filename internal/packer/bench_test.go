package packer_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
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

	"golang.org/x/sys/unix"

	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/packer"
	"github.com/datavision/des/test/testworld"
)

// BenchmarkPackVsGet packs DES_PACKER_BENCH_FILES (default 20,000) source objects of 4 KiB with
// `manager pack` (this binary re-executed, as in a Job) and compares its rate with simply GETting the
// same objects with the same concurrency (the packer's window) in the same run: the rate the packer
// cannot beat. It reports both rates, their ratio and the packer's peak RSS (getrusage of the child,
// what /usr/bin/time -v reports), and the CPU per file of the S3 server and of the client (this
// process for the GETs, the packer for the packing): on a machine where they share the cores, the
// rates are bound by the sum, and the server's share says how far the packer could get.
//
// DES_PACKER_BENCH_SPLIT=1 gives the S3 server a CPU of its own, as a real store has: versitygw is
// pinned to the first CPU, this process and the packer (which inherits it) to the others.
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
	if os.Getenv("DES_PACKER_BENCH_SPLIT") != "" {
		splitCPUs(b, s3.Pid())
	}
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
		storeCPU := cpuMeter(b, s3)
		clientCPU := selfCPU(b)
		getSeconds := getAll(b, store, w.source, keys, packer.DefaultWindow)
		getStore, getClient := storeCPU(), selfCPU(b)-clientCPU
		packSeconds, child := packChild(b, w, dir)
		packStore := storeCPU() - getStore
		if c := w.counts(); c.Packed != int64(n) {
			b.Fatalf("%d of %d rows packed", c.Packed, n)
		}
		b.ReportMetric(float64(n)/getSeconds, "get-files/s")
		b.ReportMetric(float64(n)/packSeconds, "pack-files/s")
		b.ReportMetric(mb/getSeconds, "get-MB/s")
		b.ReportMetric(mb/packSeconds, "pack-MB/s")
		b.ReportMetric(getSeconds/packSeconds, "pack/get")
		b.ReportMetric(float64(child.rssKB)/1024, "pack-peak-RSS-MiB")
		perFile := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
		b.ReportMetric(perFile(getStore), "get-store-CPU-µs/file")
		b.ReportMetric(perFile(packStore), "pack-store-CPU-µs/file")
		b.ReportMetric(perFile(getClient), "get-client-CPU-µs/file")
		b.ReportMetric(perFile(child.cpu), "pack-client-CPU-µs/file")
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

// childUsage is what /usr/bin/time measured of the packer.
type childUsage struct {
	rssKB int64         // peak RSS
	cpu   time.Duration // user and system
}

// packChild runs `manager pack` to the end as a separate process and returns its wall time and usage.
func packChild(b *testing.B, w *world, dir string) (float64, childUsage) {
	b.Helper()
	args := []string{"--desshard=ds", "--shards=0", "--namespace=" + w.ns, "--identity=bench", "--job=bench",
		"--kubeconfig=" + filepath.Join(dir, "kubeconfig"), "--catalog-dsn-file=" + filepath.Join(dir, "dsn"),
		"--source-credentials-dir=" + filepath.Join(dir, "s3"), "--archive-credentials-dir=" + filepath.Join(dir, "s3"),
		"--zap-log-level=" + envOr("DES_PACKER_BENCH_LOG", "error")}
	encoded, _ := json.Marshal(args)
	// /usr/bin/time measures the packer's own peak RSS: getrusage of a child started by this (large)
	// test process would report this process's RSS, which the child shares until it execs.
	rssFile := filepath.Join(dir, "rss")
	cmd := exec.Command("/usr/bin/time", "-f", "%M %U %S", "-o", rssFile, os.Args[0])
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
	var u childUsage
	var user, sys float64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "%d %f %f", &u.rssKB, &user, &sys); err != nil {
		b.Fatalf("/usr/bin/time's report %q: %v", out, err)
	}
	u.cpu = time.Duration((user + sys) * float64(time.Second))
	return elapsed, u
}

// cpuMeter returns a function that reports the S3 server's CPU since the call.
func cpuMeter(b *testing.B, s3 *testworld.S3Server) func() time.Duration {
	b.Helper()
	read := func() time.Duration {
		d, err := s3.CPUTime()
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	start := read()
	return func() time.Duration { return read() - start }
}

// splitCPUs pins the S3 server (pid) to the first CPU and this process to the others, for the rest
// of the process's life: the benchmark is the last thing its test binary runs.
func splitCPUs(b *testing.B, pid int) {
	b.Helper()
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil || all.Count() < 2 {
		b.Fatalf("DES_PACKER_BENCH_SPLIT needs two CPUs (%d, %v)", all.Count(), err)
	}
	var store, rest unix.CPUSet
	first := -1
	for cpu := range 1024 {
		if !all.IsSet(cpu) {
			continue
		}
		if first < 0 {
			first = cpu
			store.Set(cpu)
		} else {
			rest.Set(cpu)
		}
	}
	// sched_setaffinity sets one thread: set every thread of both processes (threads started later
	// inherit it from theirs, and so does the packer child).
	pin(b, pid, &store)
	pin(b, os.Getpid(), &rest)
	b.Logf("S3 server on CPU %d, the client and the packer on %d other CPUs", first, rest.Count())
}

// pin sets the CPU affinity of every thread of process pid.
func pin(b *testing.B, pid int, set *unix.CPUSet) {
	b.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		if err := unix.SchedSetaffinity(tid, set); err != nil {
			b.Fatalf("pin thread %d of process %d: %v", tid, pid, err)
		}
	}
}

// selfCPU is this process's CPU so far (user and system).
func selfCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
