// Command manager is the single DES binary deployed to clusters. Its subcommands are the parts of the
// system: the controller, the packer run by Jobs, the reader sidecar, the name service and the marker.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
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
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, subcommands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'manager <subcommand> --help' for its flags.")
}
