package controllers

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/lease"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/test/testworld"
)

// crashWorld is a DesShard whose packer died at some step: a catalog with claimed rows, an archive
// bucket, and the DesContainer the packer left behind.
type crashWorld struct {
	*testEnv
	cat    *catalog.Catalog
	store  *objstore.Store
	bucket string
	con    *desv1.DesContainer
	rows   []catalog.Row
	db     *testworld.CatalogDB
}

const crashShard = 3

func newCrashWorld(t *testing.T, phase desv1.ContainerPhase) *crashWorld {
	t.Helper()
	return newCrashWorldWith(t, phase, nil)
}

// newCrashWorldWith is newCrashWorld with the DesContainer changed by mutate (given its archive
// bucket) before it is created: its spec is immutable.
func newCrashWorldWith(t *testing.T, phase desv1.ContainerPhase, mutate func(c *desv1.DesContainer, bucket string)) *crashWorld {
	t.Helper()
	return newCrashWorldOn(t, catalog.Postgres, phase, mutate)
}

// newCrashWorldOn is newCrashWorldWith with its catalog in a database of driver d.
func newCrashWorldOn(t *testing.T, d catalog.Driver, phase desv1.ContainerPhase, mutate func(c *desv1.DesContainer, bucket string)) *crashWorld {
	t.Helper()
	e := newTestEnv(t)
	db := testworld.NewCatalogDB(t, d)
	db.CreateObjects(t, testworld.ObjectsTable{})
	// Five ready rows of sizes 100 to 500: the archive stores those of 300 B and more externally.
	var rows []testworld.ObjectRow
	for g := 1; g <= 5; g++ {
		rows = append(rows, testworld.ObjectRow{Key: fmt.Sprintf("src/%d", g), Size: int64(100 * g), Status: "ready",
			Name: fmt.Sprintf("N_%d", g), Shard: testworld.Shard(crashShard)})
	}
	db.InsertObjects(t, "", rows)
	s3 := testworld.S3Store(t)
	bucket := s3.NewBucket(t)
	src := e.realSourceOn(d, "src", db.DSN, bucket)
	e.create(src)
	e.secret("archive-s3", map[string]string{"AWS_ACCESS_KEY_ID": s3.AccessKey, "AWS_SECRET_ACCESS_KEY": s3.SecretKey})
	ds := sampleShard("daily", "src", crashShard)
	ds.Spec.Archive.Endpoint, ds.Spec.Archive.Bucket, ds.Spec.Archive.Prefix = s3.Endpoint, bucket, "arch"
	e.create(ds)

	cat := db.NewCatalog(t, catalog.DefaultMapping("objects", bucket))
	if err := cat.Migrate(e.ctx); err != nil {
		t.Fatal(err)
	}
	store := s3.NewStore(t)
	day := e.clock.Now()
	id := protocol.NewContainerID(day)
	con := &desv1.DesContainer{
		ObjectMeta: metav1.ObjectMeta{Name: protocol.ContainerName("daily", id), Finalizers: []string{protocol.FinalizerRecovery},
			Labels: map[string]string{protocol.LabelDesShard: "daily", protocol.LabelShard: fmt.Sprint(crashShard)}},
		Spec: desv1.DesContainerSpec{ShardRef: "daily", Shard: crashShard, Day: day.Format(time.DateOnly), Bucket: bucket,
			Key: protocol.ContainerKey("arch", day, crashShard, id)},
	}
	if mutate != nil {
		mutate(con, bucket)
	}
	e.create(con)
	con.Status.Phase, con.Status.Pod = phase, "packer-pod-1"
	if err := e.c.Status().Update(e.ctx, con); err != nil {
		t.Fatal(err)
	}
	claimed, err := cat.Claim(e.ctx, crashShard, con.Name, 100)
	if err != nil || len(claimed) != 5 {
		t.Fatalf("claim: %d rows, %v", len(claimed), err)
	}
	return &crashWorld{testEnv: e, cat: cat, store: store, bucket: bucket, con: con, rows: claimed, db: db}
}

