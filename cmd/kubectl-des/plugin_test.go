package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/test/testworld"
)

// plugin runs `kubectl des --kubeconfig K -n NS args...` in-process, through the real kubeconfig
// loading, and returns its exit code and output.
type plugin struct {
	t          *testing.T
	kubeconfig string
	ns         string
}

func newPlugin(t *testing.T) (*plugin, client.Client) {
	t.Helper()
	kube := testworld.K8s(t)
	return &plugin{t: t, kubeconfig: kube.Kubeconfig(t), ns: kube.NewNamespace(t)}, kube.Client
}

func (p *plugin) run(args ...string) (int, string, string) {
	p.t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"--kubeconfig", p.kubeconfig, "-n", p.ns}, args...), &stdout, &stderr, connect)
	return code, stdout.String(), stderr.String()
}

func createWithStatus(t *testing.T, c client.Client, obj client.Object, setStatus func()) {
	t.Helper()
	ctx := context.Background()
	if err := c.Create(ctx, obj); err != nil {
		t.Fatalf("create %s: %v", obj.GetName(), err)
	}
	setStatus()
	if err := c.Status().Update(ctx, obj); err != nil {
		t.Fatalf("status of %s: %v", obj.GetName(), err)
	}
}

// TestStatusWhyAndPackNowAgainstTheAPIServer: status shows the counts the controller recorded, why
// names the shard held below the fill policy, and pack-now sets the annotation the controller
// honours (controllers/desshard_packnow_test.go), refusing bad lists and suspended DesShards.
func TestStatusWhyAndPackNowAgainstTheAPIServer(t *testing.T) {
	p, c := newPlugin(t)
	now := metav1.NewTime(time.Now().Add(-10 * time.Minute))
	src := &desv1.DesSource{ObjectMeta: metav1.ObjectMeta{Name: "scans", Namespace: p.ns}, Spec: desv1.DesSourceSpec{
		Catalog: desv1.Catalog{DSNSecretRef: desv1.SecretKeyRef{Name: "catalog", Key: "dsn"}, Table: "objects"},
		Store:   desv1.SourceStore{ObjectStore: desv1.ObjectStore{Endpoint: "http://127.0.0.1:9000", CredentialsSecretRef: desv1.SecretRef{Name: "s3"}}, Bucket: "scans"},
		Naming:  desv1.Naming{ShardBits: 2}}}
	createWithStatus(t, c, src, func() {
		src.Status.Conditions = []metav1.Condition{{Type: desv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: "ok", LastTransitionTime: now}}
		src.Status.Rows = &desv1.RowCounts{Ready: 7, Packed: 5993, CountedAt: &now}
		src.Status.CommittedContainers = 4
	})
	packBy := metav1.NewTime(time.Now().Add(time.Hour))
	ds := &desv1.DesShard{ObjectMeta: metav1.ObjectMeta{Name: "scans-all", Namespace: p.ns}, Spec: desv1.DesShardSpec{SourceRef: "scans",
		ShardRanges: []desv1.ShardRange{{From: 0, To: 3}},
		Archive:     desv1.ArchiveStore{ObjectStore: desv1.ObjectStore{Endpoint: "http://127.0.0.1:9000", CredentialsSecretRef: desv1.SecretRef{Name: "s3"}}, Bucket: "archive", Prefix: "des"},
		Limits:      desv1.ContainerLimits{MinFiles: 1350, MaxWait: metav1.Duration{Duration: 2 * time.Hour}}}}
	createWithStatus(t, c, ds, func() {
		ds.Status.ShardCount = 4
		ds.Status.Conditions = []metav1.Condition{{Type: desv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: "ok", LastTransitionTime: now}}
		ds.Status.Fill = &desv1.FillStatus{WaitingShards: 1, PendingRows: 7, PendingBytes: 700, CountedAt: &now, CheckedAt: &now, NextPackBy: &packBy}
		ds.Status.Containers = map[string]int64{"Committed": 4}
		ds.Status.Shards = []desv1.ShardStatus{{ID: 2, PendingRows: 7, PendingBytes: 700, Fill: desv1.FillWaiting, PackBy: &packBy}}
	})

	code, out, errOut := p.run("status")
	if code != exitOK {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"SOURCES", "scans", "5993", "10m ago", "SHARDS", "scans-all", "in 59m", "CONTAINERS", "COMMITTED"} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not show %q:\n%s", want, out)
		}
	}

	code, out, errOut = p.run("-A", "status")
	if code != exitOK || !strings.Contains(out, "NAMESPACE") || !strings.Contains(out, p.ns+"  scans") {
		t.Fatalf("status -A: exit %d, no NAMESPACE column with %s:\n%s%s", code, p.ns, out, errOut)
	}

	code, out, errOut = p.run("why", "scans-all", "2")
	if code != exitOK || !strings.Contains(out, "✗ shard 2: below the fill policy: 7 ready rows") || !strings.Contains(out, "kubectl des pack-now scans-all --shards 2") {
		t.Fatalf("why: exit %d:\n%s%s", code, out, errOut)
	}
	if code, _, errOut = p.run("why", "nosuch"); code != exitError || !strings.Contains(errOut, "not found") {
		t.Fatalf("why of a missing DesShard: exit %d: %s", code, errOut)
	}

	if code, _, errOut = p.run("pack-now", "scans-all", "--shards", "2-3"); code != exitUsage || !strings.Contains(errOut, "not a shard id") {
		t.Fatalf("pack-now with a bad list: exit %d: %s", code, errOut)
	}
	if code, out, errOut = p.run("pack-now", "scans-all", "--shards", "2", "--wait=false"); code != exitOK || !strings.Contains(out, "asked for a run of shards 2") {
		t.Fatalf("pack-now: exit %d: %s%s", code, out, errOut)
	}
	got := &desv1.DesShard{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(ds), got); err != nil {
		t.Fatal(err)
	}
	if v, ok := got.Annotations[protocol.AnnotationPackNow]; !ok || v != "2" {
		t.Fatalf("annotations %v, want %s=2", got.Annotations, protocol.AnnotationPackNow)
	}
	if code, out, _ = p.run("why", "scans-all"); !strings.Contains(out, "a pack-now request is waiting") {
		t.Errorf("why does not mention the waiting request: exit %d\n%s", code, out)
	}

	got.Spec.Suspend = true
	if err := c.Update(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut = p.run("pack-now", "scans-all"); code != exitError || !strings.Contains(errOut, "suspended") {
		t.Fatalf("pack-now of a suspended DesShard: exit %d: %s", code, errOut)
	}
}

func TestVersionAndUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--version"}, exitOK, "kubectl-des "},
		{[]string{"version"}, exitOK, "kubectl-des "},
		{nil, exitUsage, "usage: kubectl des"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
	} {
		var stdout, stderr bytes.Buffer
		noCluster := func(globalFlags) (client.Client, string, error) {
			t.Fatal("connected for", tc.args)
			return nil, "", nil
		}
		code := run(context.Background(), tc.args, &stdout, &stderr, noCluster)
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, output %q; want %d and %q", tc.args, code, stdout.String()+stderr.String(), tc.code, tc.want)
		}
	}
}
