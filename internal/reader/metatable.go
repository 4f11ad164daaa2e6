package reader

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/datavision/des/internal/desformat"
)

// metaTable keeps, per index entry, what serving a file needs from its meta object, so that the meta
// region (≈100 B per entry) need not stay in memory and no read costs a meta request: about 6 B per
// entry plus the external keys.
type metaTable struct {
	crc    []uint32
	hasCRC []uint64 // bitset over entries
	// ctype is an id into ctypes; ctypeOnDemand means the entry's meta could not be summarised here
	// (malformed, or too many distinct types) and is read when the file is served, with the errors
	// serving reports.
	ctype  []uint16
	ctypes []string          // validated Content-Type values; ctypes[0] is the default
	extKey map[uint32]string // external payloads only
}

const (
	ctypeOnDemand = 0xffff
	// maxContentTypes bounds the interned table: real containers hold a handful of types.
	maxContentTypes = 1024
)

// info returns entry i's summarised meta; ok is false when it must be read on demand.
func (m *metaTable) info(i int) (crc uint32, hasCRC bool, ctype, extKey string, ok bool) {
	id := m.ctype[i]
	if id == ctypeOnDemand {
		return 0, false, "", "", false
	}
	return m.crc[i], m.hasCRC[i/64]&(1<<(i%64)) != 0, m.ctypes[id], m.extKey[uint32(i)], true
}

// memory is the bytes the table holds (map entries estimated).
func (m *metaTable) memory() int64 {
	n := 4*int64(cap(m.crc)) + 8*int64(cap(m.hasCRC)) + 2*int64(cap(m.ctype))
	for _, s := range m.ctypes {
		n += int64(len(s)) + 16
	}
	for _, k := range m.extKey {
		n += int64(len(k)) + 48 // key, value header, bucket share
	}
	return n
}

// buildMetaTable reads the meta region through ra in chunks of at most chunk bytes (one entry's meta
// may make a chunk longer) and summarises every entry. Memory beyond the table is one chunk buffer.
func buildMetaTable(ctx context.Context, r *desformat.Reader, ra io.ReaderAt, chunk int64) (*metaTable, error) {
	n := r.NumIndexEntries()
	m := &metaTable{
		crc: make([]uint32, n), hasCRC: make([]uint64, (n+63)/64), ctype: make([]uint16, n),
		ctypes: []string{defaultContentType}, extKey: map[uint32]string{},
	}
	ids := map[string]uint16{}
	order := metaOrder(r)
	var buf []byte
	for k := 0; k < n; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start, first := r.MetaRange(at(order, k))
		if first > desformat.MaxMetaLen {
			// Larger than any writer produces: not worth a chunk of its own; serving reads it.
			m.ctype[at(order, k)] = ctypeOnDemand
			k++
			continue
		}
		// The chunk ends with the last meta object that fits in it.
		limit, end, last := start+max(chunk, first), start+first, k
		for j := k + 1; j < n; j++ {
			off, l := r.MetaRange(at(order, j))
			if off+l > limit {
				break
			}
			end, last = max(end, off+l), j
		}
		buf = growBuf(buf, end-start)
		if got, err := ra.ReadAt(buf, start); got != len(buf) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read meta [%d,+%d): got %d bytes: %w", start, len(buf), got, err)
		}
		for j := k; j <= last; j++ {
			i := at(order, j)
			off, l := r.MetaRange(i)
			m.add(r, i, buf[off-start:off-start+l], ids)
		}
		k = last + 1
	}
	return m, nil
}

// add summarises entry i's meta bytes. ids maps raw "mime" values already seen to their id, so the
// media type of each distinct value is parsed once.
func (m *metaTable) add(r *desformat.Reader, i int, meta []byte, ids map[string]uint16) {
	mi, err := r.ParseMeta("", meta)
	if err != nil {
		m.ctype[i] = ctypeOnDemand
		return
	}
	id, ok := ids[mi.Mime]
	if !ok {
		if id, ok = m.intern(contentType(mi.Mime)); !ok {
			m.ctype[i] = ctypeOnDemand
			return
		}
		if len(ids) < 4*maxContentTypes {
			ids[mi.Mime] = id
		}
	}
	m.ctype[i] = id
	m.crc[i] = mi.CRC32C
	if mi.HasCRC {
		m.hasCRC[i/64] |= 1 << (i % 64)
	}
	if mi.ExternalKey != "" {
		m.extKey[uint32(i)] = mi.ExternalKey
	}
}

// intern returns the id of a validated content type, adding it unless the table is full.
func (m *metaTable) intern(ct string) (uint16, bool) {
	if i := slices.Index(m.ctypes, ct); i >= 0 {
		return uint16(i), true
	}
	if len(m.ctypes) >= maxContentTypes {
		return 0, false
	}
	m.ctypes = append(m.ctypes, ct)
	return uint16(len(m.ctypes) - 1), true
}

// metaOrder returns the entries sorted by meta offset, or nil when the index already is (the writer
// appends meta in index order), so that chunks are read front to back.
func metaOrder(r *desformat.Reader) []uint32 {
	n := r.NumIndexEntries()
	prev := int64(-1)
	sorted := true
	for i := range n {
		off, _ := r.MetaRange(i)
		if off < prev {
			sorted = false
			break
		}
		prev = off
	}
	if sorted {
		return nil
	}
	order := make([]uint32, n)
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortStableFunc(order, func(a, b uint32) int {
		oa, _ := r.MetaRange(int(a))
		ob, _ := r.MetaRange(int(b))
		return cmp.Compare(oa, ob)
	})
	return order
}

func at(order []uint32, k int) int {
	if order == nil {
		return k
	}
	return int(order[k])
}

func growBuf(b []byte, n int64) []byte {
	if int64(cap(b)) < n {
		return make([]byte, n)
	}
	return b[:n]
}
