package v1alpha1_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/test/testworld"
)

func TestMain(m *testing.M) { testworld.Main(m, testworld.Kube) }

// strict is what `kubectl apply` asks for by default: unknown fields are errors.
var strict = client.FieldValidation("Strict")

// samples reads every object in config/samples.
func samples(t *testing.T) map[string]*unstructured.Unstructured {
	t.Helper()
	root, err := testworld.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "config", "samples", "des_*.yaml"))
	if len(files) == 0 {
		t.Fatal("no samples in config/samples")
	}
	out := map[string]*unstructured.Unstructured{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			obj := &unstructured.Unstructured{}
			if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(obj.Object) > 0 {
				out[obj.GetKind()] = obj
			}
		}
	}
	return out
}

func create(t *testing.T, obj *unstructured.Unstructured) error {
	t.Helper()
	kube := testworld.K8s(t)
	obj = obj.DeepCopy()
	obj.SetNamespace(kube.NewNamespace(t))
	return kube.Client.Create(context.Background(), obj, strict)
}

func TestSamplesApplyAndGetDefaults(t *testing.T) {
	all := samples(t)
	for _, kind := range []string{"DesSource", "DesShard"} {
		obj, ok := all[kind]
		if !ok {
			t.Fatalf("no %s sample", kind)
		}
		if err := create(t, obj); err != nil {
			t.Fatalf("sample %s refused: %v", kind, err)
		}
	}

	// Defaults come from the schema: a minimal DesSource gets the documented column names and states.
	kube := testworld.K8s(t)
	src := &desv1.DesSource{
		ObjectMeta: metav1.ObjectMeta{Name: "minimal", Namespace: kube.NewNamespace(t)},
		Spec: desv1.DesSourceSpec{
			Catalog: desv1.Catalog{DSNSecretRef: desv1.SecretKeyRef{Name: "db", Key: "dsn"}, Table: "objects"},
			Store:   desv1.SourceStore{ObjectStore: desv1.ObjectStore{CredentialsSecretRef: desv1.SecretRef{Name: "s3"}}, Bucket: "scans"},
		},
	}
	if err := kube.Client.Create(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	got := src.Spec
	if got.Catalog.Columns.Key != "source_key" || got.Catalog.Statuses.Packed != "packed" || got.Naming.ShardBits != 12 ||
		got.Naming.Prefix != "DES" || got.Store.Region != "us-east-1" || !got.Store.PathStyle {
		t.Fatalf("defaults not applied: %+v", got)
	}
}

func TestInvalidResourcesAreRefusedWithAClearMessage(t *testing.T) {
	all := samples(t)
	cases := []struct {
		name   string
		kind   string
		mutate func(o map[string]any)
		want   string
	}{
		{"shard id above 16 bits", "DesShard", func(o map[string]any) {
			unset(o, "spec", "shardRanges")
			set(o, []any{int64(70000)}, "spec", "shards")
		}, "less than or equal to 65535"},
		{"no shards at all", "DesShard", func(o map[string]any) { unset(o, "spec", "shardRanges") },
			"set exactly one of spec.shards and spec.shardRanges"},
		{"shards and ranges", "DesShard", func(o map[string]any) { set(o, []any{int64(1)}, "spec", "shards") },
			"set exactly one of spec.shards and spec.shardRanges"},
		{"inverted range", "DesShard", func(o map[string]any) {
			set(o, []any{map[string]any{"from": int64(9), "to": int64(3)}}, "spec", "shardRanges")
		}, "shard range 'from' must not exceed 'to'"},
		{"zero max bytes", "DesShard", func(o map[string]any) { set(o, int64(0), "spec", "limits", "maxBytes") },
			"spec.limits.maxBytes: Invalid value: 0: spec.limits.maxBytes in body should be greater than or equal to 1"},
		{"negative max files", "DesShard", func(o map[string]any) { set(o, int64(-5), "spec", "limits", "maxFiles") },
			"spec.limits.maxFiles in body should be greater than or equal to 1"},
		{"missing archive credentials", "DesShard", func(o map[string]any) { unset(o, "spec", "archive", "credentialsSecretRef") },
			"spec.archive.credentialsSecretRef: Required value"},
		{"long name", "DesShard", func(o map[string]any) { set(o, strings.Repeat("a", 41), "metadata", "name") },
			"a DesShard name has at most 40 characters"},
		{"shard bits above 16", "DesSource", func(o map[string]any) { set(o, int64(17), "spec", "naming", "shardBits") },
			"spec.naming.shardBits in body should be less than or equal to 16"},
		{"shard bits zero", "DesSource", func(o map[string]any) { set(o, int64(0), "spec", "naming", "shardBits") },
			"spec.naming.shardBits in body should be greater than or equal to 1"},
		{"missing DSN secret", "DesSource", func(o map[string]any) { unset(o, "spec", "catalog", "dsnSecretRef") },
			"spec.catalog.dsnSecretRef: Required value"},
		{"DSN secret without key", "DesSource", func(o map[string]any) { unset(o, "spec", "catalog", "dsnSecretRef", "key") },
			"spec.catalog.dsnSecretRef.key: Required value"},
		{"unknown column", "DesSource", func(o map[string]any) { set(o, "colour", "spec", "catalog", "columns", "color") },
			`unknown field "spec.catalog.columns.color"`},
		{"column that is not an identifier", "DesSource", func(o map[string]any) {
			set(o, "key; DROP TABLE objects", "spec", "catalog", "columns", "key")
		}, "spec.catalog.columns.key in body should match"},
		{"equal status values", "DesSource", func(o map[string]any) {
			set(o, map[string]any{"ready": "x", "claimed": "x", "packed": "p", "failed": "f"}, "spec", "catalog", "statuses")
		}, "status values ready, claimed, packed and failed must all differ"},
		{"no bucket", "DesSource", func(o map[string]any) { unset(o, "spec", "store", "bucket") },
			"set spec.store.bucket, or spec.catalog.columns.bucket"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := all[tc.kind].DeepCopy()
			tc.mutate(obj.Object)
			err := create(t, obj)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant an error containing %q", err, tc.want)
			}
		})
	}
}

