package testworld

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// ControllerManager is a kube-controller-manager running the Job and garbage-collector controllers
// against the test API server, so Jobs create Pods and owner references cascade as on a cluster.
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
	cmd := exec.Command(bin, "--kubeconfig="+kubeconfig, "--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig, "--controllers=job,garbagecollector",
		"--leader-elect=false", "--use-service-account-credentials=false",
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", port))
	p, err := startProcess("kube-controller-manager", cmd)
	if err != nil {
		return nil, err
	}
	cm := &ControllerManager{proc: p}
	// /healthz needs TLS on the secure port; any TLS answer means it is serving.
	insecure := &http.Client{Transport: insecureTransport(), Timeout: time.Second}
	err = p.waitReady(ctx, 60*time.Second, func(ctx context.Context) error {
		resp, err := insecure.Get(fmt.Sprintf("https://127.0.0.1:%d/healthz", port))
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	if err != nil {
		cm.Close()
		return nil, err
	}
	return cm, nil
}
