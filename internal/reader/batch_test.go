package reader_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/reader"
)

// part is one part of a batch response.
type part struct {
	name, status, container, checksum, contentType, length string
	data                                                   []byte
}

// readParts parses a batch response part by part, as a streaming client would.
func readParts(t testing.TB, resp *http.Response) []part {
	t.Helper()
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	var out []part
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		name, err := url.PathUnescape(p.Header.Get(reader.HeaderName))
		if err != nil {
			t.Fatal(err)
		}
		if p.Header.Get(reader.HeaderStatus) == "200" && p.FileName() != name {
			t.Errorf("Content-Disposition file name %q, want %q", p.FileName(), name)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("part %q: %v", name, err)
		}
		out = append(out, part{name: name, status: p.Header.Get(reader.HeaderStatus), container: p.Header.Get(reader.HeaderContainer),
			checksum: p.Header.Get(reader.HeaderChecksum), contentType: p.Header.Get("Content-Type"),
			length: p.Header.Get("Content-Length"), data: data})
	}
}

func postBatch(t testing.TB, w *world, container string, names []string) *http.Response {
	t.Helper()
	resp, err := http.Post(w.http.URL+"/v1/batch", "application/json", batchBody(container, names))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestBatch(t *testing.T) {
	f := newFixture(t, newStore(t))
	w := newWorld(t, f.bucket, reader.Config{})
	allA := []string{nameHello, nameEmpty, nameUnicode, nameMid, nameBig, nameJSON}
	allA = append(allA, f.desA...)

	tests := []struct {
		desc      string
		container string
		names     []string
		missing   []string
	}{
		{"one container, every kind of file", f.keyA, append(append([]string{}, allA...), "not-there.txt"), []string{"not-there.txt"}},
		{"duplicates are sent once", f.keyA, []string{nameHello, nameHello, f.desA[0]}, nil},
		{"located by name across containers and days", "", append(append(append([]string{f.absent}, f.desN[:2]...), f.desA[:3]...), f.desB[:2]...), []string{f.absent}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			resp := postBatch(t, w, tc.container, tc.names)
			if resp.StatusCode != 200 {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			parts := readParts(t, resp)
			want := map[string]bool{}
			for _, n := range tc.names {
				want[n] = true
			}
			if len(parts) != len(want) {
				t.Fatalf("%d parts, want %d", len(parts), len(want))
			}
			missing := map[string]bool{}
			for _, n := range tc.missing {
				missing[n] = true
			}
			for _, p := range parts {
				if !want[p.name] {
					t.Fatalf("unexpected part %q", p.name)
				}
				delete(want, p.name)
				if missing[p.name] {
					if p.status != "404" || len(p.data) != 0 {
						t.Errorf("%q: status %q with %d bytes, want an empty 404 part", p.name, p.status, len(p.data))
					}
					continue
				}
				data := f.payload(t, p.name)
				if p.status != "200" || !bytes.Equal(p.data, data) {
					t.Errorf("%q: status %q, %d bytes; want 200 and the exact %d bytes", p.name, p.status, len(p.data), len(data))
				}
				if p.checksum != "crc32c="+sprintCRC(data) || p.length != fmt.Sprint(len(data)) {
					t.Errorf("%q: checksum %q length %q", p.name, p.checksum, p.length)
				}
				if tc.container != "" && p.container != tc.container {
					t.Errorf("%q: container %q", p.name, p.container)
				}
			}
			if got := resp.Header.Get(reader.HeaderMissing); got != fmt.Sprint(len(tc.missing)) {
				t.Errorf("%s: %q, want %d", reader.HeaderMissing, got, len(tc.missing))
			}
		})
	}

	t.Run("content types from meta", func(t *testing.T) {
		parts := readParts(t, postBatch(t, w, f.keyA, []string{nameHello, nameBig, nameJSON}))
		got := map[string]string{}
		for _, p := range parts {
			got[p.name] = p.contentType
		}
		want := map[string]string{nameHello: "text/plain; charset=utf-8", nameBig: "application/x-big", nameJSON: "application/octet-stream"}
		for n, ct := range want {
			if got[n] != ct {
				t.Errorf("%q: Content-Type %q, want %q", n, got[n], ct)
			}
		}
	})

	t.Run("coalesced: 20 small files cost one GET", func(t *testing.T) {
		before := w.requests()
		parts := readParts(t, postBatch(t, w, f.keyA, f.desA))
		if len(parts) != len(f.desA) {
			t.Fatalf("%d parts", len(parts))
		}
		if got := w.requests() - before; got != 1 {
			t.Errorf("%d S3 requests, want 1", got)
		}
	})

	capped := newWorld(t, f.bucket, reader.Config{MaxBatchNames: 5})
	bad := []struct {
		desc   string
		w      *world
		body   string
		status int
	}{
		{"over the cap", capped, `{"container":"` + f.keyA + `","names":["a","b","c","d","e","f"]}`, 400},
		{"at the cap", capped, `{"container":"` + f.keyA + `","names":["a","b","c","d","e"]}`, 200},
		{"no names", w, `{"container":"` + f.keyA + `","names":[]}`, 400},
		{"invalid name", w, `{"container":"` + f.keyA + `","names":["a/b"]}`, 400},
		{"not JSON", w, `names=a`, 400},
		{"unknown field", w, `{"names":["a"],"bucket":"x"}`, 400},
		{"container outside prefix", w, `{"container":"` + f.outside + `","names":["a"]}`, 403},
		{"unknown container", w, `{"container":"` + testPrefix + `/nope.des","names":["a"]}`, 404},
		{"non-DES name without container", w, `{"names":["hello.txt"]}`, 400},
	}
	for _, tc := range bad {
		t.Run(tc.desc, func(t *testing.T) {
			resp, body := do(t, "POST", tc.w.http.URL+"/v1/batch", map[string]string{"Content-Type": "application/json"}, strings.NewReader(tc.body))
			mustStatus(t, resp, body, tc.status)
		})
	}
}

// TestBatchDisconnect checks that a client leaving mid-batch stops the upstream range reads.
func TestBatchDisconnect(t *testing.T) {
	writer := newStore(t)
	f := newFixture(t, writer)
	const n, size = 256, 128 << 10 // 32 MiB: far more than socket buffers hold
	var files []file
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("f%04d", i))
		files = append(files, file{name: names[i], data: randomBytes(size, uint64(i))})
	}
	key := testPrefix + "/big/c1.des"
	putContainer(t, writer, f.bucket, key, files, 0)
	// One file per range, two in flight: every file is one GET.
	w := newWorld(t, f.bucket, reader.Config{Batch: desformat.BatchOptions{MaxGap: -1, MaxRange: size}, FetchConcurrency: 2})

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", w.http.URL+"/v1/batch", batchBody(key, names))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	p, err := multipart.NewReader(resp.Body, params["boundary"]).NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(p); err != nil || len(b) != size {
		t.Fatalf("first part: %d bytes, %v", len(b), err)
	}
	cancel()
	resp.Body.Close()

	// Wait until the server stops issuing requests, then make sure it stays stopped.
	settled := w.requests()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		now := w.requests()
		if now == settled {
			break
		}
		settled = now
	}
	time.Sleep(300 * time.Millisecond)
	if final := w.requests(); final != settled {
		t.Errorf("S3 requests kept going after the client left: %d → %d", settled, final)
	}
	if settled >= n/2 {
		t.Errorf("%d S3 requests for a batch abandoned after 1 of %d files: upstream reads were not stopped", settled, n)
	}
	t.Logf("S3 requests after disconnect: %d (of %d the full batch needs)", settled, n+1)
}

