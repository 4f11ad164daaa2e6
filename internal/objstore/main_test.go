package objstore_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/test/objstoretest"
	"github.com/datavision/des/test/testworld"
)

func TestMain(m *testing.M) { testworld.Main(m, testworld.S3) }

// worldConfig points a Config at the test world's versitygw.
func worldConfig(t testing.TB) objstore.Config {
	t.Helper()
	return testworld.S3Store(t).StoreConfig()
}

// newStore returns a Store of its own (so its wire counters belong to the test) and a fresh bucket.
func newStore(t testing.TB) (*objstore.Store, string) {
	t.Helper()
	s, err := objstore.New(context.Background(), worldConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return s, testworld.S3Store(t).NewBucket(t)
}

// faulty returns the store routed through a fault wrapper around its real client.
func faulty(s *objstore.Store) (*objstore.Store, *objstoretest.Faults) {
	f := objstoretest.Wrap(s.API())
	return s.WithAPI(f), f
}

func randomBytes(n int, seed uint64) []byte { return testworld.RandomBytes(n, seed) }

func put(t testing.TB, s *objstore.Store, bucket, key string, data []byte) {
	t.Helper()
	if _, err := s.Put(context.Background(), bucket, key, data, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func getAll(t testing.TB, s *objstore.Store, bucket, key string) []byte {
	t.Helper()
	b, _ := getObject(t, s, bucket, key)
	return b
}

// getObject reads a whole object with Store.Get and returns it with what the store said of it.
func getObject(t testing.TB, s *objstore.Store, bucket, key string) ([]byte, objstore.ObjectInfo) {
	t.Helper()
	body, info, err := s.Get(context.Background(), bucket, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return b, info
}

func assertNoUploads(t testing.TB, s *objstore.Store, bucket string) {
	t.Helper()
	for u, err := range s.ListMultipartUploads(context.Background(), bucket, "") {
		if err != nil {
			t.Fatal(err)
		}
		t.Errorf("multipart upload left behind: %+v", u)
	}
}

func assertSame(t testing.TB, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("content differs: got %d bytes, want %d", len(got), len(want))
	}
}
