package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/datavision/des/test/v1testdata"
)

// cli runs the command in-process.
func cli(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func mustCLI(t *testing.T, want int, args ...string) string {
	t.Helper()
	code, out, errOut := cli(args...)
	if code != want {
		t.Fatalf("des %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out
}

func testdataDir(t *testing.T) string {
	t.Helper()
	return v1testdata.Dir(t)
}

type manifest = v1testdata.Manifest

func TestCLIOnV1Archives(t *testing.T) {
	dir := testdataDir(t)
	paths, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	n := 0
	for _, p := range paths {
		b, _ := os.ReadFile(p)
		var m manifest
		if err := json.Unmarshal(b, &m); err != nil || m.Archive == "" {
			continue
		}
		n++
		t.Run(m.Archive, func(t *testing.T) {
			archive := filepath.Join(dir, m.Archive)
			var extArgs []string
			if m.External != nil {
				extArgs = []string{"--external-root", filepath.Join(dir, m.External.Dir)}
			}
			var names []string
			for _, f := range m.Files {
				names = append(names, f.Name)
			}
			out := mustCLI(t, 0, "ls", archive)
			if got := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(names) > 0 && !reflect.DeepEqual(got, names) {
				t.Fatalf("ls = %q, want %q", got, names)
			}
			mustCLI(t, 0, "ls", archive, "-l") // flags after the archive work too
			for _, f := range m.Files {
				data := mustCLI(t, 0, append(append([]string{"cat"}, extArgs...), archive, f.Name)...)
				if h := sha256.Sum256([]byte(data)); hex.EncodeToString(h[:]) != f.SHA256 {
					t.Errorf("cat %s: wrong sha256", f.Name)
				}
				meta := mustCLI(t, 0, "meta", archive, f.Name)
				var got, want any
				errGot, errWant := json.Unmarshal([]byte(meta), &got), json.Unmarshal(f.Meta, &want)
				if errGot != nil || errWant != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("meta %s = %s, want %s", f.Name, meta, f.Meta)
				}
			}
			out = mustCLI(t, 0, append(append([]string{"verify"}, extArgs...), archive)...)
			if !strings.Contains(out, ": OK:") || strings.Contains(out, "not checked") {
				t.Errorf("verify output: %s", out)
			}
			mustCLI(t, 0, "stat", archive)
		})
	}
	if n < 6 {
		t.Fatalf("found only %d reference archives", n)
	}
}

func TestCLIExternalNeedsRoot(t *testing.T) {
	archive := filepath.Join(testdataDir(t), "external-big.des")
	code, out, errOut := cli("cat", archive, "big-1")
	if code != exitError || out != "" || !strings.Contains(errOut, "--external-root") {
		t.Fatalf("cat external without root: %d %q %q", code, out, errOut)
	}
	out = mustCLI(t, 0, "verify", archive)
	if !strings.Contains(out, "2 external payloads not checked") {
		t.Fatalf("verify: %s", out)
	}
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCLIPackRoundTrip(t *testing.T) {
	big := strings.Repeat("B", 70000)
	src := writeTree(t, map[string]string{
		"a.txt":           "hello",
		"sub/b.bin":       "",
		"sub/deep/ż.txt":  "unicode",
		"sub/deep/big":    big,
		"other/single.md": "# x",
		"other/odd:name":  "colon",
	})
	out := t.TempDir()
	archive := filepath.Join(out, "x.des")
	ext := filepath.Join(out, "bucket")
	t.Chdir(src) // paths are stored as given: relative ones keep the test's names short
	mustCLI(t, 0, "pack", "-o", archive, "--external-threshold", "64K", "--external-root", ext, "--external-prefix", "2025/shard_01",
		"a.txt", "sub", "./other/single.md", "other/odd:name")
	if got := mustCLI(t, 0, "ls", archive); got != "a.txt\nsub/b.bin\nsub/deep/big\nsub/deep/ż.txt\nother/single.md\nother/odd:name\n" {
		t.Fatalf("ls:\n%s", got)
	}
	if got := mustCLI(t, 0, "ls", "-raw", archive); got != "a.txt\nsub%2Fb.bin\nsub%2Fdeep%2Fbig\nsub%2Fdeep%2Fż.txt\nother%2Fsingle.md\nother%2Fodd%3Aname\n" {
		t.Fatalf("ls -raw:\n%s", got)
	}
	long := mustCLI(t, 0, "ls", "-l", archive)
	if !strings.Contains(long, "ext") || strings.Contains(long, " -         ") || !strings.Contains(long, " sub/deep/big\n") {
		t.Fatalf("ls -l should show ext, checksums and paths:\n%s", long)
	}
	if got := mustCLI(t, 0, "cat", "--external-root", ext, archive, "sub/deep/big"); got != big {
		t.Fatal("cat big: wrong bytes")
	}
	// A v1 reader looks for PREFIX/_bigFiles/NAME: the escaped name keeps that one level deep.
	if _, err := os.Stat(filepath.Join(ext, "2025", "shard_01", "_bigFiles", "sub%2Fdeep%2Fbig")); err != nil {
		t.Fatalf("external payload not at PREFIX/_bigFiles/NAME: %v", err)
	}
	for _, name := range []string{"sub/deep/ż.txt", "sub%2Fdeep%2Fż.txt"} { // the path or the stored name
		if got := mustCLI(t, 0, "cat", archive, name); got != "unicode" {
			t.Fatalf("cat %s: %q", name, got)
		}
	}
	if got := mustCLI(t, 0, "cat", archive, "other/odd:name"); got != "colon" {
		t.Fatalf("cat other/odd:name: %q", got)
	}
	if got := mustCLI(t, 0, "meta", archive, "a.txt"); !strings.HasPrefix(got, `{"size":5,"crc32c":"`) {
		t.Fatalf("meta: %s", got)
	}
	if got := mustCLI(t, 0, "meta", archive, "sub/b.bin"); !strings.HasPrefix(got, `{"size":0,"crc32c":"`) {
		t.Fatalf("meta of a path: %s", got)
	}
	out2 := mustCLI(t, 0, "verify", "--external-root", ext, archive)
	if !strings.Contains(out2, "OK: 6 files, 6 checksums verified") {
		t.Fatalf("verify: %s", out2)
	}
	st := mustCLI(t, 0, "stat", archive)
	if !strings.Contains(st, "crc32c in meta") || !strings.Contains(st, "(verified)") {
		t.Fatalf("stat: %s", st)
	}
	// Stdout output is the same archive format.
	code, data, _ := cli("pack", "-q", "-o", "-", "a.txt")
	if code != 0 || !strings.HasPrefix(data, "DESHEAD1") || !strings.Contains(data, "DESFOOT1") {
		t.Fatalf("pack -o -: %d %q", code, data)
	}
}

func TestCLIPackRejects(t *testing.T) {
	src := writeTree(t, map[string]string{"x/same": "1", "y/same": "2", "ok": "4"})
	out := filepath.Join(t.TempDir(), "a.des")
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"same file twice", []string{"pack", "-o", out, filepath.Join(src, "x", "same"), filepath.Join(src, "x", ".", "same")}, 1, "duplicate name"},
		{"directory and a file in it", []string{"pack", "-o", out, filepath.Join(src, "x"), filepath.Join(src, "x", "same")}, 1, "duplicate name"},
		{"directory twice", []string{"pack", "-o", out, filepath.Join(src, "y"), filepath.Join(src, "y") + "/"}, 1, "duplicate name"},
		{"missing input", []string{"pack", "-o", out, filepath.Join(src, "nope")}, 1, "no such file"},
		{"no -o", []string{"pack", filepath.Join(src, "ok")}, 2, "-o ARCHIVE is required"},
		{"no inputs", []string{"pack", "-o", out}, 2, "wrong number of arguments"},
		{"threshold without root", []string{"pack", "-o", out, "--external-threshold", "1", filepath.Join(src, "ok")}, 2, "needs --external-root"},
		{"bad size", []string{"pack", "-o", out, "--external-threshold", "lots", filepath.Join(src, "ok")}, 2, "invalid size"},
		{"unknown flag", []string{"pack", "-z", "-o", out, filepath.Join(src, "ok")}, 2, "not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := cli(tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.msg) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tc.code, errOut, tc.msg)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatal("a failed pack left an archive behind")
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*tmp*")); len(left) > 0 {
				t.Fatalf("temporary files left: %v", left)
			}
		})
	}
	// Two files of the same base name in different folders are two paths: no longer a conflict.
	mustCLI(t, 0, "pack", "-q", "-o", out, filepath.Join(src, "x"), filepath.Join(src, "y"))
}

