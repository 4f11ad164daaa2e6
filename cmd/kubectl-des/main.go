// Command kubectl-des is the DES kubectl plugin: put it on PATH and run `kubectl des COMMAND`.
//
//	kubectl des status [-A]                  sources, shards and containers at a glance
//	kubectl des why DESSHARD [SHARD]         what holds a DesShard (or one shard of it) back
//	kubectl des pack-now DESSHARD [--shards LIST]   ask the controller for one run now
//	kubectl des verify CONTAINER             read a container back and check it
//	kubectl des ls CONTAINER                 the names in a container
//	kubectl des cat NAME...                  files by name, through the catalog
//
// It acts with the user's kubeconfig and RBAC only: it reads what `kubectl get` would, patches one
// annotation for pack-now, and reads the Secrets a DesSource or DesShard names when it must reach the
// catalog or the archive itself (verify, ls, cat). Exit status: 0 ok, 1 failure, 2 usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/version"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// env is what every command works with: the cluster as the user's kubeconfig reaches it, the
// namespace of the request, and where output goes.
type env struct {
	ctx            context.Context
	kube           client.Client
	namespace      string
	allNamespaces  bool
	stdout, stderr io.Writer
}

// verb is one command. Every verb has the same signature, so adding one is a line in verbs.
type verb struct {
	run     func(e *env, args []string) int
	summary string
}

var verbs = map[string]verb{
	"status":   {runStatus, "sources, shards and containers at a glance"},
	"why":      {runWhy, "what holds a DesShard (or one of its shards) back"},
	"pack-now": {runPackNow, "ask the controller for one packing run now"},
	"verify":   {runVerify, "read a container back from the archive and check it"},
	"ls":       {runLs, "list the names in a container"},
	"cat":      {runCat, "write files to stdout by name, through the catalog"},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, connect)
	stop()
	os.Exit(code)
}

// connector builds the cluster client from the global flags; tests pass their own.
type connector func(g globalFlags) (client.Client, string, error)

// globalFlags are kubectl's own flags that a plugin is expected to honour.
type globalFlags struct {
	kubeconfig, context, namespace string
	allNamespaces                  bool
}

// run parses the global flags, connects and dispatches; it is main without os.Exit.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, conn connector) int {
	fs := flag.NewFlagSet("kubectl des", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(stderr) }
	var g globalFlags
	fs.StringVar(&g.kubeconfig, "kubeconfig", "", "path to the kubeconfig file")
	fs.StringVar(&g.context, "context", "", "kubeconfig context to use")
	fs.StringVar(&g.namespace, "namespace", "", "namespace (default: the context's)")
	fs.StringVar(&g.namespace, "n", "", "namespace (shorthand)")
	fs.BoolVar(&g.allNamespaces, "all-namespaces", false, "every namespace (status)")
	fs.BoolVar(&g.allNamespaces, "A", false, "every namespace (shorthand)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *showVersion || fs.Arg(0) == "version" {
		fmt.Fprintln(stdout, "kubectl-des", version.String())
		return exitOK
	}
	if fs.NArg() == 0 || fs.Arg(0) == "help" {
		usage(stdout)
		if fs.NArg() == 0 {
			return exitUsage
		}
		return exitOK
	}
	v, ok := verbs[fs.Arg(0)]
	if !ok {
		fmt.Fprintf(stderr, "kubectl des: unknown command %q\n\n", fs.Arg(0))
		usage(stderr)
		return exitUsage
	}
	kube, ns, err := conn(g)
	if err != nil {
		fmt.Fprintln(stderr, "kubectl des:", err)
		return exitError
	}
	return v.run(&env{ctx: ctx, kube: kube, namespace: ns, allNamespaces: g.allNamespaces, stdout: stdout, stderr: stderr}, fs.Args()[1:])
}

// connect loads the kubeconfig as kubectl does ($KUBECONFIG, ~/.kube/config, in-cluster) with the
// flags' overrides, and returns a client and the namespace to work in.
func connect(g globalFlags) (client.Client, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = g.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: g.context}
	overrides.Context.Namespace = g.namespace
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.UserAgent = "kubectl-des/" + version.String()
	kube, err := client.New(cfg, client.Options{Scheme: scheme()})
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes client: %w", err)
	}
	return kube, ns, nil
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = desv1.AddToScheme(s)
	_ = corev1.AddToScheme(s)
	_ = batchv1.AddToScheme(s)
	_ = coordinationv1.AddToScheme(s)
	return s
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: kubectl des [--kubeconfig F] [--context C] [-n NS | -A] COMMAND ARGS...")
	fmt.Fprintln(w, "\ncommands:")
	for _, n := range slices.Sorted(maps.Keys(verbs)) {
		fmt.Fprintf(w, "  %-9s %s\n", n, verbs[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'kubectl des COMMAND --help' for a command's flags; 'kubectl des --version' for the version.")
	fmt.Fprintln(w, "Exit status: 0 ok, 1 error, 2 usage error.")
}

// commandFlags is a command's FlagSet, reporting to stderr.
func commandFlags(e *env, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("kubectl des "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: kubectl des %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses a command's flags, before and after its positional arguments as kubectl allows
// (`pack-now NAME --shards 1`; "--" ends the flags), and checks the number of positional arguments
// (max -1: any).
func parseArgs(_ *env, fs *flag.FlagSet, args []string, minArgs, maxArgs int) ([]string, int, bool) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...) // everything after "--" is positional
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if len(pos) < minArgs || (maxArgs >= 0 && len(pos) > maxArgs) {
		fs.Usage()
		return nil, exitUsage, false
	}
	return pos, exitOK, true
}

// fail prints err for the named command and returns the failure exit code.
func fail(e *env, name string, err error) int {
	fmt.Fprintf(e.stderr, "kubectl des %s: %v\n", name, err)
	return exitError
}
