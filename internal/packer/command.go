package packer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/cli"
	"github.com/datavision/des/internal/connect"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/internal/resolve"
)

// commandFlags are the flags of `manager pack`.
type commandFlags struct {
	desShard, shards, namespace, identity, job string
	maxDuration                                time.Duration
	kubeconfig                                 string
	dsn                                        *connect.DSNSource
	sourceCredentials, archiveCredentials      string
	sourceCA, archiveCA                        string
	metricsAddr                                string
	tuning                                     Tuning
}

// Command runs `manager pack`: it packs the given shards of a DesShard and returns the exit code (0:
// done or nothing to do, 1: a shard failed or the packer was stopped, 2: bad usage).
func Command(ctx context.Context, args []string, _, stderr io.Writer) int {
	c, f := newCommand(stderr)
	log, code, ok := c.Parse(args)
	if !ok {
		return code
	}
	if missing := f.missing(); len(missing) > 0 {
		return c.Usagef("missing %s", strings.Join(missing, ", "))
	}
	log = log.WithValues("desshard", f.desShard, "pod", f.identity)
	err := runCommand(ctx, f, log)
	switch {
	case errors.Is(err, ErrStopped):
		log.Info("stopped before finishing; the next run continues")
		return cli.ExitFailure
	case err != nil:
		log.Error(err, "packing failed")
		return cli.ExitFailure
	}
	log.Info("packing finished")
	return cli.ExitOK
}

func newCommand(stderr io.Writer) (*cli.Command, *commandFlags) {
	c := cli.New("pack", stderr)
	f := &commandFlags{}
	fs := c.Flags
	fs.StringVar(&f.desShard, "desshard", "", "name of the DesShard whose shards to pack (required)")
	fs.StringVar(&f.shards, "shards", "", "comma-separated shard ids to pack (required)")
	fs.StringVar(&f.namespace, "namespace", os.Getenv("POD_NAMESPACE"), "namespace of the DesShard (env POD_NAMESPACE)")
	fs.StringVar(&f.identity, "identity", cli.Getenv("POD_NAME", hostname()), "holder identity of the shard Leases (env POD_NAME)")
	fs.StringVar(&f.job, "job", os.Getenv("DES_JOB_NAME"), "name of the packer Job, recorded in the containers (env DES_JOB_NAME)")
	fs.DurationVar(&f.maxDuration, "max-duration", 0, "time budget: no container is started or row claimed after it (default: the Job's activeDeadlineSeconds minus a margin)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config, or $KUBECONFIG)")
	f.dsn = connect.BindDSN(fs)
	fs.StringVar(&f.sourceCredentials, "source-credentials-dir", protocol.SourceSecretDir, "mounted Secret with the source store's credentials")
	fs.StringVar(&f.archiveCredentials, "archive-credentials-dir", protocol.ArchiveSecretDir, "mounted Secret with the archive store's credentials")
	fs.StringVar(&f.sourceCA, "source-ca-file", filepath.Join(protocol.SourceCADir, protocol.CABundleFile), "CA bundle of the source store, used when the DesSource names one")
	fs.StringVar(&f.archiveCA, "archive-ca-file", filepath.Join(protocol.ArchiveCADir, protocol.CABundleFile), "CA bundle of the archive store, used when the DesShard names one")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", "", "address of the Prometheus /metrics endpoint (empty: none)")
	t := &f.tuning
	fs.IntVar(&t.Window, "window", DefaultWindow, "source objects fetched ahead of the writer")
	fs.Int64Var(&t.PrefetchBytes, "prefetch-bytes", DefaultPrefetchBytes, "bytes of source objects fetched ahead of the writer")
	fs.IntVar(&t.ClaimBatch, "claim-batch", DefaultClaimBatch, "most rows claimed by one statement")
	fs.Int64Var(&t.PartSize, "part-size", DefaultPartSize, "part size of container uploads (raised to fit the DesShard's limits)")
	fs.IntVar(&t.UploadConcurrency, "upload-concurrency", DefaultUploadConcurrency, "container parts uploaded at once")
	fs.StringVar(&t.TempDir, "temp-dir", "", "directory of the open container's temporary files, about 200 bytes per file (default $TMPDIR or /tmp)")
	fs.DurationVar(&t.ProgressInterval, "progress-interval", DefaultProgressInterval, "interval of progress updates in the container status")
	return c, f
}

