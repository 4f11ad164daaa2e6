package reader

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// certCheckInterval is how often the certificate files are looked at (two stats): a rotated
// certificate is served within it.
const certCheckInterval = time.Second

// CertReloader serves a TLS certificate from a pair of PEM files and picks up new contents when the
// files change (cert-manager renewing, a Secret volume updated by the kubelet), without a restart.
// A pair that does not load (the files changed one at a time, or are broken) keeps the previous
// certificate and is retried at the next check.
type CertReloader struct {
	certFile, keyFile string
	log               logr.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   fileStamp // of the pair cert was loaded from
	checked time.Time
	now     func() time.Time
}

// fileStamp identifies the versions of the two files; a Secret volume swaps a symlink, which
// os.Stat follows, so a new version has a new mtime.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// NewCertReloader loads the pair once: a missing or broken certificate fails start-up.
func NewCertReloader(certFile, keyFile string, log logr.Logger) (*CertReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs both a certificate and a key file")
	}
	r := &CertReloader{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
	stamp, err := r.stat()
	if err != nil {
		return nil, err
	}
	if err := r.load(stamp); err != nil {
		return nil, err
	}
	return r, nil
}

// TLSConfig is a server configuration (TLS 1.2 or later) serving the current certificate.
func (r *CertReloader) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate, NextProtos: []string{"h2", "http/1.1"}}
}

// GetCertificate returns the current certificate, reloading it first when the files changed.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= certCheckInterval {
		r.checked = now
		if stamp, err := r.stat(); err != nil {
			r.log.Error(err, "TLS certificate files unreadable; serving the previous certificate")
		} else if stamp != r.stamp {
			if err := r.load(stamp); err != nil {
				r.log.Error(err, "TLS certificate changed but does not load; serving the previous certificate")
			}
		}
	}
	return r.cert, nil
}

func (r *CertReloader) stat() (fileStamp, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("TLS certificate: %w", err)
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("TLS key: %w", err)
	}
	return fileStamp{certMod: c.ModTime(), keyMod: k.ModTime(), certSize: c.Size(), keySize: k.Size()}, nil
}

// load reads the pair; the caller holds mu (or is the constructor).
func (r *CertReloader) load(stamp fileStamp) error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.stamp = &cert, stamp
	if cert.Leaf != nil {
		r.log.Info("TLS certificate loaded", "subject", cert.Leaf.Subject.String(), "notAfter", cert.Leaf.NotAfter)
	}
	return nil
}
