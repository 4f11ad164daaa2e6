package desformat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Meta keys the writer owns. A user value for one of them is replaced in
// place (like assigning to an existing key of a Python dict, which is what
// the v1 writer did), and keys that do not apply are dropped.
const (
	MetaKeySize        = "size"
	MetaKeyIsExternal  = "is_external"
	MetaKeyExternalKey = "external_key"
	MetaKeyCRC32C      = "crc32c"
)

// maxMetaDepth bounds nesting so hostile meta cannot recurse deeply.
const maxMetaDepth = 256

// metaFields are the writer-owned values for one entry's meta.
type metaFields struct {
	size   int64
	extKey string // "" for internal payloads
	crc    uint32
	hasCRC bool // false only in tests that reproduce v1 bytes
	crcPos int  // set by the encoder: offset in dst of the quoted crc value
}

// reservedKeys lists writer-owned keys in the order v1 appends them.
var reservedKeys = [...]string{MetaKeySize, MetaKeyIsExternal, MetaKeyExternalKey, MetaKeyCRC32C}

// appendMeta appends the compact JSON meta object for one entry: the user
// object (key order kept, strings re-escaped to ASCII like Python's
// json.dumps, numbers copied verbatim so no precision is lost) plus the
// writer-owned keys.
func appendMeta(dst, user []byte, mf *metaFields) ([]byte, error) {
	user = bytes.TrimSpace(user)
	if len(user) == 0 || string(user) == "{}" {
		// Fast path for the common case: no user meta.
		dst = append(dst, '{')
		return mf.appendMissing(dst, false, [len(reservedKeys)]bool{}), nil
	}
	e := metaEncoder{src: user, dst: dst}
	if err := e.object(mf); err != nil {
		return dst, fmt.Errorf("%w: %w", ErrInvalidMeta, err)
	}
	return e.dst, nil
}

// applies reports whether reserved key i belongs in this entry's meta.
func (mf *metaFields) applies(i int) bool {
	switch reservedKeys[i] {
	case MetaKeyIsExternal, MetaKeyExternalKey:
		return mf.extKey != ""
	case MetaKeyCRC32C:
		return mf.hasCRC
	}
	return true
}

func (mf *metaFields) appendValue(dst []byte, i int) []byte {
	switch reservedKeys[i] {
	case MetaKeySize:
		return strconv.AppendInt(dst, mf.size, 10)
	case MetaKeyIsExternal:
		return append(dst, "true"...)
	case MetaKeyExternalKey:
		return appendPyString(dst, mf.extKey)
	default:
		mf.crcPos = len(dst)
		return appendCRCString(dst, mf.crc)
	}
}

// appendMissing appends the applicable reserved keys not yet written and
// closes the object.
func (mf *metaFields) appendMissing(dst []byte, wrote bool, done [len(reservedKeys)]bool) []byte {
	for i, k := range reservedKeys {
		if done[i] || !mf.applies(i) {
			continue
		}
		if wrote {
			dst = append(dst, ',')
		}
		wrote = true
		dst = append(dst, '"')
		dst = append(dst, k...)
		dst = append(dst, '"', ':')
		dst = mf.appendValue(dst, i)
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

func appendCRCString(dst []byte, crc uint32) []byte {
	dst = append(dst, '"')
	for shift := 28; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[(crc>>uint(shift))&0xf])
	}
	return append(dst, '"')
}

// appendPyString appends s as a JSON string escaped like Python's
// json.dumps(ensure_ascii=True): printable ASCII verbatim, the short
// escapes \" \\ \n \r \t \b \f, everything else as lowercase \uXXXX
// (astral characters as surrogate pairs).
func appendPyString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for _, r := range s {
		dst = appendPyRune(dst, r)
	}
	return append(dst, '"')
}

func appendPyRune(dst []byte, r rune) []byte {
	switch {
	case r == '"' || r == '\\':
		return append(dst, '\\', byte(r))
	case r >= 0x20 && r <= 0x7e:
		return append(dst, byte(r))
	case r == '\n':
		return append(dst, '\\', 'n')
	case r == '\r':
		return append(dst, '\\', 'r')
	case r == '\t':
		return append(dst, '\\', 't')
	case r == '\b':
		return append(dst, '\\', 'b')
	case r == '\f':
		return append(dst, '\\', 'f')
	case r >= 0x10000:
		r -= 0x10000
		dst = appendU16(dst, 0xd800+uint16(r>>10))
		return appendU16(dst, 0xdc00+uint16(r&0x3ff))
	}
	return appendU16(dst, uint16(r))
}

