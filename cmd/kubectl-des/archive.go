package main

// What verify, ls and cat share: reading DES resources, the Secrets they name and the catalog and
// archive store those Secrets open, all as the user (their kubeconfig and RBAC), with failures that
// say what to do.

import (
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	desconnect "github.com/datavision/des/internal/connect"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/resolve"
)

// Sentinels of verify, ls and cat; every error they return matches one with errors.Is.
var (
	// errNotFound: a DES resource or Secret does not exist.
	errNotFound = errors.New("not found")
	// errForbidden: the user's RBAC does not allow a read the command needs.
	errForbidden = errors.New("forbidden")
	// errSecret: a Secret exists but lacks what DES needs from it.
	errSecret = errors.New("unusable Secret")
	// errCatalog: the catalog database cannot be reached or queried.
	errCatalog = errors.New("catalog unavailable")
	// errArchive: the archive store cannot be reached or read.
	errArchive = errors.New("archive unavailable")
	// errNoObject: the container has no object (yet, or any more) to read.
	errNoObject = errors.New("no object to read")
	// errNotPacked: the catalog has no packed row of a name (unknown, or not committed yet).
	errNotPacked = errors.New("not packed")
	// errNoSource: which DesSource to ask is not clear.
	errNoSource = errors.New("no DesSource chosen")
	// errNoArchive: no DesShard of the source archives a container the catalog names.
	errNoArchive = errors.New("no DesShard archives the container")
	// errMismatch: verify found the container not as recorded (archive or catalog).
	errMismatch = errors.New("verification failed")
	// errDamaged: bytes read from the archive do not match their checksum.
	errDamaged = errors.New("damaged payload")
)

// actionable is an error with what the user can do about it: "<what went wrong>; <what to do>".
type actionable struct {
	kind error // one of the sentinels above
	err  error
	todo string
}

func (a *actionable) Error() string   { return a.err.Error() + "; " + a.todo }
func (a *actionable) Unwrap() []error { return []error{a.kind, a.err} }

func act(kind, err error, format string, args ...any) error {
	return &actionable{kind: kind, err: err, todo: fmt.Sprintf(format, args...)}
}

// get reads one namespaced DES resource; resource is its plural name, as RBAC and kubectl say it.
func get(e *env, resource, name string, obj client.Object) error {
	err := e.kube.Get(e.ctx, client.ObjectKey{Namespace: e.namespace, Name: name}, obj)
	switch {
	case apierrors.IsNotFound(err):
		return act(errNotFound, fmt.Errorf("%s %q not found in namespace %s", resource, name, e.namespace),
			"list them with: kubectl get %s -n %s", resource, e.namespace)
	case apierrors.IsForbidden(err):
		return act(errForbidden, fmt.Errorf("read %s %q: %w", resource, name, err),
			"your RBAC must allow get on %s in %s", resource, e.namespace)
	case err != nil:
		return fmt.Errorf("read %s %q in %s: %w", resource, name, e.namespace, err)
	}
	return nil
}

// list reads DES resources of the namespace (of every namespace with -A, for status).
func list(e *env, resource string, l client.ObjectList, opts ...client.ListOption) error {
	where, opts := "in "+e.namespace, append([]client.ListOption{client.InNamespace(e.namespace)}, opts...)
	if e.allNamespaces {
		where, opts = "cluster-wide (-A)", opts[1:]
	}
	err := e.kube.List(e.ctx, l, opts...)
	if apierrors.IsForbidden(err) {
		return act(errForbidden, fmt.Errorf("list %s: %w", resource, err), "your RBAC must allow list on %s %s", resource, where)
	}
	if err != nil {
		return fmt.Errorf("list %s %s: %w", resource, where, err)
	}
	return nil
}

// secretTrouble says what to do about a Secret connect could not use; owner is the resource field
// that names it ("DesShard daily spec.archive"). Other errors pass unchanged.
func secretTrouble(e *env, err error, owner string) error {
	var status apierrors.APIStatus
	name := ""
	if errors.As(err, &status) && status.Status().Details != nil {
		name = status.Status().Details.Name
	}
	switch {
	case errors.Is(err, desconnect.ErrSecretUnreadable) && apierrors.IsForbidden(err):
		return act(errForbidden, err, "your RBAC must allow get on secrets/%s in %s", name, e.namespace)
	case errors.Is(err, desconnect.ErrSecretNotFound):
		return act(errNotFound, err, "create it in %s, or correct %s", e.namespace, owner)
	case errors.Is(err, desconnect.ErrSecretKeyMissing), errors.Is(err, desconnect.ErrNoCredentialsSecret):
		return act(errSecret, err, "the Secret must hold what %s says it does", owner)
	}
	return err
}

