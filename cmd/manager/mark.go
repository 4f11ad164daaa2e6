package main

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/datavision/des/internal/cli"
	"github.com/datavision/des/internal/connect"
	"github.com/datavision/des/internal/marker"
	"github.com/datavision/des/internal/nodeid"
)

// runMark is `manager mark`, one marker run (internal/marker), as the DesSource's CronJob runs it.
func runMark(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := cli.New("mark", stderr)
	fs := c.Flags
	namespace := fs.String("namespace", os.Getenv("POD_NAMESPACE"), "namespace of the DesSource (env POD_NAMESPACE)")
	source := fs.String("dessource", "", "name of the DesSource whose catalog to mark")
	dsnSource := connect.BindDSN(fs)
	identity := fs.String("identity", os.Getenv("POD_NAME"), "holder identity in the node Lease (env POD_NAME)")
	leaseNS := fs.String("lease-namespace", os.Getenv("DES_NAME_LEASE_NAMESPACE"),
		"namespace of the naming node Leases (env DES_NAME_LEASE_NAMESPACE; default: the DesSource's)")
	leaseDuration := fs.Duration("lease-duration", nodeid.DefaultLeaseDuration, "duration of the node Lease (whole seconds)")
	metricsAddr := fs.String("metrics-bind-address", "", "serve /metrics here during the run (the metrics are printed at the end anyway)")
	log, code, ok := c.Parse(args)
	if !ok {
		return code
	}
	if *namespace == "" || *source == "" || *identity == "" {
		return c.Usagef("--namespace, --dessource and --identity (or POD_NAMESPACE and POD_NAME) are required")
	}
	dsn, err := dsnSource.Read()
	if err != nil {
		return c.Usagef("%v", err)
	}
	kube, err := kubeClient()
	if err != nil {
		log.Error(err, "cannot reach the API server")
		return cli.ExitFailure
	}
	_, err = marker.RunSource(ctx, kube, marker.Options{
		Namespace: *namespace, Source: *source, DSN: dsn, MetricsAddr: *metricsAddr, Out: stdout, Log: log,
		Lease: nodeid.Options{Namespace: *leaseNS, Identity: *identity, LeaseDuration: *leaseDuration},
	})
	if err != nil {
		log.Error(err, "marker run failed")
		if errors.Is(err, marker.ErrNoMarker) {
			return cli.ExitUsage
		}
		return cli.ExitFailure
	}
	return cli.ExitOK
}
