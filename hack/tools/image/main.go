// Command image writes a single-layer container image as a docker-archive tarball (manifest.json,
// config, layer), which both `docker load` and `ctr images import` accept, without a Docker engine.
// `make image` uses it for the DES manager image (the same contract as the Dockerfile's distroless
// image: the static manager binary as entrypoint, CA certificates, user 65532, nothing else), and the
// test world uses it for its pause image.
//
//	image --tag des.datavision.io/manager:dev --out bin/manager-image.tar \
//	      --file bin/linux/manager=/manager:0755 --file /etc/ssl/certs/ca-certificates.crt=/etc/ssl/certs/ca-certificates.crt:0644 \
//	      --entrypoint /manager --user 65532:65532
//
// The image is reproducible: file times are the Unix epoch and the config has no creation time, so the
// same inputs give the same image ID.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// file is one file of the layer: its content comes from src on this machine.
type file struct {
	src, dst string
	mode     int64
}

type fileFlags []file

func (f *fileFlags) String() string { return fmt.Sprint(*f) }

// Set parses SRC=DST:MODE (MODE in octal).
func (f *fileFlags) Set(v string) error {
	src, rest, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("--file %q: want SRC=DST:MODE", v)
	}
	dst, modeText, ok := strings.Cut(rest, ":")
	if !ok {
		return fmt.Errorf("--file %q: want SRC=DST:MODE", v)
	}
	mode, err := strconv.ParseInt(modeText, 8, 32)
	if err != nil {
		return fmt.Errorf("--file %q: mode: %w", v, err)
	}
	if !path.IsAbs(dst) || path.Clean(dst) != dst {
		return fmt.Errorf("--file %q: the destination must be a clean absolute path", v)
	}
	*f = append(*f, file{src: src, dst: dst, mode: mode})
	return nil
}

func main() {
	var files fileFlags
	tag := flag.String("tag", "", "image reference written into the tarball, e.g. des.datavision.io/manager:dev")
	out := flag.String("out", "", "tarball to write")
	entrypoint := flag.String("entrypoint", "", "entrypoint (one path)")
	user := flag.String("user", "65532:65532", "user:group the image runs as")
	flag.Var(&files, "file", "SRC=DST:MODE, a file of the layer (repeatable)")
	flag.Parse()
	if err := run(*tag, *out, *entrypoint, *user, files); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(tag, out, entrypoint, user string, files []file) error {
	if tag == "" || out == "" || entrypoint == "" || len(files) == 0 {
		return errors.New("--tag, --out, --entrypoint and at least one --file are required")
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("tag %q: %w", tag, err)
	}
	layerTar, err := layerTarball(files)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return fmt.Errorf("append layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config = v1.Config{
		Entrypoint: []string{entrypoint},
		User:       user,
		WorkingDir: "/",
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
	}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	id, err := img.ConfigName()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s (%s)\n", out, ref, id)
	return os.Rename(tmp, out)
}

// layerTarball writes the files, and the directories above them, owned by root with fixed times.
func layerTarball(files []file) ([]byte, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].dst < files[j].dst })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dirs := map[string]bool{}
	for _, f := range files {
		for _, d := range parents(f.dst) {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
		}
		data, err := os.ReadFile(f.src)
		if err != nil {
			return nil, fmt.Errorf("file for %s: %w", f.dst, err)
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.dst, "/"), Mode: f.mode, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// parents lists the directories above p, outermost first ("/etc/ssl/x" gives /etc, /etc/ssl).
func parents(p string) []string {
	var out []string
	for d := path.Dir(p); d != "/"; d = path.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}
