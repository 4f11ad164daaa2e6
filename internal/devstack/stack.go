// Package devstack is DEVELOPMENT AND TEST TOOLING: the whole DES system on one machine. It starts the
// real servers (PostgreSQL, a versitygw S3 server, kube-apiserver + etcd, kube-controller-manager), the
// DES manager as a local process, and the local pod runner that stands in for the kubelet. `make demo`
// and the end-to-end tests use it.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/localkubelet"
	"github.com/datavision/des/internal/testworld"
)

// Options configure a stack.
type Options struct {
	// Dir receives the kubeconfig, logs and pod folders.
	Dir string
	// Manager is the DES binary (built from ./cmd/manager).
	Manager string
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

// Stack is a running local DES system.
type Stack struct {
	Opts       Options
	PG         *testworld.PostgresServer
	S3         *testworld.S3Server
	Kube       *testworld.KubeServer
	Client     client.Client
	Kubeconfig string
	Runner     *localkubelet.Runner

	cm             *testworld.ControllerManager
	controller     *exec.Cmd
	controllerDone chan struct{}
	stopRunner     context.CancelFunc
	runnerDone     chan struct{}
}

// Scheme has the Kubernetes and DES types.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = desv1.AddToScheme(s)
	return s
}

// Start brings the stack up; Close takes it down. On error everything started so far is stopped.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
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
	step := func(what string, f func() error) error {
		start := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		opts.Logf("  %-34s %5.1fs", what, time.Since(start).Seconds())
		return nil
	}
	if err := step("PostgreSQL", func() (err error) { s.PG, err = testworld.StartPostgres(ctx); return }); err != nil {
		return nil, err
	}
	if err := step("S3 server (versitygw)", func() (err error) { s.S3, err = testworld.StartS3(ctx); return }); err != nil {
		return nil, err
	}
	if err := step("kube-apiserver + etcd, DES CRDs", func() (err error) {
		s.Kube, err = testworld.StartKube(ctx, testworld.KubeOptions{Scheme: Scheme()})
		return
	}); err != nil {
		return nil, err
	}
	s.Client = s.Kube.Client
	if err := step("kube-controller-manager (Jobs)", func() (err error) {
		s.cm, err = s.Kube.RunControllerManager(ctx, s.Kubeconfig)
		return
	}); err != nil {
		return nil, err
	}
	if err := step("local pod runner (stands in for the kubelet)", s.startRunner); err != nil {
		return nil, err
	}
	if err := step("DES controller (manager controller)", s.StartController); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Stack) startRunner() error {
	logFile, err := os.OpenFile(filepath.Join(s.Opts.Dir, "runner.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(logFile)))
	mgr, err := ctrl.NewManager(s.Kube.Config, ctrl.Options{Scheme: Scheme(), Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}})
	if err != nil {
		return err
	}
	s.Runner = &localkubelet.Runner{Client: mgr.GetClient(), Binary: s.Opts.Manager, Kubeconfig: s.Kubeconfig,
		WorkDir: filepath.Join(s.Opts.Dir, "pods")}
	if err := s.Runner.SetupWithManager(mgr); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopRunner, s.runnerDone = cancel, make(chan struct{})
	go func() { defer close(s.runnerDone); _ = mgr.Start(ctx) }()
	return nil
}

// StartController starts `manager controller` as a local process, logging to Dir/controller.log.
func (s *Stack) StartController() error {
	logFile, err := os.OpenFile(filepath.Join(s.Opts.Dir, "controller.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.Opts.Manager, "controller", "--leader-elect=false", "--metrics-bind-address=0",
		"--health-probe-bind-address=0", "--packer-image=local/des:dev", "--zap-devel=false")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.Kubeconfig)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s controller: %w", s.Opts.Manager, err)
	}
	done := make(chan struct{})
	s.controller, s.controllerDone = cmd, done
	go func() { _ = cmd.Wait(); logFile.Close(); close(done) }()
	return nil
}

// KillController SIGKILLs the controller process, as a node failure would.
func (s *Stack) KillController() {
	if s.controller != nil {
		_ = syscall.Kill(-s.controller.Process.Pid, syscall.SIGKILL)
		<-s.controllerDone
		s.controller = nil
	}
}

// Close stops everything, the DES processes first.
func (s *Stack) Close() {
	s.KillController()
	if s.Runner != nil {
		s.Runner.StopAll()
	}
	if s.stopRunner != nil {
		s.stopRunner()
		<-s.runnerDone
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
