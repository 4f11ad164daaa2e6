// Package monitoring checks config/prometheus and docs/grafana-dashboard.json against the real
// things they depend on: the prometheus-operator's CRDs in a real kube-apiserver, promtool, the PromQL
// parser, and the metrics the DES components register.
package monitoring

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/datavision/des/test/testworld"
)

// operatorVersion is hack/test-assets.sh's PROMETHEUS_OPERATOR_VERSION: the release whose CRDs
// bin/monitoring-crds/<version>/ holds.
const operatorVersion = "v0.85.0"

func TestMain(m *testing.M) {
	dir, err := crdDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testworld.MainWith(m, testworld.Kube, testworld.KubeOptions{CRDDirs: []string{dir}})
}

// crdDir is where `make test-assets` put the monitoring.coreos.com CRDs.
func crdDir() (string, error) {
	root, err := testworld.RepoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "bin", "monitoring-crds", operatorVersion)
	if _, err := os.Stat(filepath.Join(dir, "monitoring.coreos.com_prometheusrules.yaml")); err != nil {
		return "", fmt.Errorf("monitoring: the prometheus-operator CRDs are missing from %s: run `make test-assets`", dir)
	}
	return dir, nil
}

// repoPath is rel under the repository root.
func repoPath(t testing.TB, rel string) string {
	t.Helper()
	root, err := testworld.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, rel)
}

// tool is a binary `make test-assets` builds into bin/.
func tool(t testing.TB, name string) string {
	t.Helper()
	p := repoPath(t, filepath.Join("bin", name))
	if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("%s is missing: run `make test-assets`", p)
	}
	return p
}

// run runs a command and returns its standard output; a failure carries its standard error.
func run(stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %v: %w\n%s%s", filepath.Base(name), args, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// kustomize builds a kustomization of the repository with the kubectl of the test world.
func kustomize(t testing.TB, rel string) []*unstructured.Unstructured {
	t.Helper()
	out, err := run(nil, testworld.Kubectl(t), "kustomize", repoPath(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects(out)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", rel, err)
	}
	return objs
}

// decodeObjects splits a multi-document YAML stream into objects.
func decodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// byKind picks the objects of kind.
func byKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}
