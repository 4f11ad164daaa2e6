package desformat

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func roundTripFiles() []testFile {
	var files []testFile
	for i, n := range []int{0, 1, 2, 17, 511, 4095, 4096, 4097, 65535, 65536, 300000, 1<<20 + 3} {
		files = append(files, testFile{name: fmt.Sprintf("DES_20251115_(0E8A8B9E44%02X_05).bin", i), data: pattern(n, uint32(i))})
	}
	files = append(files,
		testFile{name: "zażółć gęślą jaźń.txt", data: []byte("polish"), meta: `{"lang":"pl","note":"ünïcödé ✓"}`},
		testFile{name: "日本語ファイル名", data: []byte("japanese"), meta: `{"emoji":"🙂","big":12345678901234567890123,"f":0.49543508709194095}`},
		testFile{name: "report [final] (v2).pdf", data: pattern(1000, 9), meta: ` { "mime" : "application/pdf", "tags":["a",{"x":null}], "t":true } `},
		testFile{name: "empty-too", data: nil, meta: `{"size":999,"k":1}`},
		testFile{name: strings.Repeat("x", MaxNameLen), data: []byte("longest name")},
	)
	return files
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	store := NewDirStore(t.TempDir())
	for _, tc := range []struct {
		name string
		opts WriterOptions
	}{
		{"inline", WriterOptions{}},
		{"external-64KiB", WriterOptions{External: store, ExternalThreshold: 65536, ExternalPrefix: "2025-11-25/shard_07"}},
		{"tiny-buffer", WriterOptions{BufferSize: 16}},
		{"spill", WriterOptions{SpillDir: t.TempDir()}},
		{"spill-external", WriterOptions{SpillDir: t.TempDir(), External: store, ExternalThreshold: 65536, ExternalPrefix: "2025-11-25/shard_07"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := roundTripFiles()
			b := writeArchive(t, tc.opts, files)
			for _, tail := range []int64{FooterSize, 1000, DefaultTailSize, 1 << 30} {
				for _, prefetch := range []bool{false, true} {
					r := openBytes(t, b, ReaderOptions{External: store, TailSize: tail, PrefetchMeta: prefetch})
					checkRoundTrip(t, ctx, r, files, tc.opts)
				}
			}
			checkIndependentV1Reader(t, b, files, tc.opts)
		})
	}
}

