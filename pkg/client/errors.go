package client

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/datavision/des/pkg/des"
)

var (
	// ErrNotFound means the sidecar has no such file (or container). It is des.ErrNotFound.
	ErrNotFound = des.ErrNotFound
	// ErrChecksum means bytes received do not match their CRC-32C. It is des.ErrChecksum.
	ErrChecksum = des.ErrChecksum
	// ErrIncomplete means a response ended early (a cut connection, a body shorter than announced, a batch
	// stream without its closing boundary or with fewer parts than announced). The sidecar cuts a
	// response on purpose when it finds damage after the status line was sent.
	ErrIncomplete = errors.New("des client: incomplete response")
	// ErrRangeNotSatisfiable means the requested range starts at or past the end of the file.
	ErrRangeNotSatisfiable = errors.New("des client: range not satisfiable")
	// ErrProtocol means the server's answer does not follow the wire format (missing or malformed headers).
	ErrProtocol = errors.New("des client: protocol error")
)

// StatusError is an answer other than success. It matches ErrNotFound for 404 and
// ErrRangeNotSatisfiable for 416.
type StatusError struct {
	Op      string // what was asked, e.g. "GET /v1/files/NAME"
	Status  int    // HTTP status code
	Message string // the server's error message, if it sent one
}

func (e *StatusError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("des client: %s: %d: %s", e.Op, e.Status, msg)
}

// Unwrap lets errors.Is match the statuses that have a sentinel.
func (e *StatusError) Unwrap() error {
	switch e.Status {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusRequestedRangeNotSatisfiable:
		return ErrRangeNotSatisfiable
	}
	return nil
}

// ChecksumError reports a payload whose bytes do not match the CRC-32C the server announced. It
// matches ErrChecksum.
type ChecksumError struct {
	Name      string
	Got, Want uint32
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("des client: %q has crc32c %08x, server announced %08x", e.Name, e.Got, e.Want)
}

// Unwrap makes errors.Is(err, ErrChecksum) true.
func (e *ChecksumError) Unwrap() error { return ErrChecksum }
