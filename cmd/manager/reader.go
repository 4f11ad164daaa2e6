package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/cli"
	"github.com/datavision/des/internal/connect"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/reader"
	"github.com/datavision/des/internal/resolve"
)

// readerFlags are the flags of `manager reader`.
type readerFlags struct {
	listen         string
	probeListen    string
	allowRemote    bool
	s3             objstore.Config
	bucket         string
	prefixes       stringList
	cacheBytes     quantityFlag
	tailSize       quantityFlag
	shardBits      int
	maxBatchNames  int
	fetchConc      int
	maxOpens       int
	listTTL        time.Duration
	lookAheadDays  int
	namespace      string
	shutdownGrace  time.Duration
	credentialsDir string
	// source names the DesSource whose catalog answers where files are; catalogDSN is its read-only DSN.
	source         string
	catalogDSN     *connect.DSNSource
	catalogTimeout time.Duration
	placements     int
	svc            readServiceFlags
	indexTier      indexTierFlags
}

func runReader(ctx context.Context, args []string, _, stderr io.Writer) int {
	c, f := newReaderCommand(stderr)
	log, code, ok := c.Parse(args)
	if !ok {
		return code
	}
	if err := f.complete(); err != nil {
		return c.Usagef("%v", err)
	}
	if err := serveReader(ctx, *f, log); err != nil {
		log.Error(err, "reader stopped")
		return cli.ExitFailure
	}
	return cli.ExitOK
}

func newReaderCommand(stderr io.Writer) (*cli.Command, *readerFlags) {
	f := &readerFlags{cacheBytes: quantityFlag(reader.DefaultCacheBytes), tailSize: quantityFlag(reader.DefaultTailSize)}
	c := cli.New("reader", stderr)
	fs := c.Flags
	fs.StringVar(&f.listen, "listen-address", "127.0.0.1:8090", "address to serve on; loopback unless --allow-remote")
	fs.StringVar(&f.probeListen, "probe-address", "", "optional address serving only /healthz, /readyz and /metrics (e.g. :8091 for kubelet probes and Prometheus)")
	fs.BoolVar(&f.allowRemote, "allow-remote", false, "allow a non-loopback --listen-address without --auth=kubernetes (the API then has no authentication)")
	fs.StringVar(&f.bucket, "bucket", os.Getenv("DES_BUCKET"), "bucket holding the containers (env DES_BUCKET)")
	fs.Var(&f.prefixes, "archive-prefix", "archive key prefix that may be read; repeatable (env DES_ARCHIVE_PREFIXES, comma-separated)")
	fs.StringVar(&f.s3.Endpoint, "endpoint", os.Getenv("DES_S3_ENDPOINT"), "S3 endpoint URL; empty for AWS (env DES_S3_ENDPOINT)")
	fs.StringVar(&f.s3.Region, "region", os.Getenv("AWS_REGION"), "S3 region (env AWS_REGION)")
	fs.BoolVar(&f.s3.PathStyle, "path-style", envBool("DES_S3_PATH_STYLE"), "path-style bucket addressing, for MinIO, HCP, versitygw (env DES_S3_PATH_STYLE)")
	fs.StringVar(&f.credentialsDir, "credentials-dir", os.Getenv("DES_S3_CREDENTIALS_DIR"),
		"mounted Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY files; empty: the AWS default chain (env DES_S3_CREDENTIALS_DIR)")
	fs.StringVar(&f.s3.CAFile, "ca-file", os.Getenv("DES_S3_CA_FILE"), "extra PEM CA bundle for the store (env DES_S3_CA_FILE)")
	fs.IntVar(&f.shardBits, "shard-bits", reader.DefaultShardBits, "shard width of the archive's names (the DesSource's spec.naming.shardBits)")
	fs.Var(&f.cacheBytes, "cache-size", "memory budget of the container index cache (e.g. 256Mi)")
	fs.Var(&f.tailSize, "tail-size", "size of the read that opens a container (e.g. 1Mi)")
	fs.IntVar(&f.maxBatchNames, "max-batch-names", reader.DefaultMaxBatchNames, "most names in one batch request")
	fs.IntVar(&f.fetchConc, "fetch-concurrency", reader.DefaultFetchConcurrency, "range GETs in flight per batch")
	fs.IntVar(&f.maxOpens, "max-concurrent-opens", reader.DefaultMaxConcurrentOpens, "container opens in flight at once (each holds about its index and an 8 MiB meta chunk)")
	fs.DurationVar(&f.listTTL, "list-ttl", reader.DefaultListTTL, "how long lists of candidate containers are reused")
	fs.IntVar(&f.lookAheadDays, "lookahead-days", reader.DefaultLookAheadDays, "days after a name's day whose containers are searched too")
	fs.StringVar(&f.namespace, "namespace", os.Getenv("DES_NAMESPACE"), "namespace of DesContainers to find containers by (needs in-cluster or kubeconfig access); empty: listing only")
	fs.DurationVar(&f.shutdownGrace, "shutdown-grace", 10*time.Second, "time given to in-flight requests on SIGTERM")
	fs.StringVar(&f.source, "source", os.Getenv("DES_SOURCE"),
		"DesSource (in --namespace) whose catalog says where each file is: a read by name is then one ranged GET; empty: search the archive (env DES_SOURCE)")
	f.catalogDSN = connect.BindDSN(fs)
	fs.DurationVar(&f.catalogTimeout, "catalog-timeout", reader.DefaultCatalogTimeout, "bound on one catalog lookup; after it the archive is searched instead")
	fs.IntVar(&f.placements, "placement-cache-entries", reader.DefaultPlacementEntries,
		"placements of files read by name kept in memory (a warm read then needs no catalog query; about 300 B each); 0 disables")
	f.svc.register(fs)
	f.indexTier.register(fs)
	return c, f
}