func TestCLICorruptArchive(t *testing.T) {
	src := writeTree(t, map[string]string{"a": strings.Repeat("a", 1000), "b": "bbb"})
	archive := filepath.Join(t.TempDir(), "c.des")
	t.Chdir(src)
	mustCLI(t, 0, "pack", "-o", archive, "a", "b")
	b, _ := os.ReadFile(archive)
	b[100] ^= 1 // inside a's payload
	if err := os.WriteFile(archive, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli("verify", archive)
	if code != exitError || !strings.Contains(out, "FAILED (1 problems)") || !strings.Contains(errOut, "checksum mismatch") {
		t.Fatalf("verify corrupt: %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = cli("cat", archive, "a")
	if code != exitError || !strings.Contains(errOut, "crc32c") {
		t.Fatalf("cat corrupt: %d %s", code, errOut)
	}
	if got := mustCLI(t, 0, "cat", archive, "b"); got != "bbb" {
		t.Fatalf("intact file: %q", got)
	}
	b[len(b)-40] ^= 1 // footer field: index checksum catches it
	if err := os.WriteFile(archive, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"ls", "verify", "stat"} {
		code, _, errOut := cli(verb, archive)
		if code != exitError || !strings.Contains(errOut, "corrupt") {
			t.Fatalf("%s on corrupt footer: %d %s", verb, code, errOut)
		}
	}
	if err := os.WriteFile(archive, []byte("definitely not an archive, but long enough to hold a footer of seventy-two bytes......"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := cli("ls", archive); code != exitError || !strings.Contains(errOut, "not a DES archive") {
		t.Fatalf("ls on junk: %d %s", code, errOut)
	}
}

func TestCLIUsage(t *testing.T) {
	for verb := range verbs {
		out := mustCLI(t, 0, verb, "--help")
		if !strings.HasPrefix(out, "usage: des "+verb) {
			t.Errorf("%s --help: %q", verb, out)
		}
		mustCLI(t, 2, verb, "--definitely-not-a-flag")
	}
	mustCLI(t, 0, "--help")
	mustCLI(t, 2)
	mustCLI(t, 2, "frobnicate")
	mustCLI(t, 2, "cat", "only-one-arg")
	mustCLI(t, 2, "ls", "a", "b")
	code, _, errOut := cli("ls", filepath.Join(t.TempDir(), "missing.des"))
	if code != exitError || !strings.Contains(errOut, "no such file") {
		t.Fatalf("missing archive: %d %s", code, errOut)
	}
	code, _, errOut = cli("cat", filepath.Join(testdataDir(t), "one-small.des"), "nope")
	if code != exitError || !strings.Contains(errOut, "des ls") {
		t.Fatalf("missing name: %d %s", code, errOut)
	}
	if code, _, _ := cli("ls", "s3://bucket/key.des"); code != exitError {
		t.Fatal("s3:// accepted before it is implemented")
	}
	// "--" ends flags: a name starting with '-' is positional.
	mustCLI(t, 1, "cat", filepath.Join(testdataDir(t), "one-small.des"), "--", "-l")
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "65536": 65536, "64K": 65536, "64KiB": 65536, "1m": 1 << 20, "2GiB": 2 << 30, "10B": 10} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "K", "1T", "1.5M", "99999999999G"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}
