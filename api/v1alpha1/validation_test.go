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
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
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

// Refusals shared by several cases.
const (
	prefixRefusal = "spec.archive.prefix must be segments of letters, digits, '.', '_' and '-' separated by single '/', none of them empty, '.' or '..'"
	keyRefusal    = "spec.key must be a container key <prefix>/<YYYY-MM-DD>/<4 hex digits>/c<16 hex digits>/c<16 hex digits>.des (or the legacy <prefix>/<YYYY-MM-DD>/<4 hex digits>/c<16 hex digits>.des)"
	dayMismatch   = "spec.key must be a key of spec.day: <prefix>/<spec.day>/<shard hex>/c<16 hex digits>/c<16 hex digits>.des (or the legacy <prefix>/<spec.day>/<shard hex>/c<16 hex digits>.des)"
	shardMismatch = "spec.key must be a key of spec.shard: <prefix>/<day>/<spec.shard as 4 hex digits>/c<16 hex digits>/c<16 hex digits>.des (or the legacy <prefix>/<day>/<spec.shard as 4 hex digits>/c<16 hex digits>.des)"
	idMismatch    = "spec.key must name its container's id twice, as its folder and its object"
)

// sampleContainer is a DesContainer as the packer creates it (config/samples has none: people never
// write them).
func sampleContainer() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": desv1.GroupVersion.String(), "kind": "DesContainer",
		"metadata": map[string]any{"name": "scans-all-c018f3a2b4c5d6e7f"},
		"spec": map[string]any{"shardRef": "scans-all", "shard": int64(42), "day": "2026-11-26", "bucket": "archive",
			"key": "scans/2026-11-26/002a/c018f3a2b4c5d6e7f/c018f3a2b4c5d6e7f.des"},
	}}
}

// samplesAndContainer are the samples and sampleContainer, by kind.
func samplesAndContainer(t *testing.T) map[string]*unstructured.Unstructured {
	t.Helper()
	all := samples(t)
	all["DesContainer"] = sampleContainer()
	return all
}

