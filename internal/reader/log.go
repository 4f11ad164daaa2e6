package reader

import (
	"errors"
	"log"
	"strings"

	"github.com/go-logr/logr"
)

// httpErrorLog routes net/http's own complaints (TLS handshakes, broken connections, panics in
// handlers) into the server's logr logger, so the sidecar writes one log stream in one format.
func httpErrorLog(l logr.Logger) *log.Logger {
	return log.New(errorWriter{l.WithName("http")}, "", 0)
}

type errorWriter struct{ log logr.Logger }

func (w errorWriter) Write(p []byte) (int, error) {
	w.log.Error(errors.New(strings.TrimSpace(string(p))), "HTTP server error")
	return len(p), nil
}
