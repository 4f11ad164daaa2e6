package desformat

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Reader defaults.
const (
	// DefaultTailSize is how much of the archive's end NewReader fetches in
	// its first read: enough for the footer and the index of a few hundred
	// entries, so small archives open with one request.
	DefaultTailSize = 64 << 10
	// DefaultMaxIndexSize bounds the index a Reader accepts; a corrupt
	// footer claiming more is rejected before anything is allocated.
	DefaultMaxIndexSize = 1 << 30
	// maxPrefetchMeta bounds the meta region PrefetchMeta pulls in.
	maxPrefetchMeta = 256 << 20
)

// ReaderOptions configures NewReader. The zero value is ready to use.
type ReaderOptions struct {
	// TailSize is the size of the first read from the end of the archive
	// (DefaultTailSize if 0, at least FooterSize).
	TailSize int64
	// PrefetchMeta makes the index read (when one is needed beyond the
	// tail) start at the meta region, so later Meta/Open calls need no
	// extra read. Useful for remote archives when many files will be read.
	PrefetchMeta bool
	// MaxPrefetch bounds the meta region PrefetchMeta pulls in (256 MiB if
	// 0); with more meta only the index is read.
	MaxPrefetch int64
	// MaxIndexSize rejects larger indexes (DefaultMaxIndexSize if 0).
	MaxIndexSize int64
	// External resolves external payloads (nil: opening them fails).
	External ExternalStore
}

// ErrNoExternalStore is returned when opening an external payload on a
// Reader without an external store.
var ErrNoExternalStore = errors.New("desformat: payload is external and no external store is configured")

// Reader reads an archive through an io.ReaderAt. It is safe for
// concurrent use if the io.ReaderAt is.
type Reader struct {
	ra     io.ReaderAt
	size   int64
	footer Footer
	idx    *index // compact index: entries in index order, duplicates included, and the name table
	ext    ExternalStore
	// indexShared says idx.b aliases cache (the index was in the tail), so its bytes count once.
	indexShared bool

	// cache is a byte range already fetched while opening (the tail, or
	// the index plus prefetched meta); meta reads inside it are free.
	cache    []byte
	cacheOff int64
}

// NewReader opens the archive of the given size behind ra. It reads the
// tail once (and the index once more if the tail did not cover it),
// validates footer and index, and builds the name table.
func NewReader(ra io.ReaderAt, size int64, opts ReaderOptions) (*Reader, error) {
	opts = opts.withDefaults()
	if size < FooterSize {
		return nil, corrupt(RegionFooter, "archive is %d bytes, too small for a %d-byte footer", size, FooterSize)
	}
	tailLen := min(size, opts.TailSize)
	tail := make([]byte, tailLen)
	if err := readFull(ra, tail, size-tailLen); err != nil {
		return nil, fmt.Errorf("desformat: read tail: %w", err)
	}
	footerBytes := tail[tailLen-FooterSize:]
	f, err := parseFooter(footerBytes)
	if err != nil {
		return nil, err
	}
	if err := f.validate(size); err != nil {
		return nil, err
	}
	if f.IndexLength > uint64(opts.MaxIndexSize) {
		return nil, corrupt(RegionFooter, "index of %d bytes exceeds the %d-byte limit", f.IndexLength, opts.MaxIndexSize)
	}
	r := &Reader{ra: ra, size: size, footer: f, ext: opts.External, cache: tail, cacheOff: size - tailLen}
	indexBytes, err := r.loadIndex(opts.PrefetchMeta, opts.MaxPrefetch)
	if err != nil {
		return nil, err
	}
	if f.HasIndexChecksum() {
		if got := indexChecksum(indexBytes, footerBytes); got != f.IndexChecksum() {
			return nil, &CorruptError{Region: RegionIndex, Err: ErrChecksum,
				Reason: fmt.Sprintf("index crc32c %08x, footer says %08x", got, f.IndexChecksum())}
		}
	}
	if r.idx, err = buildIndex(indexBytes, &r.footer); err != nil {
		return nil, err
	}
	return r, nil
}

