package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/datavision/des/internal/naming"
	"github.com/datavision/des/test/v1testdata"
)

// nameCLI runs `des name ARGS...` in-process.
func nameCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = runName(args, &o, &e)
	return code, o.String(), e.String()
}

func nameMustCLI(t *testing.T, want int, args ...string) string {
	t.Helper()
	code, out, errOut := nameCLI(args...)
	if code != want {
		t.Fatalf("des name %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out
}

func nameLines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func TestNameHelpAndUsage(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		inStdout string
	}{
		{[]string{"--help"}, 0, "des name COMMAND"},
		{[]string{"new", "--help"}, 0, "--count"},
		{[]string{"parse", "-h"}, 0, "--json"},
		{[]string{"shard", "--help"}, 0, "--bits"},
		{nil, 2, ""},
		{[]string{"rename"}, 2, ""},
		{[]string{"new", "--bogus"}, 2, ""},
		{[]string{"new", "extra"}, 2, ""},
		{[]string{"new", "--count", "0"}, 2, ""},
		{[]string{"new", "--node", "256"}, 2, ""},
		{[]string{"new", "--prefix", "A_B"}, 2, ""},
		{[]string{"new", "--day", "20250229"}, 2, ""},
		{[]string{"parse"}, 2, ""},
		{[]string{"shard", "X"}, 2, ""},
		{[]string{"shard", "--bits", "17", "X"}, 2, ""},
		{[]string{"shard", "--bits", "8"}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := nameCLI(tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			if tt.code == 0 && !strings.Contains(out, tt.inStdout) {
				t.Fatalf("help lacks %q:\n%s", tt.inStdout, out)
			}
			if tt.code == 2 && (out != "" || !strings.Contains(errOut, "usage: des name")) {
				t.Fatalf("usage error: stdout %q, stderr %q", out, errOut)
			}
		})
	}
}

func TestNameNew(t *testing.T) {
	before := naming.DayOf(time.Now())
	out := nameMustCLI(t, 0, "new", "--prefix", "IMG", "--node", "9", "--count", "600")
	after := naming.DayOf(time.Now())
	lines := nameLines(out)
	if len(lines) != 600 {
		t.Fatalf("got %d names, want 600", len(lines))
	}
	seen := map[string]bool{}
	for _, s := range lines {
		n, err := naming.Parse(s)
		if err != nil || n.Prefix != "IMG" || n.Node != 9 || (n.Day != before && n.Day != after) || seen[s] {
			t.Fatalf("name %q: %+v, %v (duplicate=%v)", s, n, err, seen[s])
		}
		seen[s] = true
	}
}

func TestNameNewForDay(t *testing.T) {
	out := nameMustCLI(t, 0, "new", "--day", "20200229", "--count", "3")
	for _, s := range nameLines(out) {
		if !strings.HasPrefix(s, "DES_20200229_(") {
			t.Fatalf("name %q: want default prefix DES and day 20200229", s)
		}
	}
}

func TestNameParse(t *testing.T) {
	out := nameMustCLI(t, 0, "parse", "DES_20260224_(008A8C5EFF00_73).pdf")
	want := `name: DES_20260224_(008A8C5EFF00_73).pdf
prefix: DES
day: 20260224
node: 255
sequence: 0
time bits: 9079902 (0x008A8C5E)
time: -
checksum: 73
checksum ok: true
extension: .pdf
`
	if out != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}
}

