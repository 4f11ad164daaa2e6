package reader

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

// The access a client of the read service must be granted, checked with a SubjectAccessReview in the
// reader's namespace: verb "get" on the "files" subresource of dessources (des.datavision.io), named
// after the DesSource the reader serves when it is configured with one. config/reader's ClusterRole
// des-reader-client grants exactly this. A subresource (rather than "get dessources") keeps reading
// archived files apart from reading the DesSource object itself, as pods/log is apart from pods.
const (
	AuthVerb        = "get"
	AuthResource    = "dessources"
	AuthSubresource = "files"
)

// AuthGroup is the API group of AuthResource.
var AuthGroup = desv1.GroupVersion.Group

// Defaults of AuthConfig.
const (
	DefaultAuthCacheTTL  = 10 * time.Second
	DefaultAuthCacheSize = 4096
	// authReviewTimeout bounds the two reviews of one token; they run detached from the requests
	// waiting for them.
	authReviewTimeout = 10 * time.Second
)

// ReviewCreator creates TokenReviews and SubjectAccessReviews: a controller-runtime client with the
// reader's own credentials (which need "create" on both).
type ReviewCreator interface {
	Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error
}

// AuthConfig turns on authentication (Kubernetes TokenReview of a bearer token) and authorisation
// (SubjectAccessReview) of every route but the probes and /metrics.
type AuthConfig struct {
	// Reviews is the API client; nil leaves the API unauthenticated (the sidecar on loopback).
	Reviews ReviewCreator
	// Audiences, when set, are sent with every TokenReview and a token must be meant for one of them
	// (a projected ServiceAccount token with that audience). Empty: the API server's own audiences.
	Audiences []string
	// Namespace is the namespace clients are authorised in (the reader's). Required with Reviews.
	Namespace string
	// Source is the DesSource served, sent as the review's resource name so that a Role can list it in
	// resourceNames; empty checks access to every DesSource of Namespace.
	Source string
	// CacheTTL is how long a decision about a token is reused (DefaultAuthCacheTTL when 0): a revoked
	// RoleBinding or token takes effect within it.
	CacheTTL time.Duration
	// CacheSize bounds the decisions cached (DefaultAuthCacheSize when 0); the least recently used go.
	CacheSize int
}

// Enabled reports whether requests are authenticated.
func (c AuthConfig) Enabled() bool { return c.Reviews != nil }

func (c AuthConfig) validate() error {
	if !c.Enabled() {
		return nil
	}
	if c.Namespace == "" {
		return errors.New("authentication needs the namespace clients are authorised in")
	}
	if c.CacheTTL < 0 || c.CacheSize < 0 {
		return errors.New("negative authentication cache TTL or size")
	}
	return nil
}

// Sentinels of refused requests, for errors.Is.
var (
	ErrNoToken         = errors.New("no bearer token: send \"Authorization: Bearer <token>\"")
	ErrMalformedAuth   = errors.New("malformed Authorization header: want \"Bearer <token>\"")
	ErrUnauthenticated = errors.New("token not authenticated")
	ErrForbidden       = errors.New("forbidden")
	ErrAuthUnavailable = errors.New("authentication unavailable: the API server could not review the token (see the reader's log)")
)

// Auth outcomes, the label of des_reader_auth_decisions_total.
const (
	outcomeAllowed         = "allowed"
	outcomeNoToken         = "no_token"
	outcomeMalformed       = "malformed"
	outcomeUnauthenticated = "unauthenticated"
	outcomeForbidden       = "forbidden"
	outcomeUnavailable     = "unavailable"
)

// decision is the cached answer for one token: err nil means allowed.
type decision struct {
	user string
	err  error
}

// authenticator guards a handler; a nil *authenticator guards nothing.
type authenticator struct {
	cfg       AuthConfig
	log       logr.Logger
	base      context.Context // reviews run on it, detached from requests (see flightGroup)
	cache     *decisionCache
	flights   flightGroup[decision]
	decisions *prometheus.CounterVec
	now       func() time.Time
}

