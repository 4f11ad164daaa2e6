package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Reader is a client of the reader sidecar. It is safe for concurrent use.
type Reader struct {
	ep endpoint
}

// NewReader returns a client of the sidecar at baseURL (e.g. "http://127.0.0.1:8090") using hc, or a
// client of its own when hc is nil.
func NewReader(baseURL string, hc *http.Client) (*Reader, error) {
	ep, err := newEndpoint(baseURL, hc)
	if err != nil {
		return nil, err
	}
	return &Reader{ep: ep}, nil
}

// Ref says which file to read: by DES name alone (Container empty: the sidecar finds the container
// from the name's day and shard) or by container key and any valid archive name.
type Ref struct {
	Container string // object key of the container, e.g. "scans/2026-02-24/0a1f/c0190a2b3c4d5e6f7/c0190a2b3c4d5e6f7.des"
	Name      string
}

// path is the escaped request path of the file; a key keeps its "/" between escaped segments.
func (ref Ref) path() string {
	if ref.Container == "" {
		return "/v1/files/" + url.PathEscape(ref.Name)
	}
	segs := strings.Split(ref.Container, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/v1/containers/" + strings.Join(segs, "/") + "/files/" + url.PathEscape(ref.Name)
}

// FileInfo describes a file as the sidecar announced it.
type FileInfo struct {
	Name        string
	Container   string // key of the container the bytes come from
	ContentType string
	Size        int64
	CRC32C      uint32 // valid when HasCRC (DES v1 archives record none)
	HasCRC      bool
}

// Stat asks for a file's size, checksum and container without its bytes (one HEAD).
func (r *Reader) Stat(ctx context.Context, ref Ref) (FileInfo, error) {
	resp, err := r.get(ctx, http.MethodHead, ref, "")
	if err != nil {
		return FileInfo{}, err
	}
	resp.Body.Close()
	return wholeFile(ref.Name, resp)
}

// Open starts reading a whole file. The Body verifies the file's length and CRC-32C as it streams:
// the Read that would return io.EOF returns an error wrapping ErrIncomplete or ErrChecksum instead,
// so a file read to io.EOF is a verified file. The caller must Close the Body.
func (r *Reader) Open(ctx context.Context, ref Ref) (*Body, error) {
	resp, err := r.get(ctx, http.MethodGet, ref, "")
	if err != nil {
		return nil, err
	}
	fi, err := wholeFile(ref.Name, resp)
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	return newBody(fi, resp.Body), nil
}

// ReadFile reads a whole file into memory and verifies it.
func (r *Reader) ReadFile(ctx context.Context, ref Ref) ([]byte, error) {
	b, err := r.Open(ctx, ref)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return b.Bytes()
}

// ReadRange reads length bytes of a file from offset off (length < 0: to the end). A range of a file
// cannot be checked by the client, since only whole files have a checksum; the sidecar checks files
// up to its verify buffer (4 MiB) whole before it sends any range of them. A range starting at or
// past the end fails with ErrRangeNotSatisfiable; one running past the end is cut at the end.
func (r *Reader) ReadRange(ctx context.Context, ref Ref, off, length int64) ([]byte, error) {
	if off < 0 || length == 0 {
		return nil, fmt.Errorf("des client: range of %q: offset %d, length %d: %w", ref.Name, off, length, ErrRangeNotSatisfiable)
	}
	spec := fmt.Sprintf("bytes=%d-", off)
	if length > 0 {
		spec += strconv.FormatInt(off+length-1, 10)
	}
	resp, err := r.get(ctx, http.MethodGet, ref, spec)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		// The sidecar answers a Range on an empty file with the whole file, which can be verified.
		fi, err := wholeFile(ref.Name, resp)
		if err != nil {
			return nil, err
		}
		b, err := newBody(fi, resp.Body).Bytes()
		return clipRange(b, off, length), err
	}
	return readPartial(resp, ref.Name, off)
}

// readPartial reads a 206 body after checking that Content-Range starts where asked.
func readPartial(resp *http.Response, name string, off int64) ([]byte, error) {
	var start, end, size int64
	if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &start, &end, &size); err != nil || start != off || end < start {
		return nil, fmt.Errorf("%w: range of %q: Content-Range %q", ErrProtocol, name, resp.Header.Get("Content-Range"))
	}
	b, err := newBody(FileInfo{Name: name, Size: end - start + 1}, resp.Body).Bytes()
	return b, err
}

