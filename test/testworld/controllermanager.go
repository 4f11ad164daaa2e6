package testworld

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ControllerManager is a kube-controller-manager running the controllers DES relies on against the
// test API server: Jobs and CronJobs create Pods, Deployments ReplicaSets, owner references cascade,
// finished Jobs expire, and every namespace gets its default ServiceAccount and the kube-root-ca.crt
// ConfigMap that pods' projected token volumes need.
type ControllerManager struct{ proc *process }

// StartControllerManager starts kube-controller-manager (built by `make test-assets`) for the
// package's API server; it stops when the test ends.
func (s *KubeServer) StartControllerManager(t testing.TB) *ControllerManager {
	t.Helper()
	cm, err := s.RunControllerManager(context.Background(), filepath.Join(t.TempDir(), "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cm.Close)
	return cm
}

// Close stops kube-controller-manager.
func (cm *ControllerManager) Close() { cm.proc.stop(interruptSignal, 10*time.Second) }

// kcmControllers are the kube-controller-manager controllers the test world runs.
var kcmControllers = []string{"job", "cronjob", "deployment", "replicaset", "garbagecollector", "ttl-after-finished",
	"serviceaccount", "root-ca-cert-publisher", "podgc", "nodelifecycle"}

// RunControllerManager starts kube-controller-manager with a kubeconfig written to kubeconfigPath;
// the caller stops it with Close.
func (s *KubeServer) RunControllerManager(ctx context.Context, kubeconfigPath string) (*ControllerManager, error) {
	dir, err := KubeAssetsDir()
	if err != nil {
		return nil, err
	}
	bin, err := checkExecutable(filepath.Join(dir, "kube-controller-manager"), "KUBEBUILDER_ASSETS", "test-assets")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := s.WriteKubeconfig(kubeconfigPath); err != nil {
		return nil, err
	}
	kubeconfig := kubeconfigPath
	rootCA := kubeconfigPath + ".ca.crt"
	if err := os.WriteFile(rootCA, s.CA, 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--kubeconfig="+kubeconfig, "--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig, "--controllers="+strings.Join(kcmControllers, ","),
		"--root-ca-file="+rootCA,
		"--leader-elect=false", "--use-service-account-credentials=false",
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", port))
	p, err := startProcess("kube-controller-manager", cmd)
	if err != nil {
		return nil, err
	}
	cm := &ControllerManager{proc: p}
	if err := p.waitReady(ctx, 60*time.Second, httpsAnswers(port)); err != nil {
		cm.Close()
		return nil, err
	}
	return cm, nil
}
