// Package image checks that the two ways of building the DES manager image agree: the Dockerfile at
// the repository root (for people with Docker) and `make image` (hack/image.sh with hack/tools/image,
// no Docker engine), which writes a docker-archive tarball. The test builds the tarball, reads it
// with the standard library only and compares it with the Dockerfile's final stage: entrypoint, user,
// the files in the image, and that /manager is a static linux/amd64 executable.
package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

const (
	// wantTag is the tag `make image` writes by default (Makefile IMAGE, hack/image.sh).
	wantTag = "des.datavision.io/manager:dev"
	// managerPath is where the image has the manager binary.
	managerPath = "/manager"
	// caBundle is the CA certificates file; in the Dockerfile it comes from the distroless base.
	caBundle = "/etc/ssl/certs/ca-certificates.crt"
)

// baseFiles are the files the Dockerfile's base (distroless static) provides that the image
// hack/image.sh builds also has. Every other file of the image must come from a COPY.
var baseFiles = []string{caBundle}

func TestDockerfileMatchesImage(t *testing.T) {
	root := repoRoot(t)
	dockerfile := filepath.Join(root, "Dockerfile")
	text, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	df, err := parseFinalStage(string(text))
	if err != nil {
		t.Fatalf("%s: %v", dockerfile, err)
	}

	out := filepath.Join(t.TempDir(), "manager-image.tar")
	buildImage(t, root, out)
	img, err := readImage(out)
	if err != nil {
		t.Fatalf("read %s: %v", out, err)
	}
	for _, c := range checkImage(df, img) {
		t.Run(c.name, func(t *testing.T) {
			if c.problem != "" {
				t.Errorf("%s\n(the Dockerfile's final stage and hack/image.sh must describe the same image)", c.problem)
			}
		})
	}
}

// check is one comparison of the image with the Dockerfile; problem is empty when they agree.
type check struct {
	name, problem string
}

// checkImage compares an image with the Dockerfile's final stage and the fixed parts of the contract.
func checkImage(df stage, img *image) []check {
	var checks []check
	add := func(name, problem string) { checks = append(checks, check{name, problem}) }
	equal := func(name, what string, got, want any) {
		problem := ""
		if !reflect.DeepEqual(got, want) {
			problem = fmt.Sprintf("%s: the image has %#v, want %#v", what, got, want)
		}
		add(name, problem)
	}
	equal("tag", "manifest.json RepoTags", img.manifest.RepoTags, []string{wantTag})
	equal("os", "config os", img.config.OS, "linux")
	equal("architecture", "config architecture", img.config.Architecture, "amd64")
	equal("entrypoint", "config Entrypoint (Dockerfile ENTRYPOINT)", img.config.Config.Entrypoint, df.Entrypoint)
	equal("cmd", "config Cmd (Dockerfile CMD)", img.config.Config.Cmd, df.Cmd)
	equal("user", "config User (Dockerfile USER)", img.config.Config.User, df.User)

	want := slices.Concat(df.Copies, baseFiles)
	sort.Strings(want)
	want = slices.Compact(want)
	got := img.fileNames()
	problem := ""
	if !slices.Equal(got, want) {
		problem = fmt.Sprintf("the image's regular files are %q, the Dockerfile's final stage gives %q (its COPY destinations and the base's %q)\n"+
			"  only in the image: %q\n  only in the Dockerfile: %q",
			got, want, baseFiles, minus(got, want), minus(want, got))
	}
	add("files", problem)
	problem = ""
	if len(img.others) > 0 {
		problem = fmt.Sprintf("the image has entries that are neither directories nor regular files: %q", img.others)
	}
	add("no other entries", problem)
	add("manager is a static executable", staticExecutable(img, managerPath))
	problem = ""
	if f, ok := img.files[caBundle]; ok && len(f.data) == 0 {
		problem = caBundle + " is empty"
	}
	add("CA bundle not empty", problem)
	return checks
}

