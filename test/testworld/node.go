package testworld

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// NodeName is the name of the sandbox's one node.
const NodeName = "des-node"

// Images the node has loaded (imported, never pulled: pods use imagePullPolicy Never or a tag that
// is present).
const (
	ManagerImage = "des.datavision.io/manager:dev"
	PauseImage   = "des.datavision.io/pause:dev"
)

// NodeServer is a real Kubernetes node inside the sandbox: containerd (with runc) from Debian, a
// kubelet and kube-scheduler built from the pinned Kubernetes module. Pods run in real containers.
type NodeServer struct {
	Name string
	IP   string
	// Containerd is the containerd socket; Ctr runs `ctr` against it in the k8s.io namespace.
	Containerd string

	kube       *KubeServer
	dir        string
	containerd *process
	kubelet    *process
	scheduler  *process
	kubeletCmd func() *exec.Cmd
}

// nodeTools are the programs a node needs besides the ones `make test-assets` builds.
var nodeTools = []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr"}

const cniDir = "/usr/lib/cni"

// StartNode starts containerd, imports the images, and starts kube-scheduler and a kubelet that
// registers with kube. It must run inside the sandbox (see EnterSandbox) and needs kube started with
// KubeOptions.Sandbox. Close stops it and removes what it mounted.
func StartNode(ctx context.Context, kube *KubeServer, images []string) (_ *NodeServer, err error) {
	if !InSandbox() {
		return nil, fmt.Errorf("%w: a node runs only inside the sandbox: call testworld.EnterSandbox first (testworld.Main does for the Node part)", ErrSandbox)
	}
	if err := checkNodeTools(); err != nil {
		return nil, err
	}
	assets, err := KubeAssetsDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "node-")
	if err != nil {
		return nil, err
	}
	n := &NodeServer{Name: NodeName, IP: SandboxNodeIP, kube: kube, dir: dir, Containerd: "/run/des-node/containerd.sock"}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := n.startContainerd(ctx); err != nil {
		return nil, err
	}
	for _, img := range images {
		if err := n.importImage(ctx, img); err != nil {
			return nil, err
		}
	}
	if err := n.startScheduler(ctx, assets); err != nil {
		return nil, err
	}
	if err := n.startKubelet(ctx, assets); err != nil {
		return nil, err
	}
	return n, nil
}

func checkNodeTools() error {
	for _, t := range nodeTools {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("testworld: %s is missing: run `make test-deps` (apt-get install containerd runc containernetworking-plugins)", t)
		}
	}
	if _, err := os.Stat(filepath.Join(cniDir, "loopback")); err != nil {
		return fmt.Errorf("testworld: %s/loopback is missing: run `make test-deps` (apt-get install containernetworking-plugins)", cniDir)
	}
	return nil
}

// containerdConfig is the private containerd: its own root, state and socket; the CRI plugin uses
// the imported pause image and a loopback-only CNI network (pods of the test world use the node's
// network). restrict_oom_score_adj: this VM refuses negative oom_score_adj, without it every sandbox
// fails with "can't get final child's PID from pipe: EOF".
const containerdConfig = `version = 2
root = "%[1]s/containerd/root"
state = "/run/des-node/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "%[2]s"
[ttrpc]
  address = "%[2]s.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "%[1]s/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "%[3]s"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "%[4]s"
    conf_dir = "%[1]s/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
`

const loopbackCNI = `{"cniVersion":"1.0.0","name":"lo","plugins":[{"type":"loopback"}]}`

func (n *NodeServer) startContainerd(ctx context.Context) error {
	for _, d := range []string{filepath.Join(n.dir, "cni"), "/run/des-node"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(n.dir, "cni", "10-lo.conflist"), []byte(loopbackCNI), 0o644); err != nil {
		return err
	}
	cfg := filepath.Join(n.dir, "containerd.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(containerdConfig, n.dir, n.Containerd, PauseImage, cniDir)), 0o644); err != nil {
		return err
	}
	p, err := startProcess("containerd", exec.Command("containerd", "--config", cfg))
	if err != nil {
		return err
	}
	n.containerd = p
	return p.waitReady(ctx, 30*time.Second, func(ctx context.Context) error {
		_, err := n.Ctr(ctx, "version")
		return err
	})
}

