// Command demo runs the whole DES system on this machine (DEVELOPMENT TOOLING; `make demo` drives
// it): real PostgreSQL, S3 server, kube-apiserver and kube-controller-manager, and a real node
// (containerd, kubelet, kube-scheduler) in the test world's sandbox. It installs DES with
// `kubectl apply -k`, seeds a source bucket and catalog, applies config/samples with kubectl, waits
// until every file is packed into Committed containers by packer Jobs in real containers, reads files
// back through the reader sidecar pod, and then keeps the stack up for exploring until it is stopped.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/test/devstack"
	"github.com/datavision/des/test/testworld"
)

func main() {
	dir := flag.String("dir", "tmp/demo", "folder for the stack's kubeconfig, overlays and logs")
	files := flag.Int("files", 6000, "number of source files to seed")
	exit := flag.Bool("exit", false, "stop after the checks instead of keeping the stack up")
	driver := flag.String("catalog", envOr("DES_DEMO_CATALOG", string(catalog.Postgres)), "catalog database: postgres or mysql (MariaDB); env DES_DEMO_CATALOG")
	flag.Parse()
	d, err := catalog.ParseDriver(*driver)
	if err != nil {
		fmt.Fprintln(os.Stderr, "DEMO FAILED: -catalog:", err)
		os.Exit(2)
	}
	// Outside the sandbox this runs the demo again inside one and exits when it ends.
	if err := testworld.EnterSandbox(); err != nil {
		fmt.Fprintln(os.Stderr, "DEMO FAILED:", err)
		os.Exit(1)
	}
	if err := runUntilSignal(*dir, *files, *exit, d); err != nil {
		fmt.Fprintln(os.Stderr, "DEMO FAILED:", err)
		os.Exit(1)
	}
}

