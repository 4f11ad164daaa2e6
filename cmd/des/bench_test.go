package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// benchTreeFiles is the size of BenchmarkPackVsTar's tree (issue 18: 100,000 files of 4 KiB);
// DES_CLI_BENCH_FILES changes it.
func benchTreeFiles(b *testing.B) int {
	b.Helper()
	if s := os.Getenv("DES_CLI_BENCH_FILES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("DES_CLI_BENCH_FILES=%q: want a positive count", s)
		}
		return n
	}
	return 100000
}

// benchScratch is a directory on tmpfs when /dev/shm is one, so the benchmark measures what the
// programs do rather than a disk.
func benchScratch(b *testing.B) string {
	b.Helper()
	if dir, err := os.MkdirTemp("/dev/shm", "des-bench-"); err == nil {
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	b.Log("no /dev/shm: the tree is on the default temporary directory")
	return b.TempDir()
}

// writeBenchTree writes n files of 4 KiB as tree/dAA/sBB/fNNNN.bin, 1,000 to a folder.
func writeBenchTree(b *testing.B, root string, n int) {
	b.Helper()
	payload := make([]byte, 4096)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	for i := range n {
		dir := filepath.Join(root, fmt.Sprintf("d%02d", i/10000), fmt.Sprintf("s%02d", i/1000%10))
		if i%1000 == 0 {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d.bin", i%1000)), payload, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// timeProcess runs a whole process in dir and returns its wall time and CPU times.
func timeProcess(b *testing.B, dir string, name string, args ...string) (wall, user, sys time.Duration) {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return time.Since(start), cmd.ProcessState.UserTime(), cmd.ProcessState.SystemTime()
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkPackVsTar is issue 18's comparison: whole processes, 'tar cf out.tar tree' against
// 'des pack -q -o out.des tree', on the same tree of 100,000 files of 4 KiB on tmpfs, five runs
// each, interleaved so both see the same machine; it reports the medians and their ratio
// (des/tar below 1: des is faster).
func BenchmarkPackVsTar(b *testing.B) {
	tar, err := exec.LookPath("tar")
	if err != nil {
		b.Fatal("GNU tar is not installed: make test-deps installs it")
	}
	bin := buildDes(b, b.TempDir())
	scratch := benchScratch(b)
	writeBenchTree(b, filepath.Join(scratch, "tree"), benchTreeFiles(b))
	const runs = 5
	for b.Loop() {
		var desWall, desUser, desSys, tarWall []time.Duration
		for range runs {
			w, _, _ := timeProcess(b, scratch, tar, "cf", "out.tar", "tree")
			tarWall = append(tarWall, w)
			w, u, s := timeProcess(b, scratch, bin, "pack", "-q", "-o", "out.des", "tree")
			desWall, desUser, desSys = append(desWall, w), append(desUser, u), append(desSys, s)
			os.Remove(filepath.Join(scratch, "out.tar"))
			os.Remove(filepath.Join(scratch, "out.des"))
		}
		d, t := median(desWall), median(tarWall)
		b.ReportMetric(d.Seconds(), "des-s")
		b.ReportMetric(t.Seconds(), "tar-s")
		b.ReportMetric(d.Seconds()/t.Seconds(), "des/tar")
		b.ReportMetric(median(desUser).Seconds(), "des-user-s")
		b.ReportMetric(median(desSys).Seconds(), "des-sys-s")
	}
}
