// Package localkubelet is DEVELOPMENT AND TEST TOOLING: it stands in for the kubelet on a machine
// without a container runtime, so the demo and the end-to-end tests can run DES's packer Jobs for
// real. It watches Pods of DES Jobs, runs each pod's container command as a local process of the DES
// binary with the pod's environment and its Secret volumes written to a private folder, and reports
// the pod's phase back, so the Job controller completes or fails the Job as it would on a cluster.
// It is never part of what DES deploys.
package localkubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/datavision/des/internal/protocol"
)

// Runner runs DES pods as local processes.
type Runner struct {
	client.Client
	// Binary replaces the container's command[0] (the image's /manager).
	Binary string
	// Kubeconfig is handed to the processes as KUBECONFIG: they talk to the same API server.
	Kubeconfig string
	// WorkDir holds one folder per pod with its volumes and its log.
	WorkDir string
	// Env is added to every process (e.g. GOCOVERDIR); the pod's own env wins.
	Env []string

	mu    sync.Mutex
	procs map[types.UID]*podProcess
}

type podProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Reconcile starts a pending pod's process and stops the process of a pod that is gone.
func (r *Runner) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pod := &corev1.Pod{}
	err := r.Get(ctx, req.NamespacedName, pod)
	if apierrors.IsNotFound(err) {
		r.stopGone(ctx)
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if !pod.DeletionTimestamp.IsZero() {
		r.stop(pod.UID)
		return ctrl.Result{}, nil
	}
	if pod.Status.Phase != corev1.PodPending || r.running(pod.UID) {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, r.start(ctx, pod)
}

func (r *Runner) running(uid types.UID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.procs[uid]
	return ok
}

func (r *Runner) start(ctx context.Context, pod *corev1.Pod) error {
	if len(pod.Spec.Containers) != 1 {
		return r.fail(ctx, pod, fmt.Sprintf("the local runner runs pods of one container, this one has %d", len(pod.Spec.Containers)))
	}
	c := pod.Spec.Containers[0]
	dir := filepath.Join(r.WorkDir, pod.Namespace+"_"+pod.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := r.materializeVolumes(ctx, pod, c, dir); err != nil {
		return r.fail(ctx, pod, err.Error())
	}
	env, err := r.environment(ctx, pod, c, dir)
	if err != nil {
		return r.fail(ctx, pod, err.Error())
	}
	logFile, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		return err
	}
	args := append(append([]string{}, c.Command[1:]...), c.Args...)
	cmd := exec.Command(r.Binary, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr, cmd.Dir = env, logFile, logFile, dir
	// Its own process group, so a kill reaches what it starts; dies with the runner.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return r.fail(ctx, pod, fmt.Sprintf("start %s: %v", r.Binary, err))
	}
	p := &podProcess{cmd: cmd, done: make(chan struct{})}
	r.mu.Lock()
	if r.procs == nil {
		r.procs = map[types.UID]*podProcess{}
	}
	r.procs[pod.UID] = p
	r.mu.Unlock()
	log.FromContext(ctx).Info("started pod", "pod", pod.Name, "pid", cmd.Process.Pid, "log", logFile.Name())
	if err := r.setRunning(ctx, pod); err != nil {
		log.FromContext(ctx).Error(err, "report pod running", "pod", pod.Name)
	}
	go r.wait(client.ObjectKeyFromObject(pod), pod.UID, p, logFile)
	return nil
}

// wait reports the pod's end once its process exits.
func (r *Runner) wait(key client.ObjectKey, uid types.UID, p *podProcess, logFile *os.File) {
	err := p.cmd.Wait()
	logFile.Close()
	close(p.done)
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
		if code < 0 {
			code = 137 // killed by a signal, as a container runtime reports SIGKILL
		}
	case err != nil:
		code = 1
	}
	ctx := context.Background()
	for attempt := 0; attempt < 10; attempt++ {
		if err := r.setTerminated(ctx, key, uid, code); err == nil || apierrors.IsNotFound(err) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.mu.Lock()
	delete(r.procs, uid)
	r.mu.Unlock()
}

// Kill sends SIGKILL to a pod's process group, as a node failure or OOM kill would: the process gets
// no chance to clean up. It reports whether the pod had a process.
func (r *Runner) Kill(uid types.UID) bool {
	r.mu.Lock()
	p, ok := r.procs[uid]
	r.mu.Unlock()
	if ok {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	return ok
}

// Running lists the pods with a live process.
func (r *Runner) Running() []types.UID {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]types.UID, 0, len(r.procs))
	for uid := range r.procs {
		out = append(out, uid)
	}
	return out
}

// stop ends a pod's process: SIGTERM, then SIGKILL after the grace period.
func (r *Runner) stop(uid types.UID) {
	r.mu.Lock()
	p, ok := r.procs[uid]
	r.mu.Unlock()
	if !ok {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// stopGone stops processes whose pod no longer exists.
func (r *Runner) stopGone(ctx context.Context) {
	for _, uid := range r.Running() {
		pods := &corev1.PodList{}
		if err := r.List(ctx, pods); err != nil {
			return
		}
		found := false
		for i := range pods.Items {
			found = found || pods.Items[i].UID == uid
		}
		if !found {
			r.stop(uid)
		}
	}
}

// StopAll ends every process; call it when the runner shuts down.
func (r *Runner) StopAll() {
	for _, uid := range r.Running() {
		r.stop(uid)
	}
}

// SetupWithManager watches the Pods of DES Jobs.
func (r *Runner) SetupWithManager(mgr ctrl.Manager) error {
	des, err := predicate.LabelSelectorPredicate(metav1.LabelSelector{MatchLabels: map[string]string{protocol.LabelManagedBy: protocol.ManagedByDES}})
	if err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&corev1.Pod{}, builder.WithPredicates(des)).
		Named("localkubelet").
		Complete(r)
}