// Ctr runs ctr against the node's containerd, in the namespace the kubelet uses.
func (n *NodeServer) Ctr(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"--address", n.Containerd, "--namespace", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (n *NodeServer) importImage(ctx context.Context, tarball string) error {
	_, err := n.Ctr(ctx, "images", "import", tarball) // unpacked for the default snapshotter
	return err
}

func (n *NodeServer) startScheduler(ctx context.Context, assets string) error {
	bin, err := checkExecutable(filepath.Join(assets, "kube-scheduler"), "KUBEBUILDER_ASSETS", "test-assets")
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(n.dir, "scheduler.kubeconfig")
	if err := n.kube.WriteKubeconfig(kubeconfig); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	p, err := startProcess("kube-scheduler", exec.Command(bin, "--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig,
		"--leader-elect=false", "--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", port)))
	if err != nil {
		return err
	}
	n.scheduler = p
	return p.waitReady(ctx, 60*time.Second, httpsAnswers(port))
}

// httpsAnswers is ready once a local component serves TLS on port: its /healthz needs credentials, so
// any TLS answer means it is serving.
func httpsAnswers(port int) func(context.Context) error {
	insecure := &http.Client{Transport: insecureTransport(), Timeout: time.Second}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/healthz", port), http.NoBody)
		if err != nil {
			return err
		}
		resp, err := insecure.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
}