func TestNameParseTime(t *testing.T) {
	at := time.Date(2026, 2, 24, 13, 14, 15, 678e6, time.UTC)
	n := naming.Name{Prefix: "DES", Day: naming.DayOf(at), TimeBits: uint32(at.UnixMilli()), Node: 1, Seq: 2}
	out := nameMustCLI(t, 0, "parse", n.String())
	if !strings.Contains(out, "time: 2026-02-24T13:14:15.678Z\n") || !strings.Contains(out, "extension: -\n") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestNameParseErrors(t *testing.T) {
	code, out, errOut := nameCLI("parse", "DES_20260224_(008A8C5EFF00_74)", "nonsense", "X9_20240128_(0E8A8C5EF200_74)")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	blocks := strings.Split(out, "\n\n")
	if len(blocks) != 3 {
		t.Fatalf("want 3 blocks, got:\n%s", out)
	}
	if !strings.Contains(blocks[0], "checksum: 74\nchecksum ok: false\n") || !strings.Contains(blocks[0], "node: 255\n") {
		t.Fatalf("bad checksum block:\n%s", blocks[0])
	}
	if !strings.Contains(blocks[1], "error: ") || strings.Contains(blocks[1], "node:") {
		t.Fatalf("malformed block:\n%s", blocks[1])
	}
	if !strings.Contains(blocks[2], "checksum ok: true") {
		t.Fatalf("valid block:\n%s", blocks[2])
	}
	if strings.Count(errOut, "des name parse: ") != 2 {
		t.Fatalf("stderr should report the two bad names:\n%s", errOut)
	}
}

func TestNameParseJSON(t *testing.T) {
	code, out, _ := nameCLI("parse", "--json", "X9_20240128_(0E8A8C5EF200_74)", "nonsense", "DES_20260224_(000000000000_01)")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	lines := nameLines(out)
	if len(lines) != 3 {
		t.Fatalf("want 3 JSON lines:\n%s", out)
	}
	var got []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, m)
	}
	want0 := map[string]any{"name": "X9_20240128_(0E8A8C5EF200_74)", "prefix": "X9", "day": "20240128",
		"node": 242.0, "sequence": 0.0, "time_bits": float64(0x0E8A8C5E), "checksum": "74", "checksum_ok": true}
	if !jsonEqual(got[0], want0) {
		t.Fatalf("line 1 = %v, want %v", got[0], want0)
	}
	if got[1]["error"] == nil || got[1]["node"] != nil {
		t.Fatalf("malformed line = %v", got[1])
	}
	if got[2]["checksum_ok"] != false || got[2]["checksum"] != "01" || got[2]["node"] != 0.0 || got[2]["error"] == nil {
		t.Fatalf("bad checksum line = %v", got[2])
	}
}

func jsonEqual(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// des name shard reproduces every v1 vector, several names per call.
func TestNameShardVectors(t *testing.T) {
	type vec struct {
		Name      string `json:"name"`
		ShardBits int    `json:"shard_bits"`
		Shard     uint32 `json:"shard"`
	}
	var doc struct{ Cases []vec }
	raw, err := os.ReadFile(filepath.Join(v1testdata.Dir(t), "naming.json"))
	if err != nil {
		t.Fatalf("naming vectors: %v (set DES_V1_TESTDATA)", err)
	}
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc.Cases) == 0 {
		t.Fatalf("naming vectors: %v, %d cases", err, len(doc.Cases))
	}
	byBits := map[int][]vec{}
	for _, v := range doc.Cases {
		byBits[v.ShardBits] = append(byBits[v.ShardBits], v)
	}
	for bits, vs := range byBits {
		args := []string{"shard", "--bits", strconv.Itoa(bits)}
		for _, v := range vs {
			args = append(args, v.Name)
		}
		lines := nameLines(nameMustCLI(t, 0, args...))
		if len(lines) != len(vs) {
			t.Fatalf("bits %d: %d lines for %d names", bits, len(lines), len(vs))
		}
		for i, v := range vs {
			if lines[i] != strconv.FormatUint(uint64(v.Shard), 10) {
				t.Errorf("shard --bits %d %s = %s, v1 says %d", bits, v.Name, lines[i], v.Shard)
			}
		}
	}
	// The flag may follow the names.
	if out := nameMustCLI(t, 0, "shard", "DES_20260224_(008A8C5EFF00_73)", "--bits", "1"); out != "1\n" {
		t.Fatalf("flag after name: %q", out)
	}
}