func (w *crashWorld) reconciler() *DesContainerReconciler {
	connector := NewConnector(w.c)
	w.t.Cleanup(connector.Close)
	return &DesContainerReconciler{Client: w.c, APIReader: w.c, Leases: lease.NewObserver(), Connector: connector, Recorder: w.events, Clock: w.clock}
}

// archive builds the container the packer would have written for rows, with big payloads (≥ 300 B)
// stored under the container's prefix.
func (w *crashWorld) archive(rows []catalog.Row) ([]byte, desformat.Summary) {
	w.t.Helper()
	var buf bytes.Buffer
	ext := w.store.Blobs(w.bucket, objstore.UploadOptions{})
	dw, err := desformat.NewWriter(&buf, desformat.WriterOptions{External: ext, ExternalThreshold: 300, ExternalPrefix: protocol.PrefixOfContainerKey(w.con.Spec.Key)})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, r := range rows {
		payload := bytes.Repeat([]byte{byte(r.ID)}, int(r.Size))
		if err := dw.Add(w.ctx, desformat.FileHeader{Name: r.Name, Size: r.Size}, bytes.NewReader(payload)); err != nil {
			w.t.Fatal(err)
		}
	}
	if err := dw.Close(); err != nil {
		w.t.Fatal(err)
	}
	return buf.Bytes(), dw.Summary()
}

