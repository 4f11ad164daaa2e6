package protocol

import (
	"errors"
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

func TestCheckContainerKey(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	const id = "c0123456789abcdef"
	name := ContainerName("daily", id)
	good := ContainerKey("arch", day, 3, id)
	cases := []struct {
		name                  string
		prefix, desShard, day string
		shard                 int32
		container, key        string
		want                  error
	}{
		{"the protocol's key", "arch", "daily", "2026-12-01", 3, name, good, nil},
		{"prefix with a trailing slash", "arch/", "daily", "2026-12-01", 3, name, good, nil},
		{"empty prefix", "", "daily", "2026-12-01", 3, name, ContainerKey("", day, 3, id), nil},
		{"nested prefix", "team/arch", "daily", "2026-12-01", 3, name, ContainerKey("team/arch", day, 3, id), nil},
		{"another DesShard's prefix", "arch", "daily", "2026-12-01", 3, name, ContainerKey("other", day, 3, id), ErrOutsidePrefix},
		{"a prefix that only starts like ours", "arch", "daily", "2026-12-01", 3, name, ContainerKey("archive", day, 3, id), ErrOutsidePrefix},
		{"the source bucket's layout", "arch", "daily", "2026-12-01", 3, name, "src/2026/12/01/invoice.pdf", ErrOutsidePrefix},
		{"a key with no prefix at all", "arch", "daily", "2026-12-01", 3, name, "c0123456789abcdef.des", ErrOutsidePrefix},
		{"other day", "arch", "daily", "2026-12-01", 3, name, ContainerKey("arch", day.AddDate(0, 0, -1), 3, id), ErrOtherDay},
		{"day that is not a date", "arch", "daily", "yesterday", 3, name, good, ErrOtherDay},
		{"other shard", "arch", "daily", "2026-12-01", 3, name, ContainerKey("arch", day, 4, id), ErrOtherShard},
		{"other container id", "arch", "daily", "2026-12-01", 3, name, ContainerKey("arch", day, 3, "c0000000000000001"), ErrOtherContainer},
		{"a big payload, not the container", "arch", "daily", "2026-12-01", 3, name, BigFilesPrefix(good) + "DES_1", ErrOtherContainer},
		{"the shard folder itself", "arch", "daily", "2026-12-01", 3, name, ShardPrefix("arch", day, 3) + "/", ErrOtherContainer},
		{"path tricks", "arch", "daily", "2026-12-01", 3, name, "arch/2026-12-01/0003/../../../other/" + id + ".des", ErrOtherContainer},
		{"name of another DesShard", "arch", "daily", "2026-12-01", 3, ContainerName("hourly", id), good, ErrOtherContainer},
		{"name without a container id", "arch", "daily", "2026-12-01", 3, "daily-x", good, ErrOtherContainer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckContainerKey(tc.prefix, tc.desShard, tc.day, tc.shard, tc.container, tc.key)
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("CheckContainerKey = %v, want %v", err, tc.want)
			}
			if err != nil && !errors.Is(err, ErrKeyNotOwned) {
				t.Fatalf("%v does not match ErrKeyNotOwned", err)
			}
		})
	}
	if err := CheckContainerBucket("archive", "archive"); err != nil {
		t.Errorf("own bucket: %v", err)
	}
	if err := CheckContainerBucket("archive", "source"); !errors.Is(err, ErrOtherBucket) || !errors.Is(err, ErrKeyNotOwned) {
		t.Errorf("other bucket: %v, want ErrOtherBucket", err)
	}
}

func TestIsContainerID(t *testing.T) {
	if id := NewContainerID(time.Now()); !IsContainerID(id) {
		t.Errorf("NewContainerID made %q, which IsContainerID refuses", id)
	}
	for _, bad := range []string{"", "c", "c0123456789ABCDEF", "d0123456789abcdef", "c0123456789abcde", "c0123456789abcdef0", "c0123456789abcdeg"} {
		if IsContainerID(bad) {
			t.Errorf("IsContainerID(%q) = true", bad)
		}
	}
}
