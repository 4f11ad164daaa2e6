package desformat

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Benchmarks (long: run with -bench, not part of go test):
//
//	go test ./internal/desformat -run '^$' -bench . -benchtime 3x -timeout 30m
//
// BenchmarkPack writes the same in-memory payloads to a local file as DES,
// archive/tar and archive/zip (Store), all through a 256 KiB buffer.

const benchBuffer = 256 << 10

func benchNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("DES_20251115_(0E8A%08X_%02X).bin", i, i%256)
	}
	return names
}

type packFunc func(w io.Writer, names []string, payload []byte) error

func packDES(w io.Writer, names []string, payload []byte) error {
	dw, err := NewWriter(w, WriterOptions{BufferSize: benchBuffer})
	if err != nil {
		return err
	}
	ctx := context.Background()
	var src bytes.Reader
	for _, n := range names {
		src.Reset(payload)
		if err := dw.Add(ctx, FileHeader{Name: n, Size: int64(len(payload))}, &src); err != nil {
			return err
		}
	}
	return dw.Close()
}

func packTar(w io.Writer, names []string, payload []byte) error {
	bw := bufio.NewWriterSize(w, benchBuffer)
	tw := tar.NewWriter(bw)
	now := time.Now()
	var src bytes.Reader
	for _, n := range names {
		hdr := &tar.Header{Name: n, Size: int64(len(payload)), Mode: 0o644, Typeflag: tar.TypeReg, ModTime: now, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		src.Reset(payload)
		if _, err := io.Copy(tw, &src); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

func packZip(w io.Writer, names []string, payload []byte) error {
	bw := bufio.NewWriterSize(w, benchBuffer)
	zw := zip.NewWriter(bw)
	var src bytes.Reader
	for _, n := range names {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Store})
		if err != nil {
			return err
		}
		src.Reset(payload)
		if _, err := io.Copy(fw, &src); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

func BenchmarkPack(b *testing.B) {
	for _, shape := range []struct {
		name  string
		count int
		size  int
	}{
		{"100kx4KiB", 100_000, 4 << 10},
		{"1kx1MiB", 1000, 1 << 20},
	} {
		names := benchNames(shape.count)
		payload := pattern(shape.size, 7)
		for _, f := range []struct {
			name string
			fn   packFunc
		}{{"des", packDES}, {"tar", packTar}, {"zip", packZip}} {
			// Same work without the disk: isolates the formats' CPU cost.
			b.Run(shape.name+"-discard/"+f.name, func(b *testing.B) {
				b.SetBytes(int64(shape.count * shape.size))
				b.ReportAllocs()
				for b.Loop() {
					if err := f.fn(io.Discard, names, payload); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*shape.count), "ns/file")
			})
			b.Run(shape.name+"/"+f.name, func(b *testing.B) {
				dir := b.TempDir()
				b.SetBytes(int64(shape.count * shape.size))
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					path := filepath.Join(dir, fmt.Sprintf("out-%d", i))
					out, err := os.Create(path)
					if err != nil {
						b.Fatal(err)
					}
					if err := f.fn(out, names, payload); err != nil {
						b.Fatal(err)
					}
					if err := out.Close(); err != nil {
						b.Fatal(err)
					}
					os.Remove(path) // keep the disk footprint to one archive
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*shape.count), "ns/file")
			})
		}
	}
}

// benchArchive writes a 100k-entry archive (256 B payloads) and the same
// content as a zip, for read benchmarks.
func benchArchive(b *testing.B) (desPath, zipPath string, names []string) {
	b.Helper()
	dir := b.TempDir()
	names = benchNames(100_000)
	payload := pattern(256, 3)
	desPath, zipPath = filepath.Join(dir, "a.des"), filepath.Join(dir, "a.zip")
	for path, fn := range map[string]packFunc{desPath: packDES, zipPath: packZip} {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := fn(f, names, payload); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	return desPath, zipPath, names
}

func BenchmarkRead100k(b *testing.B) {
	desPath, zipPath, names := benchArchive(b)
	ctx := context.Background()
	f, err := os.Open(desPath)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	rng := rand.New(rand.NewPCG(1, 1))

	b.Run("open+1read/des", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r, err := NewReader(f, st.Size(), ReaderOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.ReadFile(ctx, names[rng.IntN(len(names))]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open+1read/zip", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			zr, err := zip.OpenReader(zipPath)
			if err != nil {
				b.Fatal(err)
			}
			rc, err := zr.Open(names[rng.IntN(len(names))])
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				b.Fatal(err)
			}
			rc.Close()
			zr.Close()
		}
	})

	r, err := NewReader(f, st.Size(), ReaderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	pick := func() []string {
		out := make([]string, 1000)
		for i := range out {
			out[i] = names[rng.IntN(len(names))]
		}
		return out
	}
	for _, bo := range []struct {
		name string
		opts BatchOptions
	}{
		{"remote-defaults", DefaultBatchOptions}, // 256 KiB gap, 16 MiB ranges: few requests
		{"gap4KiB", BatchOptions{MaxGap: 4096, MaxRange: 1 << 20}},
	} {
		b.Run("batch1000/des-ReadBatch-"+bo.name, func(b *testing.B) {
			b.ReportAllocs()
			ranges := 0
			for b.Loop() {
				names := pick()
				p, err := r.PlanBatch(names, bo.opts)
				if err != nil {
					b.Fatal(err)
				}
				ranges += len(p.Data) + len(p.Meta)
				n := 0
				if err := p.Execute(ctx, f, func(string, []byte) error { n++; return nil }); err != nil || n == 0 {
					b.Fatal(err, n)
				}
			}
			b.ReportMetric(float64(ranges)/float64(b.N), "ranges/op")
		})
	}
	b.Run("batch1000/des-ReadFile-each", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, n := range pick() {
				if _, err := r.ReadFile(ctx, n); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("batch1000/zip-each", func(b *testing.B) {
		zr, err := zip.OpenReader(zipPath)
		if err != nil {
			b.Fatal(err)
		}
		defer zr.Close()
		b.ReportAllocs()
		for b.Loop() {
			for _, n := range pick() {
				rc, err := zr.Open(n)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		}
	})
}
