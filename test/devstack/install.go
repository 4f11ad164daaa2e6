package devstack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/test/testworld"
)

// ControllerNamespace and ControllerDeployment are where config/default installs the controller.
const (
	ControllerNamespace  = "des-system"
	ControllerDeployment = "des-controller"
)

// installOverlay is the test overlay of config/default. It changes only what this machine needs:
//   - the image: the locally built tag, never pulled (nothing can be pulled here);
//   - host networking for the controller and, through --pod-host-network, for the packer and marker
//     pods: the node has no pod network, and the servers listen on the node's loopback. A hostNetwork
//     pod is outside Pod Security "baseline", so the controller's namespace enforces "privileged" and
//     warns on "restricted" (the e2e checks every pod against "restricted" apart from that);
//   - one controller replica: two hostNetwork replicas on one node would want the same ports.
const installOverlay = `# Written by test/devstack: config/default for the test world's single node.
resources:
- %[1]s
images:
- name: ghcr.io/datavision/des
  newName: %[2]s
  newTag: %[3]s
patches:
- target: {kind: Namespace, name: des-system}
  patch: |-
    - {op: replace, path: /metadata/labels/pod-security.kubernetes.io~1enforce, value: privileged}
    - {op: add, path: /metadata/labels/pod-security.kubernetes.io~1warn, value: restricted}
- target: {kind: Deployment, name: des-controller}
  patch: |-
    - {op: replace, path: /spec/replicas, value: 1}
    - {op: add, path: /spec/template/spec/hostNetwork, value: true}
    - {op: add, path: /spec/template/spec/dnsPolicy, value: ClusterFirstWithHostNet}
    - {op: add, path: /spec/template/spec/containers/0/imagePullPolicy, value: Never}
    - {op: add, path: /spec/template/spec/containers/0/args/-, value: --pod-host-network}
- patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: des-controller, namespace: des-system}
    spec:
      template:
        spec:
          containers:
          - name: manager
            env:
            - {name: DES_PACKER_IMAGE, value: "%[4]s"}
`

// InstallDES applies the overlay of config/default with kubectl and waits until the controller's
// Deployment has a Ready pod.
func (s *Stack) InstallDES(ctx context.Context) error {
	root, err := testworld.RepoRoot()
	if err != nil {
		return err
	}
	dir := filepath.Join(s.Opts.Dir, "install")
	base, err := relDir(dir, filepath.Join(root, "config", "default"))
	if err != nil {
		return err
	}
	name, tag, _ := strings.Cut(testworld.ManagerImage, ":")
	if err := writeOverlay(dir, fmt.Sprintf(installOverlay, base, name, tag, testworld.ManagerImage)); err != nil {
		return err
	}
	if out, err := s.Kubectl(ctx, "apply", "-k", dir); err != nil {
		return fmt.Errorf("kubectl apply -k %s: %w\n%s", dir, err, out)
	}
	return s.WaitControllerReady(ctx, 2*time.Minute)
}

// relDir is target relative to dir, which it creates: kustomize wants relative resource paths.
func relDir(dir, target string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return filepath.Rel(dir, target)
}

func writeOverlay(dir, kustomization string) error {
	return os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o644)
}

// WaitControllerReady waits until exactly one controller pod is Ready and none is terminating.
func (s *Stack) WaitControllerReady(ctx context.Context, timeout time.Duration) error {
	return poll(ctx, timeout, func() (bool, string, error) {
		dep := &appsv1.Deployment{}
		if err := s.Client.Get(ctx, client.ObjectKey{Namespace: ControllerNamespace, Name: ControllerDeployment}, dep); err != nil {
			return false, "", err
		}
		pods, err := s.ControllerPods(ctx)
		if err != nil {
			return false, "", err
		}
		ready := 0
		for _, p := range pods {
			if !p.DeletionTimestamp.IsZero() {
				return false, "a controller pod is terminating", nil
			}
			if podReady(&p) {
				ready++
			}
		}
		return ready == 1, fmt.Sprintf("%d of %d controller pods Ready", ready, len(pods)), nil
	})
}

// leaderLease is the controller's leader election Lease (cmd/manager/controller.go).
const leaderLease = "des-controller.des.datavision.io"

// LeaderHolder is the identity holding the controller's leader Lease ("" when none does).
func (s *Stack) LeaderHolder(ctx context.Context) (string, error) {
	l := &coordinationv1.Lease{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: ControllerNamespace, Name: leaderLease}, l); err != nil {
		return "", err
	}
	if l.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *l.Spec.HolderIdentity, nil
}

// WaitNewLeader waits until a holder other than old (and not none) leads.
func (s *Stack) WaitNewLeader(ctx context.Context, old string, timeout time.Duration) (string, error) {
	var holder string
	err := poll(ctx, timeout, func() (bool, string, error) {
		h, err := s.LeaderHolder(ctx)
		holder = h
		return err == nil && h != "" && h != old, "leader " + h, err
	})
	return holder, err
}

