package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/test/testworld"
)

// TestMain gives the package's tests the test world: an API server with DES's CRDs, PostgreSQL and
// an S3 server. The lead's tests of status, why and pack-now share it.
func TestMain(m *testing.M) {
	testworld.Main(m, testworld.Kube|testworld.Postgres|testworld.S3)
}

const (
	worldShard   = 3
	worldPrefix  = "arch"
	extThreshold = 64 << 10 // payloads of at least this size are stored beside the container
)

// worldFiles are the container's files: an empty one, small ones, one just under and one over the
// external threshold.
var worldFiles = []struct {
	name string
	size int
}{
	{"N_empty", 0}, {"N_1", 100}, {"N_2", 1000}, {"N_3", 4097}, {"N_mid", extThreshold - 1}, {"N_big", 200 << 10},
}

// world is one test's namespace holding a DesSource, a DesShard and one DesContainer whose object a
// packer would have written and committed: real catalog rows, a real archive object in S3.
type world struct {
	t      *testing.T
	ctx    context.Context
	kube   client.Client
	ns     string
	db     *testworld.CatalogDB
	cat    *catalog.Catalog
	store  *objstore.Store
	bucket string
	con    *desv1.DesContainer
	object []byte            // the archive as uploaded
	files  map[string][]byte // payloads by name
}

// newWorld packs worldFiles into a container; commit says whether the catalog commit (and the
// DesContainer's Committed phase) happens, or the container stays Uploaded with its rows claimed.
func newWorld(t *testing.T, commit bool) *world {
	t.Helper()
	kube := testworld.K8s(t)
	s3 := testworld.S3Store(t)
	w := &world{t: t, ctx: context.Background(), kube: kube.Client, ns: kube.NewNamespace(t),
		db: testworld.NewCatalogDB(t, catalog.Postgres), store: s3.NewStore(t), bucket: s3.NewBucket(t), files: map[string][]byte{}}
	w.db.CreateObjects(t, testworld.ObjectsTable{})
	var rows []testworld.ObjectRow
	for i, f := range worldFiles {
		w.files[f.name] = testworld.RandomBytes(f.size, uint64(i+1))
		rows = append(rows, testworld.ObjectRow{Key: "src/" + f.name, Size: int64(f.size), Status: "ready", Name: f.name, Shard: testworld.Shard(worldShard)})
	}
	w.db.InsertObjects(t, "", rows)
	w.cat = w.db.NewCatalog(t, catalog.DefaultMapping("objects", w.bucket))
	if err := w.cat.Migrate(w.ctx); err != nil {
		t.Fatal(err)
	}
	w.createResources(s3)
	w.pack(commit)
	return w
}

func (w *world) create(obj client.Object) {
	w.t.Helper()
	obj.SetNamespace(w.ns)
	if err := w.kube.Create(w.ctx, obj); err != nil {
		w.t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

func (w *world) secret(name string, data map[string]string) {
	w.t.Helper()
	w.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data})
}

// createResources makes the Secrets, the DesSource "src" and the DesShard "daily" as a user would.
func (w *world) createResources(s3 *testworld.S3Server) {
	w.secret("catalog", map[string]string{"dsn": w.db.DSN})
	w.secret("archive-s3", map[string]string{"AWS_ACCESS_KEY_ID": s3.AccessKey, "AWS_SECRET_ACCESS_KEY": s3.SecretKey})
	store := desv1.ObjectStore{Endpoint: s3.Endpoint, Region: s3.Region, PathStyle: true, CredentialsSecretRef: desv1.SecretRef{Name: "archive-s3"}}
	w.create(&desv1.DesSource{ObjectMeta: metav1.ObjectMeta{Name: "src"}, Spec: desv1.DesSourceSpec{
		Catalog: desv1.Catalog{DSNSecretRef: desv1.SecretKeyRef{Name: "catalog", Key: "dsn"}, Table: "objects"},
		Store:   desv1.SourceStore{ObjectStore: store, Bucket: w.bucket},
		Naming:  desv1.Naming{ShardBits: 4},
	}})
	w.create(&desv1.DesShard{ObjectMeta: metav1.ObjectMeta{Name: "daily"}, Spec: desv1.DesShardSpec{
		SourceRef: "src", Shards: []int32{worldShard},
		Archive: desv1.ArchiveStore{ObjectStore: store, Bucket: w.bucket, Prefix: worldPrefix},
	}})
}

