package packer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/test/testworld"
)

// The kill test runs `manager pack` as a separate process (this test binary, re-executed) against the
// test world, its S3 traffic going through a proxy that SIGKILLs it at chosen moments: when it claims
// (its first source GET), fetches, uploads (parts, big payloads, multipart create and complete, before
// or after the store acted) and commits (just after the object is complete). After each kill the
// Leases are aged past their duration, recovery runs, and the invariants are checked; a fresh packer
// follows. At the end every row is packed exactly once in exactly one Committed container.

// killPoint says when to kill the packer: at the nth request of op, before it reaches the store or
// after the store answered (plus delay), or after a delay from the start (op "time").
type killPoint struct {
	phase string
	op    string
	nth   int
	after bool
	delay time.Duration
	// until, when set, delays the kill until the world reaches a state: "uploaded" (a DesContainer
	// is Uploaded: the commit is under way) or "committing" (the commit transaction is being committed:
	// the database finishes it although the packer dies, so nothing records the phase Committed).
	until string
}

func (k killPoint) String() string {
	when := "before"
	if k.after {
		when = "after"
	}
	if k.op == "time" {
		return fmt.Sprintf("%s: %s after start", k.phase, k.delay)
	}
	if k.until != "" {
		return fmt.Sprintf("%s: %s %s #%d, then once %s", k.phase, when, k.op, k.nth, k.until)
	}
	return fmt.Sprintf("%s: %s %s #%d +%s", k.phase, when, k.op, k.nth, k.delay)
}

// plans cycles through the phases of the protocol with random parameters.
func killPlan(rng *rand.Rand, i int) killPoint {
	switch i % 10 {
	case 0:
		return killPoint{phase: "claim", op: "source-get", nth: 1}
	case 1:
		return killPoint{phase: "fetch", op: "source-get", nth: 2 + rng.IntN(400)}
	case 2:
		return killPoint{phase: "upload", op: "create-upload", nth: 1 + rng.IntN(2), after: true} // upload exists, id maybe unrecorded
	case 3:
		return killPoint{phase: "upload", op: "upload-part", nth: 1 + rng.IntN(3), after: rng.IntN(2) == 0}
	case 4:
		return killPoint{phase: "upload", op: "big-put", nth: 1 + rng.IntN(30), after: rng.IntN(2) == 0}
	case 5:
		return killPoint{phase: "commit", op: "complete", nth: 1 + rng.IntN(2), after: false}
	case 6:
		return killPoint{phase: "commit", op: "complete", nth: 1 + rng.IntN(2), after: true} // object complete, nothing recorded
	case 7:
		return killPoint{phase: "commit", op: "complete", nth: 1, after: true, until: "uploaded"}
	case 8:
		return killPoint{phase: "commit", op: "complete", nth: 1, after: true, until: "committing"}
	}
	return killPoint{phase: "any", op: "time", delay: time.Duration(300+rng.IntN(2500)) * time.Millisecond}
}

// killProxy forwards S3 requests to the test world's store and kills the packer at its killPoint.
type killProxy struct {
	rp             *httputil.ReverseProxy
	source, bucket string

	mu     sync.Mutex
	counts map[string]int
	point  killPoint
	kill   func()
	fired  string
	// reached reports whether the world is in the state a kill point waits for.
	reached func(until string) bool
}

type killAfterKey struct{}

func newKillProxy(t *testing.T, target string) *killProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	k := &killProxy{counts: map[string]int{}}
	k.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // the request is signed for the proxy's host
		},
		ModifyResponse: func(resp *http.Response) error {
			if p, ok := resp.Request.Context().Value(killAfterKey{}).(killPoint); ok {
				if p.until != "" {
					go k.fireWhen(p.until)
				} else {
					k.fire(p.delay) // the store acted; the packer never hears of it
				}
			}
			return nil
		},
		ErrorLog: nil,
	}
	return k
}

// arm sets the kill point and the kill function of the next run and resets the counters.
func (k *killProxy) arm(p killPoint, kill func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.point, k.kill, k.fired = p, kill, ""
	clear(k.counts)
}