// TestCorruption checks that damaged payloads never come out as complete, plausible bodies.
func TestCorruption(t *testing.T) {
	writer := newStore(t)
	f := newFixture(t, writer)
	damaged := bytes.Clone(f.archiveA)
	for _, name := range []string{f.desA[0], nameMid} {
		i := bytes.Index(damaged, f.files[name].data)
		if i < 0 {
			t.Fatalf("payload of %q not found in the archive", name)
		}
		damaged[i+len(f.files[name].data)-1] ^= 0xff // the last byte: only a checksum can tell
	}
	key := testPrefix + "/damaged/c1.des"
	putObject(t, writer, f.bucket, key, damaged)
	// Payloads above 4 KiB stream, so nameMid exercises the abort path.
	w := newWorld(t, f.bucket, reader.Config{VerifyBuffer: 8 << 10})

	for _, tc := range []struct {
		desc string
		hdr  map[string]string
	}{{"full", nil}, {"range of a verified payload", map[string]string{"Range": "bytes=0-9"}}} {
		t.Run("small "+tc.desc, func(t *testing.T) {
			resp, body := do(t, "GET", w.fileURL(key, f.desA[0]), tc.hdr, nil)
			mustStatus(t, resp, body, 502)
		})
	}
	t.Run("streamed", func(t *testing.T) {
		resp, err := http.Get(w.fileURL(key, nameMid))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil {
			t.Fatalf("status %d, %d bytes read without error from a damaged payload", resp.StatusCode, len(b))
		}
		if len(b) >= len(f.files[nameMid].data) {
			t.Fatalf("all %d bytes were delivered before the abort", len(b))
		}
	})
	t.Run("range of a streamed payload is not verifiable", func(t *testing.T) {
		resp, body := do(t, "GET", w.fileURL(key, nameMid), map[string]string{"Range": "bytes=0-9"}, nil)
		mustStatus(t, resp, body, 206)
	})
	t.Run("batch fails before its first part", func(t *testing.T) {
		resp, body := do(t, "POST", w.http.URL+"/v1/batch", nil, batchBody(key, []string{f.desA[0]}))
		mustStatus(t, resp, body, 502)
	})
	t.Run("batch aborts mid-stream", func(t *testing.T) {
		// The good first part may or may not have reached the client before the abort.
		resp, err := http.Post(w.http.URL+"/v1/batch", "application/json", batchBody(key, []string{nameHello, f.desA[0]}))
		if err != nil {
			return // cut before the headers arrived: the client saw an error
		}
		defer resp.Body.Close()
		_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		mr := multipart.NewReader(resp.Body, params["boundary"])
		for err == nil {
			var p *multipart.Part
			if p, err = mr.NextPart(); err == nil {
				_, err = io.ReadAll(p)
			}
		}
		if errors.Is(err, io.EOF) {
			t.Fatal("a batch with a damaged file ended cleanly")
		}
	})
}