func appendU16(dst []byte, u uint16) []byte {
	return append(dst, '\\', 'u', hexDigits[u>>12], hexDigits[u>>8&0xf], hexDigits[u>>4&0xf], hexDigits[u&0xf])
}

// metaEncoder transcodes a JSON text into the canonical v1 form in one pass
// without building a tree: that keeps key order and number literals.
type metaEncoder struct {
	src   []byte
	pos   int
	dst   []byte
	depth int
}

func (e *metaEncoder) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: "+format, append([]any{e.pos}, args...)...)
}

func (e *metaEncoder) skipWS() {
	for e.pos < len(e.src) {
		switch e.src[e.pos] {
		case ' ', '\t', '\n', '\r':
			e.pos++
		default:
			return
		}
	}
}

func (e *metaEncoder) peek() byte {
	if e.pos < len(e.src) {
		return e.src[e.pos]
	}
	return 0
}

// object encodes the top-level object, merging the reserved keys.
func (e *metaEncoder) object(mf *metaFields) error {
	e.skipWS()
	if e.peek() != '{' {
		return e.errorf("meta must be a JSON object")
	}
	e.pos++
	e.dst = append(e.dst, '{')
	var done [len(reservedKeys)]bool
	wrote := false
	e.skipWS()
	if e.peek() == '}' {
		e.pos++
	} else {
		for {
			e.skipWS()
			mark := len(e.dst)
			if wrote {
				e.dst = append(e.dst, ',')
			}
			keyStart := len(e.dst)
			if err := e.str(true); err != nil {
				return err
			}
			reserved := reservedIndex(e.dst[keyStart:])
			e.skipWS()
			if e.peek() != ':' {
				return e.errorf("expected ':'")
			}
			e.pos++
			e.skipWS()
			switch {
			case reserved < 0:
				e.dst = append(e.dst, ':')
				if err := e.value(true); err != nil {
					return err
				}
				wrote = true
			case done[reserved] || !mf.applies(reserved):
				e.dst = e.dst[:mark] // drop duplicate or inapplicable key
				if err := e.value(false); err != nil {
					return err
				}
			default:
				e.dst = append(e.dst, ':')
				e.dst = mf.appendValue(e.dst, reserved)
				if err := e.value(false); err != nil {
					return err
				}
				done[reserved] = true
				wrote = true
			}
			e.skipWS()
			if c := e.peek(); c == ',' {
				e.pos++
				continue
			} else if c == '}' {
				e.pos++
				break
			}
			return e.errorf("expected ',' or '}'")
		}
	}
	e.skipWS()
	if e.pos != len(e.src) {
		return e.errorf("trailing data after meta object")
	}
	e.dst = mf.appendMissing(e.dst, wrote, done)
	return nil
}

// reservedIndex returns the index in reservedKeys of an encoded key
// (including quotes), or -1. Canonical escaping makes byte comparison exact.
func reservedIndex(quoted []byte) int {
	if len(quoted) < 2 {
		return -1
	}
	k := quoted[1 : len(quoted)-1]
	for i, r := range reservedKeys {
		if string(k) == r {
			return i
		}
	}
	return -1
}

func (e *metaEncoder) emit(emit bool, b ...byte) {
	if emit {
		e.dst = append(e.dst, b...)
	}
}

func (e *metaEncoder) value(emit bool) error {
	e.skipWS()
	switch c := e.peek(); {
	case c == '{' || c == '[':
		return e.container(emit)
	case c == '"':
		return e.str(emit)
	case c == 't':
		return e.literal("true", emit)
	case c == 'f':
		return e.literal("false", emit)
	case c == 'n':
		return e.literal("null", emit)
	case c == '-' || (c >= '0' && c <= '9'):
		return e.number(emit)
	}
	return e.errorf("unexpected %q", e.peek())
}

