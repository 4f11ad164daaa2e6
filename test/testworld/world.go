package testworld

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Part selects the servers a test package needs.
type Part int

// The parts: a private PostgreSQL, a versitygw S3 server, envtest's kube-apiserver and etcd, a
// private redis-server, a private MariaDB server.
const (
	Postgres Part = 1 << iota
	S3
	Kube
	// RealNode is a real node (containerd, kubelet, kube-scheduler, kube-controller-manager) with the
	// manager and pause images loaded; it implies Kube, and runs the test binary in the sandbox.
	RealNode
	// Redis is a private redis-server.
	Redis
	// MariaDB is a private MariaDB server.
	MariaDB
)

var shared struct {
	mu       sync.Mutex
	parts    Part // what the package's TestMain allows
	kubeOpts KubeOptions
	pg       *PostgresServer
	s3       *S3Server
	kube     *KubeServer
	cm       *ControllerManager
	node     *NodeServer
	redis    *RedisServer
	maria    *MariaDBServer
}

// Main declares the parts a test package may use, runs its tests and stops everything that was
// started, even when a test fails. Use it from TestMain. A server starts when the first test asks
// for it (PG, S3Store, K8s), so tests of pure logic run without any, and `go test -run` of one test
// starts only what that test needs. Kube uses client-go's scheme and config/crd/bases; packages
// that need their own scheme call MainWith. RealNode is started before the tests: it needs the
// sandbox, which only the whole test binary can enter.
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
	shared.parts, shared.kubeOpts = parts, kubeOpts
	defer stopAll()
	if parts&RealNode != 0 {
		if _, err := kubeServer(ctx); err != nil {
			return 1, err
		}
		if err := startNodePart(ctx); err != nil {
			return 1, err
		}
	}
	return m.Run(), nil
}

// postgres, mariadb, s3Server, redisServer and kubeServer start their server on first use, once per test binary.
func postgres(ctx context.Context) (*PostgresServer, error) {
	return startOnce(ctx, &shared.pg, StartPostgres, func(s *PostgresServer) string {
		return fmt.Sprintf("PostgreSQL on 127.0.0.1:%d: %s", s.Port, s.Version)
	})
}

func s3Server(ctx context.Context) (*S3Server, error) {
	return startOnce(ctx, &shared.s3, StartS3, func(s *S3Server) string {
		return fmt.Sprintf("versitygw S3 at %s: %s", s.Endpoint, s.Version)
	})
}

func mariadb(ctx context.Context) (*MariaDBServer, error) {
	return startOnce(ctx, &shared.maria, StartMariaDB, func(s *MariaDBServer) string {
		return fmt.Sprintf("MariaDB on 127.0.0.1:%d: %s", s.Port, s.Version)
	})
}

func redisServer(ctx context.Context) (*RedisServer, error) {
	return startOnce(ctx, &shared.redis, StartRedis, func(s *RedisServer) string {
		return fmt.Sprintf("redis-server on %s: %s", s.Addr, s.Version)
	})
}

func kubeServer(ctx context.Context) (*KubeServer, error) {
	start := func(ctx context.Context) (*KubeServer, error) { return StartKube(ctx, shared.kubeOpts) }
	return startOnce(ctx, &shared.kube, start, func(s *KubeServer) string {
		return fmt.Sprintf("kube-apiserver at %s: %s", s.Config.Host, s.Version)
	})
}

// startOnce starts the server in *slot unless it runs already, and says what it started.
func startOnce[S any](ctx context.Context, slot **S, start func(context.Context) (*S, error), describe func(*S) string) (*S, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if *slot == nil {
		s, err := start(ctx)
		if err != nil {
			return nil, err
		}
		*slot = s
		fmt.Printf("testworld: %s\n", describe(s))
	}
	return *slot, nil
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
	shared.mu.Lock()
	defer shared.mu.Unlock()
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
	if shared.redis != nil {
		shared.redis.Close()
	}
	if shared.maria != nil {
		shared.maria.Close()
	}
}

// need fails the test unless the package's TestMain allowed the part, then starts it if needed.
func need[S any](t testing.TB, part Part, name string, start func(context.Context) (S, error)) S {
	t.Helper()
	if shared.parts&part == 0 {
		t.Fatalf("testworld: %s not allowed: name it in testworld.Main(m, ...) from TestMain", name)
	}
	s, err := start(context.Background())
	if err != nil {
		t.Fatalf("testworld: start %s: %v", name, err)
	}
	return s
}

// PG returns the package's PostgreSQL server, started on first use.
func PG(t testing.TB) *PostgresServer {
	t.Helper()
	return need(t, Postgres, "PostgreSQL", postgres)
}

// Maria returns the package's MariaDB server, started on first use. Tests isolate themselves with
// NewDatabase.
func Maria(t testing.TB) *MariaDBServer {
	t.Helper()
	return need(t, MariaDB, "MariaDB", mariadb)
}

// RedisStore returns the package's redis-server, started on first use. Tests isolate themselves with
// NewPrefix.
func RedisStore(t testing.TB) *RedisServer {
	t.Helper()
	return need(t, Redis, "Redis", redisServer)
}

// S3Store returns the package's S3 server, started on first use.
func S3Store(t testing.TB) *S3Server {
	t.Helper()
	return need(t, S3, "S3", s3Server)
}

// Node returns the package's node; the package's TestMain must have asked for it.
func Node(t testing.TB) *NodeServer {
	t.Helper()
	if shared.node == nil {
		t.Fatal("testworld: node not started: call testworld.Main(m, testworld.RealNode) from TestMain")
	}
	return shared.node
}

// K8s returns the package's API server, started on first use.
func K8s(t testing.TB) *KubeServer {
	t.Helper()
	return need(t, Kube, "kube-apiserver", kubeServer)
}
