package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/progress"
)

func runPack(args []string, stdout, stderr io.Writer) int {
	c := newCommand("pack", "-o ARCHIVE [flags] FILE|DIR...",
		`Write an archive holding the given files and every regular file below the
given directories (symbolic links and devices below them are skipped). Paths
are stored like GNU tar stores them: as given, cleaned, with leading "/" and
"../" removed, so 'des pack -o x.des dir' stores dir/sub/a.txt and
'des pack -o x.des /data/dir' stores data/dir/sub/a.txt. Names cannot hold
"/", so a path is stored percent-escaped (dir%2Fsub%2Fa.txt), which DES v1
readers read as a plain name; des ls shows it as dir/sub/a.txt again.
Two inputs with the same path are an error. Inputs are checked before
anything is written, and the archive appears under its name only when
complete. Use -o - to write the archive to stdout. A progress bar is shown
on stderr when it is a terminal (not with -q).`, stdout, stderr)
	out := c.fs.String("o", "", "output archive `path` (required; - for stdout)")
	var threshold int64
	c.fs.Var(sizeFlag{&threshold}, "external-threshold", "store payloads of at least this many `bytes` (K/M/G suffixes ok) in --external-root; 0 disables")
	extRoot := c.fs.String("external-root", "", "`DIR` laid out like the bucket that receives external payloads as DIR/PREFIX/_bigFiles/NAME")
	extPrefix := c.fs.String("external-prefix", "", "key `PREFIX` for external payloads")
	quiet := c.fs.Bool("q", false, "no summary and no progress bar")
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
	files, err := collectInputs(inputs, *out, stderr)
	if err != nil {
		return c.fail(err)
	}
	opts := desformat.WriterOptions{ExternalThreshold: threshold, ExternalPrefix: *extPrefix, BufferSize: packWriteBuffer}
	if threshold > 0 {
		if err := os.MkdirAll(*extRoot, 0o755); err != nil {
			return c.fail(err)
		}
		if opts.External, err = openExternalStore(*extRoot); err != nil {
			return c.fail(err)
		}
	}
	// The live heap is the list of names and bounded read-ahead; the default GC target would
	// collect it over and over for nothing while 100,000 small files stream through.
	debug.SetGCPercent(400)
	bar := progress.New(stderr, *quiet, "des pack", len(files), 0)
	total, err := writeArchiveTo(context.Background(), *out, stdout, files, opts, bar)
	bar.Finish()
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

// packWriteBuffer: the archive goes out in 1 MiB writes (400 system calls for 100,000 files of
// 4 KiB, where tar makes 40,000 of 10 KiB).
const packWriteBuffer = 1 << 20

// packInput is one file to pack.
type packInput struct {
	path string // where it is read from
	name string // the stored name: escapePath of its archive path
}

// collectInputs expands directories and checks every name (validity and uniqueness) before any
// output exists. The archive being written is skipped if a walk meets it, as tar does.
func collectInputs(args []string, out string, stderr io.Writer) ([]packInput, error) {
	c := inputCollector{stderr: stderr}
	if len(args) > 1 {
		// One argument cannot repeat a path: a walk visits each file once, and archivePath and
		// escapePath keep distinct paths below one root distinct. Only several arguments can
		// overlap, so only they pay for a set of 100,000 names.
		c.seen = make(map[string]string)
	}
	if out != "-" {
		c.out, _ = os.Stat(out) // no archive yet: nothing to skip
	}
	for _, arg := range args {
		if err := c.collect(arg); err != nil {
			return nil, err
		}
	}
	return c.files, nil
}

type inputCollector struct {
	files  []packInput
	seen   map[string]string // stored name -> the input path it came from
	out    fs.FileInfo       // the existing output archive, or nil
	stderr io.Writer
}

func (c *inputCollector) collect(arg string) error {
	st, err := os.Stat(arg)
	if err != nil {
		return err
	}
	switch {
	case st.Mode().IsRegular():
		return c.add(arg)
	case st.IsDir():
		// WalkDir visits names in lexical order, so the archive order does not depend on the
		// file system.
		return filepath.WalkDir(arg, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil // directories recurse; symlinks and devices are skipped
			}
			if c.isArchive(path, d) {
				fmt.Fprintf(c.stderr, "des pack: %s: skipped, it is the archive being written\n", path)
				return nil
			}
			return c.add(path)
		})
	}
	return fmt.Errorf("%s: not a regular file or directory", arg)
}

// isArchive reports whether path is the output archive (only its base name costs a stat).
func (c *inputCollector) isArchive(path string, d fs.DirEntry) bool {
	if c.out == nil || d.Name() != c.out.Name() {
		return false
	}
	st, err := os.Stat(path)
	return err == nil && os.SameFile(st, c.out)
}

func (c *inputCollector) add(path string) error {
	ap := archivePath(path)
	if ap == "" {
		return fmt.Errorf("%s: no path left to store after removing leading \"/\" and \"../\"", path)
	}
	name := escapePath(ap)
	if err := desformat.ValidateName(name); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if c.seen != nil {
		if prev, dup := c.seen[name]; dup {
			return fmt.Errorf("%w: %s and %s are both stored as %q", desformat.ErrDuplicateName, prev, path, ap)
		}
		c.seen[name] = path
	}
	c.files = append(c.files, packInput{path: path, name: name})
	return nil
}

// writeArchiveTo writes the archive to path ("-": stdout). A file is
// written under a temporary name and renamed when complete, so a failed
// pack never leaves a truncated archive behind.
func writeArchiveTo(ctx context.Context, path string, stdout io.Writer, files []packInput, opts desformat.WriterOptions, bar *progress.Bar) (total int64, err error) {
	if path == "-" {
		return packFiles(ctx, stdout, files, opts, bar)
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
	if total, err = packFiles(ctx, tmp, files, opts, bar); err != nil {
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

// packFiles appends files in order while a prefetcher reads ahead of it.
func packFiles(ctx context.Context, out io.Writer, files []packInput, opts desformat.WriterOptions, bar *progress.Bar) (int64, error) {
	w, err := desformat.NewWriter(out, opts)
	if err != nil {
		return 0, err
	}
	pf := startPrefetch(files, prefetchWorkers(), prefetchWindow)
	defer pf.stop()
	var total int64
	var br bytes.Reader
	for _, in := range files {
		l := pf.next()
		if err := packOne(ctx, w, in, l, &br); err != nil {
			return 0, errors.Join(err, w.Abort())
		}
		total += l.size
		bar.Add(1, l.size)
	}
	return total, w.Close()
}

func packOne(ctx context.Context, w *desformat.Writer, in packInput, l *loaded, br *bytes.Reader) error {
	if l.err != nil {
		return l.err
	}
	if l.stream != nil {
		defer l.stream.Close()
	}
	err := w.Add(ctx, desformat.FileHeader{Name: in.name, Size: l.size}, l.reader(br))
	if errors.Is(err, desformat.ErrSizeMismatch) {
		err = fmt.Errorf("%w (did %s change while packing?)", err, in.path)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", in.path, err)
	}
	return nil
}
