package packer_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/packer"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/test/testworld"
)

// childArgsEnv makes the test binary run `manager pack` with the JSON-encoded arguments instead of
// the tests: the kill test runs the packer as a separate process that way.
const childArgsEnv = "DES_PACKER_TEST_CHILD_ARGS"

var testScheme = testworld.Scheme()

func TestMain(m *testing.M) {
	if args := os.Getenv(childArgsEnv); args != "" {
		os.Exit(childMain(args))
	}
	testworld.MainWith(m, testworld.Postgres|testworld.MariaDB|testworld.S3|testworld.Kube, testworld.KubeOptions{Scheme: testScheme})
}

func childMain(encoded string) int {
	var args []string
	if err := json.Unmarshal([]byte(encoded), &args); err != nil {
		fmt.Fprintln(os.Stderr, "bad child arguments:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer profileChild()()
	return packer.Command(ctx, args, os.Stdout, os.Stderr)
}

// world is one test's catalog, buckets and namespace, with a DesSource and a DesShard.
type world struct {
	t      testing.TB
	ctx    context.Context
	kube   client.Client
	ns     string
	db     *testworld.CatalogDB // the catalog database; db.DSN is what the DesSource's Secret holds
	cat    *catalog.Catalog
	store  *objstore.Store // the real client, no faults
	source string          // bucket of the source objects
	bucket string          // archive bucket
	src    *desv1.DesSource
	ds     *desv1.DesShard

	mu      sync.Mutex
	content map[string][]byte // DES name → source bytes
	next    map[int32]int     // next row number per shard
}

type worldOptions struct {
	driver    catalog.Driver // the catalog database; PostgreSQL when empty
	shards    []int32
	threshold int64
	limits    desv1.ContainerLimits
	endpoint  string // S3 endpoint the resources name (a proxy in the kill test)
}

func newWorld(t testing.TB, o worldOptions) *world {
	t.Helper()
	if o.driver == "" {
		o.driver = catalog.Postgres
	}
	kube := testworld.K8s(t)
	s3 := testworld.S3Store(t)
	db := testworld.NewCatalogDB(t, o.driver)
	w := &world{
		t: t, ctx: context.Background(), kube: kube.Client, ns: kube.NewNamespace(t), db: db,
		store:  objstore.NewFromAPI(s3.Client()),
		source: s3.NewBucket(t), bucket: s3.NewBucket(t), content: map[string][]byte{}, next: map[int32]int{},
	}
	// Every row the test adds says its size and status, so the table's defaults never apply; a status
	// is never NULL, as in a user's table: DES writing one is an error the test must see.
	db.CreateObjects(t, testworld.ObjectsTable{Extra: []string{"CHECK (status IS NOT NULL)"}})
	w.cat = db.NewCatalog(t, catalog.DefaultMapping("objects", w.source))
	if err := w.cat.Migrate(w.ctx); err != nil {
		t.Fatal(err)
	}
	if o.endpoint == "" {
		o.endpoint = s3.Endpoint
	}
	if o.threshold == 0 {
		o.threshold = 64 << 10
	}
	store := desv1.ObjectStore{Endpoint: o.endpoint, Region: s3.Region, PathStyle: true,
		CredentialsSecretRef: desv1.SecretRef{Name: "s3"}}
	w.src = &desv1.DesSource{
		ObjectMeta: metav1.ObjectMeta{Name: "src", Namespace: w.ns},
		Spec: desv1.DesSourceSpec{
			// The controller's recovery and the packer process open the catalog from here.
			Catalog: desv1.Catalog{Driver: string(o.driver), DSNSecretRef: desv1.SecretKeyRef{Name: "catalog", Key: "dsn"}, Table: "objects"},
			Store:   desv1.SourceStore{ObjectStore: store, Bucket: w.source},
			Naming:  desv1.Naming{ShardBits: 4},
		},
	}
	w.create(w.src)
	// The Secrets the resources name, for the controller's recovery (the packer reads files).
	w.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "catalog", Namespace: w.ns}, StringData: map[string]string{"dsn": db.DSN}})
	w.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3", Namespace: w.ns},
		StringData: map[string]string{"AWS_ACCESS_KEY_ID": s3.AccessKey, "AWS_SECRET_ACCESS_KEY": s3.SecretKey}})
	if o.limits.MinFiles == 0 {
		o.limits.MinFiles = 1 // pack whatever is ready: the tests' catalogs are small (fill_test.go tests the policy)
	}
	w.ds = &desv1.DesShard{
		ObjectMeta: metav1.ObjectMeta{Name: "ds", Namespace: w.ns},
		Spec: desv1.DesShardSpec{
			SourceRef: "src", Shards: o.shards, BigFileThreshold: o.threshold, Limits: o.limits,
			Archive: desv1.ArchiveStore{ObjectStore: store, Bucket: w.bucket, Prefix: "archive/des"},
		},
	}
	w.create(w.ds)
	return w
}

