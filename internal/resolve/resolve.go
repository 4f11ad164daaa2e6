// Package resolve turns DES resources into the runtime settings of the catalog and object stores.
// The controller, the packer and the CLI resolve a DesSource the same way through it.
package resolve

import (
	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/objstore"
)

// Mapping is the catalog mapping a DesSource declares.
func Mapping(src *desv1.DesSource) catalog.Mapping {
	c := src.Spec.Catalog
	return catalog.Mapping{
		Table:         c.Table,
		ID:            c.Columns.ID,
		Bucket:        c.Columns.Bucket,
		Key:           c.Columns.Key,
		Size:          c.Columns.Size,
		Status:        c.Columns.Status,
		DesName:       c.Columns.DesName,
		Shard:         c.Columns.Shard,
		CreatedAt:     c.Columns.CreatedAt,
		DefaultBucket: src.Spec.Store.Bucket,
		Ready:         c.Statuses.Ready,
		Claimed:       c.Statuses.Claimed,
		Packed:        c.Statuses.Packed,
		Failed:        c.Statuses.Failed,
		Where:         c.Where,
	}
}

// Driver is the catalog driver a DesSource declares (postgres when unset, as the CRD defaults it).
func Driver(src *desv1.DesSource) (catalog.Driver, error) {
	return catalog.ParseDriver(src.Spec.Catalog.Driver)
}

// StoreConfig is the object-store configuration of a spec with credentials read from its Secret's
// data (keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, optional AWS_SESSION_TOKEN) and an optional
// CA bundle. The controller uses it; pods use StoreConfigFromFiles on mounted Secrets.
func StoreConfig(s desv1.ObjectStore, secret map[string][]byte, caPEM []byte) objstore.Config {
	return objstore.Config{
		Endpoint:        s.Endpoint,
		Region:          s.Region,
		PathStyle:       s.PathStyle,
		AccessKeyID:     string(secret[objstore.SecretAccessKeyIDFile]),
		SecretAccessKey: string(secret[objstore.SecretSecretAccessKeyFile]),
		SessionToken:    string(secret[objstore.SecretSessionTokenFile]),
		CAPEM:           caPEM,
	}
}

// StoreConfigFromFiles is the object-store configuration of a spec whose credentials Secret is mounted
// at credentialsDir and whose CA bundle (if the spec has one) is the file caFile.
func StoreConfigFromFiles(s desv1.ObjectStore, credentialsDir, caFile string) objstore.Config {
	cfg := objstore.Config{Endpoint: s.Endpoint, Region: s.Region, PathStyle: s.PathStyle, CredentialsDir: credentialsDir}
	if s.CABundleSecretRef != nil {
		cfg.CAFile = caFile
	}
	return cfg
}