// placements pairs the claimed rows with where the archive data puts them, as a packer's commit does.
func (w *crashWorld) placements(data []byte) []catalog.Placement {
	w.t.Helper()
	r, err := desformat.NewReader(bytes.NewReader(data), int64(len(data)), desformat.ReaderOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	locs, err := r.Locations(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	ids, err := w.cat.ClaimedIDs(w.ctx, w.con.Name)
	if err != nil {
		w.t.Fatal(err)
	}
	ps, err := catalog.PlaceClaimed(locs, ids)
	if err != nil {
		w.t.Fatal(err)
	}
	return ps
}

// checkPlacements: every row of a committed container is placed exactly where its object says, so
// that a reader serves it with one ranged GET. Recovery's roll-forward must record this as the
// packer's commit does.
func (w *crashWorld) checkPlacements() {
	w.t.Helper()
	ra, _, err := w.store.OpenReaderAt(w.ctx, w.bucket, w.con.Spec.Key, 1<<20)
	if err != nil {
		w.t.Fatal(err)
	}
	r, err := desformat.NewReader(ra, ra.Size(), desformat.ReaderOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	locs, err := r.Locations(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	var names []string
	for _, l := range locs {
		names = append(names, l.Name)
	}
	got, err := w.cat.Locate(w.ctx, names)
	if err != nil {
		w.t.Fatal(err)
	}
	if len(got) != len(w.rows) || len(locs) != len(w.rows) {
		w.t.Fatalf("%d rows located, %d in the object, %d claimed", len(got), len(locs), len(w.rows))
	}
	for _, l := range locs {
		want := catalog.FileLocation{Key: w.con.Spec.Key, Bucket: w.bucket, ObjectSize: ra.Size(), Placed: true, Location: l}
		if got[l.Name] != want {
			w.t.Errorf("row %s: placed at %+v, the object has %+v", l.Name, got[l.Name], want)
		}
	}
}

func (w *crashWorld) upload(data []byte) {
	w.t.Helper()
	if _, err := w.store.Put(w.ctx, w.bucket, w.con.Spec.Key, data, objstore.PutOptions{}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *crashWorld) setStatus(mutate func(*desv1.DesContainerStatus)) {
	w.t.Helper()
	w.get(w.con)
	mutate(&w.con.Status)
	if err := w.c.Status().Update(w.ctx, w.con); err != nil {
		w.t.Fatal(err)
	}
}

func (w *crashWorld) summaryStatus(s desformat.Summary) func(*desv1.DesContainerStatus) {
	return func(st *desv1.DesContainerStatus) {
		st.Phase, st.Files, st.Bytes = desv1.PhaseUploaded, s.Files, s.PayloadBytes
		st.IndexChecksum, st.PayloadChecksum = s.IndexChecksum(), s.PayloadChecksum()
	}
}

// state is everything recovery may change, for "a second reconcile changes nothing".
func (w *crashWorld) state() string {
	w.t.Helper()
	counts, err := w.cat.Count(w.ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	w.get(w.con)
	var objects, uploads []string
	for o, err := range w.store.List(w.ctx, w.bucket, objstore.ListOptions{}) {
		if err != nil {
			w.t.Fatal(err)
		}
		objects = append(objects, o.Key)
	}
	for u, err := range w.store.ListMultipartUploads(w.ctx, w.bucket, "") {
		if err != nil {
			w.t.Fatal(err)
		}
		uploads = append(uploads, u.Key)
	}
	committed, _ := w.cat.IsCommitted(w.ctx, w.con.Name)
	return fmt.Sprintf("phase=%s counts=%+v committed=%v objects=%v uploads=%v finalizers=%v",
		w.con.Status.Phase, counts, committed, objects, uploads, w.con.Finalizers)
}

// legacyKey gives a container the key containers had before the object moved inside its own
// prefix (protocol.LegacyContainerKey): such containers must still be recovered.
func legacyKey(c *desv1.DesContainer, _ string) {
	day, err := time.Parse(time.DateOnly, c.Spec.Day)
	id, ok := protocol.ContainerIDOf(c.Spec.ShardRef, c.Name)
	if err != nil || !ok {
		panic(fmt.Sprintf("container %s/%s is not as newCrashWorld makes it", c.Name, c.Spec.Day)) // a broken test, not input
	}
	c.Spec.Key = protocol.LegacyContainerKey("arch", day, c.Spec.Shard, id)
}

func TestRecoveryMatrix(t *testing.T) { testworld.ForEachDialect(t, testRecoveryMatrix) }

func testRecoveryMatrix(t *testing.T, d catalog.Driver) {
	type recoveryCase struct {
		name      string
		crash     func(w *crashWorld)
		wantPhase desv1.ContainerPhase
		want      catalog.Counts
		objects   int // objects left in the bucket
	}
	cases := []recoveryCase{
		{"before upload", func(*crashWorld) {}, desv1.PhaseRolledBack, catalog.Counts{Ready: 5}, 0},
		{"during multipart", func(w *crashWorld) {
			up := w.store.NewUploader(w.ctx, w.bucket, w.con.Spec.Key, objstore.UploadOptions{PartSize: objstore.MinPartSize,
				OnUploadID: func(id string) error {
					w.setStatus(func(st *desv1.DesContainerStatus) { st.UploadID = id })
					return nil
				}})
			if _, err := up.Write(make([]byte, objstore.MinPartSize+10)); err != nil {
				w.t.Fatal(err)
			}
			_, _ = w.archive(w.rows) // its big payloads went up already
			// the packer dies here: the upload is neither completed nor aborted
		}, desv1.PhaseRolledBack, catalog.Counts{Ready: 5}, 0},
		{"after upload, before commit", func(w *crashWorld) {
			data, sum := w.archive(w.rows)
			w.upload(data)
			w.setStatus(w.summaryStatus(sum))
		}, desv1.PhaseCommitted, catalog.Counts{Packed: 5}, 4}, // the container and its 3 big payloads
		{"after upload of an object that lacks a claimed row", func(w *crashWorld) {
			data, sum := w.archive(w.rows[:4])
			w.upload(data)
			w.setStatus(w.summaryStatus(sum))
		}, desv1.PhaseRolledBack, catalog.Counts{Ready: 5}, 0},
		{"after upload of an object whose checksums differ from the status", func(w *crashWorld) {
			data, sum := w.archive(w.rows)
			w.upload(data)
			sum.MetaCRC++
			w.setStatus(w.summaryStatus(sum))
		}, desv1.PhaseRolledBack, catalog.Counts{Ready: 5}, 0},
		{"after commit, before the status said so", func(w *crashWorld) {
			data, sum := w.archive(w.rows)
			w.upload(data)
			w.setStatus(w.summaryStatus(sum))
			rec := catalog.Record{Key: w.con.Spec.Key, Container: w.con.Name, Bucket: w.bucket, Source: "src", Shard: crashShard,
				Day: w.clock.Now(), Files: sum.Files, Bytes: sum.PayloadBytes, ObjectSize: sum.Size,
				PayloadChecksum: sum.PayloadChecksum(), IndexChecksum: sum.IndexChecksum(), Writer: "packer-pod-1",
				Placements: w.placements(data)}
			if err := w.cat.Commit(w.ctx, rec); err != nil {
				w.t.Fatal(err)
			}
		}, desv1.PhaseCommitted, catalog.Counts{Packed: 5}, 4},
	}
	// Containers written before the current layout: rolled back with their big payloads (the same
	// per-container prefix), and rolled forward.
	type run struct {
		recoveryCase
		legacy bool // the container has a protocol.LegacyContainerKey
	}
	var runs []run
	for _, c := range cases {
		runs = append(runs, run{recoveryCase: c})
	}
	for _, name := range []string{"during multipart", "after upload of an object that lacks a claimed row", "after upload, before commit"} {
		i := slices.IndexFunc(cases, func(c recoveryCase) bool { return c.name == name })
		legacy := run{recoveryCase: cases[i], legacy: true}
		legacy.name = "legacy key, " + name
		runs = append(runs, legacy)
	}
	for _, tc := range runs {
		t.Run(tc.name, func(t *testing.T) {
			var mutate func(*desv1.DesContainer, string)
			if tc.legacy {
				mutate = legacyKey
			}
			w := newCrashWorldOn(t, d, desv1.PhaseWriting, mutate)
			if tc.legacy != (w.con.Spec.Key == protocol.LegacyContainerKey("arch", w.clock.Now(), crashShard, w.con.Name[len("daily-"):])) {
				t.Fatalf("key %s: legacy = %v", w.con.Spec.Key, !tc.legacy)
			}
			tc.crash(w)
			r := w.reconciler()
			w.reconcile(r, w.con.Name)
			first := w.state()
			w.reconcile(r, w.con.Name)
			if second := w.state(); second != first {
				t.Fatalf("a second reconcile changed something:\n%s\n%s", first, second)
			}
			counts, _ := w.cat.Count(w.ctx)
			t.Logf("reason: %s", w.con.Status.Reason)
			if w.con.Status.Phase != tc.wantPhase || counts.Rows() != tc.want {
				t.Fatalf("phase %s, counts %+v; want %s, %+v (reason: %s)", w.con.Status.Phase, counts, tc.wantPhase, tc.want, w.con.Status.Reason)
			}
			if len(w.con.Finalizers) != 0 {
				t.Errorf("finalizer kept on a finished container: %v", w.con.Finalizers)
			}
			var objects int
			for _, err := range w.store.List(w.ctx, w.bucket, objstore.ListOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				objects++
			}
			for _, err := range w.store.ListMultipartUploads(w.ctx, w.bucket, "") {
				t.Fatalf("multipart upload left behind (%v)", err)
			}
			if objects != tc.objects {
				t.Fatalf("%d objects left, want %d (%s)", objects, tc.objects, first)
			}
			if committed, _ := w.cat.IsCommitted(w.ctx, w.con.Name); committed != (tc.wantPhase == desv1.PhaseCommitted) {
				t.Fatalf("des_containers record present = %v for phase %s", committed, tc.wantPhase)
			}
			if tc.wantPhase == desv1.PhaseCommitted {
				w.checkPlacements()
			}
		})
	}
}

// holdLease gives the container's writer (packer-pod-1) a fresh 30 s shard Lease.
func (w *crashWorld) holdLease() {
	w.t.Helper()
	w.create(&coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: protocol.LeaseName("daily", crashShard)},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("packer-pod-1"), LeaseDurationSeconds: ptr.To(int32(30)),
			RenewTime: &metav1.MicroTime{Time: w.clock.Now()}},
	})
}

func TestLiveWriterIsLeftAlone(t *testing.T) {
	w := newCrashWorld(t, desv1.PhaseWriting)
	w.holdLease()
	before := w.state()
	r := w.reconciler()
	res := w.reconcile(r, w.con.Name)
	if after := w.state(); after != before {
		t.Fatalf("recovery touched a container whose writer is alive:\n%s\n%s", before, after)
	}
	if res.RequeueAfter <= 0 || res.RequeueAfter > 31*time.Second {
		t.Fatalf("requeue after %v, want the Lease expiry", res.RequeueAfter)
	}
	// Once this controller has seen the Lease unchanged for its duration, the container is recovered.
	w.clock.Step(31 * time.Second)
	w.reconcile(r, w.con.Name)
	w.get(w.con)
	if w.con.Status.Phase != desv1.PhaseRolledBack {
		t.Fatalf("after the Lease expired: phase %s", w.con.Status.Phase)
	}
}

func TestJudgeWriter(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	// The renew time is the writer's clock and never decides: ten minutes off either way.
	leaseOf := func(holder string, skew time.Duration) *coordinationv1.Lease {
		return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder),
			LeaseDurationSeconds: ptr.To(int32(30)), RenewTime: &metav1.MicroTime{Time: now.Add(skew)}}}
	}
	held := leaseObservation{State: leaseHeld, Left: 20 * time.Second}
	expired := leaseObservation{State: leaseExpired}
	free := leaseObservation{State: lease.Free}
	con := func(pod string, age time.Duration) *desv1.DesContainer {
		c := &desv1.DesContainer{}
		c.CreationTimestamp = metav1.NewTime(now.Add(-age))
		c.Status.Pod = pod
		return c
	}
	jobWith := func(cond batchv1.JobConditionType) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "daily-r1-g0"}}
		j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue}}
		return j
	}
	cases := []struct {
		name    string
		c       *desv1.DesContainer
		lease   *coordinationv1.Lease
		seen    leaseObservation
		job     *batchv1.Job
		alive   bool
		recheck time.Duration
	}{
		{"writer holds a Lease renewed by a clock 10 min behind", con("p1", time.Hour), leaseOf("p1", -10*time.Minute), held, nil, true, 20 * time.Second},
		{"writer holds a Lease renewed by a clock 10 min ahead", con("p1", time.Hour), leaseOf("p1", 10*time.Minute), held, nil, true, 20 * time.Second},
		{"writer's Lease unchanged for its duration, renewTime looks fresh", con("p1", time.Hour), leaseOf("p1", 0), expired, nil, false, 0},
		{"another pod took the shard", con("p1", time.Hour), leaseOf("p2", 0), held, nil, false, 0},
		{"released without finishing", con("p1", time.Hour), leaseOf("", 0), free, nil, false, 0},
		{"no lease at all", con("p1", time.Hour), nil, free, nil, false, 0},
		{"Job FailureTarget while the writer holds its Lease: SIGTERM is coming, not death", con("p1", time.Hour), leaseOf("p1", 0), held, jobWith(batchv1.JobFailureTarget), true, 20 * time.Second},
		{"Job Failed while the writer holds its Lease", con("p1", time.Hour), leaseOf("p1", 0), held, jobWith(batchv1.JobFailed), true, 20 * time.Second},
		{"Job Failed and the Lease expired", con("p1", time.Hour), leaseOf("p1", 0), expired, jobWith(batchv1.JobFailed), false, 0},
		{"Job complete, Lease released", con("p1", time.Hour), leaseOf("", 0), free, jobWith(batchv1.JobComplete), false, 0},
		{"brand new container without a pod yet", con("", time.Second), nil, free, nil, true, protocol.LeaseDuration - time.Second},
		{"brand new container without a pod, its Job failing", con("", time.Second), nil, free, jobWith(batchv1.JobFailureTarget), true, protocol.LeaseDuration - time.Second},
		{"old container that never got a pod", con("", time.Hour), nil, free, nil, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := judgeWriter(tc.c, tc.lease, tc.seen, tc.job, now)
			if got.alive != tc.alive || got.recheck != tc.recheck {
				t.Fatalf("alive = %v, recheck %s (%s); want %v, %s", got.alive, got.recheck, got.why, tc.alive, tc.recheck)
			}
		})
	}
}

