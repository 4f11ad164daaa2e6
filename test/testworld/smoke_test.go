package testworld_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/datavision/des/test/testworld"
)

func TestMain(m *testing.M) {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = apiextensionsv1.AddToScheme(scheme)
	// Smoke tests install their own CRD; the project's CRDs are exercised by the controller tests.
	testworld.MainWith(m, testworld.Postgres|testworld.S3|testworld.Kube|testworld.Redis|testworld.MariaDB,
		testworld.KubeOptions{Scheme: scheme, CRDDirs: []string{}})
}

func TestKubeAPIServerServesACustomResource(t *testing.T) {
	kube := testworld.K8s(t)
	t.Logf("kube-apiserver %s at %s", kube.Version, kube.Config.Host)
	ctx := context.Background()

	crd := smokeCRD()
	if err := kube.Client.Create(ctx, crd); err != nil {
		t.Fatalf("create CRD: %v", err)
	}
	waitEstablished(t, kube.Client, crd.Name)

	ns := kube.NewNamespace(t)
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(schema.GroupVersionKind{Group: "smoke.des.datavision.io", Version: "v1", Kind: "Widget"})
	obj.SetNamespace(ns)
	obj.SetName("w1")
	if err := unstructured.SetNestedField(obj.Object, int64(3), "spec", "size"); err != nil {
		t.Fatal(err)
	}
	if err := kube.Client.Create(ctx, obj); err != nil {
		t.Fatalf("create custom resource: %v", err)
	}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(obj.GroupVersionKind())
	if err := kube.Client.Get(ctx, client.ObjectKeyFromObject(obj), got); err != nil {
		t.Fatalf("get custom resource: %v", err)
	}
	if size, _, _ := unstructured.NestedInt64(got.Object, "spec", "size"); size != 3 {
		t.Fatalf("spec.size = %d, want 3", size)
	}

	// The schema is enforced by the real API server: a negative size is refused.
	bad := obj.DeepCopy()
	bad.SetName("w2")
	bad.SetResourceVersion("")
	_ = unstructured.SetNestedField(bad.Object, int64(-1), "spec", "size")
	if err := kube.Client.Create(ctx, bad); !apierrors.IsInvalid(err) {
		t.Fatalf("create invalid custom resource: got %v, want an Invalid error", err)
	}
}

func smokeCRD() *apiextensionsv1.CustomResourceDefinition {
	minSize := 0.0
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.smoke.des.datavision.io"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "smoke.des.datavision.io",
			Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList",
			},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
							"size": {Type: "integer", Minimum: &minSize},
						}},
					},
				}},
			}},
		},
	}
}