// staticExecutable says what is wrong with the file at p of the image as a static linux/amd64
// executable for a base without libc, or "".
func staticExecutable(img *image, p string) string {
	f, ok := img.files[p]
	if !ok {
		return "the image has no " + p
	}
	var problems []string
	if f.mode&0o111 == 0 {
		problems = append(problems, fmt.Sprintf("%s has mode %04o, want it executable", p, f.mode))
	}
	bin, err := elf.NewFile(bytes.NewReader(f.data))
	if err != nil {
		return strings.Join(append(problems, fmt.Sprintf("%s is not an ELF file: %v", p, err)), "\n")
	}
	defer bin.Close()
	if bin.Class != elf.ELFCLASS64 || bin.Machine != elf.EM_X86_64 {
		problems = append(problems, fmt.Sprintf("%s is %v %v, want ELFCLASS64 EM_X86_64 (the config says amd64)", p, bin.Class, bin.Machine))
	}
	for _, prog := range bin.Progs {
		if prog.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(prog.Open())
			problems = append(problems, fmt.Sprintf("%s has a PT_INTERP program header (%q): it is dynamically linked, "+
				"but the distroless static base has no libc (build it with CGO_ENABLED=0)", p, strings.TrimRight(string(interp), "\x00")))
		}
	}
	return strings.Join(problems, "\n")
}

// repoRoot walks up from the working directory to the directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// buildImage runs `hack/image.sh manager OUT` with the default tag (IMAGE unset).
func buildImage(t *testing.T, root, out string) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("hack/image.sh needs go on PATH: %v", err)
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(root, "hack", "image.sh"), "manager", out)
	cmd.Dir = root
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "IMAGE=") })
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/image.sh manager %s: %v\n%s", out, err, output)
	}
}

// stage is what the test needs of a Dockerfile's final stage.
type stage struct {
	// Copies are the absolute paths of the files the COPY and ADD instructions create, in order.
	Copies     []string
	User       string
	Entrypoint []string // exec (JSON) form only
	Cmd        []string // exec (JSON) form only; nil when there is no CMD
}

// parseFinalStage parses the instructions after the last FROM of a Dockerfile. It knows the few
// instructions a final stage of a distroless image needs and refuses the others (RUN, for one,
// would put files into the image that nothing here could account for).
func parseFinalStage(text string) (stage, error) {
	var final []string // logical lines of the final stage, continuations joined
	seenFrom := false
	for _, line := range logicalLines(text) {
		instr, _, _ := strings.Cut(line, " ")
		if strings.EqualFold(instr, "FROM") {
			seenFrom = true
			final = final[:0]
			continue
		}
		if seenFrom {
			final = append(final, line)
		}
	}
	if !seenFrom {
		return stage{}, errors.New("no FROM instruction")
	}
	var s stage
	workdir := "/"
	for _, line := range final {
		instr, args, _ := strings.Cut(line, " ")
		args = strings.TrimSpace(args)
		switch strings.ToUpper(instr) {
		case "COPY", "ADD":
			dsts, err := copyDestinations(args, workdir)
			if err != nil {
				return stage{}, fmt.Errorf("%s: %w", line, err)
			}
			s.Copies = append(s.Copies, dsts...)
		case "USER":
			s.User = args
		case "ENTRYPOINT", "CMD":
			var argv []string
			if err := json.Unmarshal([]byte(args), &argv); err != nil {
				return stage{}, fmt.Errorf("%s: want the exec form, a JSON array of strings: %w", line, err)
			}
			if strings.EqualFold(instr, "ENTRYPOINT") {
				s.Entrypoint = argv
			} else {
				s.Cmd = argv
			}
		case "WORKDIR":
			workdir = path.Join(workdir, args)
		case "ARG", "ENV", "LABEL", "EXPOSE", "STOPSIGNAL":
		default:
			return stage{}, fmt.Errorf("%s: %s in the final stage is not supported by this test", line, instr)
		}
	}
	return s, nil
}

