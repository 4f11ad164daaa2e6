package controllers

import (
	"errors"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

func TestJobPolicyAllows(t *testing.T) {
	defaults := JobDefaults{Image: "registry.example.com/des:v1", ServiceAccountName: "des-packer"}
	widened := defaults
	widened.AllowedImages = []string{"registry.example.com/des@sha256:0123", "registry.example.com/des:v2"}
	widened.AllowedServiceAccounts = []string{"big-packer"}
	cases := []struct {
		name           string
		d              JobDefaults
		image, account string
		refused        string // the field named in the refusal; "" when allowed
		flag           string
	}{
		{"nothing chosen", defaults, "", "", "", ""},
		{"the defaults named explicitly", defaults, "registry.example.com/des:v1", "des-packer", "", ""},
		{"another image by default", defaults, "evil.example.com/miner:latest", "", "spec.job.image", FlagAllowedPackerImages},
		{"another account by default", defaults, "", "kube-admin", "spec.job.serviceAccountName", FlagAllowedPackerServiceAccounts},
		{"an allowed digest", widened, "registry.example.com/des@sha256:0123", "", "", ""},
		{"an allowed tag and account", widened, "registry.example.com/des:v2", "big-packer", "", ""},
		{"the same repository, another tag", widened, "registry.example.com/des:v3", "", "spec.job.image", FlagAllowedPackerImages},
		{"an allowed image without its registry", widened, "des:v2", "", "spec.job.image", FlagAllowedPackerImages},
		{"an allowed image with an account that is not", widened, "registry.example.com/des:v2", "default", "spec.job.serviceAccountName", FlagAllowedPackerServiceAccounts},
		{"an account differing in case", widened, "", "Big-Packer", "spec.job.serviceAccountName", FlagAllowedPackerServiceAccounts},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ds := sampleShard("daily", "src", 0)
			ds.Spec.Job.Image, ds.Spec.Job.ServiceAccountName = tc.image, tc.account
			err := tc.d.allows(ds)
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var na *jobSettingsNotAllowed
			if !errors.As(err, &na) {
				t.Fatalf("allowed (err %v); want a refusal of %s", err, tc.refused)
			}
			// The message tells a person the field, the value and the flag that would allow it.
			value := tc.image
			if tc.refused == "spec.job.serviceAccountName" {
				value = tc.account
			}
			for _, want := range []string{tc.refused, `"` + value + `"`, "--" + tc.flag} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("refusal %q does not mention %q", err, want)
				}
			}
		})
	}
}

// TestDisallowedJobSettingsCreateNoJob runs the reconciler against the real API server: a DesShard
// asking for an image that is not allowed gets no Job (and no packer ServiceAccount), Ready=False
// with JobSettingsNotAllowed and one Warning event; once the spec names an allowed image, Jobs come.
func TestDisallowedJobSettingsCreateNoJob(t *testing.T) {
	e := newTestEnv(t)
	e.create(sampleSource("src"))
	ds := sampleShard("daily", "src", 0, 1)
	ds.Spec.Job.Image = "evil.example.com/miner:latest"
	e.create(ds)
	r := e.shardReconciler()
	r.Jobs.AllowedImages = []string{"des:v2"}

	e.reconcile(r, "daily")
	e.reconcile(r, "daily") // still refused: the condition stays, the event is not told again
	if jobs := e.jobs("daily"); len(jobs) != 0 {
		t.Fatalf("jobs = %v, want none for a disallowed image", jobs)
	}
	if sa, rb := e.packerAccess("des-packer"); sa != nil || rb != nil {
		t.Errorf("packer access was provided for a refused DesShard: ServiceAccount %v, RoleBinding %v", sa != nil, rb != nil)
	}
	e.get(ds)
	ready := meta.FindStatusCondition(ds.Status.Conditions, desv1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != string(desv1.ReasonJobSettingsNotAllowed) ||
		!strings.Contains(ready.Message, `spec.job.image "evil.example.com/miner:latest"`) || !strings.Contains(ready.Message, "--allowed-packer-images") {
		t.Fatalf("Ready = %+v, want False JobSettingsNotAllowed naming the field, the image and the flag", ready)
	}
	if ds.Status.Runs != 0 {
		t.Errorf("runs = %d, want 0", ds.Status.Runs)
	}
	if n := e.countEvents(desv1.ReasonJobSettingsNotAllowed); n != 1 {
		t.Errorf("%d JobSettingsNotAllowed events, want 1", n)
	}

	ds.Spec.Job.Image = "des:v2"
	if err := e.c.Update(e.ctx, ds); err != nil {
		t.Fatal(err)
	}
	e.reconcile(r, "daily")
	e.get(ds)
	if ready := meta.FindStatusCondition(ds.Status.Conditions, desv1.ConditionReady); ready == nil || ready.Status != metav1.ConditionTrue {
		t.Fatalf("Ready after the fix = %+v", ready)
	}
	jobs := e.jobs("daily")
	if len(jobs) != 1 {
		t.Fatalf("jobs after the fix = %v", jobs)
	}
	for name, image := range e.jobImages("daily") {
		if image != "des:v2" {
			t.Errorf("Job %s runs %q, want the allowed des:v2", name, image)
		}
	}
}

// jobImages maps each Job of desShard to the image of its packer container.
func (e *testEnv) jobImages(desShard string) map[string]string {
	return e.jobsBy(desShard, func(j *batchv1.Job) string { return j.Spec.Template.Spec.Containers[0].Image })
}
