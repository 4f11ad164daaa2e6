package reader_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/reader"
)

func TestContainerFiles(t *testing.T) {
	f := newFixture(t, newStore(t))
	w := newWorld(t, f.bucket, reader.Config{})
	mid, big := f.files[nameMid].data, f.files[nameBig].data
	etagOf := func(name string) string { return `"` + sprintCRC(f.files[name].data) + `"` }
	tests := []struct {
		desc        string
		method, key string
		name        string
		hdr         map[string]string
		status      int
		body        []byte // checked when non-nil (and always empty for HEAD)
		contentType string
		etag        string
		rangeHdr    string // expected Content-Range
	}{
		{desc: "small", key: f.keyA, name: nameHello, status: 200, body: f.files[nameHello].data,
			contentType: "text/plain; charset=utf-8", etag: etagOf(nameHello)},
		{desc: "head", method: "HEAD", key: f.keyA, name: nameHello, status: 200, body: []byte{},
			contentType: "text/plain; charset=utf-8", etag: etagOf(nameHello)},
		{desc: "empty", key: f.keyA, name: nameEmpty, status: 200, body: []byte{},
			contentType: "application/octet-stream", etag: `"00000000"`},
		{desc: "unicode name", key: f.keyA, name: nameUnicode, status: 200, body: f.files[nameUnicode].data, etag: etagOf(nameUnicode)},
		{desc: "largest internal", key: f.keyA, name: nameMid, status: 200, body: mid, etag: etagOf(nameMid)},
		{desc: "external", key: f.keyA, name: nameBig, status: 200, body: big, contentType: "application/x-big", etag: etagOf(nameBig)},
		{desc: "external head", method: "HEAD", key: f.keyA, name: nameBig, status: 200, body: []byte{}, etag: etagOf(nameBig)},
		{desc: "invalid mime falls back", key: f.keyA, name: nameJSON, status: 200, body: f.files[nameJSON].data, contentType: "application/octet-stream"},
		{desc: "des name", key: f.keyA, name: f.desA[3], status: 200, body: f.files[f.desA[3]].data, contentType: "application/pdf"},

		{desc: "first bytes", key: f.keyA, name: nameMid, hdr: map[string]string{"Range": "bytes=0-9"}, status: 206,
			body: mid[:10], rangeHdr: fmt.Sprintf("bytes 0-9/%d", len(mid))},
		{desc: "suffix", key: f.keyA, name: nameMid, hdr: map[string]string{"Range": "bytes=-100"}, status: 206,
			body: mid[len(mid)-100:], rangeHdr: fmt.Sprintf("bytes %d-%d/%d", len(mid)-100, len(mid)-1, len(mid))},
		{desc: "open ended", key: f.keyA, name: nameMid, hdr: map[string]string{"Range": "bytes=1000-"}, status: 206,
			body: mid[1000:], rangeHdr: fmt.Sprintf("bytes 1000-%d/%d", len(mid)-1, len(mid))},
		{desc: "end clamped", key: f.keyA, name: nameHello, hdr: map[string]string{"Range": "bytes=5-999"}, status: 206,
			body: f.files[nameHello].data[5:], rangeHdr: "bytes 5-12/13"},
		{desc: "suffix longer than file", key: f.keyA, name: nameHello, hdr: map[string]string{"Range": "bytes=-999"}, status: 206,
			body: f.files[nameHello].data, rangeHdr: "bytes 0-12/13"},
		{desc: "external range", key: f.keyA, name: nameBig, hdr: map[string]string{"Range": "bytes=100-199"}, status: 206,
			body: big[100:200], rangeHdr: fmt.Sprintf("bytes 100-199/%d", len(big))},
		{desc: "external suffix", key: f.keyA, name: nameBig, hdr: map[string]string{"Range": "bytes=-50"}, status: 206,
			body: big[len(big)-50:], rangeHdr: fmt.Sprintf("bytes %d-%d/%d", len(big)-50, len(big)-1, len(big))},
		{desc: "start past end", key: f.keyA, name: nameMid, hdr: map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(mid))}, status: 416,
			rangeHdr: fmt.Sprintf("bytes */%d", len(mid))},
		{desc: "zero suffix", key: f.keyA, name: nameHello, hdr: map[string]string{"Range": "bytes=-0"}, status: 416, rangeHdr: "bytes */13"},
		{desc: "range on empty file ignored", key: f.keyA, name: nameEmpty, hdr: map[string]string{"Range": "bytes=0-"}, status: 200, body: []byte{}},
		{desc: "multiple ranges ignored", key: f.keyA, name: nameHello, hdr: map[string]string{"Range": "bytes=0-1,4-5"}, status: 200, body: f.files[nameHello].data},
		{desc: "malformed range ignored", key: f.keyA, name: nameHello, hdr: map[string]string{"Range": "lines=1-2"}, status: 200, body: f.files[nameHello].data},
		{desc: "stale If-Range", key: f.keyA, name: nameHello, hdr: map[string]string{"Range": "bytes=0-1", "If-Range": `"deadbeef"`}, status: 200, body: f.files[nameHello].data},
		{desc: "matching If-Range", key: f.keyA, name: nameHello, hdr: map[string]string{"Range": "bytes=0-1", "If-Range": etagOf(nameHello)}, status: 206, body: []byte("he"), rangeHdr: "bytes 0-1/13"},
		{desc: "If-None-Match", key: f.keyA, name: nameHello, hdr: map[string]string{"If-None-Match": etagOf(nameHello)}, status: 304, body: []byte{}},

		{desc: "unknown name", key: f.keyA, name: "nope.txt", status: 404},
		{desc: "unknown container", key: shardKey(testDay.Time(), testShard, "nope"), name: nameHello, status: 404},
		{desc: "outside prefix", key: f.outside, name: nameHello, status: 403},
		{desc: "prefix itself is not a key", key: testPrefix, name: nameHello, status: 403},
		{desc: "sibling of prefix", key: testPrefix + "-other/x.des", name: nameHello, status: 403},
		{desc: "escaped dot-dot", key: testPrefix + "/%2E%2E/" + f.outside, name: nameHello, status: 403},
		{desc: "escaped empty segment", key: testPrefix + "/%2F/x.des", name: nameHello, status: 403},
		{desc: "invalid name", key: f.keyA, name: `a\b`, status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			u := w.fileURL(tc.key, tc.name)
			if strings.Contains(tc.key, "%") || strings.Contains(tc.key, "//") {
				u = w.http.URL + "/v1/containers/" + tc.key + "/files/" + tc.name
			}
			resp, body := do(t, method, u, tc.hdr, nil)
			mustStatus(t, resp, body, tc.status)
			if tc.body != nil && !bytes.Equal(body, tc.body) {
				t.Fatalf("body: got %d bytes %q, want %d bytes", len(body), clip(body), len(tc.body))
			}
			if tc.status == 200 || tc.status == 206 {
				want := len(tc.body)
				if method == "HEAD" {
					want = len(f.files[tc.name].data)
				}
				if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(want) {
					t.Errorf("Content-Length %q, want %d", got, want)
				}
			}
			if tc.contentType != "" && resp.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tc.contentType)
			}
			if tc.etag != "" && resp.Header.Get("ETag") != tc.etag {
				t.Errorf("ETag %q, want %q", resp.Header.Get("ETag"), tc.etag)
			}
			if got := resp.Header.Get("Content-Range"); got != tc.rangeHdr {
				t.Errorf("Content-Range %q, want %q", got, tc.rangeHdr)
			}
			if tc.status >= 400 {
				var e struct {
					Error  string `json:"error"`
					Status int    `json:"status"`
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Status != tc.status || e.Error == "" {
					t.Errorf("error body %q is not the JSON error", body)
				}
			}
		})
	}
}

