package naming

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		in   string
		want Name
	}{
		{"DES_20260224_(008A8C5EFF00_73)", Name{Prefix: "DES", Day: Day{2026, 2, 24}, TimeBits: 0x008A8C5E, Node: 0xFF}},
		{"X9_20240229_(FFFFFFFFFFFF_FA)", Name{Prefix: "X9", Day: Day{2024, 2, 29}, TimeBits: 0xFFFFFFFF, Node: 0xFF, Seq: 0xFF}},
		{"a-b_00000101_(000000000000_00)", Name{Prefix: "a-b", Day: Day{0, 1, 1}}},
		{"IMG_99991231_(000000000102_03).tar.gz", Name{Prefix: "IMG", Day: Day{9999, 12, 31}, Node: 1, Seq: 2, Ext: ".tar.gz"}},
		{"DES_20260224_(008A8C5EFF00_73).pdf", Name{Prefix: "DES", Day: Day{2026, 2, 24}, TimeBits: 0x008A8C5E, Node: 0xFF, Ext: ".pdf"}},
		{"DES_20260224_(008A8C5EFF00_73).é_(x)", Name{Prefix: "DES", Day: Day{2026, 2, 24}, TimeBits: 0x008A8C5E, Node: 0xFF, Ext: ".é_(x)"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tt.want {
				t.Fatalf("Parse = %+v, want %+v", got, tt.want)
			}
			if s := got.String(); s != tt.in {
				t.Fatalf("String() = %q", s)
			}
			if b := got.AppendTo([]byte("x:")); string(b) != "x:"+tt.in {
				t.Fatalf("AppendTo = %q", b)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	const ok = "DES_20260224_(008A8C5EFF00_73)"
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"no underscore", "DES20260224"},
		{"empty prefix", "_20260224_(008A8C5EFF00_73)"},
		{"prefix starts with dash", "-DES_20260224_(008A8C5EFF00_73)"},
		{"prefix with dot", "D.S_20260224_(008A8C5EFF00_73)"},
		{"prefix too long", strings.Repeat("A", MaxPrefixLen+1) + ok[3:]},
		{"prefix with underscore", "MY_DES_20260224_(008A8C5EFF00_73)"},
		{"truncated", ok[:len(ok)-1]},
		{"day not digits", "DES_2026O224_(008A8C5EFF00_73)"},
		{"month 13", "DES_20261324_(008A8C5EFF00_73)"},
		{"31 April", "DES_20260431_(008A8C5EFF00_73)"},
		{"29 Feb non-leap", "DES_20250229_(008A8C5EFF00_73)"},
		{"day 00", "DES_20260200_(008A8C5EFF00_73)"},
		{"lower-case hex", "DES_20260224_(008a8c5eff00_73)"},
		{"lower-case cc", "DES_20260224_(008A8C5EFF00_7a)"},
		{"F too short", "DES_20260224_(08A8C5EFF00_73)"},
		{"F too long", "DES_20260224_(0008A8C5EFF00_73)"},
		{"missing paren", "DES_20260224_008A8C5EFF00_73)"},
		{"dash separator", "DES_20260224-(008A8C5EFF00_73)"},
		{"ext without dot", ok + "pdf"},
		{"ext only dot", ok + "."},
		{"ext with slash", ok + ".a/b"},
		{"ext with colon", ok + ".a:b"},
		{"ext invalid utf8", ok + ".\xff"},
		{"too long", ok + "." + strings.Repeat("x", MaxNameLen)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse(tt.in)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) error = %v, want ErrMalformed", tt.in, err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Reason == "" {
				t.Fatalf("error %v is not a *ParseError with a reason", err)
			}
			if n != (Name{}) {
				t.Fatalf("malformed name returned %+v", n)
			}
		})
	}
}

func TestParseChecksum(t *testing.T) {
	n, err := Parse("DES_20260224_(008A8C5EFF00_74).pdf")
	if !errors.Is(err, ErrChecksum) || errors.Is(err, ErrMalformed) {
		t.Fatalf("error = %v, want ErrChecksum only", err)
	}
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Got != 0x74 || ce.Want != 0x73 {
		t.Fatalf("error = %#v", err)
	}
	// The decoded fields come back so tools can show what the name claims.
	if n.TimeBits != 0x008A8C5E || n.Node != 0xFF || n.Ext != ".pdf" {
		t.Fatalf("fields = %+v", n)
	}
}