// runUntilSignal runs the demo; SIGINT or SIGTERM cancels it, and the stack is torn down either way.
func runUntilSignal(dir string, files int, exit bool, driver catalog.Driver) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, dir, files, exit, driver)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func logf(format string, args ...any) {
	fmt.Printf("%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// demoSamples make few shards and full containers: 4 shards of about 1,500 files each, and a fill
// policy that packs a shard only once the marker has named its late rows too (the seeded rows alone
// are about 1,200 per shard, all of them about 1,500), so each shard makes one container.
// The DesSource deletes each source object once its file was read back from its committed container
// (spec.deleteSource AfterVerify, no delay), so the source bucket ends empty.
var demoSamples = devstack.SampleOptions{ShardBits: 2, MaxFiles: 100_000, MinFiles: 1350, MaxWait: 10 * time.Minute,
	Interval:     20 * time.Second,
	DeleteSource: &desv1.DeleteSource{Policy: desv1.DeleteAfterVerify, Check: desv1.CheckHead, DeletesPerSecond: 2000}}

// minFilesPerContainer is what the demo's containers must hold on average (issue 14): fewer means the
// fill policy did not do its job.
const minFilesPerContainer = 1000

func run(ctx context.Context, dir string, files int, exit bool, driver catalog.Driver) error {
	dir, _ = filepath.Abs(dir)
	shardBits := demoSamples.ShardBits
	logf("starting the local stack and node in %s (catalog: %s)", dir, driver)
	s, err := devstack.Start(ctx, devstack.Options{Dir: dir, Logf: logf, Catalog: driver})
	if err != nil {
		return err
	}
	defer s.Close()

	logf("seeding %d source files into bucket 'scans' and catalog table 'objects'", files)
	seed, err := s.SeedSource(ctx, devstack.SeedOptions{Namespace: "scans", Files: files, ShardBits: shardBits,
		Prefix: "SCAN", BigEvery: 500, BigSize: 600 << 10, Unnamed: files / 5, Seed: 1})
	if err != nil {
		return err
	}
	logf("  %d files, %.1f MiB; %d rows left unnamed for the marker CronJob", seed.Total(), float64(seed.Bytes)/(1<<20), len(seed.Unnamed))

	before, err := seed.SourceObjects(ctx)
	if err != nil {
		return err
	}
	logf("source bucket 'scans' holds %d objects", before)

	logf("kubectl apply -k (config/samples pointed at the local S3 server, deleteSource: AfterVerify)")
	if err := s.ApplySamples(ctx, seed, demoSamples); err != nil {
		return err
	}
	logf("packing: the controller starts packer Jobs, the kubelet runs their pods in containers")
	start := time.Now()
	p, err := s.WaitPacked(ctx, seed, 10*time.Minute)
	if err != nil {
		return err
	}
	logf("packed and sources deleted in %.1fs: %s", time.Since(start).Seconds(), p)
	if err := seed.ResolveNames(ctx); err != nil {
		return err
	}
	if err := checkFewerObjects(ctx, seed, p, before); err != nil {
		return err
	}

	// What a person sees right after the run must be true already (issue 18).
	took, err := s.WaitSourceStatus(ctx, seed, "scans", p, 30*time.Second)
	if err != nil {
		return fmt.Errorf("kubectl get dessources after the run: %w", err)
	}
	logf("kubectl get dessources agrees with the catalog %.1fs after the run ended", took.Seconds())

	out, _ := s.Kubectl(ctx, "get", "pods", "-A", "-o", "wide")
	printHead(out, 12)
	out, _ = s.Kubectl(ctx, "-n", "scans", "get", "dessources,desshards")
	fmt.Println(out)
	out, err = s.Kubectl(ctx, "des", "-n", "scans", "status")
	if err != nil {
		return fmt.Errorf("kubectl des status: %w\n%s", err, out)
	}
	fmt.Println("$ kubectl des -n scans status")
	fmt.Println(out)
	out, _ = s.Kubectl(ctx, "-n", "scans", "get", "descontainers", "--sort-by=.spec.shard")
	printHead(out, 12)

	reader, err := s.StartReader(ctx, seed, shardBits)
	if err != nil {
		return err
	}
	names := sample(seed, 25)
	cold, err := reader.ReadCold(ctx, seed, names)
	if err != nil {
		return fmt.Errorf("read back through the reader sidecar: %w", err)
	}
	logf("%s: byte-exact, and the source objects of all of them are gone", cold)
	if !cold.OneRequestEach() {
		return fmt.Errorf("cold reads by name should cost one S3 request each, through the catalog: %s", cold)
	}
	if err := reader.VerifyFiles(ctx, seed, names); err != nil {
		return fmt.Errorf("read back through the reader sidecar: %w", err)
	}
	logf("read %d files back through the reader sidecar pod %s (%s): byte-exact", len(names), reader.Pod, reader.URL)
	// A run without faults must be quiet: no Warning event, no error in the controller's log.
	warnings, errorLines, err := s.Noise(ctx)
	if err != nil {
		return err
	}
	logf("clean run: %d Warning events, %d errors logged by the controller", len(warnings), len(errorLines))
	if len(warnings)+len(errorLines) > 0 {
		return fmt.Errorf("a run without faults was noisy:\n%s", strings.Join(append(warnings, errorLines...), "\n"))
	}

	explain(dir, s.S3.Endpoint, reader.URL, names[0])
	fmt.Println("DEMO READY")
	if exit {
		return nil
	}
	<-ctx.Done()
	logf("stopping the stack")
	return nil
}

// checkFewerObjects prints and checks what the demo is for: the source bucket's objects are gone
// (each read back and verified first), replaced by a few full containers.
func checkFewerObjects(ctx context.Context, seed *devstack.Seed, p devstack.Progress, before int) error {
	after, err := seed.SourceObjects(ctx)
	if err != nil {
		return err
	}
	containers := p.Containers[desv1.PhaseCommitted]
	files := p.Rows.Packed
	logf("source bucket 'scans': %d objects before, %d after (%d deleted after verification, %d refused); archive: %d containers holding %d files, %.0f files per container",
		before, after, p.Rows.SourcesDeleted, p.Rows.SourcesRefused, containers, files, float64(files)/float64(max(containers, 1)))
	switch {
	case after != 0 || p.Rows.SourcesDeleted != files:
		return fmt.Errorf("%d source objects are left and %d of %d were deleted; every packed source should be gone", after, p.Rows.SourcesDeleted, files)
	case containers == 0 || files/int64(containers) < minFilesPerContainer:
		return fmt.Errorf("%d containers for %d files: fewer than %d files per container", containers, files, minFilesPerContainer)
	}
	return nil
}

func sample(seed *devstack.Seed, n int) []string {
	names := make([]string, 0, len(seed.Files))
	for name := range seed.Files {
		names = append(names, name)
	}
	sort.Strings(names)
	rng := rand.New(rand.NewPCG(2, 3))
	rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	return names[:min(n, len(names))]
}

func explain(dir, s3, readerURL, name string) {
	fmt.Printf(`
Explore (the stack stays up until 'make demo-down'). It lives in its own network namespace, which
'hack/demo.sh exec' enters ('hack/demo.sh shell' opens a shell there):
  hack/demo.sh kubectl get pods -A -o wide
  hack/demo.sh kubectl get des -n scans
  hack/demo.sh kubectl des -n scans status
  hack/demo.sh kubectl des -n scans why scans-all
  hack/demo.sh kubectl des -n scans pack-now scans-all
  hack/demo.sh kubectl des -n scans verify <container from kubectl get descontainers>
  hack/demo.sh kubectl des -n scans cat '%[4]s' | wc -c
  hack/demo.sh kubectl describe desshard -n scans scans-all
  hack/demo.sh kubectl logs -n des-system deploy/des-controller
  hack/demo.sh exec curl -s '%[3]s/v1/files/%[4]s' | wc -c
  hack/demo.sh exec env DES_S3_ENDPOINT=%[2]s DES_S3_PATH_STYLE=true AWS_REGION=us-east-1 \
         AWS_ACCESS_KEY_ID=des-test-access AWS_SECRET_ACCESS_KEY=des-test-secret-key \
         bin/des ls -l s3://archive/<key from kubectl get descontainers>
Kubeconfig: %[1]s/kubeconfig

`, dir, s3, readerURL, name)
}

func printHead(out string, n int) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) > n+1 {
		fmt.Println(strings.Join(lines[:n+1], "\n"))
		fmt.Printf("... and %d more\n\n", len(lines)-n-1)
		return
	}
	fmt.Println(out)
}
