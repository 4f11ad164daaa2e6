package des

import (
	"io"

	"github.com/datavision/des/internal/desformat"
)

// Archive types. They are aliases, so values flow freely between this package and the components of
// DES that use internal/desformat directly.
type (
	// Writer streams an archive to an io.Writer; see NewWriter.
	Writer = desformat.Writer
	// WriterOptions configures a Writer; the zero value keeps every payload inside the archive.
	WriterOptions = desformat.WriterOptions
	// FileHeader describes one payload handed to Writer.Add.
	FileHeader = desformat.FileHeader
	// Summary is what Writer.Summary and Reader.Summary report about a finished archive.
	Summary = desformat.Summary

	// Reader reads an archive through an io.ReaderAt; see NewReader.
	Reader = desformat.Reader
	// ReaderOptions configures NewReader; the zero value is ready to use.
	ReaderOptions = desformat.ReaderOptions
	// File is an open payload; its Read verifies size and CRC-32C at the end.
	File = desformat.File
	// Entry is one index entry of an archive.
	Entry = desformat.Entry
	// Flags are an entry's v1 flag bits.
	Flags = desformat.Flags
	// Footer is the decoded fixed-size footer.
	Footer = desformat.Footer
	// VerifyReport is the result of Reader.Verify.
	VerifyReport = desformat.VerifyReport
	// MetaInfo is what serving a file needs from its meta object (Reader.ParseMeta, Reader.OpenWithMeta).
	MetaInfo = desformat.MetaInfo

	// ExternalStore holds payloads too large to keep inside the archive (keys PREFIX/_bigFiles/NAME).
	ExternalStore = desformat.ExternalStore
	// DirStore is an ExternalStore over a local directory.
	DirStore = desformat.DirStore

	// CorruptError reports a structural problem in one region of an archive.
	CorruptError = desformat.CorruptError
)

// Batch-read types: a Plan lists the byte Ranges to fetch, each carrying the Spans of its files.
type (
	// BatchOptions bound how ranges are merged (gap, range size) when a batch is planned.
	BatchOptions = desformat.BatchOptions
	// Plan is a batch read planned by Reader.PlanBatch: its Ranges, in order, and what is missing.
	Plan = desformat.Plan
	// Range is one byte range of an archive a Plan fetches.
	Range = desformat.Range
	// Span is one file's place inside a Range.
	Span = desformat.Span
)

// Format limits and defaults.
const (
	HeaderSize          = desformat.HeaderSize
	FooterSize          = desformat.FooterSize
	MaxNameLen          = desformat.MaxNameLen
	MaxMetaLen          = desformat.MaxMetaLen
	DefaultTailSize     = desformat.DefaultTailSize
	DefaultMaxIndexSize = desformat.DefaultMaxIndexSize
	DefaultMaxGap       = desformat.DefaultMaxGap
	DefaultMaxRange     = desformat.DefaultMaxRange
	BigFilesDir         = desformat.BigFilesDir
	FlagExternal        = desformat.FlagExternal
)

// Meta keys the writer owns; a user value under one of them is replaced.
const (
	MetaKeySize        = desformat.MetaKeySize
	MetaKeyIsExternal  = desformat.MetaKeyIsExternal
	MetaKeyExternalKey = desformat.MetaKeyExternalKey
	MetaKeyCRC32C      = desformat.MetaKeyCRC32C
)

// DefaultBatchOptions suit object storage: a 256 KiB gap costs less than another request's latency.
var DefaultBatchOptions = desformat.DefaultBatchOptions

// Archive errors: the sentinels internal/desformat wraps, so errors.Is matches errors from any DES
// component.
var (
	ErrBadMagic           = desformat.ErrBadMagic
	ErrUnsupportedVersion = desformat.ErrUnsupportedVersion
	ErrCorrupt            = desformat.ErrCorrupt
	ErrNotFound           = desformat.ErrNotFound
	ErrChecksum           = desformat.ErrChecksum
	ErrUnsupportedEntry   = desformat.ErrUnsupportedEntry
	ErrNoExternalStore    = desformat.ErrNoExternalStore
	ErrInvalidName        = desformat.ErrInvalidName
	ErrNameTooLong        = desformat.ErrNameTooLong
	ErrDuplicateName      = desformat.ErrDuplicateName
	ErrInvalidMeta        = desformat.ErrInvalidMeta
	ErrMetaTooLarge       = desformat.ErrMetaTooLarge
	ErrSizeMismatch       = desformat.ErrSizeMismatch
	ErrWriterClosed       = desformat.ErrWriterClosed
	ErrAborted            = desformat.ErrAborted
)

// NewWriter starts an archive on w. Add payloads, then Close (or Abort to give up): only the meta
// objects and the index are held until Close writes them, in memory or, with
// WriterOptions.SpillDir, in temporary files.
func NewWriter(w io.Writer, opts WriterOptions) (*Writer, error) { return desformat.NewWriter(w, opts) }

// NewReader opens the archive of the given size behind ra with one read of its tail (two when the
// index does not fit in it), validating footer and index before anything is returned.
func NewReader(ra io.ReaderAt, size int64, opts ReaderOptions) (*Reader, error) {
	return desformat.NewReader(ra, size, opts)
}

// ValidateName reports whether name may be stored in an archive (the v1 rules: non-empty UTF-8, at
// most MaxNameLen bytes, none of / \ : * ? " < > |, not "." or "..").
func ValidateName(name string) error { return desformat.ValidateName(name) }

// DecodeMeta decodes one entry's meta JSON object, as returned by Reader.Meta.
func DecodeMeta(meta []byte) (map[string]any, error) { return desformat.DecodeMeta(meta) }

// ExternalKey is the key under which a payload named name is stored externally: PREFIX/_bigFiles/NAME.
func ExternalKey(prefix, name string) string { return desformat.ExternalKey(prefix, name) }

// NewDirStore returns an ExternalStore keeping external payloads as files below dir.
func NewDirStore(dir string) *DirStore { return desformat.NewDirStore(dir) }
