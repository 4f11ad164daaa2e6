package devstack

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/testworld"
)

// ApplySamples applies config/samples with kubectl, through a kustomize overlay that points them at
// this stack's S3 server and namespace and packs smaller containers, so a small demo makes several.
func (s *Stack) ApplySamples(ctx context.Context, seed *Seed, maxFiles int) error {
	root, err := testworld.RepoRoot()
	if err != nil {
		return err
	}
	overlay := filepath.Join(s.Opts.Dir, "overlay")
	if err := os.MkdirAll(overlay, 0o755); err != nil {
		return err
	}
	samples, err := filepath.Rel(overlay, filepath.Join(root, "config", "samples"))
	if err != nil {
		return err
	}
	kustomization := fmt.Sprintf(`namespace: %[1]s
resources:
- %[2]s
patches:
- target: {kind: DesSource, name: scans}
  patch: |-
    - {op: replace, path: /spec/store/endpoint, value: "%[3]s"}
- target: {kind: DesShard, name: scans-all}
  patch: |-
    - {op: replace, path: /spec/archive/endpoint, value: "%[3]s"}
    - {op: replace, path: /spec/limits/maxFiles, value: %[4]d}
    - {op: replace, path: /spec/bigFileThreshold, value: 524288}
    - {op: replace, path: /spec/shardsPerJob, value: 64}
    - {op: remove, path: /spec/job/resources}
`, seed.Namespace, samples, s.S3.Endpoint, maxFiles)
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		return err
	}
	out, err := s.Kubectl(ctx, "apply", "-k", overlay)
	if err != nil {
		return fmt.Errorf("kubectl apply -k %s: %w\n%s", overlay, err, out)
	}
	s.Opts.Logf("%s", strings.TrimSpace(out))
	return nil
}

// Kubectl runs kubectl against the stack and returns its combined output.
func (s *Stack) Kubectl(ctx context.Context, args ...string) (string, error) {
	dir, err := testworld.KubeAssetsDir()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "kubectl"), append([]string{"--kubeconfig", s.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Progress is the catalog's state while packing.
type Progress struct {
	Rows       catalog.Counts
	Containers map[desv1.ContainerPhase]int
}

func (p Progress) String() string {
	phases := make([]string, 0, len(p.Containers))
	for ph, n := range p.Containers {
		phases = append(phases, fmt.Sprintf("%s=%d", ph, n))
	}
	sort.Strings(phases)
	return fmt.Sprintf("rows ready=%d claimed=%d packed=%d failed=%d | containers %s",
		p.Rows.Ready, p.Rows.Claimed, p.Rows.Packed, p.Rows.Failed, strings.Join(phases, " "))
}

// WaitPacked waits until no row is ready or claimed and every DesContainer is final, reporting
// progress every few seconds.
func (s *Stack) WaitPacked(ctx context.Context, seed *Seed, timeout time.Duration) (Progress, error) {
	pool, err := pgxpool.New(ctx, seed.DSN)
	if err != nil {
		return Progress{}, err
	}
	defer pool.Close()
	cat, err := catalog.New(pool, catalog.DefaultMapping("objects", seed.SourceBucket))
	if err != nil {
		return Progress{}, err
	}
	deadline := time.Now().Add(timeout)
	var last Progress
	lastReport := time.Time{}
	for {
		p, err := s.progress(ctx, cat, seed.Namespace)
		if err == nil {
			last = p
			if p.done() {
				return p, nil
			}
			if time.Since(lastReport) > 5*time.Second {
				s.Opts.Logf("  %s", p)
				lastReport = time.Now()
			}
		}
		if time.Now().After(deadline) {
			return last, fmt.Errorf("%w after %s: %s", ErrTimeout, timeout, last)
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (p Progress) done() bool {
	if p.Rows.Ready+p.Rows.Claimed > 0 || p.Rows.Packed == 0 {
		return false
	}
	for ph, n := range p.Containers {
		if n > 0 && ph != desv1.PhaseCommitted && ph != desv1.PhaseRolledBack && ph != desv1.PhaseFailed {
			return false
		}
	}
	return true
}

func (s *Stack) progress(ctx context.Context, cat *catalog.Catalog, ns string) (Progress, error) {
	rows, err := cat.Count(ctx)
	if err != nil {
		return Progress{}, err
	}
	list := &desv1.DesContainerList{}
	if err := s.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
		return Progress{}, err
	}
	p := Progress{Rows: rows, Containers: map[desv1.ContainerPhase]int{}}
	for i := range list.Items {
		ph := list.Items[i].Status.Phase
		if ph == "" {
			ph = desv1.PhasePending
		}
		p.Containers[ph]++
	}
	return p, nil
}

// Reader is a running reader sidecar (`manager reader`).
type Reader struct {
	URL string
	cmd *exec.Cmd
}

// StartReader starts the reader sidecar for the seed's archive bucket.
func (s *Stack) StartReader(ctx context.Context, seed *Seed, shardBits int) (*Reader, error) {
	credDir := filepath.Join(s.Opts.Dir, "reader-credentials")
	if err := os.MkdirAll(credDir, 0o700); err != nil {
		return nil, err
	}
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": s.S3.AccessKey, "AWS_SECRET_ACCESS_KEY": s.S3.SecretKey} {
		if err := os.WriteFile(filepath.Join(credDir, k), []byte(v), 0o600); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	logFile, err := os.Create(filepath.Join(s.Opts.Dir, "reader.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.Opts.Manager, "reader", "--listen-address="+addr, "--bucket="+seed.ArchiveBucket,
		"--archive-prefix=scans", "--endpoint="+s.S3.Endpoint, "--region="+s.S3.Region, "--path-style",
		"--credentials-dir="+credDir, fmt.Sprintf("--shard-bits=%d", shardBits), "--namespace="+seed.Namespace)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.Kubeconfig)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait(); logFile.Close() }()
	r := &Reader{URL: "http://" + addr, cmd: cmd}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(r.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.Close()
	return nil, fmt.Errorf("reader sidecar not ready at %s (see %s)", r.URL, logFile.Name())
}

// Close stops the sidecar.
func (r *Reader) Close() { _ = r.cmd.Process.Kill() }

// VerifyFiles reads names through the sidecar by name and compares them with the originals.
func (r *Reader) VerifyFiles(seed *Seed, names []string) error {
	for _, name := range names {
		resp, err := http.Get(r.URL + "/v1/files/" + url.PathEscape(name))
		if err != nil {
			return err
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /v1/files/%s: %s: %s", name, resp.Status, data)
		}
		if sha256.Sum256(data) != seed.Files[name] {
			return fmt.Errorf("%s: %d bytes that differ from the original", name, len(data))
		}
	}
	return nil
}