// TestRequestCounts pins the S3 cost of the common paths.
func TestRequestCounts(t *testing.T) {
	f := newFixture(t, newStore(t))
	w := newWorld(t, f.bucket, reader.Config{})
	step := func(desc string, method, name string, want int64) {
		t.Helper()
		before := w.requests()
		resp, body := do(t, method, w.fileURL(f.keyA, name), nil, nil)
		mustStatus(t, resp, body, 200)
		if got := w.requests() - before; got != want {
			t.Errorf("%s: %d S3 requests, want %d", desc, got, want)
		}
	}
	step("first open (HEAD needs only the index and meta)", "HEAD", nameHello, 1)
	step("cached open", "HEAD", nameHello, 0)
	step("cached open, other file", "HEAD", f.desA[0], 0)
	step("small file", "GET", f.desA[0], 1)
	step("small range", "GET", nameMid, 1)
	if st := w.srv.CacheStats(); st.Opens != 1 || st.Hits < 4 || st.Entries != 1 {
		t.Errorf("cache stats %+v: want 1 open, ≥4 hits, 1 entry", st)
	}

	// When the tail misses the index, or only the meta, one more request fetches meta and index; then
	// reads cost one GET again.
	r, err := desformat.NewReader(bytes.NewReader(f.archiveA), int64(len(f.archiveA)), desformat.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	size, footer := int64(len(f.archiveA)), r.Footer()
	for desc, tail := range map[string]int64{
		"index beyond the tail": desformat.FooterSize + 8,
		"meta beyond the tail":  size - int64(footer.IndexStart) + 16,
	} {
		t.Run(desc, func(t *testing.T) {
			w := newWorld(t, f.bucket, reader.Config{TailSize: tail})
			before := w.requests()
			resp, body := do(t, "HEAD", w.fileURL(f.keyA, f.desA[0]), nil, nil)
			mustStatus(t, resp, body, 200)
			if got := w.requests() - before; got != 2 {
				t.Errorf("open with a %d-byte tail: %d requests, want 2", tail, got)
			}
			before = w.requests()
			resp, body = do(t, "GET", w.fileURL(f.keyA, f.desA[1]), nil, nil)
			mustStatus(t, resp, body, 200)
			if got := w.requests() - before; got != 1 {
				t.Errorf("read after a short-tail open: %d requests, want 1", got)
			}
		})
	}

	t.Run("concurrent opens collapse", func(t *testing.T) {
		w := newWorld(t, f.bucket, reader.Config{})
		const n = 16
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				resp, body := do(t, "GET", w.fileURL(f.keyA, f.desA[i]), nil, nil)
				if resp.StatusCode != 200 || !bytes.Equal(body, f.files[f.desA[i]].data) {
					t.Errorf("concurrent GET %d: %d", i, resp.StatusCode)
				}
			})
		}
		wg.Wait()
		if st := w.srv.CacheStats(); st.Opens != 1 {
			t.Errorf("%d opens for %d concurrent first reads, want 1 (%+v)", st.Opens, n, st)
		}
		if got := w.requests(); got != 1+n {
			t.Errorf("%d S3 requests, want %d (one open + one GET per file)", got, 1+n)
		}
	})
}