func checkRoundTrip(t *testing.T, ctx context.Context, r *Reader, files []testFile, opts WriterOptions) {
	t.Helper()
	entries := r.Entries()
	if len(entries) != len(files) {
		t.Fatalf("got %d entries, want %d", len(entries), len(files))
	}
	if !r.Footer().HasIndexChecksum() || !r.Footer().HasPayloadChecksums() {
		t.Fatal("footer lacks checksum features")
	}
	for i, f := range files {
		e := entries[i]
		wantExt := opts.ExternalThreshold > 0 && int64(len(f.data)) >= opts.ExternalThreshold
		if e.Name != f.name || e.Size != int64(len(f.data)) || e.IsExternal() != wantExt {
			t.Fatalf("entry %d: {%.40q %d %v}, want {%.40q %d %v}", i, e.Name, e.Size, e.IsExternal(), f.name, len(f.data), wantExt)
		}
		got, err := r.ReadFile(ctx, f.name)
		if err != nil || !bytes.Equal(got, f.data) {
			t.Fatalf("ReadFile(%.40q): %d bytes, %v", f.name, len(got), err)
		}
		if !e.IsExternal() {
			sr, err := r.Section(f.name)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(sr)
			if !bytes.Equal(raw, f.data) {
				t.Fatalf("Section(%.40q) differs", f.name)
			}
		}
		crc, has, err := r.Checksum(f.name)
		if err != nil || !has || crc != crcUpdate(0, f.data) {
			t.Fatalf("Checksum(%.40q) = %08x %v %v", f.name, crc, has, err)
		}
		checkWrittenMeta(t, r, f, e)
	}
	rep, err := r.Verify(ctx)
	if err != nil || rep.Err() != nil || rep.Checksummed != len(files) || !rep.IndexChecksum {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
}

// checkWrittenMeta: stored meta = user meta + size (+ external keys) + crc32c.
func checkWrittenMeta(t *testing.T, r *Reader, f testFile, e Entry) {
	t.Helper()
	meta, err := r.Meta(f.name)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range meta {
		if c >= 0x80 {
			t.Fatalf("meta of %.40q has non-ASCII byte: %s", f.name, meta)
		}
	}
	got, err := DecodeMeta(meta)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{}
	if f.meta != "" {
		if want, err = DecodeMeta([]byte(f.meta)); err != nil {
			t.Fatal(err)
		}
	}
	want["size"] = json.Number(fmt.Sprint(len(f.data)))
	want["crc32c"] = fmt.Sprintf("%08x", crcUpdate(0, f.data))
	if e.IsExternal() {
		want["is_external"] = true
		want["external_key"] = ExternalKey("2025-11-25/shard_07", f.name)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("meta of %.40q:\n got %v\nwant %v", f.name, got, want)
	}
}

// checkIndependentV1Reader parses the archive with a minimal reader written
// from the README's v1 layout alone: only v1 fields, reserved bytes and
// unknown meta keys ignored, external payloads recognised by flag.
func checkIndependentV1Reader(t *testing.T, b []byte, files []testFile, opts WriterOptions) {
	t.Helper()
	le := binary.LittleEndian
	if len(b) < 88 || string(b[:8]) != "DESHEAD1" || b[8] != 1 {
		t.Fatal("v1 reader: bad header")
	}
	ft := b[len(b)-72:]
	if string(ft[:8]) != "DESFOOT1" || ft[8] != 1 {
		t.Fatal("v1 reader: bad footer")
	}
	u := func(i int) uint64 { return le.Uint64(ft[16+8*i:]) }
	indexStart, indexLen, count := u(4), u(5), u(6)
	idx := b[indexStart : indexStart+indexLen]
	if count != uint64(len(files)) {
		t.Fatalf("v1 reader: file_count %d, want %d", count, len(files))
	}
	for i := range files {
		n := int(le.Uint16(idx))
		name := string(idx[2 : 2+n])
		rest := idx[2+n:]
		dOff, dLen, mOff, mLen, flags := le.Uint64(rest), le.Uint64(rest[8:]), le.Uint64(rest[16:]), le.Uint64(rest[24:]), le.Uint32(rest[32:])
		idx = rest[36:]
		f := files[i]
		if name != f.name || dLen != uint64(len(f.data)) {
			t.Fatalf("v1 reader: entry %d name/size mismatch", i)
		}
		var meta map[string]any
		if err := json.Unmarshal(b[mOff:mOff+mLen], &meta); err != nil {
			t.Fatalf("v1 reader: meta %d: %v", i, err)
		}
		if meta["size"] != float64(len(f.data)) {
			t.Fatalf("v1 reader: meta size %v", meta["size"])
		}
		if flags&1 != 0 {
			if dOff != 0 || meta["is_external"] != true || meta["external_key"] != ExternalKey(opts.ExternalPrefix, f.name) {
				t.Fatalf("v1 reader: external entry %d malformed: off=%d meta=%v", i, dOff, meta)
			}
			continue
		}
		if !bytes.Equal(b[dOff:dOff+dLen], f.data) {
			t.Fatalf("v1 reader: payload %d differs", i)
		}
	}
	if len(idx) != 0 {
		t.Fatalf("v1 reader: %d trailing index bytes", len(idx))
	}
}

func TestEmptyArchiveMatchesV1Layout(t *testing.T) {
	b := writeArchive(t, WriterOptions{}, nil)
	if len(b) != HeaderSize+FooterSize {
		t.Fatalf("empty archive is %d bytes", len(b))
	}
	r := openBytes(t, b, ReaderOptions{})
	f := r.Footer()
	if f.DataStart != 16 || f.MetaStart != 16 || f.IndexStart != 16 || f.FileCount != 0 || r.Len() != 0 {
		t.Fatalf("footer %+v", f)
	}
	// Same bytes as the v1 empty.des except our reserved footer bytes.
	v1 := buildV1(t, nil)
	b[9+HeaderSize], b[10+HeaderSize], b[11+HeaderSize], b[12+HeaderSize], b[13+HeaderSize] = 0, 0, 0, 0, 0
	if !bytes.Equal(b, v1) {
		t.Fatalf("empty archive\n got %x\nwant %x", b, v1)
	}
}

func TestWriterRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		fh   FileHeader
		want error
	}{
		{"empty name", FileHeader{Name: ""}, ErrInvalidName},
		{"slash", FileHeader{Name: "a/b"}, ErrInvalidName},
		{"backslash", FileHeader{Name: `a\b`}, ErrInvalidName},
		{"colon", FileHeader{Name: "c:x"}, ErrInvalidName},
		{"star", FileHeader{Name: "*"}, ErrInvalidName},
		{"question", FileHeader{Name: "a?"}, ErrInvalidName},
		{"quote", FileHeader{Name: `a"b`}, ErrInvalidName},
		{"lt", FileHeader{Name: "<"}, ErrInvalidName},
		{"gt", FileHeader{Name: ">"}, ErrInvalidName},
		{"pipe", FileHeader{Name: "a|b"}, ErrInvalidName},
		{"dot", FileHeader{Name: "."}, ErrInvalidName},
		{"dotdot", FileHeader{Name: ".."}, ErrInvalidName},
		{"bad utf8", FileHeader{Name: "a\xffb"}, ErrInvalidName},
		{"too long", FileHeader{Name: strings.Repeat("é", MaxNameLen/2+1)}, ErrNameTooLong},
		{"duplicate", FileHeader{Name: "taken"}, ErrDuplicateName},
		{"negative size", FileHeader{Name: "n", Size: -1}, ErrSizeMismatch},
		{"meta array", FileHeader{Name: "m1", Meta: json.RawMessage(`[1]`)}, ErrInvalidMeta},
		{"meta null", FileHeader{Name: "m2", Meta: json.RawMessage(`null`)}, ErrInvalidMeta},
		{"meta trailing", FileHeader{Name: "m3", Meta: json.RawMessage(`{}x`)}, ErrInvalidMeta},
		{"meta trailing object", FileHeader{Name: "m3b", Meta: json.RawMessage(`{"a":1}{}`)}, ErrInvalidMeta},
		{"meta bad number", FileHeader{Name: "m4", Meta: json.RawMessage(`{"a":01}`)}, ErrInvalidMeta},
		{"meta bad utf8", FileHeader{Name: "m5", Meta: json.RawMessage("{\"a\":\"\xff\"}")}, ErrInvalidMeta},
		{"meta control char", FileHeader{Name: "m6", Meta: json.RawMessage("{\"a\":\"\x01\"}")}, ErrInvalidMeta},
		{"meta deep", FileHeader{Name: "m7", Meta: json.RawMessage(`{"a":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`)}, ErrInvalidMeta},
		{"meta unterminated", FileHeader{Name: "m8", Meta: json.RawMessage(`{"a":"x`)}, ErrInvalidMeta},
		{"meta bad escape", FileHeader{Name: "m9", Meta: json.RawMessage(`{"a":"\x"}`)}, ErrInvalidMeta},
		{"meta too large", FileHeader{Name: "big", Meta: json.RawMessage(`{"a":"` + strings.Repeat("x", MaxMetaLen) + `"}`)}, ErrMetaTooLarge},
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(ctx, FileHeader{Name: "taken", Size: 3}, strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := w.Add(ctx, tc.fh, strings.NewReader(""))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Add: %v, want %v", err, tc.want)
			}
		})
	}
	// Input errors leave the writer usable and the archive clean.
	if err := w.Add(ctx, FileHeader{Name: "after", Size: 2}, strings.NewReader("ok")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := openBytes(t, buf.Bytes(), ReaderOptions{})
	if r.Len() != 2 {
		t.Fatalf("archive has %d entries, want 2", r.Len())
	}
	if rep, err := r.Verify(ctx); err != nil || rep.Err() != nil {
		t.Fatal(err, rep.Err())
	}
	if err := w.Add(ctx, FileHeader{Name: "late"}, strings.NewReader("")); !errors.Is(err, ErrWriterClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
}

func TestWriterSizeMismatchPoisons(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		size int64
		r    io.Reader
	}{
		{"short", 10, strings.NewReader("abc")},
		{"long", 2, strings.NewReader("abc")},
		{"read error", 10, iotest.ErrReader(errors.New("disk on fire"))},
		{"timeout reader", 5, iotest.TimeoutReader(strings.NewReader("abcdef"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, _ := NewWriter(&buf, WriterOptions{})
			if err := w.Add(ctx, FileHeader{Name: "x", Size: tc.size}, tc.r); err == nil {
				t.Fatal("Add succeeded")
			}
			if err := w.Close(); err == nil {
				t.Fatal("Close after a failed copy succeeded")
			}
		})
	}
	// A one-byte-at-a-time reader is not a mismatch.
	b := writeArchive(t, WriterOptions{}, nil)
	_ = b
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, WriterOptions{})
	if err := w.Add(ctx, FileHeader{Name: "slow", Size: 6}, iotest.OneByteReader(strings.NewReader("abcdef"))); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestWriterExternalFailureKeepsWriterUsable(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	store := &failStore{}
	w, err := NewWriter(&buf, WriterOptions{External: store, ExternalThreshold: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(ctx, FileHeader{Name: "big", Size: 8}, strings.NewReader("12345678")); err == nil {
		t.Fatal("Add with failing store succeeded")
	}
	if err := w.Add(ctx, FileHeader{Name: "big", Size: 3}, strings.NewReader("123")); err != nil {
		t.Fatalf("name of a failed Add must stay free: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := NewWriter(&buf, WriterOptions{ExternalThreshold: 1}); err == nil {
		t.Fatal("threshold without store accepted")
	}
}

type failStore struct{}

func (failStore) Put(_ context.Context, _ string, r io.Reader, _ int64) error {
	_, _ = io.CopyN(io.Discard, r, 2) // read a little, then fail as a dying store does
	return errors.New("bucket unavailable")
}
func (failStore) Open(context.Context, string) (io.ReadCloser, int64, error) {
	return nil, 0, errors.New("bucket unavailable")
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after -= len(p); f.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriterOutputFailure(t *testing.T) {
	w, err := NewWriter(&failWriter{after: 100}, WriterOptions{BufferSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	err = w.Add(context.Background(), FileHeader{Name: "a", Size: 1000}, bytes.NewReader(make([]byte, 1000)))
	if err == nil {
		err = w.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("want disk full, got %v", err)
	}
}

func TestMetaEncoding(t *testing.T) {
	tests := []struct {
		in, ext string
		want    string
	}{
		{``, "", `{"size":5}`},
		{`{}`, "", `{"size":5}`},
		{`{"a":1}`, "", `{"a":1,"size":5}`},
		{` {"b" : [1, 2 ,{"c":null}], "a":true} `, "", `{"b":[1,2,{"c":null}],"a":true,"size":5}`},
		{`{"size":1,"a":2}`, "", `{"size":5,"a":2}`},
		{`{"is_external":true,"a":2}`, "", `{"a":2,"size":5}`},
		{`{"a":2}`, "p/_bigFiles/ü", `{"a":2,"size":5,"is_external":true,"external_key":"p/_bigFiles/\u00fc"}`},
		{`{"external_key":"x","a":2}`, "k", `{"external_key":"k","a":2,"size":5,"is_external":true}`},
		{`{"n":"ünï ✓"}`, "", `{"n":"\u00fcn\u00ef \u2713","size":5}`},
		{`{"e":"🙂"}`, "", `{"e":"\ud83d\ude42","size":5}`},
		{`{"e":"\uD83D\uDE42"}`, "", `{"e":"\ud83d\ude42","size":5}`},
		{`{"lone":"\udc00"}`, "", `{"lone":"\udc00","size":5}`},
		{`{"s":"\/\"\\\b\f\n\r\t\u0041\u007f<>&"}`, "", `{"s":"/\"\\\b\f\n\r\tA\u007f<>&","size":5}`},
		{"{\"del\":\"\x7f\"}", "", `{"del":"\u007f","size":5}`},
		{`{"big":123456789012345678901234567890,"f":-1.5e-300,"z":0}`, "", `{"big":123456789012345678901234567890,"f":-1.5e-300,"z":0,"size":5}`},
		{`{"size":1,"size":2}`, "", `{"size":5}`},
		{`{"ключ":"значение"}`, "", `{"\u043a\u043b\u044e\u0447":"\u0437\u043d\u0430\u0447\u0435\u043d\u0438\u0435","size":5}`},
	}
	for _, tc := range tests {
		mf := metaFields{size: 5, extKey: tc.ext}
		got, err := appendMeta(nil, []byte(tc.in), &mf)
		if err != nil {
			t.Errorf("appendMeta(%s): %v", tc.in, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("appendMeta(%s)\n got %s\nwant %s", tc.in, got, tc.want)
		}
		if !json.Valid(got) {
			t.Errorf("invalid JSON %s", got)
		}
	}
}

func TestMetaCRCPlacement(t *testing.T) {
	// A user "crc32c" key is overwritten in place, nested ones untouched.
	files := []testFile{{name: "a", data: []byte("hello"), meta: `{"crc32c":"zz","n":{"crc32c":"keep"}}`}}
	b := writeArchive(t, WriterOptions{}, files)
	r := openBytes(t, b, ReaderOptions{})
	meta, _ := r.Meta("a")
	want := fmt.Sprintf(`{"crc32c":"%08x","n":{"crc32c":"keep"},"size":5}`, crcUpdate(0, []byte("hello")))
	if string(meta) != want {
		t.Fatalf("meta %s, want %s", meta, want)
	}
	if got, err := r.ReadFile(context.Background(), "a"); err != nil || string(got) != "hello" {
		t.Fatal(got, err)
	}
}

func TestExternalKeyAndDirStore(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"", "_bigFiles/n"}, {"p", "p/_bigFiles/n"}, {"/a/b/", "a/b/_bigFiles/n"},
	} {
		if got := ExternalKey(tc.prefix, "n"); got != tc.want {
			t.Errorf("ExternalKey(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	ctx := context.Background()
	s := NewDirStore(t.TempDir())
	for _, bad := range []string{"", "../x", "/abs", `a\..\..\x`, "a/../../x"} {
		if err := s.Put(ctx, bad, strings.NewReader(""), 0); err == nil {
			t.Errorf("Put(%q) accepted", bad)
		}
		if _, _, err := s.Open(ctx, bad); err == nil {
			t.Errorf("Open(%q) accepted", bad)
		}
	}
	if err := s.Put(ctx, "p/_bigFiles/x", strings.NewReader("abc"), 4); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("short Put: %v", err)
	}
	if _, _, err := s.Open(ctx, "p/_bigFiles/x"); err == nil {
		t.Fatal("failed Put left an object behind")
	}
	if err := s.Put(ctx, "p/_bigFiles/x", strings.NewReader("abc"), 3); err != nil {
		t.Fatal(err)
	}
	rc, n, err := s.Open(ctx, "p/_bigFiles/x")
	if err != nil || n != 3 {
		t.Fatal(n, err)
	}
	rc.Close()
}