// renewLease writes the shard Lease as its holder's renewal would: renewTime moves on by d on the
// writer's clock, whatever that clock says.
func (w *crashWorld) renewLease(d time.Duration) {
	w.t.Helper()
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: protocol.LeaseName("daily", crashShard)}}
	w.get(l)
	l.Spec.RenewTime = &metav1.MicroTime{Time: l.Spec.RenewTime.Add(d)}
	if err := w.c.Update(w.ctx, l); err != nil {
		w.t.Fatal(err)
	}
}

// TestSkewedWriterClockIsNotDeath: the writer's clock is 10 minutes behind the controller's, so every
// renewTime it writes looks long expired. While it keeps renewing, its container is left alone; once
// it stops, the controller recovers the container after seeing the Lease unchanged for 30 s.
func TestSkewedWriterClockIsNotDeath(t *testing.T) {
	w := newCrashWorld(t, desv1.PhaseWriting)
	w.holdLease()
	w.renewLease(-10 * time.Minute)
	r := w.reconciler()
	before := w.state()
	for range 4 {
		w.reconcile(r, w.con.Name)
		if after := w.state(); after != before {
			t.Fatalf("recovery touched the container of a writer that renews its Lease:\n%s\n%s", before, after)
		}
		w.clock.Step(20 * time.Second) // 80 s in all: longer than the Lease duration
		w.renewLease(20 * time.Second)
	}
	w.reconcile(r, w.con.Name) // sees the last renewal: 30 s from here
	w.clock.Step(31 * time.Second)
	w.reconcile(r, w.con.Name)
	w.get(w.con)
	if w.con.Status.Phase != desv1.PhaseRolledBack {
		t.Fatalf("writer stopped renewing 31 s ago: phase %s, want RolledBack", w.con.Status.Phase)
	}
}