func TestChecksumSumsBigEndianBytes(t *testing.T) {
	n := Name{TimeBits: 0x01020304, Node: 0x05, Seq: 0xFF}
	if got, want := n.Checksum(), uint8((1+2+3+4+5+0xFF)%256); got != want {
		t.Fatalf("Checksum = %02X, want %02X", got, want)
	}
	if got := n.ID(); got != 0x0102030405FF {
		t.Fatalf("ID = %012X", got)
	}
}

func TestDay(t *testing.T) {
	tests := []struct {
		in    string
		valid bool
	}{
		{"20240229", true}, {"20250229", false}, {"20000229", true}, {"19000229", false},
		{"00000101", true}, {"99991231", true}, {"20261301", false}, {"20260100", false},
		{"2026011", false}, {"202601011", false}, {"2026-1-1", false}, {"+2026011", false},
	}
	for _, tt := range tests {
		d, err := ParseDay(tt.in)
		if (err == nil) != tt.valid {
			t.Errorf("ParseDay(%q) err = %v, want valid=%v", tt.in, err, tt.valid)
			continue
		}
		if tt.valid && d.String() != tt.in {
			t.Errorf("ParseDay(%q).String() = %q", tt.in, d.String())
		}
	}
	// The day of a time is its UTC day, whatever the time's location.
	east := time.FixedZone("UTC+10", 10*3600)
	if got := DayOf(time.Date(2026, 3, 1, 5, 0, 0, 0, east)); got != (Day{2026, 2, 28}) {
		t.Errorf("DayOf(05:00 UTC+10 on 1 March) = %v, want 20260228", got)
	}
	for _, d := range []Day{{}, {-1, 1, 1}, {10000, 1, 1}, {2026, 4, 31}} {
		if d.Valid() {
			t.Errorf("%+v reported valid", d)
		}
	}
}

func TestNameTime(t *testing.T) {
	at := time.Date(2026, 2, 24, 13, 14, 15, 678e6, time.UTC)
	n := Name{Prefix: "DES", Day: DayOf(at), TimeBits: uint32(at.UnixMilli())}
	if got, ok := n.Time(); !ok || !got.Equal(at) {
		t.Fatalf("Time() = %v, %v; want %v", got, ok, at)
	}
	// Time bits of another day (as with an explicit day) do not map into this day.
	n.TimeBits = uint32(at.Add(-25 * time.Hour).UnixMilli())
	if _, ok := n.Time(); ok {
		t.Fatalf("Time() accepted time bits from the day before")
	}
}

func TestValidate(t *testing.T) {
	good := Name{Prefix: "DES", Day: Day{2026, 1, 1}}
	tests := []struct {
		name string
		mod  func(*Name)
	}{
		{"bad prefix", func(n *Name) { n.Prefix = "A_B" }},
		{"bad day", func(n *Name) { n.Day = Day{2026, 2, 30} }},
		{"bad ext", func(n *Name) { n.Ext = "pdf" }},
		{"too long", func(n *Name) { n.Ext = "." + strings.Repeat("x", MaxNameLen) }},
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(good): %v", err)
	}
	for _, tt := range tests {
		n := good
		tt.mod(&n)
		if err := n.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", tt.name, n)
		}
	}
}

func TestShardBits(t *testing.T) {
	const name = "DES_20260224_(008A8C5EFF00_73)"
	for _, bits := range []int{-1, 0, 17, 32} {
		if _, err := Shard(name, bits); !errors.Is(err, ErrShardBits) {
			t.Errorf("Shard(bits=%d) error = %v, want ErrShardBits", bits, err)
		}
	}
	// Each width is a prefix of the next: shard(b) = shard(16) >> (16-b).
	full, err := Shard(name, MaxShardBits)
	if err != nil {
		t.Fatal(err)
	}
	for bits := MinShardBits; bits <= MaxShardBits; bits++ {
		got, err := Shard(name, bits)
		if err != nil || got != full>>(MaxShardBits-bits) || got >= 1<<bits {
			t.Errorf("Shard(bits=%d) = %d, %v; 16-bit shard is %d", bits, got, err, full)
		}
	}
}
