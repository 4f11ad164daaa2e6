// Package devstack is DEVELOPMENT AND TEST TOOLING: the whole DES system on one machine, the way a
// cluster runs it. It starts the real servers (PostgreSQL or MariaDB, a versitygw S3 server, kube-apiserver +
// etcd, kube-controller-manager) and a real node (containerd, kubelet, kube-scheduler) inside the test
// world's sandbox, then installs DES as a user does: `kubectl apply -k` of an overlay of
// config/default that only points it at this machine (image tag, pull policy, host network). The
// controller then runs as its Deployment under its own ServiceAccount and RBAC, and its packer Jobs
// run in containers on the node. `make demo` and the end-to-end tests use it.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/test/testworld"
)

// Options configure a stack.
type Options struct {
	// Dir receives the kubeconfig, the overlays and the servers' logs.
	Dir string
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
	// Catalog is the catalog database the stack runs: PostgreSQL (the default) or MariaDB.
	Catalog catalog.Driver
}

// CatalogServer is the catalog database server of a stack.
type CatalogServer interface {
	// CreateDatabase makes an empty database and returns its DSN in the driver's format.
	CreateDatabase(ctx context.Context) (string, error)
	// Restart stops the server, cutting every connection, and starts it again after down.
	Restart(ctx context.Context, down time.Duration) error
	Close()
}

// Stack is a running local DES system.
type Stack struct {
	Opts Options
	// Catalog is the catalog database server (PostgreSQL or MariaDB, Opts.Catalog).
	Catalog    CatalogServer
	S3         *testworld.S3Server
	Kube       *testworld.KubeServer
	Node       *testworld.NodeServer
	Client     client.Client
	Kubeconfig string
	// SamplesEndpoint, when set before ApplySamples, is the S3 endpoint the sample DesSource and
	// DesShard name instead of the S3 server's (the e2e puts a LossyProxy there).
	SamplesEndpoint string
	// deleting is set by ApplySamples when the samples delete packed sources (WaitPacked waits for it).
	deleting bool

	cm *testworld.ControllerManager
	// closers run at Close before the servers stop (the seeds' pools).
	closers []func()
}

// Scheme has the Kubernetes and DES types.
func Scheme() *runtime.Scheme { return testworld.Scheme() }

// Start brings the stack up inside the sandbox (the caller runs testworld.EnterSandbox first) and
// installs DES; Close takes it down. On error everything started so far is stopped.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Catalog == "" {
		opts.Catalog = catalog.Postgres
	}
	if !testworld.InSandbox() {
		return nil, fmt.Errorf("%w: devstack runs inside the sandbox: call testworld.EnterSandbox first", testworld.ErrSandbox)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	s := &Stack{Opts: opts, Kubeconfig: filepath.Join(opts.Dir, "kubeconfig")}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	images, err := testworld.NodeImages()
	if err != nil {
		return nil, err
	}
	steps := []struct {
		what string
		run  func() error
	}{
		{catalogServerName[opts.Catalog], func() error { return s.startCatalog(ctx) }},
		{"S3 server (versitygw)", func() (err error) { s.S3, err = testworld.StartS3(ctx); return }},
		{"kube-apiserver + etcd, DES CRDs", func() (err error) {
			s.Kube, err = testworld.StartKube(ctx, testworld.KubeOptions{Scheme: Scheme(), Sandbox: true})
			return
		}},
		{"kube-controller-manager", func() (err error) { s.cm, err = s.Kube.RunControllerManager(ctx, s.Kubeconfig); return }},
		{"node: containerd, kubelet, scheduler", func() (err error) { s.Node, err = testworld.StartNode(ctx, s.Kube, images); return }},
		{"DES installed (kubectl apply -k)", func() error { return s.InstallDES(ctx) }},
	}
	for _, st := range steps {
		start := time.Now()
		if err := st.run(); err != nil {
			return nil, fmt.Errorf("%s: %w", st.what, err)
		}
		opts.Logf("  %-38s %5.1fs", st.what, time.Since(start).Seconds())
		if st.what == "kube-apiserver + etcd, DES CRDs" {
			s.Client = s.Kube.Client
		}
	}
	return s, nil
}

// Close stops everything: the node first (its pods with it), then the servers.
func (s *Stack) Close() {
	for _, c := range s.closers {
		c()
	}
	if s.Node != nil {
		s.Node.Close()
	}
	if s.cm != nil {
		s.cm.Close()
	}
	if s.Kube != nil {
		s.Kube.Close()
	}
	if s.S3 != nil {
		s.S3.Close()
	}
	if s.Catalog != nil {
		s.Catalog.Close()
	}
}

var catalogServerName = map[catalog.Driver]string{catalog.Postgres: "PostgreSQL", catalog.MySQL: "MariaDB"}

// startCatalog starts the catalog database server of Opts.Catalog.
func (s *Stack) startCatalog(ctx context.Context) error {
	switch s.Opts.Catalog {
	case catalog.Postgres:
		pg, err := testworld.StartPostgres(ctx)
		if err == nil {
			s.Catalog = pg
		}
		return err
	case catalog.MySQL:
		maria, err := testworld.StartMariaDB(ctx)
		if err == nil {
			s.Catalog = maria
		}
		return err
	}
	return fmt.Errorf("devstack: no catalog server for driver %q", s.Opts.Catalog)
}

// ErrTimeout is returned by waits that gave up.
var ErrTimeout = errors.New("timed out")