// TestFailingJobWithHeldLeaseIsNotDeath: the Job controller marks a Job FailureTarget before it sends
// SIGTERM to the pods, and the packer finishes the container it is committing after SIGTERM. While
// the writer's Lease is renewed, its container must not be recovered.
func TestFailingJobWithHeldLeaseIsNotDeath(t *testing.T) {
	w := newCrashWorld(t, desv1.PhaseUploaded)
	w.holdLease()
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "daily-r1-g0"}, Spec: batchv1.JobSpec{
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "pack", Image: "des"}}}}}}
	w.create(job)
	start := metav1.NewTime(w.clock.Now().Add(-time.Minute))
	job.Status.StartTime = &start
	job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue,
		Reason: "DeadlineExceeded", Message: "Job was active longer than specified deadline", LastTransitionTime: metav1.NewTime(w.clock.Now())}}
	if err := w.c.Status().Update(w.ctx, job); err != nil {
		t.Fatal(err)
	}
	w.setStatus(func(st *desv1.DesContainerStatus) { st.Job = job.Name })
	r := w.reconciler()
	before := w.state()
	for range 3 {
		res := w.reconcile(r, w.con.Name)
		if after := w.state(); after != before {
			t.Fatalf("recovery touched the container of a SIGTERMed writer that holds its Lease:\n%s\n%s", before, after)
		}
		if res.RequeueAfter <= 0 {
			t.Fatalf("no requeue for a live writer: %v", res)
		}
		w.clock.Step(10 * time.Second)
		w.renewLease(10 * time.Second)
	}
}