// container encodes a nested object or array.
func (e *metaEncoder) container(emit bool) error {
	e.depth++
	if e.depth > maxMetaDepth {
		return e.errorf("nesting deeper than %d", maxMetaDepth)
	}
	defer func() { e.depth-- }()
	open := e.src[e.pos]
	isObj := open == '{'
	closer := byte(']')
	if isObj {
		closer = '}'
	}
	e.pos++
	e.emit(emit, open)
	e.skipWS()
	if e.peek() == closer {
		e.pos++
		e.emit(emit, closer)
		return nil
	}
	for {
		e.skipWS()
		if isObj {
			if err := e.str(emit); err != nil {
				return err
			}
			e.skipWS()
			if e.peek() != ':' {
				return e.errorf("expected ':'")
			}
			e.pos++
			e.emit(emit, ':')
		}
		if err := e.value(emit); err != nil {
			return err
		}
		e.skipWS()
		switch e.peek() {
		case ',':
			e.pos++
			e.emit(emit, ',')
		case closer:
			e.pos++
			e.emit(emit, closer)
			return nil
		default:
			return e.errorf("expected ',' or %q", closer)
		}
	}
}

func (e *metaEncoder) literal(lit string, emit bool) error {
	if !bytes.HasPrefix(e.src[e.pos:], []byte(lit)) {
		return e.errorf("invalid literal")
	}
	e.pos += len(lit)
	if emit {
		e.dst = append(e.dst, lit...)
	}
	return nil
}

// number copies a JSON number literal verbatim after checking its grammar.
func (e *metaEncoder) number(emit bool) error {
	start := e.pos
	digits := func() int {
		n := 0
		for e.pos < len(e.src) && e.src[e.pos] >= '0' && e.src[e.pos] <= '9' {
			e.pos++
			n++
		}
		return n
	}
	if e.peek() == '-' {
		e.pos++
	}
	if e.peek() == '0' {
		e.pos++
	} else if digits() == 0 {
		return e.errorf("invalid number")
	}
	if e.peek() == '.' {
		e.pos++
		if digits() == 0 {
			return e.errorf("invalid number fraction")
		}
	}
	if c := e.peek(); c == 'e' || c == 'E' {
		e.pos++
		if c := e.peek(); c == '+' || c == '-' {
			e.pos++
		}
		if digits() == 0 {
			return e.errorf("invalid number exponent")
		}
	}
	e.emit(emit, e.src[start:e.pos]...)
	return nil
}

// str transcodes a JSON string into the Python ensure_ascii form. Escapes
// are re-emitted per UTF-16 code unit, which reproduces Python's output for
// surrogate pairs and keeps lone surrogates instead of mangling them.
func (e *metaEncoder) str(emit bool) error {
	if e.peek() != '"' {
		return e.errorf("expected string")
	}
	e.pos++
	e.emit(emit, '"')
	for {
		if e.pos >= len(e.src) {
			return e.errorf("unterminated string")
		}
		c := e.src[e.pos]
		switch {
		case c == '"':
			e.pos++
			e.emit(emit, '"')
			return nil
		case c == '\\':
			if err := e.escape(emit); err != nil {
				return err
			}
		case c < 0x20:
			return e.errorf("control character in string")
		case c < utf8.RuneSelf:
			e.pos++
			if emit {
				e.dst = appendPyRune(e.dst, rune(c)) // DEL (0x7f) gets escaped
			}
		default:
			r, n := utf8.DecodeRune(e.src[e.pos:])
			if r == utf8.RuneError && n <= 1 {
				return e.errorf("invalid UTF-8 in string")
			}
			e.pos += n
			if emit {
				e.dst = appendPyRune(e.dst, r)
			}
		}
	}
}

func (e *metaEncoder) escape(emit bool) error {
	if e.pos+1 >= len(e.src) {
		return e.errorf("truncated escape")
	}
	c := e.src[e.pos+1]
	e.pos += 2
	var r rune
	switch c {
	case '"', '\\', '/':
		r = rune(c)
	case 'n':
		r = '\n'
	case 'r':
		r = '\r'
	case 't':
		r = '\t'
	case 'b':
		r = '\b'
	case 'f':
		r = '\f'
	case 'u':
		if e.pos+4 > len(e.src) {
			return e.errorf("truncated \\u escape")
		}
		v, err := strconv.ParseUint(string(e.src[e.pos:e.pos+4]), 16, 16)
		if err != nil {
			return e.errorf("invalid \\u escape")
		}
		e.pos += 4
		r = rune(v) // a surrogate half stays a half: appendPyRune escapes it
	default:
		return e.errorf("invalid escape \\%c", c)
	}
	if emit {
		e.dst = appendPyRune(e.dst, r)
	}
	return nil
}

