package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

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
written to DIR/NAME. Each file is checked against its CRC-32C: on a mismatch
or a cut connection des exits 1 (discard the output). Names found nowhere
are reported and make des exit 1 after the others are written.`, stdout, stderr)
	readerURL := c.fs.String("reader", envOr("DES_READER_URL", defaultReaderURL), "reader sidecar base `URL` (env DES_READER_URL)")
	container := c.fs.String("container", "", "object `KEY` of the container holding the names")
	outDir := c.fs.String("o", "", "write each file to `DIR`/NAME with one batch request")
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
	ctx := context.Background()
	if *outDir == "" {
		return getOne(ctx, c, rc, client.Ref{Container: *container, Name: names[0]})
	}
	return getBatch(ctx, c, rc, client.BatchRequest{Container: *container, Names: names}, *outDir)
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
func getBatch(ctx context.Context, c *command, rc *client.Reader, req client.BatchRequest, dir string) int {
	root, err := os.OpenRoot(dir) // names cannot contain "/", and the Root keeps it so
	if err != nil {
		return c.fail(err)
	}
	defer root.Close()
	code := exitOK
	for p, err := range rc.Batch(ctx, req) {
		switch {
		case p == nil:
			return c.fail(err)
		case p.Missing:
			fmt.Fprintf(c.stderr, "des get: %s: not found\n", p.Name)
			code = exitError
		case err != nil:
			return c.fail(err)
		default:
			if err := writePart(root, p); err != nil {
				return c.fail(err)
			}
		}
	}
	return code
}

// writePart writes one part to its file and removes the file if the part fails verification, so no
// damaged or partial file is left looking complete.
func writePart(root *os.Root, p *client.Part) error {
	f, err := root.Create(p.Name)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, p)
	err = errors.Join(err, f.Close())
	if err != nil {
		_ = root.Remove(p.Name) // the error that matters is err
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	return nil
}
