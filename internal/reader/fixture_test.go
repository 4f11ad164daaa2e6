package reader_test

import (
	"hash/crc32"
	"testing"

	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/test/testworld"
)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

const (
	testShard    = 1
	extThreshold = 64 << 10
)

// fixture is a bucket holding:
//   - container A (testDay, testShard): plain, empty, unicode, mime-typed, mid-sized and external files
//     plus DES names;
//   - container B (same day and shard): other DES names;
//   - container N (the next day, same shard): DES names of testDay, packed after midnight;
//   - a copy of A outside the archive prefix.
type fixture struct {
	bucket           string
	keyA, keyB, keyN string
	outside          string
	files            map[string]file // every file of A by name
	desA, desB, desN []string
	absent           string // a DES name of the same day and shard found nowhere
	archiveA         []byte
}

const (
	nameHello   = "hello.txt"
	nameEmpty   = "empty.bin"
	nameUnicode = "naïve résumé ✓ 日本.txt"
	nameMid     = "mid.bin"
	nameBig     = "big.bin"
	nameJSON    = "data.json"
)

func newFixture(t testing.TB, s *objstore.Store) *fixture {
	t.Helper()
	f := &fixture{bucket: testworld.S3Store(t).NewBucket(t), files: map[string]file{}}
	day := testDay.Time()
	names := desNames(t, 31, testShard, 7)
	f.desA, f.desB, f.desN, f.absent = names[:20], names[20:25], names[25:30], names[30]
	f.keyA = shardKey(day, testShard, "c00000000000000a1")
	f.keyB = shardKey(day, testShard, "c00000000000000b2")
	f.keyN = shardKey(day.AddDate(0, 0, 1), testShard, "c00000000000000c3")
	f.outside = "private/secret.des"

	filesA := []file{
		{name: nameHello, data: []byte("hello, world\n"), meta: `{"mime":"text/plain; charset=utf-8"}`},
		{name: nameEmpty, data: nil},
		{name: nameUnicode, data: []byte("unicode payload ✓\n"), meta: `{"mime":"text/plain; charset=utf-8","title":"日本"}`},
		{name: nameMid, data: randomBytes(extThreshold-1, 1)}, // the largest internal payload
		{name: nameBig, data: randomBytes(200<<10, 2), meta: `{"mime":"application/x-big"}`},
		{name: nameJSON, data: []byte(`{"a":1}`), meta: `{"mime":"not a / valid ; = type"}`},
	}
	for i, n := range f.desA {
		filesA = append(filesA, file{name: n, data: randomBytes(4096+i, uint64(100+i)), meta: `{"mime":"application/pdf"}`})
	}
	for _, fl := range filesA {
		f.files[fl.name] = fl
	}
	f.archiveA = putContainer(t, s, f.bucket, f.keyA, filesA, extThreshold)
	putObject(t, s, f.bucket, f.outside, f.archiveA)
	putContainer(t, s, f.bucket, f.keyB, desFiles(f.desB, 200), 0)
	putContainer(t, s, f.bucket, f.keyN, desFiles(f.desN, 300), 0)
	return f
}

func desFiles(names []string, seed uint64) []file {
	var out []file
	for i, n := range names {
		out = append(out, file{name: n, data: randomBytes(1000+i, seed+uint64(i))})
	}
	return out
}

// payload returns the bytes of a DES name of any fixture container.
func (f *fixture) payload(t testing.TB, name string) []byte {
	t.Helper()
	if fl, ok := f.files[name]; ok {
		return fl.data
	}
	for i, n := range f.desB {
		if n == name {
			return randomBytes(1000+i, 200+uint64(i))
		}
	}
	for i, n := range f.desN {
		if n == name {
			return randomBytes(1000+i, 300+uint64(i))
		}
	}
	t.Fatalf("no payload for %q", name)
	return nil
}
