package naming

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Layout constants of a v1 name. The part after "PREFIX_" is fixed-width:
// "YYYYMMDD_(" (10) + 12 hex digits + "_" + 2 hex digits + ")" = 26 bytes.
const (
	// MaxPrefixLen bounds a prefix so that names stay short catalog keys.
	MaxPrefixLen = 32
	// MaxNameLen is the v1 limit on a name (its length is stored as a u16 in the archive index).
	MaxNameLen = 65535
	// DefaultPrefix is used by Generator when Config.Prefix is empty.
	DefaultPrefix = "DES"

	coreLen   = 26 // bytes after "PREFIX_", extension excluded
	fixedLen  = coreLen + 1
	msPerDay  = 24 * 60 * 60 * 1000
	hexUpper  = "0123456789ABCDEF"
	forbidden = "/\\:*?\"<>|" // characters a v1 archive rejects in names
)

var (
	// ErrMalformed is wrapped by every error about a name that does not have the v1 layout.
	ErrMalformed = errors.New("naming: malformed name")
	// ErrChecksum is wrapped by the error of a well-formed name whose CC does not match F.
	ErrChecksum = errors.New("naming: checksum mismatch")
)

// ParseError reports why a name is malformed. It wraps ErrMalformed.
type ParseError struct {
	Name   string // the input, possibly truncated for display
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("naming: malformed name %q: %s", e.Name, e.Reason)
}

// Unwrap lets callers test with errors.Is(err, ErrMalformed).
func (e *ParseError) Unwrap() error { return ErrMalformed }

// ChecksumError reports a well-formed name whose checksum byte is wrong. It wraps ErrChecksum.
type ChecksumError struct {
	Name string // the input, possibly truncated for display
	Got  uint8  // CC as written in the name
	Want uint8  // CC computed from F
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("naming: checksum mismatch in %q: name has %02X, F sums to %02X", e.Name, e.Got, e.Want)
}

// Unwrap lets callers test with errors.Is(err, ErrChecksum).
func (e *ChecksumError) Unwrap() error { return ErrChecksum }

// Day is a UTC calendar day, the YYYYMMDD part of a name.
type Day struct {
	Year  int
	Month time.Month
	Day   int
}

// DayOf returns the UTC calendar day of t.
func DayOf(t time.Time) Day {
	y, m, d := t.UTC().Date()
	return Day{Year: y, Month: m, Day: d}
}

// ParseDay parses "YYYYMMDD" and rejects dates that do not exist (20250229, 20251301, ...).
func ParseDay(s string) (Day, error) {
	d, ok := parseDay(s)
	if !ok {
		return Day{}, fmt.Errorf("naming: invalid day %q: want an existing date as YYYYMMDD", s)
	}
	return d, nil
}

// Valid reports whether d is an existing date with a four-digit year.
func (d Day) Valid() bool {
	if d.Year < 0 || d.Year > 9999 || d.Month < 1 || d.Month > 12 || d.Day < 1 {
		return false
	}
	// time.Date normalises 31 April to 1 May: a round trip detects days past the month's end.
	return DayOf(d.Time()) == d
}

// Time returns midnight UTC at the start of d.
func (d Day) Time() time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
}

// String formats d as YYYYMMDD.
func (d Day) String() string {
	return string(d.appendTo(make([]byte, 0, 8)))
}

func (d Day) appendTo(b []byte) []byte {
	b = appendDigits(b, d.Year, 4)
	b = appendDigits(b, int(d.Month), 2)
	return appendDigits(b, d.Day, 2)
}

// appendDigits writes v as exactly width decimal digits (v must fit).
func appendDigits(b []byte, v, width int) []byte {
	var tmp [4]byte
	for i := width - 1; i >= 0; i-- {
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, tmp[:width]...)
}

func parseDay(s string) (Day, bool) {
	if len(s) != 8 {
		return Day{}, false
	}
	v := 0
	for i := 0; i < 8; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return Day{}, false
		}
		v = v*10 + int(c-'0')
	}
	d := Day{Year: v / 10000, Month: time.Month(v / 100 % 100), Day: v % 100}
	return d, d.Valid()
}

// Name is a parsed or generated DES name.
type Name struct {
	Prefix   string // letters, digits and '-', starting with a letter or digit, at most MaxPrefixLen
	Day      Day
	TimeBits uint32 // low 32 bits of the Unix milliseconds at generation
	Node     uint8
	Seq      uint8
	Ext      string // "" or an extension starting with '.', e.g. ".pdf"
}

// ID returns F, the 48-bit [time bits][node][sequence] value.
func (n Name) ID() uint64 {
	return uint64(n.TimeBits)<<16 | uint64(n.Node)<<8 | uint64(n.Seq)
}

// Checksum returns CC: the sum of F's six big-endian bytes mod 256.
func (n Name) Checksum() uint8 {
	t := n.TimeBits
	return uint8(t>>24) + uint8(t>>16) + uint8(t>>8) + uint8(t) + n.Node + n.Seq
}

// Time reconstructs the full generation time from the day and the time bits. It is meaningful only for names
// whose day came from the generation clock: ok is false when no instant of the day has these time bits.
func (n Name) Time() (t time.Time, ok bool) {
	if !n.Day.Valid() {
		return time.Time{}, false
	}
	start := n.Day.Time().UnixMilli()
	// The time bits are ms mod 2^32; a day (86.4M ms) is shorter than 2^32 ms, so at most one ms matches.
	off := int64(n.TimeBits - uint32(start))
	if off >= msPerDay {
		return time.Time{}, false
	}
	return time.UnixMilli(start + off).UTC(), true
}

