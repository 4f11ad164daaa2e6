package scale_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/test/testworld"
)

// The controller scale run: for each shard count of DES_SCALE_SHARDS (default 256; make test-scale:
// 256,1024,4096) a namespace gets one DesSource on a real PostgreSQL catalog, one DesShard per 256
// shards (interval 10 s, the shortest the schema allows), and what a year of packing leaves behind
// within the bounds: DesContainersPerShard Committed DesContainers and one released shard Lease per
// shard, plus foreignLeases Leases that are not DES's (a cluster's kubelets and leader elections).
// Then the real `manager controller` binary runs against the real API server and is watched for
// DES_SCALE_WINDOW (default 30 s) after a warm-up: RSS, CPU, reconciles/s, API requests/s and
// reconcile latency, from /proc and from its own /metrics.
const (
	desContainersPerShard = 2
	foreignLeases         = 2000
	shardsPerDesShard     = 256
	warmUp                = 20 * time.Second
)

func scaleShardCounts(t *testing.T) []int {
	t.Helper()
	spec := os.Getenv("DES_SCALE_SHARDS")
	if spec == "" {
		spec = "256"
	}
	var out []int
	for f := range strings.SplitSeq(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < shardsPerDesShard || n%shardsPerDesShard != 0 || n > 4096 {
			t.Fatalf("DES_SCALE_SHARDS=%q: each count must be a multiple of %d up to 4096", spec, shardsPerDesShard)
		}
		out = append(out, n)
	}
	return out
}

func scaleWindow(t *testing.T) time.Duration {
	t.Helper()
	if v, err := time.ParseDuration(os.Getenv("DES_SCALE_WINDOW")); err == nil && v > 0 {
		return v
	}
	return 30 * time.Second
}

// TestControllerAtScale measures the controller at each shard count, one after another in fresh
// namespaces of the same API server, and reports a table (log, and DES_SCALE_CONTROLLER_REPORT).
// It fails if the controller exits, if its reconciles fail, or if its cache holds foreign Leases (its
// Lease informer would then list them: checked through the API requests it sends, not timed).
func TestControllerAtScale(t *testing.T) {
	manager := buildManager(t)
	kube := testworld.K8s(t)
	kubeconfig := kube.Kubeconfig(t)
	var rows []controllerFigures
	for _, shards := range scaleShardCounts(t) {
		t.Run(fmt.Sprintf("%d-shards", shards), func(t *testing.T) {
			ns := kube.NewNamespace(t)
			populate(t, kube.Client, ns, shards)
			rows = append(rows, measureController(t, manager, kubeconfig, kube.Client, ns, shards))
			// The API server has no namespace controller: empty the namespace, so that the next
			// count's controller sees only its own objects.
			emptyNamespace(t, kube.Client, ns)
		})
	}
	out := controllerReport(rows, scaleWindow(t))
	t.Log("\n" + out)
	if path := os.Getenv("DES_SCALE_CONTROLLER_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// buildManager builds the manager binary of this checkout.
func buildManager(t *testing.T) string {
	t.Helper()
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "manager")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/manager")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the manager: %v\n%s", err, out)
	}
	return bin
}

