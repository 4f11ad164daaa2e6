package reader

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// byteRange is the part of a payload to send.
type byteRange struct {
	off, n  int64
	partial bool // answer 206
}

// errUnsatisfiable answers 416.
var errUnsatisfiable = errors.New("range not satisfiable")

// requestedRange interprets Range (and If-Range) for a payload of size bytes, per RFC 9110 §14:
// a single range is honoured; several ranges, a malformed header or a failed If-Range are ignored (the
// whole payload is sent, which the RFC allows); a range starting beyond the end is unsatisfiable, except
// on an empty payload where the header is ignored (as net/http does, for clients that always send one).
func requestedRange(r *http.Request, size int64, etag string) (byteRange, error) {
	full := byteRange{n: size}
	spec := r.Header.Get("Range")
	if spec == "" || size == 0 {
		return full, nil
	}
	if ir := r.Header.Get("If-Range"); ir != "" && (etag == "" || ir != etag) {
		return full, nil
	}
	set, ok := strings.CutPrefix(spec, "bytes=")
	if !ok || strings.Contains(set, ",") {
		return full, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(set), "-")
	if !ok {
		return full, nil
	}
	if first == "" { // suffix: the last N bytes
		n, err := strconv.ParseInt(last, 10, 64)
		switch {
		case err != nil || n < 0:
			return full, nil
		case n == 0:
			return byteRange{}, fmt.Errorf("%w: %s of %d bytes", errUnsatisfiable, spec, size)
		}
		n = min(n, size)
		return byteRange{off: size - n, n: n, partial: true}, nil
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return full, nil
	}
	end := size - 1
	if last != "" {
		if end, err = strconv.ParseInt(last, 10, 64); err != nil || end < start {
			return full, nil
		}
		end = min(end, size-1)
	}
	if start >= size {
		return byteRange{}, fmt.Errorf("%w: %s of %d bytes", errUnsatisfiable, spec, size)
	}
	return byteRange{off: start, n: end - start + 1, partial: true}, nil
}

// etagListMatches implements If-None-Match's weak comparison against our strong tag.
func etagListMatches(header, tag string) bool {
	if header == "" {
		return false
	}
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == tag {
			return true
		}
	}
	return false
}