func (w *world) create(obj client.Object) {
	w.t.Helper()
	if err := w.kube.Create(w.ctx, obj); err != nil {
		w.t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

// exec runs a statement of the test, written with PostgreSQL's placeholders (CatalogDB.Dialect).
func (w *world) exec(stmt string, args ...any) {
	w.t.Helper()
	w.db.Exec(w.t, stmt, args...)
}

// mysql tells whether the world's catalog is MySQL/MariaDB, for the statements the dialects spell
// differently.
func (w *world) mysql() bool { return w.db.Driver == catalog.MySQL }

// ident quotes an identifier that is a reserved word in one of the dialects (key is in MySQL).
func (w *world) ident(name string) string { return w.db.Ident(name) }

// query runs a query of the test (see exec) and calls scan for each row.
func (w *world) query(stmt string, args []any, scan func(r *sql.Rows) error) {
	w.t.Helper()
	w.db.Query(w.t, stmt, args, scan)
}

// addRows creates n ready rows of shard with source objects of the given sizes (cycled), uploading
// them concurrently. missing sizes' objects are not uploaded when skip says so.
func (w *world) addRows(shard int32, sizes []int64, n int, skip func(i int) bool) []string {
	w.t.Helper()
	first := w.next[shard]
	w.next[shard] += n
	rng := rand.New(rand.NewPCG(uint64(shard), uint64(first)))
	names := make([]string, n)
	rows := make([]testworld.ObjectRow, n)
	for i := range n {
		size := sizes[i%len(sizes)]
		name := fmt.Sprintf("DES_%02d_%06d_%d.bin", shard, first+i, size)
		key := "src/" + strconv.Itoa(int(shard)) + "/" + name
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		names[i] = name
		rows[i] = testworld.ObjectRow{Key: key, Size: size, Status: "ready", Name: name, Shard: testworld.Shard(shard)}
		w.mu.Lock()
		w.content[name] = data
		w.mu.Unlock()
	}
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		if skip != nil && skip(i) {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := w.store.Put(w.ctx, w.source, rows[i].Key, w.content[names[i]], objstore.PutOptions{}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		w.t.Fatal(err)
	}
	w.db.InsertObjects(w.t, "", rows)
	return names
}

// packer builds an in-process packer for the world's shards with the real S3 client (or api).
func (w *world) packer(identity string, api objstore.API, tune packer.Tuning) *packer.Packer {
	w.t.Helper()
	return w.packerWith(identity, api, tune, nil)
}

func (w *world) packerWith(identity string, api objstore.API, tune packer.Tuning, m *packer.Metrics) *packer.Packer {
	w.t.Helper()
	ds := &desv1.DesShard{}
	src := &desv1.DesSource{}
	if err := w.kube.Get(w.ctx, client.ObjectKeyFromObject(w.ds), ds); err != nil {
		w.t.Fatal(err)
	}
	if err := w.kube.Get(w.ctx, client.ObjectKeyFromObject(w.src), src); err != nil {
		w.t.Fatal(err)
	}
	store := w.store
	if api != nil {
		store = store.WithAPI(api)
	}
	p, err := packer.New(packer.Config{
		DesShard: ds, Source: src, Shards: ds.Spec.Shards, Identity: identity, Job: "job-" + identity,
		Deadline: time.Now().Add(time.Hour), Tuning: tune,
	}, packer.Deps{Kube: w.kube, Catalog: w.cat, Source: store, Archive: store, Metrics: m, Log: testLogger(w.t)})
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *world) containers() []desv1.DesContainer {
	w.t.Helper()
	list := &desv1.DesContainerList{}
	if err := w.kube.List(w.ctx, list, client.InNamespace(w.ns)); err != nil {
		w.t.Fatal(err)
	}
	slices.SortFunc(list.Items, func(a, b desv1.DesContainer) int { return strings.Compare(a.Name, b.Name) })
	return list.Items
}

func (w *world) counts() catalog.Counts {
	w.t.Helper()
	n, err := w.cat.Count(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

// expireLeases ages every shard Lease of the world past its duration, as if its holder had stopped
// renewing it that long ago: what waiting 30 s after a SIGKILL would do.
func (w *world) expireLeases() {
	w.t.Helper()
	list := &coordinationv1.LeaseList{}
	if err := w.kube.List(w.ctx, list, client.InNamespace(w.ns)); err != nil {
		w.t.Fatal(err)
	}
	for i := range list.Items {
		l := &list.Items[i]
		if l.Spec.RenewTime == nil {
			continue
		}
		l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now().Add(-2 * protocol.LeaseDuration)}
		if err := w.kube.Update(w.ctx, l); err != nil {
			w.t.Fatal(err)
		}
	}
}

// check verifies the end state: every row packed exactly once into exactly one Committed container
// (or failed when failed says so), every container byte-identical to its sources, des_containers
// matching, no multipart upload and no object that no committed container references.
func (w *world) check(failed map[string]bool) (committed int) {
	w.t.Helper()
	t := w.t
	rows := map[string]string{} // name → status
	keyOf := map[string]string{}
	w.query(`SELECT des_name, status, coalesce(des_container_key, ''), coalesce(des_error, ''), des_retries FROM objects`, nil, func(r *sql.Rows) error {
		var name, status, key, errText string
		var retries int
		if err := r.Scan(&name, &status, &key, &errText, &retries); err != nil {
			return err
		}
		rows[name], keyOf[name] = status, key
		want := "packed"
		if failed[name] {
			want = "failed"
			if errText == "" || retries != 1 {
				t.Errorf("failed row %s: error %q, retries %d; want an error text and 1 retry", name, errText, retries)
			}
		}
		if status != want {
			t.Errorf("row %s is %s, want %s", name, status, want)
		}
		return nil
	})

	records := map[string]catalog.Record{}
	w.query(`SELECT `+w.ident("key")+`, container, files, bytes, object_size, payload_checksum, index_checksum FROM des_containers`, nil, func(r *sql.Rows) error {
		var rec catalog.Record
		if err := r.Scan(&rec.Key, &rec.Container, &rec.Files, &rec.Bytes, &rec.ObjectSize, &rec.PayloadChecksum, &rec.IndexChecksum); err != nil {
			return err
		}
		records[rec.Container] = rec
		return nil
	})

	seen := map[string]string{} // name → container key
	referenced := map[string]bool{}
	for _, c := range w.containers() {
		switch c.Status.Phase {
		case desv1.PhaseCommitted:
		case desv1.PhaseRolledBack:
			if _, ok := records[c.Name]; ok {
				t.Errorf("container %s is RolledBack but has a des_containers record", c.Name)
			}
			continue
		default:
			t.Errorf("container %s is %q, want a final phase", c.Name, c.Status.Phase)
			continue
		}
		committed++
		referenced[c.Spec.Key] = true
		rec, ok := records[c.Name]
		if !ok {
			t.Errorf("committed container %s has no des_containers record", c.Name)
		}
		names := w.checkObject(&c, rec, referenced)
		for _, n := range names {
			if prev, dup := seen[n]; dup {
				t.Errorf("%s is in %s and %s", n, prev, c.Spec.Key)
			}
			seen[n] = c.Spec.Key
			if keyOf[n] != c.Spec.Key {
				t.Errorf("row %s: des_container_key %q, but it is in %s", n, keyOf[n], c.Spec.Key)
			}
		}
	}
	if len(records) != committed {
		t.Errorf("%d des_containers records, %d committed DesContainers", len(records), committed)
	}
	for name, status := range rows {
		if _, ok := seen[name]; (status == "packed") != ok {
			t.Errorf("row %s is %s; in a committed container: %v", name, status, ok)
		}
	}
	w.checkBucket(referenced)
	return committed
}

// checkPlacements compares the placement the commit recorded in each row of c (read by the reader's
// catalog path) with the container's own index and meta.
func (w *world) checkPlacements(c *desv1.DesContainer, r *desformat.Reader) {
	t, ctx := w.t, w.ctx
	locs, err := r.Locations(ctx)
	if err != nil {
		t.Errorf("container %s: locations: %v", c.Name, err)
		return
	}
	names := make([]string, len(locs))
	for i, l := range locs {
		names[i] = l.Name
	}
	got, err := w.cat.Locate(ctx, names)
	if err != nil {
		t.Errorf("container %s: %v", c.Name, err)
		return
	}
	for _, l := range locs {
		want := catalog.FileLocation{Key: c.Spec.Key, Bucket: c.Spec.Bucket, ObjectSize: r.Size(), Placed: true, Location: l}
		if fl := got[l.Name]; fl != want {
			t.Errorf("row %s: the catalog places it at %+v, the container at %+v", l.Name, fl, want)
		}
	}
}

// checkObject reads a committed container back and compares it with the sources and its records.
func (w *world) checkObject(c *desv1.DesContainer, rec catalog.Record, referenced map[string]bool) []string {
	t, ctx := w.t, w.ctx
	ra, _, err := w.store.OpenReaderAt(ctx, c.Spec.Bucket, c.Spec.Key, 64<<10)
	if err != nil {
		t.Errorf("container %s: %v", c.Name, err)
		return nil
	}
	ext := w.store.Blobs(c.Spec.Bucket, objstore.UploadOptions{})
	r, err := desformat.NewReader(ra, ra.Size(), desformat.ReaderOptions{External: ext})
	if err != nil {
		t.Errorf("container %s: %v", c.Name, err)
		return nil
	}
	rep, err := r.Verify(ctx)
	if err != nil || rep.Err() != nil || rep.ExternalSkipped > 0 {
		t.Errorf("container %s does not verify: %v %v", c.Name, err, rep.Err())
	}
	sum, err := r.Summary(ctx)
	if err != nil {
		t.Error(err)
	}
	w.checkPlacements(c, r)
	var names []string
	var payload int64
	for _, e := range r.Entries() {
		names = append(names, e.Name)
		payload += e.Size
		got, err := r.ReadFile(ctx, e.Name)
		if err != nil {
			t.Errorf("%s in %s: %v", e.Name, c.Name, err)
			continue
		}
		w.mu.Lock()
		want, ok := w.content[e.Name]
		w.mu.Unlock()
		if !ok || !bytes.Equal(got, want) {
			t.Errorf("%s in %s: %d bytes differ from the source (%d bytes)", e.Name, c.Name, len(got), len(want))
		}
		if e.IsExternal() {
			referenced[desformat.ExternalKey(containerPrefix(c), e.Name)] = true
		}
	}
	st := c.Status
	type sums struct {
		Files, Bytes, ObjectSize       int64
		PayloadChecksum, IndexChecksum string
	}
	want := sums{
		Files: int64(len(names)), Bytes: payload, ObjectSize: ra.Size(),
		PayloadChecksum: sum.PayloadChecksum(), IndexChecksum: sum.IndexChecksum(),
	}
	got := sums{Files: st.Files, Bytes: st.Bytes, ObjectSize: st.ObjectSize,
		PayloadChecksum: st.PayloadChecksum, IndexChecksum: st.IndexChecksum}
	if got != want {
		t.Errorf("container %s status %+v, object says %+v", c.Name, got, want)
	}
	if rec.Files != want.Files || rec.Bytes != want.Bytes || rec.ObjectSize != want.ObjectSize ||
		rec.PayloadChecksum != want.PayloadChecksum || rec.IndexChecksum != want.IndexChecksum || rec.Key != c.Spec.Key {
		t.Errorf("container %s: des_containers %+v, object says %+v", c.Name, rec, want)
	}
	if st.CommittedAt == nil || st.UploadedAt == nil || st.StartedAt == nil || st.Pod == "" || st.Job == "" {
		t.Errorf("container %s: incomplete status %+v", c.Name, st)
	}
	return names
}

// checkBucket finds no multipart upload and no object beyond the referenced ones in the archive bucket.
func (w *world) checkBucket(referenced map[string]bool) {
	w.t.Helper()
	for u, err := range w.store.ListMultipartUploads(w.ctx, w.bucket, "") {
		if err != nil {
			w.t.Fatal(err)
		}
		w.t.Errorf("multipart upload left: %s (%s)", u.Key, u.UploadID)
	}
	for o, err := range w.store.List(w.ctx, w.bucket, objstore.ListOptions{}) {
		if err != nil {
			w.t.Fatal(err)
		}
		if !referenced[o.Key] {
			w.t.Errorf("object %s is referenced by no committed container", o.Key)
		}
	}
}

type testWriter struct{ t testing.TB }

func (tw testWriter) Write(p []byte) (int, error) {
	tw.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// countClaims makes the catalog count how often each row is claimed.
func (w *world) countClaims() {
	w.exec(`ALTER TABLE objects ADD COLUMN claims integer NOT NULL DEFAULT 0`)
	if w.mysql() {
		// MySQL has no trigger functions: the body is the trigger's, one statement through database/sql.
		w.exec(`CREATE TRIGGER count_claims BEFORE UPDATE ON objects FOR EACH ROW BEGIN
			IF NEW.status = 'claimed' AND OLD.status <> 'claimed' THEN SET NEW.claims = OLD.claims + 1; END IF;
		END`)
		return
	}
	w.exec(`CREATE FUNCTION count_claims() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.status = 'claimed' AND OLD.status <> 'claimed' THEN NEW.claims := OLD.claims + 1; END IF;
			RETURN NEW;
		END $$`)
	w.exec(`CREATE TRIGGER count_claims BEFORE UPDATE ON objects FOR EACH ROW EXECUTE FUNCTION count_claims()`)
}

// checkClaimedOnce finds every row claimed exactly once (countClaims must have been called).
func (w *world) checkClaimedOnce() {
	w.t.Helper()
	var n, bad int
	w.db.QueryRow(w.t, `SELECT count(*), count(CASE WHEN claims <> 1 THEN 1 END) FROM objects`, nil, &n, &bad)
	if bad > 0 {
		w.t.Errorf("%d of %d rows were not claimed exactly once", bad, n)
	}
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// profileChild writes profiles of the child packer when the benchmark asks for them:
// DES_PACKER_BENCH_CPUPROFILE names a CPU profile of the whole run, DES_PACKER_BENCH_BLOCKPROFILE a
// profile of where goroutines waited (sampled once per millisecond waited), DES_PACKER_BENCH_HEAPDIR a
// directory that gets a heap profile every two seconds (heap-N.pprof; the largest is the peak).
func profileChild() (stop func()) {
	var stops []func()
	if path := os.Getenv("DES_PACKER_BENCH_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if path := os.Getenv("DES_PACKER_BENCH_BLOCKPROFILE"); path != "" {
		runtime.SetBlockProfileRate(int(time.Millisecond))
		stops = append(stops, func() {
			if f, err := os.Create(path); err == nil {
				_ = pprof.Lookup("block").WriteTo(f, 0)
				f.Close()
			}
		})
	}
	if dir := os.Getenv("DES_PACKER_BENCH_HEAPDIR"); dir != "" {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			t := time.NewTicker(2 * time.Second)
			defer t.Stop()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				case <-t.C:
				}
				runtime.GC()
				if f, err := os.Create(filepath.Join(dir, fmt.Sprintf("heap-%03d.pprof", i))); err == nil {
					_ = pprof.WriteHeapProfile(f)
					f.Close()
				}
			}
		})
		stops = append(stops, func() { close(done); wg.Wait() })
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}
