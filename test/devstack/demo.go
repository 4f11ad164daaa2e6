package devstack

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	desclient "github.com/datavision/des/pkg/client"
	"github.com/datavision/des/test/testworld"
)

// samplesEndpoint is the S3 endpoint the samples name: SamplesEndpoint when set (a proxy), else the
// S3 server's.
func (s *Stack) samplesEndpoint() string {
	if s.SamplesEndpoint != "" {
		return s.SamplesEndpoint
	}
	return s.S3.Endpoint
}

// SampleOptions are what ApplySamples changes in config/samples.
type SampleOptions struct {
	// ShardBits of the DesSource; the DesShard serves all 2^ShardBits shards.
	ShardBits int
	// MaxFiles, MinFiles and MaxWait are the DesShard's limits (its container size and fill policy).
	MaxFiles, MinFiles int
	MaxWait            time.Duration
	// Interval between the DesShard's runs.
	Interval time.Duration
	// DeleteSource, when set, replaces the DesSource's spec.deleteSource.
	DeleteSource *desv1.DeleteSource
}

// ApplySamples applies config/samples with kubectl, through a kustomize overlay that points them at
// this stack's S3 server and namespace, and sizes shards, containers and the fill policy as o says.
// The DesSource's marker runs every minute and names rows as soon as they exist; the DesShard checks
// its shards every interval and packs those the fill policy finds due.
func (s *Stack) ApplySamples(ctx context.Context, seed *Seed, o SampleOptions) error {
	root, err := testworld.RepoRoot()
	if err != nil {
		return err
	}
	overlay := filepath.Join(s.Opts.Dir, "samples")
	samples, err := relDir(overlay, filepath.Join(root, "config", "samples"))
	if err != nil {
		return err
	}
	deleteSource := ""
	s.deleting = o.DeleteSource != nil && o.DeleteSource.DeletesSources() && !o.DeleteSource.DryRun
	if o.DeleteSource != nil {
		ds, err := json.Marshal(o.DeleteSource)
		if err != nil {
			return err
		}
		deleteSource = fmt.Sprintf("\n    - {op: add, path: /spec/deleteSource, value: %s}", ds)
	}
	kustomization := fmt.Sprintf(`namespace: %[1]s
resources:
- %[2]s
patches:
- target: {kind: DesSource, name: scans}
  patch: |-
    - {op: replace, path: /spec/store/endpoint, value: "%[3]s"}
    - {op: replace, path: /spec/naming/shardBits, value: %[4]d}
    - {op: add, path: /spec/marker, value: {schedule: "* * * * *", minAge: 0s}}
    - {op: add, path: /spec/catalog/driver, value: %[11]s}%[10]s
- target: {kind: DesShard, name: scans-all}
  patch: |-
    - {op: replace, path: /spec/archive/endpoint, value: "%[3]s"}
    - {op: replace, path: /spec/shardRanges, value: [{from: 0, to: %[5]d}]}
    - {op: replace, path: /spec/limits/maxFiles, value: %[6]d}
    - {op: replace, path: /spec/limits/minFiles, value: %[7]d}
    - {op: replace, path: /spec/limits/maxWait, value: %[8]s}
    - {op: replace, path: /spec/interval, value: %[9]s}
    - {op: replace, path: /spec/bigFileThreshold, value: 524288}
    - {op: replace, path: /spec/shardsPerJob, value: 64}
    - {op: remove, path: /spec/job/resources}
`, seed.Namespace, samples, s.samplesEndpoint(), o.ShardBits, 1<<o.ShardBits-1, o.MaxFiles, o.MinFiles, o.MaxWait, o.Interval, deleteSource, seed.Driver)
	if err := writeOverlay(overlay, kustomization); err != nil {
		return err
	}
	out, err := s.Kubectl(ctx, "apply", "-k", overlay)
	if err != nil {
		return fmt.Errorf("kubectl apply -k %s: %w\n%s", overlay, err, out)
	}
	s.Opts.Logf("%s", strings.TrimSpace(out))
	return nil
}

