package client_test

import (
	"bytes"
	"context"
	"hash/crc32"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/internal/reader"
	"github.com/datavision/des/pkg/des"
	"github.com/datavision/des/test/testworld"
)

// The client is tested against the real servers: the reader sidecar over a real S3 server and the
// name service over a real kube-apiserver (for its node id Lease).
func TestMain(m *testing.M) { testworld.Main(m, testworld.S3|testworld.Kube) }

const (
	archivePrefix = "archive"
	shardBits     = 2
	// verifyBuffer is the sidecar's whole-payload limit in these tests: larger payloads stream, as
	// files over 4 MiB do in production, without the tests moving megabytes.
	verifyBuffer = 16 << 10
	// extThreshold sends payloads this large to _bigFiles/ objects.
	extThreshold = 48 << 10
)

var testDay = time.Date(2026, 2, 24, 0, 0, 0, 0, time.UTC)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

func randomBytes(n int, seed uint64) []byte { return testworld.RandomBytes(n, seed) }

// newStore returns a client of the test world's S3 server.
func newStore(t testing.TB) *objstore.Store {
	t.Helper()
	return testworld.S3Store(t).NewStore(t)
}

// file is one payload of a test container, in write order.
type file struct {
	name string
	data []byte
}

// putContainer packs files with pkg/des into the container at key (large payloads to its own
// _bigFiles/ prefix, as the packer does) and uploads it.
func putContainer(t testing.TB, s *objstore.Store, bucket, key string, files []file) {
	t.Helper()
	opts := des.WriterOptions{External: s.Blobs(bucket, objstore.UploadOptions{}),
		ExternalThreshold: extThreshold, ExternalPrefix: protocol.PrefixOfContainerKey(key)}
	putObject(t, s, bucket, key, writeArchive(t, files, opts))
}

// buildArchive packs files into an archive that keeps every payload inside.
func buildArchive(t testing.TB, files []file) []byte {
	t.Helper()
	return writeArchive(t, files, des.WriterOptions{})
}

func writeArchive(t testing.TB, files []file, opts des.WriterOptions) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := des.NewWriter(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := w.Add(context.Background(), des.FileHeader{Name: f.name, Size: int64(len(f.data))}, bytes.NewReader(f.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func putObject(t testing.TB, s *objstore.Store, bucket, key string, data []byte) {
	t.Helper()
	if _, err := s.Put(context.Background(), bucket, key, data, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// containerKey is where the packer would put container id of shard on testDay.
func containerKey(shard int32, id string) string {
	return protocol.ContainerKey(archivePrefix, testDay, shard, id)
}

// desNames returns n DES names of testDay, with their shards.
func desNames(t testing.TB, n int) []string {
	t.Helper()
	at := testDay.Add(13 * time.Hour)
	g, err := des.NewGenerator(des.NameConfig{Prefix: "DES", Node: 9, Now: func() time.Time { at = at.Add(time.Millisecond); return at }})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, n)
	for i := range out {
		if out[i], err = g.New(); err != nil {
			t.Fatal(err)
		}
		out[i] += ".pdf"
	}
	return out
}

func shardOf(t testing.TB, name string) int32 {
	t.Helper()
	s, err := des.Shard(name, shardBits)
	if err != nil {
		t.Fatal(err)
	}
	return int32(s)
}

// startReader runs a reader sidecar in-process over bucket until the test ends and returns its URL.
func startReader(t testing.TB, bucket string) string {
	t.Helper()
	srv, err := reader.New(reader.Config{Store: newStore(t), Bucket: bucket, Prefixes: []string{archivePrefix},
		ShardBits: shardBits, VerifyBuffer: verifyBuffer, Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	return hs.URL
}
