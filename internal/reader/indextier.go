package reader

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/datavision/des/internal/objstore"
)

// Defaults of the shared index tier.
const (
	DefaultIndexTierPrefix    = "des:idx:"
	DefaultIndexTierTTL       = 24 * time.Hour
	DefaultIndexTierMaxEntry  = 64 << 20
	DefaultIndexTierTimeout   = 250 * time.Millisecond
	DefaultIndexTierMaxStores = 4
	// Stores run in the background, so their bound only keeps a hung Redis from holding a store slot
	// for long; it must cover sending the largest entry.
	DefaultIndexTierStoreTimeout = 10 * time.Second
)

// Reasons an entry found in the tier is ignored (the label of des_reader_index_tier_rejected_total).
const (
	rejectChecksum  = "checksum"  // the envelope checksum does not match: a flipped or torn value
	rejectForeign   = "foreign"   // the envelope names another bucket or key
	rejectVersion   = "version"   // unknown magic or format version
	rejectMalformed = "malformed" // truncated, inconsistent lengths, over the size bound
	rejectParse     = "parse"     // the bytes do not open as a container
	// rejectChanged: S3 refused a read pinned to the entry's ETag (412), so the entry's identity is not
	// the object's; only a lying writer makes such an entry, and it costs one failed request.
	rejectChanged = "changed"
)

var rejectReasons = []string{rejectChecksum, rejectForeign, rejectVersion, rejectMalformed, rejectParse, rejectChanged}

// errTierEntry is the sentinel of every rejected entry; the TierEntryError says why.
var errTierEntry = errors.New("index tier entry rejected")

// TierEntryError explains why an entry read from the tier was ignored.
type TierEntryError struct {
	Reason string
	Detail string
}

func (e *TierEntryError) Error() string {
	return fmt.Sprintf("%v (%s): %s", errTierEntry, e.Reason, e.Detail)
}

// Is makes every TierEntryError match errTierEntry.
func (e *TierEntryError) Is(target error) bool { return target == errTierEntry }

