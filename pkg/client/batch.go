package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
)

// Part is one file of a batch: its announced info and, for a found file, its bytes as they stream
// in. Reading a Part verifies it like a Body. A Part is valid only until the loop moves on; parts
// left unread are skipped (not verified: their bytes are never handed out).
type Part struct {
	*Body
	// Missing is true for a name the sidecar found nowhere; such a part has no bytes.
	Missing bool
}

// Batch reads many files with one request. It yields one Part per distinct name, grouped by
// container in archive order (not request order; see docs/reader.md), then the names found nowhere.
//
// An error that concerns one file comes with its Part and the loop may go on: a missing name is
// yielded with a *StatusError matching ErrNotFound. An error that ends the stream (the request
// failed, the stream was cut, fewer parts arrived than the server announced) comes with a nil Part
// and is the last value. Errors reading a part's bytes (ErrChecksum, ErrIncomplete) come from its
// Read.
func (r *Reader) Batch(ctx context.Context, req BatchRequest) iter.Seq2[*Part, error] {
	return func(yield func(*Part, error) bool) {
		resp, err := r.postBatch(ctx, req)
		if err != nil {
			yield(nil, err)
			return
		}
		defer resp.Body.Close()
		s, err := newBatchStream(resp)
		if err != nil {
			yield(nil, err)
			return
		}
		for {
			p, err := s.next()
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(p, err) || p == nil {
				return
			}
		}
	}
}

func (r *Reader) postBatch(ctx context.Context, req BatchRequest) (*http.Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("des client: batch request: %w", err)
	}
	const path = "/v1/batch"
	hr, err := r.ep.newRequest(http.MethodPost, path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	return r.ep.do(ctx, hr, http.MethodPost+" "+path, http.StatusOK)
}

// batchStream walks the parts of a multipart/mixed batch response and counts them against the
// response's X-Des-Files and X-Des-Missing, so that a stream losing whole parts is noticed too.
type batchStream struct {
	mr         *multipart.Reader
	want, seen int
}

func newBatchStream(resp *http.Response) (*batchStream, error) {
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" || params["boundary"] == "" {
		return nil, fmt.Errorf("%w: batch: Content-Type %q", ErrProtocol, resp.Header.Get("Content-Type"))
	}
	files, err1 := strconv.Atoi(resp.Header.Get(HeaderFiles))
	missing, err2 := strconv.Atoi(resp.Header.Get(HeaderMissing))
	if err1 != nil || err2 != nil || files < 0 || missing < 0 {
		return nil, fmt.Errorf("%w: batch: %s %q, %s %q", ErrProtocol, HeaderFiles, resp.Header.Get(HeaderFiles),
			HeaderMissing, resp.Header.Get(HeaderMissing))
	}
	return &batchStream{mr: multipart.NewReader(resp.Body, params["boundary"]), want: files + missing}, nil
}

// next returns the next part, io.EOF after the last one, or a nil part with the error that ends
// the stream.
func (s *batchStream) next() (*Part, error) {
	mp, err := s.mr.NextPart()
	switch {
	case errors.Is(err, io.EOF) && s.seen == s.want:
		return nil, io.EOF
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%w: batch: %d of %d parts", ErrIncomplete, s.seen, s.want)
	case err != nil:
		return nil, fmt.Errorf("%w: batch after %d of %d parts: %w", ErrIncomplete, s.seen, s.want, err)
	}
	s.seen++
	return readPart(mp)
}

// readPart decodes one part's headers.
func readPart(mp *multipart.Part) (*Part, error) {
	name, err := url.PathUnescape(mp.Header.Get(HeaderName))
	if err != nil || name == "" {
		return nil, fmt.Errorf("%w: batch part %s %q", ErrProtocol, HeaderName, mp.Header.Get(HeaderName))
	}
	switch status := mp.Header.Get(HeaderStatus); status {
	case "404":
		p := &Part{Body: newBody(FileInfo{Name: name}, mp), Missing: true}
		return p, &StatusError{Op: "batch " + name, Status: http.StatusNotFound, Message: "found in no container"}
	case "200":
	default:
		return nil, fmt.Errorf("%w: batch part %q: %s %q", ErrProtocol, name, HeaderStatus, status)
	}
	size, err := strconv.ParseInt(mp.Header.Get("Content-Length"), 10, 64)
	if err != nil || size < 0 {
		return nil, fmt.Errorf("%w: batch part %q: Content-Length %q", ErrProtocol, name, mp.Header.Get("Content-Length"))
	}
	fi, err := fileInfo(name, mp.Header, size)
	if err != nil {
		return nil, err
	}
	return &Part{Body: newBody(fi, mp)}, nil
}
