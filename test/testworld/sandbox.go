package testworld

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The real node (kubelet, containerd, pods) runs in a sandbox: new network, PID and mount namespaces
// that this package creates itself.
//   - Network: the node needs an address that is not loopback (the kubelet refuses 127.0.0.1), and
//     pods need the kubernetes Service address. Inside the sandbox a veth interface carries both,
//     from the RFC 2544 benchmarking range, and nothing routes anywhere else: no traffic can reach this
//     machine's own addresses or any other network.
//   - PID: the sandbox's first process is a small init that reaps orphans (containerd shims) and,
//     when it exits, the kernel kills everything else in the namespace, containers included, even when
//     the test binary was SIGKILLed.
//   - Mounts: the kubelet's Secret tmpfs mounts, containerd's overlay mounts, a private /run and /proc
//     live in the sandbox's mount namespace and vanish with it.
//
// The outer process (the one `go test` or `make demo` started) puts every temporary file of the
// sandbox under one folder (TMPDIR) and removes it, and the cgroups the kubelet made, once the sandbox
// has ended, whatever ended it.
const (
	// SandboxNodeIP is the node's InternalIP inside the sandbox.
	SandboxNodeIP = "198.18.0.2"
	// SandboxServiceIP is the ClusterIP of the kubernetes Service, where the sandbox's API server
	// listens (port 443), so in-cluster clients reach it as on a cluster without a kube-proxy.
	SandboxServiceIP = "198.19.0.1"
	// SandboxServiceCIDR is the API server's --service-cluster-ip-range in the sandbox.
	SandboxServiceCIDR = "198.19.0.0/24"

	sandboxEnv      = "DES_TESTWORLD_SANDBOX" // "init" in the sandbox's PID 1, "inner" in the work process
	sandboxIDEnv    = "DES_TESTWORLD_SANDBOX_ID"
	sandboxPIDFile  = "DES_SANDBOX_PIDFILE" // optional: the outer process writes the init's pid here
	sandboxIface    = "des0"
	sandboxTmpGlob  = "des-sandbox-*"
	sandboxTmpMode  = 0o711 // other users (postgres) must be able to reach their folders inside
	sandboxStopWait = 30 * time.Second
)

// ErrSandbox is returned when the sandbox cannot be made (not root, no `ip` command).
var ErrSandbox = errors.New("testworld: sandbox")

// InSandbox reports whether this process runs inside the sandbox.
func InSandbox() bool { return os.Getenv(sandboxEnv) == "inner" }

// SandboxID names the current sandbox (empty outside one); the kubelet's cgroups carry it.
func SandboxID() string { return os.Getenv(sandboxIDEnv) }

// EnterSandbox makes sure the program runs inside the sandbox. Called outside, it runs the same
// program again (same arguments) inside a new sandbox, waits for it and exits with its exit code; it
// returns only inside the sandbox, or with an error when the sandbox cannot be made.
func EnterSandbox() error {
	switch os.Getenv(sandboxEnv) {
	case "inner":
		return nil
	case "init":
		os.Exit(sandboxInit())
	}
	code, err := runSandbox()
	if err != nil {
		return err
	}
	os.Exit(code)
	return nil
}

// runSandbox is the outer side: it starts the sandbox's init and cleans up after it.
func runSandbox() (int, error) {
	if os.Geteuid() != 0 {
		return 0, fmt.Errorf("%w: the real node needs root (network, PID and mount namespaces, containerd)", ErrSandbox)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return 0, fmt.Errorf("%w: the ip command is missing: run `make test-deps` (apt-get install iproute2)", ErrSandbox)
	}
	sweepStaleSandboxes()
	tmp, err := os.MkdirTemp("", "des-sandbox-"+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return 0, err
	}
	if err := os.Chmod(tmp, sandboxTmpMode); err != nil {
		return 0, err
	}
	id := filepath.Base(tmp)
	defer cleanSandbox(tmp)
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), sandboxEnv+"=init", sandboxIDEnv+"="+id, "TMPDIR="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("%w: start: %w", ErrSandbox, err)
	}
	if f := os.Getenv(sandboxPIDFile); f != "" {
		_ = os.WriteFile(f, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	}
	stop := forwardSignals(cmd.Process)
	defer stop()
	return exitCode(cmd.Wait()), nil
}

