// Package nodecheck checks the test world's real node: pods run in real containers under the
// kubelet, as non-root, with ServiceAccount tokens, Secret volumes and logs, the way a cluster runs
// them. Every DES test that runs pods stands on what these tests show.
//
// Pods of the test world use the node's network (hostNetwork): the node has no pod network (its CNI
// configuration is loopback only, and containerd 1.6 cannot start a pod without an eth0 from CNI).
package nodecheck

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/datavision/des/test/testworld"
)

func TestMain(m *testing.M) { testworld.Main(m, testworld.RealNode) }

// restricted is the pod security context of a Pod Security "restricted" pod running as the image's
// non-root user, with Secret files readable through the group.
func restricted() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(65532)),
		RunAsGroup: ptr.To(int64(65532)), FSGroup: ptr.To(int64(65532)),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
}

func containerSecurity() *corev1.SecurityContext {
	return &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
}

// TestSecretFilesAndTheNonRootUser shows the finding that made DES run on a real node: a Secret
// volume with mode 0400 is root-owned and unreadable by uid 65532; with fsGroup 65532 and mode 0440 it
// is readable. `manager migrate` reads its DSN file first, then fails to connect to 127.0.0.1:1 (where
// nothing listens): that message in `kubectl logs` shows the file was read.
func TestSecretFilesAndTheNonRootUser(t *testing.T) {
	kube, node := testworld.K8s(t), testworld.Node(t)
	ctx := context.Background()
	ns := kube.NewNamespace(t)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: ns}, StringData: map[string]string{"dsn": "postgres://des@127.0.0.1:1/catalog"}}
	if err := kube.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		fsGroup  *int64
		mode     int32
		wantLogs string
	}{
		{"fsgroup-0440", ptr.To(int64(65532)), 0o440, "connection refused"},
		{"no-fsgroup-0400", nil, 0o400, "permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := restricted()
			sc.FSGroup = tc.fsGroup
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: tc.name, Namespace: ns},
				Spec: corev1.PodSpec{
					RestartPolicy:   corev1.RestartPolicyNever,
					HostNetwork:     true,
					SecurityContext: sc,
					Containers: []corev1.Container{{
						Name: "manager", Image: testworld.ManagerImage, ImagePullPolicy: corev1.PullNever,
						Args:            []string{"migrate", "--catalog-dsn-file=/var/run/creds/dsn", "--table=objects"},
						SecurityContext: containerSecurity(),
						VolumeMounts:    []corev1.VolumeMount{{Name: "creds", MountPath: "/var/run/creds", ReadOnly: true}},
					}},
					Volumes: []corev1.Volume{{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
						SecretName: "creds", DefaultMode: ptr.To(tc.mode)}}}},
				},
			}
			if err := kube.Client.Create(ctx, pod); err != nil {
				t.Fatalf("create pod: %v", err)
			}
			done := waitPod(t, kube, ns, pod.Name, func(p *corev1.Pod) bool {
				return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
			})
			logs := kubectl(t, kube, "-n", ns, "logs", pod.Name)
			t.Logf("pod %s ended %s on %s; kubectl logs:\n%s", pod.Name, done.Status.Phase, done.Spec.NodeName, logs)
			if !strings.Contains(logs, tc.wantLogs) {
				t.Fatalf("logs do not say %q", tc.wantLogs)
			}
			if done.Spec.NodeName != testworld.NodeName {
				t.Fatalf("pod ran on %q", done.Spec.NodeName)
			}
			hasToken := false
			for _, v := range done.Spec.Volumes {
				hasToken = hasToken || strings.HasPrefix(v.Name, "kube-api-access-")
			}
			if !hasToken {
				t.Fatal("the ServiceAccount admission plugin gave the pod no token volume")
			}
		})
	}
	if out, err := node.Ctr(ctx, "images", "list", "--quiet"); err != nil || !strings.Contains(out, testworld.ManagerImage) {
		t.Fatalf("containerd images: %v\n%s", err, out)
	}
}

func TestHostNetworkPodRunsOnTheNodeAddress(t *testing.T) {
	kube := testworld.K8s(t)
	ctx := context.Background()
	ns := kube.NewNamespace(t)
	// A pause pod that stays up; the check is that it runs and is Ready on the node's address.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pause", Namespace: ns},
		Spec: corev1.PodSpec{
			HostNetwork:     true,
			SecurityContext: restricted(),
			Containers: []corev1.Container{{Name: "pause", Image: testworld.PauseImage, ImagePullPolicy: corev1.PullNever,
				SecurityContext: containerSecurity()}},
		},
	}
	if err := kube.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	running := waitPod(t, kube, ns, pod.Name, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if running.Status.PodIP != testworld.SandboxNodeIP {
		t.Fatalf("hostNetwork pod IP %q, want the node's %s", running.Status.PodIP, testworld.SandboxNodeIP)
	}
	if err := kube.Client.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
}

func waitPod(t *testing.T, kube *testworld.KubeServer, ns, name string, done func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	pod := &corev1.Pod{}
	for time.Now().Before(deadline) {
		if err := kube.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, pod); err == nil && done(pod) {
			return pod
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("pod %s/%s: still %s after 2m: %+v", ns, name, pod.Status.Phase, pod.Status)
	return nil
}

func kubectl(t *testing.T, kube *testworld.KubeServer, args ...string) string {
	t.Helper()
	out, err := exec.Command(testworld.Kubectl(t), append([]string{"--kubeconfig", kube.Kubeconfig(t)}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
