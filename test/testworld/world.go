package testworld

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Part selects the servers a test package needs.
type Part int

const (
	Postgres Part = 1 << iota
	S3
	Kube
	// RealNode is a real node (containerd, kubelet, kube-scheduler, kube-controller-manager) with the
	// manager and pause images loaded; it implies Kube, and runs the test binary in the sandbox.
	RealNode
)

var shared struct {
	pg   *PostgresServer
	s3   *S3Server
	kube *KubeServer
	cm   *ControllerManager
	node *NodeServer
}

// Main starts the requested parts once for a test package, runs its tests and stops everything,
// even when a test fails. Use it from TestMain. Kube uses client-go's scheme and config/crd/bases;
// packages that need their own scheme call MainWith.
func Main(m *testing.M, parts Part) {
	MainWith(m, parts, KubeOptions{})
}

// MainWith is Main with options for the Kubernetes part.
func MainWith(m *testing.M, parts Part, kubeOpts KubeOptions) {
	code, err := run(m, parts, kubeOpts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testworld:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M, parts Part, kubeOpts KubeOptions) (int, error) {
	ctx := context.Background()
	if parts&RealNode != 0 {
		// Outside the sandbox this runs the test binary again inside it and exits with its code.
		if err := EnterSandbox(); err != nil {
			return 1, err
		}
		parts |= Kube
		kubeOpts.Sandbox = true
	}
	defer stopAll()
	if parts&Postgres != 0 {
		s, err := StartPostgres(ctx)
		if err != nil {
			return 1, err
		}
		shared.pg = s
		fmt.Printf("testworld: PostgreSQL on 127.0.0.1:%d: %s\n", s.Port, s.Version)
	}
	if parts&S3 != 0 {
		s, err := StartS3(ctx)
		if err != nil {
			return 1, err
		}
		shared.s3 = s
		fmt.Printf("testworld: versitygw S3 at %s: %s\n", s.Endpoint, s.Version)
	}
	if parts&Kube != 0 {
		s, err := StartKube(ctx, kubeOpts)
		if err != nil {
			return 1, err
		}
		shared.kube = s
		fmt.Printf("testworld: kube-apiserver at %s: %s\n", s.Config.Host, s.Version)
	}
	if parts&RealNode != 0 {
		if err := startNodePart(ctx); err != nil {
			return 1, err
		}
	}
	return m.Run(), nil
}

func startNodePart(ctx context.Context) error {
	images, err := NodeImages()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "kcm-")
	if err != nil {
		return err
	}
	if shared.cm, err = shared.kube.RunControllerManager(ctx, filepath.Join(dir, "kubeconfig")); err != nil {
		return err
	}
	if shared.node, err = StartNode(ctx, shared.kube, images); err != nil {
		return err
	}
	fmt.Printf("testworld: node %s (%s) Ready, images %v\n", shared.node.Name, shared.node.IP, images)
	return nil
}

func stopAll() {
	if shared.node != nil {
		shared.node.Close()
	}
	if shared.cm != nil {
		shared.cm.Close()
	}
	if shared.kube != nil {
		shared.kube.Close()
	}
	if shared.s3 != nil {
		shared.s3.Close()
	}
	if shared.pg != nil {
		shared.pg.Close()
	}
}

// PG returns the package's PostgreSQL server; the package's TestMain must have asked for it.
func PG(t testing.TB) *PostgresServer {
	t.Helper()
	if shared.pg == nil {
		t.Fatal("testworld: PostgreSQL not started: call testworld.Main(m, testworld.Postgres) from TestMain")
	}
	return shared.pg
}

// S3Store returns the package's S3 server; the package's TestMain must have asked for it.
func S3Store(t testing.TB) *S3Server {
	t.Helper()
	if shared.s3 == nil {
		t.Fatal("testworld: S3 not started: call testworld.Main(m, testworld.S3) from TestMain")
	}
	return shared.s3
}

// Node returns the package's node; the package's TestMain must have asked for it.
func Node(t testing.TB) *NodeServer {
	t.Helper()
	if shared.node == nil {
		t.Fatal("testworld: node not started: call testworld.Main(m, testworld.RealNode) from TestMain")
	}
	return shared.node
}

// K8s returns the package's API server; the package's TestMain must have asked for it.
func K8s(t testing.TB) *KubeServer {
	t.Helper()
	if shared.kube == nil {
		t.Fatal("testworld: kube-apiserver not started: call testworld.Main(m, testworld.Kube) from TestMain")
	}
	return shared.kube
}