func newAuthenticator(base context.Context, cfg AuthConfig, log logr.Logger, reg prometheus.Registerer) (*authenticator, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	setDefault(&cfg.CacheTTL, DefaultAuthCacheTTL)
	setDefault(&cfg.CacheSize, DefaultAuthCacheSize)
	a := &authenticator{
		cfg: cfg, log: log.WithName("auth"), base: base, now: time.Now,
		cache: newDecisionCache(cfg.CacheSize),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "auth_decisions_total",
			Help: "Authentication and authorisation decisions by outcome; cached=true when no review was sent.",
		}, []string{"outcome", "cached"}),
	}
	if err := reg.Register(a.decisions); err != nil {
		return nil, fmt.Errorf("register auth metrics: %w", err)
	}
	return a, nil
}

// unauthenticatedPaths are served without a token: the kubelet and Prometheus have none. Everything
// else needs one, so that a route added later is protected by default.
var unauthenticatedPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// wrap returns next guarded by the authenticator.
func (a *authenticator) wrap(next http.Handler) http.Handler {
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && unauthenticatedPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		if a.authorize(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// authorize answers the request with 401, 403 or 503 unless its token may read files.
func (a *authenticator) authorize(w http.ResponseWriter, r *http.Request) bool {
	token, err := bearerToken(r.Header)
	if err != nil {
		a.count(outcomeOf(err), false)
		writeAuthError(w, err)
		return false
	}
	d, cached, err := a.decide(r.Context(), token)
	if err != nil {
		if r.Context().Err() != nil {
			return false // the client left; nobody reads an answer
		}
		a.count(outcomeUnavailable, false)
		writeAuthError(w, err)
		return false
	}
	a.count(outcomeOf(d.err), cached)
	if d.err != nil {
		if !cached {
			a.log.V(1).Info("request refused", "user", d.user, "reason", d.err.Error(), "path", r.URL.EscapedPath())
		}
		writeAuthError(w, d.err)
		return false
	}
	return true
}

func (a *authenticator) count(outcome string, cached bool) {
	a.decisions.WithLabelValues(outcome, strconv.FormatBool(cached)).Inc()
}

func outcomeOf(err error) string {
	switch {
	case err == nil:
		return outcomeAllowed
	case errors.Is(err, ErrNoToken):
		return outcomeNoToken
	case errors.Is(err, ErrMalformedAuth):
		return outcomeMalformed
	case errors.Is(err, ErrUnauthenticated):
		return outcomeUnauthenticated
	case errors.Is(err, ErrForbidden):
		return outcomeForbidden
	}
	return outcomeUnavailable
}

// bearerToken extracts the token of the one Authorization header. Errors never quote the header: it
// holds a credential even when malformed.
func bearerToken(h http.Header) (string, error) {
	vals := h.Values("Authorization")
	switch {
	case len(vals) == 0:
		return "", ErrNoToken
	case len(vals) > 1:
		return "", fmt.Errorf("%w: more than one Authorization header", ErrMalformedAuth)
	}
	// net/http drops trailing spaces, so "Bearer " arrives as "Bearer": an empty token, not another scheme.
	scheme, token, _ := strings.Cut(vals[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: not a Bearer credential", ErrMalformedAuth)
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", fmt.Errorf("%w: empty token", ErrMalformedAuth)
	}
	if !isB64Token(token) {
		return "", fmt.Errorf("%w: the token has characters outside RFC 6750's b64token", ErrMalformedAuth)
	}
	return token, nil
}

// isB64Token checks RFC 6750's b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		if !isB64TokenChar(body[i]) {
			return false
		}
	}
	return true
}

func isB64TokenChar(c byte) bool { return b64TokenChars[c] }

// b64TokenChars is a table: every request's token (a JWT of about a kilobyte) is checked byte by byte.
var b64TokenChars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", byte(c)) >= 0
	}
	return t
}()

// decide returns the decision for token, from the cache or from the API server. Concurrent requests
// with one new token send one pair of reviews.
func (a *authenticator) decide(ctx context.Context, token string) (decision, bool, error) {
	key := sha256.Sum256([]byte(token)) // the cache never holds the token itself
	now := a.now()
	if d, ok := a.cache.get(key, now); ok {
		return d, true, nil
	}
	d, _, err := a.flights.do(ctx, a.base, string(key[:]), func(base context.Context) (decision, error) {
		// A flight for this token may have ended (and filled the cache) between our lookup and this one.
		if d, ok := a.cache.get(key, a.now()); ok {
			return d, nil
		}
		rctx, cancel := context.WithTimeout(base, authReviewTimeout)
		defer cancel()
		d, err := a.review(rctx, token)
		if err != nil {
			a.log.Error(err, "token review failed")
			return decision{}, ErrAuthUnavailable
		}
		a.cache.put(key, d, a.now().Add(a.cfg.CacheTTL))
		return d, nil
	})
	return d, false, err
}

