package desformat

import (
	"strconv"
	"testing"
)

var metaFastSeeds = []string{
	`{}`, ` { } `, `{"size":16,"crc32c":"0a1b2c3d"}`, `{"mime":"text/plain","size":1,"crc32c":"DEADBEEF"}`,
	`{"size":5,"is_external":true,"external_key":"a/b/c.bin","crc32c":"00000000"}`,
	`{"a":{"b":[1,2,{"c":"}"}]},"mime":"x/y"}`, `{"mime":"a\"b"}`, `{"MIME":"x/y"}`, `{"Crc32c":"00000001"}`,
	`{"ſize":1}`, `{"crc32c":null}`, `{"crc32c":"xyz"}`, `{"crc32c":"0000000"}`, `{"crc32c":1}`,
	`{"mime":"a","mime":"b"}`, `{"crc32c":"00000001","crc32c":"00000002"}`, `{"mime":"\xff"}`, `[]`, `"x"`,
	`{"x":"\u00e9","mime":"t/u"}`, `{"n":-1.5e3,"t":true,"f":false,"z":null,"mime":"m/n"}`, `{"k":"v"`, ``,
}

// checkFast compares the fast path with parseMetaInfo wherever the fast path answers.
func checkFast(t *testing.T, meta []byte, trust bool) {
	t.Helper()
	fast, ok := parseMetaFast(meta, trust)
	if !ok {
		return
	}
	slow, err := parseMetaInfo(meta, trust)
	if err != nil {
		t.Fatalf("%q (trust %v): fast path answered %+v, parseMetaInfo fails: %v", meta, trust, fast, err)
	}
	if fast.crc != slow.crc || fast.hasCRC != slow.hasCRC || fast.externalKey != slow.externalKey || fast.mime != slow.mime {
		t.Fatalf("%q (trust %v): fast %+v, slow %+v", meta, trust, fast, slow)
	}
}

func TestParseMetaFastAgrees(t *testing.T) {
	answered := 0
	for _, s := range metaFastSeeds {
		for _, trust := range []bool{false, true} {
			checkFast(t, []byte(s), trust)
			if _, ok := parseMetaFast([]byte(s), trust); ok {
				answered++
			}
		}
	}
	// The writer's own meta must take the fast path, or it is no faster.
	for _, s := range []string{`{"size":16,"crc32c":"0a1b2c3d"}`, `{"mime":"application/pdf","size":16,"crc32c":"0a1b2c3d"}`,
		`{"size":5,"is_external":true,"external_key":"a/b/c.bin","crc32c":"00000000"}`} {
		mi, ok := parseMetaFast([]byte(s), true)
		if !ok || !mi.hasCRC {
			t.Errorf("%s: writer meta not handled by the fast path (%+v, %v)", s, mi, ok)
		}
	}
	if answered == 0 {
		t.Fatal("the fast path answered nothing")
	}
}

func TestParseHex32(t *testing.T) {
	for _, s := range []string{"00000000", "ffffffff", "DEADbeef", "0000000g", "1234567", "123456789", "+1234567", "-0000001", " 1234567"} {
		got, ok := parseHex32([]byte(s))
		v, err := strconv.ParseUint(s, 16, 32)
		if want := err == nil && len(s) == 8; ok != want || (ok && uint64(got) != v) {
			t.Errorf("parseHex32(%q) = %x, %v; strconv says %x, %v", s, got, ok, v, err)
		}
	}
}

func FuzzParseMetaFast(f *testing.F) {
	for _, s := range metaFastSeeds {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, meta []byte, trust bool) { checkFast(t, meta, trust) })
}
