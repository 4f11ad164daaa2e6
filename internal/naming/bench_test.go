package naming

import (
	"sync/atomic"
	"testing"
	"time"
)

// reportRate adds names/s to a benchmark's output.
func reportRate(b *testing.B) {
	b.Helper()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "names/s")
	}
}

// BenchmarkGenerate measures one generator on the real clock. v1 caps a node at 256 names per millisecond,
// so this cannot exceed 256,000 names/s; the gap to that is sleep overshoot when a millisecond is used up.
func BenchmarkGenerate(b *testing.B) { benchGenerate(b, Config{Node: 1}) }

// BenchmarkGenerateParallel is BenchmarkGenerate from GOMAXPROCS goroutines sharing one generator.
func BenchmarkGenerateParallel(b *testing.B) { benchGenerateParallel(b, Config{Node: 1}) }

// fastClock advances one millisecond per reading, so the 256/ms cap never binds: what remains is the cost of
// the lock, the day cache and the formatting.
func fastClock() func() time.Time {
	var ms atomic.Int64
	ms.Store(time.Date(2026, 2, 24, 0, 0, 0, 0, time.UTC).UnixMilli())
	return func() time.Time { return time.UnixMilli(ms.Add(1)) }
}

func BenchmarkGenerateFastClock(b *testing.B) { benchGenerate(b, Config{Node: 1, Now: fastClock()}) }

func BenchmarkGenerateFastClockParallel(b *testing.B) {
	benchGenerateParallel(b, Config{Node: 1, Now: fastClock()})
}

// benchGenerate measures one generator with cfg from one goroutine.
func benchGenerate(b *testing.B, cfg Config) {
	b.Helper()
	g := mustGenerator(b, cfg)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.New(); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// benchGenerateParallel measures one generator with cfg shared by GOMAXPROCS goroutines.
func benchGenerateParallel(b *testing.B, cfg Config) {
	b.Helper()
	g := mustGenerator(b, cfg)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := g.New(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b)
}

// BenchmarkFormat is the string formatting alone (one allocation, the string itself).
func BenchmarkFormat(b *testing.B) {
	n := Name{Prefix: "DES", Day: Day{2026, 2, 24}, TimeBits: 0x008A8C5E, Node: 0xFF, Seq: 7}
	b.ReportAllocs()
	for b.Loop() {
		_ = n.String()
	}
	reportRate(b)
}

// BenchmarkAppendTo is the formatting into a reused buffer (no allocation).
func BenchmarkAppendTo(b *testing.B) {
	n := Name{Prefix: "DES", Day: Day{2026, 2, 24}, TimeBits: 0x008A8C5E, Node: 0xFF, Seq: 7}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = n.AppendTo(buf[:0])
	}
	reportRate(b)
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("DES_20260224_(008A8C5EFF00_73).pdf"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkShard(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Shard("DES_20260224_(008A8C5EFF00_73).pdf", 16); err != nil {
			b.Fatal(err)
		}
	}
}
