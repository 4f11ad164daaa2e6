// Command des packs, lists, reads and verifies DES archives.
//
//	des pack [-q] -o ARCHIVE FILE|DIR...
//	des ls [-l] [-raw] ARCHIVE
//	des cat ARCHIVE NAME...
//	des meta ARCHIVE NAME
//	des verify [-q] ARCHIVE
//	des stat ARCHIVE
//	des name new|parse|shard ...
//	des get [--reader URL] [--container KEY] NAME | -o DIR [-q] NAME...
//	des version (or des --version)
//
// pack stores paths like GNU tar (des pack -o x.des dir stores dir/sub/a.txt). DES names
// cannot hold "/", so the path is stored percent-escaped, dir%2Fsub%2Fa.txt, which DES v1 readers
// read as an ordinary name; ls shows the path, and cat, meta and get accept it (pathname.go).
//
// pack, verify and get -o show a progress bar on stderr when it is a terminal; -q, a pipe or a
// file keep them quiet.
//
// Exit status: 0 success, 1 failure (including a corrupt archive), 2 usage.
package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"github.com/datavision/des/internal/version"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// verb is one subcommand. Every verb has the same signature so that adding
// one is a single line in the verbs table.
type verb struct {
	run     func(args []string, stdout, stderr io.Writer) int
	summary string
}

// verbs is the dispatch table.
var verbs = map[string]verb{
	"pack":    {runPack, "write an archive from files and directories"},
	"ls":      {runLs, "list the names in an archive"},
	"cat":     {runCat, "write files' bytes to stdout, in the order given"},
	"meta":    {runMeta, "print one file's meta JSON"},
	"verify":  {runVerify, "check structure and every checksum"},
	"stat":    {runStat, "describe an archive's layout"},
	"name":    {runName, "issue, parse and shard DES names"},
	"get":     {runGet, "read files through a reader sidecar"},
	"version": {runVersion, "print the version of des"},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches args[0] to its verb; it is main without os.Exit, so tests
// can drive the CLI in-process.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return exitOK
	case "-version", "--version":
		printVersion(stdout)
		return exitOK
	}
	v, ok := verbs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "des: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return v.run(args[1:], stdout, stderr)
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	c := newHTTPCommand("version", "", "Print the version of des (also: des --version).", stdout, stderr)
	if _, code, ok := c.parse(args, 0, 0); !ok {
		return code
	}
	printVersion(stdout)
	return exitOK
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "des %s\n", version.String())
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: des COMMAND [flags] ARGS...")
	fmt.Fprintln(w, "\ncommands:")
	for _, n := range slices.Sorted(maps.Keys(verbs)) {
		fmt.Fprintf(w, "  %-8s %s\n", n, verbs[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'des COMMAND --help' for a command's flags.")
	fmt.Fprintln(w, "Exit status: 0 ok, 1 error or corrupt archive, 2 usage error.")
}
