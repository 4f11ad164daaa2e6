package reader_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/internal/reader"
	"github.com/datavision/des/test/testworld"
)

// TestKubeFinder finds containers through DesContainer resources: only Committed ones count, and their
// keys need not follow the listing layout.
func TestKubeFinder(t *testing.T) {
	// Container keys (the DesContainer CRD takes nothing else) under testPrefix/moved rather than
	// testPrefix: listing <prefix>/<day>/<shard>/ cannot find them, only the resources can.
	kw := newKubeWorld(t, testPrefix+"/moved", desv1.PhaseCommitted, desv1.PhaseWriting)
	committed, writing := kw.names[0], kw.names[1]
	resp, body := do(t, "GET", kw.http.URL+"/v1/files/"+committed, nil, nil)
	mustStatus(t, resp, body, 200)
	if !bytes.Equal(body, []byte(committed)) || resp.Header.Get("X-Des-Container") != kw.keys[0] {
		t.Fatalf("body %q from %q", body, resp.Header.Get("X-Des-Container"))
	}
	resp, body = do(t, "GET", kw.http.URL+"/v1/files/"+writing, nil, nil)
	mustStatus(t, resp, body, 404)
	// Containers whose resource is gone (retention) are still found by listing.
	resp, body = do(t, "GET", kw.http.URL+"/v1/files/"+kw.f.desB[0], nil, nil)
	mustStatus(t, resp, body, 200)
}

// kubeWorld is a reader with a Kubernetes client over the fixture's bucket, plus one container per
// phase under prefix, each holding one file (named names[i], its content the name) and described by a
// DesContainer in that phase.
type kubeWorld struct {
	*world
	f     *fixture
	names []string
	keys  []string
	lists *listRecorder
}

func newKubeWorld(t *testing.T, prefix string, phases ...desv1.ContainerPhase) *kubeWorld {
	t.Helper()
	writer := newStore(t)
	f := newFixture(t, writer)
	k := testworld.K8s(t)
	ns := k.NewNamespace(t)
	kw := &kubeWorld{f: f, names: desNames(t, len(phases), testShard, 9)}
	day := testDay.Time()
	for i, phase := range phases {
		key := protocol.ContainerKey(prefix, day, testShard, protocol.NewContainerID(day.Add(time.Duration(i)*time.Millisecond)))
		putContainer(t, writer, f.bucket, key, []file{{name: kw.names[i], data: []byte(kw.names[i])}}, 0)
		createContainer(t, k, ns, fmt.Sprintf("c%d", i), f.bucket, key, phase)
		kw.keys = append(kw.keys, key)
	}
	kw.lists = &listRecorder{Reader: k.Client}
	kw.world = newWorld(t, f.bucket, reader.Config{Kube: kw.lists, Namespace: ns})
	return kw
}

// listRecorder passes reads to the real API server and remembers the field selector of every list.
type listRecorder struct {
	client.Reader
	mu        sync.Mutex
	selectors []string
	// refuseSelectors answers a list with a field selector as an API server before Kubernetes 1.31
	// does (a fault this test world's API server cannot produce).
	refuseSelectors bool
}

func (l *listRecorder) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	o := (&client.ListOptions{}).ApplyOptions(opts)
	sel := ""
	if o.FieldSelector != nil {
		sel = o.FieldSelector.String()
	}
	l.mu.Lock()
	l.selectors = append(l.selectors, sel)
	refuse := l.refuseSelectors && sel != ""
	l.mu.Unlock()
	if refuse {
		return apierrors.NewBadRequest(`Unable to find "des.datavision.io/v1alpha1, Resource=descontainers" that match label selector "", field selector "` + sel + `": field label not supported: ` + strings.Split(sel, "=")[0])
	}
	return l.Reader.List(ctx, list, opts...)
}

