package v1alpha1_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/test/testworld"
)

// yamlBlock is a fenced YAML block of a Markdown file.
var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestDocsSamplesApply: every DES resource shown in docs/ is accepted by the API server as
// `kubectl apply` sends it (strict field validation), so a reader can copy it. The MySQL DesSource of
// install.md must be among them and keep its driver.
func TestDocsSamplesApply(t *testing.T) {
	root, err := testworld.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	drivers := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range yamlBlock.FindAllSubmatch(data, -1) {
			if !bytes.Contains(m[1], []byte("apiVersion: "+desv1.GroupVersion.String())) {
				continue
			}
			dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(m[1]), 4096)
			for {
				obj := &unstructured.Unstructured{}
				if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatalf("%s: %v", filepath.Base(f), err)
				}
				if len(obj.Object) == 0 {
					continue
				}
				name := filepath.Base(f) + ": " + obj.GetKind() + " " + obj.GetName()
				if err := create(t, obj); err != nil {
					t.Errorf("%s is refused: %v", name, err)
				}
				if obj.GetKind() == "DesSource" {
					d, _, _ := unstructured.NestedString(obj.Object, "spec", "catalog", "driver")
					drivers[d] = true
				}
			}
		}
	}
	if !drivers["mysql"] {
		t.Fatalf("docs/ show no DesSource with driver mysql (drivers shown: %v)", strings.Join(keys(drivers), ", "))
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