// Progress is the catalog's state while packing.
type Progress struct {
	Rows       catalog.Counts
	Containers map[desv1.ContainerPhase]int
	// Deleting: the samples delete packed sources, so packing is done only once none is waiting.
	Deleting bool
}

func (p Progress) String() string {
	phases := make([]string, 0, len(p.Containers))
	for ph, n := range p.Containers {
		phases = append(phases, fmt.Sprintf("%s=%d", ph, n))
	}
	sort.Strings(phases)
	out := fmt.Sprintf("rows unnamed=%d ready=%d claimed=%d packed=%d failed=%d | containers %s",
		p.Rows.Unnamed, p.Rows.Ready, p.Rows.Claimed, p.Rows.Packed, p.Rows.Failed, strings.Join(phases, " "))
	if p.Deleting {
		out += fmt.Sprintf(" | sources deleted=%d waiting=%d refused=%d", p.Rows.SourcesDeleted, p.Rows.SourcesWaiting, p.Rows.SourcesRefused)
	}
	return out
}

// WaitPacked waits until no row is unnamed, ready or claimed and every DesContainer is final,
// reporting progress every few seconds.
func (s *Stack) WaitPacked(ctx context.Context, seed *Seed, timeout time.Duration) (Progress, error) {
	cat, err := catalog.New(seed.DB().DB, catalog.DefaultMapping("objects", seed.SourceBucket))
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
	if p.Rows.Unnamed+p.Rows.Ready+p.Rows.Claimed > 0 || p.Rows.Packed == 0 {
		return false
	}
	if p.Deleting && p.Rows.SourcesWaiting > 0 {
		return false
	}
	for ph, n := range p.Containers {
		if n > 0 && !ph.IsFinal() {
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
	p := Progress{Rows: rows, Containers: map[desv1.ContainerPhase]int{}, Deleting: s.deleting}
	for i := range list.Items {
		ph := list.Items[i].Status.Phase
		if ph == "" {
			ph = desv1.PhasePending
		}
		p.Containers[ph]++
	}
	return p, nil
}

// Reader is the reader sidecar of config/samples/reader-sidecar-pod.yaml, running beside its
// application container in one pod on the node.
type Reader struct {
	URL string
	Pod string
	// MetricsURL is the sidecar's probe listener's /metrics.
	MetricsURL string
}

// readerOverlay points the sample pod at this stack: the local images, never pulled, the node's
// network (so the sidecar's loopback file API is this machine's 127.0.0.1:8090, as it would be the
// application's), the stack's S3 server and shard bits. The application container is the pause
// image: the tests read through the sidecar themselves.
const readerOverlay = `# Written by test/devstack: the reader sidecar sample on the test world's node.
namespace: %[1]s
resources:
- reader-sidecar-pod.yaml
images:
- name: ghcr.io/datavision/des
  newName: %[2]s
  newTag: %[3]s
- name: curlimages/curl
  newName: %[4]s
  newTag: %[5]s
patches:
- target: {kind: Pod, name: scans-viewer}
  patch: |-
    - {op: add, path: /spec/hostNetwork, value: true}
    - {op: add, path: /spec/initContainers/0/imagePullPolicy, value: Never}
    - {op: add, path: /spec/containers/0/imagePullPolicy, value: Never}
    - {op: replace, path: /spec/containers/0/command, value: [/pause]}
    - {op: remove, path: /spec/containers/0/args}
    - op: replace
      path: /spec/initContainers/0/args
      value: [reader, --listen-address=127.0.0.1:8090, --probe-address=:8091, --endpoint=%[6]s, --region=%[7]s,
        --path-style, --bucket=%[8]s, --archive-prefix=scans, --shard-bits=%[9]d, --credentials-dir=/var/run/des/archive,
        "--namespace=$(POD_NAMESPACE)", --source=scans, --catalog-dsn-file=/var/run/des/catalog/dsn, --cache-size=64Mi]
`

// StartReader applies the reader sidecar sample with kubectl and waits until its pod is Ready (the
// kubelet's startup and readiness probes pass).
func (s *Stack) StartReader(ctx context.Context, seed *Seed, shardBits int) (*Reader, error) {
	root, err := testworld.RepoRoot()
	if err != nil {
		return nil, err
	}
	// kustomize reads resource files only below the overlay: the sample is copied in, unchanged.
	dir := filepath.Join(s.Opts.Dir, "reader")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sample, err := os.ReadFile(filepath.Join(root, "config", "samples", "reader-sidecar-pod.yaml"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "reader-sidecar-pod.yaml"), sample, 0o644); err != nil {
		return nil, err
	}
	mName, mTag, _ := strings.Cut(testworld.ManagerImage, ":")
	pName, pTag, _ := strings.Cut(testworld.PauseImage, ":")
	k := fmt.Sprintf(readerOverlay, seed.Namespace, mName, mTag, pName, pTag, s.S3.Endpoint, s.S3.Region,
		seed.ArchiveBucket, shardBits)
	if err := writeOverlay(dir, k); err != nil {
		return nil, err
	}
	if out, err := s.Kubectl(ctx, "apply", "-k", dir); err != nil {
		return nil, fmt.Errorf("kubectl apply -k %s: %w\n%s", dir, err, out)
	}
	r := &Reader{URL: "http://127.0.0.1:8090", Pod: "scans-viewer", MetricsURL: "http://127.0.0.1:8091/metrics"}
	err = poll(ctx, 2*time.Minute, func() (bool, string, error) {
		pod := &corev1.Pod{}
		if err := s.Client.Get(ctx, client.ObjectKey{Namespace: seed.Namespace, Name: r.Pod}, pod); err != nil {
			return false, "", err
		}
		return podReady(pod), fmt.Sprintf("pod %s is %s", r.Pod, pod.Status.Phase), nil
	})
	if err != nil {
		out, _ := s.Kubectl(ctx, "-n", seed.Namespace, "describe", "pod", r.Pod)
		logs, _ := s.Kubectl(ctx, "-n", seed.Namespace, "logs", r.Pod, "-c", "des-reader", "--tail=40")
		return nil, fmt.Errorf("reader sidecar: %w\n%s\nlogs:\n%s", err, out, logs)
	}
	return r, nil
}

// ColdReads is what reading files by name for the first time cost the sidecar.
type ColdReads struct {
	Files, Requests, MaxRequests int
	// Empty counts empty files: they take no bytes of the container, so reading one costs no request.
	Empty int
	// Off counts reads that cost other than one request (none for an empty file).
	Off     int
	FoundBy map[string]int // by the X-Des-Found-By header
}

func (c ColdReads) String() string {
	return fmt.Sprintf("%d cold reads by name (%d of empty files) cost %d S3 requests (%.2f per non-empty read, at most %d; %d reads cost other than one request, none for an empty file), found by %v",
		c.Files, c.Empty, c.Requests, float64(c.Requests)/float64(max(c.Files-c.Empty, 1)), c.MaxRequests, c.Off, c.FoundBy)
}

// OneRequestEach reports whether every read of a non-empty file cost exactly one S3 request, empty ones
// none, and every file was found through the catalog.
func (c ColdReads) OneRequestEach() bool {
	return c.Off == 0 && c.FoundBy["catalog"] == c.Files
}

// ReadCold reads each name once by name, as an application would, before anything else read it,
// and counts the S3 requests each read cost the sidecar (its des_reader_s3_requests_total). Every
// file is compared with the original.
func (r *Reader) ReadCold(ctx context.Context, seed *Seed, names []string) (ColdReads, error) {
	out := ColdReads{FoundBy: map[string]int{}}
	for _, name := range names {
		before, err := r.s3Requests(ctx)
		if err != nil {
			return out, err
		}
		data, foundBy, err := r.get(ctx, name)
		if err != nil {
			return out, err
		}
		if err := seed.same("read", name, data); err != nil {
			return out, err
		}
		after, err := r.s3Requests(ctx)
		if err != nil {
			return out, err
		}
		n, want := int(after-before), 1
		if len(data) == 0 {
			out.Empty++
			want = 0
		}
		if n != want {
			out.Off++
		}
		out.Files++
		out.Requests += n
		out.MaxRequests = max(out.MaxRequests, n)
		out.FoundBy[foundBy]++
	}
	return out, nil
}

func (r *Reader) get(ctx context.Context, name string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+"/v1/files/"+url.PathEscape(name), http.NoBody)
	if err != nil {
		return nil, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d: %s", resp.StatusCode, data)
	}
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", name, err)
	}
	return data, resp.Header.Get("X-Des-Found-By"), nil
}

