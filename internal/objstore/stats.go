package objstore

import (
	"io"
	"net/http"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// StoreStats counts HTTP requests as sent on the wire, retries included, and body bytes, for metrics and
// benchmarks.
type StoreStats struct {
	Requests int64 // all HTTP requests
	Gets     int64
	Heads    int64
	Puts     int64 // PutObject and UploadPart
	Posts    int64 // Create/CompleteMultipartUpload
	Deletes  int64 // DeleteObject and AbortMultipartUpload
	BytesIn  int64 // response body bytes read (payloads and XML)
	BytesOut int64 // request body bytes sent
	// FastGets counts range GETs answered on the fast path (fastget.go); FastFallbacks those sent again
	// through the SDK because the fast path did not get the answer it handles.
	FastGets, FastFallbacks int64
}

type storeStats struct {
	requests, gets, heads, puts, posts, deletes, bytesIn, bytesOut atomic.Int64
	fastGets, fastFallbacks                                        atomic.Int64
}

func (s *storeStats) snapshot() StoreStats {
	return StoreStats{
		Requests: s.requests.Load(), Gets: s.gets.Load(), Heads: s.heads.Load(), Puts: s.puts.Load(),
		Posts: s.posts.Load(), Deletes: s.deletes.Load(), BytesIn: s.bytesIn.Load(), BytesOut: s.bytesOut.Load(),
		FastGets: s.fastGets.Load(), FastFallbacks: s.fastFallbacks.Load(),
	}
}

func (s *storeStats) countRequest(req *http.Request) {
	s.requests.Add(1)
	switch req.Method {
	case http.MethodGet:
		s.gets.Add(1)
	case http.MethodHead:
		s.heads.Add(1)
	case http.MethodPut:
		s.puts.Add(1)
	case http.MethodPost:
		s.posts.Add(1)
	case http.MethodDelete:
		s.deletes.Add(1)
	}
	if req.ContentLength > 0 {
		s.bytesOut.Add(req.ContentLength)
	}
}

// countingClient sits between the SDK and the transport, so it sees every attempt the retryer makes.
type countingClient struct {
	next  aws.HTTPClient
	stats *storeStats
}

func (c *countingClient) Do(req *http.Request) (*http.Response, error) {
	c.stats.countRequest(req)
	resp, err := c.next.Do(req)
	if resp != nil && resp.Body != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.stats.bytesIn}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// Stats is what one ObjectReader cost: its GET/HEAD requests (one per call, not counting the SDK's retries)
// and the payload bytes it received.
type Stats struct {
	Requests int64
	Bytes    int64
}
