package objstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultRegion         = "us-east-1"
	DefaultRequestTimeout = 30 * time.Second
	DefaultMaxAttempts    = 5
	DefaultMaxBackoff     = 5 * time.Second
	// DefaultMaxConnsPerHost keeps enough idle connections for parallel range fetches and uploads.
	DefaultMaxConnsPerHost = 64
)

// File names read from a mounted Kubernetes Secret (CredentialsDir).
const (
	SecretAccessKeyIDFile     = "AWS_ACCESS_KEY_ID"
	SecretSecretAccessKeyFile = "AWS_SECRET_ACCESS_KEY"
	SecretSessionTokenFile    = "AWS_SESSION_TOKEN" // optional
)

// Config describes how to reach an S3-compatible store. Credentials come from exactly one source:
// static keys, a mounted Secret directory, or (when neither is set) the SDK's default chain
// (AWS_* environment variables, shared config, web identity / IRSA, container and instance roles).
type Config struct {
	// Endpoint is the store's base URL, e.g. "https://tenant.hcp.example.com" or "http://minio:9000".
	// Empty means AWS S3's own endpoint for Region.
	Endpoint string
	// Region signs requests (DefaultRegion when empty and none is found in the environment).
	Region string
	// PathStyle addresses buckets as ENDPOINT/BUCKET/KEY instead of BUCKET.ENDPOINT/KEY; self-hosted
	// stores (MinIO, versitygw, most HCP setups) need it.
	PathStyle bool

	// Static credentials. SessionToken is optional.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string

	// CredentialsDir is a mounted Secret holding the files AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
	// optionally AWS_SESSION_TOKEN. The files are re-read every minute, so a rotated Secret is picked up
	// without a restart.
	CredentialsDir string

	// CAFile and CAPEM add PEM certificates to the system roots, for stores behind a private CA (as does
	// the AWS_CA_BUNDLE environment variable).
	CAFile string
	CAPEM  []byte

	// RequestTimeout bounds connecting, waiting for response headers, and any stall while reading a body,
	// per attempt. It does not bound a long transfer that keeps making progress: use the context for that.
	RequestTimeout time.Duration
	// MaxAttempts is the number of tries per request, including the first (DefaultMaxAttempts when 0).
	MaxAttempts int
	// MaxBackoff caps the exponential, jittered delay between attempts (DefaultMaxBackoff when 0).
	MaxBackoff time.Duration
}

func (c Config) withDefaults() Config {
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	return c
}

func (c Config) validate() error {
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("objstore: endpoint %q is not an http(s) URL", redactURL(c.Endpoint))
		}
	}
	static := c.AccessKeyID != "" || c.SecretAccessKey != "" || c.SessionToken != ""
	if static && (c.AccessKeyID == "" || c.SecretAccessKey == "") {
		return errors.New("objstore: static credentials need both an access key ID and a secret access key")
	}
	if static && c.CredentialsDir != "" {
		return errors.New("objstore: set either static credentials or CredentialsDir, not both")
	}
	return nil
}

// credentialSource names where credentials come from, for logs.
func (c Config) credentialSource() string {
	switch {
	case c.AccessKeyID != "":
		return "static"
	case c.CredentialsDir != "":
		return "secret-dir:" + c.CredentialsDir
	default:
		return "default-chain"
	}
}

// String describes the configuration without any secret: credentials are named by source only.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "objstore.Config{endpoint=%q region=%q pathStyle=%t credentials=%s",
		redactURL(c.Endpoint), c.Region, c.PathStyle, c.credentialSource())
	if c.CAFile != "" {
		fmt.Fprintf(&b, " caFile=%q", c.CAFile)
	}
	if len(c.CAPEM) > 0 {
		fmt.Fprintf(&b, " caPEM=%dB", len(c.CAPEM))
	}
	fmt.Fprintf(&b, " timeout=%s maxAttempts=%d maxBackoff=%s}", c.RequestTimeout, c.MaxAttempts, c.MaxBackoff)
	return b.String()
}

// GoString keeps %#v from printing the raw fields.
func (c Config) GoString() string { return c.String() }

// MarshalLog keeps logr (whatever its sink) from printing the raw fields.
func (c Config) MarshalLog() any { return c.String() }

// redactURL drops user info (a password could hide there) from an endpoint for display.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = url.User("REDACTED")
	return u.String()
}

// New builds a Store from cfg. It does not contact the store: a wrong endpoint or credential shows up on
// the first request.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	httpClient, err := cfg.httpClient()
	if err != nil {
		return nil, err
	}
	stats := &storeStats{}
	awsCfg, err := cfg.loadAWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	counting := &countingClient{next: httpClient, stats: stats}
	client := s3.NewFromConfig(awsCfg, cfg.s3Options, func(o *s3.Options) { o.HTTPClient = counting })
	return &Store{api: client, cfg: cfg, stats: stats, fast: newFastGetter(cfg, awsCfg, counting)}, nil
}

