package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/datavision/des/internal/desformat"
)

func runPack(args []string, stdout, stderr io.Writer) int {
	c := newCommand("pack", "-o ARCHIVE [flags] FILE|DIR...",
		`Write an archive holding the given files and every regular file below the
given directories. Each file is stored under its base name; two inputs with
the same base name are an error. Inputs are checked before anything is
written, and the archive appears under its name only when complete.
Use -o - to write the archive to stdout.`, stdout, stderr)
	out := c.fs.String("o", "", "output archive `path` (required; - for stdout)")
	var threshold int64
	c.fs.Var(sizeFlag{&threshold}, "external-threshold", "store payloads of at least this many `bytes` (K/M/G suffixes ok) in --external-root; 0 disables")
	extRoot := c.fs.String("external-root", "", "`DIR` laid out like the bucket that receives external payloads as DIR/PREFIX/_bigFiles/NAME")
	extPrefix := c.fs.String("external-prefix", "", "key `PREFIX` for external payloads")
	quiet := c.fs.Bool("q", false, "do not print a summary")
	inputs, code, ok := c.parse(args, 1, -1)
	if !ok {
		return code
	}
	if *out == "" {
		fmt.Fprintln(stderr, "des pack: -o ARCHIVE is required")
		c.usage(stderr)
		return exitUsage
	}
	if threshold > 0 && *extRoot == "" {
		fmt.Fprintln(stderr, "des pack: --external-threshold needs --external-root")
		return exitUsage
	}
	files, err := collectInputs(inputs)
	if err != nil {
		return c.fail(err)
	}
	opts := desformat.WriterOptions{ExternalThreshold: threshold, ExternalPrefix: *extPrefix}
	if threshold > 0 {
		if err := os.MkdirAll(*extRoot, 0o755); err != nil {
			return c.fail(err)
		}
		if opts.External, err = openExternalStore(*extRoot); err != nil {
			return c.fail(err)
		}
	}
	total, err := writeArchiveTo(context.Background(), *out, stdout, files, opts)
	if err != nil {
		return c.fail(err)
	}
	if !*quiet {
		summary := stdout
		if *out == "-" {
			summary = stderr
		}
		fmt.Fprintf(summary, "packed %d files (%d payload bytes) into %s\n", len(files), total, *out)
	}
	return exitOK
}

// packInput is one file to pack.
type packInput struct {
	path string
	name string
}

// collectInputs expands directories and checks every name (validity and
// uniqueness) before any output exists.
func collectInputs(args []string) ([]packInput, error) {
	var files []packInput
	seen := make(map[string]string)
	add := func(path string) error {
		name := filepath.Base(path)
		if err := desformat.ValidateName(name); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if prev, dup := seen[name]; dup {
			return fmt.Errorf("%w: %s and %s are both named %q", desformat.ErrDuplicateName, prev, path, name)
		}
		seen[name] = path
		files = append(files, packInput{path: path, name: name})
		return nil
	}
	for _, arg := range args {
		st, err := os.Stat(arg)
		if err != nil {
			return nil, err
		}
		switch {
		case st.Mode().IsRegular():
			err = add(arg)
		case st.IsDir():
			err = filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.Type().IsRegular() {
					return add(path)
				}
				return nil // directories recurse; symlinks and devices are skipped
			})
		default:
			err = fmt.Errorf("%s: not a regular file or directory", arg)
		}
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// writeArchiveTo writes the archive to path ("-": stdout). A file is
// written under a temporary name and renamed when complete, so a failed
// pack never leaves a truncated archive behind.
func writeArchiveTo(ctx context.Context, path string, stdout io.Writer, files []packInput, opts desformat.WriterOptions) (total int64, err error) {
	if path == "-" {
		return packFiles(ctx, stdout, files, opts)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if total, err = packFiles(ctx, tmp, files, opts); err != nil {
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return 0, err
	}
	return total, os.Rename(tmp.Name(), path)
}

func packFiles(ctx context.Context, out io.Writer, files []packInput, opts desformat.WriterOptions) (int64, error) {
	w, err := desformat.NewWriter(out, opts)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, in := range files {
		n, err := packOne(ctx, w, in)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, w.Close()
}

func packOne(ctx context.Context, w *desformat.Writer, in packInput) (int64, error) {
	f, err := os.Open(in.path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	err = w.Add(ctx, desformat.FileHeader{Name: in.name, Size: st.Size()}, f)
	if errors.Is(err, desformat.ErrSizeMismatch) {
		err = fmt.Errorf("%w (did %s change while packing?)", err, in.path)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", in.path, err)
	}
	return st.Size(), nil
}
