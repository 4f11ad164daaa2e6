// Package devstack is DEVELOPMENT AND TEST TOOLING: the whole DES system on one machine, the way a
// cluster runs it. It starts the real servers (PostgreSQL, a versitygw S3 server, kube-apiserver +
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

	"github.com/datavision/des/test/testworld"
)

// Options configure a stack.
type Options struct {
	// Dir receives the kubeconfig, the overlays and the servers' logs.
	Dir string
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

// Stack is a running local DES system.
type Stack struct {
	Opts       Options
	PG         *testworld.PostgresServer
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
}

// Scheme has the Kubernetes and DES types.
func Scheme() *runtime.Scheme { return testworld.Scheme() }

// Start brings the stack up inside the sandbox (the caller runs testworld.EnterSandbox first) and
// installs DES; Close takes it down. On error everything started so far is stopped.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
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
		{"PostgreSQL", func() (err error) { s.PG, err = testworld.StartPostgres(ctx); return }},
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
	if s.PG != nil {
		s.PG.Close()
	}
}

// ErrTimeout is returned by waits that gave up.
var ErrTimeout = errors.New("timed out")
