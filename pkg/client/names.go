package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/datavision/des/pkg/des"
)

// MaxNamesPerRequest is the most names the name service issues for one request.
const MaxNamesPerRequest = 10000

// Names is a client of the name service. It is safe for concurrent use.
type Names struct {
	ep endpoint
}

// NewNames returns a client of the name service at baseURL (e.g. "http://des-name-service.des-system")
// using hc, or a client of its own when hc is nil.
func NewNames(baseURL string, hc *http.Client) (*Names, error) {
	ep, err := newEndpoint(baseURL, hc)
	if err != nil {
		return nil, err
	}
	return &Names{ep: ep}, nil
}

// NameOptions are the optional parts of a request for names; zero values take the service's
// defaults.
type NameOptions struct {
	Prefix    string  // "" : the service's default prefix
	Day       des.Day // zero: the UTC day of issue
	ShardBits int     // 0: the service's default width
}

// request is the wire form of count names with opts.
func (o NameOptions) request(count int) NamesRequest {
	req := NamesRequest{Count: count}
	if o.Prefix != "" {
		req.Prefix = &o.Prefix
	}
	if o.Day != (des.Day{}) {
		day := o.Day.String()
		req.Day = &day
	}
	if o.ShardBits != 0 {
		req.ShardBits = &o.ShardBits
	}
	return req
}

// New asks for count (1..MaxNamesPerRequest) new names. A replica that holds no naming node id
// answers 503 (a *StatusError); another replica behind the same Service may succeed, so callers
// retry such errors. The names are checked to parse and to be as many as asked for.
func (n *Names) New(ctx context.Context, count int, opts NameOptions) ([]AssignedName, error) {
	if count < 1 || count > MaxNamesPerRequest {
		return nil, fmt.Errorf("des client: %d names asked, want 1..%d", count, MaxNamesPerRequest)
	}
	body, err := json.Marshal(opts.request(count))
	if err != nil {
		return nil, fmt.Errorf("des client: names request: %w", err)
	}
	const path = "/v1/names"
	req, err := n.ep.newRequest(http.MethodPost, path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.ep.do(ctx, req, http.MethodPost+" "+path, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return decodeNames(resp.Body, count)
}

// decodeNames reads a names response and checks it holds count valid names.
func decodeNames(r io.Reader, count int) ([]AssignedName, error) {
	var nr NamesResponse
	if err := json.NewDecoder(io.LimitReader(r, int64(count)*256+1024)).Decode(&nr); err != nil {
		return nil, fmt.Errorf("%w: names response: %w", ErrProtocol, err)
	}
	if len(nr.Names) != count {
		return nil, fmt.Errorf("%w: names response: %d names, asked for %d", ErrProtocol, len(nr.Names), count)
	}
	for _, a := range nr.Names {
		if _, err := des.ParseName(a.Name); err != nil {
			return nil, fmt.Errorf("%w: names response: %w", ErrProtocol, err)
		}
	}
	return nr.Names, nil
}
