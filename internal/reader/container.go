package reader

import (
	"context"
	"fmt"
	"io"
	"mime"
	"sync/atomic"

	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
)

// containerOverhead approximates the container value, its object reader and map slot in the cache.
const containerOverhead = 1 << 10

// container is an opened archive: its compact index and a per-entry summary of its meta in memory.
type container struct {
	key string
	r   *desformat.Reader
	// obj reads payload ranges. It is bound to the server's lifetime; requests use obj.WithContext.
	obj *objstore.ObjectReader
	// meta summarises every entry's meta, so that stat costs no request (entries it could not
	// summarise are read on demand).
	meta *metaTable
	// cost is the memory charged to the cache: what the Reader and the table report holding.
	cost int64
}

// swapReaderAt lets the index be parsed from the bytes the open request fetched and then points the
// desformat.Reader at a reader that does not pin those bytes, so a cached container holds its tail once.
type swapReaderAt struct {
	p atomic.Pointer[readerAtBox]
}

type readerAtBox struct{ io.ReaderAt }

func (s *swapReaderAt) ReadAt(p []byte, off int64) (int, error) { return s.p.Load().ReadAt(p, off) }

// metaStreamChunk bounds one read of the meta region at open (and MaxMetaCache bounds it further): it
// is the transient memory of an open next to the index being built.
const metaStreamChunk = 8 << 20

// tailSource is what a container is parsed from: the object read from S3 (its tail cached) or an entry
// of the shared index tier.
type tailSource interface {
	io.ReaderAt
	Size() int64
	ETag() string
}

// openContainer opens bucket/key from the shared index tier when it holds the container, otherwise
// from S3 (then shares what it read with the tier).
func openContainer(ctx, lifetime context.Context, store *objstore.Store, bucket, key string, tailSize, maxMeta int64, tier *RedisIndexTier) (*container, error) {
	if c := tier.open(ctx, lifetime, store, bucket, key, maxMeta); c != nil {
		return c, nil
	}
	first, _, err := store.OpenReaderAt(ctx, bucket, key, tailSize)
	if err != nil {
		return nil, err
	}
	src, rec := tier.recorder(first)
	c, err := parseContainer(ctx, lifetime, store, bucket, key, src, tailSize, maxMeta)
	if err != nil {
		return nil, err
	}
	tier.store(bucket, key, rec)
	return c, nil
}

// parseContainer reads the container through src: with one read when index and meta fit in tailSize.
// Otherwise, when the meta region is at most one chunk (min(maxMeta, metaStreamChunk)), one more read
// fetches meta and index together; larger containers cost one read for the index and one per chunk of
// meta. Either way every entry's meta is summarised into a metaTable and the fetched bytes are dropped,
// so a million-entry container keeps ~90 B per entry, an open needs about the index plus one chunk, and
// serving a file costs exactly one ranged GET.
func parseContainer(ctx, lifetime context.Context, store *objstore.Store, bucket, key string, src tailSource, tailSize, maxMeta int64) (*container, error) {
	ra := &swapReaderAt{}
	ra.p.Store(&readerAtBox{src})
	size := src.Size()
	chunk := min(maxMeta, metaStreamChunk)
	// Prefetching a larger meta region would hold it and a copy of the index at once.
	opts := desformat.ReaderOptions{TailSize: tailSize, PrefetchMeta: true, MaxPrefetch: chunk,
		External: store.Blobs(bucket, objstore.UploadOptions{})}
	r, err := desformat.NewReader(ra, size, opts)
	if err != nil {
		return nil, fmt.Errorf("open container %s: %w", key, err)
	}
	// Reads through r come from what NewReader kept when they can; the rest from src.
	meta, err := buildMetaTable(ctx, r, r, chunk)
	if err != nil {
		return nil, fmt.Errorf("open container %s: %w", key, err)
	}
	r.ReleaseCache()
	obj := store.NewObjectReader(lifetime, bucket, key, size, src.ETag())
	ra.p.Store(&readerAtBox{obj})
	return &container{
		key: key, r: r, obj: obj, meta: meta,
		cost: containerOverhead + r.MemoryBytes() + meta.memory(),
	}, nil
}

// fileInfo is what serving one file needs to know, whether it came from an opened container's index
// or from the catalog's placement of the file.
type fileInfo struct {
	desformat.Entry
	CRC         uint32
	HasCRC      bool
	ContentType string
	ExternalKey string
	// Key is the container object; obj reads its payload ranges (use obj.WithContext per request).
	Key string
	obj *objstore.ObjectReader
	// foundBy says how the file was found (foundByCatalog, foundByIndex or foundBySearch).
	foundBy string
}

// metaFree reports whether stat(name) costs no request.
func (c *container) metaFree(name string) bool {
	i, ok := c.r.Lookup(name)
	if !ok {
		return true // stat fails without a request
	}
	_, _, _, _, ok = c.meta.info(i)
	return ok
}

// stat describes name; it costs a request only for an entry the meta table could not summarise.
func (c *container) stat(name string) (fileInfo, error) {
	e, err := c.r.Stat(name)
	if err != nil {
		return fileInfo{}, err
	}
	if i, ok := c.r.Lookup(name); ok {
		if crc, has, ctype, ext, ok := c.meta.info(i); ok {
			return fileInfo{Entry: e, CRC: crc, HasCRC: has, ContentType: ctype, ExternalKey: ext, Key: c.key, obj: c.obj}, nil
		}
	}
	return c.statOnDemand(e)
}

// statOnDemand reads the entry's meta (one request), with the errors opening reports for bad meta.
func (c *container) statOnDemand(e desformat.Entry) (fileInfo, error) {
	meta, err := c.r.Meta(e.Name)
	if err != nil {
		return fileInfo{}, err
	}
	mi, err := c.r.ParseMeta(e.Name, meta)
	if err != nil {
		return fileInfo{}, err
	}
	return fileInfo{Entry: e, CRC: mi.CRC32C, HasCRC: mi.HasCRC, ContentType: contentType(mi.Mime), ExternalKey: mi.ExternalKey,
		Key: c.key, obj: c.obj}, nil
}

// fillChecksums records the planned files' checksums from the meta table, so the plan needs no meta
// reads. It changes nothing unless the table covers every file whose meta the plan would read.
func (c *container) fillChecksums(plan *desformat.Plan) {
	type sum struct {
		crc uint32
		has bool
	}
	sums := map[string]sum{}
	for _, rg := range plan.Meta {
		for _, sp := range rg.Spans {
			i, ok := c.r.Lookup(sp.Name)
			if !ok {
				return
			}
			crc, has, _, _, ok := c.meta.info(i)
			if !ok {
				return
			}
			sums[sp.Name] = sum{crc, has}
		}
	}
	for i := range plan.Data {
		for j := range plan.Data[i].Spans {
			sp := &plan.Data[i].Spans[j]
			if s, ok := sums[sp.Name]; ok {
				sp.CRC32C, sp.HasCRC = s.crc, s.has
			}
		}
	}
	plan.Meta = nil
}

const defaultContentType = "application/octet-stream"

// contentType accepts a meta "mime" value only if it is a well-formed media type, so stored data cannot
// inject header syntax.
func contentType(s string) string {
	if s == "" {
		return defaultContentType
	}
	mt, params, err := mime.ParseMediaType(s)
	if err != nil {
		return defaultContentType
	}
	if out := mime.FormatMediaType(mt, params); out != "" {
		return out
	}
	return defaultContentType
}
