package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/datavision/des/controllers"
	"github.com/datavision/des/internal/cli"
	"github.com/datavision/des/internal/lease"
)

type controllerFlags struct {
	metricsAddr, probeAddr string
	leaderElect            bool
	leaderElectionNS       string
	packerImage            string
	packerServiceAccount   string
	podHostNetwork         bool
	jobTTL                 time.Duration
	// allowedImages and allowedAccounts are what a DesShard's spec.job may choose besides the defaults.
	allowedImages, allowedAccounts listFlag
}

func runController(ctx context.Context, args []string, _, stderr io.Writer) int {
	c, f := newControllerCommand(stderr)
	log, code, ok := c.Parse(args)
	if !ok {
		return code
	}
	if err := startController(ctx, f, log); err != nil {
		log.Error(err, "controller stopped")
		return cli.ExitFailure
	}
	return cli.ExitOK
}

// newControllerCommand binds the flags, whose defaults some environment variables override.
func newControllerCommand(stderr io.Writer) (*cli.Command, *controllerFlags) {
	c := cli.New("controller", stderr)
	f := &controllerFlags{}
	fs := c.Flags
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus /metrics endpoint (0 disables it)")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "elect a leader so that only one replica reconciles")
	fs.StringVar(&f.leaderElectionNS, "leader-election-namespace", "", "namespace of the leader election Lease (default: the pod's)")
	fs.StringVar(&f.packerImage, "packer-image", cli.Getenv("DES_PACKER_IMAGE", "ghcr.io/datavision/des:latest"), "image of packer Jobs and marker CronJobs, unless a DesShard names one --allowed-packer-images lists (env DES_PACKER_IMAGE)")
	fs.StringVar(&f.packerServiceAccount, "packer-service-account", cli.Getenv("DES_PACKER_SERVICE_ACCOUNT", "des-packer"), "service account of packer and marker pods, unless a DesShard names one --allowed-packer-service-accounts lists; the controller creates it and its RoleBinding to des-packer-role in each namespace with DES resources (env DES_PACKER_SERVICE_ACCOUNT)")
	fs.BoolVar(&f.podHostNetwork, "pod-host-network", envBool("DES_POD_HOST_NETWORK"), "run packer and marker pods on their node's network (hostNetwork, dnsPolicy ClusterFirstWithHostNet): "+
		"for clusters whose pod network cannot reach the catalog or the object store, and for the single-node test world; "+
		"such pods do not pass Pod Security baseline or restricted (env DES_POD_HOST_NETWORK)")
	fs.DurationVar(&f.jobTTL, "job-ttl", 24*time.Hour, "how long finished packer Jobs are kept")
	f.allowedImages = envList("DES_ALLOWED_PACKER_IMAGES")
	fs.Var(&f.allowedImages, controllers.FlagAllowedPackerImages, "images a DesShard's spec.job.image may name besides --packer-image, compared as whole strings (prefer digests: tags move); "+
		"repeatable or comma-separated (env DES_ALLOWED_PACKER_IMAGES); a DesShard naming another gets no Job and Ready=False JobSettingsNotAllowed")
	f.allowedAccounts = envList("DES_ALLOWED_PACKER_SERVICE_ACCOUNTS")
	fs.Var(&f.allowedAccounts, controllers.FlagAllowedPackerServiceAccounts, "ServiceAccounts a DesShard's spec.job.serviceAccountName may name besides --packer-service-account; "+
		"repeatable or comma-separated (env DES_ALLOWED_PACKER_SERVICE_ACCOUNTS); a DesShard naming another gets no Job and Ready=False JobSettingsNotAllowed")
	return c, f
}

// listFlag is a repeatable flag whose values may also be comma-separated. Its environment variable
// (envList) gives the values until the first use of the flag, which replaces them: as with the other
// flags, a flag beats the environment.
type listFlag struct {
	values []string
	set    bool
}

func (l *listFlag) String() string { return strings.Join(l.values, ",") }

func (l *listFlag) Set(v string) error {
	if !l.set {
		l.values, l.set = nil, true
	}
	l.values = append(l.values, splitList(v)...)
	return nil
}

func envList(name string) listFlag { return listFlag{values: splitList(os.Getenv(name))} }

// splitList is the non-empty, space-trimmed items of a comma-separated list.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// jobDefaults are the settings of the pods the controllers create.
func (f *controllerFlags) jobDefaults() controllers.JobDefaults {
	return controllers.JobDefaults{
		Image:                   f.packerImage,
		ServiceAccountName:      f.packerServiceAccount,
		TTLSecondsAfterFinished: int32(f.jobTTL / time.Second),
		HostNetwork:             f.podHostNetwork,
		AllowedImages:           f.allowedImages.values,
		AllowedServiceAccounts:  f.allowedAccounts.values,
	}
}

func startController(ctx context.Context, f *controllerFlags, log logr.Logger) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	scheme := newScheme()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: f.metricsAddr},
		HealthProbeBindAddress:  f.probeAddr,
		LeaderElection:          f.leaderElect,
		LeaderElectionID:        "des-controller.des.datavision.io",
		LeaderElectionNamespace: f.leaderElectionNS,
		// Stepping down fast on shutdown lets the next replica take over without waiting for expiry.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cache.Options{ByObject: controllers.CacheByObject()},
		Client:                        client.Options{Cache: controllers.ClientCacheOptions()},
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	connector := controllers.NewConnector(mgr.GetAPIReader())
	defer connector.Close()
	// One Lease observer per process, shared by the reconcilers: a new leader knows nothing and waits a
	// full Lease duration before it judges a Lease expired.
	leases := lease.NewObserver()
	shards := &controllers.DesShardReconciler{
		Client:    mgr.GetClient(),
		Connector: connector,
		Scheme:    scheme,
		Recorder:  mgr.GetEventRecorder("des-controller"),
		Clock:     clock.RealClock{},
		Jobs:      f.jobDefaults(),
		APIReader: mgr.GetAPIReader(),
		Leases:    leases,
	}
	if err := shards.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up DesShard controller: %w", err)
	}
	sources := &controllers.DesSourceReconciler{
		Client:    mgr.GetClient(),
		Scheme:    scheme,
		Jobs:      shards.Jobs,
		Connector: connector,
		APIReader: mgr.GetAPIReader(),
		Leases:    leases,
		Recorder:  mgr.GetEventRecorder("des-controller"),
		Clock:     clock.RealClock{},
	}
	if err := sources.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up DesSource controller: %w", err)
	}
	containers := &controllers.DesContainerReconciler{
		APIReader: mgr.GetAPIReader(),
		Leases:    leases,
		Client:    mgr.GetClient(),
		Connector: connector,
		Recorder:  mgr.GetEventRecorder("des-controller"),
		Clock:     clock.RealClock{},
	}
	if err := containers.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up DesContainer controller: %w", err)
	}
	metrics.Registry.MustRegister(&controllers.ContainerPhaseCollector{Reader: mgr.GetClient()},
		&controllers.StatusCollector{Reader: mgr.GetClient()})
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	log.Info("starting controller", "packerImage", f.packerImage, "allowedPackerImages", f.allowedImages.values,
		"packerServiceAccount", f.packerServiceAccount, "allowedPackerServiceAccounts", f.allowedAccounts.values,
		"leaderElection", f.leaderElect, "podHostNetwork", f.podHostNetwork)
	return mgr.Start(ctx)
}