func (k *killProxy) fire(delay time.Duration) {
	k.mu.Lock()
	kill := k.kill
	k.kill = nil
	k.mu.Unlock()
	if kill == nil {
		return
	}
	if delay > 0 {
		time.AfterFunc(delay, kill)
		return
	}
	kill()
}

// fireWhen kills as soon as the world reaches a state, polling tightly: the steps after a complete
// upload take milliseconds.
func (k *killProxy) fireWhen(until string) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !k.reached(until) {
		time.Sleep(200 * time.Microsecond)
	}
	k.fire(0)
}

func (k *killProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := k.classify(r)
	k.mu.Lock()
	k.counts[op]++
	hit := k.kill != nil && op == k.point.op && k.counts[op] == k.point.nth
	if hit {
		k.fired = fmt.Sprintf("%s %s", r.Method, r.URL.Path)
	}
	p := k.point
	k.mu.Unlock()
	switch {
	case hit && !p.after:
		k.fire(p.delay)
		http.Error(w, "killed", http.StatusBadGateway)
		return
	case hit:
		r = r.WithContext(context.WithValue(r.Context(), killAfterKey{}, p))
	}
	k.rp.ServeHTTP(w, r)
}

func (k *killProxy) classify(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case strings.HasPrefix(r.URL.Path, "/"+k.source+"/") && r.Method == http.MethodGet:
		return "source-get"
	case strings.HasPrefix(r.URL.Path, "/"+k.source+"/") && r.Method == http.MethodHead:
		return "source-head"
	case r.Method == http.MethodPost && q.Has("delete"):
		return "delete-objects"
	case strings.HasPrefix(r.URL.Path, "/"+k.bucket+"/") && r.Method == http.MethodGet:
		return "archive-get"
	case r.Method == http.MethodPost && q.Has("uploads"):
		return "create-upload"
	case r.Method == http.MethodPost && q.Has("uploadId"):
		return "complete"
	case r.Method == http.MethodPut && q.Has("partNumber"):
		return "upload-part"
	case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/_bigFiles/"):
		return "big-put"
	case r.Method == http.MethodPut:
		return "container-put"
	}
	return r.Method
}

func TestKillAnywhere(t *testing.T) { testworld.ForEachDialect(t, testKillAnywhere) }

func testKillAnywhere(t *testing.T, d catalog.Driver) {
	kills := 20
	if testing.Short() {
		kills = 8
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 7))
	t.Logf("seed %d", seed)

	w, proxy, dir := newKillWorld(t, d, 200)
	w.slowCommits()
	sizes := []int64{0, 1000, 30000, 60000, 65535, 65536, 120000, 50000, 40000, 64000}
	w.addRows(0, sizes, 600, nil)
	w.addRows(1, sizes, 600, nil)

	outcomes := map[string]int{}
	done := 0
	for run := 0; done < kills && run < 3*kills; run++ {
		for _, shard := range []int32{0, 1} {
			if w.readyRows(shard) < 400 {
				w.addRows(shard, sizes, 400, nil)
			}
		}
		p := killPlan(rng, done)
		killed, fired, logFile := runChild(t, w, proxy, dir, fmt.Sprintf("pod-%d", run), &p)
		if !killed {
			t.Logf("run %d (%s): the packer finished before the kill point", run, p)
			continue
		}
		done++
		state := describeOpen(t, w)
		w.expireLeases()
		fwd, back := recoverAll(t, w)
		outcome := fmt.Sprintf("%s → %d forward, %d back", p.phase, fwd, back)
		outcomes[outcome]++
		t.Logf("kill %d at %s (request %s): open containers %s; recovery rolled %d forward, %d back",
			done, p, fired, state, fwd, back)
		w.checkSettled(logFile)
	}
	if done < kills {
		t.Errorf("only %d kills happened, want %d", done, kills)
	}
	// The last packer runs to the end.
	proxy.arm(killPoint{op: "never"}, nil)
	for i := 0; w.counts().Ready > 0 && i < 3; i++ {
		if _, _, log := runChild(t, w, proxy, dir, fmt.Sprintf("pod-final-%d", i), nil); w.counts().Ready > 0 {
			t.Logf("final run %d left ready rows; log %s", i, log)
		}
	}
	recoverAll(t, w)
	committed := w.check(nil)
	t.Logf("%d kills; outcomes %v; %d committed containers, %+v", done, outcomes, committed, w.counts())
}

