package connect_test

import (
	"context"
	"testing"
	"time"

	"github.com/datavision/des/internal/connect"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/test/testworld"
)

func TestStoreCache(t *testing.T) {
	ctx := context.Background()
	s3 := testworld.S3Store(t)
	bucket := s3.NewBucket(t)
	base := objstore.Config{Endpoint: s3.Endpoint, Region: s3.Region, PathStyle: true, AccessKeyID: s3.AccessKey, SecretAccessKey: s3.SecretKey}
	with := func(f func(*objstore.Config)) objstore.Config { c := base; f(&c); return c }
	cases := []struct {
		name    string
		advance time.Duration
		cfg     objstore.Config
		same    bool // the same client as the previous step
		works   bool // the client can list the bucket
		wantLen int
	}{
		{"first use builds a client", 0, base, false, true, 1},
		{"the same key reuses it", time.Minute, base, true, true, 1},
		{"a rotated secret key builds a new one", 0, with(func(c *objstore.Config) { c.SecretAccessKey = "rotated" }), false, false, 2},
		{"back to the first key", 0, base, false, true, 2},
		{"a changed CA bundle builds a new one", 0, with(func(c *objstore.Config) { c.CAPEM = testworld.K8s(t).CA }), false, true, 3},
		{"clients idle too long are dropped", time.Hour, base, false, true, 1},
	}
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	cache := &connect.StoreCache{Idle: 30 * time.Minute, Now: clock.Now}
	var prev *objstore.Store
	for _, tc := range cases {
		clock.Add(tc.advance)
		s, err := cache.Get(ctx, tc.cfg)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if (s == prev) != tc.same {
			t.Fatalf("%s: same client = %v, want %v", tc.name, s == prev, tc.same)
		}
		if got := cache.Len(); got != tc.wantLen {
			t.Fatalf("%s: %d clients cached, want %d", tc.name, got, tc.wantLen)
		}
		lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		var listErr error
		for _, err := range s.List(lctx, bucket, objstore.ListOptions{PageSize: 1}) {
			listErr = err
			break
		}
		cancel()
		if (listErr == nil) != tc.works {
			t.Fatalf("%s: list error %v, want working=%v", tc.name, listErr, tc.works)
		}
		prev = s
	}
}
