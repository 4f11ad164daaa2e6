package testworld

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// K8sVersion is the control-plane version hack/test-assets.sh builds into bin/k8s/<version>/.
const K8sVersion = "v1.37.2"

// RepoRoot returns the directory holding the project's go.mod, found from this source file so that
// tests work from any package directory.
func RepoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("testworld: cannot locate source file")
	}
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testworld: go.mod not found above " + filepath.Dir(file))
		}
		dir = parent
	}
}

// binPath resolves a binary: the environment variable wins, then the project's bin/ directory.
func binPath(envVar, rel, makeTarget string) (string, error) {
	if p := os.Getenv(envVar); p != "" {
		return checkExecutable(p, envVar, makeTarget)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return checkExecutable(filepath.Join(root, rel), envVar, makeTarget)
}

func checkExecutable(p, envVar, makeTarget string) (string, error) {
	st, err := os.Stat(p)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("testworld: %s is missing: run `make %s` (or set %s)", p, makeTarget, envVar)
	}
	return p, nil
}

// KubeAssetsDir is the directory envtest takes its kube-apiserver and etcd from.
func KubeAssetsDir() (string, error) {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	d := filepath.Join(root, "bin", "k8s", K8sVersion)
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := checkExecutable(filepath.Join(d, b), "KUBEBUILDER_ASSETS", "test-assets"); err != nil {
			return "", err
		}
	}
	return d, nil
}

// NodeImages are the image tarballs a node loads: the pause image (`make test-assets`) and the DES
// manager image (`make image`); $DES_PAUSE_IMAGE_TAR and $DES_MANAGER_IMAGE_TAR override them.
func NodeImages() ([]string, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, img := range []struct{ env, rel, target string }{
		{"DES_PAUSE_IMAGE_TAR", "bin/pause-image.tar", "test-assets"},
		{"DES_MANAGER_IMAGE_TAR", "bin/manager-image.tar", "image"},
	} {
		p := os.Getenv(img.env)
		if p == "" {
			p = filepath.Join(root, img.rel)
		}
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			return nil, fmt.Errorf("testworld: image %s is missing: run `make %s` (or set %s)", p, img.target, img.env)
		}
		out = append(out, p)
	}
	return out, nil
}