// missing names the required flags left empty, in a fixed order.
func (f *commandFlags) missing() []string {
	var out []string
	for _, req := range []struct{ name, v string }{
		{"--desshard", f.desShard}, {"--shards", f.shards}, {"--namespace", f.namespace}, {"--identity", f.identity},
	} {
		if req.v == "" {
			out = append(out, req.name)
		}
	}
	return out
}

func runCommand(ctx context.Context, f *commandFlags, log logr.Logger) error {
	start := time.Now()
	tuneMemory(log)
	shards, err := protocol.ParseShardList(f.shards)
	if err != nil {
		return fmt.Errorf("--shards: %w", err)
	}
	// A direct (uncached) client: the packer reads few objects and needs fresh ones.
	kube, err := cli.KubeClient(f.kubeconfig, "des-packer", Scheme())
	if err != nil {
		return err
	}
	ds, src, err := readResources(ctx, kube, f.namespace, f.desShard)
	if err != nil {
		return err
	}
	clock := chaosClock(ds, log) // nil (the real clock) except in the e2e's image
	if clock != nil {
		start = clock()
	}
	dsn, err := f.dsn.Read()
	if err != nil {
		return err
	}
	driver, err := resolve.Driver(src)
	if err != nil {
		return fmt.Errorf("DesSource %s: %w", src.Name, err)
	}
	pool, err := connect.Open(ctx, driver, dsn, connect.PoolOptions{})
	if err != nil {
		return err
	}
	defer pool.Close()
	cat, err := catalog.New(pool.DB, resolve.Mapping(src))
	if err != nil {
		return err
	}
	source, err := objstore.New(ctx, resolve.StoreConfigFromFiles(src.Spec.Store.ObjectStore, f.sourceCredentials, f.sourceCA))
	if err != nil {
		return fmt.Errorf("source store: %w", err)
	}
	archive, err := objstore.New(ctx, resolve.StoreConfigFromFiles(ds.Spec.Archive.ObjectStore, f.archiveCredentials, f.archiveCA))
	if err != nil {
		return fmt.Errorf("archive store: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := NewMetrics(reg)
	stopMetrics, err := serveMetrics(f.metricsAddr, reg, log)
	if err != nil {
		return err
	}
	defer stopMetrics()

	budget := f.maxDuration
	if budget <= 0 {
		budget = defaultBudget(ds.Spec.Job.ActiveDeadlineSeconds)
	}
	p, err := New(Config{
		DesShard: ds, Source: src, Shards: shards, Identity: f.identity, Job: f.job,
		Deadline: start.Add(budget), Tuning: f.tuning,
	}, Deps{Kube: kube, Catalog: cat, Source: source, Archive: archive, Metrics: metrics, Log: log, Now: clock})
	if err != nil {
		return err
	}
	log.Info("packing", "shards", shards, "budget", budget.String(), "job", f.job)
	// Catalog errors may quote the DSN's user or database, which can be the password itself.
	return connect.RedactError(p.Run(ctx), dsn)
}

// defaultBudget leaves a margin before the Job's deadline to finish the open container: a tenth of the
// deadline, at least a minute, at most ten.
func defaultBudget(activeDeadlineSeconds int64) time.Duration {
	deadline := time.Duration(activeDeadlineSeconds) * time.Second
	if deadline <= 0 {
		deadline = time.Hour
	}
	margin := min(max(deadline/10, time.Minute), 10*time.Minute)
	return max(deadline-margin, deadline/2)
}

// Scheme holds the types the packer reads and writes.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = desv1.AddToScheme(s)
	_ = coordinationv1.AddToScheme(s)
	return s
}

func readResources(ctx context.Context, c client.Client, ns, name string) (*desv1.DesShard, *desv1.DesSource, error) {
	ds := &desv1.DesShard{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, ds); err != nil {
		return nil, nil, fmt.Errorf("get DesShard %s/%s: %w", ns, name, err)
	}
	src := &desv1.DesSource{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ds.Spec.SourceRef}, src); err != nil {
		return nil, nil, fmt.Errorf("get DesSource %s/%s: %w", ns, ds.Spec.SourceRef, err)
	}
	return ds, src, nil
}

func serveMetrics(addr string, reg *prometheus.Registry, log logr.Logger) (func(), error) {
	if addr == "" || addr == "0" {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(err, "metrics endpoint stopped")
		}
	}()
	log.Info("serving metrics", "address", l.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
