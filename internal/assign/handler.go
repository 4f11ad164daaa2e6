package assign

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/datavision/des/internal/naming"
	"github.com/datavision/des/internal/nodeid"
	desclient "github.com/datavision/des/pkg/client"
)

// maxBodyBytes bounds a request body; a valid request is well under 200 bytes.
const maxBodyBytes = 4 << 10

// The wire types of POST /v1/names (Request, Response, Assigned) live with the Go client, so that
// server and client share one definition.
type (
	// Request is the body of POST /v1/names.
	Request = desclient.NamesRequest
	// Response is its answer.
	Response = desclient.NamesResponse
	// Assigned is one name of a Response.
	Assigned = desclient.AssignedName
)

// Handler serves POST /v1/names, /healthz, /readyz and /metrics.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/names", s.instrument(s.names))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.Ready() {
			http.Error(w, "no naming node id held", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))
	return mux
}

// statusWriter remembers the status code for the latency histogram.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Service) instrument(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h(sw, r)
		s.metrics.latency.WithLabelValues(strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	}
}

// httpError is a failed request: its status and message.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		code = he.code
	}
	w.Header().Set("Content-Type", "application/json")
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// params is a validated request.
type params struct {
	count     int
	prefix    string
	day       naming.Day
	fixedDay  bool
	shardBits int
}

func (s *Service) names(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, &httpError{http.StatusMethodNotAllowed, "use POST"})
		return
	}
	p, err := s.parse(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	body, err := s.issue(p)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
	s.metrics.issued.Add(float64(p.count))
	bufPool.Put(&body)
}

func (s *Service) parse(w http.ResponseWriter, r *http.Request) (params, error) {
	var req Request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return params{}, &httpError{http.StatusRequestEntityTooLarge, "request body too large"}
		}
		return params{}, badRequest("invalid JSON body: %v", err)
	}
	if dec.More() {
		return params{}, badRequest("invalid JSON body: more than one value")
	}
	p := params{count: req.Count, prefix: s.cfg.DefaultPrefix, shardBits: s.cfg.DefaultShardBits}
	if p.count < 1 || p.count > MaxCount {
		return params{}, badRequest("count %d out of range 1..%d", p.count, MaxCount)
	}
	if req.Prefix != nil && *req.Prefix != "" {
		if err := validPrefix(*req.Prefix); err != nil {
			return params{}, badRequest("prefix: %v", err)
		}
		p.prefix = *req.Prefix
	}
	if req.Day != nil {
		d, err := naming.ParseDay(*req.Day)
		if err != nil {
			return params{}, badRequest("day: %v", err)
		}
		p.day, p.fixedDay = d, true
	}
	if req.ShardBits != nil {
		if b := *req.ShardBits; b < naming.MinShardBits || b > naming.MaxShardBits {
			return params{}, badRequest("shardBits %d out of range %d..%d", b, naming.MinShardBits, naming.MaxShardBits)
		}
		p.shardBits = *req.ShardBits
	}
	return p, nil
}

// bufPool recycles response buffers: a 1000-name response is about 50 KB.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// errNoNode is the answer while no node id is held.
var errNoNode = &httpError{http.StatusServiceUnavailable, "this replica holds no naming node id; retry (another replica may)"}

// issue generates the names, admits them under the node Lease and formats the response. Names are
// handed out only after Admit succeeds, so none is issued once the Lease is lost.
func (s *Service) issue(p params) ([]byte, error) {
	cur := s.issuer()
	if cur == nil {
		return nil, errNoNode
	}
	names := make([]naming.Name, p.count)
	for i := range names {
		var err error
		if p.fixedDay {
			names[i], err = cur.gen.NextForDay(p.day)
		} else {
			names[i], err = cur.gen.Next()
		}
		if err != nil {
			return nil, err
		}
		names[i].Prefix = p.prefix
	}
	if err := cur.claim.Admit(names); err != nil {
		if errors.Is(err, nodeid.ErrLost) || errors.Is(err, nodeid.ErrNotCovered) {
			s.log.Info("refused to issue names", "node", cur.claim.Node(), "reason", err.Error())
			return nil, errNoNode
		}
		return nil, err
	}
	return formatNames(names, p.shardBits)
}

// formatNames writes {"names":[{"name":...,"shard":...},...]}. Names consist of letters, digits, '-',
// '_', '(' and ')' only, so they need no JSON escaping; writing them directly is several times faster
// than encoding/json.
func formatNames(names []naming.Name, shardBits int) ([]byte, error) {
	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], `{"names":[`...) //nolint:gocritic // reuses the pooled buffer on purpose
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":"`...)
		start := len(b)
		b = n.AppendTo(b)
		shard, err := naming.Shard(string(b[start:]), shardBits)
		if err != nil {
			return nil, err
		}
		b = append(b, `","shard":`...)
		b = strconv.AppendUint(b, uint64(shard), 10)
		b = append(b, '}')
	}
	b = append(b, "]}\n"...)
	return b, nil
}

// validPrefix checks a prefix the way the generator does.
func validPrefix(p string) error {
	return naming.Name{Prefix: p, Day: naming.Day{Year: 2000, Month: time.January, Day: 1}}.Validate()
}