// Validate reports whether n can be formatted into a name that Parse accepts.
func (n Name) Validate() error {
	if err := checkPrefix(n.Prefix); err != nil {
		return err
	}
	if !n.Day.Valid() {
		return fmt.Errorf("naming: invalid day %04d-%02d-%02d", n.Day.Year, int(n.Day.Month), n.Day.Day)
	}
	if err := checkExt(n.Ext); err != nil {
		return err
	}
	if l := len(n.Prefix) + fixedLen + len(n.Ext); l > MaxNameLen {
		return fmt.Errorf("naming: name would be %d bytes, more than %d", l, MaxNameLen)
	}
	return nil
}

// String formats n. It does not validate: call Validate first for values not produced by Parse or Generator.
func (n Name) String() string {
	var sb strings.Builder
	sb.Grow(len(n.Prefix) + fixedLen + len(n.Ext))
	var buf [fixedLen]byte
	sb.WriteString(n.Prefix)
	sb.Write(n.appendCore(buf[:0]))
	sb.WriteString(n.Ext)
	return sb.String()
}

// AppendTo appends the formatted name to dst; with a reused buffer it does not allocate.
func (n Name) AppendTo(dst []byte) []byte {
	dst = append(dst, n.Prefix...)
	dst = n.appendCore(dst)
	return append(dst, n.Ext...)
}

// appendCore writes "_YYYYMMDD_(FFFFFFFFFFFF_CC)".
func (n Name) appendCore(b []byte) []byte {
	b = append(b, '_')
	b = n.Day.appendTo(b)
	b = append(b, '_', '(')
	f := n.ID()
	for shift := 44; shift >= 0; shift -= 4 {
		b = append(b, hexUpper[f>>uint(shift)&0xF])
	}
	cc := n.Checksum()
	return append(b, '_', hexUpper[cc>>4], hexUpper[cc&0xF], ')')
}

// Parse decodes a name, validating prefix, day, layout, extension and checksum. Hex digits must be upper
// case, as v1 writes them, so that a parsed name formats back to exactly the same string.
//
// When only the checksum is wrong, Parse returns the decoded Name together with a *ChecksumError (wrapping
// ErrChecksum), so that tools can show what the name claims. Any other failure returns a *ParseError
// (wrapping ErrMalformed) and a zero Name.
func Parse(s string) (Name, error) {
	n, cc, reason := decode(s)
	if reason != "" {
		return Name{}, &ParseError{Name: clip(s), Reason: reason}
	}
	if want := n.Checksum(); cc != want {
		return n, &ChecksumError{Name: clip(s), Got: cc, Want: want}
	}
	return n, nil
}

// decode splits s into its fields; reason is non-empty when s is malformed.
func decode(s string) (n Name, cc uint8, reason string) {
	if len(s) > MaxNameLen {
		return n, 0, fmt.Sprintf("longer than %d bytes", MaxNameLen)
	}
	// Prefixes cannot contain '_', so the first '_' ends the prefix.
	us := strings.IndexByte(s, '_')
	if us < 0 {
		return n, 0, "no '_' after the prefix"
	}
	if err := checkPrefix(s[:us]); err != nil {
		return n, 0, "bad prefix"
	}
	rest := s[us+1:]
	if len(rest) < coreLen {
		return n, 0, "too short for _YYYYMMDD_(FFFFFFFFFFFF_CC)"
	}
	day, ok := parseDay(rest[:8])
	if !ok {
		return n, 0, "day is not an existing date as YYYYMMDD"
	}
	if rest[8] != '_' || rest[9] != '(' || rest[22] != '_' || rest[25] != ')' {
		return n, 0, "separators are not _YYYYMMDD_(FFFFFFFFFFFF_CC)"
	}
	f, ok := parseHex(rest[10:22])
	if !ok {
		return n, 0, "F is not 12 upper-case hex digits"
	}
	c, ok := parseHex(rest[23:25])
	if !ok {
		return n, 0, "CC is not 2 upper-case hex digits"
	}
	ext := rest[coreLen:]
	if err := checkExt(ext); err != nil {
		return n, 0, "bad extension"
	}
	n = Name{
		Prefix:   s[:us],
		Day:      day,
		TimeBits: uint32(f >> 16),
		Node:     uint8(f >> 8),
		Seq:      uint8(f),
		Ext:      ext,
	}
	return n, uint8(c), ""
}

// parseHex accepts upper-case hex only: lower case would not round-trip to the same name.
func parseHex(s string) (uint64, bool) {
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | uint64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// checkPrefix enforces the prefix alphabet. '_' is excluded because it delimits the prefix; the alphabet is
// deliberately narrow (v1 names seen so far use DES, IMG, X9) and can be widened without breaking parsing.
func checkPrefix(p string) error {
	if p == "" || len(p) > MaxPrefixLen {
		return fmt.Errorf("naming: prefix %q must be 1 to %d characters", clip(p), MaxPrefixLen)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		alnum := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '-' || i == 0) {
			return fmt.Errorf("naming: prefix %q: want letters, digits and '-', starting with a letter or digit", clip(p))
		}
	}
	return nil
}

// checkExt accepts "" or '.' followed by at least one character, as valid UTF-8 without the characters a v1
// archive forbids in names.
func checkExt(e string) error {
	if e == "" {
		return nil
	}
	if len(e) < 2 || e[0] != '.' {
		return fmt.Errorf("naming: extension %q must be '.' followed by at least one character", clip(e))
	}
	if !utf8.ValidString(e) {
		return fmt.Errorf("naming: extension %q is not valid UTF-8", clip(e))
	}
	if strings.ContainsAny(e, forbidden) {
		return fmt.Errorf("naming: extension %q contains one of %s", clip(e), forbidden)
	}
	return nil
}

// clip shortens a string for error messages: names may be up to 64 KiB.
func clip(s string) string {
	const limit = 80
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
