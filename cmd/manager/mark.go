package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/marker"
	"github.com/datavision/des/internal/nodeid"
	"github.com/datavision/des/internal/protocol"
)

// runMark is `manager mark`, one marker run (internal/marker), as the DesSource's CronJob runs it.
func runMark(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("manager mark", flag.ContinueOnError)
	fs.SetOutput(stderr)
	namespace := fs.String("namespace", os.Getenv("POD_NAMESPACE"), "namespace of the DesSource (env POD_NAMESPACE)")
	source := fs.String("dessource", "", "name of the DesSource whose catalog to mark")
	dsnFile := fs.String("dsn-file", filepath.Join(protocol.CatalogSecretDir, protocol.CatalogDSNFile),
		"file holding the catalog DSN; without this flag $"+marker.EnvCatalogDSN+" wins when set")
	identity := fs.String("identity", os.Getenv("POD_NAME"), "holder identity in the node Lease (env POD_NAME)")
	leaseNS := fs.String("lease-namespace", os.Getenv("DES_NAME_LEASE_NAMESPACE"),
		"namespace of the naming node Leases (env DES_NAME_LEASE_NAMESPACE; default: the DesSource's)")
	leaseDuration := fs.Duration("lease-duration", nodeid.DefaultLeaseDuration, "duration of the node Lease (whole seconds)")
	metricsAddr := fs.String("metrics-bind-address", "", "serve /metrics here during the run (the metrics are printed at the end anyway)")
	var zapOpts zap.Options
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *namespace == "" || *source == "" || *identity == "" {
		fmt.Fprintln(stderr, "manager mark: --namespace, --dessource and --identity (or POD_NAMESPACE and POD_NAME) are required")
		return 2
	}
	dsnSet := false
	fs.Visit(func(f *flag.Flag) { dsnSet = dsnSet || f.Name == "dsn-file" })
	dsn, err := marker.ReadDSN(*dsnFile, dsnSet)
	if err != nil {
		fmt.Fprintln(stderr, "manager mark:", err)
		return 2
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("mark")

	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "kubeconfig")
		return 1
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = desv1.AddToScheme(scheme)
	kube, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		log.Error(err, "Kubernetes client")
		return 1
	}
	_, err = marker.RunSource(ctx, kube, marker.Options{
		Namespace: *namespace, Source: *source, DSN: dsn, MetricsAddr: *metricsAddr, Out: stdout, Log: log,
		Lease: nodeid.Options{Namespace: *leaseNS, Identity: *identity, LeaseDuration: *leaseDuration},
	})
	if err != nil {
		log.Error(err, "marker run failed")
		if errors.Is(err, marker.ErrNoMarker) {
			return 2
		}
		return 1
	}
	return 0
}
