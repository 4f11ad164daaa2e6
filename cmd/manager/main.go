// Command manager is the single DES binary deployed to clusters. Its subcommands are the parts of the
// system: the controller, the packer run by Jobs, the reader sidecar, the name service and the marker.
//
// Every subcommand is built the same way (internal/cli): a FlagSet with the logging flags bound once,
// logs through logr on controller-runtime's zap backend, the catalog DSN from --catalog-dsn-file or
// $DES_CATALOG_DSN (internal/connect), and one context that SIGINT or SIGTERM cancels.
package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/cli"
)

// subcommand is one part of the system; run returns the process exit code.
type subcommand struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var subcommands = map[string]subcommand{
	"assign":     {"serve DES names with their shard ids (holds a naming node id Lease)", runAssign},
	"mark":       {"name new catalog rows of a DesSource (run by its marker CronJob)", runMark},
	"reader":     {"serve files from DES containers over HTTP (sidecar)", runReader},
	"controller": {"run the controllers (leader-elected)", runController},
	"migrate":    {"create the DES-owned catalog columns, indexes and table", runMigrate},
	"pack":       {"pack shards into containers (run by packer Jobs)", runPack},
}

func main() {
	os.Exit(runUntilSignal(os.Args[1:]))
}

// runUntilSignal runs one subcommand with a context that SIGTERM and SIGINT cancel.
func runUntilSignal(args []string) int {
	ctx, stop := cli.SignalContext()
	defer stop()
	return run(ctx, args, os.Stdout, os.Stderr)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "manager: unknown subcommand %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: manager <subcommand> [flags]\n\nsubcommands:")
	for _, n := range slices.Sorted(maps.Keys(subcommands)) {
		fmt.Fprintf(w, "  %-11s %s\n", n, subcommands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'manager <subcommand> --help' for its flags.")
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = desv1.AddToScheme(s)
	return s
}

// kubeClient is a direct (uncached) client for the subcommands that read a few objects: a cache would
// watch far more than they read.
func kubeClient() (client.Client, error) { return cli.KubeClient("", "", newScheme()) }
