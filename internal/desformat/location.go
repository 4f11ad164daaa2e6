package desformat

import (
	"context"
	"fmt"
	"hash"
	"hash/crc32"
)

// Location says where one payload's bytes are, with what serving it needs to check them: enough to
// read the file with one ranged GET and verify it, without opening the archive's index. DES records
// it in the catalog when it commits a container.
type Location struct {
	Name string
	// Offset of the payload's first byte in the archive (0 for external and empty payloads, which take
	// no bytes of it).
	Offset int64
	// Size is the payload length.
	Size int64
	// CRC32C is the payload's checksum, valid when HasCRC (archives written by DES v1 have none).
	CRC32C uint32
	HasCRC bool
	// ExternalKey is the object key of an external payload ("" when the payload is inside the archive).
	ExternalKey string
}

// PayloadCRC is the checksum a Location records for a payload (CRC-32C, Castagnoli): what a reader
// or a verifier compares the bytes it got with.
func PayloadCRC(p []byte) uint32 { return crc32.Checksum(p, castagnoli) }

// NewPayloadHash returns a hash whose Sum32 is the PayloadCRC of what was written to it, for payloads
// checked as they stream.
func NewPayloadHash() hash.Hash32 { return crc32.New(castagnoli) }

// IsExternal reports whether the payload lives in its own object.
func (l *Location) IsExternal() bool { return l.ExternalKey != "" }

// Last returns the Location of the payload most recently added with Add, and false before the first
// one. A caller that needs every payload's location collects them after each successful Add: the
// Writer itself keeps only the index entries it must write.
func (w *Writer) Last() (Location, bool) {
	if w.count == 0 {
		return Location{}, false
	}
	e := &w.last
	l := Location{Name: e.name, Size: int64(e.size), CRC32C: e.crc, HasCRC: true}
	if e.flags.External() {
		l.ExternalKey = ExternalKey(w.opts.ExternalPrefix, e.name)
	} else if e.size > 0 {
		l.Offset = int64(e.dOff)
	}
	return l, true
}

// Locations returns the Location of every name (the entry a lookup sees, in listing order). It reads
// the meta region once, so it costs one request on a remote archive whose meta was not prefetched.
func (r *Reader) Locations(ctx context.Context) ([]Location, error) {
	f := r.footer
	meta := make([]byte, f.MetaLength) // bounded: validate checked the region lies inside the archive
	if err := readFull(r.ra, meta, int64(f.MetaStart)); err != nil {
		return nil, fmt.Errorf("desformat: read meta region: %w", err)
	}
	entries := r.Entries()
	out := make([]Location, 0, len(entries))
	for i := range entries {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		e := &entries[i]
		lo := e.MetaOffset - int64(f.MetaStart)
		mi, err := r.ParseMeta(e.Name, meta[lo:lo+e.MetaLength])
		if err != nil {
			return nil, err
		}
		l := Location{Name: e.Name, Size: e.Size, CRC32C: mi.CRC32C, HasCRC: mi.HasCRC}
		if e.IsExternal() {
			l.ExternalKey = mi.ExternalKey
		} else if e.Size > 0 {
			l.Offset = e.DataOffset
		}
		out = append(out, l)
	}
	return out, nil
}

// PlanLocations coalesces payloads known by their locations (from a catalog, say, without the
// archive's index) into ranges, as PlanBatch does for names: each span keeps its checksum, so
// Range.Deliver verifies it. External and empty payloads take no bytes of the archive and are left
// out: the caller serves those itself.
func PlanLocations(locs []Location, opts BatchOptions) []Range {
	if opts.MaxRange <= 0 {
		opts.MaxRange = DefaultMaxRange
	}
	spans := make([]Span, 0, len(locs))
	for _, l := range locs {
		if l.IsExternal() || l.Size == 0 {
			continue
		}
		spans = append(spans, Span{Name: l.Name, Offset: l.Offset, Length: l.Size, CRC32C: l.CRC32C, HasCRC: l.HasCRC})
	}
	return coalesce(spans, opts)
}
