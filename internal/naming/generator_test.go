package naming

import (
	"math/rand"
	"sort"
	"sync"
	"testing"
	"testing/quick"
	"time"
)

// fakeClock is a manual clock in whole milliseconds; its Sleep advances it instead of waiting.
type fakeClock struct {
	mu     sync.Mutex
	ms     int64
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.UnixMilli(c.ms)
}

func (c *fakeClock) Sleep(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.ms += int64((d + time.Millisecond - 1) / time.Millisecond)
}

func (c *fakeClock) Set(ms int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ms = ms
}

func (c *fakeClock) Sleeps() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sleeps)
}

// fixedClock always reads the same millisecond.
func fixedClock(ms int64) func() time.Time {
	return func() time.Time { return time.UnixMilli(ms) }
}

func mustGenerator(tb testing.TB, cfg Config) *Generator {
	tb.Helper()
	g, err := NewGenerator(cfg)
	if err != nil {
		tb.Fatalf("NewGenerator(%+v): %v", cfg, err)
	}
	return g
}

func newFakeGenerator(tb testing.TB, startMs int64) (*Generator, *fakeClock) {
	tb.Helper()
	clock := &fakeClock{ms: startMs}
	return mustGenerator(tb, Config{Prefix: "T", Node: 7, Now: clock.Now, Sleep: clock.Sleep}), clock
}

func mustNext(tb testing.TB, g *Generator) Name {
	tb.Helper()
	n, err := g.Next()
	if err != nil {
		tb.Fatalf("Next: %v", err)
	}
	return n
}

func TestNewGeneratorConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"node 255", Config{Node: 255}, true},
		{"node 256", Config{Node: 256}, false},
		{"node -1", Config{Node: -1}, false},
		{"bad prefix", Config{Prefix: "A_B"}, false},
	}
	for _, tt := range tests {
		g, err := NewGenerator(tt.cfg)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
		}
		if tt.name == "defaults" && (g.Prefix() != DefaultPrefix || g.Node() != 0) {
			t.Errorf("defaults: prefix %q node %d", g.Prefix(), g.Node())
		}
	}
}

func TestNextUsesClock(t *testing.T) {
	at := time.Date(2026, 2, 24, 23, 59, 59, 999e6, time.UTC)
	g, clock := newFakeGenerator(t, at.UnixMilli())
	n := mustNext(t, g)
	want := Name{Prefix: "T", Day: Day{2026, 2, 24}, TimeBits: uint32(at.UnixMilli()), Node: 7}
	if n != want {
		t.Fatalf("Next = %+v, want %+v", n, want)
	}
	// One millisecond later it is the next UTC day.
	clock.Set(at.UnixMilli() + 1)
	if n := mustNext(t, g); n.Day != (Day{2026, 2, 25}) || n.Seq != 0 {
		t.Fatalf("after midnight: %+v", n)
	}
}

// 256 names fit in one millisecond; the 257th waits for the next one.
func TestSequenceOverflowWaits(t *testing.T) {
	g, clock := newFakeGenerator(t, 1_000_000)
	for i := 0; i < 256; i++ {
		n := mustNext(t, g)
		if n.TimeBits != 1_000_000 || int(n.Seq) != i {
			t.Fatalf("name %d: time %d seq %d", i, n.TimeBits, n.Seq)
		}
	}
	if clock.Sleeps() != 0 {
		t.Fatalf("slept before the sequence was used up")
	}
	n := mustNext(t, g)
	if n.TimeBits != 1_000_001 || n.Seq != 0 {
		t.Fatalf("after overflow: time %d seq %d, want 1000001 and 0", n.TimeBits, n.Seq)
	}
	if clock.Sleeps() != 1 || clock.sleeps[0] <= 0 || clock.sleeps[0] > time.Millisecond {
		t.Fatalf("sleeps = %v, want one wait of at most 1ms", clock.sleeps)
	}
}

