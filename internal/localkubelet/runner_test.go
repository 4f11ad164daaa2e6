package localkubelet

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/internal/testworld"
)

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	return s
}()

func TestMain(m *testing.M) {
	testworld.MainWith(m, testworld.Kube, testworld.KubeOptions{Scheme: scheme, CRDDirs: []string{}})
}

// startRunner runs the Job controller and the local runner, with /bin/sh standing in for the DES
// binary so the test controls what the "container" does.
func startRunner(t *testing.T) (*Runner, client.Client, string) {
	kube := testworld.K8s(t)
	kube.StartControllerManager(t)
	mgr, err := ctrl.NewManager(kube.Config, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}}) // one manager per test
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Client: mgr.GetClient(), Binary: "/bin/sh", Kubeconfig: "/dev/null", WorkDir: t.TempDir()}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { r.StopAll(); cancel(); <-done })
	return r, kube.Client, kube.NewNamespace(t)
}

func desJob(ns, name, script string) *batchv1.Job {
	labels := map[string]string{protocol.LabelManagedBy: protocol.ManagedByDES}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To(int32(0)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name: "packer", Image: "des:test", Command: []string{"/manager"}, Args: []string{"-c", script},
						Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
							{Name: "GREETING", Value: "hello"}},
						VolumeMounts: []corev1.VolumeMount{{Name: "catalog", MountPath: protocol.CatalogSecretDir, ReadOnly: true}},
					}},
					Volumes: []corev1.Volume{{Name: "catalog", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
						SecretName: "catalog", Items: []corev1.KeyToPath{{Key: "url", Path: protocol.CatalogDSNFile}}}}}},
				},
			},
		},
	}
}

func waitJob(t *testing.T, c client.Client, job *batchv1.Job, cond batchv1.JobConditionType) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(job), job); err != nil {
			t.Fatal(err)
		}
		for _, jc := range job.Status.Conditions {
			if jc.Type == cond && jc.Status == corev1.ConditionTrue {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("Job %s never reached %s: %+v", job.Name, cond, job.Status)
}

func TestJobRunsToCompletionWithEnvAndSecrets(t *testing.T) {
	r, c, ns := startRunner(t)
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "catalog", Namespace: ns}, StringData: map[string]string{"url": "postgres://x"}}); err != nil {
		t.Fatal(err)
	}
	script := `echo "$GREETING $POD_NAME $(cat $DES_VOLUME_ROOT/var/run/des/catalog/dsn)" > "$DES_VOLUME_ROOT/out"`
	job := desJob(ns, "ok", script)
	if err := c.Create(ctx, job); err != nil {
		t.Fatal(err)
	}
	waitJob(t, c, job, batchv1.JobComplete)
	outs, _ := filepath.Glob(filepath.Join(r.WorkDir, ns+"_ok-*", "out"))
	if len(outs) != 1 {
		t.Fatalf("pod output files: %v", outs)
	}
	out, _ := os.ReadFile(outs[0])
	if !strings.HasPrefix(string(out), "hello ok-") || !strings.HasSuffix(strings.TrimSpace(string(out)), " postgres://x") {
		t.Fatalf("the process saw %q", out)
	}
}

func TestKilledPodFailsItsJob(t *testing.T) {
	r, c, ns := startRunner(t)
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "catalog", Namespace: ns}, StringData: map[string]string{"url": "u"}}); err != nil {
		t.Fatal(err)
	}
	job := desJob(ns, "sleeper", "sleep 300")
	if err := c.Create(ctx, job); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(r.Running()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	running := r.Running()
	if len(running) != 1 || !r.Kill(running[0]) {
		t.Fatalf("running pods: %v", running)
	}
	waitJob(t, c, job, batchv1.JobFailed)
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(ns)); err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods: %v, %v", pods.Items, err)
	}
	st := pods.Items[0].Status
	if st.Phase != corev1.PodFailed || st.ContainerStatuses[0].State.Terminated == nil || st.ContainerStatuses[0].State.Terminated.ExitCode != 137 {
		t.Fatalf("killed pod status: %+v", st)
	}
}