// populate makes the namespace's DesSource, DesShards, DesContainers and Leases.
func populate(t *testing.T, c client.Client, ns string, shards int) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	db := testworld.NewCatalogDB(t, catalog.Postgres)
	db.CreateObjects(t, testworld.ObjectsTable{})
	// Five ready rows per shard: every shard is waiting (far below minFiles), none due, so the
	// controller inspects every shard at every interval and creates no Job.
	db.Exec(t, fmt.Sprintf(`INSERT INTO objects (source_key, size, status, des_name, shard)
		SELECT 'src/' || g, 4096, 'ready', 'N_' || g, g %% %d FROM generate_series(1, %d) AS g`, shards, 5*shards))
	s3 := testworld.S3Store(t)
	secrets := map[string]map[string]string{
		"catalog":   {"dsn": db.DSN},
		"source-s3": {"AWS_ACCESS_KEY_ID": s3.AccessKey, "AWS_SECRET_ACCESS_KEY": s3.SecretKey},
	}
	for name, data := range secrets {
		must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}))
	}
	store := desv1.ObjectStore{Endpoint: s3.Endpoint, Region: s3.Region, PathStyle: true,
		CredentialsSecretRef: desv1.SecretRef{Name: "source-s3"}}
	src := &desv1.DesSource{ObjectMeta: metav1.ObjectMeta{Name: "src", Namespace: ns}, Spec: desv1.DesSourceSpec{
		Catalog: desv1.Catalog{DSNSecretRef: desv1.SecretKeyRef{Name: "catalog", Key: "dsn"}, Table: "objects", AllowMigration: true},
		Store:   desv1.SourceStore{ObjectStore: store, Bucket: s3.NewBucket(t)},
		Naming:  desv1.Naming{ShardBits: 12},
	}}
	must(t, c.Create(ctx, src))
	archive := s3.NewBucket(t)
	for i := 0; i < shards/shardsPerDesShard; i++ {
		ds := &desv1.DesShard{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ds%d", i), Namespace: ns}, Spec: desv1.DesShardSpec{
			SourceRef:   "src",
			ShardRanges: []desv1.ShardRange{{From: int32(i * shardsPerDesShard), To: int32((i+1)*shardsPerDesShard - 1)}},
			Archive:     desv1.ArchiveStore{ObjectStore: store, Bucket: archive, Prefix: "des"},
			Interval:    metav1.Duration{Duration: 10 * time.Second},
		}}
		must(t, c.Create(ctx, ds))
	}
	day := time.Now().UTC()
	parallel(t, shards, func(shard int) error {
		desShard := fmt.Sprintf("ds%d", shard/shardsPerDesShard)
		labels := map[string]string{protocol.LabelManagedBy: protocol.ManagedByDES, protocol.LabelDesShard: desShard,
			protocol.LabelShard: strconv.Itoa(shard), protocol.LabelSource: "src"}
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: protocol.LeaseName(desShard, int32(shard)), Namespace: ns, Labels: labels}}
		if err := c.Create(ctx, l); err != nil {
			return err
		}
		for k := range desContainersPerShard {
			at := day.Add(-time.Duration(k+1) * time.Hour)
			id := protocol.NewContainerID(at.Add(time.Duration(shard) * time.Millisecond))
			dc := &desv1.DesContainer{
				ObjectMeta: metav1.ObjectMeta{Name: protocol.ContainerName(desShard, id), Namespace: ns, Labels: labels},
				Spec: desv1.DesContainerSpec{ShardRef: desShard, Shard: int32(shard), Day: at.Format(time.DateOnly),
					Bucket: archive, Key: protocol.ContainerKey("des", at, int32(shard), id)},
			}
			if err := c.Create(ctx, dc); err != nil {
				return err
			}
			dc.Status = desv1.DesContainerStatus{Phase: desv1.PhaseCommitted, CommittedAt: &metav1.Time{Time: at},
				Files: 1000, Bytes: 4 << 20, ObjectSize: 4<<20 + 120_000}
			if err := c.Status().Update(ctx, dc); err != nil {
				return err
			}
		}
		return nil
	})
	parallel(t, foreignLeases, func(i int) error {
		return c.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%d", i), Namespace: ns,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "kubelet"}}})
	})
	t.Logf("%d shards: %d DesContainers, %d DES Leases and %d foreign Leases made in %s", shards,
		shards*desContainersPerShard, shards, foreignLeases, time.Since(start).Round(time.Second))
}

// parallel runs fn(0..n-1) on 8 workers and fails the test on the first error.
func parallel(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan int)
	)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// controllerFigures is what one shard count measured.
type controllerFigures struct {
	shards, desShards  int
	containers, leases int
	rssMiB, peakMiB    float64
	cpuPercent         float64
	reconcilesPerSec   map[string]float64
	latency            map[string]latency
	apiPerSec          float64
	apiByVerb          map[string]float64
	reconcileErrors    float64
	// containerBytes and leaseBytes are the JSON size of one stored DesContainer and DES Lease, what
	// etcd keeps of each (give or take its encoding).
	containerBytes, leaseBytes int
}

type latency struct{ mean, p99 time.Duration }

