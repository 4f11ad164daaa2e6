package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"reflect"
	"strings"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/progress"
	"github.com/datavision/des/internal/protocol"
)

// runCat writes files to stdout by name: the catalog says where each is (container key, offset,
// size, CRC-32C), and one ranged read of the archive fetches it, as the reader sidecar serves it.
func runCat(e *env, args []string) int {
	fs := commandFlags(e, "cat", "[--source DESSOURCE] [-q] NAME...")
	source := fs.String("source", "", "the DesSource whose catalog to ask (default: the only one in the namespace)")
	quiet := fs.Bool("q", false, "no progress bar (there is none unless stderr is a terminal)")
	names, code, ok := parseArgs(e, fs, args, 1, -1)
	if !ok {
		return code
	}
	if err := catFiles(e, *source, names, *quiet); err != nil {
		return fail(e, "cat", err)
	}
	return exitOK
}

func catFiles(e *env, source string, names []string, quiet bool) error {
	src, err := pickSource(e, source)
	if err != nil {
		return err
	}
	cat, closeCat, err := openCatalog(e, src, "")
	if err != nil {
		return err
	}
	defer closeCat()
	locs, err := cat.Locate(e.ctx, names)
	if err != nil {
		return act(errCatalog, err, "check the catalog database of DesSource %s", src.Name)
	}
	// Every name is looked up before a byte is written: a typo should not leave half the output.
	if missing := notPacked(names, locs); len(missing) > 0 {
		return act(errNotPacked, fmt.Errorf("not packed: %s", strings.Join(missing, ", ")),
			"the catalog of DesSource %s has no packed row of that name in a committed container: check the name, or wait until it is packed (kubectl des status)", src.Name)
	}
	arch := &archives{e: e, src: src, byKey: map[string]*archive{}, stores: map[string]*objstore.Store{}}
	bw := bufio.NewWriterSize(e.stdout, 256<<10)
	var total int64
	for _, name := range names {
		total += locs[name].Size
	}
	bar := progress.New(e.stderr, quiet, "kubectl des cat", len(names), total)
	defer bar.Finish()
	for _, name := range names {
		if err := arch.write(bw, locs[name]); err != nil {
			// What was written before this file is verified and stays written.
			_ = bw.Flush()
			bar.Finish() // before the message, so it is not drawn over
			return fmt.Errorf("%q: %w", name, err)
		}
		bar.Add(1, locs[name].Size)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write to stdout: %w", err)
	}
	return nil
}

// notPacked lists, quoted and once each, the names the catalog did not locate.
func notPacked(names []string, locs map[string]catalog.FileLocation) []string {
	var missing []string
	seen := map[string]bool{}
	for _, n := range names {
		if _, ok := locs[n]; !ok && !seen[n] {
			seen[n] = true
			missing = append(missing, fmt.Sprintf("%q", n))
		}
	}
	return missing
}

// pickSource is the named DesSource, or the namespace's only one.
func pickSource(e *env, name string) (*desv1.DesSource, error) {
	if name != "" {
		src := &desv1.DesSource{}
		return src, get(e, "dessources", name, src)
	}
	var l desv1.DesSourceList
	if err := list(e, "dessources", &l); err != nil {
		return nil, err
	}
	switch len(l.Items) {
	case 0:
		return nil, act(errNoSource, fmt.Errorf("no DesSource in namespace %s", e.namespace), "pass -n NAMESPACE for the namespace that has one")
	case 1:
		return &l.Items[0], nil
	}
	names := make([]string, len(l.Items))
	for i := range l.Items {
		names[i] = l.Items[i].Name
	}
	return nil, act(errNoSource, fmt.Errorf("%d DesSources in namespace %s (%s)", len(names), e.namespace, strings.Join(names, ", ")),
		"pass --source NAME")
}

// archives finds and keeps, per container key, the archive store that holds it.
type archives struct {
	e      *env
	src    *desv1.DesSource
	shards []desv1.DesShard // the source's, listed on first use
	byKey  map[string]*archive
	stores map[string]*objstore.Store // by DesShard name
}