// s3Requests reads the sidecar's count of requests sent to the object store.
func (r *Reader) s3Requests(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.MetricsURL, http.NoBody)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("sidecar metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("sidecar metrics: %w", err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "des_reader_s3_requests_total "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("sidecar metrics: no des_reader_s3_requests_total")
}

// VerifyFiles reads names through the sidecar with the Go client users get, pkg/client: one by one
// (each name's container found by the sidecar) and all in one batch, and compares every file with
// the original. The client checks each file's CRC-32C and length on the way.
func (r *Reader) VerifyFiles(ctx context.Context, seed *Seed, names []string) error {
	rc, err := desclient.NewReader(r.URL, nil)
	if err != nil {
		return err
	}
	for _, name := range names {
		data, err := rc.ReadFile(ctx, desclient.Ref{Name: name})
		if err != nil {
			return fmt.Errorf("read %s through the sidecar: %w", name, err)
		}
		if err := seed.same("read", name, data); err != nil {
			return err
		}
	}
	got := 0
	for p, err := range rc.Batch(ctx, desclient.BatchRequest{Names: names}) {
		if err != nil {
			return fmt.Errorf("batch through the sidecar: %w", err)
		}
		data, err := p.Bytes()
		if err != nil {
			return fmt.Errorf("batch through the sidecar: %s: %w", p.Name, err)
		}
		if err := seed.same("batch", p.Name, data); err != nil {
			return err
		}
		got++
	}
	if got != len(names) {
		return fmt.Errorf("batch through the sidecar: %d files, want %d", got, len(names))
	}
	return nil
}