// kubeletConfig: cgroup v1 is what this machine mounts (kubelet ≥ 1.35 refuses it unless told), the
// cgroup driver is cgroupfs (no systemd), authentication and authorization of the kubelet's own API
// are open inside the sandbox (only the API server reaches it), evictions and image garbage
// collection are off so that imported images are never removed, and pod logs stay in the node's
// folder.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /%[4]s
containerRuntimeEndpoint: unix://%[2]s
address: %[3]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[5]d
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
podLogsDir: %[1]s/pod-logs
failSwapOn: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%"}
nodeStatusUpdateFrequency: 4s
syncFrequency: 10s
shutdownGracePeriod: 0s
resolvConf: ""
`

func (n *NodeServer) startKubelet(ctx context.Context, assets string) error {
	bin, err := checkExecutable(filepath.Join(assets, "kubelet"), "KUBEBUILDER_ASSETS", "test-assets")
	if err != nil {
		return err
	}
	cgroupRoot := SandboxID()
	if err := makeCgroupRoot(cgroupRoot); err != nil {
		return err
	}
	kubeconfig := filepath.Join(n.dir, "kubelet.kubeconfig")
	if err := n.kube.WriteKubeconfig(kubeconfig); err != nil {
		return err
	}
	healthz, err := freePort()
	if err != nil {
		return err
	}
	cfg := filepath.Join(n.dir, "kubelet.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(kubeletConfig, n.dir, n.Containerd, n.IP, cgroupRoot, healthz)), 0o644); err != nil {
		return err
	}
	n.kubeletCmd = func() *exec.Cmd {
		return exec.Command(bin, "--config="+cfg, "--kubeconfig="+kubeconfig, "--root-dir="+filepath.Join(n.dir, "kubelet"),
			"--hostname-override="+n.Name, "--node-ip="+n.IP, "--v=1")
	}
	if err := n.runKubelet(); err != nil {
		return err
	}
	return n.WaitReady(ctx, 90*time.Second)
}

func (n *NodeServer) runKubelet() error {
	p, err := startProcess("kubelet", n.kubeletCmd())
	if err != nil {
		return err
	}
	n.kubelet = p
	return nil
}

// WaitReady waits until the Node reports Ready.
func (n *NodeServer) WaitReady(ctx context.Context, timeout time.Duration) error {
	return n.kubelet.waitReady(ctx, timeout, func(ctx context.Context) error {
		node := &corev1.Node{}
		if err := n.kube.Client.Get(ctx, client.ObjectKey{Name: n.Name}, node); err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return errors.New("node not Ready")
	})
}

// StopKubelet stops the kubelet (SIGKILL, as a crashed node agent); containers keep running under
// containerd, as they do on a node whose kubelet died. StartKubelet brings it back.
func (n *NodeServer) StopKubelet() { n.kubelet.stop(syscall.SIGKILL, 0) }

// StartKubelet starts the kubelet again after StopKubelet and waits until the node is Ready.
func (n *NodeServer) StartKubelet(ctx context.Context) error {
	if err := n.runKubelet(); err != nil {
		return err
	}
	return n.WaitReady(ctx, 90*time.Second)
}

// KillContainer sends SIGKILL to a container's processes, as the OOM killer or a crash would.
// containerID is a Pod status containerID ("containerd://<id>") or the bare id.
func (n *NodeServer) KillContainer(ctx context.Context, containerID string) error {
	return n.signalContainer(ctx, containerID, "SIGKILL")
}

// FreezeContainer sends SIGSTOP to a container's processes, and ThawContainer SIGCONT: a process
// stopped for a while, as a paused VM, a stalled node or a debugger leaves it, that then goes on as if
// nothing happened.
func (n *NodeServer) FreezeContainer(ctx context.Context, containerID string) error {
	return n.signalContainer(ctx, containerID, "SIGSTOP")
}

// ThawContainer resumes a container stopped by FreezeContainer.
func (n *NodeServer) ThawContainer(ctx context.Context, containerID string) error {
	return n.signalContainer(ctx, containerID, "SIGCONT")
}

func (n *NodeServer) signalContainer(ctx context.Context, containerID, signal string) error {
	_, err := n.Ctr(ctx, "tasks", "kill", "--all", "--signal", signal, strings.TrimPrefix(containerID, "containerd://"))
	return err
}

// Logs returns what a container of a pod wrote (the kubelet's log files; `kubectl logs` works too).
func (n *NodeServer) Logs(namespace, pod, container string) string {
	files, _ := filepath.Glob(filepath.Join(n.dir, "pod-logs", namespace+"_"+pod+"_*", container, "*.log"))
	var b strings.Builder
	for _, f := range files {
		data, _ := os.ReadFile(f)
		b.Write(data)
	}
	return b.String()
}

// Close stops the kubelet, every container, containerd and the scheduler, and unmounts what they
// mounted.
func (n *NodeServer) Close() {
	if n.kubelet != nil {
		n.kubelet.stop(syscall.SIGTERM, 10*time.Second)
	}
	if n.containerd != nil && !n.containerd.exited() {
		n.killAllTasks()
		n.containerd.stop(syscall.SIGTERM, 10*time.Second)
	}
	if n.scheduler != nil {
		n.scheduler.stop(syscall.SIGTERM, 10*time.Second)
	}
	unmountUnder(n.dir)
	unmountUnder("/run/des-node")
	_ = os.RemoveAll(n.dir)
}

func (n *NodeServer) killAllTasks() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := n.Ctr(ctx, "tasks", "list", "--quiet")
	if err != nil {
		return
	}
	for _, id := range strings.Fields(out) {
		_, _ = n.Ctr(ctx, "tasks", "kill", "--all", "--signal", "SIGKILL", id)
	}
}

// unmountUnder lazily unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

// makeCgroupRoot creates the kubelet's cgroup root in every cgroup v1 hierarchy (the kubelet
// refuses a root that does not exist); cpuset children need their parent's cpus and mems.
func makeCgroupRoot(name string) error {
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range hierarchies {
		if st, err := os.Lstat(h); err != nil || !st.IsDir() {
			continue // symlinks such as cpu,cpuacct point at a hierarchy listed on its own
		}
		d := filepath.Join(h, name)
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("cgroup root %s: %w", d, err)
		}
		if filepath.Base(h) == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(h, f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(d, f), v, 0o644); err != nil {
					return fmt.Errorf("cgroup %s/%s: %w", d, f, err)
				}
			}
		}
	}
	return nil
}
