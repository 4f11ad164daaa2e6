package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/pkg/client"
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
	c := newHTTPCommand(name, synopsis, help, stdout, stderr)
	addS3Flags(c.fs)
	return c
}

// newHTTPCommand is a verb that talks to a DES service rather than to archives, so it has no S3 flags.
func newHTTPCommand(name, synopsis, help string, stdout, stderr io.Writer) *command {
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
	var se *client.StatusError
	switch {
	case errors.As(err, &se) && se.Status == http.StatusNotFound:
		return "the reader found no such file: check the name and --container"
	case errors.As(err, &se):
		return "the service refused the request; the message above is its answer"
	case errors.Is(err, client.ErrIncomplete):
		return "the connection was cut: the sidecar cuts a response when it finds damage, see its log"
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

// openArchive opens the archive at path for random access: a local file, or s3://bucket/key read
// with ranged GETs (the first one, a suffix range, also tells the size).
func openArchive(ctx context.Context, path string) (io.ReaderAt, int64, io.Closer, error) {
	if strings.HasPrefix(path, "s3://") {
		return openS3Archive(ctx, path)
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

// openExternalStore returns the store for --external-root ("" means none): a
// directory laid out like the bucket, or s3://bucket itself.
func openExternalStore(root string) (desformat.ExternalStore, error) {
	switch {
	case root == "":
		return nil, nil
	case strings.HasPrefix(root, "s3://"):
		bucket, key, err := parseS3URL(root)
		if err == nil && key != "" {
			err = fmt.Errorf("%s: an external root is a whole bucket (s3://BUCKET): keys are stored in full", root)
		}
		if err != nil {
			return nil, err
		}
		store, err := newS3Store(context.Background())
		if err != nil {
			return nil, err
		}
		return store.Blobs(bucket, objstore.UploadOptions{}), nil
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
// An s3:// archive without one finds its external payloads in its own bucket.
func openReader(ctx context.Context, path, externalRoot string, prefetchMeta bool) (*desformat.Reader, io.Closer, error) {
	if externalRoot == "" && strings.HasPrefix(path, "s3://") {
		if bucket, _, err := parseS3URL(path); err == nil {
			externalRoot = "s3://" + bucket
		}
	}
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

// s3Flags holds the S3 settings of the running verb. Every verb gets the flags (see newCommand);
// their defaults come from the environment, so scripts usually set only variables:
//
//	DES_S3_ENDPOINT, AWS_REGION, DES_S3_PATH_STYLE, DES_S3_CREDENTIALS_DIR, DES_S3_CA_FILE,
//	and credentials as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or any source of the AWS default chain).
//
// des runs one verb per process, so one package-level value is enough.
var s3Flags struct {
	endpoint, region, credentialsDir, caFile string
	pathStyle                                bool
}

func addS3Flags(fs *flag.FlagSet) {
	resetS3Store() // a new verb (tests run several per process) builds its store from its own flags
	pathStyle, _ := strconv.ParseBool(os.Getenv("DES_S3_PATH_STYLE"))
	fs.StringVar(&s3Flags.endpoint, "s3-endpoint", os.Getenv("DES_S3_ENDPOINT"), "S3 endpoint `URL` for s3:// paths; empty for AWS (env DES_S3_ENDPOINT)")
	fs.StringVar(&s3Flags.region, "s3-region", os.Getenv("AWS_REGION"), "S3 `region` (env AWS_REGION)")
	fs.BoolVar(&s3Flags.pathStyle, "s3-path-style", pathStyle, "path-style S3 addressing, for MinIO, HCP, versitygw (env DES_S3_PATH_STYLE)")
	fs.StringVar(&s3Flags.credentialsDir, "s3-credentials-dir", os.Getenv("DES_S3_CREDENTIALS_DIR"),
		"`DIR` with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY files; default: the AWS chain (env vars, profiles, roles)")
	fs.StringVar(&s3Flags.caFile, "s3-ca-file", os.Getenv("DES_S3_CA_FILE"), "extra PEM CA `file` for the S3 endpoint (env DES_S3_CA_FILE)")
}

// cliAttempts keeps a wrong endpoint from hanging an interactive command in retries.
const cliAttempts = 3

var (
	s3StoreOnce sync.Once
	s3Store     *objstore.Store
	s3StoreErr  error
)

// newS3Store returns the store for s3:// paths, built once per run from the flags.
func newS3Store(ctx context.Context) (*objstore.Store, error) {
	s3StoreOnce.Do(func() {
		s3Store, s3StoreErr = objstore.New(ctx, objstore.Config{
			Endpoint: s3Flags.endpoint, Region: s3Flags.region, PathStyle: s3Flags.pathStyle,
			CredentialsDir: s3Flags.credentialsDir, CAFile: s3Flags.caFile, MaxAttempts: cliAttempts,
		})
	})
	return s3Store, s3StoreErr
}

func resetS3Store() {
	s3StoreOnce = sync.Once{}
	s3Store, s3StoreErr = nil, nil
}

// parseS3URL splits s3://bucket/key; key may be empty.
func parseS3URL(s string) (bucket, key string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("%q is not an s3://BUCKET/KEY URL", s)
	}
	return u.Host, strings.TrimPrefix(u.Path, "/"), nil
}

// openS3Archive opens s3://bucket/key with one suffix-range GET that fetches the tail (footer and,
// usually, the index) and the object's size.
func openS3Archive(ctx context.Context, path string) (io.ReaderAt, int64, io.Closer, error) {
	bucket, key, err := parseS3URL(path)
	if err == nil && key == "" {
		err = fmt.Errorf("%s: no object key", path)
	}
	if err != nil {
		return nil, 0, nil, err
	}
	store, err := newS3Store(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	r, _, err := store.OpenReaderAt(ctx, bucket, key, desformat.DefaultTailSize)
	if err != nil {
		return nil, 0, nil, err
	}
	return &readAhead{r: r, size: r.Size()}, r.Size(), noClose{}, nil
}

// noClose: an ObjectReader holds no connection between reads.
type noClose struct{}

func (noClose) Close() error { return nil }

// readAheadWindow is the least a GET fetches: des cat copies in 32 KiB reads, which would otherwise
// cost one request each.
const readAheadWindow = 1 << 20

// readAhead widens small reads to readAheadWindow and keeps the last window, so sequential reads of
// a payload cost one GET per window.
type readAhead struct {
	r    *objstore.ObjectReader
	size int64

	mu  sync.Mutex
	buf []byte
	off int64
}

func (a *readAhead) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= a.size || len(p) >= readAheadWindow {
		return a.r.ReadAt(p, off)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if off < a.off || off+int64(len(p)) > a.off+int64(len(a.buf)) {
		buf := make([]byte, min(readAheadWindow, a.size-off))
		if _, err := a.r.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		a.buf, a.off = buf, off
	}
	n := copy(p, a.buf[off-a.off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
