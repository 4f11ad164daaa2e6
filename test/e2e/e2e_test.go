// Package e2e runs DES end to end the way a cluster runs it (test/devstack): DES installed with
// `kubectl apply -k`, the controller as its Deployment under its own ServiceAccount and RBAC, packer
// Jobs and the marker CronJob in real containers on a real kubelet, against a real catalog database
// (PostgreSQL, then MariaDB: the suite runs once per database), S3 and
// Kubernetes control-plane servers. While it packs, containers are SIGKILLed, pods deleted, the
// controller pod deleted and killed, and the kubelet stopped for longer than a shard Lease; afterwards
// every catalog row must be in exactly one committed container, the archive must hold nothing else,
// and files must read back byte-exact through the reader sidecar pod.
package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/test/devstack"
	"github.com/datavision/des/test/testworld"
)

const (
	ns        = "scans"
	shardBits = 8
	files     = 1500
	unnamed   = 150
)

// TestMain runs the suite inside the test world's sandbox, where the node lives.
func TestMain(m *testing.M) {
	if err := testworld.EnterSandbox(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// randomSeed is $DES_E2E_SEED, to replay a run, or a new one.
func randomSeed(t *testing.T) uint64 {
	t.Helper()
	if v := os.Getenv("DES_E2E_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("DES_E2E_SEED: %v", err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// TestPackOnARealNodeUnderFaults runs the whole system once per catalog database (PostgreSQL, then
// MariaDB), each on a stack of its own.
func TestPackOnARealNodeUnderFaults(t *testing.T) {
	testworld.ForEachDialect(t, packOnARealNodeUnderFaults)
}

func packOnARealNodeUnderFaults(t *testing.T, driver catalog.Driver) {
	seedValue := randomSeed(t)
	t.Logf("random seed %d (replay with DES_E2E_SEED=%d)", seedValue, seedValue)
	rng := rand.New(rand.NewPCG(seedValue, 1))
	ctx := context.Background()
	began := time.Now()
	s, err := devstack.Start(ctx, devstack.Options{Dir: t.TempDir(), Logf: t.Logf, Catalog: driver})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer dumpOnFailure(t, s)
	seed, err := s.SeedSource(ctx, devstack.SeedOptions{Namespace: ns, Files: files, ShardBits: shardBits,
		Prefix: "SCAN", BigEvery: 300, BigSize: 600 << 10, Unnamed: unnamed, Seed: seedValue})
	if err != nil {
		t.Fatal(err)
	}
	// DES reaches the S3 server through a proxy that loses answers after the server did the work.
	proxy, err := devstack.StartLossyProxy(s.S3.Endpoint, seedValue, lostAnswers)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	s.SamplesEndpoint = proxy.Endpoint
	// Runs every 15 s, so shards whose Job was killed are packed again soon.
	// minFiles 1: every shard with a ready row is packed at once, so killed runs leave many
	// containers to recover. Sources are deleted once packed and verified (issue 14), by the packers
	// the faults kill, through the proxy that loses answers of DeleteObjects too.
	if err := s.ApplySamples(ctx, seed, devstack.SampleOptions{ShardBits: shardBits, MaxFiles: 200, MinFiles: 1,
		MaxWait: time.Hour, Interval: 15 * time.Second,
		DeleteSource: &desv1.DeleteSource{Policy: desv1.DeleteAfterVerify, Check: desv1.CheckHead, DeletesPerSecond: 5000}}); err != nil {
		t.Fatal(err)
	}
	// Every packer's clock is off by up to clockSkew (the e2e image's chaos hook).
	if out, err := s.Kubectl(ctx, "-n", ns, "annotate", "desshard", "scans-all", "des.datavision.io/chaos-clock-skew="+clockSkew.String()); err != nil {
		t.Fatalf("annotate the DesShard: %v\n%s", err, out)
	}

	stopIngest := ingest(t, seed)
	f := injectFaults(t, s, rng)
	stopIngest()
	packStart := time.Now()
	p, err := s.WaitPacked(ctx, seed, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after %s: %s", f, p)
	if p.Rows.Failed != 0 || p.Rows.Packed != int64(seed.Total()) {
		t.Fatalf("rows: %+v, want all %d packed", p.Rows, seed.Total())
	}
	if err := seed.ResolveNames(ctx); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, s, seed)
	// Issue 14: every packed source is deleted (each read back and verified first), none refused; the
	// reads below are all of files whose source objects are gone.
	left, err := seed.SourceObjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if left != 0 || p.Rows.SourcesDeleted != p.Rows.Packed || p.Rows.SourcesRefused != 0 {
		t.Fatalf("sources: %d objects left in the source bucket, %d of %d rows deleted, %d refused; want all deleted",
			left, p.Rows.SourcesDeleted, p.Rows.Packed, p.Rows.SourcesRefused)
	}

	reader, err := s.StartReader(ctx, seed, shardBits)
	if err != nil {
		t.Fatal(err)
	}
	names := someNames(seed, 80)
	cold, err := reader.ReadCold(ctx, seed, names)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reader: %s", cold)
	// Issue 13: through the catalog, a cold read by name is exactly one ranged GET, even for containers
	// recovery rolled forward after the faults above.
	if !cold.OneRequestEach() {
		t.Errorf("cold reads: %s; want one S3 request each, all found through the catalog", cold)
	}
	if err := reader.VerifyFiles(ctx, seed, names); err != nil {
		t.Fatal(err)
	}
	checkRestricted(t, s)
	if skewed, _ := checkLogs(t, s); skewed == 0 {
		t.Errorf("no packer says its clock was skewed: is the e2e image built with -tags chaos (make image-chaos)?")
	}
	rolledBack := countPhase(t, s, desv1.PhaseRolledBack)
	out, _ := s.Kubectl(ctx, "-n", ns, "get", "dessources,desshards")
	t.Logf("\n%s", out)
	t.Logf("E2E FIGURES (%s catalog): %d rows (%d named by the marker CronJob, %d ingested while packing) exactly once; faults: %s; "+
		"packer clocks off by up to ±%s; S3 answers lost: %v; %d containers rolled back; %d source objects deleted after verification, 0 left; %s in all, %.0fs from the last fault to all packed",
		driver, seed.Total(), unnamed, seed.Total()-files, f, clockSkew, proxy.Lost(), rolledBack, p.Rows.SourcesDeleted, time.Since(began).Round(time.Second), time.Since(packStart).Seconds())
	deleteShardAndCheckCleanup(t, s, seed)
}

// ingest adds named rows every couple of seconds until stopped, as a live application does, so
// packers are at work whenever a fault strikes.
func ingest(t *testing.T, seed *devstack.Seed) (stop func()) {
	t.Helper()
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Second):
			}
			// A failed insert (the catalog database restarting) adds nothing; the next tick tries again.
			if err := seed.AddFiles(context.Background(), 15); err != nil {
				t.Logf("ingest: %v (trying again)", err)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-finished }) }
}

