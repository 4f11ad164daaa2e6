package reader_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/redis/go-redis/v9"

	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/reader"
	"github.com/datavision/des/test/testworld"
)

// tierTail is small enough that the test containers' tails are true suffixes (offset > 0).
const tierTail = 64 << 10

// tierFixture is a bucket of containers, each holding tierFiles payloads of ~8 KiB.
type tierFixture struct {
	bucket   string
	keys     []string
	names    [][]string
	archives [][]byte
	prefix   string // Redis key prefix of this test
	redis    *redis.Client
	addr     string
}

const tierFiles = 20

func newTierFixture(t testing.TB, n int) *tierFixture {
	t.Helper()
	rs := testworld.RedisStore(t)
	f := &tierFixture{bucket: testworld.S3Store(t).NewBucket(t), prefix: rs.NewPrefix(t), addr: rs.Addr}
	f.redis = redis.NewClient(&redis.Options{Addr: rs.Addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { f.redis.Close() })
	writer := newStore(t)
	names := desNames(t, n*tierFiles, testShard, 21)
	for i := range n {
		key := shardKey(testDay.Time(), testShard, fmt.Sprintf("ctier%04d", i))
		ns := names[i*tierFiles : (i+1)*tierFiles]
		archive := putContainer(t, writer, f.bucket, key, tierPayloads(ns, uint64(1000*i)), 0)
		f.keys, f.names, f.archives = append(f.keys, key), append(f.names, ns), append(f.archives, archive)
	}
	return f
}

func tierPayloads(names []string, seed uint64) []file {
	out := make([]file, len(names))
	for i, n := range names {
		out[i] = file{name: n, data: randomBytes(8<<10+i, seed+uint64(i)), meta: `{"mime":"application/pdf"}`}
	}
	return out
}

func (f *tierFixture) payload(c, i int) []byte { return randomBytes(8<<10+i, uint64(1000*c+i)) }

// newTier is one replica's tier client on the fixture's Redis.
func (f *tierFixture) newTier(t testing.TB, opts reader.IndexTierOptions) *reader.RedisIndexTier {
	t.Helper()
	if opts.Addr == "" {
		opts.Addr = f.addr
	}
	if opts.Prefix == "" {
		opts.Prefix = f.prefix
	}
	opts.Logger = logr.Discard()
	if testing.Verbose() {
		opts.Logger = testr.NewWithInterface(t, testr.Options{Verbosity: 1})
	}
	tier, err := reader.NewRedisIndexTier(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tier.Close() })
	return tier
}

// replica is a reader Server with its own objstore.Store (its own S3 counters) and the given tier.
func (f *tierFixture) replica(t testing.TB, tier *reader.RedisIndexTier) *world {
	t.Helper()
	return newWorld(t, f.bucket, reader.Config{TailSize: tierTail, IndexTier: tier})
}

// get reads file i of container c through w and checks every byte.
func (f *tierFixture) get(t testing.TB, w *world, c, i int) {
	t.Helper()
	resp, body := do(t, "GET", w.fileURL(f.keys[c], f.names[c][i]), nil, nil)
	mustStatus(t, resp, body, 200)
	if !bytes.Equal(body, f.payload(c, i)) {
		t.Fatalf("container %d file %d: %d bytes differ from the %d stored", c, i, len(body), len(f.payload(c, i)))
	}
}

