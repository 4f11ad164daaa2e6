package desformat

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Callers match them with errors.Is; the errors actually
// returned carry context (which file, which region) around them.
var (
	// ErrBadMagic means the footer (or, in Verify, the header) does not start
	// with the DES magic: the input is not a DES archive or lost its tail.
	ErrBadMagic = errors.New("desformat: bad magic")
	// ErrUnsupportedVersion means the footer names a format version this
	// package does not read.
	ErrUnsupportedVersion = errors.New("desformat: unsupported version")
	// ErrCorrupt is matched by every *CorruptError.
	ErrCorrupt = errors.New("desformat: corrupt archive")
	// ErrNotFound means the archive has no entry with the requested name.
	ErrNotFound = errors.New("desformat: file not found")
	// ErrChecksum means stored bytes do not match their recorded checksum.
	ErrChecksum = errors.New("desformat: checksum mismatch")
	// ErrUnsupportedEntry means an entry uses a v1 flag this package cannot
	// decode (compressed or encrypted payloads, which no v1 writer produced).
	ErrUnsupportedEntry = errors.New("desformat: unsupported entry flags")

	// Writer input errors; each is wrapped with the offending name.

	// ErrInvalidName: empty, not UTF-8, or containing one of / \ : * ? " < > |.
	ErrInvalidName = errors.New("desformat: invalid name")
	// ErrNameTooLong: name longer than MaxNameLen bytes.
	ErrNameTooLong = errors.New("desformat: name too long")
	// ErrDuplicateName: the name was already added to this archive.
	ErrDuplicateName = errors.New("desformat: duplicate name")
	// ErrInvalidMeta: meta is not a well-formed JSON object.
	ErrInvalidMeta = errors.New("desformat: invalid meta")
	// ErrMetaTooLarge: encoded meta exceeds MaxMetaLen bytes.
	ErrMetaTooLarge = errors.New("desformat: meta too large")
	// ErrSizeMismatch: the payload reader yielded more or fewer bytes than
	// declared (writer), or an external object has the wrong size (reader).
	ErrSizeMismatch = errors.New("desformat: size mismatch")
	// ErrWriterClosed: the Writer was closed or failed earlier.
	ErrWriterClosed = errors.New("desformat: writer closed")
	// ErrAborted: Writer.Abort gave up the archive.
	ErrAborted = errors.New("desformat: archive aborted")
)

// Region names used in CorruptError.
const (
	RegionHeader   = "header"
	RegionData     = "data"
	RegionMeta     = "meta"
	RegionIndex    = "index"
	RegionFooter   = "footer"
	RegionExternal = "external"
)

// CorruptError reports a structural problem in one region of an archive.
// errors.Is(err, ErrCorrupt) is true for every CorruptError, and
// errors.Is(err, ErrChecksum) as well when Err is ErrChecksum.
type CorruptError struct {
	Region string // one of the Region* constants
	Reason string // human-readable detail
	Err    error  // optional more specific sentinel (ErrChecksum, ...)
}

func (e *CorruptError) Error() string {
	if e.Err != nil {
		kind := strings.TrimPrefix(e.Err.Error(), "desformat: ")
		return fmt.Sprintf("desformat: corrupt archive: %s region: %s: %s", e.Region, kind, e.Reason)
	}
	return fmt.Sprintf("desformat: corrupt archive: %s region: %s", e.Region, e.Reason)
}

// Unwrap exposes ErrCorrupt and the optional specific cause to errors.Is.
func (e *CorruptError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrCorrupt, e.Err}
	}
	return []error{ErrCorrupt}
}

func corrupt(region, format string, args ...any) error {
	return &CorruptError{Region: region, Reason: fmt.Sprintf(format, args...)}
}
