package reader

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/datavision/des/test/testworld"
)

func TestRecordingSpan(t *testing.T) {
	obj := make([]byte, 100)
	for i := range obj {
		obj[i] = byte(i * 7)
	}
	p := func(off, n int) piece { return piece{int64(off), bytes.Clone(obj[off : off+n])} }
	tests := []struct {
		desc    string
		limit   int64
		pieces  []piece
		over    bool
		wantOff int64
		ok      bool
	}{
		{"one tail", 1000, []piece{p(60, 40)}, false, 60, true},
		{"tail then the region before it", 1000, []piece{p(60, 40), p(10, 50)}, false, 10, true},
		{"overlapping reads", 1000, []piece{p(60, 40), p(10, 80), p(70, 30)}, false, 10, true},
		{"a gap", 1000, []piece{p(60, 40), p(10, 40)}, false, 0, false},
		{"not reaching the end", 1000, []piece{p(10, 50)}, false, 0, false},
		{"reads over the limit", 1000, []piece{p(60, 40)}, true, 0, false},
		{"far apart reads", 50, []piece{p(0, 10), p(90, 10)}, false, 0, false},
		{"span over the limit", 60, []piece{p(60, 40), p(10, 50)}, false, 0, false},
		{"nothing read", 1000, nil, false, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			r := &recordingReaderAt{limit: tc.limit, pieces: tc.pieces, over: tc.over}
			off, data, ok := r.span(int64(len(obj)))
			if ok != tc.ok || off != tc.wantOff {
				t.Fatalf("span = %d, %d bytes, %v; want %d, %v", off, len(data), ok, tc.wantOff, tc.ok)
			}
			if ok && !bytes.Equal(data, obj[off:]) {
				t.Fatalf("span bytes differ from the object's [%d,%d)", off, len(obj))
			}
		})
	}
}

// TestIndexTierStoreBounds: while stores are in flight (Redis frozen), another store of the same key,
// and any store beyond MaxStores (2), is skipped rather than queued.
func TestIndexTierStoreBounds(t *testing.T) {
	rs, err := testworld.StartRedis(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Close)
	tier, err := NewRedisIndexTier(IndexTierOptions{Addr: rs.Addr, Prefix: "bounds:", MaxStores: 2, StoreTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rec := func() *recordingReaderAt {
		src := &entryReaderAt{e: tierEntry{Size: 100, ETag: `"e"`}}
		return &recordingReaderAt{tailSource: src, limit: 1000, pieces: []piece{{off: 10, data: make([]byte, 90)}}}
	}
	if err := rs.Pause(); err != nil {
		t.Fatal(err)
	}
	tier.store("b", "k1", rec())
	tier.store("b", "k1", rec())
	tier.store("b", "k2", rec())
	tier.store("b", "k3", rec())
	if st := tier.Stats(); st.Skipped != 2 {
		t.Fatalf("stats %+v, want the second store of k1 and the store of k3 skipped", st)
	}
	if err := rs.Resume(); err != nil {
		t.Fatal(err)
	}
	tier.wg.Wait() // the SETs complete once Redis runs again (well within their 5 s bound)
	if st := tier.Stats(); st.Stores != 2 || st.Errors != 0 {
		t.Fatalf("stats %+v, want the stores of k1 and k2 done", st)
	}
	for key, want := range map[string]int64{"k1": 1, "k2": 1, "k3": 0} {
		if n, err := tier.client.Exists(context.Background(), tier.RedisKey("b", key)).Result(); err != nil || n != want {
			t.Errorf("EXISTS entry of %s: %d, %v; want %d", key, n, err, want)
		}
	}
	tier.Close()
}