func (o ReaderOptions) withDefaults() ReaderOptions {
	if o.TailSize <= 0 {
		o.TailSize = DefaultTailSize
	}
	o.TailSize = max(o.TailSize, FooterSize)
	if o.MaxIndexSize <= 0 {
		o.MaxIndexSize = DefaultMaxIndexSize
	}
	if o.MaxPrefetch <= 0 {
		o.MaxPrefetch = maxPrefetchMeta
	}
	return o
}

// loadIndex returns the index bytes, from the tail when it covers them,
// otherwise with one more read (widened to the meta region if asked).
func (r *Reader) loadIndex(prefetchMeta bool, maxPrefetch int64) ([]byte, error) {
	f := &r.footer
	if int64(f.IndexStart) >= r.cacheOff {
		lo := int64(f.IndexStart) - r.cacheOff
		r.indexShared = true
		return r.cache[lo : lo+int64(f.IndexLength) : lo+int64(f.IndexLength)], nil
	}
	start := int64(f.IndexStart)
	prefetch := prefetchMeta && f.MetaLength <= uint64(maxPrefetch)
	if prefetch {
		start = int64(f.MetaStart) // validate: meta precedes index
	}
	buf := make([]byte, int64(f.IndexStart+f.IndexLength)-start)
	if err := readFull(r.ra, buf, start); err != nil {
		return nil, fmt.Errorf("desformat: read index: %w", err)
	}
	if prefetch {
		// Keep it for meta lookups; otherwise the tail (which may hold the
		// last entries' meta) stays the cache and the index can be freed.
		r.cache, r.cacheOff = buf, start
		r.indexShared = true
	}
	return buf[int64(f.IndexStart)-start:], nil
}

// readFull reads len(p) bytes at off; a short read is an error even when
// the io.ReaderAt reports io.EOF with it.
func readFull(ra io.ReaderAt, p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	n, err := ra.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes at %d: %w", len(p), off, err)
}

// Footer returns the decoded footer.
func (r *Reader) Footer() Footer { return r.footer }

// Size returns the archive size given to NewReader.
func (r *Reader) Size() int64 { return r.size }

// Len returns the number of distinct names.
func (r *Reader) Len() int { return r.idx.unique }

// Entries returns one entry per distinct name in first-occurrence order,
// each being the last index entry with that name (v1 semantics). The
// entries are decoded on each call.
func (r *Reader) Entries() []Entry { return r.idx.listing() }

// NumIndexEntries returns the number of index entries, duplicates included.
func (r *Reader) NumIndexEntries() int { return r.idx.len() }

// IndexEntries returns every index entry in index order, including entries
// shadowed by a later duplicate.
func (r *Reader) IndexEntries() []Entry { return r.idx.all() }

// IndexEntry returns the entry at position i of the index (0 ≤ i <
// NumIndexEntries), the position Lookup reports.
func (r *Reader) IndexEntry(i int) Entry { return r.idx.entryAt(i) }

// Lookup returns the position in the index of the entry that name refers
// to (the last one with that name), so callers can keep per-entry data in
// arrays instead of maps keyed by name.
func (r *Reader) Lookup(name string) (int, bool) { return r.idx.lookup(name) }

// ReadAt reads archive bytes, from the bytes fetched while opening (the
// tail, or the prefetched meta and index) when they cover p, otherwise
// through the archive's io.ReaderAt.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if lo := off - r.cacheOff; lo >= 0 && lo <= int64(len(r.cache)) && int64(len(p)) <= int64(len(r.cache))-lo {
		return copy(p, r.cache[lo:]), nil
	}
	return r.ra.ReadAt(p, off)
}

// ReleaseCache drops the archive bytes kept from opening, for a caller
// that has taken what it needs from the meta region (see ReadAt and
// ParseMeta) and wants the Reader to hold only its index. Later meta
// reads go through the io.ReaderAt. Not safe concurrently with other
// calls.
func (r *Reader) ReleaseCache() {
	if r.indexShared {
		// The index aliases the cache: keep a copy of just the index.
		r.idx.b = append([]byte(nil), r.idx.b...)
		r.indexShared = false
	}
	r.cache, r.cacheOff = nil, 0
}

