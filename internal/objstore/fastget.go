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
	resp, err := f.send(ctx, bucket, key, rng.header(), etag)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusPartialContent || !isRange(resp, rng) {
		f.reject(resp)
		return nil, errNotFast
	}
	return resp.Body, nil
}

// getObject sends GET bucket/key for the whole object and returns the body of a plain 200 answer of
// known length, with what Store.Get reports about the object. The packer reads every source object
// this way: the SDK's middleware costs more CPU per small object than the rest of packing it.
func (f *fastGetter) getObject(ctx context.Context, bucket, key string) (io.ReadCloser, ObjectInfo, error) {
	resp, err := f.send(ctx, bucket, key, "", "")
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusOK || resp.ContentLength < 0 || etag == "" {
		f.reject(resp)
		return nil, ObjectInfo{}, errNotFast
	}
	info := ObjectInfo{Key: key, Size: resp.ContentLength, ETag: etag, ContentType: resp.Header.Get("Content-Type")}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		info.LastModified = t.UTC()
	}
	for h, v := range resp.Header {
		// As the SDK reports user metadata: the names after the prefix, in lower case.
		if name, ok := strings.CutPrefix(h, "X-Amz-Meta-"); ok && len(v) > 0 {
			if info.Metadata == nil {
				info.Metadata = map[string]string{}
			}
			info.Metadata[strings.ToLower(name)] = v[0]
		}
	}
	return resp.Body, info, nil
}

// send signs and sends GET bucket/key, with a Range header when rng is set and If-Match when etag is.
// Any failure to get an answer is errNotFast: the SDK tries again and types the error.
func (f *fastGetter) send(ctx context.Context, bucket, key, rng, etag string) (*http.Response, error) {
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
	if rng != "" {
		req.Header.Set("Range", rng)
	} else {
		// Without it net/http asks for gzip and transparently decompresses an object stored with
		// Content-Encoding gzip: the bytes would not be the object's. The SDK asks for identity too.
		req.Header.Set("Accept-Encoding", "identity")
	}
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
	return resp, nil
}

// reject drops an answer the fast path does not handle.
func (f *fastGetter) reject(resp *http.Response) {
	// Read what little an error answer holds so the connection stays usable, then let the SDK send
	// the request again and make sense of it.
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	refusedSignature := resp.StatusCode == http.StatusForbidden && bytes.Contains(msg, []byte("SignatureDoesNotMatch"))
	if refusedSignature || resp.StatusCode/100 == 2 {
		// A store that refuses our signature, or answers with a success other than the one asked for
		// (another range, a body of unknown length, no ETag), would cost two requests per read for
		// ever: leave it to the SDK.
		f.off.Store(true)
	}
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