// newKillWorld is a world of shards 0 and 1 whose S3 traffic goes through a kill proxy, with the
// files a packer process needs (childFiles). The proxy's server stops with the test.
func newKillWorld(t *testing.T, driver catalog.Driver, maxFiles int64) (*world, *killProxy, string) {
	t.Helper()
	proxy := newKillProxy(t, testworld.S3Store(t).Endpoint)
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	w := newWorld(t, worldOptions{driver: driver, shards: []int32{0, 1}, threshold: 64 << 10, endpoint: srv.URL,
		limits: desv1.ContainerLimits{MaxFiles: maxFiles}})
	proxy.source, proxy.bucket = w.source, w.bucket
	proxy.reached = func(until string) bool { return w.reached(until) }
	return w, proxy, childFiles(t, w)
}

// runChild runs one packer process until it exits or the kill point (or a fallback timer) kills it.
func runChild(t *testing.T, w *world, proxy *killProxy, dir, identity string, p *killPoint) (killed bool, fired, logFile string) {
	t.Helper()
	args := []string{"--desshard=ds", "--shards=0,1", "--namespace=" + w.ns, "--identity=" + identity, "--job=kill-test",
		"--kubeconfig=" + filepath.Join(dir, "kubeconfig"), "--catalog-dsn-file=" + filepath.Join(dir, "dsn"),
		"--source-credentials-dir=" + filepath.Join(dir, "s3"), "--archive-credentials-dir=" + filepath.Join(dir, "s3"),
		"--part-size=5242880", "--window=16", "--max-duration=2m"}
	encoded, _ := json.Marshal(args)
	logFile = filepath.Join(dir, identity+".log")
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childArgsEnv+"="+string(encoded))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var didKill bool
	kill := func() {
		once.Do(func() {
			didKill = true
			_ = cmd.Process.Signal(syscall.SIGKILL)
		})
	}
	point := killPoint{op: "never"}
	if p != nil {
		point = *p
	}
	proxy.arm(point, kill)
	var timer *time.Timer
	switch {
	case point.op == "time":
		timer = time.AfterFunc(point.delay, kill)
	case p != nil:
		timer = time.AfterFunc(20*time.Second, kill) // a kill point never reached
	default:
		timer = time.AfterFunc(2*time.Minute, kill)
	}
	waitErr := cmd.Wait()
	timer.Stop()
	once.Do(func() {}) // no kill after the process is gone
	proxy.mu.Lock()
	fired = proxy.fired
	proxy.mu.Unlock()
	proxy.arm(killPoint{op: "never"}, nil)
	if !didKill && waitErr != nil {
		b, _ := os.ReadFile(logFile)
		t.Fatalf("packer %s failed without being killed: %v\n%s", identity, waitErr, tail(string(b), 4000))
	}
	return didKill, fired, logFile
}