// archive is one container's object and the store it is read from.
type archive struct {
	store       *objstore.Store
	bucket, key string
	index       *desformat.Reader // opened for rows packed before placements were recorded
}

// write writes one file's bytes, checked against the catalog's size and CRC-32C.
func (a *archives) write(w io.Writer, fl catalog.FileLocation) error {
	ar, err := a.forLocation(fl)
	if err != nil {
		return err
	}
	if !fl.Placed {
		return ar.writeFromIndex(a.e, w, fl.Name)
	}
	if fl.Size == 0 {
		return checkBytes(nil, fl)
	}
	var body io.ReadCloser
	if fl.IsExternal() {
		var info objstore.ObjectInfo
		body, info, err = ar.store.Get(a.e.ctx, ar.bucket, fl.ExternalKey, nil)
		if err == nil && info.Size != fl.Size {
			body.Close()
			return act(errDamaged, fmt.Errorf("s3://%s/%s is %d bytes, the catalog records %d", ar.bucket, fl.ExternalKey, info.Size, fl.Size),
				"run kubectl des verify on the container of s3://%s/%s", ar.bucket, fl.Key)
		}
	} else {
		obj := ar.store.NewObjectReader(a.e.ctx, ar.bucket, fl.Key, fl.ObjectSize, "")
		body, err = obj.OpenRange(objstore.Range{Off: fl.Offset, Len: fl.Size})
	}
	if err != nil {
		return storeTrouble(err, ar.bucket, fl.Key)
	}
	defer body.Close()
	return copyChecked(w, body, fl)
}

// bufferLimit is the largest file cat holds in memory to check it before writing a byte of it;
// larger ones are checked as they stream, and a mismatch is reported after their last byte.
const bufferLimit = 64 << 20

// copyChecked copies exactly fl.Size bytes of body to w and checks them against fl's CRC-32C.
func copyChecked(w io.Writer, body io.Reader, fl catalog.FileLocation) error {
	if fl.Size <= bufferLimit {
		// One byte more than the size, so that a longer answer is noticed.
		data, err := io.ReadAll(io.LimitReader(body, fl.Size+1))
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if err := checkBytes(data, fl); err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	h := desformat.NewPayloadHash()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(body, fl.Size))
	if err != nil {
		return fmt.Errorf("read after %d bytes: %w", n, err)
	}
	if n != fl.Size || (fl.HasCRC && h.Sum32() != fl.CRC32C) {
		return act(errDamaged, fmt.Errorf("%d bytes with crc32c %08x written, the catalog records %d bytes with crc32c %08x", n, h.Sum32(), fl.Size, fl.CRC32C),
			"discard the output, and run kubectl des verify on the container of s3://%s/%s", fl.Bucket, fl.Key)
	}
	return nil
}

// checkBytes compares a whole file with its size and checksum in the catalog.
func checkBytes(data []byte, fl catalog.FileLocation) error {
	n := int64(len(data))
	if n == fl.Size && (!fl.HasCRC || desformat.PayloadCRC(data) == fl.CRC32C) {
		return nil
	}
	return act(errDamaged, fmt.Errorf("read %d bytes with crc32c %08x, the catalog records %d bytes with crc32c %08x (nothing of it was written)",
		n, desformat.PayloadCRC(data), fl.Size, fl.CRC32C), "run kubectl des verify on the container of s3://%s/%s", fl.Bucket, fl.Key)
}

// writeFromIndex serves a row packed before placements were recorded, as the reader does: by name
// from the container's index, which checks the payload's CRC-32C as it streams.
func (ar *archive) writeFromIndex(e *env, w io.Writer, name string) error {
	if ar.index == nil {
		ra, _, err := ar.store.OpenReaderAt(e.ctx, ar.bucket, ar.key, desformat.DefaultTailSize)
		if err != nil {
			return storeTrouble(err, ar.bucket, ar.key)
		}
		opts := desformat.ReaderOptions{External: ar.store.Blobs(ar.bucket, objstore.UploadOptions{})}
		if ar.index, err = desformat.NewReader(ra, ra.Size(), opts); err != nil {
			return act(errDamaged, fmt.Errorf("open s3://%s/%s: %w", ar.bucket, ar.key, err), "run kubectl des verify on its container")
		}
	}
	data, err := ar.index.ReadFile(e.ctx, name)
	if err != nil {
		return act(errDamaged, fmt.Errorf("read from s3://%s/%s: %w", ar.bucket, ar.key, err), "run kubectl des verify on its container")
	}
	_, err = w.Write(data)
	return err
}

