// Command desoutside is a Go program outside the DES module that uses only its public packages,
// pkg/des and pkg/client, the way an application would. It proves that they are importable and
// enough on their own; pkg/client's outside test builds and runs it against a real reader sidecar.
//
//	desoutside write ARCHIVE NAME=FILE...  pack files into ARCHIVE; prints "NAME SIZE CRC32C" lines
//	desoutside read URL KEY NAME           write one file read through the sidecar at URL to stdout
//	                                       (KEY "-": NAME is a DES name and the sidecar finds it)
//	desoutside batch URL KEY NAME...       read files with one batch; prints "NAME SIZE SHA256" lines
//
// Exit status: 0 ok, 1 failure, 2 usage.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"

	"github.com/datavision/des/pkg/client"
	"github.com/datavision/des/pkg/des"
)

var errUsage = errors.New("usage: desoutside write ARCHIVE NAME=FILE... | read URL KEY NAME | batch URL KEY NAME...")

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout)
	switch {
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "desoutside:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	switch {
	case len(args) >= 3 && args[0] == "write":
		return write(ctx, args[1], args[2:], stdout)
	case len(args) == 4 && args[0] == "read":
		return read(ctx, args[1], ref(args[2], args[3]), stdout)
	case len(args) >= 4 && args[0] == "batch":
		return batch(ctx, args[1], ref(args[2], "").Container, args[3:], stdout)
	}
	return errUsage
}

func ref(key, name string) client.Ref {
	if key == "-" {
		key = ""
	}
	return client.Ref{Container: key, Name: name}
}

// write packs NAME=FILE pairs into a new archive at path with pkg/des.
func write(ctx context.Context, path string, pairs []string, stdout io.Writer) (err error) {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, out.Close()) }()
	w, err := des.NewWriter(out, des.WriterOptions{})
	if err != nil {
		return err
	}
	for _, p := range pairs {
		if err := add(ctx, w, p, stdout); err != nil {
			return err
		}
	}
	return w.Close()
}

func add(ctx context.Context, w *des.Writer, pair string, stdout io.Writer) error {
	name, file, ok := strings.Cut(pair, "=")
	if !ok {
		return fmt.Errorf("%w (%q has no '=')", errUsage, pair)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := w.Add(ctx, des.FileHeader{Name: name, Size: int64(len(data))}, bytes.NewReader(data)); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s %d %08x\n", name, len(data), crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	return err
}

// read copies one file from the sidecar to stdout; pkg/client verifies it as it streams.
func read(ctx context.Context, baseURL string, r client.Ref, stdout io.Writer) error {
	c, err := client.NewReader(baseURL, nil)
	if err != nil {
		return err
	}
	body, err := c.Open(ctx, r)
	if err != nil {
		return err
	}
	defer body.Close()
	_, err = io.Copy(stdout, body)
	return err
}

// batch reads names with one request and prints each file's size and SHA-256.
func batch(ctx context.Context, baseURL, key string, names []string, stdout io.Writer) error {
	c, err := client.NewReader(baseURL, nil)
	if err != nil {
		return err
	}
	for p, err := range c.Batch(ctx, client.BatchRequest{Container: key, Names: names}) {
		if err != nil {
			return err
		}
		data, err := p.Bytes()
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(stdout, "%s %d %x\n", p.Name, len(data), sha256.Sum256(data)); err != nil {
			return err
		}
	}
	return nil
}
