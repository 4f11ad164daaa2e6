package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/go-logr/logr"

	"github.com/datavision/des/internal/reader"
)

// Values of --auth.
const (
	authNone       = "none"
	authKubernetes = "kubernetes"
)

// readServiceFlags are the flags of `manager reader` deployed as a read service (config/reader):
// bearer-token authentication against the API server and TLS.
type readServiceFlags struct {
	auth             string
	audiences        stringList
	authNamespace    string
	authSource       string
	authCacheTTL     time.Duration
	tlsCertFile      string
	tlsKeyFile       string
	allowPlainTokens bool
}

func (f *readServiceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.auth, "auth", authNone, "authentication of the file API: none (the sidecar on loopback) or kubernetes "+
		"(a bearer token checked with a TokenReview, its user authorised with a SubjectAccessReview: get dessources/files)")
	fs.Var(&f.audiences, "token-audience", "with --auth=kubernetes: audience tokens must be meant for; repeatable (default: the API server's)")
	fs.StringVar(&f.authNamespace, "auth-namespace", "", "with --auth=kubernetes: namespace clients are authorised in (default: --namespace, else $POD_NAMESPACE)")
	fs.StringVar(&f.authSource, "auth-source", os.Getenv("DES_SOURCE"), "with --auth=kubernetes: the DesSource served, checked as the resource name (env DES_SOURCE); empty: --source, else any DesSource of the namespace")
	fs.DurationVar(&f.authCacheTTL, "auth-cache-ttl", reader.DefaultAuthCacheTTL, "how long a token's authentication and authorisation decision is reused")
	fs.StringVar(&f.tlsCertFile, "tls-cert-file", "", "PEM certificate to serve the file API with TLS; reloaded when the file changes")
	fs.StringVar(&f.tlsKeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file")
	fs.BoolVar(&f.allowPlainTokens, "allow-plaintext-tokens", false,
		"with --auth=kubernetes, serve without TLS (only when something else encrypts the traffic, e.g. a service mesh)")
}

func (f *readServiceFlags) authEnabled() bool { return f.auth == authKubernetes }

func (f *readServiceFlags) tlsEnabled() bool { return f.tlsCertFile != "" || f.tlsKeyFile != "" }

// namespace is where clients are authorised.
func (f *readServiceFlags) namespace(desNamespace string) string {
	switch {
	case f.authNamespace != "":
		return f.authNamespace
	case desNamespace != "":
		return desNamespace
	}
	return os.Getenv("POD_NAMESPACE")
}

// check refuses contradictory flags and bearer tokens in clear text.
func (f *readServiceFlags) check(desNamespace string) error {
	switch f.auth {
	case authNone:
		if len(f.audiences) > 0 || f.authNamespace != "" || f.allowPlainTokens {
			return errors.New("--token-audience, --auth-namespace and --allow-plaintext-tokens need --auth=kubernetes")
		}
	case authKubernetes:
		if f.namespace(desNamespace) == "" {
			return errors.New("--auth=kubernetes needs the namespace clients are authorised in: --auth-namespace, --namespace or $POD_NAMESPACE")
		}
		if !f.tlsEnabled() && !f.allowPlainTokens {
			return errors.New("--auth=kubernetes without TLS would receive bearer tokens in clear text: " +
				"give --tls-cert-file and --tls-key-file (a Secret from cert-manager, see docs/reader.md), " +
				"or --allow-plaintext-tokens when a service mesh encrypts the traffic")
		}
	default:
		return fmt.Errorf("--auth=%q: want %s or %s", f.auth, authNone, authKubernetes)
	}
	if (f.tlsCertFile == "") != (f.tlsKeyFile == "") {
		return errors.New("--tls-cert-file and --tls-key-file go together")
	}
	if f.authCacheTTL < 0 {
		return errors.New("--auth-cache-ttl must not be negative")
	}
	return nil
}

// authConfig connects to the API server for the reviews when authentication is on.
// The DesSource checked is --auth-source, else the --source the reader serves from the catalog.
func (f *readServiceFlags) authConfig(desNamespace, source string, log logr.Logger) (reader.AuthConfig, error) {
	if !f.authEnabled() {
		return reader.AuthConfig{}, nil
	}
	c, err := kubeClient()
	if err != nil {
		return reader.AuthConfig{}, fmt.Errorf("--auth=kubernetes needs the API server: %w", err)
	}
	cfg := reader.AuthConfig{
		Reviews: c, Audiences: f.audiences, Namespace: f.namespace(desNamespace), Source: f.authSource,
		CacheTTL: f.authCacheTTL,
	}
	if cfg.Source == "" {
		cfg.Source = source
	}
	log.Info("file API needs Kubernetes bearer tokens", "namespace", cfg.Namespace, "source", cfg.Source,
		"audiences", []string(f.audiences), "tls", f.tlsEnabled())
	return cfg, nil
}

// wrapTLS serves ln with TLS when a certificate is configured (closing ln if it cannot be loaded).
func (f *readServiceFlags) wrapTLS(ln net.Listener, log logr.Logger) (net.Listener, error) {
	if !f.tlsEnabled() {
		return ln, nil
	}
	certs, err := reader.NewCertReloader(f.tlsCertFile, f.tlsKeyFile, log.WithName("tls"))
	if err != nil {
		ln.Close()
		return nil, err
	}
	return tls.NewListener(ln, certs.TLSConfig()), nil
}