// measureController runs the controller watching only ns, waits out the warm-up, samples its
// metrics and /proc over the window, and stops it.
func measureController(t *testing.T, manager, kubeconfig string, c client.Client, ns string, shards int) controllerFigures {
	t.Helper()
	metricsAddr, probeAddr := freeAddr(t), freeAddr(t)
	logPath := filepath.Join(t.TempDir(), "controller.log")
	logFile, err := os.Create(logPath)
	must(t, err)
	defer logFile.Close()
	cmd := exec.Command(manager, "controller", "--metrics-bind-address="+metricsAddr, "--health-probe-bind-address="+probeAddr,
		"--leader-elect=false", "--packer-image=des.datavision.io/manager:dev")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "POD_NAMESPACE="+ns)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		var err error
		select {
		case err = <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			err = <-exited
		}
		t.Logf("%d shards: the controller stopped on SIGTERM: %v", shards, err)
	}()
	sleepOrExit(t, exited, warmUp, logPath)
	window := scaleWindow(t)
	m0, cpu0, at0 := scrape(t, metricsAddr), cpuSeconds(t, cmd.Process.Pid), time.Now()
	sleepOrExit(t, exited, window, logPath)
	m1, cpu1, at1 := scrape(t, metricsAddr), cpuSeconds(t, cmd.Process.Pid), time.Now()
	secs := at1.Sub(at0).Seconds()
	rss, peak := memory(t, cmd.Process.Pid)
	f := controllerFigures{shards: shards, desShards: shards / shardsPerDesShard, rssMiB: rss, peakMiB: peak,
		cpuPercent: 100 * (cpu1 - cpu0) / secs, reconcilesPerSec: map[string]float64{}, latency: map[string]latency{},
		apiByVerb: map[string]float64{}}
	for _, ctl := range []string{"desshard", "dessource", "descontainer"} {
		sel := map[string]string{"controller": ctl}
		f.reconcilesPerSec[ctl] = (m1.sum("controller_runtime_reconcile_total", sel) - m0.sum("controller_runtime_reconcile_total", sel)) / secs
		f.reconcileErrors += m1.sum("controller_runtime_reconcile_errors_total", sel) - m0.sum("controller_runtime_reconcile_errors_total", sel)
		f.latency[ctl] = histogramDelta(m0, m1, "controller_runtime_reconcile_time_seconds", sel)
	}
	f.apiPerSec = (m1.sum("rest_client_requests_total", nil) - m0.sum("rest_client_requests_total", nil)) / secs
	for _, verb := range []string{"GET", "LIST", "PATCH", "PUT", "POST", "DELETE", "WATCH"} {
		sel := map[string]string{"method": verb}
		f.apiByVerb[verb] = (m1.sum("rest_client_requests_total", sel) - m0.sum("rest_client_requests_total", sel)) / secs
	}
	f.containers = count(t, c, ns, &desv1.DesContainerList{})
	f.leases = count(t, c, ns, &coordinationv1.LeaseList{})
	f.containerBytes, f.leaseBytes = storedSize(t, c, ns, &desv1.DesContainerList{}), storedSize(t, c, ns, &coordinationv1.LeaseList{})
	if f.reconcileErrors > 0 {
		t.Errorf("%d shards: %v reconcile errors in the window; the controller's log is %s", shards, f.reconcileErrors, logPath)
	}
	if f.reconcilesPerSec["desshard"] == 0 {
		t.Errorf("%d shards: no DesShard reconciled in %s: the run measured an idle controller", shards, window)
	}
	return f
}

func sleepOrExit(t *testing.T, exited <-chan error, d time.Duration, logPath string) {
	t.Helper()
	select {
	case err := <-exited:
		out, _ := os.ReadFile(logPath)
		t.Fatalf("the controller exited: %v\n%s", err, tail(string(out), 40))
	case <-time.After(d):
	}
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().String()
}

// storedSize is the JSON size of the first DES object of list in ns, as the API server returns it.
func storedSize(t *testing.T, c client.Client, ns string, list client.ObjectList) int {
	t.Helper()
	must(t, c.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels{protocol.LabelManagedBy: protocol.ManagedByDES}, client.Limit(1)))
	items, err := apimeta.ExtractList(list)
	must(t, err)
	if len(items) == 0 {
		return 0
	}
	data, err := json.Marshal(items[0])
	must(t, err)
	return len(data)
}

func count(t *testing.T, c client.Client, ns string, list client.ObjectList) int {
	t.Helper()
	must(t, c.List(context.Background(), list, client.InNamespace(ns)))
	switch l := list.(type) {
	case *desv1.DesContainerList:
		return len(l.Items)
	case *coordinationv1.LeaseList:
		return len(l.Items)
	}
	return -1
}

// cpuSeconds is the process's user + system CPU time in seconds.
func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	d, err := testworld.ProcessCPU(pid)
	must(t, err)
	return d.Seconds()
}

// memory is the process's resident and peak resident set in MiB, from /proc/PID/status.
func memory(t *testing.T, pid int) (rss, peak float64) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	must(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "VmRSS":
			rss = kb / 1024
		case "VmHWM":
			peak = kb / 1024
		}
	}
	return rss, peak
}

// metrics is one scrape: every sample by its full name and labels.
type metrics []sample

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

func scrape(t *testing.T, addr string) metrics {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err)
	var out metrics
	for line := range strings.SplitSeq(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		s, ok := parseSample(line)
		if ok {
			out = append(out, s)
		}
	}
	return out
}