// loadAWSConfig resolves region and credentials. Its HTTP client (used by credential providers such as
// STS or IMDS) stays the SDK's own: the SDK can only apply AWS_CA_BUNDLE to its own client type, and the
// S3 client gets ours in s3Options.
func (c Config) loadAWSConfig(ctx context.Context) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(c.retryer),
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	creds, err := c.credentialsProvider()
	if err != nil {
		return aws.Config{}, err
	}
	if creds != nil {
		opts = append(opts, config.WithCredentialsProvider(creds))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("objstore: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = DefaultRegion
	}
	return awsCfg, nil
}

// s3Options adapts the client to third-party stores.
func (c Config) s3Options(o *s3.Options) {
	if c.Endpoint != "" {
		o.BaseEndpoint = aws.String(c.Endpoint)
	}
	o.UsePathStyle = c.PathStyle
	// Since 2025 the SDK adds CRC32 trailing checksums (aws-chunked bodies) to every upload and asks for
	// checksums on downloads. HCP, older MinIO and other S3-compatible stores reject or mangle those, so
	// only send/validate checksums where the API requires them.
	o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
}

// retryer retries throttling, 5xx and network errors with capped exponential jitter. The client-side
// retry quota is disabled: with many parallel range reads, a short outage would otherwise exhaust it and
// turn every later retryable error into an immediate failure.
func (c Config) retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = c.MaxAttempts
		o.MaxBackoff = c.MaxBackoff
		o.RateLimiter = ratelimit.None
	})
}

func (c Config) httpClient() (*awshttp.BuildableClient, error) {
	roots, err := c.rootCAs()
	if err != nil {
		return nil, err
	}
	timeout := c.RequestTimeout
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = timeout }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.ResponseHeaderTimeout = timeout
			tr.MaxIdleConnsPerHost = DefaultMaxConnsPerHost
			if roots != nil {
				if tr.TLSClientConfig == nil {
					tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
				}
				tr.TLSClientConfig.RootCAs = roots
			}
		}).
		WithReadTimeout(timeout), nil
}

// rootCAs returns the system roots plus the configured CA bundles, or nil to use the system roots.
// AWS_CA_BUNDLE is honoured as the SDK's own clients do, but added to the system roots, not replacing them.
func (c Config) rootCAs() (*x509.CertPool, error) {
	envBundle := os.Getenv("AWS_CA_BUNDLE")
	if c.CAFile == "" && len(c.CAPEM) == 0 && envBundle == "" {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, file := range []string{envBundle, c.CAFile} {
		if file == "" {
			continue
		}
		pem, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("objstore: read CA bundle: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("objstore: CA bundle %s holds no PEM certificate", file)
		}
	}
	if len(c.CAPEM) > 0 && !pool.AppendCertsFromPEM(c.CAPEM) {
		return nil, errors.New("objstore: CAPEM holds no PEM certificate")
	}
	return pool, nil
}

// credentialsProvider returns nil to let the SDK's default chain decide.
func (c Config) credentialsProvider() (aws.CredentialsProvider, error) {
	switch {
	case c.AccessKeyID != "":
		return credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken), nil
	case c.CredentialsDir != "":
		p := secretDirProvider{dir: c.CredentialsDir}
		// Fail at startup, not on the first request, when the Secret is missing or incomplete.
		if _, err := p.Retrieve(context.Background()); err != nil {
			return nil, err
		}
		return aws.NewCredentialsCache(p), nil
	default:
		return nil, nil
	}
}

// secretDirProvider reads credentials from a mounted Secret. Its credentials expire after a minute so
// the cache re-reads the files and follows rotation.
type secretDirProvider struct{ dir string }

const secretRefresh = time.Minute

func (p secretDirProvider) Retrieve(context.Context) (aws.Credentials, error) {
	id, err := p.read(SecretAccessKeyIDFile, true)
	if err != nil {
		return aws.Credentials{}, err
	}
	secret, err := p.read(SecretSecretAccessKeyFile, true)
	if err != nil {
		return aws.Credentials{}, err
	}
	token, err := p.read(SecretSessionTokenFile, false)
	if err != nil {
		return aws.Credentials{}, err
	}
	return aws.Credentials{
		AccessKeyID: id, SecretAccessKey: secret, SessionToken: token,
		Source:    "objstore.SecretDir",
		CanExpire: true, Expires: time.Now().Add(secretRefresh),
	}, nil
}

// read returns a file's content without surrounding whitespace (Secrets created from shell often end with
// a newline). Errors name the file, never its content.
func (p secretDirProvider) read(name string, required bool) (string, error) {
	b, err := os.ReadFile(filepath.Join(p.dir, name))
	if errors.Is(err, os.ErrNotExist) && !required {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("objstore: credentials from %s: %w", p.dir, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" && required {
		return "", fmt.Errorf("objstore: credentials from %s: %s is empty", p.dir, name)
	}
	return v, nil
}