// faults counts what injectFaults did.
type faults struct {
	containerKills, podDeletes, freezes, controllerKills, controllerDeletes, kubeletStops, catalogRestarts, skipped int
}

func (f faults) String() string {
	return fmt.Sprintf("%d packer containers SIGKILLed, %d packer pods deleted, %d packers SIGSTOPped for %s, "+
		"controller container SIGKILLed %d and pod deleted %d, kubelet stopped %d× for %s, catalog database restarted %d× "+
		"(skipped %d: no packer running)",
		f.containerKills, f.podDeletes, f.freezes, frozenFor, f.controllerKills, f.controllerDeletes, f.kubeletStops,
		kubeletDown, f.catalogRestarts, f.skipped)
}

// kubeletDown is how long the kubelet stays stopped: longer than a shard Lease.
const kubeletDown = protocol.LeaseDuration + 10*time.Second

// clockSkew bounds how far off each packer's clock is, either way.
const clockSkew = 3 * time.Minute

// frozenFor is how long a packer stays SIGSTOPped: past its Lease, so recovery rolls its container
// back while it is stopped, and the packer then goes on as if nothing had happened.
const frozenFor = protocol.LeaseDuration + 10*time.Second

// lostAnswers is the share of S3 answers the proxy loses, per operation: completions often, so that
// most runs see a completed object whose answer never came.
var lostAnswers = map[string]float64{
	"CompleteMultipartUpload": 0.3, "PutObject": 0.08, "UploadPart": 0.05, "CreateMultipartUpload": 0.05,
	"GetObject": 0.01, "HeadObject": 0.02, "DeleteObject": 0.05, "DeleteObjects": 0.2,
}