// staleLeases wraps the real client and answers Lease reads with the released Lease a previous
// holder left, as an informer cache does until it sees the new holder's acquire. The real API server
// cannot be made to serve a stale read on demand; this fault is what the wrapper adds.
type staleLeases struct{ client.Client }

func (s staleLeases) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := s.Client.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	if l, ok := obj.(*coordinationv1.Lease); ok {
		l.Spec.HolderIdentity = nil // released
	}
	return nil
}

// TestStaleCacheDoesNotRecoverALiveWriter: the cache says the shard Lease is released while the
// writer recorded in the container holds it. Judged on fresh reads, the writer is alive and its
// container is left alone; judged on the cache alone it would be rolled back under the writer.
func TestStaleCacheDoesNotRecoverALiveWriter(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fresh     bool
		wantPhase desv1.ContainerPhase
	}{
		{"fresh reads", true, desv1.PhaseWriting},
		{"cache alone", false, desv1.PhaseRolledBack},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newCrashWorld(t, desv1.PhaseWriting)
			w.holdLease()
			r := w.reconciler()
			r.Client = staleLeases{w.c}
			if !tc.fresh {
				r.APIReader = nil
			}
			res := w.reconcile(r, w.con.Name)
			w.get(w.con)
			if w.con.Status.Phase != tc.wantPhase {
				t.Fatalf("phase %s, want %s (requeue %v)", w.con.Status.Phase, tc.wantPhase, res)
			}
		})
	}
}