func clipRange(b []byte, off, length int64) []byte {
	if off >= int64(len(b)) {
		return []byte{}
	}
	b = b[off:]
	if length >= 0 && length < int64(len(b)) {
		b = b[:length]
	}
	return b
}

// get sends GET or HEAD for ref, with a Range header when rangeSpec is set.
func (r *Reader) get(ctx context.Context, method string, ref Ref, rangeSpec string) (*http.Response, error) {
	path := ref.path()
	op := method + " " + path
	req, err := r.ep.newRequest(method, path, nil)
	if err != nil {
		return nil, err
	}
	ok := []int{http.StatusOK}
	if rangeSpec != "" {
		req.Header.Set("Range", rangeSpec)
		ok = append(ok, http.StatusPartialContent)
	}
	return r.ep.do(ctx, req, op, ok...)
}

// wholeFile reads the headers the sidecar sends with a whole file; it always announces the length,
// which is what lets a cut body be told from a complete one.
func wholeFile(name string, resp *http.Response) (FileInfo, error) {
	if resp.ContentLength < 0 {
		return FileInfo{}, fmt.Errorf("%w: %q: no Content-Length", ErrProtocol, name)
	}
	return fileInfo(name, resp.Header, resp.ContentLength)
}

// fileInfo reads the file headers common to whole files and batch parts.
func fileInfo(name string, h interface{ Get(string) string }, size int64) (FileInfo, error) {
	fi := FileInfo{Name: name, Container: h.Get(HeaderContainer), ContentType: h.Get("Content-Type"), Size: size}
	if v := h.Get(HeaderChecksum); v != "" {
		crc, err := parseChecksum(v)
		if err != nil {
			return fi, fmt.Errorf("%w: %q: %w", ErrProtocol, name, err)
		}
		fi.CRC32C, fi.HasCRC = crc, true
	}
	return fi, nil
}

// parseChecksum decodes "crc32c=<8 hex digits>".
func parseChecksum(v string) (uint32, error) {
	hex, ok := strings.CutPrefix(v, checksumPrefix)
	if !ok || len(hex) != 8 {
		return 0, fmt.Errorf("%s %q: want %s<8 hex digits>", HeaderChecksum, v, checksumPrefix)
	}
	crc, err := strconv.ParseUint(hex, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", HeaderChecksum, v, err)
	}
	return uint32(crc), nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Body is a file's bytes as they stream in, with what the server announced about them. Its Read
// fails instead of returning io.EOF when the length or CRC-32C does not match.
type Body struct {
	FileInfo
	rc   io.ReadCloser
	h    hash.Hash32
	read int64
	err  error // sticky result once the end was reached or the stream failed
}

func newBody(fi FileInfo, rc io.ReadCloser) *Body {
	return &Body{FileInfo: fi, rc: rc, h: crc32.New(castagnoli)}
}

// Read reads payload bytes; see Body.
func (b *Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if rest := b.Size - b.read; b.Size >= 0 && int64(len(p)) > rest+1 {
		p = p[:rest+1] // one byte more than announced is enough to notice a longer body
	}
	n, err := b.rc.Read(p)
	b.h.Write(p[:n])
	b.read += int64(n)
	switch {
	case b.Size >= 0 && b.read > b.Size:
		b.err = fmt.Errorf("%w: %q: more than the announced %d bytes", ErrProtocol, b.Name, b.Size)
	case errors.Is(err, io.EOF):
		b.err = b.finish()
	case err != nil:
		b.err = fmt.Errorf("%w: %q after %d of %d bytes: %w", ErrIncomplete, b.Name, b.read, b.Size, err)
	}
	return n, b.err
}

// finish checks a body that ended: its length, then its checksum. A clean end is io.EOF.
func (b *Body) finish() error {
	switch {
	case b.Size >= 0 && b.read != b.Size:
		return fmt.Errorf("%w: %q: %d of %d bytes", ErrIncomplete, b.Name, b.read, b.Size)
	case b.HasCRC && b.h.Sum32() != b.CRC32C:
		return &ChecksumError{Name: b.Name, Got: b.h.Sum32(), Want: b.CRC32C}
	}
	return io.EOF
}

// Bytes reads the rest of the body and returns it once verified.
func (b *Body) Bytes() ([]byte, error) {
	var buf bytes.Buffer
	if b.Size > 0 && b.Size <= 64<<20 {
		buf.Grow(int(b.Size)) // bounded: the size is the server's word
	}
	if _, err := buf.ReadFrom(b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Close releases the connection.
func (b *Body) Close() error { return b.rc.Close() }
