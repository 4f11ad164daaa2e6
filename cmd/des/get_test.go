package main

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/internal/reader"
	"github.com/datavision/des/pkg/des"
	"github.com/datavision/des/test/testworld"
)

// getWorld is a container in the test world's S3 and a reader sidecar serving it.
type getWorld struct {
	url   string
	key   string
	files map[string]string
	des   string // a stored DES name
}

func newGetWorld(t *testing.T) *getWorld {
	t.Helper()
	w := testworld.S3Store(t)
	s := testStore(t, w)
	bucket := w.NewBucket(t)
	day := time.Date(2026, 2, 24, 13, 0, 0, 0, time.UTC)
	g, err := des.NewGenerator(des.NameConfig{Prefix: "DES", Now: func() time.Time { return day }})
	if err != nil {
		t.Fatal(err)
	}
	name, _ := g.New()
	shard, _ := des.Shard(name, 4)
	gw := &getWorld{key: protocol.ContainerKey("archive", day, int32(shard), "c0000000000000001"), des: name,
		files: map[string]string{"a.txt": "alpha\n", "ü ✓.txt": "unicode\n", "empty": "", "big.bin": randomPayload(300<<10, 3), name: "named\n",
			"dir%2Fsub%2Fa.txt": "in a folder\n", "..%2Fescape": "looks like a way out\n"}}
	var buf bytes.Buffer
	aw, err := des.NewWriter(&buf, des.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range slices.Sorted(maps.Keys(gw.files)) { // archive order: a.txt before big.bin
		data := gw.files[n]
		if err := aw.Add(context.Background(), des.FileHeader{Name: n, Size: int64(len(data))}, strings.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), bucket, gw.key, buf.Bytes(), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	srv, err := reader.New(reader.Config{Store: s, Bucket: bucket, Prefixes: []string{"archive"}, ShardBits: 4,
		Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	gw.url = hs.URL
	return gw
}

// corruptingProxy forwards to target and flips the first byte of what in every response body.
func corruptingProxy(t *testing.T, target string, what string) string {
	t.Helper()
	u, _ := url.Parse(target)
	p := httputil.NewSingleHostReverseProxy(u)
	p.ModifyResponse = func(resp *http.Response) error {
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if i := bytes.Index(b, []byte(what)); i >= 0 {
			b[i] ^= 0xff
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return err
	}
	hs := httptest.NewServer(p)
	t.Cleanup(hs.Close)
	return hs.URL
}

func TestGet(t *testing.T) {
	gw := newGetWorld(t)
	bad := corruptingProxy(t, gw.url, gw.files["big.bin"][1000:1100])
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string   // checked when code is 0
		wrote  []string // files expected in the -o directory
	}{
		{"one file by container", []string{"--container", gw.key, "a.txt"}, 0, "alpha\n", nil},
		{"unicode name", []string{"--container", gw.key, "ü ✓.txt"}, 0, "unicode\n", nil},
		{"DES name found by the sidecar", []string{gw.des}, 0, "named\n", nil},
		{"missing", []string{"--container", gw.key, "nope"}, 1, "", nil},
		{"damaged on the way", []string{"--reader", bad, "--container", gw.key, "big.bin"}, 1, "", nil},
		{"batch", []string{"--container", gw.key, "-o", "DIR", "a.txt", "big.bin", "empty", "ü ✓.txt"}, 0, "", []string{"a.txt", "big.bin", "empty", "ü ✓.txt"}},
		{"batch with a missing name", []string{"--container", gw.key, "-o", "DIR", "a.txt", "nope"}, 1, "", []string{"a.txt"}},
		{"batch damaged on the way", []string{"--reader", bad, "--container", gw.key, "-o", "DIR", "a.txt", "big.bin"}, 1, "", []string{"a.txt"}},
		{"a path", []string{"--container", gw.key, "dir/sub/a.txt"}, 0, "in a folder\n", nil},
		{"batch with a path: folders created", []string{"--container", gw.key, "-o", "DIR", "dir/sub/a.txt", "a.txt"}, 0, "", []string{"dir/sub/a.txt", "a.txt"}},
		{"name that would climb out stays in DIR", []string{"--container", gw.key, "-o", "DIR", "..%2Fescape"}, 0, "", []string{"..%2Fescape"}},
		{"several names without -o", []string{"--container", gw.key, "a.txt", "empty"}, 2, "", nil},
		{"bad reader URL", []string{"--reader", "localhost:1", "a.txt"}, 2, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"get", "--reader", gw.url}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "DIR", dir))
			}
			out := mustCLI(t, tc.code, args...)
			if tc.code == 0 && tc.wrote == nil && out != tc.stdout {
				t.Fatalf("stdout %q, want %q", clipString(out), clipString(tc.stdout))
			}
			checkDir(t, dir, tc.wrote, gw.files)
		})
	}
}

// checkDir checks that dir holds exactly the files at paths names (and nothing outside it), with
// the bytes stored under their escaped names.
func checkDir(t *testing.T, dir string, names []string, files map[string]string) {
	t.Helper()
	var found []string
	err := filepath.WalkDir(filepath.Dir(dir), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			found = append(found, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != len(names) {
		t.Fatalf("files written: %q, want %q", found, names)
	}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(n)))
		want, stored := files[n] // a name written as it is
		if !stored {
			want = files[escapePath(n)] // a path
		}
		if err != nil || string(b) != want {
			t.Fatalf("%s: %d bytes (%v), want the %d stored", n, len(b), err, len(want))
		}
	}
}

func clipString(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}