// TestRecoveryDeletesOnlyWhatTheContainerOwns: a DesContainer whose spec names a bucket or key that
// is not its own under its DesShard (written by anyone who may create DesContainers, or by a bug)
// must not make recovery delete that object. The object survives, the phase stays, the rows go back
// to ready, Degraded says why, and one Warning event tells a person.
func TestRecoveryDeletesOnlyWhatTheContainerOwns(t *testing.T) {
	otherBucket := testworld.S3Store(t).NewBucket(t)
	id := func(c *desv1.DesContainer) string { return c.Name[len("daily-"):] }
	day := func(c *desv1.DesContainer) time.Time { d, _ := time.Parse(time.DateOnly, c.Spec.Day); return d }
	// otherLayout is the key of c's prefix in the layout c's spec does not use.
	otherLayout := func(c *desv1.DesContainer) string {
		key, legacy := protocol.ContainerKeysOf(protocol.PrefixOfContainerKey(c.Spec.Key))
		if c.Spec.Key == key {
			return legacy
		}
		return key
	}
	ownKey := func(c *desv1.DesContainer) string { return c.Spec.Key }
	cases := []struct {
		name      string
		mutate    func(c *desv1.DesContainer, bucket string)
		reason    desv1.ConditionReason
		committed func(c *desv1.DesContainer) string // a key the catalog records for another container
	}{
		{"key under another prefix", func(c *desv1.DesContainer, _ string) {
			c.Spec.Key = protocol.ContainerKey("precious", day(c), crashShard, id(c))
		}, desv1.ReasonKeyNotOwned, nil},
		{"another bucket", func(c *desv1.DesContainer, _ string) { c.Spec.Bucket = otherBucket }, desv1.ReasonKeyNotOwned, nil},
		// A key of another shard or day than spec.shard and spec.day is refused by the CRD already
		// (TestInvalidResourcesAreRefusedWithAClearMessage); TestCheckContainerKey covers the check.
		{"key of another container", func(c *desv1.DesContainer, _ string) {
			c.Spec.Key = protocol.ContainerKey("arch", day(c), crashShard, protocol.NewContainerID(day(c).Add(time.Hour)))
		}, desv1.ReasonKeyNotOwned, nil},
		{"its own key, recorded as committed by another container", nil, desv1.ReasonKeyCommitted, ownKey},
		{"its legacy key, recorded as committed by another container", legacyKey, desv1.ReasonKeyCommitted, ownKey},
		// Both keys share the prefix whose _bigFiles/ a roll-back deletes.
		{"its key, the legacy key of its prefix recorded as committed", nil, desv1.ReasonKeyCommitted, otherLayout},
		{"its legacy key, the current key of its prefix recorded as committed", legacyKey, desv1.ReasonKeyCommitted, otherLayout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newCrashWorldWith(t, desv1.PhaseWriting, tc.mutate)
			if tc.committed != nil {
				w.db.Exec(t, `INSERT INTO des_containers (key, container, bucket, source, shard, day, files, bytes,
					object_size, payload_checksum, index_checksum, writer) VALUES ($1, 'daily-c0000000000000001', $2, 'src', $3, now(), 5, 1, 1, 'x', 'y', 'other-pod')`,
					tc.committed(w.con), w.bucket, crashShard)
			}
			// Someone's object at the named location, and an upload of it that is not ours either.
			if _, err := w.store.Put(w.ctx, w.con.Spec.Bucket, w.con.Spec.Key, []byte("not a container"), objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			r := w.reconciler()
			for range 2 {
				w.reconcile(r, w.con.Name)
			}
			if _, err := w.store.Head(w.ctx, w.con.Spec.Bucket, w.con.Spec.Key); err != nil {
				t.Fatalf("the object at %s/%s did not survive recovery: %v", w.con.Spec.Bucket, w.con.Spec.Key, err)
			}
			w.get(w.con)
			if w.con.Status.Phase != desv1.PhaseWriting || len(w.con.Finalizers) == 0 {
				t.Fatalf("phase %s, finalizers %v; want Writing and the finalizer kept for a person", w.con.Status.Phase, w.con.Finalizers)
			}
			c := meta.FindStatusCondition(w.con.Status.Conditions, desv1.ConditionDegraded)
			if c == nil || c.Status != metav1.ConditionTrue || c.Reason != string(tc.reason) || !strings.Contains(c.Message, w.con.Spec.Key) {
				t.Fatalf("Degraded = %+v, want True/%s naming the key", c, tc.reason)
			}
			if counts, _ := w.cat.Count(w.ctx); counts != (catalog.Counts{Ready: 5}) {
				t.Fatalf("catalog %+v: the rows should be rolled back (the catalog is keyed by container name)", counts)
			}
			if n := w.countEvents(tc.reason); n != 1 {
				t.Fatalf("%d %s events after two reconciles, want 1", n, tc.reason)
			}
		})
	}
}

