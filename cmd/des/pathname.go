package main

import (
	"io/fs"
	"path/filepath"
	"strings"
)

// Paths in archive names.
//
// A DES name cannot hold "/" (nor \ : * ? " < > |): DES v1 forbids them, and the v1 reader finds an
// external payload at <folder of the archive>/_bigFiles/NAME, which must stay one key level deep.
// Archives des writes must stay readable by v1 readers, so a path is not stored as is: des pack
// stores the path dir/sub/a.txt under the name dir%2Fsub%2Fa.txt, a valid v1 name that a v1
// reader lists and opens like any other. The encoding is percent-escaping of exactly the forbidden
// characters, plus "%" where it would otherwise read as an escape (followed by two hex digits):
//
//	/ %2F   \ %5C   : %3A   * %2A   ? %3F   " %22   < %3C   > %3E   | %7C   % %25
//
// so names without those characters (every DES name, most file names) are stored unchanged.
// des ls shows names decoded, and cat, meta and get accept paths, so users see and type paths.

// nameEscapes maps each character a name cannot hold (and '%') to its escape.
var nameEscapes = map[byte]string{
	'/': "%2F", '\\': "%5C", ':': "%3A", '*': "%2A", '?': "%3F",
	'"': "%22", '<': "%3C", '>': "%3E", '|': "%7C", '%': "%25",
}

// nameUnescapes is nameEscapes reversed, keyed by the two hex digits.
var nameUnescapes = func() map[string]byte {
	m := make(map[string]byte, len(nameEscapes))
	for c, esc := range nameEscapes {
		m[esc[1:]] = c
	}
	return m
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// hexPairAt reports whether s[i:i+2] are two hex digits.
func hexPairAt(s string, i int) bool {
	return i+1 < len(s) && isHex(s[i]) && isHex(s[i+1])
}

// escapePath returns the archive name for a slash-separated path. It allocates only when the path
// holds a character to escape, which keeps packing 100,000 plain paths cheap.
func escapePath(p string) string {
	i := 0
	for ; i < len(p); i++ {
		if needsEscape(p, i) {
			break
		}
	}
	if i == len(p) {
		return p
	}
	var b strings.Builder
	b.Grow(len(p) + 8)
	b.WriteString(p[:i])
	for ; i < len(p); i++ {
		if needsEscape(p, i) {
			b.WriteString(nameEscapes[p[i]])
		} else {
			b.WriteByte(p[i])
		}
	}
	return b.String()
}

// escapable is nameEscapes as a table: escapePath looks at every byte of every path it packs,
// and a map lookup per byte was a tenth of des pack's CPU time on 100,000 files.
var escapable = func() (t [256]bool) {
	for c := range nameEscapes {
		t[c] = true
	}
	return t
}()

// needsEscape: a forbidden character always; '%' only when two hex digits follow, since only
// then could the decoder mistake it for an escape.
func needsEscape(p string, i int) bool {
	c := p[i]
	if c == '%' {
		return hexPairAt(p, i+1)
	}
	return escapable[c]
}

// unescapeName decodes a name written by escapePath. Only the escapes above are decoded (a '%'
// before anything else stays), so decoding an escaped path gives the path back.
func unescapeName(name string) string {
	if !strings.Contains(name, "%") {
		return name
	}
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		if name[i] == '%' && hexPairAt(name, i+1) {
			if c, ok := nameUnescapes[name[i+1:i+3]]; ok { // upper case only, as escapePath writes
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(name[i])
	}
	return b.String()
}

// displayName is how des shows a stored name: the path it decodes to when escapePath writes
// exactly this name for that path and the path is clean and relative (no "..", no leading "/",
// no empty element); else the name exactly as stored. So a name from another writer that merely
// looks escaped never shows as a path leaving DIR, and whatever des ls shows, des cat finds.
func displayName(name string) string {
	p := unescapeName(name)
	if p == name || !isLocalPath(p) || escapePath(p) != name {
		return name
	}
	return p
}

// isLocalPath reports whether p is a clean slash-separated relative path naming something
// below a directory: what an extract may create.
func isLocalPath(p string) bool {
	return p != "." && fs.ValidPath(p)
}

// archivePath is the path des pack stores for an input path, following GNU tar: the path as
// given, cleaned, with leading "/" and leading "../" elements removed (tar prints "Removing
// leading `/' from member names" for the same). The walk root "." or ".." gives "" (its files
// are stored by their path below it).
func archivePath(osPath string) string {
	p := filepath.ToSlash(filepath.Clean(osPath))
	p = strings.TrimLeft(p, "/")
	for p == ".." || strings.HasPrefix(p, "../") {
		p = strings.TrimPrefix(strings.TrimPrefix(p, ".."), "/")
	}
	if p == "." {
		return ""
	}
	return p
}