// parseSample reads `name{k="v",...} value` (label values here never hold '"' or ',').
func parseSample(line string) (sample, bool) {
	sp := strings.LastIndexByte(line, ' ')
	if sp < 0 {
		return sample{}, false
	}
	v, err := strconv.ParseFloat(line[sp+1:], 64)
	if err != nil {
		return sample{}, false
	}
	head := line[:sp]
	s := sample{value: v, labels: map[string]string{}}
	name, rest, hasLabels := strings.Cut(head, "{")
	s.name = name
	if hasLabels {
		for kv := range strings.SplitSeq(strings.TrimSuffix(rest, "}"), ",") {
			if k, val, ok := strings.Cut(kv, "="); ok {
				s.labels[k] = strings.Trim(val, `"`)
			}
		}
	}
	return s, true
}

// sum adds the samples of name whose labels include sel.
func (m metrics) sum(name string, sel map[string]string) float64 {
	total := 0.0
	for _, s := range m {
		if s.name == name && matches(s.labels, sel) {
			total += s.value
		}
	}
	return total
}

func matches(labels, sel map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// histogramDelta is the mean and 99th percentile (the upper bound of its bucket) of the
// observations of histogram name between two scrapes.
func histogramDelta(m0, m1 metrics, name string, sel map[string]string) latency {
	n := m1.sum(name+"_count", sel) - m0.sum(name+"_count", sel)
	if n <= 0 {
		return latency{}
	}
	mean := (m1.sum(name+"_sum", sel) - m0.sum(name+"_sum", sel)) / n
	buckets := map[float64]float64{}
	for _, m := range []struct {
		ms   metrics
		sign float64
	}{{m1, 1}, {m0, -1}} {
		for _, s := range m.ms {
			if s.name != name+"_bucket" || !matches(s.labels, sel) {
				continue
			}
			le, err := strconv.ParseFloat(s.labels["le"], 64)
			if err == nil {
				buckets[le] += m.sign * s.value
			}
		}
	}
	bounds := make([]float64, 0, len(buckets))
	for le := range buckets {
		bounds = append(bounds, le)
	}
	sort.Float64s(bounds)
	p99 := math.Inf(1)
	for _, le := range bounds {
		if buckets[le] >= 0.99*n {
			p99 = le
			break
		}
	}
	return latency{mean: seconds(mean), p99: seconds(p99)}
}

func seconds(s float64) time.Duration {
	if math.IsInf(s, 1) {
		return -1
	}
	return time.Duration(s * float64(time.Second))
}

func controllerReport(rows []controllerFigures, window time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### controller, steady state over %s\n\n", window)
	if len(rows) > 0 {
		fmt.Fprintf(&b, "One stored DesContainer is %d bytes of JSON, one shard Lease %d.\n\n", rows[0].containerBytes, rows[0].leaseBytes)
	}
	fmt.Fprintf(&b, "| shards | DesShards | DesContainers | Leases (DES + foreign) | RSS MiB (peak) | CPU %% of a core | reconciles/s (shard, source, container) | reconcile mean / p99 (DesShard) | API requests/s | of which LIST |\n")
	fmt.Fprintf(&b, "|---:|---:|---:|---:|---:|---:|---|---|---:|---:|\n")
	for _, r := range rows {
		l := r.latency["desshard"]
		fmt.Fprintf(&b, "| %d | %d | %d | %d | %.0f (%.0f) | %.1f | %.2f, %.2f, %.2f | %s / %s | %.1f | %.2f |\n",
			r.shards, r.desShards, r.containers, r.leases, r.rssMiB, r.peakMiB, r.cpuPercent,
			r.reconcilesPerSec["desshard"], r.reconcilesPerSec["dessource"], r.reconcilesPerSec["descontainer"],
			dur(l.mean), dur(l.p99), r.apiPerSec, r.apiByVerb["LIST"])
	}
	return b.String()
}

func dur(d time.Duration) string {
	if d < 0 {
		return "> largest bucket"
	}
	return d.Round(100 * time.Microsecond).String()
}

// emptyNamespace deletes what populate and the controller made in ns, finalizers and all (the
// controller that would honour them is stopped).
func emptyNamespace(t *testing.T, c client.Client, ns string) {
	t.Helper()
	ctx := context.Background()
	for _, obj := range []client.Object{&desv1.DesContainer{}, &coordinationv1.Lease{}} {
		must(t, c.DeleteAllOf(ctx, obj, client.InNamespace(ns)))
	}
	for _, list := range []client.ObjectList{&desv1.DesShardList{}, &desv1.DesSourceList{}} {
		must(t, c.List(ctx, list, client.InNamespace(ns)))
		items, err := apimeta.ExtractList(list)
		must(t, err)
		for _, item := range items {
			obj := item.(client.Object)
			must(t, client.IgnoreNotFound(c.Delete(ctx, obj)))
			if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err == nil {
				obj.SetFinalizers(nil)
				must(t, client.IgnoreNotFound(c.Update(ctx, obj)))
			}
		}
	}
}
