package desformat

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Batch planning defaults.
const (
	DefaultMaxGap   = 256 << 10
	DefaultMaxRange = 16 << 20
)

// BatchOptions controls how PlanBatch coalesces payloads into ranges.
type BatchOptions struct {
	// MaxGap merges two payloads into one range when at most this many
	// unwanted bytes lie between them (0: only touching payloads merge;
	// negative: never merge).
	MaxGap int64
	// MaxRange caps the length of a merged range (DefaultMaxRange if ≤ 0).
	// A single payload larger than the cap still gets one range: files are
	// never split.
	MaxRange int64
}

// DefaultBatchOptions suit object storage: a 256 KiB gap costs less than
// another request's latency.
var DefaultBatchOptions = BatchOptions{MaxGap: DefaultMaxGap, MaxRange: DefaultMaxRange}

// Span is one file's bytes inside a Range.
type Span struct {
	Name   string
	Offset int64 // offset of the file's first byte from the start of the range
	Length int64
	CRC32C uint32 // expected checksum, valid when HasCRC
	HasCRC bool
}

// Range is one contiguous byte range of the archive to fetch.
type Range struct {
	Offset int64 // absolute offset in the archive
	Length int64
	Spans  []Span // sorted by Offset
}

// Plan says which byte ranges to read for a set of files. Executors fetch
// Meta ranges first (LoadChecksums) so every Data span knows its checksum,
// then fetch Data ranges in any order or in parallel and pass each buffer
// to Range.Deliver.
type Plan struct {
	Data     []Range  // payload ranges, sorted by offset
	Meta     []Range  // meta ranges whose checksums are still unknown
	Empty    []string // 0-byte payloads: no range is ever issued for them
	External []string // payloads in the external store

	trustCRC bool // archive has writer-owned crc32c meta keys
}

// PlanBatch plans reading the named files. Unknown names fail with
// ErrNotFound; repeated names are planned once. Meta already fetched while
// opening (tail or PrefetchMeta) is used directly instead of planned.
func (r *Reader) PlanBatch(names []string, opts BatchOptions) (*Plan, error) {
	if opts.MaxRange <= 0 {
		opts.MaxRange = DefaultMaxRange
	}
	p := &Plan{trustCRC: r.footer.HasPayloadChecksums()}
	var data, meta []Span
	seen := make(map[string]struct{}, len(names))
	for _, name := range names {
		if _, dup := seen[name]; dup {
			continue
		}
		seen[name] = struct{}{}
		e, err := r.Stat(name)
		if err != nil {
			return nil, err
		}
		if err := checkReadable(&e); err != nil {
			return nil, err
		}
		switch {
		case e.IsExternal():
			p.External = append(p.External, name)
			continue
		case e.Size == 0:
			p.Empty = append(p.Empty, name)
			continue
		}
		s := Span{Name: name, Offset: e.DataOffset, Length: e.Size}
		switch {
		case !p.trustCRC:
			// No checksums to load: v1 archive.
		case r.metaCached(&e):
			mi, err := r.metaInfo(&e)
			if err != nil {
				return nil, err
			}
			s.CRC32C, s.HasCRC = mi.crc, mi.hasCRC
		default:
			meta = append(meta, Span{Name: name, Offset: e.MetaOffset, Length: e.MetaLength})
		}
		data = append(data, s)
	}
	p.Data = coalesce(data, opts)
	p.Meta = coalesce(meta, opts)
	return p, nil
}

func (r *Reader) metaCached(e *Entry) bool {
	lo := e.MetaOffset - r.cacheOff
	return lo >= 0 && lo <= int64(len(r.cache)) && e.MetaLength <= int64(len(r.cache))-lo
}

// coalesce turns spans with absolute offsets into ranges, merging
// neighbours per opts; span offsets become range-relative.
func coalesce(spans []Span, opts BatchOptions) []Range {
	if len(spans) == 0 {
		return nil
	}
	slices.SortFunc(spans, func(a, b Span) int {
		if a.Offset != b.Offset {
			return cmp.Compare(a.Offset, b.Offset)
		}
		return strings.Compare(a.Name, b.Name)
	})
	var out []Range
	cur := Range{Offset: spans[0].Offset}
	end := spans[0].Offset
	for _, s := range spans {
		sEnd := s.Offset + s.Length
		merged := max(end, sEnd)
		if len(cur.Spans) > 0 && (opts.MaxGap < 0 || s.Offset-end > opts.MaxGap || merged-cur.Offset > opts.MaxRange) {
			cur.Length = end - cur.Offset
			out = append(out, cur)
			cur = Range{Offset: s.Offset}
			merged = sEnd
		}
		s.Offset -= cur.Offset
		cur.Spans = append(cur.Spans, s)
		end = merged
	}
	cur.Length = end - cur.Offset
	return append(out, cur)
}