// A clock stepping back never makes the generator reuse a (millisecond, sequence) pair or go backwards.
func TestClockStepBack(t *testing.T) {
	g, clock := newFakeGenerator(t, 5_000)
	seen := map[uint64]bool{}
	take := func(k int) Name {
		t.Helper()
		var n Name
		for i := 0; i < k; i++ {
			n = mustNext(t, g)
			if seen[n.ID()] {
				t.Fatalf("duplicate %s", n)
			}
			seen[n.ID()] = true
		}
		return n
	}
	take(10) // 5000/0..9
	clock.Set(3_000)
	if n := take(1); n.TimeBits != 5_000 || n.Seq != 10 {
		t.Fatalf("after step back: %d/%d, want 5000/10", n.TimeBits, n.Seq)
	}
	// Exhausting 5000 while the clock is behind runs ahead of the clock, one ms per real ms slept.
	if n := take(245 + 1); n.TimeBits != 5_001 || n.Seq != 0 {
		t.Fatalf("overflow while behind: %d/%d, want 5001/0", n.TimeBits, n.Seq)
	}
	if clock.Sleeps() != 1 {
		t.Fatalf("sleeps = %v, want one throttle sleep", clock.sleeps)
	}
	take(256 * 3)
	if n := take(1); n.TimeBits < 5_004 {
		t.Fatalf("went backwards: %d", n.TimeBits)
	}
	// Once the clock is ahead again, names follow it.
	clock.Set(9_000)
	if n := take(1); n.TimeBits != 9_000 || n.Seq != 0 {
		t.Fatalf("after catching up: %d/%d, want 9000/0", n.TimeBits, n.Seq)
	}
}

// A step back across midnight keeps the day of the millisecond actually used, so day and time bits agree.
func TestClockStepBackKeepsDay(t *testing.T) {
	midnight := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	g, clock := newFakeGenerator(t, midnight)
	mustNext(t, g)
	clock.Set(midnight - 10)
	n := mustNext(t, g)
	if n.Day != (Day{2026, 3, 1}) {
		t.Fatalf("day = %v, want 20260301", n.Day)
	}
	if at, ok := n.Time(); !ok || at.UnixMilli() != midnight {
		t.Fatalf("Time() = %v, %v", at, ok)
	}
}

// Config.After keeps a new generator from reusing milliseconds a previous holder of the node id may have used.
func TestConfigAfter(t *testing.T) {
	tests := []struct {
		name         string
		clock, after int64
		want         uint32
	}{
		{"clock ahead", 2_000, 1_000, 2_000},
		{"clock at After", 1_000, 1_000, 1_001},
		{"clock behind After", 900, 1_000, 1_001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{ms: tt.clock}
			g := mustGenerator(t, Config{Now: clock.Now, Sleep: clock.Sleep, After: time.UnixMilli(tt.after)})
			if n := mustNext(t, g); n.TimeBits != tt.want || n.Seq != 0 {
				t.Fatalf("first name at %d/%d, want %d/0", n.TimeBits, n.Seq, tt.want)
			}
		})
	}
}

func TestNextForDay(t *testing.T) {
	g, _ := newFakeGenerator(t, time.Date(2026, 2, 24, 12, 0, 0, 0, time.UTC).UnixMilli())
	n, err := g.NextForDay(Day{2020, 1, 31})
	if err != nil || n.Day != (Day{2020, 1, 31}) {
		t.Fatalf("NextForDay = %+v, %v", n, err)
	}
	// Explicit days share the sequence with clock days: the pair is still unique.
	if m := mustNext(t, g); m.ID() == n.ID() {
		t.Fatalf("same F twice: %s %s", n, m)
	}
	if _, err := g.NextForDay(Day{2021, 2, 29}); err == nil {
		t.Fatalf("NextForDay accepted 29 Feb 2021")
	}
	if _, err := g.NewForDay(Day{}); err == nil {
		t.Fatalf("NewForDay accepted the zero Day")
	}
}

func TestNextClockOutOfRange(t *testing.T) {
	g := mustGenerator(t, Config{Now: func() time.Time { return time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }})
	if _, err := g.New(); err == nil {
		t.Fatalf("New accepted year 10000")
	}
}