// complete applies the environment's prefixes and checks the flags.
func (f *readerFlags) complete() error {
	if len(f.prefixes) == 0 {
		for p := range strings.SplitSeq(os.Getenv("DES_ARCHIVE_PREFIXES"), ",") {
			if p = strings.TrimSpace(p); p != "" {
				f.prefixes = append(f.prefixes, p)
			}
		}
	}
	if err := f.check(); err != nil {
		return err
	}
	f.s3.CredentialsDir = f.credentialsDir
	return nil
}

// check refuses a listener reachable from outside the pod unless asked for explicitly or protected by
// --auth=kubernetes: without it the API has no authentication and serves whatever the reader's
// credentials can read.
func (f *readerFlags) check() error {
	host, _, err := net.SplitHostPort(f.listen)
	if err != nil {
		return fmt.Errorf("--listen-address %q: %w", f.listen, err)
	}
	ip := net.ParseIP(host)
	loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
	if !loopback && !f.allowRemote && !f.svc.authEnabled() {
		return fmt.Errorf("--listen-address %q is not a loopback address; add --allow-remote to serve beyond the pod", f.listen)
	}
	if f.bucket == "" || len(f.prefixes) == 0 {
		return errors.New("--bucket and at least one --archive-prefix are required")
	}
	if f.source != "" && f.namespace == "" {
		return errors.New("--source needs --namespace: the DesSource is read from the API server")
	}
	if err := f.indexTier.check(); err != nil {
		return err
	}
	return f.svc.check(f.namespace)
}

