package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/datavision/des/internal/assign"
	"github.com/datavision/des/internal/nodeid"
)

// runAssign is `manager assign`, the name-assignment service (internal/assign).
func runAssign(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("manager assign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("listen-address", ":8080", "address of POST /v1/names, /metrics, /healthz and /readyz")
	namespace := fs.String("namespace", os.Getenv("POD_NAMESPACE"), "namespace of the naming node Leases (env POD_NAMESPACE)")
	identity := fs.String("identity", os.Getenv("POD_NAME"), "holder identity in the node Lease (env POD_NAME)")
	prefix := fs.String("prefix", "DES", "prefix of names when a request has none")
	shardBits := fs.Int("shard-bits", 12, "shard bits when a request has none (1..16)")
	leaseDuration := fs.Duration("lease-duration", nodeid.DefaultLeaseDuration, "duration of the node Lease (whole seconds); renewed every third of it")
	retry := fs.Duration("retry-interval", 5*time.Second, "wait between attempts to claim a node id")
	var zapOpts zap.Options
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *namespace == "" || *identity == "" {
		fmt.Fprintln(stderr, "manager assign: --namespace and --identity (or POD_NAMESPACE and POD_NAME) are required")
		return 2
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("assign")

	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "kubeconfig")
		return 1
	}
	kube, err := client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		log.Error(err, "Kubernetes client")
		return 1
	}
	svc, err := assign.New(assign.Config{
		DefaultPrefix: *prefix, DefaultShardBits: *shardBits, RetryInterval: *retry, Log: log,
		Lease: nodeid.Options{Namespace: *namespace, Identity: *identity, LeaseDuration: *leaseDuration},
	}, kube)
	if err != nil {
		fmt.Fprintln(stderr, "manager assign:", err)
		return 2
	}
	if err := assign.Serve(ctx, *addr, svc); err != nil {
		log.Error(err, "name service stopped")
		return 1
	}
	return 0
}