// containerAndShard reads a DesContainer and the DesShard that wrote it.
func containerAndShard(e *env, name string) (*desv1.DesContainer, *desv1.DesShard, error) {
	con := &desv1.DesContainer{}
	if err := get(e, "descontainers", name, con); err != nil {
		return nil, nil, err
	}
	ds := &desv1.DesShard{}
	if err := get(e, "desshards", con.Spec.ShardRef, ds); err != nil {
		return nil, nil, fmt.Errorf("DesShard of DesContainer %s: %w", name, err)
	}
	return con, ds, nil
}

// archiveStore is a client for the DesShard's archive store, with the credentials of its Secret.
func archiveStore(e *env, ds *desv1.DesShard) (*objstore.Store, error) {
	owner := fmt.Sprintf("DesShard %s spec.archive", ds.Name)
	cfg, err := desconnect.StoreConfig(e.ctx, e.kube, e.namespace, ds.Spec.Archive.ObjectStore)
	if err != nil {
		return nil, secretTrouble(e, fmt.Errorf("archive store of DesShard %s: %w", ds.Name, err), owner)
	}
	s, err := objstore.New(e.ctx, cfg)
	if err != nil {
		return nil, act(errArchive, fmt.Errorf("archive store of DesShard %s: %w", ds.Name, err), "correct %s", owner)
	}
	return s, nil
}

// storeTrouble says what to do about a failed read of the archive.
func storeTrouble(err error, bucket, key string) error {
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return act(errNoObject, err, "nothing is stored at s3://%s/%s: the container was never uploaded, or its object was deleted", bucket, key)
	case errors.Is(err, objstore.ErrNoSuchBucket):
		return act(errArchive, err, "the bucket %q does not exist at the DesShard's endpoint", bucket)
	}
	return act(errArchive, err, "check that the archive endpoint is reachable from here and the Secret's key may read s3://%s", bucket)
}

// catalogTimeout bounds connecting to the catalog: a DSN naming a host only the cluster reaches
// should fail in seconds, not hang.
const catalogTimeout = 10 * time.Second

// openCatalog opens the DesSource's catalog with the DSN from its Secret and checks that it answers.
// alternative is what the user may do instead when it does not ("" for nothing). close releases it.
func openCatalog(e *env, src *desv1.DesSource, alternative string) (cat *catalog.Catalog, closeFn func(), err error) {
	ref := src.Spec.Catalog.DSNSecretRef
	owner := fmt.Sprintf("DesSource %s spec.catalog.dsnSecretRef", src.Name)
	driver, err := resolve.Driver(src)
	if err != nil {
		return nil, nil, act(errCatalog, fmt.Errorf("catalog of DesSource %s: %w", src.Name, err), "correct DesSource %s spec.catalog.driver", src.Name)
	}
	dsn, err := desconnect.SecretValue(e.ctx, e.kube, e.namespace, ref)
	if err != nil {
		return nil, nil, secretTrouble(e, fmt.Errorf("catalog DSN of DesSource %s: %w", src.Name, err), owner)
	}
	pool, err := desconnect.Open(e.ctx, driver, string(dsn), desconnect.PoolOptions{MaxConns: 2, ConnectTimeout: catalogTimeout})
	if err != nil {
		return nil, nil, act(errCatalog, fmt.Errorf("catalog of DesSource %s: %w", src.Name, err), "correct the DSN in secrets/%s key %s", ref.Name, ref.Key)
	}
	if err := pool.Ping(e.ctx); err != nil {
		pool.Close()
		todo := fmt.Sprintf("the DSN in secrets/%s names a database this machine must reach (run where it is reachable, or port-forward to it)", ref.Name)
		if alternative != "" {
			todo += ", or " + alternative
		}
		return nil, nil, act(errCatalog, fmt.Errorf("catalog of DesSource %s: %w", src.Name, err), "%s", todo)
	}
	cat, err = catalog.New(pool.DB, resolve.Mapping(src))
	if err != nil {
		pool.Close()
		return nil, nil, act(errCatalog, fmt.Errorf("catalog of DesSource %s: %w", src.Name, err), "correct DesSource %s spec.catalog", src.Name)
	}
	return cat, pool.Close, nil
}

// plural is "1 file", "2 files".
func plural(n int64, one string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %ss", n, one)
}