func serveReader(ctx context.Context, f readerFlags, log logr.Logger) error {
	store, err := objstore.New(ctx, f.s3)
	if err != nil {
		return err
	}
	cfg := reader.Config{
		Store: store, Bucket: f.bucket, Prefixes: f.prefixes, ShardBits: f.shardBits,
		CacheBytes: int64(f.cacheBytes), TailSize: int64(f.tailSize), MaxBatchNames: f.maxBatchNames,
		FetchConcurrency: f.fetchConc, MaxConcurrentOpens: f.maxOpens, ListTTL: f.listTTL, LookAheadDays: f.lookAheadDays, Logger: log,
	}
	if cfg.LookAheadDays == 0 {
		cfg.LookAheadDays = -1 // the flag's 0 means "only the name's day"
	}
	if f.namespace != "" {
		if cfg.Kube, err = kubeReader(); err != nil {
			return err
		}
		cfg.Namespace = f.namespace
	}
	if f.source != "" {
		cat, closeCat, err := openReaderCatalog(ctx, cfg.Kube, f)
		if err != nil {
			return err
		}
		defer closeCat()
		cfg.Catalog, cfg.CatalogTimeout = cat, f.catalogTimeout
		cfg.PlacementEntries = f.placements
		if f.placements == 0 {
			cfg.PlacementEntries = -1 // the flag's 0 means "none"
		}
		log.Info("catalog lookups enabled", "source", f.source, "table", cat.table)
	}
	if cfg.Auth, err = f.svc.authConfig(f.namespace, f.source, log); err != nil {
		return err
	}
	if cfg.IndexTier, err = f.indexTier.build(log); err != nil {
		return err
	}
	if cfg.IndexTier != nil {
		defer cfg.IndexTier.Close()
	}
	srv, err := reader.New(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if ln, err = f.svc.wrapTLS(ln, log); err != nil {
		return err
	}
	// The store config's String names the credential source, never the credentials.
	log.Info("reader serving", "address", ln.Addr().String(), "bucket", f.bucket, "prefixes", []string(f.prefixes),
		"store", f.s3.String(), "shardBits", f.shardBits, "namespace", f.namespace)
	if f.probeListen == "" {
		return srv.Serve(ctx, ln, srv.Handler(), f.shutdownGrace)
	}
	pln, err := net.Listen("tcp", f.probeListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen for probes: %w", err)
	}
	log.Info("probes serving", "address", pln.Addr().String())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, pln, srv.ProbeHandler(), f.shutdownGrace) }()
	err = srv.Serve(ctx, ln, srv.Handler(), f.shutdownGrace)
	cancel()
	return errors.Join(err, <-errc)
}

// readerCatalog is the DesSource's catalog as the reader uses it: lookups only, errors redacted.
type readerCatalog struct {
	cat   *catalog.Catalog
	dsn   string
	table string
}

func (c *readerCatalog) Locate(ctx context.Context, names []string) (map[string]catalog.FileLocation, error) {
	locs, err := c.cat.Locate(ctx, names)
	if err != nil {
		return nil, connect.RedactError(err, c.dsn)
	}
	return locs, nil
}

// openReaderCatalog reads the DesSource's catalog mapping and opens a small pool on the reader's DSN
// (a role with SELECT on the catalog table and des_containers is enough). Nothing is queried yet: a
// catalog that is down at start only makes the reader search the archive until it answers.
func openReaderCatalog(ctx context.Context, kube client.Reader, f readerFlags) (*readerCatalog, func(), error) {
	src := &desv1.DesSource{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: f.namespace, Name: f.source}, src); err != nil {
		return nil, nil, fmt.Errorf("--source: read DesSource %s/%s: %w", f.namespace, f.source, err)
	}
	dsn, err := f.catalogDSN.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("--source %s: %w", f.source, err)
	}
	driver, err := resolve.Driver(src)
	if err != nil {
		return nil, nil, fmt.Errorf("DesSource %s: %w", f.source, err)
	}
	pool, err := connect.Open(ctx, driver, dsn, connect.PoolOptions{MaxConns: 8, ConnectTimeout: 2 * time.Second})
	if err != nil {
		return nil, nil, err
	}
	m := resolve.Mapping(src)
	cat, err := catalog.New(pool.DB, m)
	if err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("DesSource %s: %w", f.source, err)
	}
	return &readerCatalog{cat: cat, dsn: dsn, table: m.Table}, pool.Close, nil
}

// kubeReader is an uncached client: DesContainers are listed at most once per --list-ttl.
func kubeReader() (client.Reader, error) {
	c, err := kubeClient()
	if err != nil {
		return nil, fmt.Errorf("--namespace needs the API server: %w", err)
	}
	return c, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// quantityFlag is a byte count in Kubernetes quantity syntax (256Mi, 1G, 4096).
type quantityFlag int64

func (q *quantityFlag) String() string { return strconv.FormatInt(int64(*q), 10) }

func (q *quantityFlag) Set(v string) error {
	qty, err := resource.ParseQuantity(v)
	if err != nil {
		return err
	}
	if qty.Sign() <= 0 {
		return fmt.Errorf("%q must be positive", v)
	}
	*q = quantityFlag(qty.Value())
	return nil
}

func envBool(name string) bool {
	v, _ := strconv.ParseBool(os.Getenv(name))
	return v
}
