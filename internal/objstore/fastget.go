package objstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// fastGetter sends the reader's hot request, a Range GET of a payload, as one signed HTTP request
// without the SDK's middleware stack, which a profile of the reader sidecar showed to cost more CPU
// per 4 KiB file than everything else the sidecar does for it. It handles only the successful answer:
// any failure or other answer (an error status, a network error, a store that ignores ranges) is left
// to the SDK path, which retries and types the error exactly as before. Reads never change anything,
// so trying again through the SDK is always safe.
//
// It is used only with an explicit path-style endpoint (MinIO, HCP, versitygw and most other
// S3-compatible stores): AWS endpoint resolution (virtual hosts, FIPS, dual-stack, access points) stays
// the SDK's.
type fastGetter struct {
	base   *url.URL // the endpoint; objects are base/bucket/key
	region string
	creds  aws.CredentialsProvider
	signer *v4.Signer
	client aws.HTTPClient
	// off is set once the store refused a fast request's signature or answered it with other than the
	// range: such a store would otherwise cost two requests per read for ever.
	off atomic.Bool
}

// emptySHA256 is the SHA-256 of an empty body, the payload hash of every GET.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// newFastGetter returns nil when the configuration is not one the fast path serves.
func newFastGetter(cfg Config, awsCfg aws.Config, client aws.HTTPClient) *fastGetter {
	if cfg.Endpoint == "" || !cfg.PathStyle || awsCfg.Credentials == nil {
		return nil
	}
	base, err := url.Parse(strings.TrimSuffix(cfg.Endpoint, "/"))
	if err != nil || base.Host == "" || (base.Scheme != "http" && base.Scheme != "https") || base.RawQuery != "" {
		return nil
	}
	return &fastGetter{base: base, region: awsCfg.Region, creds: awsCfg.Credentials,
		signer: v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }), client: client}
}

// usable reports whether reads should try the fast path (f may be nil).
func (f *fastGetter) usable() bool { return f != nil && !f.off.Load() }

// errNotFast means the fast path did not get the answer it handles; the caller uses the SDK.
var errNotFast = errors.New("objstore: fast GET not answered as expected")

// get sends GET bucket/key with rng (and If-Match etag when set) and returns the body of an answer that
// is exactly that range.
func (f *fastGetter) get(ctx context.Context, bucket, key string, rng Range, etag string) (io.ReadCloser, error) {
	creds, err := f.creds.Retrieve(ctx)
	if err != nil || !creds.HasKeys() {
		return nil, errNotFast
	}
	u := *f.base
	u.Path = f.base.Path + "/" + bucket + "/" + key
	u.RawPath = f.base.EscapedPath() + "/" + s3Escape(bucket) + "/" + s3Escape(key)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), http.NoBody)
	if err != nil {
		return nil, errNotFast
	}
	req.Header.Set("Range", rng.header())
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	if etag != "" {
		req.Header.Set("If-Match", etag)
	}
	if err := f.signer.SignHTTP(ctx, creds, req, emptySHA256, "s3", f.region, time.Now().UTC()); err != nil {
		return nil, errNotFast
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, errNotFast
	}
	if resp.StatusCode != http.StatusPartialContent || !isRange(resp, rng) {
		// Read what little an error answer holds so the connection stays usable, then let the SDK
		// send the request again and make sense of it.
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		refusedSignature := resp.StatusCode == http.StatusForbidden && bytes.Contains(msg, []byte("SignatureDoesNotMatch"))
		if refusedSignature || resp.StatusCode/100 == 2 {
			// A store that refuses our signature, or answers a range with something else than exactly
			// that range, would cost two requests per read for ever: leave it to the SDK.
			f.off.Store(true)
		}
		return nil, errNotFast
	}
	return resp.Body, nil
}

// isRange reports whether a 206 answer is exactly rng.
func isRange(resp *http.Response, rng Range) bool {
	cr, ok := parseContentRange(resp.Header.Get("Content-Range"))
	// A body of unknown length (chunked) is fine: its readers check they get exactly rng.Len bytes.
	return ok && cr.start == rng.Off && cr.end == rng.End()-1 && (resp.ContentLength == rng.Len || resp.ContentLength < 0)
}

// s3Escape percent-encodes every byte of a key except the unreserved characters and "/", as SigV4's
// canonical URI for S3 requires (the signer is told not to escape again), so that what is signed is
// exactly what is sent, for any key.
func s3Escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' || c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
