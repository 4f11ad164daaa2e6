package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxErrorBody bounds how much of an error answer is read for its message.
const maxErrorBody = 64 << 10

// endpoint is a base URL and the HTTP client to reach it with; both clients share it.
type endpoint struct {
	base string // scheme://host[/path], without a trailing slash
	hc   *http.Client
}

func newEndpoint(baseURL string, hc *http.Client) (endpoint, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return endpoint{}, fmt.Errorf("des client: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return endpoint{}, fmt.Errorf("des client: base URL %q: want http(s)://host[:port][/path]", baseURL)
	}
	if hc == nil {
		// A client of our own rather than http.DefaultClient, which other code may reconfigure.
		hc = &http.Client{}
	}
	return endpoint{base: strings.TrimRight(u.String(), "/"), hc: hc}, nil
}

// do sends req and returns the response when its status is one of ok; any other answer is read into
// a *StatusError (op names the request in it) and its body closed.
func (e endpoint) do(ctx context.Context, req *http.Request, op string, ok ...int) (*http.Response, error) {
	resp, err := e.hc.Do(req.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("des client: %s: %w", op, err)
	}
	for _, code := range ok {
		if resp.StatusCode == code {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	return nil, statusError(op, resp)
}

// newRequest builds a request for escapedPath, which starts with "/" and is already path-escaped.
func (e endpoint) newRequest(method, escapedPath string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequest(method, e.base+escapedPath, body)
	if err != nil {
		return nil, fmt.Errorf("des client: %s %s: %w", method, escapedPath, err)
	}
	return req, nil
}

// statusError builds the error of a failed answer, taking the message from a JSON error body when
// there is one (plain text otherwise, e.g. from a proxy in between).
func statusError(op string, resp *http.Response) *StatusError {
	se := &StatusError{Op: op, Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody)) // the status alone is still an answer
	var eb errorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		se.Message = eb.Error
	} else {
		se.Message = strings.TrimSpace(string(b))
	}
	return se
}
