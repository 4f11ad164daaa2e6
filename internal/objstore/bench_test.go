package objstore_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/datavision/des/internal/objstore"
)

// BenchmarkReadAt reads random 4 KiB ranges of an 8 MiB object: one request each.
func BenchmarkReadAt(b *testing.B) {
	s, bucket := newStore(b)
	const size = 8 << 20
	put(b, s, bucket, "k", randomBytes(size, 1))
	r, _, err := s.OpenReaderAt(context.Background(), bucket, "k", 64<<10)
	if err != nil {
		b.Fatal(err)
	}
	p := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	before := r.Stats()
	b.SetBytes(int64(len(p)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.ReadAt(p, rng.Int64N(size-64<<10-4096)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	st := r.Stats()
	b.ReportMetric(float64(st.Requests-before.Requests)/float64(b.N), "requests/op")
}

// BenchmarkFetchRanges fetches 64 scattered 4 KiB ranges per op with 8 requests in flight.
func BenchmarkFetchRanges(b *testing.B) {
	s, bucket := newStore(b)
	const size = 8 << 20
	put(b, s, bucket, "k", randomBytes(size, 1))
	r := s.NewObjectReader(context.Background(), bucket, "k", size, "")
	ranges := make([]objstore.Range, 64)
	for i := range ranges {
		ranges[i] = objstore.Range{Off: int64(i) * (size / 64), Len: 4096}
	}
	before := r.Stats()
	b.ResetTimer()
	for b.Loop() {
		err := objstore.FetchRanges(context.Background(), r, ranges, 8, func(int, []byte) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(r.Stats().Requests-before.Requests)/float64(b.N), "requests/op")
}