// metaInfo is what the reader needs from an entry's meta.
type metaInfo struct {
	crc         uint32
	hasCRC      bool
	externalKey string
	mime        string          // the user's "mime" value when it is a JSON string
	size        json.RawMessage // nil when absent (old v1 archives)
	isExternal  json.RawMessage
}

// parseMetaInfo extracts the checksum and external key from meta JSON.
// Fields are decoded leniently (v1 meta is whatever users stored) except
// crc32c when trustCRC says our writer owns that key; archives without it
// (all v1 archives) are never checked against a user's "crc32c" value.
func parseMetaInfo(meta []byte, trustCRC bool) (metaInfo, error) {
	var m struct {
		CRC32C      json.RawMessage `json:"crc32c"`
		ExternalKey json.RawMessage `json:"external_key"`
		Size        json.RawMessage `json:"size"`
		IsExternal  json.RawMessage `json:"is_external"`
		Mime        json.RawMessage `json:"mime"`
	}
	var mi metaInfo
	if err := json.Unmarshal(meta, &m); err != nil {
		return mi, fmt.Errorf("meta is not a JSON object: %w", err)
	}
	mi.size, mi.isExternal = m.Size, m.IsExternal
	if m.ExternalKey != nil {
		// A non-string key stays "" and fails when the payload is opened.
		_ = json.Unmarshal(m.ExternalKey, &mi.externalKey)
	}
	if m.Mime != nil {
		// User data: a value of another type is no media type, not an error.
		_ = json.Unmarshal(m.Mime, &mi.mime)
	}
	if trustCRC && m.CRC32C != nil {
		var s string
		_ = json.Unmarshal(m.CRC32C, &s)
		v, err := strconv.ParseUint(s, 16, 32)
		if err != nil || len(s) != 8 {
			return mi, fmt.Errorf("meta crc32c %s is not 8 hex digits", m.CRC32C)
		}
		mi.crc, mi.hasCRC = uint32(v), true
	}
	return mi, nil
}

// MetaInfo is what serving a file needs from its meta object.
type MetaInfo struct {
	CRC32C      uint32
	HasCRC      bool   // the archive's writer owns "crc32c" and the entry has one
	ExternalKey string // "" for internal payloads
	Mime        string // the "mime" value when it is a string, unvalidated user data
}

// ParseMeta extracts MetaInfo from an entry's meta bytes as stored (for
// example fetched in bulk from the meta region), with the same checks Open
// applies: malformed JSON or a malformed writer-owned crc32c is corrupt.
func (r *Reader) ParseMeta(name string, meta []byte) (MetaInfo, error) {
	trust := r.footer.HasPayloadChecksums()
	mi, ok := parseMetaFast(meta, trust)
	if !ok {
		var err error
		if mi, err = parseMetaInfo(meta, trust); err != nil {
			return MetaInfo{}, corrupt(RegionMeta, "%q: %v", name, err)
		}
	}
	return MetaInfo{CRC32C: mi.crc, HasCRC: mi.hasCRC, ExternalKey: mi.externalKey, Mime: mi.mime}, nil
}

// OpenWithMeta is Open for a caller that already has the entry and its
// MetaInfo (from ParseMeta), so no meta read is needed.
func (r *Reader) OpenWithMeta(ctx context.Context, e Entry, mi MetaInfo) (*File, error) {
	if err := checkReadable(&e); err != nil {
		return nil, err
	}
	return r.openWithMeta(ctx, &e, metaInfo{crc: mi.CRC32C, hasCRC: mi.HasCRC, externalKey: mi.ExternalKey})
}

// DecodeMeta decodes meta JSON into a map with numbers as json.Number, so
// large integers and float literals survive unchanged.
func DecodeMeta(meta []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(meta))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMeta, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%w: meta is null, want an object", ErrInvalidMeta)
	}
	return m, nil
}
