package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/datavision/des/test/testworld"
)

// parseReader parses `manager reader` arguments as runReader does, without starting anything.
func parseReader(t *testing.T, args []string) (*readerFlags, error) {
	t.Helper()
	var stderr bytes.Buffer
	c, f := newReaderCommand(&stderr)
	if _, _, ok := c.Parse(args); !ok {
		t.Fatalf("parse %v: %s", args, stderr.String())
	}
	return f, f.complete()
}

func TestReadServiceFlags(t *testing.T) {
	for _, env := range []string{"POD_NAMESPACE", "DES_NAMESPACE", "DES_SOURCE", "DES_BUCKET", "DES_ARCHIVE_PREFIXES"} {
		t.Setenv(env, "")
	}
	base := []string{"--bucket=archive", "--archive-prefix=scans"}
	tlsFiles := []string{"--tls-cert-file=/tls/tls.crt", "--tls-key-file=/tls/tls.key"}
	tests := []struct {
		desc   string
		args   []string
		errHas string // "" when the flags are accepted
	}{
		{"sidecar default", nil, ""},
		{"remote without auth", []string{"--listen-address=:8443"}, "add --allow-remote"},
		{"remote sidecar", []string{"--listen-address=:8443", "--allow-remote"}, ""},
		{"read service", append([]string{"--listen-address=:8443", "--auth=kubernetes", "--namespace=scans"}, tlsFiles...), ""},
		{"auth namespace from the pod", append([]string{"--auth=kubernetes"}, tlsFiles...), "needs the namespace clients are authorised in"},
		{"explicit auth namespace", append([]string{"--auth=kubernetes", "--auth-namespace=scans", "--token-audience=des-reader"}, tlsFiles...), ""},
		{"tokens in clear text", []string{"--listen-address=:8443", "--auth=kubernetes", "--namespace=scans"}, "bearer tokens in clear text: give --tls-cert-file and --tls-key-file"},
		{"clear text explicitly allowed", []string{"--auth=kubernetes", "--namespace=scans", "--allow-plaintext-tokens"}, ""},
		{"half a TLS pair", []string{"--tls-cert-file=/tls/tls.crt"}, "go together"},
		{"TLS for the sidecar", tlsFiles, ""},
		{"unknown auth", []string{"--auth=basic"}, `--auth="basic": want none or kubernetes`},
		{"audience without auth", []string{"--token-audience=x"}, "need --auth=kubernetes"},
		{"negative cache TTL", append([]string{"--auth=kubernetes", "--namespace=scans", "--auth-cache-ttl=-1s"}, tlsFiles...), "must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := parseReader(t, append(append([]string{}, base...), tc.args...))
			switch {
			case tc.errHas == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)):
				t.Fatalf("error %v, want one with %q", err, tc.errHas)
			}
		})
	}
	t.Run("namespace from the pod", func(t *testing.T) {
		t.Setenv("POD_NAMESPACE", "scans")
		f, err := parseReader(t, append(append([]string{"--auth=kubernetes"}, base...), tlsFiles...))
		if err != nil || f.svc.namespace(f.namespace) != "scans" {
			t.Fatalf("err %v, namespace %q", err, f.svc.namespace(f.namespace))
		}
	})
}

// TestReadServiceManifestArgs: the arguments config/reader's Deployment gives the reader are accepted
// by the command (with $(POD_NAMESPACE) expanded as the kubelet does).
func TestReadServiceManifestArgs(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	root, err := testworld.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "config", "reader", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dep := &appsv1.Deployment{}
	if err := yaml.UnmarshalStrict(raw, dep); err != nil {
		t.Fatal(err)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "reader" {
		t.Fatalf("args %v do not start with the reader subcommand", c.Args)
	}
	var args []string
	for _, a := range c.Args[1:] {
		args = append(args, strings.ReplaceAll(a, "$(POD_NAMESPACE)", "scans"))
	}
	f, err := parseReader(t, args)
	if err != nil {
		t.Fatalf("the Deployment's arguments are refused: %v", err)
	}
	if !f.svc.authEnabled() || !f.svc.tlsEnabled() || f.svc.namespace(f.namespace) != "scans" || f.svc.authSource != "scans" {
		t.Errorf("the Deployment serves without auth or TLS: %+v", f.svc)
	}
}