// injectFaults strikes, in a random order and at random moments: SIGKILL of packer containers,
// deletion of packer pods (SIGTERM: the packer finishes or abandons its container), SIGKILL of the
// controller container (the kubelet restarts it), deletion of the controller pod (the Deployment
// makes a new one, which takes the leader Lease over), and the kubelet stopped for longer than a
// shard Lease, then started again.
func injectFaults(t *testing.T, s *devstack.Stack, rng *rand.Rand) faults {
	t.Helper()
	ctx := context.Background()
	plan := []string{"kill-packer", "kill-packer", "kill-packer", "kill-packer", "kill-packer", "kill-packer",
		"delete-packer", "delete-packer", "delete-packer", "freeze-packer", "freeze-packer",
		"kill-controller", "delete-controller", "stop-kubelet", "restart-catalog"}
	rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	var f faults
	// Pods this function SIGKILLed: their status may still say Running for a moment, and a later
	// fault must not pick them (a deleted pod would then show our own SIGKILL as exit 137).
	struck := map[types.UID]bool{}
	for _, what := range plan {
		time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond)
		switch what {
		case "kill-packer", "delete-packer":
			pod, ok := waitPacker(ctx, t, s, rng, struck)
			if !ok {
				f.skipped++
				continue
			}
			// Strike at a random instant of the packer's life, not just after it started.
			time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
			if what == "kill-packer" {
				if err := s.KillPod(ctx, pod); err != nil {
					t.Logf("fault: kill %s: %v (it had ended)", pod.Name, err)
					f.skipped++
					continue
				}
				f.containerKills++
				struck[pod.UID] = true
				t.Logf("fault: SIGKILLed packer container of %s", pod.Name)
			} else {
				if err := s.Client.Delete(ctx, pod); err != nil {
					t.Logf("fault: delete %s: %v", pod.Name, err)
					f.skipped++
					continue
				}
				f.podDeletes++
				struck[pod.UID] = true
				t.Logf("fault: deleted packer pod %s (SIGTERM): %s", pod.Name, watchGracefulStop(t, s, pod))
			}
		case "freeze-packer":
			pod, ok := waitPacker(ctx, t, s, rng, struck)
			if !ok {
				f.skipped++
				continue
			}
			time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
			thaw, err := s.FreezePod(ctx, pod)
			if err != nil {
				t.Logf("fault: freeze %s: %v (it had ended)", pod.Name, err)
				f.skipped++
				continue
			}
			struck[pod.UID] = true
			t.Logf("fault: SIGSTOPped packer %s for %s", pod.Name, frozenFor)
			time.Sleep(frozenFor)
			if err := thaw(ctx); err != nil {
				t.Logf("fault: SIGCONT %s: %v", pod.Name, err)
			}
			f.freezes++
			t.Logf("fault: SIGCONT sent to packer %s", pod.Name)
		case "restart-catalog":
			t.Logf("fault: catalog database restarting (every connection cut, down 5s)")
			if err := s.Catalog.Restart(ctx, 5*time.Second); err != nil {
				t.Fatalf("catalog database restart: %v", err)
			}
			f.catalogRestarts++
			t.Logf("fault: catalog database back")
		case "kill-controller", "delete-controller":
			controllerFault(t, s, what == "kill-controller")
			if what == "kill-controller" {
				f.controllerKills++
			} else {
				f.controllerDeletes++
			}
		case "stop-kubelet":
			t.Logf("fault: kubelet stopped for %s", kubeletDown)
			s.Node.StopKubelet()
			time.Sleep(kubeletDown)
			if err := s.Node.StartKubelet(ctx); err != nil {
				t.Fatalf("kubelet after the stop: %v", err)
			}
			f.kubeletStops++
			t.Logf("fault: kubelet back, node Ready")
		}
	}
	return f
}