// TestEmptyContainerDeletedByItsWriterIsQuiet: a packer that found no rows to claim deletes the
// container it made; the recovery finalizer brings it to the controller, which must end it without a
// Warning (a clean run would otherwise warn once per idle shard). A deleted container that did claim
// rows is still a roll-back worth a Warning.
func TestEmptyContainerDeletedByItsWriterIsQuiet(t *testing.T) {
	for _, tc := range []struct {
		name     string
		claimed  bool
		warnings int
	}{
		{"nothing claimed, uploaded or stored", false, 0},
		{"rows claimed", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newCrashWorld(t, desv1.PhaseWriting)
			if !tc.claimed {
				if _, err := w.cat.RollBack(w.ctx, w.con.Name); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.c.Delete(w.ctx, w.con); err != nil {
				t.Fatal(err)
			}
			w.get(w.con)
			stale := w.con.DeepCopy()
			r := w.reconciler()
			w.reconcile(r, w.con.Name)
			// The cache may still show it, finished but with its finalizer: gone is no error.
			stale.Status.Phase = desv1.PhaseRolledBack
			r.Client = staleContainer{Client: w.c, snapshot: stale}
			w.reconcile(r, w.con.Name)
			if err := w.c.Get(w.ctx, client.ObjectKeyFromObject(w.con), w.con); !apierrors.IsNotFound(err) {
				t.Fatalf("container still there after recovery of its deletion: %v (finalizers %v)", err, w.con.Finalizers)
			}
			if n := w.countEvents(desv1.RecoveredReason(desv1.PhaseRolledBack)); n != tc.warnings {
				t.Fatalf("%d Warning %s events, want %d", n, desv1.RecoveredReason(desv1.PhaseRolledBack), tc.warnings)
			}
			if counts, _ := w.cat.Count(w.ctx); counts != (catalog.Counts{Ready: 5}) {
				t.Fatalf("catalog %+v, want every row ready", counts)
			}
		})
	}
}

// staleContainer answers reads of one DesContainer with an old snapshot, as an informer cache does
// until it sees the deletion.
type staleContainer struct {
	client.Client
	snapshot *desv1.DesContainer
}

func (s staleContainer) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if c, ok := obj.(*desv1.DesContainer); ok && key == client.ObjectKeyFromObject(s.snapshot) {
		s.snapshot.DeepCopyInto(c)
		return nil
	}
	return s.Client.Get(ctx, key, obj, opts...)
}