func TestCacheBudget(t *testing.T) {
	f := newFixture(t, newStore(t))
	head := func(w *world, key, name string) {
		t.Helper()
		resp, body := do(t, "HEAD", w.fileURL(key, name), nil, nil)
		mustStatus(t, resp, body, 200)
	}
	probe := newWorld(t, f.bucket, reader.Config{})
	head(probe, f.keyA, nameHello)
	costA := probe.srv.CacheStats().Bytes

	// B does not fit next to A. Admission is frequency-aware: B displaces A (the least recently used)
	// only once it was asked for more often than A.
	w := newWorld(t, f.bucket, reader.Config{CacheBytes: costA + 1})
	head(w, f.keyA, nameHello)
	head(w, f.keyB, f.desB[0]) // asked once, as often as A: served, not kept
	if st := w.srv.CacheStats(); st.Evictions != 0 || st.Rejected != 1 || st.Entries != 1 || st.Bytes != costA {
		t.Errorf("after A, B: %+v; want A kept (%d bytes), B rejected", st, costA)
	}
	head(w, f.keyB, f.desB[1]) // asked twice now, A once: A goes
	if st := w.srv.CacheStats(); st.Opens != 3 || st.Evictions != 1 || st.Entries != 1 || st.Bytes > costA+1 {
		t.Errorf("after B again: %+v; want 3 opens, 1 eviction, 1 entry within %d bytes", st, costA+1)
	}
	head(w, f.keyB, f.desB[2])
	head(w, f.keyA, nameHello) // A (2 requests) cannot displace B (3): reopened and served
	if st := w.srv.CacheStats(); st.Opens != 4 || st.Evictions != 1 || st.Rejected != 2 || st.Hits != 1 {
		t.Errorf("after B hit, A again: %+v; want 4 opens, 1 eviction, 2 rejections, 1 hit", st)
	}

	tiny := newWorld(t, f.bucket, reader.Config{CacheBytes: 1024})
	head(tiny, f.keyA, nameHello) // larger than the whole budget: served, not kept
	if st := tiny.srv.CacheStats(); st.Entries != 0 || st.Evictions != 0 || st.Oversized != 1 {
		t.Errorf("oversized container: %+v; want it served but not cached", st)
	}
}

