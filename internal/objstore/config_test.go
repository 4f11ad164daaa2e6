package objstore_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/test/testworld"
)

// tlsProxy serves HTTPS with a certificate from a private CA and forwards to versitygw, so a Store can be
// tested against a store behind a private CA. It returns the endpoint and the CA's PEM.
func tlsProxy(t *testing.T) (string, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "des-test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(testworld.S3Store(t).Endpoint)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the "no CA" case makes the server log a handshake error
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestConfigCABundle(t *testing.T) {
	endpoint, caPEM := tlsProxy(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	bucket := testworld.S3Store(t).NewBucket(t)
	base := worldConfig(t)
	base.Endpoint = endpoint
	base.MaxAttempts = 1

	tests := []struct {
		name    string
		edit    func(*objstore.Config)
		wantErr string // "" for success
	}{
		{"CA file", func(c *objstore.Config) { c.CAFile = caFile }, ""},
		{"CA bytes", func(c *objstore.Config) { c.CAPEM = caPEM }, ""},
		{"no CA", func(*objstore.Config) {}, "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			s, err := objstore.New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Put(context.Background(), bucket, "tls", []byte("over TLS"), objstore.PutOptions{})
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
}

func TestConfigInvalid(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  objstore.Config
	}{
		{"endpoint without scheme", objstore.Config{Endpoint: "minio:9000"}},
		{"endpoint with other scheme", objstore.Config{Endpoint: "ftp://x"}},
		{"half static credentials", objstore.Config{AccessKeyID: "AKIA"}},
		{"static and secret dir", objstore.Config{AccessKeyID: "a", SecretAccessKey: "b", CredentialsDir: dir}},
		{"secret dir without files", objstore.Config{CredentialsDir: dir}},
		{"missing CA file", objstore.Config{CAFile: filepath.Join(dir, "nope.pem")}},
		{"CA file without certificate", objstore.Config{CAFile: notPEM}},
		{"CA bytes without certificate", objstore.Config{CAPEM: []byte("junk")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := objstore.New(context.Background(), tc.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestConfigSecretDir(t *testing.T) {
	w := testworld.S3Store(t)
	bucket := w.NewBucket(t)
	write := func(dir, name, v string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("valid, with trailing newlines", func(t *testing.T) {
		dir := t.TempDir()
		write(dir, objstore.SecretAccessKeyIDFile, w.AccessKey+"\n")
		write(dir, objstore.SecretSecretAccessKeyFile, w.SecretKey+"\n")
		s, err := objstore.New(context.Background(), objstore.Config{
			Endpoint: w.Endpoint, Region: w.Region, PathStyle: true, CredentialsDir: dir,
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(context.Background(), bucket, "k", []byte("x"), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong secret is refused by the server", func(t *testing.T) {
		dir := t.TempDir()
		write(dir, objstore.SecretAccessKeyIDFile, w.AccessKey)
		write(dir, objstore.SecretSecretAccessKeyFile, "wrong")
		s, err := objstore.New(context.Background(), objstore.Config{
			Endpoint: w.Endpoint, Region: w.Region, PathStyle: true, CredentialsDir: dir, MaxAttempts: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Head(context.Background(), bucket, "k"); err == nil {
			t.Fatal("accepted a wrong secret")
		}
	})
	t.Run("empty secret file", func(t *testing.T) {
		dir := t.TempDir()
		write(dir, objstore.SecretAccessKeyIDFile, w.AccessKey)
		write(dir, objstore.SecretSecretAccessKeyFile, "\n")
		_, err := objstore.New(context.Background(), objstore.Config{CredentialsDir: dir})
		if err == nil || strings.Contains(err.Error(), w.AccessKey) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestConfigNeverRevealsSecrets(t *testing.T) {
	const access, secret, token, password = "AKIASECRETID", "s3cr3t-value", "session-token-value", "hunter2"
	cfg := objstore.Config{
		Endpoint: "https://user:" + password + "@hcp.example.com", Region: "eu-west-1", PathStyle: true,
		AccessKeyID: access, SecretAccessKey: secret, SessionToken: token, CAPEM: []byte("pem"),
	}
	var logged bytes.Buffer
	zap.New(zap.WriteTo(&logged)).Info("config", "cfg", cfg)
	outputs := map[string]string{
		"String": cfg.String(), "%v": fmt.Sprintf("%v", cfg), "%+v": fmt.Sprintf("%+v", cfg), //nolint:gocritic,staticcheck // each verb is what is tested
		"%#v": fmt.Sprintf("%#v", cfg), "%s": fmt.Sprintf("%s", cfg), "pointer": fmt.Sprintf("%v", &cfg), //nolint:gocritic,staticcheck // each verb is what is tested
		"logr": logged.String(),
	}
	for name, out := range outputs {
		for _, s := range []string{access, secret, token, password} {
			if strings.Contains(out, s) {
				t.Errorf("%s reveals %q: %s", name, s, out)
			}
		}
		if !strings.Contains(out, "hcp.example.com") || !strings.Contains(out, "credentials=static") {
			t.Errorf("%s lacks the useful parts: %s", name, out)
		}
	}
	_, err := objstore.New(context.Background(), objstore.Config{Endpoint: "ftp://u:" + password + "@x"})
	if err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("validation error reveals the password: %v", err)
	}
	if errors.Is(err, objstore.ErrNotFound) {
		t.Error("odd error kind")
	}
}
