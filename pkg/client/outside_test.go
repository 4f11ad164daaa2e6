package client_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/datavision/des/test/testworld"
)

// TestOutsideModule builds test/outside, a separate Go module that imports only pkg/des and
// pkg/client, and uses it as an application would: it writes an archive, the test puts the archive
// where the packer would (its key in the real S3), and the program reads files back through a real
// reader sidecar, by container and by DES name, one by one and as a batch.
func TestOutsideModule(t *testing.T) {
	bin := buildOutside(t)
	dir := t.TempDir()
	named := desNames(t, 1)[0]
	files := []file{{"hello.txt", []byte("hello from outside\n")}, {"empty", []byte{}}, {"ü ✓.bin", randomBytes(70<<10, 7)}, {named, randomBytes(5000, 8)}}
	args := []string{"write", filepath.Join(dir, "a.des")}
	var wantList strings.Builder
	for i, f := range files {
		path := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(path, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, f.name+"="+path)
		fmt.Fprintf(&wantList, "%s %d %08x\n", f.name, len(f.data), crc32c(f.data))
	}
	if out := runOutside(t, bin, args...); string(out) != wantList.String() {
		t.Fatalf("write printed %q, want %q", out, wantList.String())
	}
	archive, err := os.ReadFile(filepath.Join(dir, "a.des"))
	if err != nil {
		t.Fatal(err)
	}
	s, bucket := newStore(t), testworld.S3Store(t).NewBucket(t)
	key := containerKey(shardOf(t, named), "c00000000000000f1")
	putObject(t, s, bucket, key, archive)
	url := startReader(t, bucket)

	for _, f := range files {
		if got := runOutside(t, bin, "read", url, key, f.name); !bytes.Equal(got, f.data) {
			t.Errorf("read %q: %d bytes differ from the %d written", f.name, len(got), len(f.data))
		}
	}
	if got := runOutside(t, bin, "read", url, "-", named); !bytes.Equal(got, files[3].data) {
		t.Errorf("read DES name %q: %d bytes differ from the %d written", named, len(got), len(files[3].data))
	}
	var wantBatch []string
	for _, f := range files {
		wantBatch = append(wantBatch, fmt.Sprintf("%s %d %x", f.name, len(f.data), sha256.Sum256(f.data)))
	}
	batchArgs := []string{"batch", url, key}
	for i := len(files) - 1; i >= 0; i-- {
		batchArgs = append(batchArgs, files[i].name)
	}
	// Parts come in the sidecar's order (small files, empty ones, streamed ones), not request order.
	got := strings.Split(strings.TrimSuffix(string(runOutside(t, bin, batchArgs...)), "\n"), "\n")
	slices.Sort(got)
	slices.Sort(wantBatch)
	if !slices.Equal(got, wantBatch) {
		t.Errorf("batch printed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantBatch, "\n"))
	}
}

// buildOutside compiles test/outside as its own module (GOWORK=off: no workspace may make the
// internal packages reachable another way).
func buildOutside(t *testing.T) string {
	t.Helper()
	root, err := testworld.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "desoutside")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-mod=readonly", "-o", bin, ".")
	cmd.Dir = filepath.Join(root, "test", "outside")
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build in test/outside: %v\n%s", err, out)
	}
	return bin
}

func runOutside(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("desoutside %s: %v\n%s", args[0], err, stderr.String())
	}
	return out
}