// logicalLines returns a Dockerfile's instructions, one a string: comment and blank lines dropped,
// lines ending in a backslash joined with the next.
func logicalLines(text string) []string {
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue // also inside a continuation, as Docker does
		}
		cont := strings.HasSuffix(line, `\`)
		line = strings.TrimSpace(strings.TrimSuffix(line, `\`))
		if cur.Len() > 0 && line != "" {
			cur.WriteByte(' ')
		}
		cur.WriteString(line)
		if !cont {
			lines = append(lines, cur.String())
			cur.Reset()
		}
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

// copyDestinations gives the files a COPY or ADD creates from its arguments: options (--from=…),
// then sources and a destination, either space-separated or as a JSON array. A destination ending
// in / is a directory that receives each source under its base name.
func copyDestinations(args, workdir string) ([]string, error) {
	fields := strings.Fields(args)
	for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
		fields = fields[1:]
	}
	rest := strings.Join(fields, " ")
	var words []string
	if strings.HasPrefix(rest, "[") {
		if err := json.Unmarshal([]byte(rest), &words); err != nil {
			return nil, fmt.Errorf("JSON form: %w", err)
		}
	} else {
		words = strings.Fields(rest)
	}
	if len(words) < 2 {
		return nil, errors.New("want at least one source and a destination")
	}
	srcs, dst := words[:len(words)-1], words[len(words)-1]
	isDir := strings.HasSuffix(dst, "/")
	if !path.IsAbs(dst) {
		dst = path.Join(workdir, dst)
	}
	if !isDir {
		if len(srcs) > 1 {
			return nil, fmt.Errorf("%d sources need a destination directory ending in /", len(srcs))
		}
		return []string{path.Clean(dst)}, nil
	}
	var out []string
	for _, src := range srcs {
		out = append(out, path.Join(dst, path.Base(src)))
	}
	return out, nil
}

func TestParseFinalStage(t *testing.T) {
	const dockerfile = `# syntax=docker/dockerfile:1
FROM golang:1.26 AS build
WORKDIR /src
COPY . .
RUN go build -o /out/manager ./cmd/manager && \
    go build -o /out/tool ./cmd/tool
USER root

from scratch
COPY --from=build --chown=1:1 /out/manager /manager
copy ["/out/tool", "/usr/bin/tool"]
COPY --from=build /out/a /out/b \
  # a comment inside a continuation
  /opt/
WORKDIR /srv
COPY --from=build /out/c data/
ENV A=b
USER 65532:65532
ENTRYPOINT ["/manager", "run"]
CMD ["--flag"]
`
	got, err := parseFinalStage(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	want := stage{
		Copies:     []string{"/manager", "/usr/bin/tool", "/opt/a", "/opt/b", "/srv/data/c"},
		User:       "65532:65532",
		Entrypoint: []string{"/manager", "run"},
		Cmd:        []string{"--flag"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseFinalStage:\n got %#v\nwant %#v", got, want)
	}

	bad := []struct {
		name, dockerfile, wantErr string
	}{
		{"no FROM", "COPY a /a\n", "no FROM"},
		{"shell-form ENTRYPOINT", "FROM scratch\nENTRYPOINT /manager\n", "exec form"},
		{"RUN in the final stage", "FROM scratch\nRUN touch /x\n", "RUN in the final stage"},
		{"several sources to a file", "FROM scratch\nCOPY a b /c\n", "destination directory"},
		{"COPY without destination", "FROM scratch\nCOPY --from=build /a\n", "at least one source"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseFinalStage(c.dockerfile)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("parseFinalStage(%q) = error %v, want one containing %q", c.dockerfile, err, c.wantErr)
			}
		})
	}
}

// image is a docker-archive tarball as `docker save` and hack/tools/image write it.
type image struct {
	manifest struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	config struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Config       struct {
			User       string
			Entrypoint []string
			Cmd        []string
		} `json:"config"`
	}
	files  map[string]imageFile // regular files of the merged layers, by absolute path
	others []string             // entries that are neither directories nor regular files
}

type imageFile struct {
	mode int64
	data []byte
}

func (img *image) fileNames() []string {
	names := make([]string, 0, len(img.files))
	for name := range img.files {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// readImage reads a docker-archive tarball: manifest.json names the config and the layers (tar,
// gzip-compressed or not), which are applied in order, whiteouts included.
func readImage(file string) (*image, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		entries[path.Clean(hdr.Name)] = data
	}

	img := &image{files: map[string]imageFile{}}
	manifestJSON, ok := entries["manifest.json"]
	if !ok {
		return nil, errors.New("no manifest.json: not a docker-archive tarball")
	}
	var manifests []json.RawMessage
	if err := json.Unmarshal(manifestJSON, &manifests); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	if len(manifests) != 1 {
		return nil, fmt.Errorf("manifest.json has %d images, want 1", len(manifests))
	}
	if err := json.Unmarshal(manifests[0], &img.manifest); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	configJSON, ok := entries[path.Clean(img.manifest.Config)]
	if !ok {
		return nil, fmt.Errorf("config %q named by manifest.json is not in the tarball", img.manifest.Config)
	}
	if err := json.Unmarshal(configJSON, &img.config); err != nil {
		return nil, fmt.Errorf("config %s: %w", img.manifest.Config, err)
	}
	if len(img.manifest.Layers) == 0 {
		return nil, errors.New("manifest.json names no layers")
	}
	for _, layer := range img.manifest.Layers {
		data, ok := entries[path.Clean(layer)]
		if !ok {
			return nil, fmt.Errorf("layer %q named by manifest.json is not in the tarball", layer)
		}
		if err := img.applyLayer(data); err != nil {
			return nil, fmt.Errorf("layer %s: %w", layer, err)
		}
	}
	return img, nil
}

func (img *image) applyLayer(data []byte) error {
	var r io.Reader = bytes.NewReader(data)
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b { // gzip magic
		zr, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Join("/", hdr.Name)
		dir, base := path.Split(name)
		switch {
		case base == ".wh..wh..opq": // opaque directory: drop what lower layers had in it
			for n := range img.files {
				if strings.HasPrefix(n, dir) {
					delete(img.files, n)
				}
			}
			continue
		case strings.HasPrefix(base, ".wh."):
			gone := path.Join(dir, strings.TrimPrefix(base, ".wh."))
			for n := range img.files {
				if n == gone || strings.HasPrefix(n, gone+"/") {
					delete(img.files, n)
				}
			}
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			body, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			img.files[name] = imageFile{mode: hdr.Mode, data: body}
		case tar.TypeDir:
		default:
			img.others = append(img.others, fmt.Sprintf("%s (type %q)", name, hdr.Typeflag))
		}
	}
}

// minus lists the elements of a that are not in b.
func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// TestCheckImageCatchesDrift runs the checks on small docker-archive tarballs written here: one that
// agrees with a Dockerfile stage, and variants that must each fail exactly the named checks.
func TestCheckImageCatchesDrift(t *testing.T) {
	static, dynamic := fakeELF(t, ""), fakeELF(t, "/lib64/ld-linux-x86-64.so.2")
	goodStage := stage{Copies: []string{managerPath}, User: "65532:65532", Entrypoint: []string{managerPath}}
	goodLayer := func() []layerEntry {
		return []layerEntry{
			{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "etc/ssl/certs/", Mode: 0o755}},
			{hdr: tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(caBundle, "/"), Mode: 0o644}, data: []byte("-----BEGIN CERTIFICATE-----\n")},
			{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "manager", Mode: 0o755}, data: static},
		}
	}
	type variant struct {
		stage  stage
		spec   archiveSpec
		layers [][]layerEntry
	}
	cases := []struct {
		name       string
		change     func(v *variant)
		wantFailed []string
	}{
		{"agrees", func(*variant) {}, nil},
		{"agrees, gzip-compressed layer", func(v *variant) { v.spec.gzip = true }, nil},
		{"agrees, a file added then whited out by a second layer", func(v *variant) {
			v.layers[0] = append(v.layers[0], layerEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "des", Mode: 0o755}, data: static})
			v.layers = append(v.layers, []layerEntry{{hdr: tar.Header{Typeflag: tar.TypeReg, Name: ".wh.des"}}})
		}, nil},
		{"Dockerfile gains a COPY", func(v *variant) { v.stage.Copies = append(v.stage.Copies, "/des") }, []string{"files"}},
		{"image gains a file", func(v *variant) {
			v.layers[0] = append(v.layers[0], layerEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "des", Mode: 0o755}, data: static})
		}, []string{"files"}},
		{"image gains a symlink", func(v *variant) {
			v.layers[0] = append(v.layers[0], layerEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "des", Linkname: "manager"}})
		}, []string{"no other entries"}},
		{"image lacks the CA bundle", func(v *variant) { v.layers[0] = v.layers[0][2:] }, []string{"files"}},
		{"other USER", func(v *variant) { v.stage.User = "root" }, []string{"user"}},
		{"other ENTRYPOINT", func(v *variant) { v.stage.Entrypoint = []string{"/manager", "run"} }, []string{"entrypoint"}},
		{"Dockerfile gains a CMD", func(v *variant) { v.stage.Cmd = []string{"--help"} }, []string{"cmd"}},
		{"other tag", func(v *variant) { v.spec.tag = "ghcr.io/datavision/des:latest" }, []string{"tag"}},
		{"arm64", func(v *variant) { v.spec.arch = "arm64" }, []string{"architecture"}},
		{"dynamically linked manager", func(v *variant) { v.layers[0][2].data = dynamic }, []string{"manager is a static executable"}},
		{"manager not executable", func(v *variant) { v.layers[0][2].hdr.Mode = 0o644 }, []string{"manager is a static executable"}},
		{"manager not ELF", func(v *variant) { v.layers[0][2].data = []byte("#!/bin/sh\n") }, []string{"manager is a static executable"}},
		{"empty CA bundle", func(v *variant) { v.layers[0][1].data = nil }, []string{"CA bundle not empty"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := variant{
				stage:  goodStage,
				spec:   archiveSpec{tag: wantTag, arch: "amd64", user: "65532:65532", entrypoint: []string{managerPath}},
				layers: [][]layerEntry{goodLayer()},
			}
			v.stage.Copies = slices.Clone(v.stage.Copies)
			c.change(&v)
			file := writeArchive(t, v.spec, v.layers)
			img, err := readImage(file)
			if err != nil {
				t.Fatalf("readImage: %v", err)
			}
			var failed []string
			for _, chk := range checkImage(v.stage, img) {
				if chk.problem != "" {
					failed = append(failed, chk.name)
					t.Logf("%s: %s", chk.name, chk.problem)
				}
			}
			if !slices.Equal(failed, c.wantFailed) {
				t.Errorf("failed checks %q, want %q", failed, c.wantFailed)
			}
		})
	}
}

// archiveSpec is the config and tag of a docker-archive tarball writeArchive writes.
type archiveSpec struct {
	tag, arch, user string
	entrypoint      []string
	gzip            bool
}

type layerEntry struct {
	hdr  tar.Header
	data []byte
}

// writeArchive writes a docker-archive tarball (manifest.json, config, layers) into a temporary file.
func writeArchive(t *testing.T, spec archiveSpec, layers [][]layerEntry) string {
	t.Helper()
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	put := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var layerNames []string
	for i, entries := range layers {
		var buf bytes.Buffer
		var w io.Writer = &buf
		var zw *gzip.Writer
		name := fmt.Sprintf("layer%d.tar", i)
		if spec.gzip {
			zw = gzip.NewWriter(&buf)
			w, name = zw, name+".gz"
		}
		lw := tar.NewWriter(w)
		for _, e := range entries {
			hdr := e.hdr
			hdr.Size = int64(len(e.data))
			if err := lw.WriteHeader(&hdr); err != nil {
				t.Fatal(err)
			}
			if _, err := lw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
		if err := lw.Close(); err != nil {
			t.Fatal(err)
		}
		if zw != nil {
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
		}
		put(name, buf.Bytes())
		layerNames = append(layerNames, name)
	}
	put("sha256:0123", mustJSON(map[string]any{
		"os": "linux", "architecture": spec.arch,
		"config": map[string]any{"User": spec.user, "Entrypoint": spec.entrypoint},
	}))
	put("manifest.json", mustJSON([]map[string]any{{"Config": "sha256:0123", "RepoTags": []string{spec.tag}, "Layers": layerNames}}))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// fakeELF returns a minimal x86-64 ELF executable header, with a PT_INTERP program header naming
// interp when interp is not empty (what a dynamically linked binary has).
func fakeELF(t *testing.T, interp string) []byte {
	t.Helper()
	const ehsize, phentsize = 64, 56
	hdr := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Ehsize: ehsize, Phentsize: phentsize, Shentsize: 64,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS], hdr.Ident[elf.EI_DATA], hdr.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	var progs []elf.Prog64
	if interp != "" {
		hdr.Phoff, hdr.Phnum = ehsize, 1
		n := uint64(len(interp) + 1)
		progs = append(progs, elf.Prog64{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Off: ehsize + phentsize, Filesz: n, Memsz: n, Align: 1})
	}
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, hdr); err != nil {
		t.Fatal(err)
	}
	if err := binary.Write(&buf, binary.LittleEndian, progs); err != nil {
		t.Fatal(err)
	}
	if interp != "" {
		buf.WriteString(interp + "\x00")
	}
	return buf.Bytes()
}