func rejected(reason, format string, args ...any) error {
	return &TierEntryError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// IndexTierOptions configures a RedisIndexTier.
type IndexTierOptions struct {
	// Addr is the Redis server, host:port. Required.
	Addr string
	// Password (may be empty) and DB select the Redis database.
	Password string
	DB       int
	// Prefix starts every Redis key (DefaultIndexTierPrefix when empty).
	Prefix string
	// TTL is set on every entry stored (DefaultIndexTierTTL when 0).
	TTL time.Duration
	// MaxEntry bounds the tail bytes of one entry: larger tails are not shared (DefaultIndexTierMaxEntry
	// when 0).
	MaxEntry int64
	// Timeout bounds one lookup (dial, GET and the transfer of the entry), so that a slow or absent
	// Redis costs an open at most this much before it goes on from S3 (DefaultIndexTierTimeout when
	// 0). An entry that takes longer to arrive is a counted error: size it for the largest entries.
	Timeout time.Duration
	// StoreTimeout bounds one background store (DefaultIndexTierStoreTimeout when 0).
	StoreTimeout time.Duration
	// MaxStores bounds the stores in flight; opens beyond it are not shared (DefaultIndexTierMaxStores
	// when 0).
	MaxStores int
	// Logger receives debug lines about ignored entries and failed commands.
	Logger logr.Logger
}

// String describes the options without the password.
func (o IndexTierOptions) String() string {
	return fmt.Sprintf("redis %s db %d prefix %q ttl %s max entry %d timeout %s store timeout %s password %t",
		o.Addr, o.DB, o.Prefix, o.TTL, o.MaxEntry, o.Timeout, o.StoreTimeout, o.Password != "")
}

// MarshalLog keeps the password out of structured logs too.
func (o IndexTierOptions) MarshalLog() any { return o.String() }

// RedisLogger routes go-redis's own log lines (it has one process-wide logger: install it with
// redis.SetLogger from main) to log at debug level, instead of plain lines on stderr.
type RedisLogger struct{ Log logr.Logger }

// Printf is go-redis's logging interface.
func (l RedisLogger) Printf(_ context.Context, format string, v ...any) {
	l.Log.V(1).Info(fmt.Sprintf(format, v...))
}

// IndexTierStats are the tier's counters.
type IndexTierStats struct {
	Hits     int64 // opens served from the tier, with no request to S3 for the index
	Misses   int64 // lookups that found nothing
	Stores   int64 // entries written
	Errors   int64 // failed Redis commands (down, timeout)
	Skipped  int64 // stores not attempted: tail over MaxEntry, not contiguous, or too many in flight
	Rejected map[string]int64
}

// RedisIndexTier shares the bytes a container open fetched (footer, index, usually the meta) between
// reader replicas through Redis, so N replicas open each container from S3 once. Entries are checked
// on load and ignored when anything is off; the read then goes to S3 as if the tier were absent.
type RedisIndexTier struct {
	client *redis.Client // lookups and deletes, bounded by Timeout
	writer *redis.Client // background stores, bounded by StoreTimeout
	opts   IndexTierOptions
	log    logr.Logger

	sem      chan struct{} // bounds the stores in flight
	mu       sync.Mutex
	inflight map[string]bool // Redis keys being stored
	wg       sync.WaitGroup

	hits, misses, stores, errs, skipped atomic.Int64
	rejects                             map[string]*atomic.Int64
}

// NewRedisIndexTier makes a tier on opts.Addr. It sends nothing until used; a Redis that is down makes
// every lookup a counted error and a miss.
func NewRedisIndexTier(opts IndexTierOptions) (*RedisIndexTier, error) {
	if opts.Addr == "" {
		return nil, errors.New("index tier: no Redis address")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultIndexTierPrefix
	}
	setDefault(&opts.TTL, DefaultIndexTierTTL)
	setDefault(&opts.MaxEntry, DefaultIndexTierMaxEntry)
	setDefault(&opts.Timeout, DefaultIndexTierTimeout)
	setDefault(&opts.MaxStores, DefaultIndexTierMaxStores)
	setDefault(&opts.StoreTimeout, DefaultIndexTierStoreTimeout)
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	t := &RedisIndexTier{
		client: newRedisClient(opts, opts.Timeout, 16), writer: newRedisClient(opts, opts.StoreTimeout, opts.MaxStores),
		opts: opts, log: opts.Logger.WithName("index-tier"),
		sem: make(chan struct{}, opts.MaxStores), inflight: map[string]bool{}, rejects: map[string]*atomic.Int64{},
	}
	for _, r := range rejectReasons {
		t.rejects[r] = new(atomic.Int64)
	}
	return t, nil
}

// newRedisClient makes a client whose every step (pool wait, dial, write, read) is bounded by timeout.
func newRedisClient(opts IndexTierOptions, timeout time.Duration, poolSize int) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: opts.Addr, Password: opts.Password, DB: opts.DB,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout,
		// Waiting for a pooled connection counts against the same bound (go-redis would wait a second
		// longer than ReadTimeout by default).
		PoolTimeout: timeout, PoolSize: poolSize,
		// One attempt for commands and dials: a retry would multiply the time a down Redis costs a read
		// (go-redis dials 5 times, 100 ms apart, by default).
		MaxRetries: -1, DialerRetries: 1,
		// Plain RESP2 without the HELLO handshake and client-side identity: fewer round trips.
		Protocol: 2, DisableIdentity: true,
	})
}

// Close waits for the stores in flight and closes the connections.
func (t *RedisIndexTier) Close() error {
	t.wg.Wait()
	return errors.Join(t.client.Close(), t.writer.Close())
}

// Stats returns the counters.
func (t *RedisIndexTier) Stats() IndexTierStats {
	s := IndexTierStats{
		Hits: t.hits.Load(), Misses: t.misses.Load(), Stores: t.stores.Load(), Errors: t.errs.Load(),
		Skipped: t.skipped.Load(), Rejected: map[string]int64{},
	}
	for r, n := range t.rejects {
		s.Rejected[r] = n.Load()
	}
	return s
}

// RedisKey is where the entry of bucket/key lives: the bucket is hashed in so two archives sharing one
// Redis never collide, and the hash keeps keys short and free of odd bytes.
func (t *RedisIndexTier) RedisKey(bucket, key string) string {
	h := sha256.Sum256([]byte(bucket + "\x00" + key))
	return t.opts.Prefix + hex.EncodeToString(h[:])
}

// tierEntry is what an open fetched: the object's bytes [Offset, Size), with the object's identity.
type tierEntry struct {
	Bucket, Key string
	Size        int64
	ETag        string
	Offset      int64
	Data        []byte
}

// The envelope: magic, version, then length-prefixed fields, then a CRC-32C (Castagnoli) over all
// the bytes before it. Container bytes check themselves too (footer CRC over the index, payload CRCs
// in the meta); the envelope catches what those cannot: a torn or foreign value, a wrong size/offset.
const (
	tierMagic   = "DESIDX\x00"
	tierVersion = 1
)

