package naming

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"
)

// Config configures a Generator.
type Config struct {
	// Prefix of every name; DefaultPrefix when empty.
	Prefix string
	// Node id, 0..255. Two generators must never share a node id at the same time.
	Node int
	// Now is the clock; time.Now when nil. Tests inject a fake clock.
	Now func() time.Time
	// After, if set, makes every name's millisecond strictly later than After. A process taking over a node
	// id from another (the assignment service, on acquiring a Lease) sets it to the last millisecond the
	// previous holder may have used, so that a clock behind the previous holder's cannot reissue its names.
	After time.Time
	// Sleep waits when a millisecond's 256 sequence numbers are used up; when nil, a sleep that spins for its
	// last stretch, because time.Sleep overshoots by tens of microseconds per millisecond. It is called
	// with the generator's lock held, so a fake Sleep must not call back into the generator.
	Sleep func(time.Duration)
}

// Generator issues unique names for one node. It is safe for concurrent use. See the package documentation
// for the uniqueness rules and the behaviour when the clock steps back.
type Generator struct {
	prefix string
	node   uint8
	now    func() time.Time
	sleep  func(time.Duration)

	mu     sync.Mutex
	lastMs int64 // millisecond of the last name issued; never decreases
	seq    uint8 // sequence of the last name issued in lastMs
	// Cache of the UTC day of lastMs: computing a civil date per name would cost more than the formatting.
	day              Day
	dayStart, dayEnd int64 // [dayStart, dayEnd) in Unix ms
}

// NewGenerator validates cfg and returns a generator.
func NewGenerator(cfg Config) (*Generator, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if err := checkPrefix(cfg.Prefix); err != nil {
		return nil, err
	}
	if cfg.Node < 0 || cfg.Node > 255 {
		return nil, fmt.Errorf("naming: node id %d out of range 0..255", cfg.Node)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepPrecise
	}
	g := &Generator{
		prefix: cfg.Prefix,
		node:   uint8(cfg.Node),
		now:    cfg.Now,
		sleep:  cfg.Sleep,
		lastMs: math.MinInt64, // so that the first clock reading always starts a fresh millisecond
	}
	if !cfg.After.IsZero() {
		// Pretend After's millisecond is used up: the first name then takes a later millisecond.
		g.lastMs, g.seq = cfg.After.UnixMilli(), math.MaxUint8
	}
	return g, nil
}

// Prefix returns the prefix of the names g issues.
func (g *Generator) Prefix() string { return g.prefix }

// Node returns g's node id.
func (g *Generator) Node() uint8 { return g.node }

// Next issues a name whose day is the UTC day of its generation time. It fails only if the clock is outside
// the years 0000..9999, which a v1 name cannot express (the sequence number is used up regardless).
func (g *Generator) Next() (Name, error) {
	ms, seq, day := g.reserve(true)
	if !day.Valid() {
		return Name{}, fmt.Errorf("naming: clock reads %s, outside the years a name can hold",
			time.UnixMilli(ms).UTC().Format(time.RFC3339))
	}
	return g.name(ms, seq, day), nil
}

// NextForDay issues a name for an explicit day (the assignment service names files for the day a client asks
// for). Time bits, node and sequence come from the generator exactly as for Next.
func (g *Generator) NextForDay(day Day) (Name, error) {
	if !day.Valid() {
		return Name{}, fmt.Errorf("naming: invalid day %04d-%02d-%02d", day.Year, int(day.Month), day.Day)
	}
	ms, seq, _ := g.reserve(false)
	return g.name(ms, seq, day), nil
}

// New is Next formatted as a string.
func (g *Generator) New() (string, error) {
	n, err := g.Next()
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

// NewForDay is NextForDay formatted as a string.
func (g *Generator) NewForDay(day Day) (string, error) {
	n, err := g.NextForDay(day)
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

func (g *Generator) name(ms int64, seq uint8, day Day) Name {
	return Name{Prefix: g.prefix, Day: day, TimeBits: uint32(ms), Node: g.node, Seq: seq}
}

// reserve takes the next (millisecond, sequence) pair and, if wantDay, the UTC day of that millisecond.
func (g *Generator) reserve(wantDay bool) (ms int64, seq uint8, day Day) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.now()
	switch now := t.UnixMilli(); {
	case now > g.lastMs:
		g.lastMs, g.seq = now, 0
	case g.seq < math.MaxUint8:
		// Same millisecond, or the clock stepped back: keep numbering within the last millisecond issued.
		g.seq++
	default:
		g.lastMs, g.seq = g.nextMilli(t), 0
	}
	if wantDay {
		day = g.dayOf(g.lastMs)
	}
	return g.lastMs, g.seq, day
}

// nextMilli is called when lastMs has issued all 256 sequence numbers; it returns a millisecond after lastMs.
// It always sleeps first, so a node never issues more than 256 names per millisecond of real time.
func (g *Generator) nextMilli(t time.Time) int64 {
	wait := time.Millisecond // the clock is behind lastMs: it stepped back
	if t.UnixMilli() == g.lastMs {
		wait = untilNextMilli(t)
	}
	g.sleep(wait)
	if ms := g.now().UnixMilli(); ms > g.lastMs {
		return ms
	}
	// The clock is still not past lastMs: it stepped back, is frozen or is coarser than a millisecond.
	// Waiting for it could block for as long as the step, so run ahead of it by one millisecond instead;
	// because of the sleep above the lead does not grow faster than real time passes.
	return g.lastMs + 1
}

// untilNextMilli is the time from t to the start of the next millisecond.
func untilNextMilli(t time.Time) time.Duration {
	return time.Millisecond - time.Duration(t.Nanosecond()%int(time.Millisecond))
}

// dayOf returns the UTC day of ms, recomputing the cached day only when ms leaves it.
func (g *Generator) dayOf(ms int64) Day {
	if ms < g.dayStart || ms >= g.dayEnd {
		g.day = DayOf(time.UnixMilli(ms))
		g.dayStart = g.day.Time().UnixMilli()
		g.dayEnd = g.dayStart + msPerDay
	}
	return g.day
}

// spinFor is the tail of a wait spent yielding in a loop rather than in time.Sleep: the timer wakes a
// goroutine up to ~100µs late, which at one wait per millisecond would cost a tenth of a node's throughput.
const spinFor = 100 * time.Microsecond

// sleepPrecise waits for d, sleeping for most of it and yielding the processor in a loop for the rest.
func sleepPrecise(d time.Duration) {
	start := time.Now()
	if d > spinFor {
		time.Sleep(d - spinFor)
	}
	for time.Since(start) < d {
		runtime.Gosched()
	}
}
