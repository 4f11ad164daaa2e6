package main

import (
	"strings"
	"testing"

	"github.com/datavision/des/internal/desformat"
)

func TestEscapePath(t *testing.T) {
	for _, tc := range []struct{ path, name string }{
		{"a.txt", "a.txt"},
		{"dir/sub/a.txt", "dir%2Fsub%2Fa.txt"},
		{"ż/日本語 file.txt", "ż%2F日本語 file.txt"},
		{`a\b:c*d?e"f<g>h|i`, "a%5Cb%3Ac%2Ad%3Fe%22f%3Cg%3Eh%7Ci"},
		{"100%.txt", "100%.txt"},   // a '%' that cannot be read as an escape stays
		{"50%off", "50%off"},       // 'o' is not a hex digit
		{"%2F", "%252F"},           // looks like an escape: the '%' is escaped
		{"%2f", "%252f"},           // lower case too, though only upper case is decoded
		{"%41", "%2541"},           // any hex pair, not only the escapes
		{"%%2F", "%%252F"},         // only the '%' before the hex pair
		{"a%/b", "a%%2Fb"},         // '%' before an escape it does not start
		{"%2/x", "%2%2Fx"},         // one hex digit, then an escaped '/'
		{"trailing%", "trailing%"}, // nothing follows
		{"DES_20260224_(0a1b2c3d4e5f_9a).bin", "DES_20260224_(0a1b2c3d4e5f_9a).bin"}, // DES names stay
	} {
		t.Run(tc.path, func(t *testing.T) {
			got := escapePath(tc.path)
			if got != tc.name {
				t.Fatalf("escapePath(%q) = %q, want %q", tc.path, got, tc.name)
			}
			if err := desformat.ValidateName(got); err != nil {
				t.Fatalf("escaped name is not a valid DES name: %v", err)
			}
			if back := unescapeName(got); back != tc.path {
				t.Fatalf("unescapeName(%q) = %q, want %q", got, back, tc.path)
			}
		})
	}
}

// displayName decodes what escapePath wrote, and shows anything else exactly as stored: a v1
// name never turns into a path leaving the directory an extract writes to.
func TestDisplayName(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"plain", "plain"},
		{"dir%2Fsub%2Fa.txt", "dir/sub/a.txt"},
		{"a%3Ab", "a:b"},
		{"dir%2fsub", "dir%2fsub"},             // lower case is not what escapePath writes
		{"100%25.txt", "100%25.txt"},           // escapePath writes 100%.txt for 100%.txt, so this is no escape
		{"x%2541", "x%41"},                     // the '%' before a hex pair is escaped
		{"..%2Fescape", "..%2Fescape"},         // would climb out: shown raw
		{"%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd"}, // absolute: shown raw
		{"a%2F%2Fb", "a%2F%2Fb"},               // empty element: shown raw
		{"a%2F.%2Fb", "a%2F.%2Fb"},             // "." element: shown raw
		{"dir%2F", "dir%2F"},                   // trailing "/": shown raw
		{"%41", "%41"},                         // not an escape
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := displayName(tc.name); got != tc.want {
				t.Fatalf("displayName(%q) = %q, want %q", tc.name, got, tc.want)
			}
		})
	}
}

// Like GNU tar: the path as given, cleaned, without leading "/" and "../".
func TestArchivePath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"dir/sub/a.txt", "dir/sub/a.txt"},
		{"./dir/sub/a.txt", "dir/sub/a.txt"},
		{"dir//sub/./a.txt", "dir/sub/a.txt"},
		{"dir/x/../a.txt", "dir/a.txt"},
		{"/abs/dir/a.txt", "abs/dir/a.txt"},
		{"//abs/a.txt", "abs/a.txt"},
		{"../a.txt", "a.txt"},
		{"../../up/a.txt", "up/a.txt"},
		{"/../a.txt", "a.txt"},
		{"..", ""},
		{".", ""},
		{"/", ""},
		{"...", "..."}, // a name, not a parent
		{"..a/b", "..a/b"},
	} {
		if got := archivePath(tc.in); got != tc.want {
			t.Errorf("archivePath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzPathName checks the two promises of the encoding on any input: every path becomes a valid
// DES name that decodes back to it, and every name displays either as stored or as a local path
// that escapes back to the name (so what des ls shows, des cat finds).
func FuzzPathName(f *testing.F) {
	for _, s := range []string{"dir/sub/a.txt", "%2F", "a%/b", "100%25", `\:*?"<>|%`, "..%2F..%2Fx", "ż/%4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name := escapePath(s)
		if strings.ContainsAny(name, `/\:*?"<>|`) {
			t.Fatalf("escapePath(%q) = %q holds a forbidden character", s, name)
		}
		if back := unescapeName(name); back != s {
			t.Fatalf("unescapeName(escapePath(%q)) = %q", s, back)
		}
		shown := displayName(s)
		if shown != s && (!isLocalPath(shown) || escapePath(shown) != s) {
			t.Fatalf("displayName(%q) = %q: neither the name nor a local path escaping back to it", s, shown)
		}
	})
}
