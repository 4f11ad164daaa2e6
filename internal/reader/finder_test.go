package reader_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/internal/reader"
	"github.com/datavision/des/test/testworld"
)

// TestListFinderFindsBothLayouts: one delimited LIST of a shard folder finds containers of the
// current layout (a folder <id>/ holding <id>/<id>.des: a common prefix) and of the legacy one (an
// object <id>.des, whose big payloads make a folder <id>/ too, which must add no second key), and
// nothing else in the folder. The sidecar then serves files, big payloads included, from both.
func TestListFinderFindsBothLayouts(t *testing.T) {
	ctx := context.Background()
	writer := newStore(t)
	bucket := testworld.S3Store(t).NewBucket(t)
	day := testDay.Time()
	names := desNames(t, 6, testShard, 9)
	big := func(seed uint64) []byte { return randomBytes(extThreshold+10, seed) }
	current := shardKey(day, testShard, "c00000000000000e1")
	currentNoBig := shardKey(day, testShard, "c00000000000000e2")
	legacy := protocol.LegacyContainerKey(testPrefix, day, testShard, "c00000000000000e3")
	legacyNoBig := protocol.LegacyContainerKey(testPrefix, day, testShard, "c00000000000000e4")
	containers := []struct {
		key   string
		files []file
	}{
		{current, []file{{name: names[0], data: big(1)}, {name: names[1], data: []byte("small in current")}}},
		{currentNoBig, []file{{name: names[2], data: []byte("only small")}}},
		{legacy, []file{{name: names[3], data: big(2)}, {name: names[4], data: []byte("small in legacy")}}},
		{legacyNoBig, []file{{name: names[5], data: []byte("legacy, only small")}}},
	}
	for _, c := range containers {
		putContainer(t, writer, bucket, c.key, c.files, extThreshold)
	}
	dir := protocol.ShardPrefix(testPrefix, day, testShard) + "/"
	for _, stranger := range []string{
		dir + "notes.txt",                    // a person's file
		dir + "people/c00000000000000f1.des", // a .des in a folder that is not a container's
		dir + "_bigFiles/v1-shared",          // a v1 writer's shard-wide big-file folder
		dir + "c00000000000000f2/notes.txt",  // a folder named like a container without its object: listed, never found
	} {
		putObject(t, writer, bucket, stranger, []byte("not a container"))
	}
	// Another shard's container is not listed.
	putContainer(t, writer, bucket, shardKey(day, testShard+1, "c00000000000000e5"), desFiles(names[:1], 1), 0)

	store := newStore(t)
	finder := reader.NewListFinder(ctx, store, bucket, []string{testPrefix}, time.Minute, 10*time.Second)
	got, err := finder.Containers(ctx, day, testShard, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{current, currentNoBig, legacy, legacyNoBig, dir + "c00000000000000f2/c00000000000000f2.des"}
	slices.Sort(want)
	if !slices.Equal(slices.Sorted(slices.Values(got)), want) {
		t.Fatalf("Containers =\n%q\nwant\n%q", got, want)
	}
	if n := store.Stats().Requests; n != 1 {
		t.Errorf("%d S3 requests for one shard folder, want 1 LIST", n)
	}

	w := newWorld(t, bucket, reader.Config{MissRefresh: 1})
	for _, c := range containers {
		for _, fl := range c.files {
			resp, body := do(t, "GET", w.http.URL+"/v1/files/"+fl.name, nil, nil)
			mustStatus(t, resp, body, 200)
			if !bytes.Equal(body, fl.data) {
				t.Errorf("%s from %s: wrong bytes", fl.name, c.key)
			}
			if got := resp.Header.Get("X-Des-Container"); got != c.key {
				t.Errorf("%s served from %q, want %q", fl.name, got, c.key)
			}
		}
	}
}