// forwardSignals passes SIGINT and SIGTERM on to p until the returned function is called.
func forwardSignals(p *os.Process) func() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = p.Signal(s)
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(sigs); close(done) }
}

func exitCode(err error) int {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return exit.ExitCode()
	default:
		return 1
	}
}

// sandboxInit is PID 1 of the sandbox: it prepares the namespaces, runs the work process and reaps
// every orphan until the work process exits.
func sandboxInit() int {
	if err := prepareSandbox(); err != nil {
		fmt.Fprintln(os.Stderr, "testworld sandbox:", err)
		return 1
	}
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), sandboxEnv+"=inner")
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testworld sandbox: start:", err)
		return 1
	}
	stop := forwardSignals(cmd.Process)
	defer stop()
	// Reap everything; cmd.Wait is never called because this loop collects the work process too.
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return 1
		}
		if pid == cmd.Process.Pid {
			if ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return ws.ExitStatus()
		}
	}
}

// prepareSandbox makes the mounts private, gives the sandbox its own /proc and /run, and sets up its
// network: loopback and a veth interface with the node and Service addresses.
func prepareSandbox() error {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	if err := syscall.Mount("tmpfs", "/run", "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=755"); err != nil {
		return fmt.Errorf("mount /run: %w", err)
	}
	if err := privateNameFiles(); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		// A veth pair stands for the node's network card (this kernel has no dummy devices): its
		// peer has no address and nothing behind it.
		{"link", "add", sandboxIface, "type", "veth", "peer", "name", sandboxIface + "p"},
		{"link", "set", sandboxIface + "p", "up"},
		{"addr", "add", SandboxNodeIP + "/32", "dev", sandboxIface},
		{"addr", "add", SandboxServiceIP + "/32", "dev", sandboxIface},
		{"link", "set", sandboxIface, "up"},
		// Anything not local goes out on the veth, where nothing answers.
		{"route", "add", "default", "dev", sandboxIface},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// privateNameFiles gives the sandbox its own /etc/hosts (the node's name) and an /etc/resolv.conf
// whose only name server is loopback, where none listens: a name lookup inside the sandbox fails at
// once instead of asking this machine's name servers.
func privateNameFiles() error {
	for path, content := range map[string]string{
		"/etc/hosts":       "127.0.0.1 localhost\n::1 localhost\n" + SandboxNodeIP + " " + NodeName + "\n",
		"/etc/resolv.conf": "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
	} {
		f, err := os.CreateTemp("", "sandbox-"+filepath.Base(path)+"-")
		if err != nil {
			return err
		}
		_, werr := f.WriteString(content)
		if err := errors.Join(werr, f.Chmod(0o644), f.Close()); err != nil {
			return err
		}
		if err := syscall.Mount(f.Name(), path, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", path, err)
		}
	}
	return nil
}

// cleanSandbox removes what an ended sandbox leaves on the shared file systems: its folder and the
// kubelet's cgroups (empty once the sandbox's processes are gone).
func cleanSandbox(tmp string) {
	id := filepath.Base(tmp)
	deadline := time.Now().Add(sandboxStopWait)
	for _, dir := range sandboxCgroups(id) {
		for removeCgroupTree(dir) != nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond) // the kernel may still be tearing tasks down
		}
	}
	_ = os.RemoveAll(tmp)
}

// sandboxCgroups lists the cgroup folders, in every v1 hierarchy, that the sandbox's kubelet made
// (its cgroup root is named after the sandbox).
func sandboxCgroups(id string) []string {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + id)
	unified, _ := filepath.Glob("/sys/fs/cgroup/" + id)
	return append(dirs, unified...)
}

// removeCgroupTree removes a cgroup folder and its children, deepest first. Cgroup folders are
// removed with rmdir (their files are virtual), which fails while a task is still inside.
func removeCgroupTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroupTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, syscall.ENOENT) {
		return err
	}
	return nil
}

// sweepStaleSandboxes cleans up after sandboxes whose outer process was killed before it could: a
// folder named des-sandbox-<pid>-* whose pid is gone.
func sweepStaleSandboxes() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), sandboxTmpGlob))
	for _, d := range dirs {
		parts := strings.SplitN(strings.TrimPrefix(filepath.Base(d), "des-sandbox-"), "-", 2)
		pid, err := strconv.Atoi(parts[0])
		if err != nil || syscall.Kill(pid, 0) == nil {
			continue
		}
		cleanSandbox(d)
	}
}
