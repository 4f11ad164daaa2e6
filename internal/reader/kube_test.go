package reader_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	kw.world = newWorld(t, f.bucket, reader.Config{Kube: k.Client, Namespace: ns})
	return kw
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
