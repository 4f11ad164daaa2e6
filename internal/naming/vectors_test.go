package naming

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/datavision/des/test/v1testdata"
)

// vector is one case of des-v1/naming.json: a name from the v1 generator and its shard for one width.
type vector struct {
	Name      string `json:"name"`
	ShardBits int    `json:"shard_bits"`
	Shard     uint32 `json:"shard"`
}

// loadVectors reads naming.json from $DES_V1_TESTDATA, else from ../shared/testdata/des-v1 next to the
// repository root. A missing file fails the test: the vectors are the only proof of v1 compatibility.
func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	path := filepath.Join(v1testdata.Dir(tb), "naming.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("naming vectors: %v (set DES_V1_TESTDATA to the des-v1 testdata directory)", err)
	}
	var doc struct {
		Cases []vector `json:"cases"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		tb.Fatalf("naming vectors: decode %s: %v", path, err)
	}
	if len(doc.Cases) == 0 {
		tb.Fatalf("naming vectors: %s has no cases", path)
	}
	return doc.Cases
}

func TestVectorsShard(t *testing.T) {
	for _, v := range loadVectors(t) {
		got, err := Shard(v.Name, v.ShardBits)
		if err != nil {
			t.Errorf("Shard(%q, %d): %v", v.Name, v.ShardBits, err)
			continue
		}
		if got != v.Shard {
			t.Errorf("Shard(%q, %d) = %d, v1 says %d", v.Name, v.ShardBits, got, v.Shard)
		}
	}
}

// Every v1 name parses with a valid checksum and formats back byte for byte, with and without an extension.
func TestVectorsParse(t *testing.T) {
	for _, v := range loadVectors(t) {
		n, err := Parse(v.Name)
		if err != nil {
			t.Errorf("Parse(%q): %v", v.Name, err)
			continue
		}
		if s := n.String(); s != v.Name {
			t.Errorf("Parse(%q).String() = %q", v.Name, s)
		}
		withExt := v.Name + ".pdf"
		m, err := Parse(withExt)
		if err != nil || m.Ext != ".pdf" || m.String() != withExt {
			t.Errorf("Parse(%q) = %+v, %v", withExt, m, err)
		}
	}
}

// The generator's formatting of a vector's fields reproduces the v1 string, so names we issue are v1 names.
func TestVectorsFormat(t *testing.T) {
	for _, v := range loadVectors(t) {
		n, err := Parse(v.Name)
		if err != nil {
			t.Fatalf("Parse(%q): %v", v.Name, err)
		}
		g := mustGenerator(t, Config{Prefix: n.Prefix, Node: int(n.Node), Now: fixedClock(int64(n.TimeBits))})
		got, err := g.NewForDay(n.Day)
		if err != nil {
			t.Fatalf("NewForDay: %v", err)
		}
		if got != v.Name {
			t.Errorf("generator with fields of %q gave %q", v.Name, got)
		}
	}
}
