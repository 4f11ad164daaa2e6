package reader_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/datavision/des/internal/reader"
	"github.com/datavision/des/test/testworld"
)

// serviceWorld is the reader as a read service: authentication through the test world's
// kube-apiserver with the RBAC of config/reader, served over TLS, over the fixture's bucket.
type serviceWorld struct {
	k       *testworld.KubeServer
	ns      string
	f       *fixture
	srv     *reader.Server
	url     string // https://127.0.0.1:port
	client  *http.Client
	reviews *countingReviews // the reader's API client
	certs   *testCerts
}

// countingReviews wraps the reader's real API client to count the reviews it sends.
type countingReviews struct {
	client.Client
	tokenReviews, accessReviews atomic.Int64
}

func (c *countingReviews) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	switch obj.(type) {
	case *authnv1.TokenReview:
		c.tokenReviews.Add(1)
	case *authzv1.SubjectAccessReview:
		c.accessReviews.Add(1)
	}
	return c.Client.Create(ctx, obj, opts...)
}

func (c *countingReviews) total() int64 { return c.tokenReviews.Load() + c.accessReviews.Load() }

// Accounts of a serviceWorld's namespace.
const (
	saReader  = "des-reader" // the read service's own account, bound as config/reader binds it
	saAllowed = "app-allowed"
	saDenied  = "app-denied"
	saNoRBAC  = "reader-without-rbac"
)

// newServiceWorld starts a read service. readerRBAC false leaves the reader's account without the
// auth-delegator binding, so that the API server refuses its reviews.
func newServiceWorld(t testing.TB, auth reader.AuthConfig, readerRBAC bool) *serviceWorld {
	t.Helper()
	ctx := context.Background()
	k := testworld.K8s(t)
	sw := &serviceWorld{k: k, ns: k.NewNamespace(t), certs: newTestCerts(t)}
	objs := readerManifests(t)
	for _, sa := range []string{saReader, saAllowed, saDenied, saNoRBAC} {
		if err := k.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: sw.ns}}); err != nil {
			t.Fatal(err)
		}
	}
	// The client ClusterRole as shipped, bound to saAllowed only, as docs/reader.md tells users to.
	apply(t, k.Client, manifest(t, objs, "ClusterRole", "des-reader-client"))
	bind := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "allowed-reads-files", Namespace: sw.ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "des-reader-client"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: saAllowed, Namespace: sw.ns}},
	}
	if err := k.Client.Create(ctx, bind); err != nil {
		t.Fatal(err)
	}
	readerAccount := saNoRBAC
	if readerRBAC {
		// The shipped ClusterRoleBinding, for this namespace's reader account.
		crb := manifest(t, objs, "ClusterRoleBinding", "des-reader-scans-auth-delegator")
		crb.SetName("des-reader-auth-" + sw.ns)
		subjects, _, _ := unstructured.NestedSlice(crb.Object, "subjects")
		subjects[0].(map[string]any)["namespace"] = sw.ns
		if err := unstructured.SetNestedSlice(crb.Object, subjects, "subjects"); err != nil {
			t.Fatal(err)
		}
		apply(t, k.Client, crb)
		t.Cleanup(func() { _ = k.Client.Delete(context.Background(), crb) })
		readerAccount = saReader
	}
	sw.reviews = &countingReviews{Client: clientWithToken(t, k, sw.token(t, readerAccount, nil))}
	auth.Reviews = sw.reviews
	if auth.Namespace == "" {
		auth.Namespace = sw.ns
	}

	sw.f = newFixture(t, newStore(t))
	cfg := reader.Config{Store: newStore(t), Bucket: sw.f.bucket, Prefixes: []string{testPrefix}, ShardBits: testShardBits,
		Auth: auth, Logger: testLogger(t)}
	srv, err := reader.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sw.srv = srv
	certs, err := reader.NewCertReloader(sw.certs.certFile, sw.certs.keyFile, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	sw.url, sw.client = serveTLS(t, srv, certs, sw.certs.pool)
	return sw
}

