package reader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"

	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/pkg/client"
)

// BatchRequest is the body of POST /v1/batch. The wire types live with the Go client, so that
// server and client share one definition.
type BatchRequest = client.BatchRequest

// Part headers of a batch response (see docs/reader.md).
const (
	HeaderName      = client.HeaderName
	HeaderStatus    = client.HeaderStatus
	HeaderContainer = client.HeaderContainer
	HeaderChecksum  = client.HeaderChecksum
	HeaderFiles     = client.HeaderFiles
	HeaderMissing   = client.HeaderMissing
)

var errTooManyNames = errors.New("too many names in batch")

// batchGroup is the names of one request that live in one container.
type batchGroup struct {
	ct    *container
	names []string
}

// handleBatch streams many files as multipart/mixed: parts are written as their ranges arrive, so
// memory stays bounded by FetchConcurrency ranges whatever the batch size.
func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	req, err := s.decodeBatch(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	groups, missing, err := s.groupBatch(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	found := len(req.Names) - len(missing)
	bw := newBatchWriter(w, found, len(missing))
	for _, g := range groups {
		if err = s.streamGroup(r.Context(), bw, g); err != nil {
			break
		}
	}
	for _, name := range missing {
		if err != nil {
			break
		}
		err = bw.missing(name)
	}
	if err == nil {
		err = bw.close()
	}
	s.metrics.files.WithLabelValues(routeBatch).Add(float64(bw.parts))
	s.metrics.bytes.WithLabelValues(routeBatch).Add(float64(bw.bytes))
	switch {
	case err == nil:
	case !bw.started:
		s.fail(w, r, err)
	case r.Context().Err() != nil:
		// The client hung up: not a failure of the reader, and the error says only that.
		s.log.V(1).Info("batch client went away", "parts", bw.parts)
	default:
		s.abort(r, err)
	}
}

// decodeBatch reads and checks the request: a bounded body, at most MaxBatchNames valid names
// (duplicates dropped, order kept), a readable container key if one is given.
func (s *Server) decodeBatch(w http.ResponseWriter, r *http.Request) (BatchRequest, error) {
	var req BatchRequest
	limit := int64(1<<20) + int64(s.cfg.MaxBatchNames)*1024
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("%w: body: %w", errBadRequest, err)
	}
	switch {
	case len(req.Names) == 0:
		return req, fmt.Errorf("%w: no names", errBadRequest)
	case len(req.Names) > s.cfg.MaxBatchNames:
		return req, fmt.Errorf("%w: %d names, at most %d", errTooManyNames, len(req.Names), s.cfg.MaxBatchNames)
	}
	seen := make(map[string]bool, len(req.Names))
	names := req.Names[:0]
	for _, n := range req.Names {
		if err := desformat.ValidateName(n); err != nil {
			return req, fmt.Errorf("%w: %w", errBadName, err)
		}
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	req.Names = names
	if req.Container != "" {
		if err := s.cfg.checkKey(req.Container); err != nil {
			return req, err
		}
	}
	return req, nil
}

// groupBatch finds each name's container. Names found nowhere are returned as missing; any other
// failure fails the request before anything is sent.
func (s *Server) groupBatch(ctx context.Context, req BatchRequest) ([]batchGroup, []string, error) {
	var groups []batchGroup
	var missing []string
	at := map[string]int{}
	add := func(ct *container, name string) {
		i, ok := at[ct.key]
		if !ok {
			i = len(groups)
			at[ct.key] = i
			groups = append(groups, batchGroup{ct: ct})
		}
		groups[i].names = append(groups[i].names, name)
	}
	if req.Container != "" {
		ct, err := s.containerFor(ctx, req.Container)
		if err != nil {
			return nil, nil, err
		}
		for _, name := range req.Names {
			if _, err := ct.r.Stat(name); err != nil {
				missing = append(missing, name)
				continue
			}
			add(ct, name)
		}
		return groups, missing, nil
	}
	for _, name := range req.Names {
		ct, err := s.locate(ctx, name)
		switch {
		case err == nil:
			add(ct, name)
		case statusOf(err) == http.StatusNotFound:
			missing = append(missing, name)
		default:
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return groups, missing, nil
}

// streamGroup sends one container's files: small internal payloads through a coalesced plan fetched
// in parallel, then empty ones, then large and external payloads streamed one by one (so that no
// single payload is ever held in memory whole beyond VerifyBuffer).
func (s *Server) streamGroup(ctx context.Context, bw *batchWriter, g batchGroup) error {
	var planned, streamed []string
	for _, name := range g.names {
		e, err := g.ct.r.Stat(name)
		if err != nil {
			return err
		}
		if e.IsExternal() || e.Size > s.cfg.VerifyBuffer {
			streamed = append(streamed, name)
		} else {
			planned = append(planned, name)
		}
	}
	plan, err := g.ct.r.PlanBatch(planned, s.cfg.Batch)
	if err != nil {
		return err
	}
	obj := g.ct.obj.WithContext(ctx)
	g.ct.fillChecksums(plan)
	if err := plan.LoadChecksums(obj); err != nil {
		return err
	}
	if err := s.fetchPlan(ctx, bw, g.ct, obj, plan); err != nil {
		return err
	}
	emptyCRC := g.ct.r.Footer().HasPayloadChecksums() // CRC-32C of nothing is 0
	for _, name := range plan.Empty {
		if err := bw.part(s.partHeader(g.ct, name, 0, 0, emptyCRC), nil); err != nil {
			return err
		}
	}
	for _, name := range streamed {
		if err := s.streamPart(ctx, bw, g.ct, name); err != nil {
			return err
		}
	}
	return nil
}

// fetchPlan fetches the plan's data ranges with bounded concurrency and writes each file as its range
// arrives, verified by Range.Deliver before any of its bytes are written.
func (s *Server) fetchPlan(ctx context.Context, bw *batchWriter, ct *container, obj *objstore.ObjectReader, plan *desformat.Plan) error {
	crcs := map[string]desformat.Span{}
	ranges := make([]objstore.Range, len(plan.Data))
	for i, rg := range plan.Data {
		ranges[i] = objstore.Range{Off: rg.Offset, Len: rg.Length}
		for _, sp := range rg.Spans {
			crcs[sp.Name] = sp
		}
	}
	return objstore.FetchRanges(ctx, obj, ranges, s.cfg.FetchConcurrency, func(i int, data []byte) error {
		err := plan.Data[i].Deliver(data, func(name string, b []byte) error {
			sp := crcs[name]
			return bw.part(s.partHeader(ct, name, int64(len(b)), sp.CRC32C, sp.HasCRC), b)
		})
		if err != nil {
			return err
		}
		return bw.flush()
	})
}

// streamPart sends a large or external payload with one streamed GET, verified on the way.
func (s *Server) streamPart(ctx context.Context, bw *batchWriter, ct *container, name string) error {
	fi, err := ct.stat(name)
	if err != nil {
		return err
	}
	body, err := s.openStream(ctx, ct, &fi, byteRange{n: fi.Size})
	if err != nil {
		return err
	}
	defer body.Close()
	pw, err := bw.begin(s.partHeader(ct, name, fi.Size, fi.CRC, fi.HasCRC))
	if err != nil {
		return err
	}
	n, err := copyHeld(pw, body)
	bw.bytes += n
	if err != nil {
		return err
	}
	return bw.flush()
}

// partHeader describes one file of the batch. The content type needs the file's meta, which is used
// only when cached (reading it would cost a request per file).
func (s *Server) partHeader(ct *container, name string, size int64, crc uint32, hasCRC bool) textproto.MIMEHeader {
	h := textproto.MIMEHeader{}
	ctype := defaultContentType
	if ct.metaFree(name) {
		if fi, err := ct.stat(name); err == nil {
			ctype = fi.ContentType
		}
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set(HeaderName, url.PathEscape(name))
	h.Set(HeaderStatus, "200")
	h.Set(HeaderContainer, ct.key)
	if hasCRC {
		h.Set(HeaderChecksum, fmt.Sprintf("crc32c=%08x", crc))
	}
	return h
}

// batchWriter writes the multipart/mixed response; the status line goes out with the first part, so
// failures before it still get a JSON error.
type batchWriter struct {
	w       http.ResponseWriter
	mw      *multipart.Writer
	rc      *http.ResponseController
	started bool
	parts   int
	bytes   int64
}

func newBatchWriter(w http.ResponseWriter, found, missing int) *batchWriter {
	mw := multipart.NewWriter(w)
	h := w.Header()
	h.Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(HeaderFiles, strconv.Itoa(found))
	h.Set(HeaderMissing, strconv.Itoa(missing))
	return &batchWriter{w: w, mw: mw, rc: http.NewResponseController(w)}
}

func (b *batchWriter) begin(h textproto.MIMEHeader) (io.Writer, error) {
	b.started = true
	b.parts++
	return b.mw.CreatePart(h)
}

func (b *batchWriter) part(h textproto.MIMEHeader, data []byte) error {
	pw, err := b.begin(h)
	if err != nil {
		return err
	}
	n, err := pw.Write(data)
	b.bytes += int64(n)
	return err
}

func (b *batchWriter) missing(name string) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Length", "0")
	h.Set(HeaderName, url.PathEscape(name))
	h.Set(HeaderStatus, "404")
	_, err := b.begin(h)
	b.parts--
	return err
}

// flush pushes what was written so far to the client, so parts stream instead of piling up in
// net/http's buffer.
func (b *batchWriter) flush() error {
	if err := b.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

func (b *batchWriter) close() error {
	b.started = true
	return b.mw.Close()
}
