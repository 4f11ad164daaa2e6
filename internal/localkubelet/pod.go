package localkubelet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/datavision/des/internal/protocol"
)

// materializeVolumes writes the pod's Secret volumes (and empty dirs) under dir+mountPath; the process
// finds them through protocol.VolumePath.
func (r *Runner) materializeVolumes(ctx context.Context, pod *corev1.Pod, c corev1.Container, dir string) error {
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			return fmt.Errorf("volume %s is mounted but not defined", m.Name)
		}
		target := filepath.Join(dir, m.MountPath)
		if err := os.MkdirAll(target, 0o700); err != nil {
			return err
		}
		switch {
		case v.Secret != nil:
			if err := r.writeSecret(ctx, pod.Namespace, v.Secret, target); err != nil {
				return err
			}
		case v.EmptyDir != nil:
		default:
			return fmt.Errorf("volume %s: the local runner supports Secret and emptyDir volumes only", v.Name)
		}
	}
	return nil
}

func (r *Runner) writeSecret(ctx context.Context, ns string, src *corev1.SecretVolumeSource, target string) error {
	secret := &corev1.Secret{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: src.SecretName}, secret); err != nil {
		return fmt.Errorf("Secret %s for a volume: %w", src.SecretName, err)
	}
	files := map[string][]byte{}
	if len(src.Items) == 0 {
		files = secret.Data
	}
	for _, it := range src.Items {
		v, ok := secret.Data[it.Key]
		if !ok {
			return fmt.Errorf("Secret %s has no key %s", src.SecretName, it.Key)
		}
		files[it.Path] = v
	}
	for name, data := range files {
		if strings.Contains(name, "..") {
			return fmt.Errorf("Secret %s: bad file name %q", src.SecretName, name)
		}
		if err := os.WriteFile(filepath.Join(target, name), data, 0o400); err != nil {
			return err
		}
	}
	return nil
}

// environment resolves the container's env as the kubelet would (values, field refs, Secret keys),
// on top of the runner's own.
func (r *Runner) environment(ctx context.Context, pod *corev1.Pod, c corev1.Container, dir string) ([]string, error) {
	env := append(os.Environ(), r.Env...)
	env = append(env, "KUBECONFIG="+r.Kubeconfig, protocol.VolumeRootEnv+"="+dir)
	for _, e := range c.Env {
		v, err := r.envValue(ctx, pod, e)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		env = append(env, e.Name+"="+v)
	}
	return env, nil
}

func (r *Runner) envValue(ctx context.Context, pod *corev1.Pod, e corev1.EnvVar) (string, error) {
	switch src := e.ValueFrom; {
	case src == nil:
		return e.Value, nil
	case src.FieldRef != nil:
		switch src.FieldRef.FieldPath {
		case "metadata.name":
			return pod.Name, nil
		case "metadata.namespace":
			return pod.Namespace, nil
		case "metadata.uid":
			return string(pod.UID), nil
		}
		return "", fmt.Errorf("field %s is not supported by the local runner", src.FieldRef.FieldPath)
	case src.SecretKeyRef != nil:
		s := &corev1.Secret{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: src.SecretKeyRef.Name}, s); err != nil {
			return "", err
		}
		return string(s.Data[src.SecretKeyRef.Key]), nil
	}
	return "", fmt.Errorf("unsupported value source")
}

func (r *Runner) setRunning(ctx context.Context, pod *corev1.Pod) error {
	now := metav1.Now()
	base := pod.DeepCopy()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.StartTime = &now
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: pod.Spec.Containers[0].Name, Image: pod.Spec.Containers[0].Image, Ready: true, Started: ptrTrue(),
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
	}}
	return r.Status().Patch(ctx, pod, client.MergeFrom(base))
}

func (r *Runner) setTerminated(ctx context.Context, key client.ObjectKey, uid types.UID, code int) error {
	pod := &corev1.Pod{}
	if err := r.Get(ctx, key, pod); err != nil {
		return err
	}
	if pod.UID != uid {
		return nil
	}
	base := pod.DeepCopy()
	now := metav1.Now()
	pod.Status.Phase = corev1.PodSucceeded
	reason := "Completed"
	if code != 0 {
		pod.Status.Phase, reason = corev1.PodFailed, "Error"
	}
	name, image := pod.Spec.Containers[0].Name, pod.Spec.Containers[0].Image
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: name, Image: image,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: int32(code), Reason: reason, FinishedAt: now}}}}
	return r.Status().Patch(ctx, pod, client.MergeFrom(base))
}

func (r *Runner) fail(ctx context.Context, pod *corev1.Pod, message string) error {
	base := pod.DeepCopy()
	pod.Status.Phase, pod.Status.Message, pod.Status.Reason = corev1.PodFailed, message, "LocalRunnerError"
	return r.Status().Patch(ctx, pod, client.MergeFrom(base))
}

func ptrTrue() *bool { t := true; return &t }