func TestInvalidResourcesAreRefusedWithAClearMessage(t *testing.T) {
	all := samplesAndContainer(t)
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
		{"a source filter with a second statement", "DesSource", func(o map[string]any) {
			set(o, "size < 1; DROP TABLE objects", "spec", "catalog", "where")
		}, "spec.catalog.where may hold only column names, integers, 'strings', comparisons, parentheses and commas"},
		{"a source filter with a comment", "DesSource", func(o map[string]any) {
			set(o, "size < 1 -- and more", "spec", "catalog", "where")
		}, "spec.catalog.where may hold only"},
		{"a driver DES does not speak", "DesSource", func(o map[string]any) { set(o, "oracle", "spec", "catalog", "driver") },
			`spec.catalog.driver: Unsupported value: "oracle": supported values: "postgres", "mysql"`},
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

		// Durations that would make the controller or the packer loop, or delete what people read.
		{"interval of 1ms", "DesShard", func(o map[string]any) { set(o, "1ms", "spec", "interval") },
			"spec.interval must be at least 10s: shorter intervals make the controller loop"},
		{"interval just below 10s", "DesShard", func(o map[string]any) { set(o, "9.999s", "spec", "interval") },
			"spec.interval must be at least 10s"},
		{"negative interval", "DesShard", func(o map[string]any) { set(o, "-1h", "spec", "interval") },
			"spec.interval must be at least 10s"},
		{"interval that is no duration", "DesShard", func(o map[string]any) { set(o, "1 hour", "spec", "interval") },
			"spec.interval"},
		{"retention of minutes", "DesShard", func(o map[string]any) { set(o, "59m", "spec", "retention") },
			"spec.retention must be at least 1h"},
		{"max age of seconds", "DesShard", func(o map[string]any) { set(o, "5s", "spec", "limits", "maxAge") },
			"spec.limits.maxAge must be at least 1m"},
		{"max wait of seconds", "DesShard", func(o map[string]any) { set(o, "30s", "spec", "limits", "maxWait") },
			"spec.limits.maxWait must be at least 1m"},
		{"zero min files", "DesShard", func(o map[string]any) { set(o, int64(0), "spec", "limits", "minFiles") },
			"spec.limits.minFiles in body should be greater than or equal to 1"},
		{"min bytes above 1 TiB", "DesShard", func(o map[string]any) { set(o, desv1.MaxContainerBytes+1, "spec", "limits", "minBytes") },
			"spec.limits.minBytes in body should be less than or equal to 1099511627776"},
		{"negative marker min age", "DesSource", func(o map[string]any) {
			set(o, map[string]any{"minAge": "-5m"}, "spec", "marker")
		}, "spec.marker.minAge must not be negative"},

		// Archive prefixes with segments path.Join would resolve or drop.
		{"prefix with an empty segment", "DesShard", func(o map[string]any) { set(o, "a//b", "spec", "archive", "prefix") }, prefixRefusal},
		{"prefix starting with .", "DesShard", func(o map[string]any) { set(o, "./a", "spec", "archive", "prefix") }, prefixRefusal},
		{"prefix with ..", "DesShard", func(o map[string]any) { set(o, "a/../b", "spec", "archive", "prefix") }, prefixRefusal},
		{"prefix ..", "DesShard", func(o map[string]any) { set(o, "..", "spec", "archive", "prefix") }, prefixRefusal},
		{"prefix escaping upwards", "DesShard", func(o map[string]any) { set(o, "../x", "spec", "archive", "prefix") }, prefixRefusal},
		{"prefix ending in /", "DesShard", func(o map[string]any) { set(o, "des/", "spec", "archive", "prefix") }, prefixRefusal},
		{"absolute prefix", "DesShard", func(o map[string]any) { set(o, "/des", "spec", "archive", "prefix") }, prefixRefusal},
		{"empty prefix", "DesShard", func(o map[string]any) { set(o, "", "spec", "archive", "prefix") }, prefixRefusal},

		// Limits beyond what one multipart upload and one packer's memory can hold.
		{"max bytes above 1 TiB", "DesShard", func(o map[string]any) { set(o, desv1.MaxContainerBytes+1, "spec", "limits", "maxBytes") },
			"spec.limits.maxBytes in body should be less than or equal to 1099511627776"},
		{"max files above ten million", "DesShard", func(o map[string]any) { set(o, desv1.MaxContainerFiles+1, "spec", "limits", "maxFiles") },
			"spec.limits.maxFiles in body should be less than or equal to 10000000"},
		{"big file threshold above 5 GiB", "DesShard", func(o map[string]any) { set(o, desv1.MaxBigFileThreshold+1, "spec", "bigFileThreshold") },
			"spec.bigFileThreshold in body should be less than or equal to 5368709120"},

		// Bucket names S3 refuses.
		{"archive bucket with capitals", "DesShard", func(o map[string]any) { set(o, "Archive", "spec", "archive", "bucket") }, "spec.archive.bucket must be an S3 bucket name"},
		{"archive bucket with ..", "DesShard", func(o map[string]any) { set(o, "my..archive", "spec", "archive", "bucket") }, "spec.archive.bucket must be an S3 bucket name"},
		{"archive bucket like an IP (a documentation address, RFC 5737; only a string here, never dialled)", "DesShard", func(o map[string]any) { set(o, "192.0.2.10", "spec", "archive", "bucket") }, "spec.archive.bucket must be an S3 bucket name"},
		{"archive bucket ending in -", "DesShard", func(o map[string]any) { set(o, "archive-", "spec", "archive", "bucket") }, "spec.archive.bucket must be an S3 bucket name"},
		{"source bucket with _", "DesSource", func(o map[string]any) { set(o, "my_scans", "spec", "store", "bucket") }, "spec.store.bucket must be an S3 bucket name"},
		{"source bucket starting with .", "DesSource", func(o map[string]any) { set(o, ".scans", "spec", "store", "bucket") }, "spec.store.bucket must be an S3 bucket name"},

		// DesContainers naming anything but a container key of their own day and shard: recovery
		// would read, abort and delete whatever they name.
		{"container key outside the layout", "DesContainer", func(o map[string]any) { set(o, "scans/important.pdf", "spec", "key") }, keyRefusal},
		{"container key without .des", "DesContainer", func(o map[string]any) { set(o, "scans/2026-11-26/002a/c018f3a2b4c5d6e7f", "spec", "key") }, keyRefusal},
		{"container key with a short id", "DesContainer", func(o map[string]any) { set(o, "scans/2026-11-26/002a/c1.des", "spec", "key") }, keyRefusal},
		{"container key with a .. prefix", "DesContainer", func(o map[string]any) { set(o, "../scans/2026-11-26/002a/c018f3a2b4c5d6e7f.des", "spec", "key") }, keyRefusal},
		{"container key with upper-case hex", "DesContainer", func(o map[string]any) { set(o, "scans/2026-11-26/002A/c018f3a2b4c5d6e7f.des", "spec", "key") }, keyRefusal},
		{"container key of another day", "DesContainer", func(o map[string]any) { set(o, "2026-11-27", "spec", "day") }, dayMismatch},
		{"container key of another shard", "DesContainer", func(o map[string]any) { set(o, int64(43), "spec", "shard") }, shardMismatch},
		{"legacy container key of another day", "DesContainer", func(o map[string]any) {
			set(o, "scans/2026-11-26/002a/c018f3a2b4c5d6e7f.des", "spec", "key")
			set(o, "2026-11-27", "spec", "day")
		}, dayMismatch},
		{"legacy container key of another shard", "DesContainer", func(o map[string]any) {
			set(o, "scans/2026-11-26/002a/c018f3a2b4c5d6e7f.des", "spec", "key")
			set(o, int64(43), "spec", "shard")
		}, shardMismatch},
		{"container key whose folder is another container's", "DesContainer", func(o map[string]any) {
			set(o, "scans/2026-11-26/002a/c0000000000000001/c018f3a2b4c5d6e7f.des", "spec", "key")
		}, idMismatch},
		{"container key one folder too deep", "DesContainer", func(o map[string]any) {
			set(o, "scans/2026-11-26/002a/c018f3a2b4c5d6e7f/x/c018f3a2b4c5d6e7f.des", "spec", "key")
		}, keyRefusal},
		{"container key nested twice", "DesContainer", func(o map[string]any) {
			set(o, "scans/2026-11-26/002a/c018f3a2b4c5d6e7f/c018f3a2b4c5d6e7f/c018f3a2b4c5d6e7f.des", "spec", "key")
		}, keyRefusal},
		{"container key naming a big payload", "DesContainer", func(o map[string]any) {
			set(o, "scans/2026-11-26/002a/c018f3a2b4c5d6e7f/_bigFiles/c018f3a2b4c5d6e7f.des", "spec", "key")
		}, keyRefusal},
		{"container day that is no date", "DesContainer", func(o map[string]any) { set(o, "2026-13-01", "spec", "day") }, "spec.day must be a date YYYY-MM-DD"},
		{"container bucket with capitals", "DesContainer", func(o map[string]any) { set(o, "Archive", "spec", "bucket") }, "spec.bucket must be an S3 bucket name"},
		{"container without its DesShard", "DesContainer", func(o map[string]any) { set(o, "", "spec", "shardRef") }, "spec.shardRef in body should be at least 1 chars long"},
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
		Spec: desv1.DesContainerSpec{ShardRef: "scans-all", Shard: 1, Day: "2026-11-26", Bucket: "archive",
			Key: "scans/2026-11-26/0001/c018f3a2b4c5d6e7f/c018f3a2b4c5d6e7f.des"},
	}
	if err := c.Create(ctx, con); err != nil {
		t.Fatal(err)
	}
	con.Spec.Key = "scans/2026-11-26/0001/c018f3a2b4c5d6e7f.des" // a valid (legacy) key: only immutability refuses it
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

