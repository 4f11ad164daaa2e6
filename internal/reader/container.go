package reader

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"sync/atomic"

	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
)

// Rough per-entry memory of a parsed index (Entry struct, name-table slot, map bucket), used to bound
// the cache; names themselves are counted through the index length.
const (
	entryOverhead     = 160
	containerOverhead = 1 << 10
)

// container is an opened archive: its parsed index (and, usually, its meta) in memory.
type container struct {
	key string
	r   *desformat.Reader
	// obj reads payload ranges. It is bound to the server's lifetime; requests use obj.WithContext.
	obj *objstore.ObjectReader
	// metaCached says every entry's meta is in memory, so stat costs no request.
	metaCached bool
	cost       int64
}

// swapReaderAt lets the index be parsed from the bytes the open request fetched and then points the
// desformat.Reader at a reader that does not pin those bytes, so a cached container holds its tail once.
type swapReaderAt struct {
	p atomic.Pointer[readerAtBox]
}

type readerAtBox struct{ io.ReaderAt }

func (s *swapReaderAt) ReadAt(p []byte, off int64) (int, error) { return s.p.Load().ReadAt(p, off) }

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
	c, err := parseContainer(lifetime, store, bucket, key, src, tailSize, maxMeta)
	if err != nil {
		return nil, err
	}
	tier.store(bucket, key, rec)
	return c, nil
}

// parseContainer reads the container's index through src with one read when index and meta fit in
// tailSize, and with one more (for the rest of the meta and index region) when they do not but stay
// below maxMeta.
func parseContainer(lifetime context.Context, store *objstore.Store, bucket, key string, src tailSource, tailSize, maxMeta int64) (*container, error) {
	ra := &swapReaderAt{}
	ra.p.Store(&readerAtBox{src})
	size := src.Size()
	opts := desformat.ReaderOptions{TailSize: tailSize, PrefetchMeta: true, External: store.Blobs(bucket, objstore.UploadOptions{})}
	r, err := desformat.NewReader(ra, size, opts)
	if err != nil {
		return nil, fmt.Errorf("open container %s: %w", key, err)
	}
	f := r.Footer()
	metaCached, held := metaCoverage(f, size, tailSize, maxMeta)
	if need := size - int64(f.MetaStart); !metaCached && need <= maxMeta {
		// The index fit in the tail but not all the meta: reread with a tail reaching the meta. The
		// part already fetched comes from memory, so this costs one request for the missing bytes.
		opts.TailSize = need
		if r, err = desformat.NewReader(ra, size, opts); err != nil {
			return nil, fmt.Errorf("open container %s: %w", key, err)
		}
		metaCached, held = true, need
	}
	obj := store.NewObjectReader(lifetime, bucket, key, size, src.ETag())
	ra.p.Store(&readerAtBox{obj})
	return &container{
		key: key, r: r, obj: obj, metaCached: metaCached,
		cost: containerOverhead + held + int64(f.IndexLength) + int64(r.NumIndexEntries())*entryOverhead,
	}, nil
}

// metaCoverage tells whether desformat kept every meta object in memory while opening, and how many
// archive bytes it holds. With PrefetchMeta the reader keeps either the tail (when the index was in
// it) or the region from the meta start to the index end (read when the index was not in the tail).
func metaCoverage(f desformat.Footer, size, tailSize, maxMeta int64) (cached bool, held int64) {
	tail := min(size, tailSize)
	tailStart := size - tail
	if int64(f.IndexStart) >= tailStart {
		return int64(f.MetaStart) >= tailStart, tail
	}
	// desformat prefetches meta up to its own (larger) limit; below ours it certainly did.
	prefetched := int64(f.IndexStart+f.IndexLength) - int64(f.MetaStart)
	return int64(f.MetaLength) <= maxMeta, prefetched
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

// stat describes name; it costs a request only when the container's meta is not cached.
func (c *container) stat(name string) (fileInfo, error) {
	e, err := c.r.Stat(name)
	if err != nil {
		return fileInfo{}, err
	}
	fi := fileInfo{Entry: e, ContentType: defaultContentType, Key: c.key, obj: c.obj}
	crc, has, err := c.r.Checksum(name)
	if err != nil {
		return fileInfo{}, err
	}
	fi.CRC, fi.HasCRC = crc, has
	meta, err := c.r.Meta(name)
	if err != nil {
		return fileInfo{}, err
	}
	var m struct {
		Mime        any `json:"mime"`
		ExternalKey any `json:"external_key"`
	}
	// Meta was validated as JSON by Checksum; user fields of the wrong type are just ignored.
	_ = json.Unmarshal(meta, &m)
	fi.ContentType = contentType(m.Mime)
	if s, ok := m.ExternalKey.(string); ok {
		fi.ExternalKey = s
	}
	return fi, nil
}

const defaultContentType = "application/octet-stream"

// contentType accepts a meta "mime" value only if it is a well-formed media type, so stored data cannot
// inject header syntax.
func contentType(v any) string {
	s, ok := v.(string)
	if !ok || s == "" {
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
