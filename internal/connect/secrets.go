package connect

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/resolve"
)

var (
	// ErrSecretNotFound means the named Secret does not exist.
	ErrSecretNotFound = errors.New("no such Secret")
	// ErrSecretKeyMissing means the Secret exists but lacks the key, or holds it empty.
	ErrSecretKeyMissing = errors.New("no such Secret key")
	// ErrSecretUnreadable means the API server did not answer with the Secret (RBAC, timeout).
	ErrSecretUnreadable = errors.New("cannot read Secret")
	// ErrNoCredentialsSecret means an object store spec names no credentials Secret. DES never falls
	// back to the controller's own identity (pod role, IRSA, environment) for a store.
	ErrNoCredentialsSecret = errors.New("no credentials Secret named")
)

// ReadSecret returns a Secret; a missing one is ErrSecretNotFound. r should be an uncached reader:
// caching Secrets would watch and hold every Secret in the cluster.
func ReadSecret(ctx context.Context, r client.Reader, ns, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s)
	switch {
	case apierrors.IsNotFound(err):
		return nil, &secretError{ErrSecretNotFound, fmt.Sprintf("Secret %q does not exist", name)}
	case err != nil:
		return nil, fmt.Errorf("%w %q: %w", ErrSecretUnreadable, name, err)
	}
	return s, nil
}

// SecretValue returns one key of a Secret. An empty value counts as missing: no DSN, key or bundle
// is meaningfully empty.
func SecretValue(ctx context.Context, r client.Reader, ns string, ref desv1.SecretKeyRef) ([]byte, error) {
	s, err := ReadSecret(ctx, r, ns, ref.Name)
	if err != nil {
		return nil, err
	}
	v := s.Data[ref.Key]
	if len(v) == 0 {
		return nil, missingKey(ref.Name, ref.Key)
	}
	return v, nil
}

// StoreConfig resolves an object store spec with the credentials (and CA bundle) from its Secrets.
// Missing keys are errors: falling back to the SDK's default chain would use whatever identity the
// controller pod has, silently.
//
// A spec without a Secret name (the CRD requires one; an object written before that rule, or by a
// client that skips validation) is ErrNoCredentialsSecret, never the ambient identity. A Secret that
// lacks AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY (or holds them empty) matches ErrSecretKeyMissing
// and names the Secret and every missing key.
func StoreConfig(ctx context.Context, r client.Reader, ns string, spec desv1.ObjectStore) (objstore.Config, error) {
	name := spec.CredentialsSecretRef.Name
	if name == "" {
		return objstore.Config{}, &secretError{ErrNoCredentialsSecret,
			"store credentials: spec.credentialsSecretRef names no Secret (DES never uses the controller's own identity for a store)"}
	}
	creds, err := ReadSecret(ctx, r, ns, name)
	if err != nil {
		return objstore.Config{}, fmt.Errorf("store credentials: %w", err)
	}
	var missing []string
	for _, k := range []string{objstore.SecretAccessKeyIDFile, objstore.SecretSecretAccessKeyFile} {
		if len(creds.Data[k]) == 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return objstore.Config{}, fmt.Errorf("store credentials: %w", missingKeys(name, missing))
	}
	var ca []byte
	if spec.CABundleSecretRef != nil {
		if ca, err = SecretValue(ctx, r, ns, *spec.CABundleSecretRef); err != nil {
			return objstore.Config{}, fmt.Errorf("store CA bundle: %w", err)
		}
	}
	return resolve.StoreConfig(spec, creds.Data, ca), nil
}

// secretError reads as a person would say it ("Secret \"x\" has no key \"dsn\"") and still matches
// its sentinel with errors.Is.
type secretError struct {
	sentinel error
	msg      string
}

func (e *secretError) Error() string { return e.msg }
func (e *secretError) Unwrap() error { return e.sentinel }

func missingKey(secret, key string) error {
	return &secretError{ErrSecretKeyMissing, fmt.Sprintf("Secret %q has no key %q", secret, key)}
}

// missingKeys names every key a Secret lacks, so that one fix is enough.
func missingKeys(secret string, keys []string) error {
	if len(keys) == 1 {
		return missingKey(secret, keys[0])
	}
	quoted := make([]string, len(keys))
	for i, k := range keys {
		quoted[i] = strconv.Quote(k)
	}
	return &secretError{ErrSecretKeyMissing, fmt.Sprintf("Secret %q has no keys %s", secret, strings.Join(quoted, ", "))}
}
