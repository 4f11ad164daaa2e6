package main

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/datavision/des/internal/assign"
	"github.com/datavision/des/internal/cli"
	"github.com/datavision/des/internal/nodeid"
)

// runAssign is `manager assign`, the name-assignment service (internal/assign).
func runAssign(ctx context.Context, args []string, _, stderr io.Writer) int {
	c := cli.New("assign", stderr)
	fs := c.Flags
	addr := fs.String("listen-address", ":8080", "address of POST /v1/names, /metrics, /healthz and /readyz")
	namespace := fs.String("namespace", os.Getenv("POD_NAMESPACE"), "namespace of the naming node Leases (env POD_NAMESPACE)")
	identity := fs.String("identity", os.Getenv("POD_NAME"), "holder identity in the node Lease (env POD_NAME)")
	prefix := fs.String("prefix", "DES", "prefix of names when a request has none")
	shardBits := fs.Int("shard-bits", 12, "shard bits when a request has none (1..16)")
	leaseDuration := fs.Duration("lease-duration", nodeid.DefaultLeaseDuration, "duration of the node Lease (whole seconds); renewed every third of it")
	retry := fs.Duration("retry-interval", 5*time.Second, "wait between attempts to claim a node id")
	log, code, ok := c.Parse(args)
	if !ok {
		return code
	}
	if *namespace == "" || *identity == "" {
		return c.Usagef("--namespace and --identity (or POD_NAMESPACE and POD_NAME) are required")
	}
	kube, err := kubeClient()
	if err != nil {
		log.Error(err, "cannot reach the API server")
		return cli.ExitFailure
	}
	svc, err := assign.New(assign.Config{
		DefaultPrefix: *prefix, DefaultShardBits: *shardBits, RetryInterval: *retry, Log: log,
		Lease: nodeid.Options{Namespace: *namespace, Identity: *identity, LeaseDuration: *leaseDuration},
	}, kube)
	if err != nil {
		return c.Usagef("%v", err)
	}
	if err := assign.Serve(ctx, *addr, svc); err != nil {
		log.Error(err, "name service stopped")
		return cli.ExitFailure
	}
	return cli.ExitOK
}
