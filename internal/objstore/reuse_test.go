package objstore_test

import (
	"context"
	"io"
	"net/http/httptrace"
	"sync/atomic"
	"testing"

	"github.com/datavision/des/internal/objstore"
)

// TestConnectionsAreReused: every way DES reads an object leaves its connection reusable (the body is
// read to its end before it is closed), so steady reads cost no TCP dial. The test world's S3 server
// keeps connections alive, as production stores do.
func TestConnectionsAreReused(t *testing.T) {
	s, bucket := newStore(t)
	data := randomBytes(64<<10, 1)
	if _, err := s.Put(context.Background(), bucket, "k", data, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var dialed, reused atomic.Int64
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if i.Reused {
			reused.Add(1)
		} else {
			dialed.Add(1)
		}
	}})
	r := s.NewObjectReader(ctx, bucket, "k", int64(len(data)), "")
	for _, tc := range []struct {
		name string
		read func() error
	}{
		{"ObjectReader.ReadAt", func() error {
			_, err := r.ReadAt(make([]byte, 4096), 1000)
			return err
		}},
		{"ObjectReader.OpenRange", func() error {
			body, err := r.OpenRange(objstore.Range{Off: 1000, Len: 4096})
			if err != nil {
				return err
			}
			defer body.Close()
			_, err = io.Copy(io.Discard, body)
			return err
		}},
		{"Store.Get", func() error {
			body, _, err := s.Get(ctx, bucket, "k", &objstore.Range{Off: 1000, Len: 4096})
			if err != nil {
				return err
			}
			defer body.Close()
			_, err = io.Copy(io.Discard, body)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.read(); err != nil { // may dial
				t.Fatal(err)
			}
			dialed.Store(0)
			reused.Store(0)
			for range 10 {
				if err := tc.read(); err != nil {
					t.Fatal(err)
				}
			}
			if dialed.Load() != 0 || reused.Load() != 10 {
				t.Fatalf("10 sequential reads dialed %d connections and reused %d", dialed.Load(), reused.Load())
			}
		})
	}
}