// castagnoli checksums a Redis tier entry (its own framing, not a payload: see desformat.PayloadCRC).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeTierEntry(e tierEntry) []byte {
	var b bytes.Buffer
	b.Grow(len(tierMagic) + 64 + len(e.Bucket) + len(e.Key) + len(e.ETag) + len(e.Data))
	b.WriteString(tierMagic)
	b.WriteByte(tierVersion)
	for _, s := range []string{e.Bucket, e.Key, e.ETag} {
		b.Write(binary.AppendUvarint(nil, uint64(len(s))))
		b.WriteString(s)
	}
	b.Write(binary.BigEndian.AppendUint64(nil, uint64(e.Size)))
	b.Write(binary.BigEndian.AppendUint64(nil, uint64(e.Offset)))
	b.Write(binary.BigEndian.AppendUint64(nil, uint64(len(e.Data))))
	b.Write(e.Data)
	b.Write(binary.BigEndian.AppendUint32(nil, crc32.Checksum(b.Bytes(), castagnoli)))
	return b.Bytes()
}

// decodeTierEntry checks v completely and returns the entry for bucket/key, or a *TierEntryError.
// The returned Data aliases v.
func decodeTierEntry(v []byte, bucket, key string, maxEntry int64) (tierEntry, error) {
	if len(v) < len(tierMagic)+1 || string(v[:len(tierMagic)]) != tierMagic {
		return tierEntry{}, rejected(rejectVersion, "no entry magic")
	}
	if v[len(tierMagic)] != tierVersion {
		return tierEntry{}, rejected(rejectVersion, "format version %d", v[len(tierMagic)])
	}
	if len(v) < len(tierMagic)+1+4 {
		return tierEntry{}, rejected(rejectMalformed, "%d bytes", len(v))
	}
	body, sum := v[:len(v)-4], binary.BigEndian.Uint32(v[len(v)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return tierEntry{}, rejected(rejectChecksum, "crc32c %08x, entry says %08x", got, sum)
	}
	d := entryDecoder{b: body[len(tierMagic)+1:]}
	e := tierEntry{Bucket: d.str(), Key: d.str(), ETag: d.str()}
	e.Size, e.Offset = d.int(), d.int()
	n := d.int()
	e.Data = d.bytes(n)
	switch {
	case d.err != nil:
		return tierEntry{}, rejected(rejectMalformed, "%v", d.err)
	case len(d.b) != 0:
		return tierEntry{}, rejected(rejectMalformed, "%d trailing bytes", len(d.b))
	case e.Bucket != bucket || e.Key != key:
		return tierEntry{}, rejected(rejectForeign, "entry is for s3://%s/%s", e.Bucket, e.Key)
	case e.Offset < 0 || e.Size < 0 || e.Offset+int64(len(e.Data)) != e.Size:
		return tierEntry{}, rejected(rejectMalformed, "bytes [%d,+%d) do not end the %d-byte object", e.Offset, len(e.Data), e.Size)
	case int64(len(e.Data)) > maxEntry:
		return tierEntry{}, rejected(rejectMalformed, "%d bytes exceed the %d-byte entry bound", len(e.Data), maxEntry)
	}
	return e, nil
}

// entryDecoder reads the envelope's fields; the first error sticks.
type entryDecoder struct {
	b   []byte
	err error
}

func (d *entryDecoder) str() string {
	if d.err != nil {
		return ""
	}
	n, k := binary.Uvarint(d.b)
	if k <= 0 || n > uint64(len(d.b)-k) {
		d.err = errors.New("truncated string field")
		return ""
	}
	s := string(d.b[k : k+int(n)])
	d.b = d.b[k+int(n):]
	return s
}

func (d *entryDecoder) int() int64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.err = errors.New("truncated integer field")
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	if v > 1<<62 {
		d.err = fmt.Errorf("integer field %d out of range", v)
		return 0
	}
	return int64(v)
}