// review authenticates token with a TokenReview and authorises its user with a SubjectAccessReview.
// An error is the API server's failure, never the client's.
func (a *authenticator) review(ctx context.Context, token string) (decision, error) {
	tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: a.cfg.Audiences}}
	if err := a.cfg.Reviews.Create(ctx, tr); err != nil {
		return decision{}, fmt.Errorf("create TokenReview: %w", err)
	}
	st := tr.Status
	if !st.Authenticated {
		reason := st.Error
		if reason == "" {
			reason = "the API server did not authenticate it"
		}
		return decision{err: fmt.Errorf("%w: %s", ErrUnauthenticated, reason)}, nil
	}
	user := st.User.Username
	if len(a.cfg.Audiences) > 0 && !slices.ContainsFunc(st.Audiences, func(au string) bool { return slices.Contains(a.cfg.Audiences, au) }) {
		// The API server checks audiences itself; this catches an authenticator that ignored them.
		return decision{user: user, err: fmt.Errorf("%w: token of %s is not meant for audience %s",
			ErrUnauthenticated, user, strings.Join(a.cfg.Audiences, " or "))}, nil
	}
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: user, UID: st.User.UID, Groups: st.User.Groups, Extra: extraOf(st.User.Extra),
		ResourceAttributes: a.attributes(),
	}}
	if err := a.cfg.Reviews.Create(ctx, sar); err != nil {
		return decision{}, fmt.Errorf("create SubjectAccessReview for %s: %w", user, err)
	}
	if !sar.Status.Allowed || sar.Status.Denied {
		return decision{user: user, err: a.forbidden(user, sar.Status.Reason)}, nil
	}
	return decision{user: user}, nil
}

// attributes are what a client must be allowed (see AuthVerb).
func (a *authenticator) attributes() *authzv1.ResourceAttributes {
	return &authzv1.ResourceAttributes{
		Namespace: a.cfg.Namespace, Verb: AuthVerb, Group: AuthGroup,
		Resource: AuthResource, Subresource: AuthSubresource, Name: a.cfg.Source,
	}
}

// forbidden says who was refused what, in RBAC's terms, so that the fix (a RoleBinding) is obvious.
func (a *authenticator) forbidden(user, reason string) error {
	what := AuthResource + "/" + AuthSubresource
	if a.cfg.Source != "" {
		what += fmt.Sprintf(" %q", a.cfg.Source)
	}
	msg := fmt.Sprintf("%s may not %s %s (API group %s) in namespace %s", user, AuthVerb, what, AuthGroup, a.cfg.Namespace)
	if reason != "" {
		msg += ": " + reason
	}
	return fmt.Errorf("%w: %s", ErrForbidden, msg)
}

func extraOf(in map[string]authnv1.ExtraValue) map[string]authzv1.ExtraValue {
	if in == nil {
		return nil
	}
	out := make(map[string]authzv1.ExtraValue, len(in))
	for k, v := range in {
		out[k] = authzv1.ExtraValue(v)
	}
	return out
}

// writeAuthError answers a refused request: 401 (with the Bearer challenge of RFC 6750) when the
// client is not authenticated, 403 when it is but may not read, 503 when the API server failed.
func writeAuthError(w http.ResponseWriter, err error) {
	status := http.StatusServiceUnavailable
	switch {
	case errors.Is(err, ErrNoToken):
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="des-reader"`)
	case errors.Is(err, ErrMalformedAuth):
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="des-reader", error="invalid_request"`)
	case errors.Is(err, ErrUnauthenticated):
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="des-reader", error="invalid_token"`)
	case errors.Is(err, ErrForbidden):
		status = http.StatusForbidden
	default:
		w.Header().Set("Retry-After", "1")
	}
	b, _ := json.Marshal(errorBody{Error: err.Error(), Status: status})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decisionCache is a bounded LRU of decisions keyed by the SHA-256 of a token, each with an expiry.
type decisionCache = expiringLRU[[sha256.Size]byte, decision]

func newDecisionCache(size int) *decisionCache {
	return newExpiringLRU[[sha256.Size]byte, decision](size)
}