func TestImmutableFields(t *testing.T) {
	kube := testworld.K8s(t)
	ctx := context.Background()
	ns := kube.NewNamespace(t)
	c := kube.Client

	shard := &desv1.DesShard{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(samples(t)["DesShard"].Object, shard); err != nil {
		t.Fatal(err)
	}
	shard.Namespace = ns
	if err := c.Create(ctx, shard); err != nil {
		t.Fatal(err)
	}
	shard.Spec.SourceRef = "other"
	if err := c.Update(ctx, shard); err == nil || !strings.Contains(err.Error(), "spec.sourceRef is immutable") {
		t.Fatalf("changing a DesShard's source: %v", err)
	}

	src := &desv1.DesSource{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(samples(t)["DesSource"].Object, src); err != nil {
		t.Fatal(err)
	}
	src.Namespace = ns
	if err := c.Create(ctx, src); err != nil {
		t.Fatal(err)
	}
	src.Spec.Naming.ShardBits = 10 // allowed: nothing archived yet
	if err := c.Update(ctx, src); err != nil {
		t.Fatalf("changing shard bits before any container: %v", err)
	}
	src.Status.CommittedContainers = 1
	if err := c.Status().Update(ctx, src); err != nil {
		t.Fatal(err)
	}
	src.Spec.Naming.ShardBits = 12
	if err := c.Update(ctx, src); err == nil || !strings.Contains(err.Error(), "spec.naming.shardBits cannot change once containers exist") {
		t.Fatalf("changing shard bits after a container: %v", err)
	}

	con := &desv1.DesContainer{
		ObjectMeta: metav1.ObjectMeta{Name: "c1", Namespace: ns},
		Spec:       desv1.DesContainerSpec{ShardRef: "scans-all", Shard: 1, Day: "2026-11-26", Bucket: "archive", Key: "scans/2026-11-26/0001/c1.des"},
	}
	if err := c.Create(ctx, con); err != nil {
		t.Fatal(err)
	}
	con.Spec.Key = "elsewhere.des"
	if err := c.Update(ctx, con); err == nil || !strings.Contains(err.Error(), "a DesContainer's spec is immutable") {
		t.Fatalf("changing a DesContainer's key: %v", err)
	}
}

func set(o map[string]any, v any, path ...string) {
	if err := unstructured.SetNestedField(o, v, path...); err != nil {
		panic(err) // a broken test table, not input
	}
}

func unset(o map[string]any, path ...string) { unstructured.RemoveNestedField(o, path...) }
