package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/test/testworld"
)

// The s3:// and des get tests run against the test world's versitygw, des name new --service against its
// kube-apiserver (the name service holds its node id with a Lease); the other tests ignore both.
func TestMain(m *testing.M) { testworld.Main(m, testworld.S3|testworld.Kube) }

// s3Env points the CLI at versitygw through the environment, as a script would.
func s3Env(t *testing.T) *testworld.S3Server {
	t.Helper()
	w := testworld.S3Store(t)
	t.Setenv("DES_S3_ENDPOINT", w.Endpoint)
	t.Setenv("AWS_REGION", w.Region)
	t.Setenv("DES_S3_PATH_STYLE", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", w.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", w.SecretKey)
	return w
}

func testStore(t *testing.T, w *testworld.S3Server) *objstore.Store {
	t.Helper()
	return w.NewStore(t)
}

func randomPayload(n int, seed uint64) string { return string(testworld.RandomBytes(n, seed)) }

// TestCLIS3 packs an archive whose big payload goes to the bucket, uploads it, and reads it back with
// every read verb through s3:// URLs.
func TestCLIS3(t *testing.T) {
	w := s3Env(t)
	bucket := w.NewBucket(t)
	files := map[string]string{
		"small.txt":     "hello from s3\n",
		"empty":         "",
		"ünïcode ✓.txt": "unicode\n",
		"large.bin":     randomPayload(3<<20+123, 1), // internal, several read-ahead windows
		"big.bin":       randomPayload(5<<20, 2),     // external
	}
	local := filepath.Join(t.TempDir(), "a.des")
	t.Chdir(writeTree(t, files)) // "." stores the files under their own names
	mustCLI(t, 0, "pack", "-q", "-o", local, "--external-threshold", "4M", "--external-root", "s3://"+bucket,
		"--external-prefix", "archive/2026-02-24/0001/c1", ".")
	archive, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	key := "archive/2026-02-24/0001/c1.des"
	if _, err := testStore(t, w).Put(context.Background(), bucket, key, archive, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	url := "s3://" + bucket + "/" + key

	if ls := strings.Split(strings.TrimSuffix(mustCLI(t, 0, "ls", url), "\n"), "\n"); len(ls) != len(files) {
		t.Fatalf("ls: %q", ls)
	}
	long := mustCLI(t, 0, "ls", "-l", url)
	if !strings.Contains(long, "ext") || !strings.Contains(long, "ünïcode ✓.txt") {
		t.Fatalf("ls -l: %s", long)
	}
	for name, want := range files {
		if got := mustCLI(t, 0, "cat", url, name); got != want {
			t.Errorf("cat %q: %d bytes, want %d", name, len(got), len(want))
		}
	}
	if got := mustCLI(t, 0, "cat", "--external-root", "s3://"+bucket, url, "big.bin"); got != files["big.bin"] {
		t.Error("cat with an explicit s3:// external root")
	}
	if meta := mustCLI(t, 0, "meta", url, "big.bin"); !strings.Contains(meta, `"external_key":"archive/2026-02-24/0001/c1/_bigFiles/big.bin"`) {
		t.Errorf("meta: %s", meta)
	}
	if out := mustCLI(t, 0, "verify", url); !strings.Contains(out, "OK") || !strings.Contains(out, "1 external") {
		t.Errorf("verify: %s", out)
	}
	if out := mustCLI(t, 0, "stat", url); !strings.Contains(out, "files:") {
		t.Errorf("stat: %s", out)
	}

	for _, tc := range []struct {
		desc string
		args []string
		msg  string
	}{
		{"missing key", []string{"ls", "s3://" + bucket + "/nope.des"}, "not found"},
		{"missing bucket", []string{"ls", "s3://no-such-bucket-x/a.des"}, "bucket not found"},
		{"no key", []string{"ls", "s3://" + bucket}, "no object key"},
		{"missing name", []string{"cat", url, "nope"}, "des ls"},
		{"external root with a key", []string{"cat", "--external-root", "s3://" + bucket + "/x", url, "big.bin"}, "whole bucket"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			code, _, errOut := cli(tc.args...)
			if code != exitError || !strings.Contains(errOut, tc.msg) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, errOut, tc.msg)
			}
		})
	}
}

// TestCLIS3Flags configures S3 with flags only, credentials from a Secret-like directory.
func TestCLIS3Flags(t *testing.T) {
	w := testworld.S3Store(t)
	for _, k := range []string{"DES_S3_ENDPOINT", "AWS_REGION", "DES_S3_PATH_STYLE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		t.Setenv(k, "")
	}
	bucket := w.NewBucket(t)
	var buf bytes.Buffer
	t.Chdir(writeTree(t, map[string]string{"f": "flags"}))
	code := run([]string{"pack", "-q", "-o", "-", "f"}, &buf, os.Stderr)
	if code != 0 {
		t.Fatal("pack")
	}
	if _, err := testStore(t, w).Put(context.Background(), bucket, "archive/f.des", buf.Bytes(), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	creds := t.TempDir()
	for name, v := range map[string]string{"AWS_ACCESS_KEY_ID": w.AccessKey, "AWS_SECRET_ACCESS_KEY": w.SecretKey + "\n"} {
		if err := os.WriteFile(filepath.Join(creds, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got := mustCLI(t, 0, "cat", "--s3-endpoint", w.Endpoint, "--s3-region", w.Region, "--s3-path-style",
		"--s3-credentials-dir", creds, "s3://"+bucket+"/archive/f.des", "f")
	if got != "flags" {
		t.Fatalf("cat: %q", got)
	}
}
