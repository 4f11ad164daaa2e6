package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/progress"
	"github.com/datavision/des/pkg/client"
)

// defaultReaderURL is where the reader sidecar listens inside its pod.
const defaultReaderURL = "http://127.0.0.1:8090"

// envOr returns the environment variable key, or def when it is unset or empty.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func runGet(args []string, stdout, stderr io.Writer) int {
	c := newHTTPCommand("get", "[--reader URL] [--container KEY] NAME | -o DIR NAME...",
		`Read files through a reader sidecar (manager reader). Without --container,
NAME must be a DES name and the sidecar finds its container. One NAME is
written to stdout; with -o, every NAME is fetched in one batch request and
written to DIR/NAME. A NAME that holds a path (dir/sub/a.txt, as des ls shows
files des pack stored) is asked for by its stored name (dir%2Fsub%2Fa.txt)
and written to DIR/dir/sub/a.txt, creating the folders; nothing is ever
written outside DIR. Each file is checked against its CRC-32C: on a mismatch
or a cut connection des exits 1 (discard the output). Names found nowhere
are reported and make des exit 1 after the others are written. With -o, a
progress bar is shown on stderr when it is a terminal (not with -q).`, stdout, stderr)
	readerURL := c.fs.String("reader", envOr("DES_READER_URL", defaultReaderURL), "reader sidecar base `URL` (env DES_READER_URL)")
	container := c.fs.String("container", "", "object `KEY` of the container holding the names")
	outDir := c.fs.String("o", "", "write each file to `DIR`/NAME with one batch request")
	quiet := c.fs.Bool("q", false, "no progress bar")
	names, code, ok := c.parse(args, 1, -1)
	if !ok {
		return code
	}
	if *outDir == "" && len(names) != 1 {
		fmt.Fprintln(c.stderr, "des get: several names need -o DIR")
		c.usage(c.stderr)
		return exitUsage
	}
	rc, err := client.NewReader(*readerURL, nil)
	if err != nil {
		fmt.Fprintf(c.stderr, "des get: --reader: %v\n", err)
		return exitUsage
	}
	for i, n := range names {
		names[i] = storedName(n)
	}
	ctx := context.Background()
	if *outDir == "" {
		return getOne(ctx, c, rc, client.Ref{Container: *container, Name: names[0]})
	}
	bar := progress.New(stderr, *quiet, "des get", len(names), 0)
	return getBatch(ctx, c, rc, client.BatchRequest{Container: *container, Names: names}, *outDir, bar)
}

// storedName is the name to ask the sidecar for: a valid name as typed (every DES name is one),
// else the escaped form of a path like dir/sub/a.txt. Unlike des cat, get cannot try both forms
// without a second request, so a path whose only special character is a "%" before two hex
// digits must be given in its stored form (des ls -raw shows it).
func storedName(arg string) string {
	if desformat.ValidateName(arg) == nil {
		return arg
	}
	return escapePath(arg)
}

// getOne streams one file to stdout; the verifying body fails its last Read on damage.
func getOne(ctx context.Context, c *command, rc *client.Reader, ref client.Ref) int {
	body, err := rc.Open(ctx, ref)
	if err != nil {
		return c.fail(err)
	}
	defer body.Close()
	if _, err := io.Copy(c.stdout, body); err != nil {
		return c.fail(err)
	}
	return exitOK
}

// getBatch writes every file of one batch request below dir.
func getBatch(ctx context.Context, c *command, rc *client.Reader, req client.BatchRequest, dir string, bar *progress.Bar) int {
	defer bar.Finish()
	// The Root refuses any path that would leave dir, through ".." or a symbolic link, even one
	// planted between two files; displayName already never yields such a path.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return c.fail(err)
	}
	defer root.Close()
	code := exitOK
	for p, err := range rc.Batch(ctx, req) {
		switch {
		case p == nil:
			bar.Finish()
			return c.fail(err)
		case p.Missing:
			bar.Finish() // before the message, so it is not drawn over
			fmt.Fprintf(c.stderr, "des get: %s: not found\n", displayName(p.Name))
			code = exitError
		case err != nil:
			bar.Finish()
			return c.fail(err)
		default:
			n, err := writePart(root, p)
			if err != nil {
				bar.Finish()
				return c.fail(err)
			}
			bar.Add(1, n)
		}
	}
	return code
}

// writePart writes one part to DIR/displayName(name), creating folders, and removes the file if
// the part fails verification, so no damaged or partial file is left looking complete.
func writePart(root *os.Root, p *client.Part) (int64, error) {
	path := filepath.FromSlash(displayName(p.Name))
	if dir := filepath.Dir(path); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return 0, fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	f, err := root.Create(path)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, p)
	err = errors.Join(err, f.Close())
	if err != nil {
		_ = root.Remove(path) // the error that matters is err
		return 0, fmt.Errorf("%s: %w", p.Name, err)
	}
	return n, nil
}
