package client_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/datavision/des/pkg/client"
	"github.com/datavision/des/test/testworld"
)

// Plain file names of the fixture's first container.
const (
	nameHello   = "hello.txt"
	nameEmpty   = "empty.bin"
	nameUnicode = "naïve résumé ✓ 日本.txt"
	nameSmall   = "small.bin"    // fetched whole and verified by the sidecar
	nameStream  = "stream.bin"   // above verifyBuffer: streamed by the sidecar
	nameBig     = "external.bin" // above extThreshold: a _bigFiles/ object
)

// fixture is a bucket with one container per shard holding DES names of testDay, the first of them
// also holding plain files, and a sidecar serving it.
type fixture struct {
	url    string
	bucket string
	keyA   string            // the container with the plain files
	data   map[string][]byte // every stored file by name
	key    map[string]string // every stored file's container
	des    []string          // the stored DES names
	absent string            // a DES name of testDay stored nowhere
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	s := newStore(t)
	f := &fixture{bucket: testworld.S3Store(t).NewBucket(t), data: map[string][]byte{}, key: map[string]string{}}
	names := desNames(t, 13)
	f.des, f.absent = names[:12], names[12]
	byShard := map[int32][]file{}
	plain := []file{
		{nameHello, []byte("hello, world\n")}, {nameEmpty, []byte{}}, {nameUnicode, []byte("unicode ✓\n")},
		{nameSmall, randomBytes(8<<10, 1)}, {nameStream, randomBytes(40<<10, 2)}, {nameBig, randomBytes(60<<10, 3)},
	}
	first := shardOf(t, f.des[0])
	byShard[first] = plain
	for i, n := range f.des {
		sh := shardOf(t, n)
		byShard[sh] = append(byShard[sh], file{n, randomBytes(1000+i, 100+uint64(i))})
	}
	for sh, files := range byShard {
		key := containerKey(sh, fmt.Sprintf("c000000000000000%c", 'a'+sh))
		if sh == first {
			f.keyA = key
		}
		putContainer(t, s, f.bucket, key, files)
		for _, fl := range files {
			f.data[fl.name], f.key[fl.name] = fl.data, key
		}
	}
	f.url = startReader(t, f.bucket)
	return f
}

func newReaderClient(t testing.TB, baseURL string) *client.Reader {
	t.Helper()
	c, err := client.NewReader(baseURL, &http.Client{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// faultProxy forwards to the sidecar at target and passes each response body through fault, as a
// damaged network or a broken proxy in between would; the headers, Content-Length included, are
// the sidecar's.
func faultProxy(t testing.TB, target string, fault func([]byte) []byte) string {
	t.Helper()
	return proxy(t, target, func(resp *http.Response) error {
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(fault(b)))
		return nil
	})
}

// headerProxy forwards to the sidecar at target and sets header key to value in its answers.
func headerProxy(t testing.TB, target, key, value string) string {
	t.Helper()
	return proxy(t, target, func(resp *http.Response) error {
		resp.Header.Set(key, value)
		return nil
	})
}

func proxy(t testing.TB, target string, modify func(*http.Response) error) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := httputil.NewSingleHostReverseProxy(u)
	p.ModifyResponse = modify
	hs := httptest.NewServer(p)
	t.Cleanup(hs.Close)
	return hs.URL
}

// flipAt returns a fault that inverts the first byte of the first occurrence of what.
func flipAt(what []byte) func([]byte) []byte {
	return func(b []byte) []byte {
		if i := bytes.Index(b, what); i >= 0 {
			b[i] ^= 0xff
		}
		return b
	}
}

// dropAt returns a fault that removes the first byte of the first occurrence of what, leaving the
// rest of the stream well-formed.
func dropAt(what []byte) func([]byte) []byte {
	return func(b []byte) []byte {
		if i := bytes.Index(b, what); i >= 0 {
			b = append(b[:i], b[i+1:]...)
		}
		return b
	}
}

// cutAfter returns a fault that ends the body after n bytes.
func cutAfter(n int) func([]byte) []byte {
	return func(b []byte) []byte { return b[:min(n, len(b))] }
}

func ctx(t testing.TB) context.Context {
	t.Helper()
	return t.Context()
}