func testLogger(t testing.TB) logr.Logger {
	t.Helper()
	if testing.Verbose() {
		return testr.NewWithInterface(t, testr.Options{})
	}
	return logr.Discard()
}

// serveTLS serves srv's handler with TLS on loopback and returns its URL and a client trusting pool.
func serveTLS(t testing.TB, srv *reader.Server, certs *reader.CertReloader, pool *x509.CertPool) (string, *http.Client) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, tls.NewListener(ln, certs.TLSConfig()), srv.Handler(), 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		srv.Close()
	})
	// No connection reuse: every request handshakes, so a reloaded certificate shows at once.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return "https://" + ln.Addr().String(), &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// token mints a token of sa in the world's namespace with the TokenRequest API.
func (sw *serviceWorld) token(t testing.TB, sa string, audiences []string) string {
	t.Helper()
	tr := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{Audiences: audiences}}
	acct := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: sw.ns}}
	if err := sw.k.Client.SubResource("token").Create(context.Background(), acct, tr); err != nil {
		t.Fatalf("token for %s: %v", sa, err)
	}
	return tr.Status.Token
}

func (sw *serviceWorld) user(sa string) string { return "system:serviceaccount:" + sw.ns + ":" + sa }

// get sends a request with the Authorization header auth ("" for none).
func (sw *serviceWorld) do(t testing.TB, method, path, auth string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, sw.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := sw.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// clientWithToken is a client of the API server that authenticates with token only.
func clientWithToken(t testing.TB, k *testworld.KubeServer, token string) client.Client {
	t.Helper()
	cfg := rest.AnonymousClientConfig(k.Config)
	cfg.BearerToken = token
	c, err := client.New(cfg, client.Options{Scheme: k.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// reviewError is what the API server answers a TokenReview of token with, asked directly.
func reviewError(t testing.TB, k *testworld.KubeServer, token string, audiences []string) string {
	t.Helper()
	tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: audiences}}
	if err := k.Client.Create(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	if tr.Status.Authenticated || tr.Status.Error == "" {
		t.Fatalf("the API server authenticates the token (%+v): the case tests nothing", tr.Status)
	}
	return tr.Status.Error
}

func TestReadServiceAuth(t *testing.T) {
	const audience = "des-reader"
	sw := newServiceWorld(t, reader.AuthConfig{Audiences: []string{audience}, Source: "scans"}, true)
	name := sw.f.desA[0]
	want := sw.f.files[name].data
	filePath := "/v1/files/" + name
	allowed := sw.token(t, saAllowed, []string{audience})
	denied := sw.token(t, saDenied, []string{audience})
	otherAudience := sw.token(t, saAllowed, []string{"some-other-service"})
	apiAudience := sw.token(t, saAllowed, nil) // the API server's own audience
	const garbage = "not.a.jwt"

	tests := []struct {
		desc, method, path, auth string
		body                     string
		status                   int
		challenge                string   // the expected WWW-Authenticate, for 401
		errHas                   []string // substrings of the JSON error
	}{
		{desc: "no header", path: filePath, status: 401, challenge: `Bearer realm="des-reader"`, errHas: []string{"no bearer token"}},
		{desc: "basic credentials", path: filePath, auth: "Basic YWxhZGRpbjpvcGVuc2VzYW1l", status: 401,
			challenge: `Bearer realm="des-reader", error="invalid_request"`, errHas: []string{"malformed Authorization header", "not a Bearer credential"}},
		{desc: "bearer without token", path: filePath, auth: "Bearer ", status: 401, errHas: []string{"empty token"}},
		{desc: "token with spaces", path: filePath, auth: "Bearer a b", status: 401, errHas: []string{"b64token"}},
		{desc: "garbage token", path: filePath, auth: "Bearer " + garbage, status: 401, challenge: `Bearer realm="des-reader", error="invalid_token"`,
			errHas: []string{"token not authenticated", reviewError(t, sw.k, garbage, []string{audience})}},
		{desc: "token for another audience", path: filePath, auth: "Bearer " + otherAudience, status: 401,
			errHas: []string{"token not authenticated", reviewError(t, sw.k, otherAudience, []string{audience})}},
		{desc: "token for the API server", path: filePath, auth: "Bearer " + apiAudience, status: 401, errHas: []string{"token not authenticated"}},
		{desc: "no RoleBinding", path: filePath, auth: "Bearer " + denied, status: 403,
			errHas: []string{sw.user(saDenied) + ` may not get dessources/files "scans" (API group des.datavision.io) in namespace ` + sw.ns}},
		{desc: "bound", path: filePath, auth: "Bearer " + allowed, status: 200},
		{desc: "scheme is case-insensitive", path: filePath, auth: "bearer " + allowed, status: 200},
		{desc: "container route", path: "/v1/containers/" + escapeKey(sw.f.keyA) + "/files/" + name, auth: "Bearer " + allowed, status: 200},
		{desc: "container route, no token", path: "/v1/containers/" + escapeKey(sw.f.keyA) + "/files/" + name, status: 401},
		{desc: "batch, no token", method: "POST", path: "/v1/batch", body: `{"names":["` + name + `"]}`, status: 401},
		{desc: "batch, denied", method: "POST", path: "/v1/batch", body: `{"names":["` + name + `"]}`, auth: "Bearer " + denied, status: 403},
		{desc: "batch, bound", method: "POST", path: "/v1/batch", body: `{"names":["` + name + `"]}`, auth: "Bearer " + allowed, status: 200},
		{desc: "unknown route needs a token too", path: "/v2/anything", status: 401},
		{desc: "probe without token", path: "/healthz", status: 200},
		{desc: "readiness without token", path: "/readyz", status: 200},
		{desc: "metrics without token", path: "/metrics", status: 200},
		{desc: "metrics with a garbage token", path: "/metrics", auth: "Bearer " + garbage, status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			resp, b := sw.do(t, method, tc.path, tc.auth, body)
			mustStatus(t, resp, b, tc.status)
			if tc.status == 200 && method == "GET" && strings.HasPrefix(tc.path, "/v1/") && !bytes.Equal(b, want) {
				t.Fatalf("body: %d bytes, want the file's %d", len(b), len(want))
			}
			if tc.status == 200 && method == "POST" && !bytes.Contains(b, want) {
				t.Fatalf("batch body (%d bytes) lacks the file's bytes", len(b))
			}
			if tc.status == 401 {
				got := resp.Header.Get("WWW-Authenticate")
				if !strings.HasPrefix(got, "Bearer ") || (tc.challenge != "" && got != tc.challenge) {
					t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
				}
			}
			if tc.status >= 400 {
				var e struct {
					Error  string `json:"error"`
					Status int    `json:"status"`
				}
				if err := json.Unmarshal(b, &e); err != nil || e.Status != tc.status {
					t.Fatalf("error body %q is not the JSON error (%v)", b, err)
				}
				for _, s := range tc.errHas {
					if !strings.Contains(e.Error, s) {
						t.Errorf("error %q lacks %q", e.Error, s)
					}
				}
				if tc.auth != "" && strings.Contains(string(b), strings.TrimPrefix(tc.auth, "Bearer ")) && len(tc.auth) > len("Bearer ")+8 {
					t.Errorf("the answer quotes the credential: %q", b)
				}
			}
		})
	}
}

// TestReadServiceAuthCache checks that a decision is reused for the same token (no review sent),
// that a new token is reviewed, and that decisions are counted by outcome.
func TestReadServiceAuthCache(t *testing.T) {
	sw := newServiceWorld(t, reader.AuthConfig{CacheTTL: time.Hour}, true)
	path := "/v1/files/" + sw.f.desA[1]
	allowed, denied := sw.token(t, saAllowed, nil), sw.token(t, saDenied, nil)
	steps := []struct {
		desc    string
		auth    string
		status  int
		reviews int64 // reviews sent for the step
	}{
		{"first allowed: TokenReview and SubjectAccessReview", allowed, 200, 2},
		{"same token: cached", allowed, 200, 0},
		{"same token again: cached", allowed, 200, 0},
		{"first denied: both reviews", denied, 403, 2},
		{"denied again: cached", denied, 403, 0},
		{"garbage: a TokenReview only", "garbage", 401, 1},
		{"garbage again: cached", "garbage", 401, 0},
		{"no token: nothing to review", "", 401, 0},
		{"a second token of the allowed account is another key", sw.token(t, saAllowed, nil), 200, 2},
	}
	for _, st := range steps {
		before := sw.reviews.total()
		auth := ""
		if st.auth != "" {
			auth = "Bearer " + st.auth
		}
		resp, b := sw.do(t, "GET", path, auth, nil)
		if resp.StatusCode != st.status {
			t.Fatalf("%s: status %d, want %d: %s", st.desc, resp.StatusCode, st.status, b)
		}
		if got := sw.reviews.total() - before; got != st.reviews {
			t.Errorf("%s: %d reviews sent, want %d", st.desc, got, st.reviews)
		}
	}
	_, metrics := sw.do(t, "GET", "/metrics", "", nil)
	for _, line := range []string{
		`des_reader_auth_decisions_total{cached="false",outcome="allowed"} 2`,
		`des_reader_auth_decisions_total{cached="true",outcome="allowed"} 2`,
		`des_reader_auth_decisions_total{cached="false",outcome="forbidden"} 1`,
		`des_reader_auth_decisions_total{cached="true",outcome="forbidden"} 1`,
		`des_reader_auth_decisions_total{cached="false",outcome="unauthenticated"} 1`,
		`des_reader_auth_decisions_total{cached="true",outcome="unauthenticated"} 1`,
		`des_reader_auth_decisions_total{cached="false",outcome="no_token"} 1`,
	} {
		if !bytes.Contains(metrics, []byte(line+"\n")) {
			t.Errorf("metrics lack %q", line)
		}
	}

	// Concurrent first requests with one token share one pair of reviews (later ones find the cache).
	fresh, before := "Bearer "+sw.token(t, saAllowed, nil), sw.reviews.total()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", sw.url+path, http.NoBody)
			req.Header.Set("Authorization", fresh)
			resp, err := sw.client.Do(req)
			if err != nil {
				t.Errorf("concurrent request: %v", err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("concurrent request: status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if got := sw.reviews.total() - before; got != 2 {
		t.Errorf("8 concurrent first requests sent %d reviews, want 2", got)
	}
}

// TestReadServiceAPIFailure: when the API server refuses the reader's reviews (its account lacks the
// auth-delegator binding), clients get 503, not 401 or 403, and the failure is not cached.
func TestReadServiceAPIFailure(t *testing.T) {
	sw := newServiceWorld(t, reader.AuthConfig{}, false)
	token := "Bearer " + sw.token(t, saAllowed, nil)
	for i := range 2 {
		before := sw.reviews.total()
		resp, b := sw.do(t, "GET", "/v1/files/"+sw.f.desA[2], token, nil)
		mustStatus(t, resp, b, 503)
		if !bytes.Contains(b, []byte("authentication unavailable")) || resp.Header.Get("WWW-Authenticate") != "" {
			t.Errorf("attempt %d: body %q, WWW-Authenticate %q", i, b, resp.Header.Get("WWW-Authenticate"))
		}
		if got := sw.reviews.total() - before; got != 1 {
			t.Errorf("attempt %d: %d reviews sent, want 1 (failures are not cached)", i, got)
		}
	}
}

func TestAuthConfigValidation(t *testing.T) {
	k := testworld.K8s(t)
	base := reader.Config{Store: newStore(t), Bucket: "bkt", Prefixes: []string{testPrefix}}
	tests := []struct {
		desc string
		auth reader.AuthConfig
		ok   bool
	}{
		{"disabled", reader.AuthConfig{}, true},
		{"enabled", reader.AuthConfig{Reviews: k.Client, Namespace: "scans"}, true},
		{"no namespace", reader.AuthConfig{Reviews: k.Client}, false},
		{"negative TTL", reader.AuthConfig{Reviews: k.Client, Namespace: "scans", CacheTTL: -time.Second}, false},
	}
	for _, tc := range tests {
		cfg := base
		cfg.Auth = tc.auth
		srv, err := reader.New(cfg)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.desc, err, tc.ok)
		}
		if srv != nil {
			srv.Close()
		}
	}
}

// TestReadServiceTLSReload serves a generated certificate, replaces the files (as cert-manager or a
// Secret update does) and checks that new connections get the new certificate without a restart.
func TestReadServiceTLSReload(t *testing.T) {
	f := newFixture(t, newStore(t))
	srv, err := reader.New(reader.Config{Store: newStore(t), Bucket: f.bucket, Prefixes: []string{testPrefix}, ShardBits: testShardBits, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	certs := newTestCerts(t)
	reloader, err := reader.NewCertReloader(certs.certFile, certs.keyFile, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	url, hc := serveTLS(t, srv, reloader, certs.pool)
	served := func() (*big.Int, []byte) {
		t.Helper()
		resp, err := hc.Get(url + "/v1/files/" + f.desA[0])
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.TLS == nil {
			t.Fatalf("status %d, TLS %v", resp.StatusCode, resp.TLS != nil)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber, b
	}
	serial, body := served()
	if serial.Cmp(certs.serial) != 0 || !bytes.Equal(body, f.files[f.desA[0]].data) {
		t.Fatalf("serial %v (want %v), %d bytes", serial, certs.serial, len(body))
	}
	// The certificate advertises h2 (ALPN): a client that takes it up must be served HTTP/2.
	h2 := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{RootCAs: certs.pool, MinVersion: tls.VersionTLS12}}}
	if resp, err := h2.Get(url + "/v1/files/" + f.desA[0]); err != nil {
		t.Fatalf("HTTP/2: %v", err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 || !bytes.Equal(b, f.files[f.desA[0]].data) {
			t.Fatalf("HTTP/2: status %d, proto %s, %d bytes", resp.StatusCode, resp.Proto, len(b))
		}
	}
	// An open HTTP/2 connection is active to net/http: closing it lets the shutdown at the end finish
	// at once rather than after HTTP/2's GOAWAY timeout.
	h2.CloseIdleConnections()
	// Plain HTTP to the TLS port gets no file.
	if resp, err := http.Get(strings.Replace(url, "https://", "http://", 1) + "/v1/files/" + f.desA[0]); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("plain HTTP served %d bytes", len(b))
		}
	}

	// A broken pair (the key replaced by garbage) keeps the old certificate in service.
	if err := os.WriteFile(certs.keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	bumpMtime(t, certs.keyFile, time.Now().Add(time.Minute))
	time.Sleep(1100 * time.Millisecond) // past the reloader's check interval
	if got, _ := served(); got.Cmp(certs.serial) != 0 {
		t.Fatalf("serial %v after a broken update, want the previous %v", got, certs.serial)
	}

	next := certs.rotate(t)
	bumpMtime(t, certs.certFile, time.Now().Add(2*time.Minute))
	bumpMtime(t, certs.keyFile, time.Now().Add(2*time.Minute))
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := served()
		if got.Cmp(next) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving serial %v, want the rotated %v", got, next)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bumpMtime sets a file's modification time explicitly: the test must not depend on the clock
// granularity of the file system.
func bumpMtime(t testing.TB, path string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

// testCerts is a CA and its serving certificate for loopback, as files.
type testCerts struct {
	ca                *testworld.CA
	pool              *x509.CertPool
	certFile, keyFile string
	serial            *big.Int
}

func newTestCerts(t testing.TB) *testCerts {
	t.Helper()
	c := &testCerts{ca: testworld.NewCA(t)}
	c.pool = c.ca.Pool
	c.certFile, c.keyFile, c.serial = c.ca.ServingFiles(t)
	return c
}

// rotate writes a new serving certificate and key and returns its serial number.
func (c *testCerts) rotate(t testing.TB) *big.Int {
	t.Helper()
	return c.ca.WriteServing(t, c.certFile, c.keyFile)
}

// readerManifests renders config/reader with the kubectl of the test world (its built-in kustomize).
func readerManifests(t testing.TB) []*unstructured.Unstructured {
	t.Helper()
	root, err := testworld.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testworld.Kubectl(t), "kustomize", filepath.Join(root, "config", "reader"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize config/reader: %v\n%s", err, stderr.Bytes())
	}
	var objs []*unstructured.Unstructured
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("config/reader: %v", err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs
}

func manifest(t testing.TB, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() == kind && u.GetName() == name {
			return u.DeepCopy()
		}
	}
	t.Fatalf("config/reader has no %s %s", kind, name)
	return nil
}

// apply applies u server-side (creating or updating it), with the options given (e.g. dry run).
func apply(t testing.TB, c client.Client, u *unstructured.Unstructured, opts ...client.ApplyOption) {
	t.Helper()
	opts = append([]client.ApplyOption{client.FieldOwner("des-test"), client.ForceOwnership}, opts...)
	if err := c.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(u), opts...); err != nil {
		t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

// TestReaderManifests checks that config/reader renders, that the API server accepts every object
// (server-side dry-run apply in a namespace of its own), and that the Deployment's pod passes Pod
// Security "restricted" (a namespace enforcing it admits the pod, dry run).
func TestReaderManifests(t *testing.T) {
	ctx := context.Background()
	k := testworld.K8s(t)
	ns := k.NewNamespace(t)
	nsObj := &corev1.Namespace{}
	if err := k.Client.Get(ctx, client.ObjectKey{Name: ns}, nsObj); err != nil {
		t.Fatal(err)
	}
	nsObj.Labels = map[string]string{"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}
	if err := k.Client.Update(ctx, nsObj); err != nil {
		t.Fatal(err)
	}
	objs := readerManifests(t)
	kinds := map[string]int{}
	for _, u := range objs {
		kinds[u.GetKind()]++
		if u.GetNamespace() != "" {
			u.SetNamespace(ns)
		}
		apply(t, k.Client, u, client.DryRunAll)
	}
	for kind, n := range map[string]int{"Deployment": 1, "Service": 1, "PodDisruptionBudget": 1, "ServiceAccount": 1,
		"Role": 1, "RoleBinding": 1, "ClusterRole": 1, "ClusterRoleBinding": 1} {
		if kinds[kind] != n {
			t.Errorf("%d %s objects, want %d (all: %v)", kinds[kind], kind, n, kinds)
		}
	}

	dep := manifest(t, objs, "Deployment", "des-reader")
	if r, _, _ := unstructured.NestedInt64(dep.Object, "spec", "replicas"); r != 2 {
		t.Errorf("replicas %d, want 2", r)
	}
	raw, _, _ := unstructured.NestedMap(dep.Object, "spec", "template")
	tmpl := &corev1.PodTemplateSpec{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, tmpl); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
	pod.Name, pod.Namespace = "reader-pod-security", ns
	if err := k.Client.Create(ctx, pod, client.DryRunAll); err != nil {
		t.Fatalf("the Deployment's pod is refused in a namespace enforcing Pod Security restricted: %v", err)
	}
	c := pod.Spec.Containers[0]
	if sc := pod.Spec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("security context %+v / %+v: want uid 65532 and a read-only root", pod.Spec.SecurityContext, c.SecurityContext)
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port.StrVal != "probes" {
		t.Errorf("probes %+v %+v", c.LivenessProbe.HTTPGet, c.ReadinessProbe.HTTPGet)
	}
	// The pod's flags are the reader's: the command refuses what it does not know, so check the ones
	// the manifest depends on are spelled as the command spells them.
	for _, arg := range []string{"--auth=kubernetes", "--tls-cert-file=/var/run/des/tls/tls.crt", "--probe-address=:8091"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("args %v lack %s", c.Args, arg)
		}
	}
	pdb := manifest(t, objs, "PodDisruptionBudget", "des-reader")
	if v, _, _ := unstructured.NestedFieldNoCopy(pdb.Object, "spec", "minAvailable"); v != int64(1) {
		t.Errorf("PDB minAvailable %v, want 1", v)
	}
}
