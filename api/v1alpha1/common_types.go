package v1alpha1

// SecretKeyRef names one key of a Secret in the resource's namespace.
type SecretKeyRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key within the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// SecretRef names a Secret in the resource's namespace.
type SecretRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// ObjectStore is an S3-compatible endpoint (AWS S3, HCP, MinIO-like servers).
type ObjectStore struct {
	// Endpoint URL, e.g. https://hcp.example.com. Empty means AWS S3 for the region.
	// +optional
	// +kubebuilder:validation:Pattern=`^https?://[^\s/]+(/.*)?$`
	Endpoint string `json:"endpoint,omitempty"`
	// Region used for request signing.
	// +kubebuilder:default=us-east-1
	// +kubebuilder:validation:MinLength=1
	Region string `json:"region,omitempty"`
	// PathStyle addresses buckets as endpoint/bucket instead of bucket.endpoint; self-hosted stores
	// usually need it.
	// +kubebuilder:default=true
	PathStyle bool `json:"pathStyle,omitempty"`
	// CredentialsSecretRef names a Secret with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
	CredentialsSecretRef SecretRef `json:"credentialsSecretRef"`
	// CABundleSecretRef names a Secret key holding PEM CA certificates for a private TLS endpoint.
	// +optional
	CABundleSecretRef *SecretKeyRef `json:"caBundleSecretRef,omitempty"`
}

// Condition types shared by the DES resources.
const (
	ConditionReady       = "Ready"
	ConditionProgressing = "Progressing"
	ConditionDegraded    = "Degraded"
	// ConditionFinished is set on DesContainers whose phase recovery made final; its transition
	// time starts the retention clock of containers that never committed.
	ConditionFinished = "Finished"
)

// ConditionReason is the machine-readable reason of a condition or an event. Each reason DES sets is
// a constant here, so that alerts, `kubectl wait` and the docs can rely on the list.
type ConditionReason string

// Reasons shared by more than one resource.
const (
	ReasonReady ConditionReason = "Ready"
	// ReasonPackerAccessFailed: the controller could not create or update the ServiceAccount and
	// RoleBinding that packer and marker pods run with, so their pods could not be created.
	ReasonPackerAccessFailed ConditionReason = "PackerAccessFailed"
)

// DesSource reasons (Ready and Degraded).
const (
	ReasonSecretNotFound    ConditionReason = "SecretNotFound"
	ReasonSecretUnreadable  ConditionReason = "SecretUnreadable"
	ReasonSecretKeyNotFound ConditionReason = "SecretKeyNotFound"
	// ReasonNoCredentialsSecret: an object store spec names no credentials Secret; DES never uses
	// the controller's own identity (pod role, IRSA, environment) instead.
	ReasonNoCredentialsSecret ConditionReason = "NoCredentialsSecret"
	ReasonDatabaseUnreachable ConditionReason = "DatabaseUnreachable"
	// ReasonInvalidDSN: the DSN in the Secret is not a connection string of spec.catalog.driver (a
	// PostgreSQL URL for a mysql source, say); the message gives the format.
	ReasonInvalidDSN ConditionReason = "InvalidDSN"
	// ReasonCatalogUnsupported: the catalog database cannot run DES's claims: MySQL before 8.0.1 or
	// MariaDB before 10.6 (no FOR UPDATE SKIP LOCKED), or a table not in InnoDB.
	ReasonCatalogUnsupported  ConditionReason = "CatalogUnsupported"
	ReasonInvalidMapping      ConditionReason = "InvalidMapping"
	ReasonMigrationFailed     ConditionReason = "MigrationFailed"
	ReasonTableNotFound       ConditionReason = "TableNotFound"
	ReasonColumnNotFound      ConditionReason = "ColumnNotFound"
	ReasonCatalogQueryFailed  ConditionReason = "CatalogQueryFailed"
	ReasonObjectStoreUnusable ConditionReason = "ObjectStoreUnusable"
	ReasonBucketUnreachable   ConditionReason = "BucketUnreachable"
	// ReasonMarkerFailed: the marker CronJob could not be created or updated (quota, admission, RBAC).
	ReasonMarkerFailed ConditionReason = "MarkerFailed"
	ReasonMarkerOK     ConditionReason = "MarkerScheduled"
	// ReasonSourcesKept: verified deletion refused to delete some source objects (their archived copy
	// did not match the CRC taken at fetch, or the object changed after it was packed); they are kept.
	ReasonSourcesKept ConditionReason = "SourcesKept"
	// ReasonCatalogMigrated is the event of a catalog that gained DES's columns and indexes.
	ReasonCatalogMigrated ConditionReason = "CatalogMigrated"
	// ReasonStrayClaimsReturned (event): rows claimed by a container that is final or gone were
	// returned to ready. The protocol leaves none; it says a finalizer was removed by hand or a bug.
	ReasonStrayClaimsReturned ConditionReason = "StrayClaimsReturned"
)

