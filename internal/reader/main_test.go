package reader_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"

	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/naming"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/internal/reader"
	"github.com/datavision/des/test/testworld"
)

func TestMain(m *testing.M) {
	testworld.Main(m, testworld.S3|testworld.Kube|testworld.Postgres|testworld.MariaDB|testworld.Redis)
}

const (
	testPrefix    = "archive"
	testShardBits = 2
)

var testDay = naming.Day{Year: 2026, Month: time.February, Day: 24}

// newStore returns a Store of its own, so that its wire counters belong to one test.
func newStore(t testing.TB) *objstore.Store {
	t.Helper()
	return testworld.S3Store(t).NewStore(t)
}

func randomBytes(n int, seed uint64) []byte { return testworld.RandomBytes(n, seed) }

// file is one payload of a test container.
type file struct {
	name string
	data []byte
	meta string // JSON object or ""
}

// putContainer writes files into a container at key (external payloads of at least extThreshold
// bytes under the container's own prefix, as the packer does: protocol.PrefixOfContainerKey) and
// returns the archive bytes.
func putContainer(t testing.TB, s *objstore.Store, bucket, key string, files []file, extThreshold int64) []byte {
	t.Helper()
	ctx := context.Background()
	var buf bytes.Buffer
	opts := desformat.WriterOptions{}
	if extThreshold > 0 {
		opts.External = s.Blobs(bucket, objstore.UploadOptions{})
		opts.ExternalThreshold = extThreshold
		opts.ExternalPrefix = protocol.PrefixOfContainerKey(key)
	}
	w, err := desformat.NewWriter(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		fh := desformat.FileHeader{Name: f.name, Size: int64(len(f.data))}
		if f.meta != "" {
			fh.Meta = json.RawMessage(f.meta)
		}
		if err := w.Add(ctx, fh, bytes.NewReader(f.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	putObject(t, s, bucket, key, buf.Bytes())
	return buf.Bytes()
}

func putObject(t testing.TB, s *objstore.Store, bucket, key string, data []byte) {
	t.Helper()
	if _, err := s.Put(context.Background(), bucket, key, data, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// desNames returns n DES names of testDay whose shard is shard.
func desNames(t testing.TB, n int, shard uint32, node uint8) []string {
	t.Helper()
	at := time.Date(2026, 2, 24, 13, 0, 0, 0, time.UTC)
	g, err := naming.NewGenerator(naming.Config{Prefix: "DES", Node: int(node), Now: func() time.Time { at = at.Add(time.Millisecond); return at }})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for len(out) < n {
		name, err := g.NewForDay(testDay)
		if err != nil {
			t.Fatal(err)
		}
		name += ".pdf"
		if sh, _ := naming.Shard(name, testShardBits); sh == shard {
			out = append(out, name)
		}
	}
	return out
}

func shardKey(day time.Time, shard uint32, id string) string {
	return protocol.ContainerKey(testPrefix, day, int32(shard), id)
}

// world is a bucket with containers and a sidecar serving them.
type world struct {
	bucket string
	store  *objstore.Store // the sidecar's store: its counters are the sidecar's S3 requests
	srv    *reader.Server
	http   *httptest.Server
}

func newWorld(t testing.TB, bucket string, cfg reader.Config) *world {
	t.Helper()
	w := &world{bucket: bucket, store: newStore(t)}
	cfg.Store, cfg.Bucket = w.store, bucket
	if cfg.Prefixes == nil {
		cfg.Prefixes = []string{testPrefix}
	}
	if cfg.ShardBits == 0 {
		cfg.ShardBits = testShardBits
	}
	cfg.Logger = logr.Discard()
	if testing.Verbose() {
		cfg.Logger = testr.NewWithInterface(t, testr.Options{})
	}
	srv, err := reader.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.srv = srv
	w.http = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		w.http.Close()
		srv.Close()
	})
	return w
}

func (w *world) requests() int64 { return w.store.Stats().Requests }

// fileURL is the container route for key and name, both path-escaped.
func (w *world) fileURL(key, name string) string {
	return w.http.URL + "/v1/containers/" + escapeKey(key) + "/files/" + url.PathEscape(name)
}

func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// do sends a request and returns the response with its body read.
func do(t testing.TB, method, u string, hdr map[string]string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return resp, b
}

func batchBody(container string, names []string) io.Reader {
	b, _ := json.Marshal(reader.BatchRequest{Container: container, Names: names})
	return bytes.NewReader(b)
}

func mustStatus(t testing.TB, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body %q", resp.Request.Method, resp.Request.URL, resp.StatusCode, want, clip(body))
	}
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func sprintCRC(data []byte) string {
	return fmt.Sprintf("%08x", crc32c(data))
}