// Bytes returns the total number of bytes the data ranges fetch.
func (p *Plan) Bytes() int64 {
	var n int64
	for _, rg := range p.Data {
		n += rg.Length
	}
	return n
}

// LoadChecksums fetches the Meta ranges from ra and records each file's
// checksum in its Data span. Afterwards p.Meta is empty.
func (p *Plan) LoadChecksums(ra io.ReaderAt) error {
	if !p.trustCRC {
		p.Meta = nil
		return nil
	}
	if len(p.Meta) == 0 {
		return nil
	}
	where := make(map[string]*Span)
	for i := range p.Data {
		for j := range p.Data[i].Spans {
			s := &p.Data[i].Spans[j]
			where[s.Name] = s
		}
	}
	var buf []byte
	for _, rg := range p.Meta {
		buf = grow(buf, rg.Length)
		if err := readFull(ra, buf, rg.Offset); err != nil {
			return fmt.Errorf("desformat: read meta range: %w", err)
		}
		for _, ms := range rg.Spans {
			if ms.Offset < 0 || ms.Length < 0 || ms.Offset > rg.Length || ms.Length > rg.Length-ms.Offset {
				return fmt.Errorf("desformat: meta span %q outside its range", ms.Name)
			}
			mi, err := parseMetaInfo(buf[ms.Offset:ms.Offset+ms.Length], true)
			if err != nil {
				return corrupt(RegionMeta, "%q: %v", ms.Name, err)
			}
			if s := where[ms.Name]; s != nil {
				s.CRC32C, s.HasCRC = mi.crc, mi.hasCRC
			}
		}
	}
	p.Meta = nil
	return nil
}

func grow(b []byte, n int64) []byte {
	if int64(cap(b)) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// Deliver verifies each span of the range's fetched bytes buf and calls fn
// with the file's bytes, which alias buf and are valid only during fn.
func (rg *Range) Deliver(buf []byte, fn func(name string, data []byte) error) error {
	if int64(len(buf)) != rg.Length {
		return fmt.Errorf("desformat: range at %d: got %d bytes, want %d", rg.Offset, len(buf), rg.Length)
	}
	for _, s := range rg.Spans {
		if s.Offset < 0 || s.Length < 0 || s.Offset > rg.Length || s.Length > rg.Length-s.Offset {
			return fmt.Errorf("desformat: span %q outside its range", s.Name)
		}
		b := buf[s.Offset : s.Offset+s.Length]
		if s.HasCRC {
			if got := crcUpdate(0, b); got != s.CRC32C {
				return &CorruptError{Region: RegionData, Err: ErrChecksum,
					Reason: fmt.Sprintf("%q has crc32c %08x, meta says %08x", s.Name, got, s.CRC32C)}
			}
		}
		if err := fn(s.Name, b); err != nil {
			return err
		}
	}
	return nil
}

// Execute runs the plan sequentially against ra: checksums first, then
// each data range, then the empty files (with an empty slice). External
// files are left to the caller (Reader.ReadBatch handles them).
func (p *Plan) Execute(ctx context.Context, ra io.ReaderAt, fn func(name string, data []byte) error) error {
	if err := p.LoadChecksums(ra); err != nil {
		return err
	}
	var buf []byte
	for i := range p.Data {
		if err := ctx.Err(); err != nil {
			return err
		}
		rg := &p.Data[i]
		buf = grow(buf, rg.Length)
		if err := readFull(ra, buf, rg.Offset); err != nil {
			return fmt.Errorf("desformat: read data range: %w", err)
		}
		if err := rg.Deliver(buf, fn); err != nil {
			return err
		}
	}
	for _, name := range p.Empty {
		if err := fn(name, []byte{}); err != nil {
			return err
		}
	}
	return nil
}

// ReadBatch reads the named files with coalesced range reads and calls fn
// for each with its verified bytes (valid only during the call). External
// payloads are read through the external store.
func (r *Reader) ReadBatch(ctx context.Context, names []string, opts BatchOptions, fn func(name string, data []byte) error) error {
	p, err := r.PlanBatch(names, opts)
	if err != nil {
		return err
	}
	if err := p.Execute(ctx, r.ra, fn); err != nil {
		return err
	}
	for _, name := range p.External {
		b, err := r.ReadFile(ctx, name)
		if err != nil {
			return err
		}
		if err := fn(name, b); err != nil {
			return err
		}
	}
	return nil
}
