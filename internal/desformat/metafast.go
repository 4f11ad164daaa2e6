package desformat

import (
	"encoding/json"
	"unicode/utf8"
)

// parseMetaFast is parseMetaInfo for the meta objects writers produce (flat objects whose crc32c,
// external_key and mime values are plain strings), without reflection: summarising a million entries
// at open then costs well under a second instead of several. It answers ok=false whenever its result
// could differ from parseMetaInfo's (escapes in keys or in those values, keys that match a field only
// case-insensitively, non-string values for those keys, anything not an object), and the caller then
// uses parseMetaInfo. It does not fill size and is_external, which only Verify needs.
func parseMetaFast(meta []byte, trustCRC bool) (mi metaInfo, ok bool) {
	if !json.Valid(meta) {
		return mi, false
	}
	s := metaScan{b: meta}
	s.ws()
	if !s.eat('{') {
		return mi, false
	}
	var crc []byte
	var hasCRC bool
	for s.ws(); !s.eat('}'); s.ws() {
		s.eat(',')
		s.ws()
		key, plain := s.str()
		if !plain || foldsToField(string(key)) {
			return mi, false
		}
		s.ws()
		s.eat(':')
		s.ws()
		switch string(key) {
		case MetaKeyCRC32C, MetaKeyExternalKey, "mime":
			if s.peek() != '"' {
				return mi, false
			}
			v, plain := s.str()
			if !plain {
				return mi, false
			}
			switch string(key) {
			case MetaKeyCRC32C:
				crc, hasCRC = v, true
			case MetaKeyExternalKey:
				mi.externalKey = string(v)
			default:
				mi.mime = string(v)
			}
		default:
			s.skipValue()
		}
	}
	if trustCRC && hasCRC {
		v, ok := parseHex32(crc)
		if !ok {
			return mi, false // parseMetaInfo reports it
		}
		mi.crc, mi.hasCRC = v, true
	}
	return mi, true
}

// metaStructKeys lists the keys parseMetaInfo's struct decodes; encoding/json matches them case-insensitively.
var metaStructKeys = [...]string{MetaKeyCRC32C, MetaKeyExternalKey, MetaKeySize, MetaKeyIsExternal, "mime"}

// foldsToField reports whether key would reach one of parseMetaInfo's fields without being spelled
// exactly like it (encoding/json folds case, including non-ASCII letters such as ſ and K), so the fast
// path must not decide.
func foldsToField(key string) bool {
	for _, f := range metaStructKeys {
		if key == f {
			return false
		}
	}
	for i := 0; i < len(key); i++ {
		if key[i] >= 0x80 {
			return true // may fold to ASCII: leave it to encoding/json
		}
	}
	for _, f := range metaStructKeys {
		if len(key) == len(f) && asciiEqualFold(key, f) {
			return true
		}
	}
	return false
}

func asciiEqualFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// metaScan walks JSON already checked by json.Valid, so it needs no error handling of its own.
type metaScan struct {
	b   []byte
	pos int
}

func (s *metaScan) peek() byte {
	if s.pos < len(s.b) {
		return s.b[s.pos]
	}
	return 0
}

func (s *metaScan) ws() {
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *metaScan) eat(c byte) bool {
	if s.peek() == c {
		s.pos++
		return true
	}
	return false
}

// parseHex32 parses exactly 8 hex digits (either case), as strconv.ParseUint(s, 16, 32) with len 8 does.
func parseHex32(b []byte) (uint32, bool) {
	if len(b) != 8 {
		return 0, false
	}
	var v uint32
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint32(c)
	}
	return v, true
}

// str consumes a string and returns its bytes (aliasing the input); plain is false when it has
// escapes or invalid UTF-8, where the bytes are not its decoded value.
func (s *metaScan) str() (v []byte, plain bool) {
	s.pos++ // opening quote
	start, plain := s.pos, true
	for ; s.b[s.pos] != '"'; s.pos++ {
		if s.b[s.pos] == '\\' {
			plain = false
			s.pos++
		}
	}
	s.pos++
	v = s.b[start : s.pos-1]
	// encoding/json replaces invalid UTF-8, so only valid text decodes to its own bytes.
	if !plain || !utf8.Valid(v) {
		return nil, false
	}
	return v, true
}

// skipValue consumes one value of any kind.
func (s *metaScan) skipValue() {
	switch s.peek() {
	case '"':
		s.str()
		return
	case '{', '[':
		depth := 0
		for {
			switch s.peek() {
			case '"':
				s.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.pos++
			if depth == 0 {
				return
			}
		}
	}
	// A number or literal: up to the next delimiter.
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return
		}
		s.pos++
	}
}
