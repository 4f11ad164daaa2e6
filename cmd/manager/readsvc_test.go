package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
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
	err := f.complete()
	return f, err
}

func TestReadServiceFlags(t *testing.T) {
	for _, env := range []string{"POD_NAMESPACE", "DES_NAMESPACE", "DES_SOURCE", "DES_BUCKET", "DES_ARCHIVE_PREFIXES"} {
		t.Setenv(env, "")
	}
	base := []string{"--bucket=archive", "--archive-prefix=scans"}
	tlsFiles := []string{"--tls-cert-file=/tls/tls.crt", "--tls-key-file=/tls/tls.key"}
	tests := []flagCase{
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
	checkFlagCases(t, base, tests)
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
	if !f.svc.authEnabled() || !f.svc.tlsEnabled() || f.svc.namespace(f.namespace) != "scans" || f.source != "scans" {
		t.Errorf("the Deployment serves without auth or TLS: %+v", f.svc)
	}
}

// TestReaderCommandAsReadService runs `manager reader` as config/reader deploys it (TLS, bearer tokens
// for an audience, one DesSource) against the test world's S3 server and kube-apiserver, with the
// reader's own credentials limited to what config/reader grants it.
func TestReaderCommandAsReadService(t *testing.T) {
	ctx := context.Background()
	k := testworld.K8s(t)
	ns := k.NewNamespace(t)
	for _, env := range []string{"POD_NAMESPACE", "DES_NAMESPACE", "DES_SOURCE", "DES_BUCKET", "DES_ARCHIVE_PREFIXES",
		"DES_S3_ENDPOINT", "AWS_REGION", "DES_S3_PATH_STYLE", "DES_S3_CREDENTIALS_DIR", "DES_S3_CA_FILE"} {
		t.Setenv(env, "")
	}

	// RBAC as config/reader ships it: the reader delegates authentication, the client is bound to
	// des-reader-client, another account is not.
	clientRole := &rbacv1.ClusterRole{}
	readManifest(t, "client_role.yaml", clientRole)
	if err := k.Client.Create(ctx, clientRole); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, sa := range []string{"des-reader", "viewer", "stranger"} {
		if err := k.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	delegator := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "des-reader-auth-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "des-reader", Namespace: ns}},
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "viewer-reads-files", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clientRole.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "viewer", Namespace: ns}},
	}
	for _, o := range []client.Object{delegator, binding} {
		if err := k.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = k.Client.Delete(context.Background(), delegator) })
	token := func(sa string, audiences ...string) string {
		tr := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{Audiences: audiences}}
		if err := k.Client.SubResource("token").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns}}, tr); err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	t.Setenv("KUBECONFIG", tokenKubeconfig(t, k, token("des-reader")))

	// A container with one file in a bucket of its own, and read-only style credentials as files.
	s3 := testworld.S3Store(t)
	bucket := s3.NewBucket(t)
	key, name, payload := "scans/2026/02/24/1/c1.des", "hello.txt", []byte("hello, read service\n")
	putArchive(t, s3, bucket, key, name, payload)
	credDir := t.TempDir()
	for file, v := range map[string]string{"AWS_ACCESS_KEY_ID": s3.AccessKey, "AWS_SECRET_ACCESS_KEY": s3.SecretKey} {
		if err := os.WriteFile(filepath.Join(credDir, file), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ca := testworld.NewCA(t)
	certFile, keyFile, _ := ca.ServingFiles(t)

	logs := &syncBuffer{}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- runReader(rctx, []string{
			"--listen-address=127.0.0.1:0", "--probe-address=127.0.0.1:0",
			"--auth=kubernetes", "--token-audience=des-reader", "--auth-source=scans", "--auth-namespace=" + ns,
			"--tls-cert-file=" + certFile, "--tls-key-file=" + keyFile,
			"--endpoint=" + s3.Endpoint, "--region=" + s3.Region, "--path-style", "--bucket=" + bucket,
			"--archive-prefix=scans", "--credentials-dir=" + credDir, "--shutdown-grace=1s", "--zap-log-level=debug",
		}, io.Discard, logs)
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if code := <-done; code != 0 {
				t.Errorf("reader exited with %d:\n%s", code, logs.String())
			}
		}
	}
	t.Cleanup(stop)
	fileAddr := logs.waitField(t, "reader serving", "address", done)
	probeAddr := logs.waitField(t, "probes serving", "address", done)

	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}}}
	fileURL := "https://" + fileAddr + "/v1/containers/" + key + "/files/" + name
	get := func(u, bearer string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest("GET", u, http.NoBody)
		if err != nil {
			t.Fatal(err)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	viewer := token("viewer", "des-reader")
	tests := []struct {
		desc, url, token string
		status           int
		body             []byte
	}{
		{"bound account, reader audience", fileURL, viewer, 200, payload},
		{"bound account, the API server's audience", fileURL, token("viewer"), 401, nil},
		{"unbound account", fileURL, token("stranger", "des-reader"), 403, []byte(`system:serviceaccount:` + ns + `:stranger may not get dessources/files \"scans\"`)},
		{"no token", fileURL, "", 401, []byte("no bearer token")},
		{"probe port, no token", "http://" + probeAddr + "/readyz", "", 200, []byte("ok\n")},
	}
	for _, tc := range tests {
		status, body := get(tc.url, tc.token)
		if status != tc.status || !bytes.Contains(body, tc.body) {
			t.Errorf("%s: %d %q, want %d with %q", tc.desc, status, body, tc.status, tc.body)
		}
	}
	if resp, err := http.Get("http://" + fileAddr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("the file port answers plain HTTP")
		}
	}
	stop()
	// Debug logging records refusals with user and reason: never the token (its signature is unique).
	if sig := viewer[strings.LastIndexByte(viewer, '.')+1:]; len(sig) < 20 || strings.Contains(logs.String(), sig[:20]) {
		t.Errorf("a token's signature (%d chars) is in the logs, or the token is not a JWT", len(sig))
	}
	if !strings.Contains(logs.String(), "request refused") {
		t.Error("debug logs lack the refusals, so the check above proves nothing")
	}
}

