package des_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/datavision/des/pkg/des"
)

// writeArchive packs files (name → content, in order) into an archive in memory.
func writeArchive(files [][2]string) ([]byte, error) {
	var buf bytes.Buffer
	w, err := des.NewWriter(&buf, des.WriterOptions{})
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		fh := des.FileHeader{Name: f[0], Size: int64(len(f[1])), Meta: []byte(`{"mime":"text/plain"}`)}
		if err := w.Add(context.Background(), fh, strings.NewReader(f[1])); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Write an archive to a buffer, open it over an io.ReaderAt and read one file by name.
func Example() {
	archive, err := writeArchive([][2]string{{"a.txt", "alpha\n"}, {"b.txt", "bravo\n"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := des.NewReader(bytes.NewReader(archive), int64(len(archive)), des.ReaderOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	data, err := r.ReadFile(context.Background(), "b.txt")
	if err != nil {
		fmt.Println(err)
		return
	}
	meta, _ := r.Meta("b.txt")
	fmt.Printf("%d files; b.txt = %q\n%s\n", r.Len(), data, meta)
	_, err = r.ReadFile(context.Background(), "c.txt")
	fmt.Println("c.txt not found:", errors.Is(err, des.ErrNotFound))
	// Output:
	// 2 files; b.txt = "bravo\n"
	// {"mime":"text/plain","size":6,"crc32c":"fe5ce61a"}
	// c.txt not found: true
}

// Read many files with few range reads: the plan coalesces neighbours, and every file is checked
// against its CRC-32C before the callback sees it.
func ExampleReader_ReadBatch() {
	archive, err := writeArchive([][2]string{{"1.txt", "one"}, {"2.txt", "two"}, {"3.txt", "three"}, {"4.txt", ""}})
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := des.NewReader(bytes.NewReader(archive), int64(len(archive)), des.ReaderOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	names := []string{"3.txt", "1.txt", "4.txt"}
	plan, err := r.PlanBatch(names, des.DefaultBatchOptions)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d range(s), %d bytes, %d empty\n", len(plan.Data), plan.Bytes(), len(plan.Empty))
	err = r.ReadBatch(context.Background(), names, des.DefaultBatchOptions, func(name string, data []byte) error {
		fmt.Printf("%s: %q\n", name, data) // archive order, not request order
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// 1 range(s), 11 bytes, 1 empty
	// 1.txt: "one"
	// 3.txt: "three"
	// 4.txt: ""
}

// An archive in a file opens the same way: *os.File is an io.ReaderAt.
func ExampleNewReader_file() {
	archive, err := writeArchive([][2]string{{"report.pdf", "%PDF-1.7 ..."}})
	if err != nil {
		fmt.Println(err)
		return
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("des-example-%d.des", os.Getpid()))
	defer os.Remove(path)
	if err := os.WriteFile(path, archive, 0o600); err != nil {
		fmt.Println(err)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := des.NewReader(f, st.Size(), des.ReaderOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	e, err := r.Stat("report.pdf")
	if err != nil {
		fmt.Println(err)
		return
	}
	report, err := r.Verify(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e.Name, e.Size, "bytes; verify:", report.Err())
	// Output:
	// report.pdf 12 bytes; verify: <nil>
}

// Make, parse and shard a name. A fixed clock makes the output reproducible; leave Now nil to use
// time.Now.
func ExampleNewGenerator() {
	at := time.Date(2026, 2, 24, 13, 14, 15, 678e6, time.UTC)
	g, err := des.NewGenerator(des.NameConfig{Prefix: "SCAN", Node: 3, Now: func() time.Time { return at }})
	if err != nil {
		fmt.Println(err)
		return
	}
	name, err := g.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	n, err := des.ParseName(name + ".pdf")
	if err != nil {
		fmt.Println(err)
		return
	}
	shard, err := des.Shard(name+".pdf", 12)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(name)
	fmt.Println(n.Day, n.Node, n.Seq, n.Ext, shard)
	// Output:
	// SCAN_20260224_(8FC93AFE0300_93)
	// 20260224 3 0 .pdf 2629
}
