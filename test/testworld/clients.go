package testworld

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/datavision/des/internal/objstore"
)

// StoreConfig is a DES object-store configuration for this server with its root credentials.
func (s *S3Server) StoreConfig() objstore.Config {
	return objstore.Config{Endpoint: s.Endpoint, Region: s.Region, PathStyle: true, AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey}
}

// NewStore returns a DES object-store client of its own for this server, so that its wire
// counters (Stats) belong to one test.
func (s *S3Server) NewStore(t testing.TB) *objstore.Store {
	t.Helper()
	st, err := objstore.New(context.Background(), s.StoreConfig())
	if err != nil {
		t.Fatalf("testworld: S3 client: %v", err)
	}
	return st
}

// RandomBytes returns n pseudo-random bytes, the same for the same seed, so that a failing test's
// payloads can be made again.
func RandomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
