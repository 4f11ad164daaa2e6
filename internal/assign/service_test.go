package assign_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/datavision/des/internal/assign"
	"github.com/datavision/des/internal/lease"
	"github.com/datavision/des/internal/naming"
	"github.com/datavision/des/internal/nodeid"
	"github.com/datavision/des/test/testworld"
)

func TestMain(m *testing.M) { testworld.Main(m, testworld.Kube) }

type replica struct {
	svc *assign.Service
	srv *httptest.Server
}

// startReplica runs one replica in-process until the test ends and waits until it holds a node id.
func startReplica(t testing.TB, ns, identity string, retry time.Duration, candidates ...int) *replica {
	t.Helper()
	svc, err := assign.New(assign.Config{
		DefaultPrefix: "DES", DefaultShardBits: 12, RetryInterval: retry,
		Lease: nodeid.Options{Namespace: ns, Identity: identity, Candidates: candidates,
			LeaseDuration: 2 * time.Second, RenewInterval: 100 * time.Millisecond, RenewDeadline: time.Second},
		Log: testr.NewWithInterface(t, testr.Options{Verbosity: 0}),
	}, testworld.K8s(t).Client)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("replica %s: %v", identity, err)
		}
	})
	eventually(t, 5*time.Second, "replica "+identity+" ready", svc.Ready)
	return &replica{svc: svc, srv: srv}
}

func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s after %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *replica) post(t testing.TB, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(r.srv.URL+"/v1/names", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (r *replica) names(t testing.TB, body string) []assign.Assigned {
	t.Helper()
	code, b := r.post(t, body)
	if code != http.StatusOK {
		t.Fatalf("POST %s: %d %s", body, code, b)
	}
	var resp assign.Response
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatalf("response %s: %v", b, err)
	}
	return resp.Names
}

func (r *replica) status(t testing.TB, path string) int {
	t.Helper()
	resp, err := http.Get(r.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRequests(t *testing.T) {
	r := startReplica(t, testworld.K8s(t).NewNamespace(t), "pod-a", time.Second)
	today := naming.DayOf(time.Now())
	valid := []struct {
		name, body string
		count      int
		prefix     string
		day        string // "" means today (UTC), or tomorrow near midnight
		bits       int
	}{
		{"defaults", `{"count":3}`, 3, "DES", "", 12},
		{"everything", `{"count":5,"prefix":"SCAN","day":"20200131","shardBits":4}`, 5, "SCAN", "20200131", 4},
		{"empty prefix means default", `{"count":1,"prefix":""}`, 1, "DES", "", 12},
		{"maximum count", `{"count":10000,"shardBits":16}`, 10000, "DES", "", 16},
		{"leap day", `{"count":2,"day":"20240229","shardBits":1}`, 2, "DES", "20240229", 1},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			got := r.names(t, tc.body)
			if len(got) != tc.count {
				t.Fatalf("%d names, want %d", len(got), tc.count)
			}
			for _, a := range got {
				n, err := naming.Parse(a.Name)
				if err != nil || n.Prefix != tc.prefix || int(n.Node) != r.svc.Node() {
					t.Fatalf("name %s: %+v %v", a.Name, n, err)
				}
				if tc.day != "" && n.Day.String() != tc.day {
					t.Fatalf("name %s: day %s, want %s", a.Name, n.Day, tc.day)
				}
				if tc.day == "" && n.Day.Time().Before(today.Time()) {
					t.Fatalf("name %s: day %s before today", a.Name, n.Day)
				}
				if want, _ := naming.Shard(a.Name, tc.bits); a.Shard != want {
					t.Fatalf("name %s: shard %d, want %d", a.Name, a.Shard, want)
				}
			}
		})
	}
	invalid := []struct {
		name, body string
		code       int
		msg        string
	}{
		{"count missing", `{}`, 400, "count 0 out of range"},
		{"count too large", `{"count":10001}`, 400, "count 10001 out of range"},
		{"negative count", `{"count":-1}`, 400, "out of range"},
		{"bad prefix", `{"count":1,"prefix":"a/b"}`, 400, "prefix"},
		{"long prefix", `{"count":1,"prefix":"` + strings.Repeat("A", 33) + `"}`, 400, "prefix"},
		{"nonexistent day", `{"count":1,"day":"20250229"}`, 400, "day"},
		{"day with dashes", `{"count":1,"day":"2025-02-28"}`, 400, "day"},
		{"shard bits zero", `{"count":1,"shardBits":0}`, 400, "shardBits 0"},
		{"shard bits too many", `{"count":1,"shardBits":17}`, 400, "shardBits 17"},
		{"unknown field", `{"count":1,"node":3}`, 400, "unknown field"},
		{"not JSON", `count=1`, 400, "invalid JSON"},
		{"count as string", `{"count":"1"}`, 400, "invalid JSON"},
		{"two values", `{"count":1}{"count":2}`, 400, "more than one value"},
		{"huge body", `{"count":1,"prefix":"` + strings.Repeat("A", 8000) + `"}`, 413, "too large"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			code, b := r.post(t, tc.body)
			var e struct{ Error string }
			if code != tc.code || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Error, tc.msg) {
				t.Fatalf("got %d %s, want %d with an error mentioning %q", code, b, tc.code, tc.msg)
			}
		})
	}
	t.Run("GET is not allowed", func(t *testing.T) {
		if code := r.status(t, "/v1/names"); code != http.StatusMethodNotAllowed {
			t.Fatalf("GET /v1/names: %d", code)
		}
	})
	t.Run("probes and metrics", func(t *testing.T) {
		if r.status(t, "/healthz") != 200 || r.status(t, "/readyz") != 200 {
			t.Fatal("probes fail while the node id is held")
		}
		resp, err := http.Get(r.srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{"des_assign_lease_held 1", fmt.Sprintf("des_assign_node_id %d", r.svc.Node()),
			"des_assign_names_issued_total 10011", `des_assign_request_duration_seconds_count{code="400"}`} {
			if !strings.Contains(string(b), want) {
				t.Fatalf("metrics lack %q:\n%s", want, b)
			}
		}
	})
}