// readManifest decodes one object of config/reader.
func readManifest(t *testing.T, file string, into any) {
	t.Helper()
	root, err := testworld.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "config", "reader", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(raw, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// tokenKubeconfig writes a kubeconfig for the test API server that authenticates with token only.
func tokenKubeconfig(t *testing.T, k *testworld.KubeServer, token string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: k.Config.Host, CertificateAuthorityData: k.Config.CAData}
	cfg.AuthInfos["reader"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["reader"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "reader"}
	cfg.CurrentContext = "reader"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// putArchive writes a DES container holding one file.
func putArchive(t *testing.T, s3 *testworld.S3Server, bucket, key, name string, data []byte) {
	t.Helper()
	var buf bytes.Buffer
	w, err := desformat.NewWriter(&buf, desformat.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(context.Background(), desformat.FileHeader{Name: name, Size: int64(len(data))}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s3.NewStore(t).Put(context.Background(), bucket, key, buf.Bytes(), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer collects the command's JSON log lines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitField waits for the log line with message msg and returns its field, failing if the command
// exits first.
func (b *syncBuffer) waitField(t *testing.T, msg, field string, done <-chan int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for line := range strings.SplitSeq(b.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
				if v, ok := rec[field].(string); ok {
					return v
				}
			}
		}
		select {
		case code := <-done:
			t.Fatalf("reader exited with %d before %q:\n%s", code, msg, b.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no %q log line:\n%s", msg, b.String())
	return ""
}

// flagCase is one reader command line: base flags plus args, and the text its refusal must contain
// ("" when the flags are accepted).
type flagCase struct {
	desc   string
	args   []string
	errHas string
}

// checkFlagCases parses base+args of each case with the real command.
func checkFlagCases(t *testing.T, base []string, tests []flagCase) {
	t.Helper()
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
}