// same says whether data is the original content of the file name.
func (seed *Seed) same(how, name string, data []byte) error {
	if sha256.Sum256(data) != seed.Files[name] {
		return fmt.Errorf("%s %s: %d bytes that differ from the original", how, name, len(data))
	}
	return nil
}

// WaitSourceStatus waits until the DesSource's status (what `kubectl get dessources` prints) agrees
// with the catalog counts p of a finished run: the controller recounts when the run's Jobs end, not
// only at its periodic check a minute later. It returns how long that took.
func (s *Stack) WaitSourceStatus(ctx context.Context, seed *Seed, name string, p Progress, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	want := p.Rows.Rows()
	err := poll(ctx, timeout, func() (bool, string, error) {
		src := &desv1.DesSource{}
		if err := s.Client.Get(ctx, client.ObjectKey{Namespace: seed.Namespace, Name: name}, src); err != nil {
			return false, "", err
		}
		r := src.Status.Rows
		if r == nil {
			return false, "no status.rows yet", nil
		}
		got := catalog.Counts{Unnamed: r.Unnamed, Ready: r.Ready, Claimed: r.Claimed, Packed: r.Packed, Failed: r.Failed}
		deleted := int64(0)
		if src.Status.Sources != nil {
			deleted = src.Status.Sources.Deleted
		}
		return got == want && deleted == p.Rows.SourcesDeleted,
			fmt.Sprintf("status.rows %+v and %d sources deleted, catalog %+v and %d", got, deleted, want, p.Rows.SourcesDeleted), nil
	})
	return time.Since(start), err
}