func TestFileLookup(t *testing.T) {
	writer := newStore(t)
	f := newFixture(t, writer)
	w := newWorld(t, f.bucket, reader.Config{MissRefresh: 1})
	tests := []struct {
		desc      string
		name      string
		status    int
		container string
	}{
		{"in A", f.desA[2], 200, f.keyA},
		{"in B, same day and shard", f.desB[1], 200, f.keyB},
		{"in next day's container", f.desN[0], 200, f.keyN},
		{"absent", f.absent, 404, ""},
		{"not a DES name", "hello.txt", 400, ""},
		{"bad DES checksum", strings.Replace(f.desA[0], ")", "", 1), 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			resp, body := do(t, "GET", w.http.URL+"/v1/files/"+tc.name, nil, nil)
			mustStatus(t, resp, body, tc.status)
			if tc.status != 200 {
				return
			}
			if !bytes.Equal(body, f.payload(t, tc.name)) {
				t.Fatal("wrong bytes")
			}
			if got := resp.Header.Get("X-Des-Container"); got != tc.container {
				t.Errorf("served from %q, want %q", got, tc.container)
			}
		})
	}

	t.Run("warm lookup costs one GET", func(t *testing.T) {
		before := w.requests()
		resp, body := do(t, "GET", w.http.URL+"/v1/files/"+f.desA[5], nil, nil)
		mustStatus(t, resp, body, 200)
		if got := w.requests() - before; got != 1 {
			t.Errorf("%d S3 requests, want 1", got)
		}
	})

	t.Run("container committed after the listing was cached", func(t *testing.T) {
		key := shardKey(testDay.Time(), testShard, "c00000000000000d4")
		putContainer(t, writer, f.bucket, key, []file{{name: f.absent, data: []byte("late")}}, 0)
		resp, body := do(t, "GET", w.http.URL+"/v1/files/"+f.absent, nil, nil)
		mustStatus(t, resp, body, 200)
		if string(body) != "late" {
			t.Fatalf("body %q", body)
		}
	})
}

func TestProbesAndMetrics(t *testing.T) {
	f := newFixture(t, newStore(t))
	w := newWorld(t, f.bucket, reader.Config{})
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, body := do(t, "GET", w.http.URL+p, nil, nil)
		mustStatus(t, resp, body, 200)
	}
	do(t, "GET", w.fileURL(f.keyA, nameHello), nil, nil)
	do(t, "GET", w.fileURL(f.keyA, nameHello), nil, nil)
	do(t, "GET", w.fileURL(f.keyA, "missing"), nil, nil)
	resp, body := do(t, "GET", w.http.URL+"/metrics", nil, nil)
	mustStatus(t, resp, body, 200)
	for _, want := range []string{
		`des_reader_http_requests_total{code="200",route="container_file"} 2`,
		`des_reader_http_requests_total{code="404",route="container_file"} 1`,
		`des_reader_http_request_duration_seconds_count{route="container_file"} 3`,
		`des_reader_index_cache_hits_total 2`,
		`des_reader_index_cache_misses_total 1`,
		`des_reader_index_cache_evictions_total 0`,
		`des_reader_index_cache_entries 1`,
		`des_reader_s3_requests_total `,
		`des_reader_s3_received_bytes_total `,
		`des_reader_files_served_total{route="container_file"} 2`,
		`go_goroutines `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	broken := newWorld(t, "no-such-bucket-here", reader.Config{})
	resp, body = do(t, "GET", broken.http.URL+"/readyz", nil, nil)
	mustStatus(t, resp, body, 503)
	resp, body = do(t, "GET", w.http.URL+"/v2/whatever", nil, nil)
	mustStatus(t, resp, body, 404)
	resp, body = do(t, "DELETE", w.fileURL(f.keyA, nameHello), nil, nil)
	mustStatus(t, resp, body, 405)
}
