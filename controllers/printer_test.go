package controllers

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/test/testworld"
)

// TestKubectlGetDesContainers checks what an operator sees: `kubectl get descontainers` shows shard,
// day, phase, files, size, age and key; -o wide adds the Job.
func TestKubectlGetDesContainers(t *testing.T) {
	e := newTestEnv(t)
	con := &desv1.DesContainer{
		ObjectMeta: metav1.ObjectMeta{Name: "daily-c018f3a2b4c5d6e7f"},
		Spec: desv1.DesContainerSpec{ShardRef: "daily", Shard: 42, Day: "2026-11-26", Bucket: "archive",
			Key: "scans/2026-11-26/002a/c018f3a2b4c5d6e7f/c018f3a2b4c5d6e7f.des"},
	}
	e.create(con)
	con.Status = desv1.DesContainerStatus{Phase: desv1.PhaseCommitted, Files: 1234, Bytes: 5 << 20, Job: "daily-r7-g2",
		CommittedAt: &metav1.Time{Time: time.Now()}}
	if err := e.c.Status().Update(e.ctx, con); err != nil {
		t.Fatal(err)
	}
	kubeconfig := testworld.K8s(t).Kubeconfig(t)
	get := func(args ...string) string {
		out, err := exec.Command(testworld.Kubectl(t), append([]string{"--kubeconfig", kubeconfig, "-n", e.ns, "get", "descontainers"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl get: %v\n%s", err, out)
		}
		t.Logf("kubectl get descontainers %s\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	plain := get()
	for _, want := range []string{"SHARD", "DAY", "PHASE", "FILES", "BYTES", "AGE", "KEY", "42", "2026-11-26", "Committed", "1234", "5242880", con.Spec.Key} {
		if !strings.Contains(plain, want) {
			t.Errorf("kubectl get descontainers lacks %q", want)
		}
	}
	if strings.Contains(plain, "daily-r7-g2") {
		t.Error("the Job shows without -o wide")
	}
	if wide := get("-o", "wide"); !strings.Contains(wide, "JOB") || !strings.Contains(wide, "daily-r7-g2") {
		t.Error("-o wide lacks the Job")
	}
}
