package connect_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/connect"
	"github.com/datavision/des/test/testworld"
)

func TestStoreConfigFromSecrets(t *testing.T) {
	ctx := context.Background()
	kube := testworld.K8s(t)
	ns := kube.NewNamespace(t)
	secrets := map[string]map[string][]byte{
		"full":      {"AWS_ACCESS_KEY_ID": []byte("AK"), "AWS_SECRET_ACCESS_KEY": []byte("SK"), "AWS_SESSION_TOKEN": []byte("TK")},
		"no-access": {"AWS_SECRET_ACCESS_KEY": []byte("SK")},
		"no-secret": {"AWS_ACCESS_KEY_ID": []byte("AK"), "AWS_SECRET_ACCESS_KEY": {}},
		"no-keys":   {"endpoint": []byte("http://s3.example:9000"), "aws_access_key_id": []byte("lower-case is another key")},
		"ca":        {"ca.crt": kube.CA},
		"empty-ca":  {"ca.crt": {}},
	}
	for name, data := range secrets {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
		if err := kube.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	spec := func(creds string, ca *desv1.SecretKeyRef) desv1.ObjectStore {
		return desv1.ObjectStore{Endpoint: "http://s3.example:9000", PathStyle: true,
			CredentialsSecretRef: desv1.SecretRef{Name: creds}, CABundleSecretRef: ca}
	}
	cases := []struct {
		name    string
		spec    desv1.ObjectStore
		wantErr error
		// wantMsg are parts the error must name: the Secret and the missing keys.
		wantMsg []string
	}{
		{"complete", spec("full", nil), nil, nil},
		{"with CA bundle", spec("full", &desv1.SecretKeyRef{Name: "ca", Key: "ca.crt"}), nil, nil},
		{"missing access key is an error, not the default chain", spec("no-access", nil), connect.ErrSecretKeyMissing, []string{`"no-access"`, `"AWS_ACCESS_KEY_ID"`}},
		{"empty secret key", spec("no-secret", nil), connect.ErrSecretKeyMissing, []string{`"no-secret"`, `"AWS_SECRET_ACCESS_KEY"`}},
		{"a Secret without any access-key entries names both", spec("no-keys", nil), connect.ErrSecretKeyMissing,
			[]string{`"no-keys"`, `"AWS_ACCESS_KEY_ID"`, `"AWS_SECRET_ACCESS_KEY"`}},
		{"no Secret named is an error, not the controller's identity", spec("", nil), connect.ErrNoCredentialsSecret, []string{"names no Secret"}},
		{"no such Secret", spec("absent", nil), connect.ErrSecretNotFound, nil},
		{"no such CA key", spec("full", &desv1.SecretKeyRef{Name: "ca", Key: "other"}), connect.ErrSecretKeyMissing, nil},
		{"empty CA bundle", spec("full", &desv1.SecretKeyRef{Name: "empty-ca", Key: "ca.crt"}), connect.ErrSecretKeyMissing, nil},
		{"no such CA Secret", spec("full", &desv1.SecretKeyRef{Name: "absent-ca", Key: "ca.crt"}), connect.ErrSecretNotFound, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := connect.StoreConfig(ctx, kube.Client, ns, tc.spec)
			if !errors.Is(err, tc.wantErr) || (err != nil) != (tc.wantErr != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			for _, part := range tc.wantMsg {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not name %s", err, part)
				}
			}
			if err != nil {
				return
			}
			if cfg.AccessKeyID != "AK" || cfg.SecretAccessKey != "SK" || cfg.SessionToken != "TK" || cfg.Endpoint != tc.spec.Endpoint {
				t.Fatalf("config = %v, want the Secret's credentials", cfg)
			}
			if (tc.spec.CABundleSecretRef != nil) != (len(cfg.CAPEM) > 0) {
				t.Fatalf("CA bundle of %d bytes, want one only when the spec names it", len(cfg.CAPEM))
			}
		})
	}
}
