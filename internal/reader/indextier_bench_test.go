package reader_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/datavision/des/internal/reader"
	"github.com/datavision/des/test/testworld"
)

// BenchmarkIndexTierOpen opens one container per op, from S3 (no tier: the baseline) and from the
// shared index tier in Redis, for containers of 10k and 100k entries. The readers keep no container in
// memory (CacheBytes 1), so every HEAD of a file is a full open; HEAD sends no payload GET. Each
// variant reports s3-requests/op; the parent logs the tier/S3 time ratio per size.
func BenchmarkIndexTierOpen(b *testing.B) {
	for _, entries := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("entries=%d", entries), func(b *testing.B) { benchTierOpen(b, entries) })
	}
}

func benchTierOpen(b *testing.B, entries int) {
	b.Helper()
	writer := newStore(b)
	bucket := testworld.S3Store(b).NewBucket(b)
	rs := testworld.RedisStore(b)
	files := make([]file, entries)
	for i := range files {
		// Names and meta of the length DES names have, so the index is realistic (~84 B per entry).
		files[i] = file{name: fmt.Sprintf("DES_20260224_(8FBC2C%06d_0D).pdf", i), data: randomBytes(64, uint64(i)), meta: `{"mime":"application/pdf"}`}
	}
	key := shardKey(testDay.Time(), testShard, fmt.Sprintf("cbenchtier%d", entries))
	archive := putContainer(b, writer, bucket, key, files, 0)
	f := &tierFixture{bucket: bucket, prefix: rs.NewPrefix(b), addr: rs.Addr}
	seed := f.newTier(b, reader.IndexTierOptions{Timeout: 5 * time.Second})
	target := "/v1/containers/" + escapeKey(key) + "/files/" + files[entries/2].name
	head := func(b *testing.B, w *world) {
		b.Helper()
		resp, body := do(b, "HEAD", w.http.URL+target, nil, nil)
		mustStatus(b, resp, body, 200)
	}
	head(b, newWorld(b, bucket, reader.Config{CacheBytes: 1, IndexTier: seed}))
	seed.Close()
	if st := seed.Stats(); st.Stores != 1 {
		b.Fatalf("the seeding open stored %d entries, want 1 (%+v)", st.Stores, st)
	}
	perOp := map[string]time.Duration{}
	for _, variant := range []string{"s3", "tier"} {
		b.Run(variant, func(b *testing.B) {
			var tier *reader.RedisIndexTier
			if variant == "tier" {
				tier = f.newTier(b, reader.IndexTierOptions{Timeout: 5 * time.Second})
			}
			w := newWorld(b, bucket, reader.Config{CacheBytes: 1, IndexTier: tier})
			start, before, n := time.Now(), w.requests(), 0
			for b.Loop() {
				head(b, w)
				n++
			}
			perOp[variant] = time.Since(start) / time.Duration(n)
			b.ReportMetric(float64(w.requests()-before)/float64(n), "s3-requests/op")
			if tier != nil {
				if st := tier.Stats(); st.Hits != int64(n) {
					b.Fatalf("tier hits %d of %d opens (%+v)", st.Hits, n, st)
				}
			}
		})
	}
	if perOp["s3"] > 0 && perOp["tier"] > 0 {
		b.Logf("%d entries (archive %d KiB): open from S3 %.2fms, from Redis %.2fms = %.2f × S3",
			entries, len(archive)>>10, ms(perOp["s3"]), ms(perOp["tier"]), float64(perOp["tier"])/float64(perOp["s3"]))
	}
}