// TestTwoReplicasNeverIssueTheSameName hammers two replicas with concurrent requests.
func TestTwoReplicasNeverIssueTheSameName(t *testing.T) {
	ns := testworld.K8s(t).NewNamespace(t)
	replicas := []*replica{startReplica(t, ns, "pod-a", time.Second), startReplica(t, ns, "pod-b", time.Second)}
	if replicas[0].svc.Node() == replicas[1].svc.Node() {
		t.Fatalf("both replicas hold node id %d", replicas[0].svc.Node())
	}
	const workers, requests = 16, 40
	var (
		mu    sync.Mutex
		seen  = map[string]bool{}
		total int
		wg    sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := range requests {
				body := fmt.Sprintf(`{"count":%d}`, 1+rand.IntN(1000))
				if i%3 == 0 {
					body = fmt.Sprintf(`{"count":%d,"day":"20260101","prefix":"X"}`, 1+rand.IntN(1000))
				}
				got := replicas[(w+i)%2].names(t, body)
				mu.Lock()
				for _, a := range got {
					// The prefix and day are the client's: uniqueness must hold without them.
					n, _ := naming.Parse(a.Name)
					key := fmt.Sprintf("%012X", n.ID())
					if seen[key] {
						t.Errorf("name id %s issued twice (%s)", key, a.Name)
					}
					seen[key] = true
				}
				total += len(got)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != total {
		t.Fatalf("%d distinct names of %d issued", len(seen), total)
	}
	t.Logf("%d names from %d concurrent requests to two replicas, all distinct", total, workers*requests)
}

// TestLeaseTakenStopsIssuing takes a replica's node Lease away: it must answer 503 and fail /readyz.
func TestLeaseTakenStopsIssuing(t *testing.T) {
	cases := []struct {
		name     string
		take     func(t *testing.T, l *coordinationv1.Lease)
		giveBack func(t *testing.T, l *coordinationv1.Lease)
	}{
		{
			name: "stolen, then released by the thief",
			take: func(t *testing.T, l *coordinationv1.Lease) {
				t.Helper()
				l.Spec.HolderIdentity = ptr.To("thief")
				l.Spec.AcquireTime = &metav1.MicroTime{Time: time.Now()}
				l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
				l.Spec.LeaseDurationSeconds = ptr.To(int32(3600))
				update(t, l)
			},
			giveBack: func(t *testing.T, l *coordinationv1.Lease) {
				t.Helper()
				l.Spec.HolderIdentity = nil
				update(t, l)
			},
		},
		{
			name: "deleted",
			take: func(t *testing.T, l *coordinationv1.Lease) {
				t.Helper()
				if err := testworld.K8s(t).Client.Delete(context.Background(), l); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := testworld.K8s(t).NewNamespace(t)
			retry := 200 * time.Millisecond
			if tc.giveBack == nil {
				retry = time.Hour // a deleted Lease would be recreated at once; we want to see the gap
			}
			r := startReplica(t, ns, "pod-a", retry, 42)
			before := r.names(t, `{"count":10}`)

			tc.take(t, nodeLease(t, ns, 42))
			eventually(t, 2*time.Second, "refusing names", func() bool {
				code, _ := r.post(t, `{"count":1}`)
				return code == http.StatusServiceUnavailable
			})
			if code := r.status(t, "/readyz"); code != http.StatusServiceUnavailable {
				t.Fatalf("/readyz = %d without the Lease", code)
			}
			if code := r.status(t, "/healthz"); code != http.StatusOK {
				t.Fatalf("/healthz = %d: a replica without a Lease is alive, just not ready", code)
			}
			// It keeps refusing while the Lease is someone else's.
			time.Sleep(300 * time.Millisecond)
			if code, b := r.post(t, `{"count":1}`); code != http.StatusServiceUnavailable {
				t.Fatalf("POST without the Lease: %d %s", code, b)
			}
			if tc.giveBack == nil {
				return
			}
			tc.giveBack(t, nodeLease(t, ns, 42))
			eventually(t, 3*time.Second, "ready again", r.svc.Ready)
			after := r.names(t, `{"count":10}`)
			last, _ := naming.Parse(before[len(before)-1].Name)
			first, _ := naming.Parse(after[0].Name)
			if first.TimeBits <= last.TimeBits {
				t.Fatalf("names after the Lease came back (%s) are not later than before (%s)", after[0].Name, before[len(before)-1].Name)
			}
		})
	}
}

func nodeLease(t *testing.T, ns string, node int) *coordinationv1.Lease {
	t.Helper()
	var l coordinationv1.Lease
	if err := testworld.K8s(t).Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: nodeid.LeaseName(node)}, &l); err != nil {
		t.Fatal(err)
	}
	return &l
}

func update(t *testing.T, l *coordinationv1.Lease) {
	t.Helper()
	if err := testworld.K8s(t).Client.Update(context.Background(), l); err != nil {
		t.Fatal(err)
	}
}

// TestServeShutsDownGracefully: cancelling Serve's context stops the server and releases the node id.
func TestServeShutsDownGracefully(t *testing.T) {
	ns := testworld.K8s(t).NewNamespace(t)
	svc, err := assign.New(assign.Config{Lease: nodeid.Options{Namespace: ns, Identity: "pod-a", Candidates: []int{5},
		LeaseDuration: 2 * time.Second}}, testworld.K8s(t).Client)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- assign.ServeListener(ctx, l, svc) }()
	eventually(t, 5*time.Second, "ready", svc.Ready)
	resp, err := http.Post("http://"+l.Addr().String()+"/v1/names", "application/json", bytes.NewBufferString(`{"count":2}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if got := nodeLease(t, ns, 5); lease.Classify(got, time.Now()) != lease.Free {
		t.Fatalf("node Lease after shutdown is %s, want released", lease.Classify(got, time.Now()))
	}
	if _, err := http.Get("http://" + l.Addr().String() + "/healthz"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
}