// TestEdgeValuesAreAccepted applies values at or just inside the bounds that
// TestInvalidResourcesAreRefusedWithAClearMessage refuses: the e2e's and the demo's intervals, normal
// prefixes and buckets, the largest limits, and DesContainers as protocol.ContainerKey names them.
func TestEdgeValuesAreAccepted(t *testing.T) {
	all := samplesAndContainer(t)
	day := time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC)
	id := protocol.NewContainerID(day)
	cases := []struct {
		name   string
		kind   string
		mutate func(o map[string]any)
	}{
		{"interval of 10s", "DesShard", func(o map[string]any) { set(o, "10s", "spec", "interval") }},
		{"a source filter with every construct", "DesSource", func(o map[string]any) {
			set(o, "(size < 104857600 AND source_key LIKE 'scans/%') OR NOT (id IN (1, -2)) OR created_at BETWEEN '2026-01-01' AND 'it''s' OR bucket IS NOT NULL",
				"spec", "catalog", "where")
		}},
		{"mysql", "DesSource", func(o map[string]any) { set(o, "mysql", "spec", "catalog", "driver") }},
		{"the e2e's interval", "DesShard", func(o map[string]any) { set(o, "15s", "spec", "interval") }},
		{"the demo's interval", "DesShard", func(o map[string]any) { set(o, "20s", "spec", "interval") }},
		{"zero durations (a Go client's unset fields)", "DesShard", func(o map[string]any) {
			set(o, "0s", "spec", "interval")
			set(o, "0s", "spec", "retention")
			set(o, "0s", "spec", "limits", "maxAge")
		}},
		{"retention of 1h, max age of 1m", "DesShard", func(o map[string]any) {
			set(o, "1h", "spec", "retention")
			set(o, "1m", "spec", "limits", "maxAge")
		}},
		{"prefix des", "DesShard", func(o map[string]any) { set(o, "des", "spec", "archive", "prefix") }},
		{"prefix archive/v1", "DesShard", func(o map[string]any) { set(o, "archive/v1", "spec", "archive", "prefix") }},
		{"prefix a.b-c_d", "DesShard", func(o map[string]any) { set(o, "a.b-c_d", "spec", "archive", "prefix") }},
		{"prefix with dotted segments", "DesShard", func(o map[string]any) { set(o, ".hidden/v1.2/..x", "spec", "archive", "prefix") }},
		{"largest limits", "DesShard", func(o map[string]any) {
			set(o, desv1.MaxContainerBytes, "spec", "limits", "maxBytes")
			set(o, desv1.MaxContainerFiles, "spec", "limits", "maxFiles")
			set(o, desv1.MaxBigFileThreshold, "spec", "bigFileThreshold")
		}},
		{"archive bucket with dots and hyphens", "DesShard", func(o map[string]any) { set(o, "my.archive-2026", "spec", "archive", "bucket") }},
		{"shortest bucket", "DesShard", func(o map[string]any) { set(o, "a1b", "spec", "archive", "bucket") }},
		{"longest bucket", "DesSource", func(o map[string]any) { set(o, strings.Repeat("a", 63), "spec", "store", "bucket") }},
		{"marker min age 0s (the demo's)", "DesSource", func(o map[string]any) { set(o, map[string]any{"minAge": "0s"}, "spec", "marker") }},
		{"container of the highest shard", "DesContainer", func(o map[string]any) {
			set(o, int64(protocol.MaxShard), "spec", "shard")
			set(o, day.Format(time.DateOnly), "spec", "day")
			set(o, protocol.ContainerKey("archive/v1", day, protocol.MaxShard, id), "spec", "key")
		}},
		{"container of shard 0 under a dotted prefix", "DesContainer", func(o map[string]any) {
			set(o, int64(0), "spec", "shard")
			set(o, day.Format(time.DateOnly), "spec", "day")
			set(o, protocol.ContainerKey("a.b-c_d/x", day, 0, id), "spec", "key")
		}},
		{"legacy container of the highest shard", "DesContainer", func(o map[string]any) {
			set(o, int64(protocol.MaxShard), "spec", "shard")
			set(o, day.Format(time.DateOnly), "spec", "day")
			set(o, protocol.LegacyContainerKey("archive/v1", day, protocol.MaxShard, id), "spec", "key")
		}},
		{"legacy container of shard 0 under a dotted prefix", "DesContainer", func(o map[string]any) {
			set(o, int64(0), "spec", "shard")
			set(o, day.Format(time.DateOnly), "spec", "day")
			set(o, protocol.LegacyContainerKey("a.b-c_d/x", day, 0, id), "spec", "key")
		}},
		{"container under a prefix whose last segment looks like a container id", "DesContainer", func(o map[string]any) {
			set(o, int64(0), "spec", "shard")
			set(o, day.Format(time.DateOnly), "spec", "day")
			set(o, protocol.ContainerKey("scans/"+id, day, 0, id), "spec", "key")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := all[tc.kind].DeepCopy()
			tc.mutate(obj.Object)
			if err := create(t, obj); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

// TestMarkersUseTheGoPatterns reads the generated CRDs and checks that every rule built from a Go
// constant of validation.go states it: the markers cannot name the constants, so this is where a
// marker edited without its constant (or the other way round) is caught.
func TestMarkersUseTheGoPatterns(t *testing.T) {
	bucketRule := "self.matches('" + desv1.BucketNamePattern + "') && !self.contains('..') && !self.matches('" + desv1.BucketNameIPPattern + "')"
	cases := []struct {
		crd, field string
		rule       string // a rule of the field's x-kubernetes-validations
		maximum    int64  // or the field's maximum
	}{
		{"desshards", "spec.archive.prefix", "self.matches('" + desv1.ArchivePrefixPattern + "')", 0},
		{"desshards", "spec.archive.bucket", bucketRule, 0},
		{"desshards", "spec.interval", "duration(self) == duration('0s') || duration(self) >= duration('" + desv1.MinInterval + "')", 0},
		{"desshards", "spec.limits.maxBytes", "", desv1.MaxContainerBytes},
		{"desshards", "spec.limits.maxFiles", "", desv1.MaxContainerFiles},
		{"desshards", "spec.bigFileThreshold", "", desv1.MaxBigFileThreshold},
		{"dessources", "spec.store.bucket", bucketRule, 0},
		{"descontainers", "spec.bucket", bucketRule, 0},
		{"descontainers", "spec.key", "self.matches('" + desv1.ContainerKeyPattern + "')", 0},
		{"descontainers", "spec.key", "!self.matches('" + desv1.NestedContainerKeyPattern + "') || self.substring(self.size() - 39, self.size() - 22) == self.substring(self.size() - 21, self.size() - 4)", 0},
		{"descontainers", "spec.day", "self.matches('" + desv1.DayPattern + "')", 0},
	}
	for _, tc := range cases {
		t.Run(tc.crd+" "+tc.field, func(t *testing.T) {
			schema := crdSchema(t, tc.crd, tc.field)
			if tc.maximum != 0 {
				if schema.Maximum == nil || int64(*schema.Maximum) != tc.maximum {
					t.Fatalf("maximum %v, the Go constant says %d", schema.Maximum, tc.maximum)
				}
				return
			}
			var rules []string
			for _, v := range schema.XValidations {
				if v.Rule == tc.rule {
					return
				}
				rules = append(rules, v.Rule)
			}
			t.Fatalf("rules %q\ndo not include %q", rules, tc.rule)
		})
	}
}

// TestKeyRulesUseTheNestedPattern: the DesContainer's day and shard rules find those segments 18
// characters further from the end for a key that matches NestedContainerKeyPattern (the current
// layout) than for a legacy key; each must test that pattern, not a copy that could drift from it.
func TestKeyRulesUseTheNestedPattern(t *testing.T) {
	test := "self.key.matches('" + desv1.NestedContainerKeyPattern + "')"
	found := 0
	for _, v := range crdSchema(t, "descontainers", "spec").XValidations {
		if !strings.HasPrefix(v.Message, "spec.key must be a key of spec.") {
			continue
		}
		found++
		if n := strings.Count(v.Rule, "matches("); n != 3 || strings.Count(v.Rule, test) != 3 {
			t.Errorf("rule %q has %d matches(), want 3, each %s", v.Rule, n, test)
		}
	}
	if found != 2 {
		t.Fatalf("%d day/shard rules on the DesContainer spec, want 2", found)
	}
}

// crdSchema is the schema of a dotted field path in the generated CRD config/crd/bases/des.datavision.io_<plural>.yaml.
func crdSchema(t *testing.T, plural, field string) apiextensionsv1.JSONSchemaProps {
	t.Helper()
	root, err := testworld.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "config", "crd", "bases", "des.datavision.io_"+plural+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := utilyaml.Unmarshal(data, crd); err != nil {
		t.Fatal(err)
	}
	schema := *crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	for _, name := range strings.Split(field, ".") {
		next, ok := schema.Properties[name]
		if !ok {
			t.Fatalf("%s has no field %s", plural, field)
		}
		schema = next
	}
	return schema
}
