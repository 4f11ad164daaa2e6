package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/datavision/des/internal/desformat"
)

// command bundles a verb's flag set with its help text.
type command struct {
	name     string
	synopsis string // arguments after the verb
	help     string // what the verb does
	fs       *flag.FlagSet
	stdout   io.Writer
	stderr   io.Writer
}

func newCommand(name, synopsis, help string, stdout, stderr io.Writer) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // we print usage ourselves, to the right stream
	return &command{name: name, synopsis: synopsis, help: help, fs: fs, stdout: stdout, stderr: stderr}
}

func (c *command) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: des %s %s\n\n%s\n", c.name, c.synopsis, c.help)
	hasFlags := false
	c.fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nflags:")
		c.fs.SetOutput(w)
		c.fs.PrintDefaults()
		c.fs.SetOutput(c.stderr)
	}
}

// parse parses flags anywhere among the arguments (des ls ARCHIVE -l works)
// and checks the positional count. It returns the positionals, or an exit
// code when the command should stop (help: 0, usage error: 2).
func (c *command) parse(args []string, minArgs, maxArgs int) ([]string, int, bool) {
	var pos []string
	for {
		err := c.fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.usage(c.stdout)
			return nil, exitOK, false
		}
		if err != nil {
			c.usage(c.stderr)
			return nil, exitUsage, false
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			pos = append(pos, rest...) // after "--" everything is positional
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < minArgs || (maxArgs >= 0 && len(pos) > maxArgs) {
		fmt.Fprintf(c.stderr, "des %s: wrong number of arguments\n", c.name)
		c.usage(c.stderr)
		return nil, exitUsage, false
	}
	return pos, 0, true
}

// fail prints a one-line error with an actionable hint and returns exitError.
func (c *command) fail(err error) int {
	fmt.Fprintf(c.stderr, "des %s: %v\n", c.name, err)
	if hint := hintFor(err); hint != "" {
		fmt.Fprintf(c.stderr, "hint: %s\n", hint)
	}
	return exitError
}

func hintFor(err error) string {
	switch {
	case errors.Is(err, desformat.ErrNoExternalStore):
		return "the payload is stored outside the archive; pass --external-root DIR (a folder laid out like the bucket)"
	case errors.Is(err, desformat.ErrBadMagic):
		return "the file does not end with a DES footer: not a DES archive, or truncated"
	case errors.Is(err, desformat.ErrUnsupportedVersion):
		return "the archive was written by a newer DES version"
	case errors.Is(err, desformat.ErrChecksum), errors.Is(err, desformat.ErrCorrupt):
		return "the archive is damaged; run 'des verify' for a full report"
	case errors.Is(err, desformat.ErrNotFound):
		return "run 'des ls ARCHIVE' to see the names"
	}
	return ""
}

// openArchive opens the archive at path for random access. It is the one
// place to extend for remote archives (s3://bucket/key will return a
// ranged-GET io.ReaderAt here).
func openArchive(ctx context.Context, path string) (io.ReaderAt, int64, io.Closer, error) {
	if strings.HasPrefix(path, "s3://") {
		return nil, 0, nil, fmt.Errorf("%s: s3:// archives are not supported by this build", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s: not a regular file", path)
	}
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	return f, st.Size(), f, nil
}

// openExternalStore returns the store for --external-root ("" means none).
// Like openArchive, it is where an s3:// bucket store will plug in.
func openExternalStore(root string) (desformat.ExternalStore, error) {
	switch {
	case root == "":
		return nil, nil
	case strings.HasPrefix(root, "s3://"):
		return nil, fmt.Errorf("%s: s3:// external stores are not supported by this build", root)
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("external root: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("external root %s is not a directory", root)
	}
	return desformat.NewDirStore(root), nil
}

// openReader opens path as a desformat.Reader with the given external root.
func openReader(ctx context.Context, path, externalRoot string, prefetchMeta bool) (*desformat.Reader, io.Closer, error) {
	store, err := openExternalStore(externalRoot)
	if err != nil {
		return nil, nil, err
	}
	ra, size, closer, err := openArchive(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	r, err := desformat.NewReader(ra, size, desformat.ReaderOptions{External: store, PrefetchMeta: prefetchMeta})
	if err != nil {
		closer.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, closer, nil
}

// parseSize parses a byte count with an optional K/M/G (or KiB/MiB/GiB,
// all binary) suffix.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	t := strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "IB")
	t = strings.TrimSuffix(t, "B")
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult, t = 1<<10, t[:n-1]
		case 'M':
			mult, t = 1<<20, t[:n-1]
		case 'G':
			mult, t = 1<<30, t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q (want bytes, optionally with K, M or G)", s)
	}
	return v * mult, nil
}

// sizeFlag is a flag.Value accepting parseSize syntax.
type sizeFlag struct{ v *int64 }

func (f sizeFlag) String() string {
	if f.v == nil {
		return "0"
	}
	return strconv.FormatInt(*f.v, 10)
}

func (f sizeFlag) Set(s string) error {
	v, err := parseSize(s)
	if err == nil {
		*f.v = v
	}
	return err
}