// pack claims the rows, writes and uploads the archive, records the DesContainer, and commits.
func (w *world) pack(commit bool) {
	t := w.t
	day := time.Now().UTC()
	id := protocol.NewContainerID(day)
	w.con = &desv1.DesContainer{
		ObjectMeta: metav1.ObjectMeta{Name: protocol.ContainerName("daily", id)},
		Spec: desv1.DesContainerSpec{ShardRef: "daily", Shard: worldShard, Day: day.Format(time.DateOnly), Bucket: w.bucket,
			Key: protocol.ContainerKey(worldPrefix, day, worldShard, id)},
	}
	claimed, err := w.cat.Claim(w.ctx, worldShard, w.con.Name, 100)
	if err != nil || len(claimed) != len(worldFiles) {
		t.Fatalf("claim: %d rows, %v", len(claimed), err)
	}
	sum := w.writeArchive(claimed)
	w.put(w.object)
	w.create(w.con)
	w.con.Status = desv1.DesContainerStatus{Phase: desv1.PhaseUploaded, Files: sum.Files, Bytes: sum.PayloadBytes, ObjectSize: sum.Size,
		IndexChecksum: sum.IndexChecksum(), PayloadChecksum: sum.PayloadChecksum(), Pod: "packer-pod-1"}
	if commit {
		w.commit(sum)
		w.con.Status.Phase = desv1.PhaseCommitted
	}
	if err := w.kube.Status().Update(w.ctx, w.con); err != nil {
		t.Fatal(err)
	}
}

func (w *world) writeArchive(rows []catalog.Row) desformat.Summary {
	w.t.Helper()
	var buf bytes.Buffer
	dw, err := desformat.NewWriter(&buf, desformat.WriterOptions{External: w.store.Blobs(w.bucket, objstore.UploadOptions{}),
		ExternalThreshold: extThreshold, ExternalPrefix: protocol.PrefixOfContainerKey(w.con.Spec.Key)})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, r := range rows {
		data := w.files[r.Name]
		if err := dw.Add(w.ctx, desformat.FileHeader{Name: r.Name, Size: int64(len(data))}, bytes.NewReader(data)); err != nil {
			w.t.Fatal(err)
		}
	}
	if err := dw.Close(); err != nil {
		w.t.Fatal(err)
	}
	w.object = buf.Bytes()
	return dw.Summary()
}

// commit records the container in the catalog with the placements its object gives, as the packer.
func (w *world) commit(sum desformat.Summary) {
	w.t.Helper()
	ids, err := w.cat.ClaimedIDs(w.ctx, w.con.Name)
	if err != nil {
		w.t.Fatal(err)
	}
	ps, err := catalog.PlaceClaimed(w.locations(), ids)
	if err != nil {
		w.t.Fatal(err)
	}
	day, _ := time.Parse(time.DateOnly, w.con.Spec.Day)
	rec := catalog.Record{Key: w.con.Spec.Key, Container: w.con.Name, Bucket: w.bucket, Source: "src", Shard: worldShard, Day: day,
		Files: sum.Files, Bytes: sum.PayloadBytes, ObjectSize: sum.Size, PayloadChecksum: sum.PayloadChecksum(),
		IndexChecksum: sum.IndexChecksum(), Writer: "packer-pod-1", Placements: ps}
	if err := w.cat.Commit(w.ctx, rec); err != nil {
		w.t.Fatal(err)
	}
}

// locations are the files of the uploaded archive, in listing order.
func (w *world) locations() []desformat.Location {
	w.t.Helper()
	r, err := desformat.NewReader(bytes.NewReader(w.object), int64(len(w.object)), desformat.ReaderOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	locs, err := r.Locations(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	return locs
}

// put replaces the container's object.
func (w *world) put(data []byte) {
	w.t.Helper()
	if _, err := w.store.Put(w.ctx, w.bucket, w.con.Spec.Key, data, objstore.PutOptions{}); err != nil {
		w.t.Fatal(err)
	}
}

// location is where the archive has a file.
func (w *world) location(name string) desformat.Location {
	w.t.Helper()
	for _, l := range w.locations() {
		if l.Name == name {
			return l
		}
	}
	w.t.Fatalf("no file %q in the archive", name)
	return desformat.Location{}
}

// result is one run of the plugin.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs the plugin in-process against the world's namespace as the test world's admin, or as kube.
func (w *world) run(args ...string) result { return w.runAs(w.kube, args...) }

func (w *world) runAs(kube client.Client, args ...string) result {
	w.t.Helper()
	var stdout, stderr bytes.Buffer
	conn := func(globalFlags) (client.Client, string, error) { return kube, w.ns, nil }
	code := run(w.ctx, args, &stdout, &stderr, conn)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// expect checks a run's exit code and that its stdout and stderr hold the given texts.
func expect(t *testing.T, r result, code int, inStdout, inStderr []string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d, got %v", code, r)
	}
	for _, s := range inStdout {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout lacks %q; %v", s, r)
		}
	}
	for _, s := range inStderr {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q; %v", s, r)
		}
	}
}

func clientKeyOf(ns, name string) client.ObjectKey {
	return client.ObjectKey{Namespace: ns, Name: name}
}