// watchGracefulStop follows a deleted packer pod until it is gone and says how its container ended.
// A packer stops on SIGTERM within its grace period, finishing or abandoning its container (exit 0 or
// 1); exit 137 means the kubelet had to SIGKILL it when the grace period ran out.
func watchGracefulStop(t *testing.T, s *devstack.Stack, pod *corev1.Pod) string {
	t.Helper()
	ctx := context.Background()
	started := time.Now()
	outcome := "gone before its end was seen"
	for time.Since(started) < 2*time.Minute {
		p := &corev1.Pod{}
		if err := s.Client.Get(ctx, client.ObjectKeyFromObject(pod), p); err != nil {
			break
		}
		for _, c := range p.Status.ContainerStatuses {
			if term := c.State.Terminated; term != nil {
				outcome = fmt.Sprintf("exited %d after %.1fs", term.ExitCode, time.Since(started).Seconds())
				if term.ExitCode == 137 {
					t.Errorf("packer pod %s was SIGKILLed at the end of its grace period instead of stopping on SIGTERM", pod.Name)
				}
				return outcome
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return outcome
}

// waitPacker waits up to a minute for a running packer pod not struck before and picks one.
func waitPacker(ctx context.Context, t *testing.T, s *devstack.Stack, rng *rand.Rand, struck map[types.UID]bool) (*corev1.Pod, bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		all, err := s.PackerPods(ctx, ns)
		if err != nil {
			t.Fatal(err)
		}
		var pods []corev1.Pod
		for _, p := range all {
			if !struck[p.UID] {
				pods = append(pods, p)
			}
		}
		if len(pods) > 0 {
			return &pods[rng.IntN(len(pods))], true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil, false
}

// controllerFault SIGKILLs the controller's container or deletes its pod, and waits until a
// controller is Ready again.
func controllerFault(t *testing.T, s *devstack.Stack, kill bool) {
	t.Helper()
	ctx := context.Background()
	pods, err := s.ControllerPods(ctx)
	if err != nil || len(pods) == 0 {
		t.Fatalf("controller pods: %v (%d)", err, len(pods))
	}
	pod := &pods[0]
	leader, err := s.LeaderHolder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if kill {
		if err := s.KillPod(ctx, pod); err != nil {
			t.Fatal(err)
		}
		t.Logf("fault: SIGKILLed the controller container of %s", pod.Name)
	} else {
		if err := s.Client.Delete(ctx, pod); err != nil {
			t.Fatal(err)
		}
		t.Logf("fault: deleted the controller pod %s", pod.Name)
	}
	// A killed container is restarted in place; first see it go unready (or the pod go) so the wait
	// below is for the new controller.
	time.Sleep(2 * time.Second)
	if err := s.WaitControllerReady(ctx, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	next, err := s.WaitNewLeader(ctx, leader, 2*time.Minute)
	if err != nil {
		t.Fatalf("leader election after the fault: %v", err)
	}
	t.Logf("fault: a controller is Ready again; the leader Lease went from %s to %s", leader, next)
}

// checkExactlyOnce proves the central promise from the outside: each row is packed into exactly one
// Committed container whose object holds it, and the archive holds nothing else.
func checkExactlyOnce(t *testing.T, s *devstack.Stack, seed *devstack.Seed) {
	t.Helper()
	ctx := context.Background()
	db := seed.DB().DB.SQL()
	rows, err := db.QueryContext(ctx, `SELECT des_name, des_container_key FROM objects`)
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
	rows.Close()
	var recorded []string
	keys := must(db.QueryContext(ctx, `SELECT `+testworld.Ident(seed.Driver, "key")+` FROM des_containers`))
	for keys.Next() {
		var k string
		if err := keys.Scan(&k); err != nil {
			t.Fatal(err)
		}
		recorded = append(recorded, k)
	}
	if err := keys.Err(); err != nil {
		t.Fatal(err)
	}
	keys.Close()
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
				// Where a v1 reader looks: the folder of the container key.
				referenced[desformat.ExternalKey(path.Dir(key), e.Name)] = true
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
	t.Logf("exactly once: %d rows in %d committed containers, %d archive objects, no uploads left", seed.Total(), len(committed), len(referenced))
}

// checkRestricted shows that every pod DES runs meets Pod Security "restricted", apart from the host
// network the test overlay adds: each pod's spec, without hostNetwork and its implied host ports, is
// created with a server-side dry run in a namespace that enforces "restricted", so the API server's
// own PodSecurity admission judges it.
func checkRestricted(t *testing.T, s *devstack.Stack) {
	t.Helper()
	ctx := context.Background()
	judge := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "psa-restricted",
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	if err := s.Client.Create(ctx, judge); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, namespace := range []string{devstack.ControllerNamespace, ns} {
		list := &corev1.PodList{}
		if err := s.Client.List(ctx, list, client.InNamespace(namespace)); err != nil {
			t.Fatal(err)
		}
		for _, p := range list.Items {
			component := p.Labels["app.kubernetes.io/component"]
			if component == "" {
				component = p.Name
			}
			copyPod := restrictedCandidate(&p)
			if err := s.Client.Create(ctx, copyPod, client.DryRunAll); err != nil {
				t.Errorf("pod %s/%s does not meet Pod Security restricted: %v", namespace, p.Name, err)
			}
			seen[component]++
		}
	}
	for _, want := range []string{"controller", "packer", "marker", "scans-viewer"} {
		if seen[want] == 0 {
			t.Errorf("no %s pod ran (pods seen: %v)", want, seen)
		}
	}
	t.Logf("Pod Security restricted (host network aside): %v", seen)
}

// checkNoForbidden reads the logs of every container of the controller's and the DesShard's
// namespaces still there (controller, packers, marker, reader sidecar): a rule missing from the
// shipped RBAC shows up as a "forbidden" answer of the API server.
// checkLogs reads every container's log: none may have been refused by RBAC. It returns how many
// packers ran with a skewed clock, and how many completions whose answer was lost they committed.
func checkLogs(t *testing.T, s *devstack.Stack) (skewed, confirmed int) {
	t.Helper()
	ctx := context.Background()
	read := 0
	for _, namespace := range []string{devstack.ControllerNamespace, ns} {
		list := &corev1.PodList{}
		if err := s.Client.List(ctx, list, client.InNamespace(namespace)); err != nil {
			t.Fatal(err)
		}
		for _, p := range list.Items {
			for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
				logs, err := s.Kubectl(ctx, "-n", namespace, "logs", p.Name, "-c", c.Name)
				if err != nil {
					continue // a pod whose container never started has no log
				}
				read++
				if strings.Contains(strings.ToLower(logs), "forbidden") {
					t.Errorf("%s/%s (%s) was refused by RBAC:\n%s", namespace, p.Name, c.Name, grepLines(logs, "forbidden"))
				}
				if strings.Contains(logs, "CHAOS: this packer's clock is off") {
					skewed++
				}
				confirmed += strings.Count(logs, "the store completed the object but its answer was lost")
			}
		}
	}
	t.Logf("RBAC: read the logs of %d containers for forbidden answers; %d packers ran with a skewed clock; "+
		"%d completed objects whose answer was lost were found and committed", read, skewed, confirmed)
	return skewed, confirmed
}

func grepLines(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(strings.ToLower(l), word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// restrictedCandidate is a pod's spec as it would be created in the judging namespace: no host
// network or host ports, the namespace's default ServiceAccount (its token volume is added again by
// admission), not bound to a node.
func restrictedCandidate(p *corev1.Pod) *corev1.Pod {
	spec := p.Spec.DeepCopy()
	spec.HostNetwork, spec.NodeName, spec.DNSPolicy = false, "", corev1.DNSClusterFirst
	spec.ServiceAccountName, spec.DeprecatedServiceAccount = "default", ""
	var volumes []corev1.Volume
	for _, v := range spec.Volumes {
		if !strings.HasPrefix(v.Name, "kube-api-access-") {
			volumes = append(volumes, v)
		}
	}
	spec.Volumes = volumes
	strip := func(cs []corev1.Container) {
		for i := range cs {
			var mounts []corev1.VolumeMount
			for _, m := range cs[i].VolumeMounts {
				if !strings.HasPrefix(m.Name, "kube-api-access-") {
					mounts = append(mounts, m)
				}
			}
			cs[i].VolumeMounts = mounts
			for j := range cs[i].Ports {
				cs[i].Ports[j].HostPort = 0
			}
		}
	}
	strip(spec.Containers)
	strip(spec.InitContainers)
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: "psa-restricted", Labels: p.Labels}, Spec: *spec}
}

func countPhase(t *testing.T, s *devstack.Stack, phase desv1.ContainerPhase) int {
	t.Helper()
	list := &desv1.DesContainerList{}
	if err := s.Client.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range list.Items {
		if c.Status.Phase == phase {
			n++
		}
	}
	return n
}

// deleteShardAndCheckCleanup deletes the DesShard: its Jobs and DesContainers go (owner references,
// garbage collector), the archive and the catalog's des_containers records stay.
func deleteShardAndCheckCleanup(t *testing.T, s *devstack.Stack, seed *devstack.Seed) {
	t.Helper()
	ctx := context.Background()
	if out, err := s.Kubectl(ctx, "-n", ns, "delete", "desshard", "scans-all", "--wait=true", "--timeout=120s"); err != nil {
		t.Fatalf("kubectl delete desshard: %v\n%s", err, out)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		jobs, cons := &batchv1.JobList{}, &desv1.DesContainerList{}
		if err := s.Client.List(ctx, jobs, client.InNamespace(ns), client.MatchingLabels{protocol.LabelComponent: "packer"}); err != nil {
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

// dumpOnFailure shows the cluster's state and the controller's log when the test failed.
func dumpOnFailure(t *testing.T, s *devstack.Stack) {
	t.Helper()
	if !t.Failed() {
		return
	}
	ctx := context.Background()
	out, _ := s.Kubectl(ctx, "get", "pods,jobs,desshards,descontainers", "-A", "-o", "wide")
	t.Logf("state at failure:\n%s", out)
	logs, _ := s.Kubectl(ctx, "-n", devstack.ControllerNamespace, "logs", "deploy/"+devstack.ControllerDeployment, "--tail=80")
	t.Logf("controller log (tail):\n%s", logs)
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