func (d *entryDecoder) bytes(n int64) []byte {
	if d.err != nil {
		return nil
	}
	if n > int64(len(d.b)) {
		d.err = fmt.Errorf("data of %d bytes, %d present", n, len(d.b))
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

// entryReaderAt serves [Offset, Size) from the entry and anything before it from the object.
type entryReaderAt struct {
	e   tierEntry
	obj *objstore.ObjectReader
}

func (r *entryReaderAt) Size() int64  { return r.e.Size }
func (r *entryReaderAt) ETag() string { return r.e.ETag }

func (r *entryReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("index tier: negative offset %d", off)
	}
	if off >= r.e.Size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.e.Size-off))
	dst := p[:n]
	if end := off + int64(n); end > r.e.Offset {
		from := max(off, r.e.Offset)
		copy(dst[from-off:], r.e.Data[from-r.e.Offset:end-r.e.Offset])
		dst = dst[:from-off]
	}
	if len(dst) > 0 {
		if _, err := r.obj.ReadAt(dst, off); err != nil {
			return 0, err
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// recordingReaderAt keeps a copy of what an open reads, up to limit bytes, so the tail can be shared
// after the open succeeded without fetching it again.
type recordingReaderAt struct {
	tailSource
	limit int64

	mu     sync.Mutex
	pieces []piece
	total  int64
	over   bool
}

type piece struct {
	off  int64
	data []byte
}

func (r *recordingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.tailSource.ReadAt(p, off)
	if n > 0 {
		r.mu.Lock()
		// Reads may overlap (the reread that reaches the meta repeats the tail), so the copies may
		// reach twice the entry bound before the span (checked exactly) could exceed it.
		if r.total += int64(n); r.total > 2*r.limit {
			r.over, r.pieces = true, nil
		} else if !r.over {
			r.pieces = append(r.pieces, piece{off, bytes.Clone(p[:n])})
		}
		r.mu.Unlock()
	}
	return n, err
}

// span joins the recorded reads into the bytes [off, size). ok is false when they exceeded the
// limit or leave a gap (the entry must be one contiguous suffix of the object).
func (r *recordingReaderAt) span(size int64) (off int64, data []byte, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.over || len(r.pieces) == 0 {
		return 0, nil, false
	}
	ps := append([]piece(nil), r.pieces...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].off < ps[j].off })
	off = ps[0].off
	if size-off > r.limit {
		return 0, nil, false
	}
	out := make([]byte, 0, size-off)
	for _, p := range ps {
		end := p.off + int64(len(p.data))
		cur := off + int64(len(out))
		if p.off > cur {
			return 0, nil, false
		}
		if end > cur {
			out = append(out, p.data[cur-p.off:]...)
		}
	}
	if off+int64(len(out)) != size {
		return 0, nil, false
	}
	return off, out, true
}

// load returns the entry of bucket/key, or false when there is none usable (counted and logged).
func (t *RedisIndexTier) load(ctx context.Context, bucket, key string) (tierEntry, bool) {
	ctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	v, err := t.client.Get(ctx, t.RedisKey(bucket, key)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		t.misses.Add(1)
		return tierEntry{}, false
	case err != nil:
		t.errs.Add(1)
		t.misses.Add(1)
		t.log.V(1).Info("index tier lookup failed; opening from S3", "key", key, "error", err.Error())
		return tierEntry{}, false
	}
	e, err := decodeTierEntry(v, bucket, key, t.opts.MaxEntry)
	if err != nil {
		t.reject(key, err)
		return tierEntry{}, false
	}
	return e, true
}

// reject counts an ignored entry. It is not deleted: the open from S3 that follows overwrites it.
func (t *RedisIndexTier) reject(key string, err error) {
	reason := rejectParse
	var te *TierEntryError
	if errors.As(err, &te) {
		reason = te.Reason
	}
	t.rejects[reason].Add(1)
	t.misses.Add(1)
	t.log.V(1).Info("index tier entry ignored; opening from S3", "key", key, "reason", reason, "error", err.Error())
}

// open builds the container from the tier's entry, with no request to S3 when the entry holds the
// footer, index and meta. nil means "open from S3": no entry, Redis unreachable, or a bad entry.
func (t *RedisIndexTier) open(ctx, lifetime context.Context, store *objstore.Store, bucket, key string, maxMeta int64) *container {
	if t == nil {
		return nil
	}
	e, ok := t.load(ctx, bucket, key)
	if !ok {
		return nil
	}
	src := &entryReaderAt{e: e, obj: store.NewObjectReader(ctx, bucket, key, e.Size, e.ETag)}
	// The tail read of the parse is exactly the entry, so it comes from memory.
	c, err := parseContainer(ctx, lifetime, store, bucket, key, src, int64(len(e.Data)), maxMeta)
	if err != nil {
		t.reject(key, rejected(rejectParse, "%v", err))
		return nil
	}
	t.hits.Add(1)
	return c
}