// TestKubeFinderNeverListsTheNamespace: every list the reader sends selects one day and shard, or one
// key, so its cost follows the request, not the year of containers in the namespace.
func TestKubeFinderNeverListsTheNamespace(t *testing.T) {
	kw := newKubeWorld(t, testPrefix, desv1.PhaseRolledBack, desv1.PhaseCommitted)
	for _, name := range kw.names {
		resp, body := do(t, "GET", kw.http.URL+"/v1/files/"+name, nil, nil)
		if resp.StatusCode != 200 && resp.StatusCode != 404 {
			t.Fatalf("GET %s: %d %s", name, resp.StatusCode, body)
		}
	}
	kw.lists.mu.Lock()
	defer kw.lists.mu.Unlock()
	if len(kw.lists.selectors) == 0 {
		t.Fatal("the reader sent no list: the test proves nothing")
	}
	byKey := false
	for _, sel := range kw.lists.selectors {
		switch {
		case strings.HasPrefix(sel, "spec.key="):
			byKey = true
		case strings.Contains(sel, "spec.day=") && strings.Contains(sel, "spec.shard="):
		default:
			t.Errorf("a list of DesContainers selected %q: neither one day and shard nor one key", sel)
		}
	}
	if !byKey {
		t.Errorf("no list by key among %q: the rolled-back container's listed object was not checked", kw.lists.selectors)
	}
}

func createContainer(t *testing.T, k *testworld.KubeServer, ns, name, bucket, key string, phase desv1.ContainerPhase) {
	t.Helper()
	ctx := context.Background()
	c := &desv1.DesContainer{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: desv1.DesContainerSpec{ShardRef: "scans", Shard: testShard, Day: testDay.Time().Format("2006-01-02"),
			Bucket: bucket, Key: key},
	}
	if err := k.Client.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	c.Status.Phase = phase
	if err := k.Client.Status().Update(ctx, c); err != nil {
		t.Fatal(err)
	}
}

// TestListedObjectOfARolledBackContainerIsNotServed is issue 12's item 3 from the reader's side: an
// object that no committed container accounts for (its DesContainer was rolled back, say after a lost
// completion, and its cleanup has not run yet) is found by listing but never served.
func TestListedObjectOfARolledBackContainerIsNotServed(t *testing.T) {
	kw := newKubeWorld(t, testPrefix, desv1.PhaseRolledBack, desv1.PhaseCommitted)
	rolledBack, committed := kw.names[0], kw.names[1]
	resp, body := do(t, "GET", kw.http.URL+"/v1/files/"+rolledBack, nil, nil)
	mustStatus(t, resp, body, 404)
	resp, body = do(t, "GET", kw.http.URL+"/v1/files/"+committed, nil, nil)
	mustStatus(t, resp, body, 200)
	if !bytes.Equal(body, []byte(committed)) {
		t.Fatalf("body %q", body)
	}
}

// TestKubeFinderWithoutFieldSelectors: on an API server that refuses field selectors on custom
// resources, the finder lists the namespace and still tells committed from rolled-back containers.
func TestKubeFinderWithoutFieldSelectors(t *testing.T) {
	kw := newKubeWorld(t, testPrefix, desv1.PhaseRolledBack, desv1.PhaseCommitted)
	kw.lists.mu.Lock()
	kw.lists.refuseSelectors = true
	kw.lists.mu.Unlock()
	rolledBack, committed := kw.names[0], kw.names[1]
	resp, body := do(t, "GET", kw.http.URL+"/v1/files/"+committed, nil, nil)
	mustStatus(t, resp, body, 200)
	if !bytes.Equal(body, []byte(committed)) {
		t.Fatalf("body %q", body)
	}
	resp, body = do(t, "GET", kw.http.URL+"/v1/files/"+rolledBack, nil, nil)
	mustStatus(t, resp, body, 404)
	kw.lists.mu.Lock()
	defer kw.lists.mu.Unlock()
	if !slices.Contains(kw.lists.selectors, "") {
		t.Errorf("lists sent %q: none without a selector after the refusal", kw.lists.selectors)
	}
}
