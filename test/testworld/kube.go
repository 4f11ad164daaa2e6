package testworld

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// KubeServer is a real kube-apiserver + etcd started by envtest, with the project's CRDs installed.
type KubeServer struct {
	Config  *rest.Config
	Client  client.Client
	Scheme  *runtime.Scheme
	Version string
	// CA is the PEM certificate of the authority that signed the API server's serving certificate
	// (what kube-root-ca.crt publishes to pods).
	CA []byte

	env *envtest.Environment
}

// KubeOptions selects the scheme for the client and the CRDs to install.
type KubeOptions struct {
	// Scheme defaults to Scheme(): client-go's built-in types and DES's.
	Scheme *runtime.Scheme
	// CRDDirs defaults to config/crd/bases when it exists.
	CRDDirs []string
	// Sandbox serves the API server as a cluster does for a real node (StartNode): on the kubernetes
	// Service address (SandboxServiceIP:443, so in-cluster clients need no override), with the
	// ServiceAccount admission plugin on so pods get tokens. Only inside the sandbox.
	Sandbox bool
}

// StartKube starts envtest with binaries from bin/k8s/<version> (built by `make test-assets`).
func StartKube(_ context.Context, opts KubeOptions) (_ *KubeServer, err error) {
	assets, err := KubeAssetsDir()
	if err != nil {
		return nil, err
	}
	if opts.Scheme == nil {
		opts.Scheme = Scheme()
	}
	if opts.CRDDirs == nil {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		if d := filepath.Join(root, "config", "crd", "bases"); dirExists(d) {
			opts.CRDDirs = []string{d}
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        opts.CRDDirs,
		ErrorIfCRDPathMissing:    true,
		Scheme:                   opts.Scheme,
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	if opts.Sandbox {
		if !InSandbox() {
			return nil, fmt.Errorf("%w: KubeOptions.Sandbox outside the sandbox", ErrSandbox)
		}
		api := env.ControlPlane.GetAPIServer()
		api.Address, api.Port = SandboxServiceIP, "443"
		api.Configure().
			// envtest turns the ServiceAccount admission plugin off because it runs no
			// controller-manager; the sandbox runs one, and pods need their tokens.
			Disable("disable-admission-plugins").
			Set("service-cluster-ip-range", SandboxServiceCIDR).
			// The API server reaches the kubelet (logs, exec) at the node's address, not its name.
			Set("kubelet-preferred-address-types", "InternalIP")
	}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("start envtest (kube-apiserver + etcd from %s): %w", assets, err)
	}
	s := &KubeServer{Config: cfg, Scheme: opts.Scheme, env: env, CA: env.ControlPlane.APIServer.CA}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Client, err = client.New(cfg, client.Options{Scheme: opts.Scheme}); err != nil {
		return nil, fmt.Errorf("client for envtest: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver version: %w", err)
	}
	s.Version = v.GitVersion
	return s, nil
}

// Close stops the API server and etcd.
func (s *KubeServer) Close() {
	if s.env != nil {
		_ = s.env.Stop()
	}
}

// NewNamespace creates a namespace (with a default ServiceAccount, which envtest lacks unless a
// controller-manager runs) for one test and deletes it afterwards.
func (s *KubeServer) NewNamespace(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "des-test-"}}
	if err := s.Client.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns.Name}}
	if err := s.Client.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create default service account: %v", err)
	}
	t.Cleanup(func() { _ = s.Client.Delete(context.Background(), ns) })
	return ns.Name
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// Kubeconfig writes a kubeconfig for a cluster-admin user of the test API server and returns its
// path, for tools such as kubectl and for processes the test starts.
func (s *KubeServer) Kubeconfig(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := s.WriteKubeconfig(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// WriteKubeconfig writes a kubeconfig for a cluster-admin user of the API server to path.
func (s *KubeServer) WriteKubeconfig(path string) error {
	user, err := s.env.AddUser(envtest.User{Name: "des-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add envtest user: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	return os.WriteFile(path, data, 0o600)
}

// Kubectl is the kubectl built by `make test-assets` beside kube-apiserver.
func Kubectl(t testing.TB) string {
	t.Helper()
	dir, err := KubeAssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	p, err := checkExecutable(filepath.Join(dir, "kubectl"), "KUBEBUILDER_ASSETS", "test-assets")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