// Deletion reasons (Ready=False of a DesShard or DesSource being deleted, and Normal events).
const (
	// ReasonDeleting: the object is being deleted and waits for its unfinished containers and its
	// packers; the message says which, and why recovery is blocked if it is.
	ReasonDeleting ConditionReason = "Deleting"
	// ReasonSourceDeleting: the DesShard's DesSource is being deleted; no new Jobs start.
	ReasonSourceDeleting ConditionReason = "SourceDeleting"
)

// DesShard reasons (Ready, Progressing, Degraded) and events.
const (
	ReasonSourceNotFound ConditionReason = "SourceNotFound"
	ReasonInvalidShards  ConditionReason = "InvalidShards"
	// ReasonOverlapsDesShard: an earlier DesShard (by creation, then namespace/name, in any
	// namespace) claims some of the same shards under the same archive bucket and prefix; this one
	// creates no Jobs and sweeps nothing until one of them changes.
	ReasonOverlapsDesShard ConditionReason = "OverlapsDesShard"
	ReasonJobsActive       ConditionReason = "JobsActive"
	ReasonIdle             ConditionReason = "Idle"
	ReasonNoFailures       ConditionReason = "NoFailures"
	ReasonJobsFailed       ConditionReason = "JobsFailed"
	// ReasonJobCreateFailed: a packer Job was refused (ResourceQuota, Pod Security admission, RBAC);
	// the run is retried, but only a person can lift the refusal.
	ReasonJobCreateFailed         ConditionReason = "JobCreateFailed"
	ReasonArchiveOrCatalogTrouble ConditionReason = "ArchiveOrCatalogTrouble"
	ReasonJobCreated              ConditionReason = "JobCreated"
	ReasonArchiveSwept            ConditionReason = "ArchiveSwept"
	// ReasonContainersPruned (an event): finished DesContainers over spec.maxContainers were deleted
	// before their retention.
	ReasonContainersPruned ConditionReason = "ContainersPruned"
	// ReasonJobSettingsNotAllowed: spec.job names a packer image or ServiceAccount that the
	// controller's configuration (--allowed-packer-images, --allowed-packer-service-accounts) does
	// not allow, so no Job is created.
	ReasonJobSettingsNotAllowed ConditionReason = "JobSettingsNotAllowed"
	// ReasonPackNow (an event): the des.datavision.io/pack-now annotation was honoured: a run
	// started now, or there was nothing to pack.
	ReasonPackNow ConditionReason = "PackNow"
	// ReasonPackNowRefused (a Warning event): the pack-now annotation could not be honoured (a shard
	// the DesShard does not serve, a suspended DesShard); it is removed, so ask again once fixed.
	ReasonPackNowRefused ConditionReason = "PackNowRefused"
)

// DesContainer events (see also RecoveredReason).
const (
	// ReasonRecoveryBlocked: recovery cannot reach the catalog or the archive and will retry.
	ReasonRecoveryBlocked ConditionReason = "RecoveryBlocked"
	// ReasonKeyNotOwned: the container's bucket or key is not the one the protocol gives it under its
	// DesShard (archive bucket, prefix, spec.day, spec.shard, the container id in its name). Recovery
	// rolled its rows back in the catalog but deletes nothing in the store and leaves the phase: a
	// person decides (correct the spec, or remove the finalizer).
	ReasonKeyNotOwned ConditionReason = "KeyNotOwned"
	// ReasonKeyCommitted: the catalog records the container's key as committed (des_containers) for
	// another container; recovery deletes nothing in the store and leaves the phase.
	ReasonKeyCommitted ConditionReason = "KeyCommitted"
)
