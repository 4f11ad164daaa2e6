package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/datavision/des/internal/desformat"
)

// des pack stores the paths GNU tar stores for the same arguments (tar's, cleaned: tar keeps a
// leading "./" and doubled slashes as typed). Checked against the real tar.
func TestPackPathsLikeTar(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Fatal("GNU tar is not installed: make test-deps installs it")
	}
	base := writeTree(t, map[string]string{"top/dir/a.txt": "a", "top/dir/sub/b.txt": "b", "top/dir/sub/deep/c": "c", "top/f.txt": "f"})
	work := filepath.Join(base, "top", "dir", "sub") // for the ../ cases
	for _, tc := range []struct {
		name, cwd string
		args      []string
	}{
		{"directory", "top", []string{"dir"}},
		{"dot-slash directory", "top", []string{"./dir"}},
		{"trailing slash", "top", []string{"dir/"}},
		{"file", "top", []string{"dir/sub/b.txt"}},
		{"files and directories", "top", []string{"f.txt", "dir/sub", "dir/a.txt"}},
		{"dot", "top/dir", []string{"."}},
		{"parent", work, []string{".."}},
		{"up and down", work, []string{"../../dir/a.txt"}},
		{"absolute", "", []string{filepath.Join(base, "top", "dir", "sub")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cwd := tc.cwd
			if !filepath.IsAbs(cwd) {
				cwd = filepath.Join(base, cwd)
			}
			t.Chdir(cwd)
			out := t.TempDir()
			tarOut, err := exec.Command("tar", append([]string{"cf", filepath.Join(out, "x.tar")}, tc.args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("tar: %v\n%s", err, tarOut)
			}
			list, err := exec.Command("tar", "tf", filepath.Join(out, "x.tar")).Output()
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{}
			for _, l := range strings.Split(strings.TrimSpace(string(list)), "\n") {
				if !strings.HasSuffix(l, "/") { // tar also stores directories; des only files
					want[path.Clean(l)] = true
				}
			}
			mustCLI(t, 0, append([]string{"pack", "-q", "-o", filepath.Join(out, "x.des")}, tc.args...)...)
			got := strings.Split(strings.TrimSpace(mustCLI(t, 0, "ls", filepath.Join(out, "x.des"))), "\n")
			if len(got) != len(want) {
				t.Fatalf("des stores %q, tar %v", got, want)
			}
			for _, g := range got {
				if !want[g] {
					t.Fatalf("des stores %q, tar %v", got, want)
				}
			}
		})
	}
}

// The archive is the same bytes however many workers read and however far they read ahead, and
// files come out in input order: small, empty, and streamed (larger than prefetchSmallMax).
func TestPrefetchOrderAndBytes(t *testing.T) {
	files := map[string]string{}
	var want []string
	for i := range 150 {
		size := []int{0, 1, 4096, prefetchSmallMax, prefetchSmallMax + 1, 300 << 10}[i%6]
		name := fmt.Sprintf("d%d/f%03d", i%4, i)
		files[name] = strings.Repeat(string(rune('a'+i%26)), size)
	}
	src := writeTree(t, files)
	inputs, err := collectInputs([]string{src}, "-", os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range inputs {
		want = append(want, in.path)
	}
	var first []byte
	for _, tc := range []struct{ workers, window int }{{1, 1}, {2, 1}, {3, 2}, {7, 8}} {
		t.Run(fmt.Sprintf("%d workers, window %d", tc.workers, tc.window), func(t *testing.T) {
			pf := startPrefetch(inputs, tc.workers, tc.window)
			defer pf.stop()
			for i, in := range inputs {
				l := pf.next()
				if l.err != nil {
					t.Fatal(l.err)
				}
				got := l.data
				if l.stream != nil {
					if got, err = readAllClose(l.stream); err != nil {
						t.Fatal(err)
					}
				}
				rel, _ := filepath.Rel(src, in.path)
				if in.path != want[i] || string(got) != files[filepath.ToSlash(rel)] || int64(len(got)) != l.size {
					t.Fatalf("file %d: %s, %d bytes; want %s with its %d bytes", i, in.path, len(got), want[i], len(files[rel]))
				}
			}
		})
	}
	// Whole archives: identical bytes from two runs.
	for range 2 {
		var buf bytes.Buffer
		t.Chdir(src)
		if code := run([]string{"pack", "-q", "-o", "-", "."}, &buf, os.Stderr); code != 0 {
			t.Fatalf("pack: exit %d", code)
		}
		if first != nil && !bytes.Equal(first, buf.Bytes()) {
			t.Fatal("two packs of the same tree differ")
		}
		first = buf.Bytes()
	}
}

func readAllClose(f *os.File) ([]byte, error) {
	defer f.Close()
	var b bytes.Buffer
	_, err := b.ReadFrom(f)
	return b.Bytes(), err
}

// openFds counts this process's open file descriptors.
func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count open file descriptors: %v", err)
	}
	return len(ents)
}

// A file that fails to load stops the pack with its path, leaves no archive, and every file the
// workers had opened ahead is closed.
func TestPackStopsOnUnreadableFile(t *testing.T) {
	files := map[string]string{}
	for i := range 200 {
		files[fmt.Sprintf("f%03d", i)] = strings.Repeat("x", prefetchSmallMax+1) // streamed: held open ahead
	}
	src := writeTree(t, files)
	inputs, err := collectInputs([]string{src}, "-", os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	// Replaced by a folder after the walk: the open succeeds, the check after fstat fails.
	victim := filepath.Join(src, "f005")
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	before := openFds(t)
	out := filepath.Join(t.TempDir(), "x.des")
	var stdout bytes.Buffer
	_, err = writeArchiveTo(t.Context(), out, &stdout, inputs, desformat.WriterOptions{BufferSize: packWriteBuffer}, nil)
	if err == nil || !strings.Contains(err.Error(), victim) || !strings.Contains(err.Error(), "no longer a regular file") {
		t.Fatalf("pack = %v, want an error naming %s", err, victim)
	}
	if after := openFds(t); after != before {
		t.Fatalf("%d file descriptors open after the failed pack, %d before", after, before)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "*")); len(left) != 0 {
		t.Fatalf("failed pack left %v", left)
	}
}

func TestReadSmall(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("0123456789"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		size int64 // what fstat said
		err  error
	}{
		{"size as stated", 10, nil},
		{"grew since fstat", 9, errFileChanged},
		{"shrank since fstat", 11, errFileChanged},
		{"was empty", 0, errFileChanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := unix.Seek(int(f.Fd()), 0, 0); err != nil {
				t.Fatal(err)
			}
			got, err := readSmall(int(f.Fd()), tc.size, make([]byte, tc.size+1))
			if !errors.Is(err, tc.err) || (err == nil && string(got) != "0123456789") {
				t.Fatalf("readSmall = %q, %v; want %v", got, err, tc.err)
			}
		})
	}
}

// Packing a folder that holds the archive being written does not pack the archive into itself.
func TestPackSkipsItsOwnArchive(t *testing.T) {
	src := writeTree(t, map[string]string{"a": "1", "x.des": "old archive"})
	t.Chdir(src)
	code, _, errOut := cli("pack", "-q", "-o", "x.des", ".")
	if code != 0 || !strings.Contains(errOut, "x.des: skipped, it is the archive being written") {
		t.Fatalf("pack: exit %d, stderr %q", code, errOut)
	}
	if got := mustCLI(t, 0, "ls", "x.des"); got != "a\n" {
		t.Fatalf("ls = %q, want only a", got)
	}
}