// forLocation is the archive of the container the catalog places fl in.
func (a *archives) forLocation(fl catalog.FileLocation) (*archive, error) {
	if ar, ok := a.byKey[fl.Key]; ok {
		return ar, nil
	}
	ds, err := a.shardFor(fl)
	if err != nil {
		return nil, err
	}
	store, ok := a.stores[ds.Name]
	if !ok {
		if store, err = archiveStore(a.e, ds); err != nil {
			return nil, err
		}
		a.stores[ds.Name] = store
	}
	ar := &archive{store: store, bucket: fl.Bucket, key: fl.Key}
	a.byKey[fl.Key] = ar
	return ar, nil
}

// shardFor is the DesShard of the source whose archive (bucket and prefix) holds fl's container: its
// store settings and credentials read it. DesContainers are deleted after their retention, so the
// DesShard is found from the key, not from the container's resource.
func (a *archives) shardFor(fl catalog.FileLocation) (*desv1.DesShard, error) {
	if a.shards == nil {
		var l desv1.DesShardList
		if err := list(a.e, "desshards", &l); err != nil {
			return nil, err
		}
		a.shards = l.Items
	}
	var cands []*desv1.DesShard
	for i := range a.shards {
		ds := &a.shards[i]
		if ds.Spec.SourceRef == a.src.Name && ds.Spec.Archive.Bucket == fl.Bucket && underPrefix(fl.Key, ds.Spec.Archive.Prefix) {
			cands = append(cands, ds)
		}
	}
	switch {
	case len(cands) == 0:
		return nil, act(errNoArchive, fmt.Errorf("the catalog places it in s3://%s/%s, where no DesShard of DesSource %s archives", fl.Bucket, fl.Key, a.src.Name),
			"the DesShard that wrote it may be gone: read the object with des cat s3://%s/%s and the archive's credentials", fl.Bucket, fl.Key)
	case len(cands) == 1:
		return cands[0], nil
	}
	return a.writerOf(fl, cands)
}

// writerOf picks among DesShards sharing a bucket and prefix: the one whose DesContainer for the
// key still exists, else any when they all read the bucket alike.
func (a *archives) writerOf(fl catalog.FileLocation, cands []*desv1.DesShard) (*desv1.DesShard, error) {
	id := path.Base(protocol.PrefixOfContainerKey(fl.Key))
	names := make([]string, len(cands))
	for i, ds := range cands {
		names[i] = ds.Name
		con := &desv1.DesContainer{}
		if err := get(a.e, "descontainers", protocol.ContainerName(ds.Name, id), con); err == nil && con.Spec.Key == fl.Key {
			return ds, nil
		} else if err != nil && !errors.Is(err, errNotFound) {
			return nil, err
		}
	}
	for _, ds := range cands[1:] {
		if !reflect.DeepEqual(ds.Spec.Archive.ObjectStore, cands[0].Spec.Archive.ObjectStore) {
			return nil, act(errNoArchive, fmt.Errorf("DesShards %s archive to s3://%s/%s with different store settings, and which wrote %s is no longer recorded",
				strings.Join(names, ", "), fl.Bucket, ds.Spec.Archive.Prefix, fl.Key),
				"read the object with des cat s3://%s/%s and the archive's credentials", fl.Bucket, fl.Key)
		}
	}
	return cands[0], nil
}

// underPrefix reports whether key is under an archive prefix, joined as protocol joins keys.
func underPrefix(key, prefix string) bool {
	p := path.Join(prefix)
	return p == "" || p == "." || strings.HasPrefix(key, p+"/")
}
