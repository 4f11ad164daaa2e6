package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/resolve"
)

// Connector opens the catalog of a DesSource and the archive store of a DesShard with credentials
// from their Secrets. Secrets are read uncached (Secrets is the manager's API reader).
type Connector struct {
	Secrets client.Reader
	Pools   *PoolCache
	// WrapStore, when set, wraps object-store clients (tests inject faults with it).
	WrapStore func(objstore.API) objstore.API
}

// Catalog returns the DesSource's catalog on a cached connection pool.
func (k *Connector) Catalog(ctx context.Context, src *desv1.DesSource) (*catalog.Catalog, error) {
	dsn, err := k.secretKey(ctx, src.Namespace, src.Spec.Catalog.DSNSecretRef)
	if err != nil {
		return nil, err
	}
	pool, err := k.Pools.Get(ctx, string(dsn))
	if err != nil {
		return nil, fmt.Errorf("catalog of %s: %w", src.Name, err)
	}
	return catalog.New(pool, resolve.Mapping(src))
}

// ArchiveStore returns a client for the DesShard's archive store.
func (k *Connector) ArchiveStore(ctx context.Context, ds *desv1.DesShard) (*objstore.Store, error) {
	return k.store(ctx, ds.Namespace, ds.Spec.Archive.ObjectStore, "archive")
}

// SourceStore returns a client for the DesSource's source object store.
func (k *Connector) SourceStore(ctx context.Context, src *desv1.DesSource) (*objstore.Store, error) {
	return k.store(ctx, src.Namespace, src.Spec.Store.ObjectStore, "source")
}

func (k *Connector) store(ctx context.Context, ns string, spec desv1.ObjectStore, role string) (*objstore.Store, error) {
	creds := &corev1.Secret{}
	if err := k.Secrets.Get(ctx, client.ObjectKey{Namespace: ns, Name: spec.CredentialsSecretRef.Name}, creds); err != nil {
		return nil, fmt.Errorf("%s store credentials: Secret %q: %w", role, spec.CredentialsSecretRef.Name, err)
	}
	var ca []byte
	if spec.CABundleSecretRef != nil {
		v, err := k.secretKey(ctx, ns, *spec.CABundleSecretRef)
		if err != nil {
			return nil, fmt.Errorf("%s store CA bundle: %w", role, err)
		}
		ca = v
	}
	s, err := objstore.New(ctx, resolve.StoreConfig(spec, creds.Data, ca))
	if err != nil {
		return nil, fmt.Errorf("%s store: %w", role, err)
	}
	if k.WrapStore != nil {
		s = s.WithAPI(k.WrapStore(s.API()))
	}
	return s, nil
}

func (k *Connector) secretKey(ctx context.Context, ns string, ref desv1.SecretKeyRef) ([]byte, error) {
	s := &corev1.Secret{}
	if err := k.Secrets.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, s); err != nil {
		return nil, fmt.Errorf("Secret %s: %w", ref.Name, err)
	}
	v, ok := s.Data[ref.Key]
	if !ok {
		return nil, fmt.Errorf("Secret %s has no key %s", ref.Name, ref.Key)
	}
	return v, nil
}