// waitStores waits until tier has written n entries (stores run in the background).
// storedEntry has a replica open container 0 from S3 and returns the tier it shared it through, the
// Redis key and the entry stored there (as stored and decoded).
func (f *tierFixture) storedEntry(t testing.TB) (*reader.RedisIndexTier, string, []byte, reader.TierEntry) {
	t.Helper()
	seed := f.newTier(t, reader.IndexTierOptions{})
	f.get(t, f.replica(t, seed), 0, 0)
	waitStores(t, seed, 1)
	rkey := seed.RedisKey(f.bucket, f.keys[0])
	good, err := f.redis.Get(context.Background(), rkey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	e, err := reader.DecodeTierEntry(good, f.bucket, f.keys[0], reader.DefaultIndexTierMaxEntry)
	if err != nil {
		t.Fatal(err)
	}
	return seed, rkey, good, e
}

func waitStores(t testing.TB, tier *reader.RedisIndexTier, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for tier.Stats().Stores < n {
		if time.Now().After(deadline) {
			t.Fatalf("tier stored %d entries, want %d; stats %+v", tier.Stats().Stores, n, tier.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestIndexTierSharedAcrossReplicas: the second replica serves containers the first one opened with
// no index request at all; its S3 requests are exactly the payload GETs. A replica without the tier
// is the baseline.
func TestIndexTierSharedAcrossReplicas(t *testing.T) {
	const n = 6
	f := newTierFixture(t, n)
	tier1 := f.newTier(t, reader.IndexTierOptions{})
	w1 := f.replica(t, tier1)
	for c := range n {
		f.get(t, w1, c, 0)
	}
	waitStores(t, tier1, n)
	if st := tier1.Stats(); st.Hits != 0 || st.Misses != n {
		t.Fatalf("first replica: %+v, want 0 hits and %d misses", st, n)
	}
	if got := w1.requests(); got != 2*n {
		t.Fatalf("first replica sent %d S3 requests, want %d (one open and one payload GET per container)", got, 2*n)
	}

	tier2 := f.newTier(t, reader.IndexTierOptions{})
	w2 := f.replica(t, tier2)
	for c := range n {
		for i := range 3 {
			f.get(t, w2, c, i)
		}
	}
	st := tier2.Stats()
	if st.Hits != n || st.Errors != 0 {
		t.Fatalf("second replica: %+v, want %d hits and no errors", st, n)
	}
	if got, want := w2.requests(), int64(3*n); got != want {
		t.Fatalf("second replica sent %d S3 requests, want %d: exactly the payload GETs", got, want)
	}
	if st.Stores != 0 {
		t.Fatalf("second replica stored %d entries; a hit must not store again", st.Stores)
	}

	w3 := f.replica(t, nil) // baseline: no tier
	for c := range n {
		for i := range 3 {
			f.get(t, w3, c, i)
		}
	}
	t.Logf("second replica, %d containers × 3 files: %d S3 requests with the tier, %d without (%.2f×); index fetches %d vs %d",
		n, w2.requests(), w3.requests(), float64(w3.requests())/float64(w2.requests()), w2.requests()-3*n, w3.requests()-3*n)

	// The stored entry carries a TTL no longer than the configured one.
	ttl, err := f.redis.TTL(context.Background(), tier1.RedisKey(f.bucket, f.keys[0])).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > reader.DefaultIndexTierTTL {
		t.Fatalf("entry TTL %s, want in (0, %s]", ttl, reader.DefaultIndexTierTTL)
	}
}

// TestIndexTierTTLAndSizeBound: a configured TTL is applied; a tail above MaxEntry is not shared.
func TestIndexTierTTLAndSizeBound(t *testing.T) {
	f := newTierFixture(t, 2)
	ctx := context.Background()
	tier := f.newTier(t, reader.IndexTierOptions{TTL: 90 * time.Second})
	w := f.replica(t, tier)
	f.get(t, w, 0, 0)
	waitStores(t, tier, 1)
	ttl, err := f.redis.TTL(ctx, tier.RedisKey(f.bucket, f.keys[0])).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > 90*time.Second {
		t.Fatalf("entry TTL %s, want in (0, 90s]", ttl)
	}

	small := f.newTier(t, reader.IndexTierOptions{MaxEntry: 1 << 10, Prefix: f.prefix + "small:"})
	ws := f.replica(t, small)
	f.get(t, ws, 1, 0)
	small.Close() // waits for any store in flight
	if st := small.Stats(); st.Stores != 0 || st.Skipped != 1 {
		t.Fatalf("tier with a 1 KiB bound: %+v, want no store and one skip", st)
	}
	if n, err := f.redis.Exists(ctx, small.RedisKey(f.bucket, f.keys[1])).Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS of the over-bound entry: %d, %v; want 0", n, err)
	}
}

// TestIndexTierRejectsBadEntries: whatever is found under a container's Redis key, a value that is
// not exactly that container's entry is ignored and counted, and the file is served byte-exact from S3.
func TestIndexTierRejectsBadEntries(t *testing.T) {
	f := newTierFixture(t, 2)
	ctx := context.Background()
	seed := f.newTier(t, reader.IndexTierOptions{})
	w := f.replica(t, seed)
	f.get(t, w, 0, 0)
	f.get(t, w, 1, 0)
	waitStores(t, seed, 2)
	keyA, keyB := seed.RedisKey(f.bucket, f.keys[0]), seed.RedisKey(f.bucket, f.keys[1])
	goodA, err := f.redis.Get(ctx, keyA).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	goodB, err := f.redis.Get(ctx, keyB).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	entryA, err := reader.DecodeTierEntry(goodA, f.bucket, f.keys[0], reader.DefaultIndexTierMaxEntry)
	if err != nil {
		t.Fatalf("the stored entry does not decode: %v", err)
	}
	if entryA.Offset <= 0 {
		t.Fatalf("entry offset %d: the test wants a true suffix", entryA.Offset)
	}
	relabel := func(mod func(e *reader.TierEntry)) []byte {
		e := entryA
		e.Data = bytes.Clone(e.Data)
		mod(&e)
		return reader.EncodeTierEntry(e)
	}
	flip := func(v []byte, at int) []byte { v = bytes.Clone(v); v[at] ^= 0x40; return v }

	cases := []struct {
		name, reason string
		value        []byte
	}{
		{"flipped data byte", "checksum", flip(goodA, len(goodA)/2)},
		{"flipped checksum byte", "checksum", flip(goodA, len(goodA)-1)},
		{"truncated", "checksum", goodA[:len(goodA)*2/3]},
		{"only the magic", "malformed", goodA[:8]},
		{"foreign: B's entry under A's key", "foreign", goodB},
		{"foreign bucket", "foreign", relabel(func(e *reader.TierEntry) { e.Bucket += "-other" })},
		{"size and offset shifted", "parse", relabel(func(e *reader.TierEntry) { e.Size += 7; e.Offset += 7 })},
		{"size does not match offset+length", "malformed", relabel(func(e *reader.TierEntry) { e.Size++ })},
		{"bytes not a container", "parse", relabel(func(e *reader.TierEntry) { e.Data = bytes.Repeat([]byte{0xA5}, len(e.Data)) })},
		{"unknown version", "version", flip(goodA, 7)},
		{"garbage", "version", []byte("definitely not an index entry")},
		{"empty", "version", []byte{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.redis.Set(ctx, keyA, tc.value, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			tier := f.newTier(t, reader.IndexTierOptions{})
			wr := f.replica(t, tier)
			for i := range 3 {
				f.get(t, wr, 0, i)
			}
			st := tier.Stats()
			if st.Hits != 0 || st.Rejected[tc.reason] != 1 {
				t.Fatalf("stats %+v, want no hit and one %q rejection", st, tc.reason)
			}
			if got := wr.requests(); got != 4 {
				t.Fatalf("%d S3 requests, want 4 (an open from S3 and 3 payload GETs)", got)
			}
			// The replica replaced the bad entry with a good one.
			waitStores(t, tier, 1)
			v, err := f.redis.Get(ctx, keyA).Bytes()
			if err != nil || !bytes.Equal(v, goodA) {
				t.Fatalf("after the open the entry is %d bytes (%v), want the %d-byte good one", len(v), err, len(goodA))
			}
		})
	}
}

// TestIndexTierRedisDown: with nothing listening, reads work from S3, every lookup and store counts an
// error, and no read waits for Redis beyond the timeout (the open costs the usual S3 requests).
func TestIndexTierRedisDown(t *testing.T) {
	f := newTierFixture(t, 3)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	tier := f.newTier(t, reader.IndexTierOptions{Addr: closed, Timeout: 100 * time.Millisecond})
	w := f.replica(t, tier)
	for c := range 3 {
		f.get(t, w, c, 0)
	}
	tier.Close()
	st := tier.Stats()
	if st.Hits != 0 || st.Misses != 3 || st.Errors != 6 {
		t.Fatalf("stats %+v, want 3 misses and 6 errors (3 lookups, 3 stores)", st)
	}
	if got := w.requests(); got != 6 {
		t.Fatalf("%d S3 requests, want 6", got)
	}
}

// TestIndexTierMetrics: the tier's counters are on /metrics.
func TestIndexTierMetrics(t *testing.T) {
	f := newTierFixture(t, 1)
	tier := f.newTier(t, reader.IndexTierOptions{})
	w := f.replica(t, tier)
	f.get(t, w, 0, 0)
	waitStores(t, tier, 1)
	resp, body := do(t, "GET", w.http.URL+"/metrics", nil, nil)
	mustStatus(t, resp, body, 200)
	for _, want := range []string{
		"des_reader_index_tier_hits_total 0", "des_reader_index_tier_misses_total 1",
		"des_reader_index_tier_stores_total 1", "des_reader_index_tier_errors_total 0",
		`des_reader_index_tier_rejected_total{reason="checksum"} 0`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestIndexTierWrongETag: an entry with a valid envelope but another ETag cannot be told from a true
// one without asking S3, so it is used; the payload GET is pinned to that ETag, S3 refuses it (412), the
// request fails without a byte of payload, and the container is dropped from memory and from Redis:
// the next request opens it from S3 and is served byte-exact.
func TestIndexTierWrongETag(t *testing.T) {
	f := newTierFixture(t, 1)
	ctx := context.Background()
	_, rkey, good, e := f.storedEntry(t)
	e.ETag = `"0123456789abcdef0123456789abcdef"`
	if err := f.redis.Set(ctx, rkey, reader.EncodeTierEntry(e), time.Minute).Err(); err != nil {
		t.Fatal(err)
	}

	tier := f.newTier(t, reader.IndexTierOptions{})
	w := f.replica(t, tier)
	resp, body := do(t, "GET", w.fileURL(f.keys[0], f.names[0][0]), nil, nil)
	mustStatus(t, resp, body, 502)
	if bytes.Contains(body, f.payload(0, 0)[:64]) {
		t.Fatal("the failed response carries payload bytes")
	}
	if st := tier.Stats(); st.Hits != 1 || st.Rejected["changed"] != 1 {
		t.Fatalf("stats %+v, want the hit and one \"changed\" rejection", st)
	}
	for i := range 3 {
		f.get(t, w, 0, i)
	}
	waitStores(t, tier, 1)
	if v, err := f.redis.Get(ctx, rkey).Bytes(); err != nil || !bytes.Equal(v, good) {
		t.Fatalf("after the reopen the entry is %d bytes (%v), want the %d-byte good one", len(v), err, len(good))
	}
}

// TestIndexTierRedisHung: a Redis that accepts connections but never answers (the real server, frozen
// with SIGSTOP) costs each open at most the tier's timeout; reads go on from S3, the failures are
// counted, and the tier works again once Redis does.
func TestIndexTierRedisHung(t *testing.T) {
	f := newTierFixture(t, 3)
	rs, err := testworld.StartRedis(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Close)
	const timeout = 100 * time.Millisecond
	tier := f.newTier(t, reader.IndexTierOptions{Addr: rs.Addr, Timeout: timeout})
	w := f.replica(t, tier)
	if err := rs.Pause(); err != nil {
		t.Fatal(err)
	}
	for c := range 2 {
		start := time.Now()
		f.get(t, w, c, 0)
		// Not a speed check: without the bound a hung Redis would hold the open for go-redis's 3 s read
		// timeout or until the open's own minute; 2 s leaves 20× the bound for a loaded machine.
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("read with Redis hung took %s; the tier's bound is %s", d, timeout)
		}
	}
	if err := rs.Resume(); err != nil {
		t.Fatal(err)
	}
	st := tier.Stats()
	if st.Hits != 0 || st.Misses != 2 || st.Errors < 2 {
		t.Fatalf("stats with Redis hung %+v, want 2 misses and at least the 2 lookups failed", st)
	}
	// Working again: the next open is shared.
	f.get(t, w, 2, 0)
	c := redis.NewClient(&redis.Options{Addr: rs.Addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	rkey := tier.RedisKey(f.bucket, f.keys[2])
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if n, err := c.Exists(context.Background(), rkey).Result(); err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the open after Resume was not stored; stats %+v", tier.Stats())
		}
	}
}

// TestIndexTierPartialEntry: an entry holding only index and footer (as a replica with a smaller tail
// and no room for the meta might share) is still used: what it lacks (the meta region) is read from S3,
// in one request, through the same reader.
func TestIndexTierPartialEntry(t *testing.T) {
	f := newTierFixture(t, 1)
	ctx := context.Background()
	archive := f.archives[0]
	d, err := desformat.NewReader(bytes.NewReader(archive), int64(len(archive)), desformat.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ft := d.Footer()
	if ft.MetaStart >= ft.IndexStart {
		t.Fatalf("footer %+v: want a meta region before the index", ft)
	}
	_, rkey, _, e := f.storedEntry(t)
	cut := int64(ft.IndexStart) - e.Offset
	e.Offset, e.Data = int64(ft.IndexStart), bytes.Clone(e.Data[cut:])
	if err := f.redis.Set(ctx, rkey, reader.EncodeTierEntry(e), time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	tier := f.newTier(t, reader.IndexTierOptions{})
	w := f.replica(t, tier)
	for i := range 3 {
		f.get(t, w, 0, i)
	}
	if st := tier.Stats(); st.Hits != 1 || st.Misses != 0 {
		t.Fatalf("stats %+v, want one hit", st)
	}
	if got := w.requests(); got != 4 {
		t.Fatalf("%d S3 requests, want 4: the meta region, then 3 payload GETs", got)
	}
}
