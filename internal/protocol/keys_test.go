package protocol

import (
	"slices"
	"testing"
	"time"
)

func TestKeyLayout(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	key := ContainerKey("des", day, 0x2a, "c1")
	dayPrefix := DayPrefix("des", day)
	cases := []struct {
		name, got, want string
	}{
		{"container key", key, "des/2026-12-01/002a/c1.des"},
		{"prefix of key", PrefixOfContainerKey(key), ContainerPrefix("des", day, 0x2a, "c1")},
		{"prefix of a non-container", PrefixOfContainerKey("des/x"), "des/x"},
		{"big files", BigFilesPrefix(key), "des/2026-12-01/002a/c1/_bigFiles/"},
		{"owner of container", OwnerKey(key), key},
		{"owner of big payload", OwnerKey("des/2026-12-01/002a/c1/_bigFiles/DES_1"), key},
		{"owner of a stranger", OwnerKey("des/2026-12-01/002a/notes.txt"), ""},
		{"owner of bare suffix", OwnerKey(".des"), ""},
		{"shard of key", ShardOfKey(key, dayPrefix), "002a"},
		{"shard of big payload", ShardOfKey("des/2026-12-01/002a/c1/_bigFiles/x", dayPrefix), "002a"},
		{"shard outside the day", ShardOfKey("des/2026-11-30/002a/c1.des", dayPrefix), ""},
		{"shard of the day folder", ShardOfKey(dayPrefix, dayPrefix), ""},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestShardList(t *testing.T) {
	cases := []struct {
		in   string
		want []int32
		ok   bool
	}{
		{"", nil, true},
		{"  ", nil, true},
		{"0", []int32{0}, true},
		{"0,7, 4095", []int32{0, 7, 4095}, true},
		{"65535", []int32{65535}, true},
		{"65536", nil, false},
		{"-1", nil, false},
		{"1,x", nil, false},
		{"1,,2", nil, false},
		{"1,2,1", nil, false},
	}
	for _, c := range cases {
		got, err := ParseShardList(c.in)
		if (err == nil) != c.ok || !slices.Equal(got, c.want) {
			t.Errorf("ParseShardList(%q) = %v, %v; want %v, ok=%v", c.in, got, err, c.want, c.ok)
		}
		if c.ok && len(c.want) > 0 {
			if back, _ := ParseShardList(FormatShardList(got)); !slices.Equal(back, got) {
				t.Errorf("round trip of %v gave %v", got, back)
			}
		}
	}
}
