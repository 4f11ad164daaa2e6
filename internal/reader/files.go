package reader

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
)

// handleContainerFile serves GET/HEAD /v1/containers/{key...}/files/{name}. The key may contain
// slashes (escaped or not); the name may not, so the last "/files/" separates them.
func (s *Server) handleContainerFile(w http.ResponseWriter, r *http.Request) {
	key, name, err := splitContainerPath(r.URL.EscapedPath())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := desformat.ValidateName(name); err != nil {
		s.fail(w, r, fmt.Errorf("%w: %w", errBadName, err))
		return
	}
	ct, err := s.containerFor(r.Context(), key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.serveFile(w, r, routeContainerFile, ct, name, foundByIndex)
}

// splitContainerPath extracts key and name from an escaped /v1/containers/KEY/files/NAME path.
func splitContainerPath(escaped string) (key, name string, err error) {
	rest, ok := strings.CutPrefix(escaped, "/v1/containers/")
	i := strings.LastIndex(rest, "/files/")
	if !ok || i <= 0 {
		return "", "", fmt.Errorf("%w: want /v1/containers/{key}/files/{name}", errBadRequest)
	}
	if key, err = url.PathUnescape(rest[:i]); err != nil {
		return "", "", fmt.Errorf("%w: key: %w", errBadRequest, err)
	}
	if name, err = url.PathUnescape(rest[i+len("/files/"):]); err != nil {
		return "", "", fmt.Errorf("%w: name: %w", errBadRequest, err)
	}
	return key, name, nil
}

// handleFile serves GET/HEAD /v1/files/{name}: from the catalog's placement when the reader has a
// catalog (one ranged GET, no index), otherwise from the container found by the name's day and shard.
func (s *Server) handleFile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := desformat.ValidateName(name); err != nil {
		s.fail(w, r, fmt.Errorf("%w: %w", errBadName, err))
		return
	}
	fi, err := s.find(r.Context(), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.serveInfo(w, r, routeFile, &fi)
}

// etag is the strong validator of a payload: its CRC-32C. Payloads of v1 archives have none.
func etag(fi *fileInfo) string {
	if !fi.HasCRC {
		return ""
	}
	return fmt.Sprintf(`"%08x"`, fi.CRC)
}

// serveFile answers one file of an opened container.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, route string, ct *container, name, foundBy string) {
	fi, err := ct.stat(name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	fi.foundBy = foundBy
	s.serveInfo(w, r, route, &fi)
}

// Response headers describing where a file was read (see docs/reader.md).
const (
	HeaderDesContainer = "X-Des-Container"
	HeaderDesOffset    = "X-Des-Offset"
	HeaderDesLength    = "X-Des-Length"
	HeaderDesCRC32C    = "X-Des-Crc32c"
	HeaderDesExternal  = "X-Des-External-Key"
	HeaderDesFoundBy   = "X-Des-Found-By"
)

// setFileHeaders describes fi in the response: validators, type and where the bytes are.
func setFileHeaders(h http.Header, fi *fileInfo, tag string) {
	h.Set("Content-Type", fi.ContentType)
	h.Set("Accept-Ranges", "bytes")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(HeaderDesContainer, fi.Key)
	h.Set(HeaderDesLength, strconv.FormatInt(fi.Size, 10))
	if fi.IsExternal() {
		h.Set(HeaderDesExternal, fi.ExternalKey)
	} else {
		h.Set(HeaderDesOffset, strconv.FormatInt(fi.DataOffset, 10))
	}
	if fi.foundBy != "" {
		h.Set(HeaderDesFoundBy, fi.foundBy)
	}
	if tag != "" {
		h.Set("ETag", tag)
		h.Set(HeaderDesCRC32C, strings.Trim(tag, `"`))
		h.Set("X-Des-Checksum", "crc32c="+strings.Trim(tag, `"`))
	}
}

// serveInfo answers one file (or one range of it) with exact bytes, never unverified full payloads.
// HEAD and conditional requests are answered from fi alone, without a request to the store.
func (s *Server) serveInfo(w http.ResponseWriter, r *http.Request, route string, fi *fileInfo) {
	h := w.Header()
	tag := etag(fi)
	setFileHeaders(h, fi, tag)
	if tag != "" && etagListMatches(r.Header.Get("If-None-Match"), tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	rng, err := requestedRange(r, fi.Size, tag)
	if err != nil {
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", fi.Size))
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if rng.partial {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rng.off, rng.off+rng.n-1, fi.Size))
	}
	h.Set("Content-Length", strconv.FormatInt(rng.n, 10))
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	n, err := s.writePayload(r.Context(), w, status, fi, rng)
	if n > 0 {
		s.metrics.bytes.WithLabelValues(route).Add(float64(n))
	}
	if err == nil {
		s.metrics.files.WithLabelValues(route).Inc()
		return
	}
	if n < 0 { // nothing sent yet: a proper error response is still possible
		s.fail(w, r, err)
		return
	}
	s.abort(r, fmt.Errorf("%s: %w", fi.Name, err))
}

// abort cuts a response whose headers are gone: net/http closes the connection (HTTP/1) or resets the
// stream (HTTP/2) instead of ending the body cleanly, so the client cannot mistake it for complete.
func (s *Server) abort(r *http.Request, err error) {
	s.forgetChanged(err)
	if r.Context().Err() == nil {
		s.log.Error(err, "response aborted", "path", r.URL.EscapedPath())
	}
	panic(http.ErrAbortHandler)
}

// writePayload sends the header and the bytes of rng. It returns -1 with the error when it failed
// before sending anything, otherwise the payload bytes written.
func (s *Server) writePayload(ctx context.Context, w http.ResponseWriter, status int, fi *fileInfo, rng byteRange) (int64, error) {
	switch {
	case rng.n == 0:
		w.WriteHeader(status)
		return 0, nil
	case !fi.IsExternal() && fi.Size <= s.cfg.VerifyBuffer:
		return s.writeVerified(ctx, w, status, fi, rng)
	}
	body, err := s.openStream(ctx, fi, rng)
	if err != nil {
		return -1, err
	}
	defer body.Close()
	w.WriteHeader(status)
	return copyHeld(w, body)
}

// copyHeld copies like io.Copy but sends each chunk only after the next Read succeeded. Verifying
// readers report a checksum mismatch on the Read after the last bytes (or with them), so the final
// chunk of a damaged payload never leaves: the client always receives fewer bytes than Content-Length
// and sees the cut connection as an error, never a complete but wrong body.
func copyHeld(w io.Writer, r io.Reader) (int64, error) {
	bufs := [2][]byte{make([]byte, 32<<10), make([]byte, 32<<10)}
	var pending []byte
	var written int64
	for i := 0; ; i ^= 1 {
		n, err := r.Read(bufs[i])
		if err != nil && err != io.EOF {
			return written, err
		}
		if len(pending) > 0 {
			m, werr := w.Write(pending)
			written += int64(m)
			if werr != nil {
				return written, werr
			}
		}
		pending = bufs[i][:n]
		if err == io.EOF {
			m, werr := w.Write(pending)
			return written + int64(m), werr
		}
	}
}

// writeVerified fetches a small payload whole with one GET, checks it, and only then answers, so a
// damaged payload gives a 502 even for a range request.
func (s *Server) writeVerified(ctx context.Context, w http.ResponseWriter, status int, fi *fileInfo, rng byteRange) (int64, error) {
	buf := make([]byte, fi.Size)
	if _, err := fi.obj.WithContext(ctx).ReadAt(buf, fi.DataOffset); err != nil {
		return -1, fmt.Errorf("read %q: %w", fi.Name, err)
	}
	if fi.HasCRC {
		if got := desformat.PayloadCRC(buf); got != fi.CRC {
			return -1, &desformat.CorruptError{Region: desformat.RegionData, Err: desformat.ErrChecksum,
				Reason: fmt.Sprintf("%q has crc32c %08x, meta says %08x", fi.Name, got, fi.CRC)}
		}
	}
	w.WriteHeader(status)
	n, err := w.Write(buf[rng.off : rng.off+rng.n])
	return int64(n), err
}

// openStream opens rng of a large or external payload with one GET. A whole payload is checked as it
// streams, its length always and its CRC-32C when it has one: the error surfaces with the last bytes,
// before they count as delivered.
func (s *Server) openStream(ctx context.Context, fi *fileInfo, rng byteRange) (io.ReadCloser, error) {
	var body io.ReadCloser
	var err error
	if fi.IsExternal() {
		// The key comes from the archive or the catalog: still, read nothing outside the prefixes.
		if err := s.cfg.checkKey(fi.ExternalKey); err != nil {
			return nil, fmt.Errorf("external payload of %q: %w", fi.Name, err)
		}
		var r *objstore.Range
		if rng.partial {
			r = &objstore.Range{Off: rng.off, Len: rng.n}
		}
		body, _, err = s.cfg.Store.Get(ctx, s.cfg.Bucket, fi.ExternalKey, r)
	} else {
		body, err = fi.obj.WithContext(ctx).OpenRange(objstore.Range{Off: fi.DataOffset + rng.off, Len: rng.n})
	}
	if err != nil || rng.partial {
		return body, err
	}
	return &verifyingReader{rc: body, h: desformat.NewPayloadHash(), check: fi.HasCRC, want: fi.CRC, left: fi.Size, name: fi.Name}, nil
}

// verifyingReader checks a payload's length and CRC-32C; on mismatch the final Read fails instead of
// returning io.EOF.
type verifyingReader struct {
	rc    io.ReadCloser
	h     hash.Hash32
	check bool // the payload has a CRC-32C (v1 payloads have none: only the length is checked)
	want  uint32
	left  int64
	name  string
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	v.left -= int64(n)
	if errors.Is(err, io.EOF) {
		switch {
		case v.left > 0:
			return n, &desformat.CorruptError{Region: desformat.RegionData, Err: desformat.ErrSizeMismatch,
				Reason: fmt.Sprintf("%q: %d bytes missing", v.name, v.left)}
		case v.left < 0:
			return n, &desformat.CorruptError{Region: desformat.RegionData, Err: desformat.ErrSizeMismatch,
				Reason: fmt.Sprintf("%q: %d bytes more than its recorded length", v.name, -v.left)}
		case v.check && v.h.Sum32() != v.want:
			return n, &desformat.CorruptError{Region: desformat.RegionData, Err: desformat.ErrChecksum,
				Reason: fmt.Sprintf("%q has crc32c %08x, meta says %08x", v.name, v.h.Sum32(), v.want)}
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.rc.Close() }
