package devstack

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// LossyProxy stands between DES and the S3 server and loses answers: it forwards a request, lets the
// server do the work, and then cuts the connection instead of answering, as a timeout or a reset does.
// The client cannot tell whether its request took effect; DES must find out (a completed object whose
// answer was lost is still committed exactly once). Requests go to the server unchanged, Host header
// included, so their signatures stay valid.
type LossyProxy struct {
	// Endpoint is the proxy's URL, for the resources' spec.*.endpoint.
	Endpoint string

	srv   *http.Server
	rates map[string]float64

	mu   sync.Mutex
	rng  *rand.Rand
	lost map[string]int
}

// errLost makes the reverse proxy's error handler abort the connection.
var errLost = errors.New("devstack: answer lost on purpose")

// StartLossyProxy listens on 127.0.0.1 and forwards to upstream. rates gives, per S3 operation
// ("CompleteMultipartUpload", "PutObject", "UploadPart", "GetObject", ...), the share of answers lost.
func StartLossyProxy(upstream string, seed uint64, rates map[string]float64) (*LossyProxy, error) {
	target, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("lossy proxy upstream %q: %w", upstream, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &LossyProxy{Endpoint: "http://" + ln.Addr().String(), rates: rates,
		rng: rand.New(rand.NewPCG(seed, 7)), lost: map[string]int{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the client signed its own Host header
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode < 300 && p.lose(operation(resp.Request)) {
				return errLost
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			if errors.Is(err, errLost) {
				panic(http.ErrAbortHandler) // close the connection without an answer
			}
			http.Error(w, err.Error(), http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: rp}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// lose decides whether this answer of op is lost, and counts it.
func (p *LossyProxy) lose(op string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rng.Float64() >= p.rates[op] {
		return false
	}
	p.lost[op]++
	return true
}

// Lost says how many answers were lost, per operation.
func (p *LossyProxy) Lost() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.lost))
	for k, v := range p.lost {
		out[k] = v
	}
	return out
}

// Close stops the proxy.
func (p *LossyProxy) Close() { _ = p.srv.Close() }

// operation names the S3 operation of a path-style request, for the ones the proxy may lose.
func operation(r *http.Request) string {
	q := r.URL.Query()
	_, upload := q["uploadId"]
	_, part := q["partNumber"]
	_, uploads := q["uploads"]
	_, deletes := q["delete"]
	objectPath := strings.Count(strings.Trim(r.URL.Path, "/"), "/") >= 1
	switch {
	case r.Method == http.MethodPost && deletes:
		return "DeleteObjects"
	case r.Method == http.MethodPost && upload:
		return "CompleteMultipartUpload"
	case r.Method == http.MethodPost && uploads:
		return "CreateMultipartUpload"
	case r.Method == http.MethodPut && part:
		return "UploadPart"
	case r.Method == http.MethodPut && objectPath:
		return "PutObject"
	case r.Method == http.MethodGet && objectPath:
		return "GetObject"
	case r.Method == http.MethodHead && objectPath:
		return "HeadObject"
	case r.Method == http.MethodDelete && objectPath && !upload:
		return "DeleteObject"
	}
	return "other"
}