func waitEstablished(t *testing.T, c client.Client, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(context.Background(), client.ObjectKey{Name: name}, crd); err == nil {
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("CRD %s not established after 30s", name)
}

func TestPostgresSkipLockedClaimsAreDisjoint(t *testing.T) {
	pg := testworld.PG(t)
	t.Logf("PostgreSQL on port %d: %s", pg.Port, pg.Version)
	pool, _ := pg.NewDatabase(t)
	ctx := context.Background()

	const rows = 100
	if _, err := pool.Exec(ctx, `CREATE TABLE objects (id bigserial PRIMARY KEY, status text NOT NULL DEFAULT 'ready', claimed_by text)`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO objects (status) SELECT 'ready' FROM generate_series(1, $1)`, rows); err != nil {
		t.Fatal(err)
	}

	// Two workers hold their claims open at the same time; SKIP LOCKED must hand them disjoint rows.
	claim := func(tx pgx.Tx) []int64 {
		r, err := tx.Query(ctx, `SELECT id FROM objects WHERE status = 'ready' ORDER BY id LIMIT 60 FOR UPDATE SKIP LOCKED`)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(r, pgx.RowTo[int64])
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	tx1, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx1.Rollback(ctx) }() // the transactions only hold locks
	tx2, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx2.Rollback(ctx) }()

	a, b := claim(tx1), claim(tx2)
	if len(a) != 60 || len(b) != 40 {
		t.Fatalf("claimed %d and %d rows, want 60 and 40", len(a), len(b))
	}
	all := append(slices.Clone(a), b...)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for i, id := range all {
		if id != int64(i+1) {
			t.Fatalf("claims overlap or miss rows: sorted union %v", all)
		}
	}
	for tx, ids := range map[pgx.Tx][]int64{tx1: a, tx2: b} {
		if _, err := tx.Exec(ctx, `UPDATE objects SET status = 'claimed' WHERE id = ANY($1)`, ids); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var claimed int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM objects WHERE status = 'claimed'`).Scan(&claimed); err != nil {
		t.Fatal(err)
	}
	if claimed != rows {
		t.Fatalf("%d rows claimed, want %d", claimed, rows)
	}
}

func TestS3PutMultipartRangeAndList(t *testing.T) {
	srv := testworld.S3Store(t)
	t.Logf("versitygw %s at %s", srv.Version, srv.Endpoint)
	c := srv.Client()
	bucket := srv.NewBucket(t)
	ctx := context.Background()

	small := []byte("hello, DES")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("a/small"), Body: bytes.NewReader(small)}); err != nil {
		t.Fatalf("put: %v", err)
	}

	// Multipart: a 5 MiB part (the S3 minimum for all but the last) and a short last part.
	big := make([]byte, 5<<20+1234)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	key := "a/big"
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("create multipart: %v", err)
	}
	var parts []s3types.CompletedPart
	for i, chunk := range [][]byte{big[:5<<20], big[5<<20:]} {
		n := int32(i + 1)
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId, PartNumber: &n, Body: bytes.NewReader(chunk)})
		if err != nil {
			t.Fatalf("upload part %d: %v", n, err)
		}
		parts = append(parts, s3types.CompletedPart{ETag: out.ETag, PartNumber: &n})
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatalf("complete multipart: %v", err)
	}

	cases := []struct {
		rng          string
		want         []byte
		contentRange string
	}{
		{"bytes=100-199", big[100:200], fmt.Sprintf("bytes 100-199/%d", len(big))},
		{"bytes=5242870-5242889", big[5242870:5242890], fmt.Sprintf("bytes 5242870-5242889/%d", len(big))}, // across the part boundary
		{"bytes=-72", big[len(big)-72:], fmt.Sprintf("bytes %d-%d/%d", len(big)-72, len(big)-1, len(big))}, // suffix: tail without HEAD
	}
	for _, tc := range cases {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, Range: aws.String(tc.rng)})
		if err != nil {
			t.Fatalf("get %s: %v", tc.rng, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("range %s: got %d bytes that differ from the object", tc.rng, len(got))
		}
		if cr := aws.ToString(out.ContentRange); cr != tc.contentRange {
			t.Errorf("range %s: Content-Range %q, want %q", tc.rng, cr, tc.contentRange)
		}
	}

	// A conditional create never overwrites an existing key.
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("a/small"), Body: bytes.NewReader([]byte("x")), IfNoneMatch: aws.String("*")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "PreconditionFailed" {
		t.Errorf("conditional put over an existing key: got %v, want PreconditionFailed", err)
	}

	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String("a/")})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	got := map[string]int64{}
	for _, o := range list.Contents {
		got[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
	}
	want := map[string]int64{"a/small": int64(len(small)), "a/big": int64(len(big))}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("list = %v, want %v", got, want)
	}
}

// TestIsolationPerTest guards the shared-server design: parallel tests each get their own
// database and bucket.
func TestIsolationPerTest(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			_, dsn := testworld.PG(t).NewDatabase(t)
			bucket := testworld.S3Store(t).NewBucket(t)
			mu.Lock()
			defer mu.Unlock()
			for _, k := range []string{dsn, bucket} {
				if seen[k] {
					t.Errorf("%s handed out twice", k)
				}
				seen[k] = true
			}
		})
	}
}
