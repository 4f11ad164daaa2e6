package reader_test

import (
	"bytes"
	"context"
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
	writer := newStore(t)
	f := newFixture(t, writer)
	k := testworld.K8s(t)
	ns := k.NewNamespace(t)
	names := desNames(t, 2, testShard, 9)
	committed, writing := names[0], names[1]
	// Container keys (the DesContainer CRD takes nothing else) under testPrefix/moved rather than
	// testPrefix: listing <prefix>/<day>/<shard>/ cannot find them, only the resources can.
	day := testDay.Time()
	keyC := protocol.ContainerKey(testPrefix+"/moved", day, testShard, protocol.NewContainerID(day))
	keyW := protocol.ContainerKey(testPrefix+"/moved", day, testShard, protocol.NewContainerID(day.Add(time.Millisecond)))
	putContainer(t, writer, f.bucket, keyC, []file{{name: committed, data: []byte("committed")}}, 0)
	putContainer(t, writer, f.bucket, keyW, []file{{name: writing, data: []byte("writing")}}, 0)
	createContainer(t, k, ns, "c1", f.bucket, keyC, desv1.PhaseCommitted)
	createContainer(t, k, ns, "c2", f.bucket, keyW, desv1.PhaseWriting)

	w := newWorld(t, f.bucket, reader.Config{Kube: k.Client, Namespace: ns})
	resp, body := do(t, "GET", w.http.URL+"/v1/files/"+committed, nil, nil)
	mustStatus(t, resp, body, 200)
	if !bytes.Equal(body, []byte("committed")) || resp.Header.Get("X-Des-Container") != keyC {
		t.Fatalf("body %q from %q", body, resp.Header.Get("X-Des-Container"))
	}
	resp, body = do(t, "GET", w.http.URL+"/v1/files/"+writing, nil, nil)
	mustStatus(t, resp, body, 404)
	// Containers whose resource is gone (retention) are still found by listing.
	resp, body = do(t, "GET", w.http.URL+"/v1/files/"+f.desB[0], nil, nil)
	mustStatus(t, resp, body, 200)
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
	writer := newStore(t)
	f := newFixture(t, writer)
	k := testworld.K8s(t)
	ns := k.NewNamespace(t)
	names := desNames(t, 2, testShard, 9)
	rolledBack, committed := names[0], names[1]
	day := testDay.Time()
	keyR := protocol.ContainerKey(testPrefix, day, testShard, protocol.NewContainerID(day))
	keyC := protocol.ContainerKey(testPrefix, day, testShard, protocol.NewContainerID(day.Add(time.Millisecond)))
	putContainer(t, writer, f.bucket, keyR, []file{{name: rolledBack, data: []byte("rolled back")}}, 0)
	putContainer(t, writer, f.bucket, keyC, []file{{name: committed, data: []byte("committed")}}, 0)
	createContainer(t, k, ns, "r1", f.bucket, keyR, desv1.PhaseRolledBack)
	createContainer(t, k, ns, "c1", f.bucket, keyC, desv1.PhaseCommitted)

	w := newWorld(t, f.bucket, reader.Config{Kube: k.Client, Namespace: ns})
	resp, body := do(t, "GET", w.http.URL+"/v1/files/"+rolledBack, nil, nil)
	mustStatus(t, resp, body, 404)
	resp, body = do(t, "GET", w.http.URL+"/v1/files/"+committed, nil, nil)
	mustStatus(t, resp, body, 200)
	if !bytes.Equal(body, []byte("committed")) {
		t.Fatalf("body %q", body)
	}
}