// childFiles writes what a packer pod gets mounted: a kubeconfig, the DSN and S3 credentials.
func childFiles(t testing.TB, w *world) string {
	t.Helper()
	dir := t.TempDir()
	cfg := testworld.K8s(t).Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest"}
	kc.CurrentContext = "envtest"
	if err := clientcmd.WriteToFile(*kc, filepath.Join(dir, "kubeconfig")); err != nil {
		t.Fatal(err)
	}
	s3 := testworld.S3Store(t)
	files := map[string]string{
		"dsn": w.db.DSN, "s3/" + objstore.SecretAccessKeyIDFile: s3.AccessKey, "s3/" + objstore.SecretSecretAccessKeyFile: s3.SecretKey,
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// describeOpen says what the killed packer left unfinished.
func describeOpen(t *testing.T, w *world) string {
	t.Helper()
	var parts []string
	for _, c := range w.containers() {
		if c.Status.Phase.IsFinal() {
			continue
		}
		_, err := w.store.Head(w.ctx, c.Spec.Bucket, c.Spec.Key)
		committed, cerr := w.cat.IsCommitted(w.ctx, c.Name)
		if cerr != nil {
			t.Fatal(cerr)
		}
		parts = append(parts, fmt.Sprintf("%s[%s uploadID=%t object=%t committed=%t]",
			c.Name[len(c.Name)-6:], phaseOrNone(c.Status.Phase), c.Status.UploadID != "", err == nil, committed))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func phaseOrNone(p desv1.ContainerPhase) string {
	if p == "" {
		return "no phase"
	}
	return string(p)
}

// checkSettled checks the invariants that hold after every recovery: no row claimed, no unfinished
// container, no multipart upload, and every packed row in a committed container.
func (w *world) checkSettled(logFile string) {
	w.t.Helper()
	n := w.counts()
	if n.Claimed != 0 {
		w.t.Errorf("%d rows still claimed after recovery (log %s)", n.Claimed, logFile)
	}
	for _, c := range w.containers() {
		if !c.Status.Phase.IsFinal() {
			w.t.Errorf("container %s is %q after recovery", c.Name, c.Status.Phase)
		}
	}
	for u, err := range w.store.ListMultipartUploads(w.ctx, w.bucket, "") {
		if err != nil {
			w.t.Fatal(err)
		}
		w.t.Errorf("multipart upload left after recovery: %s", u.Key)
	}
	var orphans int
	w.db.QueryRow(w.t, `SELECT count(*) FROM objects o WHERE status = 'packed'
		AND NOT EXISTS (SELECT 1 FROM des_containers c WHERE c.`+w.ident("key")+` = o.des_container_key)`, nil, &orphans)
	if orphans > 0 {
		w.t.Errorf("%d packed rows point to no des_containers record", orphans)
	}
}

func (w *world) readyRows(shard int32) int64 {
	var n int64
	w.db.QueryRow(w.t, `SELECT count(*) FROM objects WHERE status = 'ready' AND shard = $1`, []any{shard}, &n)
	return n
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// slowCommits makes the catalog's commit statement slow (the insert into des_containers) and its
// transaction's commit too (a deferred trigger), so kills can land inside both. MySQL has no deferred
// triggers: there only the insert is slowed (see reached for what "committing" means there).
func (w *world) slowCommits() {
	if w.mysql() {
		w.exec(`CREATE TRIGGER slow_insert AFTER INSERT ON des_containers FOR EACH ROW BEGIN DO SLEEP(0.15); END`)
		return
	}
	w.exec(`CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_sleep(0.15); RETURN NULL; END $$`)
	w.exec(`CREATE TRIGGER slow_insert AFTER INSERT ON des_containers FOR EACH ROW EXECUTE FUNCTION slow_commit()`)
	w.exec(`CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON des_containers DEFERRABLE INITIALLY DEFERRED
		FOR EACH ROW EXECUTE FUNCTION slow_commit()`)
}

// reached tells whether a DesContainer is Uploaded ("uploaded") or a commit transaction is being
// committed ("committing").
func (w *world) reached(until string) bool {
	if until == "committing" {
		stmt := `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event = 'PgSleep' AND query ILIKE 'commit%'`
		if w.mysql() {
			// No deferred trigger widens MySQL's COMMIT (and the test server has no binlog whose group
			// commit could): the kill lands inside the commit transaction instead, while the trigger
			// of its insert into des_containers sleeps (the processlist shows the trigger's statement;
			// the database then rolls the transaction back), or in the COMMIT if a poll catches it.
			stmt = `SELECT count(*) FROM information_schema.processlist
				WHERE db = DATABASE() AND id <> CONNECTION_ID()
				AND (info LIKE 'COMMIT%' OR (state = 'User sleep' AND info LIKE 'DO SLEEP%'))`
		}
		var n int
		err := w.db.Row(stmt).Scan(&n)
		return err == nil && n > 0
	}
	list := &desv1.DesContainerList{}
	if err := w.kube.List(w.ctx, list, client.InNamespace(w.ns)); err != nil {
		return false
	}
	for _, c := range list.Items {
		if c.Status.Phase == desv1.PhaseUploaded {
			return true
		}
	}
	return false
}