// 1M names from 8 goroutines on the real clock are all distinct and all parse back. At 256 names/ms this
// takes about 4 s.
func TestUniqueConcurrent(t *testing.T) {
	const workers, perWorker = 8, 125_000
	g := mustGenerator(t, Config{Prefix: "U", Node: 42})
	out := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			names := make([]string, perWorker)
			for i := range names {
				s, err := g.New()
				if err != nil {
					t.Errorf("New: %v", err)
					return
				}
				names[i] = s
			}
			out[w] = names
		}()
	}
	wg.Wait()
	all := make([]string, 0, workers*perWorker)
	for _, names := range out {
		all = append(all, names...)
	}
	if len(all) != workers*perWorker {
		t.Fatalf("got %d names", len(all))
	}
	sort.Strings(all)
	for i := 1; i < len(all); i++ {
		if all[i] == all[i-1] {
			t.Fatalf("duplicate name %s", all[i])
		}
	}
	for _, i := range []int{0, len(all) / 2, len(all) - 1} {
		if n, err := Parse(all[i]); err != nil || n.Node != 42 {
			t.Fatalf("Parse(%q) = %+v, %v", all[i], n, err)
		}
	}
}

// Parse(Generate(x)) returns x for random prefixes, nodes, clocks and days (seeded, so failures reproduce).
func TestPropertyParseGenerated(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-"
	for i := 0; i < 2000; i++ {
		prefix := []byte{alphabet[rng.Intn(62)]}
		for j := rng.Intn(MaxPrefixLen); j > 0; j-- {
			prefix = append(prefix, alphabet[rng.Intn(len(alphabet))])
		}
		// Any instant in years 0000..9999.
		lo := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
		hi := time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC).UnixMilli()
		ms := lo + rng.Int63n(hi-lo+1)
		node := rng.Intn(256)
		g := mustGenerator(t, Config{Prefix: string(prefix), Node: node, Now: fixedClock(ms), Sleep: func(time.Duration) {}})
		for k := rng.Intn(300); k > 0; k-- { // land on a random sequence, possibly past an overflow
			mustNext(t, g)
		}
		want := mustNext(t, g)
		got, err := Parse(want.String())
		if err != nil || got != want {
			t.Fatalf("seed case %d: Parse(%q) = %+v, %v; want %+v", i, want.String(), got, err, want)
		}
		if int(got.Node) != node || got.Prefix != string(prefix) {
			t.Fatalf("seed case %d: node/prefix lost: %+v", i, got)
		}
		if at, ok := got.Time(); !ok || at.UnixMilli() < ms {
			t.Fatalf("seed case %d: Time() = %v, %v; clock was %d", i, at, ok, ms)
		}
	}
}

// Any valid field combination formats to a string that parses back to the same fields (testing/quick).
func TestPropertyFormatParse(t *testing.T) {
	f := func(timeBits uint32, node, seq uint8, dayN uint32, extN uint8) bool {
		day := DayOf(time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(dayN%3_652_059)))
		exts := []string{"", ".pdf", ".tar.gz", ".é", ".x"}
		n := Name{Prefix: "DES", Day: day, TimeBits: timeBits, Node: node, Seq: seq, Ext: exts[int(extN)%len(exts)]}
		got, err := Parse(n.String())
		return err == nil && got == n
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 5000, Rand: rand.New(rand.NewSource(1))}); err != nil {
		t.Fatal(err)
	}
}

// Generators on different nodes sharing a clock never collide.
func TestDistinctNodes(t *testing.T) {
	clock := &fakeClock{ms: 42}
	seen := map[string]bool{}
	for node := 0; node < 256; node++ {
		g := mustGenerator(t, Config{Node: node, Now: clock.Now, Sleep: func(time.Duration) {}})
		for i := 0; i < 16; i++ {
			s, err := g.New()
			if err != nil || seen[s] {
				t.Fatalf("node %d: %q, %v (duplicate=%v)", node, s, err, seen[s])
			}
			seen[s] = true
		}
	}
}