// forget deletes the entry of bucket/key after S3 proved its size or ETag wrong (ErrChanged on a read
// pinned to them); the next open reads the container from S3 and stores a true entry.
func (t *RedisIndexTier) forget(bucket, key string) {
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.opts.Timeout)
	defer cancel()
	n, err := t.client.Del(ctx, t.RedisKey(bucket, key)).Result()
	switch {
	case err != nil:
		t.errs.Add(1)
		t.log.V(1).Info("index tier delete failed", "key", key, "error", err.Error())
	case n > 0:
		t.rejects[rejectChanged].Add(1)
		t.log.V(1).Info("index tier entry deleted: the object is not the one it describes", "key", key)
	}
}

// forgetChanged drops the container a read failed on with ErrChanged (412 on If-Match) from the
// memory cache and the shared tier: the size and ETag it was opened with are not the object's (a
// lying tier entry, or an object rewritten in place), so the next request opens it again from S3
// instead of failing for as long as the container stays cached.
func (s *Server) forgetChanged(err error) {
	var se *objstore.Error
	if !errors.Is(err, objstore.ErrChanged) || !errors.As(err, &se) || se.Bucket != s.cfg.Bucket {
		return
	}
	s.cache.drop(se.Key)
	s.cfg.IndexTier.forget(se.Bucket, se.Key)
}

// recorder wraps the reader an open from S3 parses through, or returns src itself when there is no
// tier (nothing recorded, nothing to store).
func (t *RedisIndexTier) recorder(src tailSource) (tailSource, *recordingReaderAt) {
	if t == nil {
		return src, nil
	}
	rec := &recordingReaderAt{tailSource: src, limit: t.opts.MaxEntry}
	return rec, rec
}

// store shares what an open from S3 read, in the background: at most one store per key and MaxStores
// overall are in flight; beyond that the open is simply not shared.
func (t *RedisIndexTier) store(bucket, key string, rec *recordingReaderAt) {
	if t == nil || rec == nil {
		return
	}
	off, data, ok := rec.span(rec.Size())
	if !ok {
		t.skipped.Add(1)
		return
	}
	rkey := t.RedisKey(bucket, key)
	t.mu.Lock()
	if t.inflight[rkey] {
		t.mu.Unlock()
		t.skipped.Add(1)
		return
	}
	select {
	case t.sem <- struct{}{}:
	default:
		t.mu.Unlock()
		t.skipped.Add(1)
		return
	}
	t.inflight[rkey] = true
	t.wg.Add(1)
	t.mu.Unlock()
	value := encodeTierEntry(tierEntry{Bucket: bucket, Key: key, Size: rec.Size(), ETag: rec.ETag(), Offset: off, Data: data})
	go func() {
		defer t.wg.Done()
		defer func() {
			t.mu.Lock()
			delete(t.inflight, rkey)
			t.mu.Unlock()
			<-t.sem
		}()
		ctx, cancel := context.WithTimeout(context.Background(), t.opts.StoreTimeout)
		defer cancel()
		if err := t.writer.Set(ctx, rkey, value, t.opts.TTL).Err(); err != nil {
			t.errs.Add(1)
			t.log.V(1).Info("index tier store failed", "key", key, "error", err.Error())
			return
		}
		t.stores.Add(1)
	}()
}

// collectors are the tier's metrics, des_reader_index_tier_*.
func (t *RedisIndexTier) collectors() []prometheus.Collector {
	c := func(a *atomic.Int64) func() float64 { return func() float64 { return float64(a.Load()) } }
	cs := []prometheus.Collector{
		counterFunc("index_tier_hits_total", "Container opens served from the shared index tier, with no index request to S3.", c(&t.hits)),
		counterFunc("index_tier_misses_total", "Container opens the shared index tier could not serve (no entry, Redis error, entry ignored).", c(&t.misses)),
		counterFunc("index_tier_stores_total", "Entries written to the shared index tier.", c(&t.stores)),
		counterFunc("index_tier_errors_total", "Failed Redis commands (down, timeout); the read went on from S3.", c(&t.errs)),
		counterFunc("index_tier_skipped_total", "Opens not shared: tail over the entry bound, or too many stores in flight.", c(&t.skipped)),
	}
	for _, r := range rejectReasons {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "index_tier_rejected_total",
			Help:        "Entries of the shared index tier ignored, by reason (checksum, foreign, version, malformed, parse; changed: deleted after S3 refused its ETag).",
			ConstLabels: prometheus.Labels{"reason": r},
		}, c(t.rejects[r])))
	}
	return cs
}
