// Package e2e runs DES end to end on the local stack (internal/devstack): the controller and real
// packer processes against real PostgreSQL, S3 and Kubernetes control-plane servers, with processes
// killed at random moments, and checks that every catalog row ends in exactly one committed container.
package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/devstack"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/testworld"
)

const (
	ns        = "scans"
	shardBits = 8
	files     = 1500
)

// managerBinary is the DES binary under test: $DES_MANAGER_BIN (make test-e2e builds it) or a fresh
// build.
func managerBinary(t *testing.T) string {
	if p := os.Getenv("DES_MANAGER_BIN"); p != "" {
		return p
	}
	root, err := testworld.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "manager")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/manager")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build manager: %v\n%s", err, b)
	}
	return out
}

func TestPackUnderChaosThenCleanUp(t *testing.T) {
	ctx := context.Background()
	s, err := devstack.Start(ctx, devstack.Options{Dir: t.TempDir(), Manager: managerBinary(t), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	seed, err := s.SeedSource(ctx, devstack.SeedOptions{Namespace: ns, Files: files, ShardBits: shardBits,
		Prefix: "SCAN", BigEvery: 300, BigSize: 600 << 10, Seed: uint64(time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ApplySamples(ctx, seed, 200); err != nil {
		t.Fatal(err)
	}
	// Runs every 15 s, so shards whose Job was killed are packed again soon.
	if _, err := s.Kubectl(ctx, "-n", ns, "patch", "desshard", "scans-all", "--type=merge", "-p", `{"spec":{"interval":"15s"}}`); err != nil {
		t.Fatal(err)
	}

	kills := chaos(t, s, 8, 2)
	p, err := s.WaitPacked(ctx, seed, 8*time.Minute)
	if err != nil {
		out, _ := s.Kubectl(ctx, "-n", ns, "get", "desshards,descontainers,jobs", "-o", "wide")
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("after %s: %s", kills, p)
	if p.Rows.Failed != 0 || p.Rows.Packed != files {
		t.Fatalf("rows: %+v, want all %d packed", p.Rows, files)
	}

	checkExactlyOnce(t, s, seed)
	reader, err := s.StartReader(ctx, seed, shardBits)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if err := reader.VerifyFiles(seed, someNames(seed, 60)); err != nil {
		t.Fatal(err)
	}

	out, _ := s.Kubectl(ctx, "-n", ns, "get", "dessources,desshards")
	t.Logf("\n%s", out)
	deleteShardAndCheckCleanup(t, s, seed)
}

// chaos SIGKILLs packer pods and the controller at random moments while packing runs, and restarts
// the controller after each of its kills.
func chaos(t *testing.T, s *devstack.Stack, podKills, controllerKills int) string {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	killedPods, killedControllers := 0, 0
	deadline := time.Now().Add(2 * time.Minute)
	for (killedPods < podKills || killedControllers < controllerKills) && time.Now().Before(deadline) {
		time.Sleep(time.Duration(200+rng.IntN(1200)) * time.Millisecond)
		if killedControllers < controllerKills && rng.IntN(4) == 0 {
			s.KillController()
			killedControllers++
			t.Logf("chaos: killed the controller (%d)", killedControllers)
			time.Sleep(time.Duration(rng.IntN(2000)) * time.Millisecond)
			if err := s.StartController(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if running := s.Runner.Running(); len(running) > 0 && killedPods < podKills {
			if s.Runner.Kill(running[rng.IntN(len(running))]) {
				killedPods++
				t.Logf("chaos: SIGKILLed a packer pod (%d)", killedPods)
			}
		}
	}
	return fmt.Sprintf("%d packer kills and %d controller kills", killedPods, killedControllers)
}

// checkExactlyOnce proves the central promise from the outside: each row is packed into exactly one
// Committed container whose object holds it, and the archive holds nothing else.
func checkExactlyOnce(t *testing.T, s *devstack.Stack, seed *devstack.Seed) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, seed.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rows, err := pool.Query(ctx, `SELECT des_name, des_container_key FROM objects`)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string][]string{}
	for rows.Next() {
		var name, key string
		if err := rows.Scan(&name, &key); err != nil {
			t.Fatal(err)
		}
		byKey[key] = append(byKey[key], name)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	recorded, err := pgx.CollectRows(must(pool.Query(ctx, `SELECT key FROM des_containers`)), pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	list := &desv1.DesContainerList{}
	if err := s.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	committed := map[string]bool{}
	for _, c := range list.Items {
		if c.Status.Phase == desv1.PhaseCommitted {
			committed[c.Spec.Key] = true
		}
	}
	if len(recorded) != len(committed) || len(byKey) != len(committed) {
		t.Fatalf("%d des_containers records, %d Committed DesContainers, %d keys in packed rows", len(recorded), len(committed), len(byKey))
	}

	store := objstore.NewFromAPI(s.S3.Client())
	referenced := map[string]bool{}
	for key, names := range byKey {
		if !committed[key] {
			t.Fatalf("rows packed into %s, which is no Committed DesContainer", key)
		}
		ra, _, err := store.OpenReaderAt(ctx, seed.ArchiveBucket, key, desformat.DefaultTailSize)
		if err != nil {
			t.Fatalf("open %s: %v", key, err)
		}
		r, err := desformat.NewReader(ra, ra.Size(), desformat.ReaderOptions{External: store.Blobs(seed.ArchiveBucket, objstore.UploadOptions{})})
		if err != nil {
			t.Fatalf("read %s: %v", key, err)
		}
		var inside []string
		for _, e := range r.Entries() {
			inside = append(inside, e.Name)
			if e.IsExternal() {
				referenced[desformat.ExternalKey(strings.TrimSuffix(key, ".des"), e.Name)] = true
			}
		}
		sort.Strings(inside)
		sort.Strings(names)
		if strings.Join(inside, ",") != strings.Join(names, ",") {
			t.Fatalf("%s holds %d files, the catalog says %d rows are in it", key, len(inside), len(names))
		}
		report, err := r.Verify(ctx)
		if err != nil || report.ProblemCount != 0 || report.ExternalSkipped != 0 || report.Checksummed != report.Names {
			t.Fatalf("verify %s: %v %+v", key, err, report)
		}
		referenced[key] = true
	}
	for o, err := range store.List(ctx, seed.ArchiveBucket, objstore.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if !referenced[o.Key] {
			t.Errorf("archive object %s belongs to no committed container", o.Key)
		}
	}
	for u, err := range store.ListMultipartUploads(ctx, seed.ArchiveBucket, "") {
		t.Errorf("multipart upload left behind: %s (%v)", u.Key, err)
	}
	t.Logf("exactly once: %d rows in %d committed containers, %d archive objects, no uploads left", files, len(committed), len(referenced))
}

// deleteShardAndCheckCleanup deletes the DesShard: its Jobs and DesContainers go (owner references,
// garbage collector), the archive and the catalog's des_containers records stay.
func deleteShardAndCheckCleanup(t *testing.T, s *devstack.Stack, seed *devstack.Seed) {
	ctx := context.Background()
	if out, err := s.Kubectl(ctx, "-n", ns, "delete", "desshard", "scans-all", "--wait=true", "--timeout=120s"); err != nil {
		t.Fatalf("kubectl delete desshard: %v\n%s", err, out)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		jobs, cons := &batchv1.JobList{}, &desv1.DesContainerList{}
		if err := s.Client.List(ctx, jobs, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		if err := s.Client.List(ctx, cons, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		if len(jobs.Items) == 0 && len(cons.Items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after deleting the DesShard: %d Jobs and %d DesContainers remain", len(jobs.Items), len(cons.Items))
		}
		time.Sleep(500 * time.Millisecond)
	}
	n := 0
	for _, err := range objstore.NewFromAPI(s.S3.Client()).List(ctx, seed.ArchiveBucket, objstore.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatal("deleting the DesShard deleted the archive")
	}
	t.Logf("DesShard deleted: Jobs and DesContainers gone, %d archive objects kept", n)
}

func someNames(seed *devstack.Seed, n int) []string {
	var names []string
	for name := range seed.Files {
		names = append(names, name)
		if len(names) == n {
			break
		}
	}
	return names
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err) // test setup only
	}
	return v
}
