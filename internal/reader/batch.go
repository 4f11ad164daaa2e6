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

// batchGroup is the names of one request that live in one container: either an opened container
// (ct, names) or files placed by the catalog (placed), whose container is never opened.
type batchGroup struct {
	ct     *container
	names  []string
	placed []fileInfo
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
	var gs batchGroups
	var missing []string
	add := func(ct *container, name string) {
		g := gs.of(ct.key)
		g.ct = ct
		g.names = append(g.names, name)
	}
	if req.Container == "" && s.cfg.Catalog != nil {
		if groups, missing, err := s.groupByCatalog(ctx, req.Names); err == nil || ctx.Err() != nil {
			return groups, missing, err
		}
		// The catalog failed (counted and logged by lookup): search the archive instead.
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
		return gs.groups, missing, nil
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
	return gs.groups, missing, nil
}

// groupByCatalog groups names by the container the catalog places them in, with one lookup for the
// whole batch. Rows packed before placements were recorded open their container (never a search).
// An error from the catalog itself is returned as is, for the caller to fall back.
func (s *Server) groupByCatalog(ctx context.Context, names []string) ([]batchGroup, []string, error) {
	locs, err := s.catalogLocations(ctx, names)
	if err != nil {
		return nil, nil, err
	}
	var gs batchGroups
	var missing []string
	for _, name := range names {
		fl, ok := locs[name]
		if !ok {
			missing = append(missing, name)
			continue
		}
		err := s.checkLocation(fl)
		switch {
		case err == nil && fl.Placed:
			g := gs.of(fl.Key)
			g.placed = append(g.placed, s.placedInfo(ctx, fl))
			s.metrics.lookups.WithLabelValues(foundByCatalog).Inc()
		case err == nil:
			// Packed before placements were recorded: the catalog still names the container.
			g := gs.of(fl.Key)
			if g.ct == nil {
				g.ct, err = s.containerFor(ctx, fl.Key)
			}
			g.names = append(g.names, name)
			s.metrics.lookups.WithLabelValues(foundByIndex).Inc()
		case statusOf(err) == http.StatusNotFound:
			missing = append(missing, name)
			err = nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return gs.groups, missing, nil
}

// batchGroups collects a batch's groups in the order their containers first appear.
type batchGroups struct {
	groups []batchGroup
	at     map[string]int // container key → index in groups
}

// of returns the group of the container key, adding it if it is new.
func (b *batchGroups) of(key string) *batchGroup {
	i, ok := b.at[key]
	if !ok {
		if b.at == nil {
			b.at = map[string]int{}
		}
		i = len(b.groups)
		b.at[key] = i
		b.groups = append(b.groups, batchGroup{})
	}
	return &b.groups[i]
}

// streamPlaced sends files the catalog placed: small ones through coalesced ranges fetched in
// parallel, each verified against its recorded CRC-32C before any of its bytes are written, then
// empty ones, then large and external ones streamed one by one.
func (s *Server) streamPlaced(ctx context.Context, bw *batchWriter, placed []fileInfo) error {
	var planned []desformat.Location
	var streamed []*fileInfo
	for i := range placed {
		fi := &placed[i]
		switch {
		case fi.IsExternal() || fi.Size > s.cfg.VerifyBuffer:
			streamed = append(streamed, fi)
		case fi.Size > 0:
			planned = append(planned, desformat.Location{Name: fi.Name, Offset: fi.DataOffset, Size: fi.Size, CRC32C: fi.CRC, HasCRC: fi.HasCRC})
		}
	}
	first := &placed[0]
	if err := s.fetchRanges(ctx, bw, first.Key, first.obj.WithContext(ctx), desformat.PlanLocations(planned, s.cfg.Batch), nil); err != nil {
		return err
	}
	for i := range placed {
		if fi := &placed[i]; fi.Size == 0 && !fi.IsExternal() {
			if err := bw.part(partHeader(fi.Key, defaultContentType, fi.Name, 0, fi.CRC, fi.HasCRC), nil); err != nil {
				return err
			}
		}
	}
	for _, fi := range streamed {
		if err := s.streamInfo(ctx, bw, fi); err != nil {
			return err
		}
	}
	return nil
}

// streamGroup sends one container's files: small internal payloads through a coalesced plan fetched
// in parallel, then empty ones, then large and external payloads streamed one by one (so that no
// single payload is ever held in memory whole beyond VerifyBuffer).
func (s *Server) streamGroup(ctx context.Context, bw *batchWriter, g batchGroup) error {
	if len(g.placed) > 0 {
		if err := s.streamPlaced(ctx, bw, g.placed); err != nil {
			return err
		}
	}
	if g.ct == nil {
		return nil
	}
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
	if err := s.fetchRanges(ctx, bw, g.ct.key, obj, plan.Data, g.ct.contentType); err != nil {
		return err
	}
	emptyCRC := g.ct.r.Footer().HasPayloadChecksums() // CRC-32C of nothing is 0
	for _, name := range plan.Empty {
		if err := bw.part(partHeader(g.ct.key, g.ct.contentType(name), name, 0, 0, emptyCRC), nil); err != nil {
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

// fetchRanges fetches data ranges of the container key with bounded concurrency and writes each file
// as its range arrives, verified by Range.Deliver before any of its bytes are written. ctype gives a
// file's content type (nil: the default).
func (s *Server) fetchRanges(ctx context.Context, bw *batchWriter, key string, obj *objstore.ObjectReader, data []desformat.Range, ctype func(string) string) error {
	crcs := map[string]desformat.Span{}
	ranges := make([]objstore.Range, len(data))
	for i, rg := range data {
		ranges[i] = objstore.Range{Off: rg.Offset, Len: rg.Length}
		for _, sp := range rg.Spans {
			crcs[sp.Name] = sp
		}
	}
	return objstore.FetchRanges(ctx, obj, ranges, s.cfg.FetchConcurrency, func(i int, buf []byte) error {
		err := data[i].Deliver(buf, func(name string, b []byte) error {
			sp := crcs[name]
			t := defaultContentType
			if ctype != nil {
				t = ctype(name)
			}
			return bw.part(partHeader(key, t, name, int64(len(b)), sp.CRC32C, sp.HasCRC), b)
		})
		if err != nil {
			return err
		}
		return bw.flush()
	})
}

// streamPart sends a large or external payload of an opened container.
func (s *Server) streamPart(ctx context.Context, bw *batchWriter, ct *container, name string) error {
	fi, err := ct.stat(name)
	if err != nil {
		return err
	}
	return s.streamInfo(ctx, bw, &fi)
}

// streamInfo sends one payload with one streamed GET, verified on the way.
func (s *Server) streamInfo(ctx context.Context, bw *batchWriter, fi *fileInfo) error {
	body, err := s.openStream(ctx, fi, byteRange{n: fi.Size})
	if err != nil {
		return err
	}
	defer body.Close()
	pw, err := bw.begin(partHeader(fi.Key, fi.ContentType, fi.Name, fi.Size, fi.CRC, fi.HasCRC))
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

// contentType is a file's type from the meta table when it has the entry, the default otherwise
// (reading its meta would cost a request per file).
func (c *container) contentType(name string) string {
	if c.metaFree(name) {
		if fi, err := c.stat(name); err == nil {
			return fi.ContentType
		}
	}
	return defaultContentType
}

// partHeader describes one file of the batch.
func partHeader(key, ctype, name string, size int64, crc uint32, hasCRC bool) textproto.MIMEHeader {
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set(HeaderName, url.PathEscape(name))
	h.Set(HeaderStatus, "200")
	h.Set(HeaderContainer, key)
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