// ControllerPods lists the controller's pods.
func (s *Stack) ControllerPods(ctx context.Context) ([]corev1.Pod, error) {
	list := &corev1.PodList{}
	err := s.Client.List(ctx, list, client.InNamespace(ControllerNamespace),
		client.MatchingLabels{"app.kubernetes.io/name": "des", "app.kubernetes.io/component": "controller"})
	return list.Items, err
}

// PackerPods lists the running packer pods of a namespace whose container has started.
func (s *Stack) PackerPods(ctx context.Context, ns string) ([]corev1.Pod, error) {
	list := &corev1.PodList{}
	if err := s.Client.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{protocol.LabelComponent: "packer"}); err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp.IsZero() && runningContainerID(&p) != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

// runningContainerID is the id of the pod's first running container, or "".
func runningContainerID(p *corev1.Pod) string {
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Running != nil && c.ContainerID != "" {
			return c.ContainerID
		}
	}
	return ""
}

// KillPod SIGKILLs the pod's running container through containerd, as an OOM kill or a crash would:
// the process gets no chance to clean up.
func (s *Stack) KillPod(ctx context.Context, p *corev1.Pod) error {
	id := runningContainerID(p)
	if id == "" {
		return fmt.Errorf("pod %s has no running container", p.Name)
	}
	return s.Node.KillContainer(ctx, id)
}

// FreezePod stops (SIGSTOP) the processes of a pod's running container; ThawPod resumes them.
func (s *Stack) FreezePod(ctx context.Context, p *corev1.Pod) (thaw func(context.Context) error, err error) {
	id := runningContainerID(p)
	if id == "" {
		return nil, fmt.Errorf("pod %s has no running container", p.Name)
	}
	if err := s.Node.FreezeContainer(ctx, id); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return s.Node.ThawContainer(ctx, id) }, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Kubectl runs kubectl against the stack and returns its combined output.
func (s *Stack) Kubectl(ctx context.Context, args ...string) (string, error) {
	dir, err := testworld.KubeAssetsDir()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "kubectl"), args...)
	// The kubeconfig comes from the environment, not --kubeconfig: kubectl looks for a plugin only
	// when the command comes first, and hands plugins its environment, not its flags. It finds
	// plugins on PATH: `kubectl des` is bin/kubectl-des, beside this program's binary.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.Kubeconfig)
	if self, err := os.Executable(); err == nil {
		cmd.Env = append(cmd.Env, "PATH="+filepath.Dir(self)+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// poll calls check every 250 ms until it reports done, fails, or timeout passes; the timeout error
// carries check's last description.
func poll(ctx context.Context, timeout time.Duration, check func() (bool, string, error)) error {
	deadline := time.Now().Add(timeout)
	var last string
	var lastErr error
	for {
		done, what, err := check()
		if err == nil && done {
			return nil
		}
		last, lastErr = what, err
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %s: %s (%w)", ErrTimeout, timeout, last, lastErr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Noise lists what a run without faults must not produce: Warning events about DES's objects or from
// DES's own components, and lines the controller logged at error level. The kubelet's warnings about
// this machine (cgroup v1, no cluster DNS) are the test world's, not DES's.
func (s *Stack) Noise(ctx context.Context) (warnings, errorLines []string, err error) {
	out, err := s.Kubectl(ctx, "get", "events", "-A", "--field-selector", "type=Warning", "--no-headers",
		"-o", "custom-columns=NS:.metadata.namespace,KIND:.regarding.kind,OBJECT:.regarding.name,BY:.reportingController,REASON:.reason,NOTE:.note")
	if err != nil {
		return nil, nil, fmt.Errorf("list Warning events: %w\n%s", err, out)
	}
	for line := range strings.Lines(out) {
		if line = strings.TrimSpace(line); line != "" && desEvent(line) {
			warnings = append(warnings, line)
		}
	}
	logs, err := s.Kubectl(ctx, "-n", ControllerNamespace, "logs", "deploy/des-controller", "--all-containers")
	if err != nil {
		return nil, nil, fmt.Errorf("controller log: %w\n%s", err, logs)
	}
	for line := range strings.Lines(logs) {
		if strings.Contains(line, `"level":"error"`) {
			errorLines = append(errorLines, strings.TrimSpace(line))
		}
	}
	return warnings, errorLines, nil
}

// desEvent says whether a line of Noise's event listing concerns DES: a DES kind, or reported by a DES
// component (des-controller, des-packer, ...).
func desEvent(line string) bool {
	f := strings.Fields(line)
	if len(f) < 4 {
		return false
	}
	kind, by := f[1], f[3]
	return strings.HasPrefix(kind, "Des") || strings.HasPrefix(by, "des")
}