// MetaRange returns where entry i's meta object lies (absolute offset and
// length), without decoding the rest of the entry.
func (r *Reader) MetaRange(i int) (off, n int64) { return r.idx.metaRange(i) }

// Stat returns the entry for name.
func (r *Reader) Stat(name string) (Entry, error) {
	if p, ok := r.idx.lookup(name); ok {
		return r.idx.entry(p, name), nil
	}
	return Entry{}, fmt.Errorf("%w: %q", ErrNotFound, name)
}

// MemoryBytes reports the memory the Reader holds: the index (its bytes
// and the compact arrays over them) and the archive bytes cached while
// opening (tail or prefetched meta). Per-call allocations are not counted.
func (r *Reader) MemoryBytes() int64 {
	n := int64(readerOverhead) + int64(cap(r.cache)) + r.idx.memory()
	if !r.indexShared {
		n += int64(cap(r.idx.b))
	}
	return n
}

// readerOverhead approximates the Reader value and slice headers.
const readerOverhead = 512

// Meta returns the entry's meta JSON exactly as stored (a fresh copy).
func (r *Reader) Meta(name string) ([]byte, error) {
	e, err := r.Stat(name)
	if err != nil {
		return nil, err
	}
	b, err := r.metaBytes(&e)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

// metaBytes returns the entry's meta, from the cache when possible. The
// result may alias the cache and must not be modified.
func (r *Reader) metaBytes(e *Entry) ([]byte, error) {
	if lo := e.MetaOffset - r.cacheOff; lo >= 0 && lo <= int64(len(r.cache)) && e.MetaLength <= int64(len(r.cache))-lo {
		return r.cache[lo : lo+e.MetaLength], nil
	}
	buf := make([]byte, e.MetaLength) // bounded: validated inside the meta region
	if err := readFull(r.ra, buf, e.MetaOffset); err != nil {
		return nil, fmt.Errorf("desformat: read meta of %q: %w", e.Name, err)
	}
	return buf, nil
}

// metaInfo reads and parses what the reader needs from an entry's meta.
func (r *Reader) metaInfo(e *Entry) (metaInfo, error) {
	b, err := r.metaBytes(e)
	if err != nil {
		return metaInfo{}, err
	}
	mi, err := parseMetaInfo(b, r.footer.HasPayloadChecksums())
	if err != nil {
		return mi, corrupt(RegionMeta, "%q: %v", e.Name, err)
	}
	return mi, nil
}

// Checksum returns the CRC-32C recorded for name, and false for entries
// without one (all v1-written archives).
func (r *Reader) Checksum(name string) (uint32, bool, error) {
	e, err := r.Stat(name)
	if err != nil {
		return 0, false, err
	}
	mi, err := r.metaInfo(&e)
	return mi.crc, mi.hasCRC, err
}

// Section returns the raw, unverified payload of an internal entry. Use
// Open to get checksum verification and external payloads.
func (r *Reader) Section(name string) (*io.SectionReader, error) {
	e, err := r.Stat(name)
	if err != nil {
		return nil, err
	}
	if err := checkReadable(&e); err != nil {
		return nil, err
	}
	if e.IsExternal() {
		return nil, fmt.Errorf("desformat: %q is external: use Open", name)
	}
	return io.NewSectionReader(r.ra, e.DataOffset, e.Size), nil
}

func checkReadable(e *Entry) error {
	if e.Flags&(FlagCompressed|FlagEncrypted) != 0 {
		return fmt.Errorf("%w: %q has flags %#x", ErrUnsupportedEntry, e.Name, uint32(e.Flags))
	}
	return nil
}

// Open returns a reader over name's payload that verifies length and,
// when recorded, the CRC-32C: the Read that reaches the end returns an
// error matching ErrChecksum instead of io.EOF on mismatch. External
// payloads are fetched from the external store. Close the File.
func (r *Reader) Open(ctx context.Context, name string) (*File, error) {
	e, err := r.Stat(name)
	if err != nil {
		return nil, err
	}
	return r.openEntry(ctx, &e)
}

func (r *Reader) openEntry(ctx context.Context, e *Entry) (*File, error) {
	if err := checkReadable(e); err != nil {
		return nil, err
	}
	mi, err := r.metaInfo(e)
	if err != nil {
		return nil, err
	}
	return r.openWithMeta(ctx, e, mi)
}

func (r *Reader) openWithMeta(ctx context.Context, e *Entry, mi metaInfo) (*File, error) {
	f := &File{Entry: *e, want: mi.crc, hasWant: mi.hasCRC, region: RegionData}
	if !e.IsExternal() {
		f.r = io.NewSectionReader(r.ra, e.DataOffset, e.Size)
		return f, nil
	}
	rc, err := r.openExternal(ctx, e, mi.externalKey)
	if err != nil {
		return nil, err
	}
	// Read one byte past the size so a longer object is detected.
	f.r, f.closer, f.region = io.LimitReader(rc, e.Size+1), rc, RegionExternal
	return f, nil
}

func (r *Reader) openExternal(ctx context.Context, e *Entry, key string) (io.ReadCloser, error) {
	if key == "" {
		return nil, corrupt(RegionMeta, "%q is flagged external but its meta has no external_key", e.Name)
	}
	if r.ext == nil {
		return nil, fmt.Errorf("%w: %q (key %s)", ErrNoExternalStore, e.Name, key)
	}
	rc, size, err := r.ext.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("desformat: open external %q (key %s): %w", e.Name, key, err)
	}
	if size != e.Size {
		rc.Close()
		return nil, &CorruptError{Region: RegionExternal, Err: ErrSizeMismatch,
			Reason: fmt.Sprintf("%q: object %s has %d bytes, index says %d", e.Name, key, size, e.Size)}
	}
	return rc, nil
}

