package naming

import (
	"errors"
	"testing"
)

// FuzzParse: Parse never panics, fails only with ErrMalformed or ErrChecksum, and whatever it accepts formats
// back to exactly the input (so a name has one spelling, and the catalog key is the parsed name).
func FuzzParse(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.Name)
		f.Add(v.Name + ".pdf")
	}
	for _, s := range []string{"", "_", "A_", "DES_20240229_(FFFFFFFFFFFF_FA)", "DES_20260224_(008A8C5EFF00_74)",
		"DES_20260224_(008a8c5eff00_73)", "DES_20260224_(008A8C5EFF00_73).", "DES_20260224_(008A8C5EFF00_73).\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		switch {
		case err == nil:
			if got := n.String(); got != s {
				t.Fatalf("Parse(%q).String() = %q", s, got)
			}
			if err := n.Validate(); err != nil {
				t.Fatalf("Parse(%q) accepted a name Validate rejects: %v", s, err)
			}
		case errors.Is(err, ErrChecksum):
			// The fields are decoded; with the right checksum they form a valid name.
			if _, err := Parse(n.String()); err != nil {
				t.Fatalf("Parse(%q) gave fields %+v that do not re-parse: %v", s, n, err)
			}
		case !errors.Is(err, ErrMalformed):
			t.Fatalf("Parse(%q) error %v is neither ErrMalformed nor ErrChecksum", s, err)
		}
		for _, bits := range []int{MinShardBits, 8, MaxShardBits} {
			if sh, err := Shard(s, bits); err != nil || sh >= 1<<bits {
				t.Fatalf("Shard(%q, %d) = %d, %v", s, bits, sh, err)
			}
		}
	})
}
