package controllers

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/connect"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/resolve"
)

// Connector opens the catalog of a DesSource and the archive store of a DesShard with credentials
// from their Secrets, on connections cached across reconciles (internal/connect holds the rules: one
// redaction policy, pools closed when a Secret's DSN changes, one S3 client per configuration).
type Connector struct {
	// secrets is an uncached reader (the manager's API reader): caching Secrets would watch and hold
	// every Secret of the cluster.
	secrets client.Reader
	pools   *connect.PoolCache
	stores  *connect.StoreCache
	// wrapStore, when set by this package's tests, wraps the real S3 client to inject faults.
	wrapStore func(objstore.API) objstore.API
}

// NewConnector reads Secrets through secrets; Close releases its connections.
func NewConnector(secrets client.Reader) *Connector {
	// Four connections serve a controller's reconciles of one source; a dead database should fail
	// a reconcile in seconds, not hang it.
	pools := &connect.PoolCache{Options: connect.PoolOptions{MaxConns: 4, ConnectTimeout: 10 * time.Second}}
	return &Connector{secrets: secrets, pools: pools, stores: &connect.StoreCache{}}
}

// Close closes every cached pool.
func (k *Connector) Close() { k.pools.Close() }

// Catalog returns the DesSource's catalog on a cached connection pool.
func (k *Connector) Catalog(ctx context.Context, src *desv1.DesSource) (*catalog.Catalog, error) {
	pool, err := k.catalogPool(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("catalog of %s: %w", src.Name, err)
	}
	return catalog.New(pool.DB, resolve.Mapping(src))
}

// catalogPool returns the pool for the DSN in the source's Secret, keyed by that Secret key so that a
// rotated DSN closes the old pool.
func (k *Connector) catalogPool(ctx context.Context, src *desv1.DesSource) (*connect.Pool, error) {
	driver, err := resolve.Driver(src)
	if err != nil {
		return nil, err
	}
	ref := src.Spec.Catalog.DSNSecretRef
	dsn, err := connect.SecretValue(ctx, k.secrets, src.Namespace, ref)
	if err != nil {
		return nil, err
	}
	return k.pools.Get(ctx, src.Namespace+"/"+ref.Name+"/"+ref.Key, driver, string(dsn))
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
	cfg, err := connect.StoreConfig(ctx, k.secrets, ns, spec)
	if err != nil {
		return nil, fmt.Errorf("%s store: %w", role, err)
	}
	s, err := k.stores.Get(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s store: %w", role, err)
	}
	if k.wrapStore != nil {
		s = s.WithAPI(k.wrapStore(s.API()))
	}
	return s, nil
}
