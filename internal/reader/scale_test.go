package reader_test

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/datavision/des/internal/reader"
	"github.com/datavision/des/test/testworld"
)

// largeContainer writes n tiny files (every 97th with a mime type) and returns their names and data.
func largeContainer(t testing.TB, bucket, key string, n int) ([]string, [][]byte) {
	t.Helper()
	names := desNames(t, n, testShard, 21)
	files := make([]file, n)
	data := make([][]byte, n)
	for i, name := range names {
		data[i] = randomBytes(16, uint64(i))
		files[i] = file{name: name, data: data[i]}
		if i%97 == 0 {
			files[i].meta = `{"mime":"application/pdf"}`
		}
	}
	putContainer(t, newStore(t), bucket, key, files, 0)
	return names, data
}

// TestLargeContainerOneRequestPerRead opens a 50k-entry container whose meta is larger than one meta
// read (so it is streamed in chunks) and checks that, once open, every read costs exactly one S3
// request, that content type and checksum come without a meta read, and that the second read does not
// reopen.
func TestLargeContainerOneRequestPerRead(t *testing.T) {
	const n = 50_000
	bucket := testworld.S3Store(t).NewBucket(t)
	key := shardKey(testDay.Time(), testShard, "clarge")
	names, data := largeContainer(t, bucket, key, n)
	for _, tc := range []struct {
		name string
		cfg  reader.Config
	}{
		{"meta fetched with the index", reader.Config{}},
		{"meta streamed in chunks", reader.Config{TailSize: 64 << 10, MaxMetaCache: 512 << 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, bucket, tc.cfg)
			before := w.requests()
			get := func(i int) {
				t.Helper()
				resp, body := do(t, "GET", w.fileURL(key, names[i]), nil, nil)
				mustStatus(t, resp, body, http.StatusOK)
				if !bytes.Equal(body, data[i]) {
					t.Fatalf("file %d: wrong bytes", i)
				}
				if got, want := resp.Header.Get(reader.HeaderChecksum), "crc32c="+sprintCRC(data[i]); got != want {
					t.Fatalf("file %d: checksum header %q, want %q", i, got, want)
				}
				wantType := "application/octet-stream"
				if i%97 == 0 {
					wantType = "application/pdf"
				}
				if got := resp.Header.Get("Content-Type"); got != wantType {
					t.Fatalf("file %d: content type %q, want %q", i, got, wantType)
				}
			}
			get(0)
			t.Logf("open + first read: %d S3 requests; cache %+v", w.requests()-before, w.srv.CacheStats())
			for _, i := range []int{1, 97, n / 2, n - 1, 194, 3} {
				before := w.requests()
				get(i)
				if got := w.requests() - before; got != 1 {
					t.Errorf("read of file %d after open: %d S3 requests, want 1", i, got)
				}
			}
			if st := w.srv.CacheStats(); st.Opens != 1 || st.Entries != 1 {
				t.Errorf("cache %+v: want 1 open (no reopen), 1 entry", st)
			}
			// A batch costs only its data ranges: no meta is read for checksums or content types.
			before = w.requests()
			resp, err := http.Post(w.http.URL+"/v1/batch", "application/json", batchBody(key, []string{names[5], names[n/2], names[n-2]}))
			if err != nil {
				t.Fatal(err)
			}
			parts := readParts(t, resp)
			resp.Body.Close()
			if len(parts) != 3 {
				t.Fatalf("batch: %d parts, want 3", len(parts))
			}
			if got := w.requests() - before; got != 3 {
				t.Errorf("batch of 3 files ≥ 256 KiB apart: %d S3 requests, want 3 (data ranges only)", got)
			}
		})
	}
}

// TestCacheKeepsResidentSetUnderCycle cycles requests over four equal containers in a cache that
// holds two. Plain LRU would reopen on every request; frequency-aware admission keeps the first two
// resident and reopens only the other two.
func TestCacheKeepsResidentSetUnderCycle(t *testing.T) {
	bucket := testworld.S3Store(t).NewBucket(t)
	s := newStore(t)
	var keys []string
	for i := range 4 {
		key := shardKey(testDay.Time(), testShard, fmt.Sprintf("ccycle%d", i))
		putContainer(t, s, bucket, key, desFiles(desNames(t, 50, testShard, uint8(30+i)), uint64(1000*i)), 0)
		keys = append(keys, key)
	}
	head := func(w *world, key string) {
		t.Helper()
		resp, body := do(t, "HEAD", w.fileURL(key, "absent-name"), nil, nil)
		mustStatus(t, resp, body, http.StatusNotFound)
	}
	probe := newWorld(t, bucket, reader.Config{})
	head(probe, keys[0])
	cost := probe.srv.CacheStats().Bytes

	w := newWorld(t, bucket, reader.Config{CacheBytes: cost * 5 / 2})
	const rounds = 6
	for range rounds {
		for _, k := range keys {
			head(w, k)
		}
	}
	st := w.srv.CacheStats()
	t.Logf("after %d rounds over %d containers: %+v", rounds, len(keys), st)
	if want := int64(2 + 2*rounds); st.Opens != want || st.Hits != 2*(rounds-1) {
		t.Errorf("%d opens, %d hits; want %d opens (2 resident + 2 per round), %d hits", st.Opens, st.Hits, want, 2*(rounds-1))
	}
	if st.Evictions != 0 || st.Entries != 2 || st.Rejected != 2*rounds {
		t.Errorf("%+v: want the 2 first containers resident, 0 evictions, %d rejections", st, 2*rounds)
	}
}
