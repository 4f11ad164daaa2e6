package protocol

import (
	"errors"
	"path"
	"slices"
	"testing"
	"time"
)

func TestKeyLayout(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	const id = "c0123456789abcdef"
	const cp = "des/2026-12-01/002a/" + id // the container's prefix in both layouts
	key, legacy := ContainerKey("des", day, 0x2a, id), LegacyContainerKey("des", day, 0x2a, id)
	dayPrefix := DayPrefix("des", day)
	cases := []struct {
		name, got, want string
	}{
		{"container key", key, cp + "/" + id + ".des"},
		{"legacy container key", legacy, "des/2026-12-01/002a/" + id + ".des"},
		{"container key with an empty prefix", ContainerKey("", day, 0, id), "2026-12-01/0000/" + id + "/" + id + ".des"},
		{"container prefix", ContainerPrefix("des", day, 0x2a, id), cp},
		{"prefix of key", PrefixOfContainerKey(key), cp},
		{"prefix of key is its folder", PrefixOfContainerKey(key), path.Dir(key)},
		{"prefix of legacy key", PrefixOfContainerKey(legacy), cp},
		{"prefix of a key at the bucket's root, inside its folder", PrefixOfContainerKey("x/x.des"), "x"},
		{"prefix of a hand-named archive", PrefixOfContainerKey("archive/f.des"), "archive/f"},
		{"prefix of an archive in a folder of another name", PrefixOfContainerKey("a/b/c.des"), "a/b/c"},
		{"prefix of a non-container", PrefixOfContainerKey("des/x"), "des/x"},
		{"big files", BigFilesPrefix(key), cp + "/_bigFiles/"},
		{"big files are in the key's folder", BigFilesPrefix(key), path.Dir(key) + "/_bigFiles/"},
		{"big files of legacy key", BigFilesPrefix(legacy), cp + "/_bigFiles/"},
		{"shard of key", ShardOfKey(key, dayPrefix), "002a"},
		{"shard of legacy key", ShardOfKey(legacy, dayPrefix), "002a"},
		{"shard of big payload", ShardOfKey(cp+"/_bigFiles/x", dayPrefix), "002a"},
		{"shard outside the day", ShardOfKey("des/2026-11-30/002a/"+id+".des", dayPrefix), ""},
		{"shard of the day folder", ShardOfKey(dayPrefix, dayPrefix), ""},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestOwnerPrefix(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	const id = "c0123456789abcdef"
	cp := ContainerPrefix("des", day, 0x2a, id)
	root := ContainerPrefix("", day, 0, id)
	cases := []struct {
		name, key, want string
	}{
		{"container object", ContainerKey("des", day, 0x2a, id), cp},
		{"legacy container object", LegacyContainerKey("des", day, 0x2a, id), cp},
		{"big payload", cp + "/_bigFiles/N_1.pdf", cp},
		{"big payload named like a container", cp + "/_bigFiles/" + id + ".des", cp},
		{"container object, empty archive prefix", ContainerKey("", day, 0, id), root},
		{"legacy container object, empty archive prefix", LegacyContainerKey("", day, 0, id), root},
		{"big payload, empty archive prefix", root + "/_bigFiles/x", root},
		{"nested archive prefix", ContainerKey("a/b/c", day, 0xffff, id), ContainerPrefix("a/b/c", day, 0xffff, id)},
		{"a stranger in the shard folder", "des/2026-12-01/002a/notes.txt", ""},
		{"a stranger's .des in the shard folder", "des/2026-12-01/002a/notes.des", ""},
		{"a stranger in the container's folder", cp + "/notes.txt", ""},
		{"another id's object in the container's folder", cp + "/c0000000000000001.des", ""},
		{"a v1 shard-wide _bigFiles folder", "des/2026-12-01/002a/_bigFiles/x", ""},
		{"the _bigFiles folder itself", cp + "/_bigFiles/", ""},
		{"a big payload one folder deeper", cp + "/_bigFiles/x/y", ""},
		{"an object one folder too deep", "des/2026-12-01/002a/extra/" + id + ".des", ""},
		{"a shard segment that is not 4 hex digits", "des/2026-12-01/02a/" + id + ".des", ""},
		{"an upper-case shard segment", "des/2026-12-01/002A/" + id + ".des", ""},
		{"a day segment that is not a date", "des/2026-13-01/002a/" + id + ".des", ""},
		{"a short container id", "des/2026-12-01/002a/c1.des", ""},
		{"a bare container id", id + ".des", ""},
		{"a bare suffix", ".des", ""},
		{"empty", "", ""},
	}
	for _, c := range cases {
		if got := OwnerPrefix(c.key); got != c.want {
			t.Errorf("%s: OwnerPrefix(%q) = %q, want %q", c.name, c.key, got, c.want)
		}
	}
}

func TestContainerKeysOf(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct{ prefix string }{{"des"}, {""}, {"a/b.c/d"}}
	for _, c := range cases {
		const id = "c0123456789abcdef"
		key, legacy := ContainerKeysOf(ContainerPrefix(c.prefix, day, 7, id))
		if want := ContainerKey(c.prefix, day, 7, id); key != want {
			t.Errorf("prefix %q: key %q, want %q", c.prefix, key, want)
		}
		if want := LegacyContainerKey(c.prefix, day, 7, id); legacy != want {
			t.Errorf("prefix %q: legacy key %q, want %q", c.prefix, legacy, want)
		}
		// Each key leads back to the prefix: the sweep's owner and the catalog's key agree.
		for _, k := range []string{key, legacy} {
			if got := OwnerPrefix(k); got != ContainerPrefix(c.prefix, day, 7, id) {
				t.Errorf("OwnerPrefix(%q) = %q", k, got)
			}
			if got := PrefixOfContainerKey(k); got != ContainerPrefix(c.prefix, day, 7, id) {
				t.Errorf("PrefixOfContainerKey(%q) = %q", k, got)
			}
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
		{"the legacy key", "arch", "daily", "2026-12-01", 3, name, LegacyContainerKey("arch", day, 3, id), nil},
		{"empty prefix", "", "daily", "2026-12-01", 3, name, ContainerKey("", day, 3, id), nil},
		{"empty prefix, legacy key", "", "daily", "2026-12-01", 3, name, LegacyContainerKey("", day, 3, id), nil},
		{"nested prefix", "team/arch", "daily", "2026-12-01", 3, name, ContainerKey("team/arch", day, 3, id), nil},
		{"another DesShard's prefix", "arch", "daily", "2026-12-01", 3, name, ContainerKey("other", day, 3, id), ErrOutsidePrefix},
		{"a prefix that only starts like ours", "arch", "daily", "2026-12-01", 3, name, ContainerKey("archive", day, 3, id), ErrOutsidePrefix},
		{"the source bucket's layout", "arch", "daily", "2026-12-01", 3, name, "src/2026/12/01/invoice.pdf", ErrOutsidePrefix},
		{"a key with no prefix at all", "arch", "daily", "2026-12-01", 3, name, "c0123456789abcdef.des", ErrOutsidePrefix},
		{"other day", "arch", "daily", "2026-12-01", 3, name, ContainerKey("arch", day.AddDate(0, 0, -1), 3, id), ErrOtherDay},
		{"day that is not a date", "arch", "daily", "yesterday", 3, name, good, ErrOtherDay},
		{"other shard", "arch", "daily", "2026-12-01", 3, name, ContainerKey("arch", day, 4, id), ErrOtherShard},
		{"other container id", "arch", "daily", "2026-12-01", 3, name, ContainerKey("arch", day, 3, "c0000000000000001"), ErrOtherContainer},
		{"other container id, legacy key", "arch", "daily", "2026-12-01", 3, name, LegacyContainerKey("arch", day, 3, "c0000000000000001"), ErrOtherContainer},
		{"another container's object in our folder", "arch", "daily", "2026-12-01", 3, name, ContainerPrefix("arch", day, 3, id) + "/c0000000000000001.des", ErrOtherContainer},
		{"our object in another container's folder", "arch", "daily", "2026-12-01", 3, name, ContainerPrefix("arch", day, 3, "c0000000000000001") + "/" + id + ".des", ErrOtherContainer},
		{"the container's prefix itself", "arch", "daily", "2026-12-01", 3, name, ContainerPrefix("arch", day, 3, id), ErrOtherContainer},
		{"the container's folder", "arch", "daily", "2026-12-01", 3, name, ContainerPrefix("arch", day, 3, id) + "/", ErrOtherContainer},
		{"legacy key of another day", "arch", "daily", "2026-12-01", 3, name, LegacyContainerKey("arch", day.AddDate(0, 0, 1), 3, id), ErrOtherDay},
		{"legacy key of another shard", "arch", "daily", "2026-12-01", 3, name, LegacyContainerKey("arch", day, 2, id), ErrOtherShard},
		{"a big payload of the legacy key", "arch", "daily", "2026-12-01", 3, name, BigFilesPrefix(LegacyContainerKey("arch", day, 3, id)) + "DES_1", ErrOtherContainer},
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

func TestIsContainerKey(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	const id = "c0123456789abcdef"
	cases := []struct {
		key  string
		want bool
	}{
		{ContainerKey("des", day, 1, id), true},
		{LegacyContainerKey("des", day, 1, id), true},
		{"archive/f.des", true}, // archives named by hand are read too
		{BigFilesPrefix(ContainerKey("des", day, 1, id)) + "N_1.pdf", false},
		{ContainerPrefix("des", day, 1, id), false},
		{ContainerPrefix("des", day, 1, id) + "/", false},
		{".des", false},
		{"", false},
	}
	for _, c := range cases {
		if got := IsContainerKey(c.key); got != c.want {
			t.Errorf("IsContainerKey(%q) = %v, want %v", c.key, got, c.want)
		}
	}
}