// ReadFile returns name's verified payload.
func (r *Reader) ReadFile(ctx context.Context, name string) ([]byte, error) {
	f, err := r.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllHint(f, f.Size)
}

// readAllHint is io.ReadAll with a capacity hint capped so that a lying
// size cannot force a huge allocation before any byte arrives.
func readAllHint(rd io.Reader, size int64) ([]byte, error) {
	const maxHint = 64 << 20
	b := make([]byte, 0, min(max(size, 0), maxHint)+1)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// File is an open payload; see Reader.Open.
type File struct {
	Entry
	r       io.Reader
	closer  io.Closer
	n       int64
	crc     uint32
	want    uint32
	hasWant bool
	region  string
	err     error // sticky terminal result (io.EOF or a failure)
}

// Read implements io.Reader with length and checksum verification.
func (f *File) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	n, err := f.r.Read(p)
	if left := f.Size - f.n; int64(n) > left {
		n = int(left)
		err = f.fail(&CorruptError{Region: f.region, Err: ErrSizeMismatch,
			Reason: fmt.Sprintf("%q is longer than %d bytes", f.Name, f.Size)})
	}
	f.crc = crcUpdate(f.crc, p[:n])
	f.n += int64(n)
	switch {
	case errors.Is(err, io.EOF):
		err = f.finish()
	case err != nil:
		f.err = err
	}
	return n, err
}

// finish checks length and checksum once the source is exhausted.
func (f *File) finish() error {
	if f.n != f.Size {
		return f.fail(&CorruptError{Region: f.region, Err: ErrSizeMismatch,
			Reason: fmt.Sprintf("%q ended after %d of %d bytes", f.Name, f.n, f.Size)})
	}
	if f.hasWant && f.crc != f.want {
		return f.fail(&CorruptError{Region: f.region, Err: ErrChecksum,
			Reason: fmt.Sprintf("%q has crc32c %08x, meta says %08x", f.Name, f.crc, f.want)})
	}
	f.err = io.EOF
	return io.EOF
}

func (f *File) fail(err error) error {
	f.err = err
	return err
}

// Verified reports whether the payload carries a checksum that Read checks.
func (f *File) Verified() bool { return f.hasWant }

// Close releases the external object, if any.
func (f *File) Close() error {
	if f.closer != nil {
		c := f.closer
		f.closer = nil
		return c.Close()
	}
	return nil
}
