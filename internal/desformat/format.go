package desformat

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Layout constants of the v1 format (see docs/format.md).
const (
	HeaderMagic = "DESHEAD1"
	FooterMagic = "DESFOOT1"
	Version     = 1

	HeaderSize = 16
	FooterSize = 72

	// entryFixedSize is the part of an index entry after the name:
	// data_offset, data_length, meta_offset, meta_length (u64) and flags (u32).
	entryFixedSize = 4*8 + 4
	// minEntrySize bounds file_count by the index length (u16 name length +
	// fixed part; a valid name adds at least one byte, a corrupt one may not).
	minEntrySize = 2 + entryFixedSize

	// MaxNameLen is the largest name the u16 length field can describe.
	MaxNameLen = math.MaxUint16
	// MaxMetaLen is the v1 limit on one encoded meta object.
	MaxMetaLen = 10 << 20
)

// Footer reserved-byte extension (ignored by v1 readers, which only check
// the magic and version). reserved[0] holds feature bits:
//   - featureIndexCRC: reserved[1:5] is the little-endian CRC-32C of the
//     index region followed by footer bytes 16..72 (the seven u64 fields);
//   - featurePayloadCRC: the "crc32c" meta key is writer-owned and holds
//     the payload's CRC-32C, so readers verify it. Without the bit a
//     "crc32c" key is user data and is not interpreted.
//
// reserved[5:7] stay zero.
const (
	featureIndexCRC   = 1 << 0
	featurePayloadCRC = 1 << 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crcUpdate(c uint32, p []byte) uint32 { return crc32.Update(c, castagnoli, p) }

// Flags is the per-entry flags word of the index.
type Flags uint32

// v1 flag bits. Only FlagExternal is ever set by a v1 writer.
const (
	FlagExternal   Flags = 1 << 0
	FlagCompressed Flags = 1 << 1
	FlagEncrypted  Flags = 1 << 2
	FlagDeleted    Flags = 1 << 3
)

// External reports whether the payload lives in the external store.
func (f Flags) External() bool { return f&FlagExternal != 0 }

// Footer is the decoded 72-byte trailer that locates every region.
type Footer struct {
	Version     uint8
	Reserved    [7]byte
	DataStart   uint64
	DataLength  uint64
	MetaStart   uint64
	MetaLength  uint64
	IndexStart  uint64
	IndexLength uint64
	FileCount   uint64
}

// HasIndexChecksum reports whether the footer carries our index CRC-32C.
func (f Footer) HasIndexChecksum() bool { return f.Reserved[0]&featureIndexCRC != 0 }

// HasPayloadChecksums reports whether entries' "crc32c" meta keys were
// written by this package's writer and are verified on read.
func (f Footer) HasPayloadChecksums() bool { return f.Reserved[0]&featurePayloadCRC != 0 }

// IndexChecksum returns the stored index CRC-32C (meaningful only when
// HasIndexChecksum).
func (f Footer) IndexChecksum() uint32 { return binary.LittleEndian.Uint32(f.Reserved[1:5]) }

// parseFooter decodes the last FooterSize bytes of an archive. It checks
// magic and version only; bounds are checked by validate, which needs the
// archive size.
func parseFooter(b []byte) (Footer, error) {
	var f Footer
	if len(b) != FooterSize {
		return f, corrupt(RegionFooter, "footer is %d bytes, want %d", len(b), FooterSize)
	}
	if string(b[:8]) != FooterMagic {
		return f, ErrBadMagic
	}
	f.Version = b[8]
	if f.Version != Version {
		return f, fmt.Errorf("%w: footer says version %d, this reader supports %d", ErrUnsupportedVersion, f.Version, Version)
	}
	copy(f.Reserved[:], b[9:16])
	le := binary.LittleEndian
	f.DataStart = le.Uint64(b[16:])
	f.DataLength = le.Uint64(b[24:])
	f.MetaStart = le.Uint64(b[32:])
	f.MetaLength = le.Uint64(b[40:])
	f.IndexStart = le.Uint64(b[48:])
	f.IndexLength = le.Uint64(b[56:])
	f.FileCount = le.Uint64(b[64:])
	return f, nil
}

// appendFooter encodes f.
func appendFooter(dst []byte, f *Footer) []byte {
	dst = append(dst, FooterMagic...)
	dst = append(dst, f.Version)
	dst = append(dst, f.Reserved[:]...)
	le := binary.LittleEndian
	for _, v := range [...]uint64{f.DataStart, f.DataLength, f.MetaStart, f.MetaLength, f.IndexStart, f.IndexLength, f.FileCount} {
		dst = le.AppendUint64(dst, v)
	}
	return dst
}

// region is a half-open byte range [start, end) of the archive.
type region struct{ start, end uint64 }

func (r region) contains(off, n uint64) bool {
	return off >= r.start && off <= r.end && n <= r.end-off
}

// validate checks that every region lies between header and footer, that
// the regions are ordered data ≤ meta ≤ index without overlap, and that
// file_count is plausible for the index length. After it succeeds all
// region arithmetic is free of overflow.
func (f *Footer) validate(size int64) error {
	if size < HeaderSize+FooterSize {
		return corrupt(RegionFooter, "archive is %d bytes, smaller than header+footer", size)
	}
	limit := uint64(size) - FooterSize
	regs := []struct {
		name       string
		start, len uint64
	}{
		{RegionData, f.DataStart, f.DataLength},
		{RegionMeta, f.MetaStart, f.MetaLength},
		{RegionIndex, f.IndexStart, f.IndexLength},
	}
	prevEnd, prevName := uint64(HeaderSize), RegionHeader
	for _, r := range regs {
		if r.start > limit || r.len > limit-r.start {
			return corrupt(RegionFooter, "%s region [%d,+%d) extends past the footer at %d", r.name, r.start, r.len, limit)
		}
		if r.start < prevEnd {
			return corrupt(RegionFooter, "%s region starts at %d, inside the %s region ending at %d", r.name, r.start, prevName, prevEnd)
		}
		prevEnd, prevName = r.start+r.len, r.name
	}
	if f.FileCount > f.IndexLength/minEntrySize {
		return corrupt(RegionFooter, "file_count %d cannot fit in an index of %d bytes", f.FileCount, f.IndexLength)
	}
	return nil
}

func (f *Footer) dataRegion() region  { return region{f.DataStart, f.DataStart + f.DataLength} }
func (f *Footer) metaRegion() region  { return region{f.MetaStart, f.MetaStart + f.MetaLength} }
func (f *Footer) indexRegion() region { return region{f.IndexStart, f.IndexStart + f.IndexLength} }

// indexChecksum computes the CRC-32C that the index-checksum extension
// stores: index bytes, then the seven u64 footer fields.
func indexChecksum(index, footer []byte) uint32 {
	c := crc32.Update(0, castagnoli, index)
	return crc32.Update(c, castagnoli, footer[16:FooterSize])
}

// Entry describes one index entry.
type Entry struct {
	Name string
	// DataOffset is the absolute offset of the payload (0 for external).
	DataOffset int64
	// Size is the payload length (for external payloads: the object size).
	Size       int64
	MetaOffset int64
	MetaLength int64
	Flags      Flags
}

// IsExternal reports whether the payload lives in the external store.
func (e *Entry) IsExternal() bool { return e.Flags.External() }

// appendIndexEntry encodes one index entry.
func appendIndexEntry(dst []byte, name string, dOff, dLen, mOff, mLen uint64, flags Flags) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint16(dst, uint16(len(name)))
	dst = append(dst, name...)
	dst = le.AppendUint64(dst, dOff)
	dst = le.AppendUint64(dst, dLen)
	dst = le.AppendUint64(dst, mOff)
	dst = le.AppendUint64(dst, mLen)
	return le.AppendUint32(dst, uint32(flags))
}
