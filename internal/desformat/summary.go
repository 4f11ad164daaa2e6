package desformat

import (
	"context"
	"fmt"
	"hash/crc32"
)

// Summary describes a finished archive. Its two checksums can be recomputed from the archive alone
// (Reader.Summary), so whoever finds an archive later, such as crash recovery, can check it against
// what its writer recorded.
type Summary struct {
	Files int64
	// PayloadBytes counts every payload, external ones included.
	PayloadBytes int64
	// Size of the archive object itself.
	Size int64
	// IndexCRC is the footer's CRC-32C over the index and footer fields.
	IndexCRC uint32
	// MetaCRC is the CRC-32C of the meta region. Every payload's CRC-32C is in its meta, so this one
	// value stands for all payloads.
	MetaCRC uint32
}

// IndexChecksum is the index CRC-32C as recorded in the catalog and the DesContainer (8 hex digits).
func (s Summary) IndexChecksum() string { return fmt.Sprintf("%08x", s.IndexCRC) }

// PayloadChecksum is the META CRC-32C, which covers every payload's checksum, as recorded (8 hex digits).
func (s Summary) PayloadChecksum() string { return fmt.Sprintf("%08x", s.MetaCRC) }

func (w *Writer) summarize(indexCRC uint32) Summary {
	return Summary{Files: w.count, PayloadBytes: w.payloadBytes, Size: int64(w.off), IndexCRC: indexCRC, MetaCRC: w.metaCRC}
}

// Summary returns the archive's summary; valid after a successful Close.
func (w *Writer) Summary() Summary { return w.summary }

// Summary recomputes the archive's summary. It reads the meta region (one ReadAt), so it costs a
// request on remote archives; the index checksum itself was verified when the Reader was opened.
func (r *Reader) Summary(ctx context.Context) (Summary, error) {
	f := r.footer
	if !f.HasIndexChecksum() {
		return Summary{}, fmt.Errorf("%w: archive has no index checksum (written by DES v1)", ErrChecksum)
	}
	s := Summary{Files: int64(r.Len()), Size: r.size, IndexCRC: f.IndexChecksum()}
	for i := range r.idx.len() {
		s.PayloadBytes += r.idx.entry(i, "").Size // the name is not needed
	}
	if err := ctx.Err(); err != nil {
		return Summary{}, err
	}
	meta := make([]byte, f.MetaLength) // bounded: validate checked the region lies inside the archive
	if _, err := r.ra.ReadAt(meta, int64(f.MetaStart)); err != nil {
		return Summary{}, fmt.Errorf("read meta region: %w", err)
	}
	s.MetaCRC = crc32.Checksum(meta, castagnoli)
	return s, nil
}
