package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DesSourceSpec describes a catalog database listing small objects and the object store holding them.
type DesSourceSpec struct {
	// Catalog is the table listing the source objects, in PostgreSQL or MySQL/MariaDB.
	Catalog Catalog `json:"catalog"`
	// Store is where the source objects are read from.
	Store SourceStore `json:"store"`
	// Naming of the objects' DES names.
	// +kubebuilder:default={}
	Naming Naming `json:"naming,omitempty"`
	// Marker, when set, makes the controller run a CronJob that names ready-to-archive rows.
	// +optional
	Marker *Marker `json:"marker,omitempty"`
	// DeleteSource says whether packed source objects are deleted from the source store, and how
	// carefully. Off (Never) unless set.
	// +kubebuilder:default={}
	DeleteSource DeleteSource `json:"deleteSource,omitempty"`
}

// DeleteSourcePolicy says when packed source objects are deleted.
// +kubebuilder:validation:Enum=Never;AfterVerify
type DeleteSourcePolicy string

const (
	// DeleteNever keeps every source object.
	DeleteNever DeleteSourcePolicy = "Never"
	// DeleteAfterVerify deletes a source object once its file was read back from a committed container
	// and matched the CRC-32C taken when it was fetched, and only while the object is still the one
	// that was fetched (its ETag).
	DeleteAfterVerify DeleteSourcePolicy = "AfterVerify"
)

// SourceCheck is how the packer makes sure a source object is still the one it fetched.
// +kubebuilder:validation:Enum=Head;Conditional
type SourceCheck string

const (
	// CheckHead compares each object's ETag and size from a HEAD before deleting it: works on every
	// store; a write in the instant between the HEAD and the delete is not caught.
	CheckHead SourceCheck = "Head"
	// CheckConditional relies on the store refusing a delete whose ETag no longer matches (AWS S3's
	// conditional DeleteObjects): no HEAD per object, and no window. Only for stores that enforce it.
	CheckConditional SourceCheck = "Conditional"
)

// DeleteSource configures verified deletion of source objects (docs/operations.md, "Deleting
// sources"). The packer does it, after packing, for its shards' committed containers.
type DeleteSource struct {
	// Policy: Never (the default) or AfterVerify.
	// +kubebuilder:default=Never
	Policy DeleteSourcePolicy `json:"policy,omitempty"`
	// Delay after a container's commit before its sources are deleted: time to notice a problem (or
	// take a backup) while both copies exist.
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="spec.deleteSource.delay must not be negative"
	Delay metav1.Duration `json:"delay,omitempty"`
	// DryRun verifies and counts what would be deleted (status.sources.verified) without deleting.
	// +kubebuilder:default=false
	DryRun bool `json:"dryRun,omitempty"`
	// Check is how a source object is confirmed unchanged before it is deleted: Head (every store) or
	// Conditional (stores that enforce ETag conditions on DeleteObjects).
	// +kubebuilder:default=Head
	Check SourceCheck `json:"check,omitempty"`
	// DeletesPerSecond caps the delete rate of one packer.
	// +kubebuilder:default=500
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	DeletesPerSecond int32 `json:"deletesPerSecond,omitempty"`
}

// Catalog is a table with one row per source object, in PostgreSQL or MySQL/MariaDB.
type Catalog struct {
	// Driver is the catalog database: postgres (PostgreSQL) or mysql (MySQL 8.0.1 and later, MariaDB
	// 10.6 and later: the versions with FOR UPDATE SKIP LOCKED).
	// +kubebuilder:default=postgres
	// +kubebuilder:validation:Enum=postgres;mysql
	Driver string `json:"driver,omitempty"`
	// DSNSecretRef names the Secret key holding the connection string, in the driver's format:
	// postgres://user:password@host:5432/db?sslmode=require (or key=value pairs) for postgres,
	// user:password@tcp(host:3306)/db?tls=true for mysql.
	DSNSecretRef SecretKeyRef `json:"dsnSecretRef"`
	// Table is the catalog table, optionally schema-qualified (schema.table; for mysql the schema is
	// the database, and an unqualified table is in the DSN's database).
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$`
	Table string `json:"table"`
	// Columns maps the catalog's columns; each defaults to the name in brackets.
	// +kubebuilder:default={}
	Columns ColumnMapping `json:"columns,omitempty"`
	// Where limits the rows DES takes on (names, claims, counts, fill policy) to those matching a
	// predicate on the mapped id, bucket, key, size and createdAt columns, by their names in the
	// table: comparisons (=, <>, <, <=, >, >=) with integers and 'strings', IN (…), LIKE 'pattern',
	// BETWEEN … AND …, IS [NOT] NULL, combined with AND, OR, NOT and parentheses; for example
	// `size < 104857600 AND source_key LIKE 'scans/%'`. Values are passed to the database as
	// arguments, never as SQL. A filter the grammar does not allow makes the source Ready=False
	// (InvalidMapping) with the position of the problem.
	// +optional
	// +kubebuilder:validation:MaxLength=2000
	// +kubebuilder:validation:XValidation:rule=`self.matches(r"^(\s|[A-Za-z_][A-Za-z0-9_]*|-?[0-9]+|'([^']|'')*'|<=|>=|<>|!=|=|<|>|[(),])*$")`,message="spec.catalog.where may hold only column names, integers, 'strings', comparisons, parentheses and commas (no ';', comments or quoted identifiers)"
	Where string `json:"where,omitempty"`
	// Statuses are the values of the status column for each state of a row.
	// +kubebuilder:default={ready:"ready",claimed:"claimed",packed:"packed",failed:"failed"}
	Statuses StatusValues `json:"statuses,omitempty"`
	// AllowMigration lets the controller create the DES-owned columns and indexes (an idempotent
	// migration). When false, run `manager migrate` yourself.
	// +kubebuilder:default=false
	AllowMigration bool `json:"allowMigration,omitempty"`
}

// ColumnMapping names the catalog columns DES reads and writes. Column names are lower-case SQL
// identifiers.
type ColumnMapping struct {
	// ID is the primary key (bigint) [id].
	// +kubebuilder:default=id
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_]{0,62}$`
	ID string `json:"id,omitempty"`
	// Bucket holds each object's source bucket; leave empty and set store.bucket for one bucket.
	// +optional
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_]{0,62}$`
	Bucket string `json:"bucket,omitempty"`
	// Key is the object's key in the source bucket [source_key].
	// +kubebuilder:default=source_key
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_]{0,62}$`
	Key string `json:"key,omitempty"`
	// Size of the object in bytes [size].
	// +kubebuilder:default=size
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_]{0,62}$`
	Size string `json:"size,omitempty"`
	// Status of the row [status].
	// +kubebuilder:default=status
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_]{0,62}$`
	Status string `json:"status,omitempty"`
	// DesName is the object's DES name [des_name].
	// +kubebuilder:default=des_name
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_]{0,62}$`
	DesName string `json:"desName,omitempty"`
	// Shard is the shard id of the DES name [shard].
	// +kubebuilder:default=shard
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_]{0,62}$`
	Shard string `json:"shard,omitempty"`
	// CreatedAt is when the row was created [created_at].
	// +kubebuilder:default=created_at
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_]{0,62}$`
	CreatedAt string `json:"createdAt,omitempty"`
}

// StatusValues are the values the status column takes.
// +kubebuilder:validation:XValidation:rule="[self.ready, self.claimed, self.packed, self.failed].all(v, [self.ready, self.claimed, self.packed, self.failed].filter(w, w == v).size() == 1)",message="status values ready, claimed, packed and failed must all differ"
type StatusValues struct {
	// +kubebuilder:default=ready
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Ready string `json:"ready,omitempty"`
	// +kubebuilder:default=claimed
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Claimed string `json:"claimed,omitempty"`
	// +kubebuilder:default=packed
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Packed string `json:"packed,omitempty"`
	// +kubebuilder:default=failed
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Failed string `json:"failed,omitempty"`
}

// SourceStore is the object store holding the source objects.
type SourceStore struct {
	ObjectStore `json:",inline"`
	// Bucket is the one source bucket, when the catalog has no bucket column (S3 bucket-name rules).
	// +optional
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$') && !self.contains('..') && !self.matches('^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$')",message="spec.store.bucket must be an S3 bucket name: 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit, without '..', not an IP address"
	Bucket string `json:"bucket,omitempty"`
}

// Naming configures DES names and their shards.
type Naming struct {
	// Prefix of generated names (PREFIX_YYYYMMDD_(...)).
	// +kubebuilder:default=DES
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]{1,32}$`
	Prefix string `json:"prefix,omitempty"`
	// ShardBits is the number of top SHA-256 bits of a name that select its shard (2^shardBits shards).
	// +kubebuilder:default=12
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16
	ShardBits int32 `json:"shardBits,omitempty"`
}

// Marker configures the CronJob that assigns DES names to new catalog rows.
type Marker struct {
	// Schedule in cron format.
	// +kubebuilder:default="*/5 * * * *"
	// +kubebuilder:validation:MinLength=9
	Schedule string `json:"schedule,omitempty"`
	// BatchSize is the number of rows named per transaction.
	// +kubebuilder:default=1000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	BatchSize int32 `json:"batchSize,omitempty"`
	// MinAge is how old a row must be before it is named; 0s names rows at once. Negative ages are
	// refused: the marker would refuse to run with them.
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="spec.marker.minAge must not be negative"
	MinAge metav1.Duration `json:"minAge,omitempty"`
	// RowsPerSecond caps the marking rate; 0 means no cap.
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	RowsPerSecond int32 `json:"rowsPerSecond,omitempty"`
	// MaxRetries before a failing row stays failed.
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=0
	MaxRetries int32 `json:"maxRetries,omitempty"`
}

// RowCounts counts catalog rows per state.
//
// The counts are always written, zeros too: `kubectl get dessources` shows 0, not an empty column
// that reads as "not counted". The schema keeps them optional all the same: a status stored before
// they were always written lacks them.
type RowCounts struct {
	// +optional
	Unnamed int64 `json:"unnamed"`
	// +optional
	Ready int64 `json:"ready"`
	// +optional
	Claimed int64 `json:"claimed"`
	// +optional
	Packed int64 `json:"packed"`
	// +optional
	Failed int64 `json:"failed"`
	// CountedAt is when the catalog was counted: at every periodic check, and a few seconds after a
	// packer or marker Job of the source ends.
	// +optional
	CountedAt *metav1.Time `json:"countedAt,omitempty"`
}

// SourceCounts counts packed rows by what verified deletion did with their source objects.
type SourceCounts struct {
	// Deleted source objects (their files read back from the archive first).
	Deleted int64 `json:"deleted,omitempty"`
	// Waiting packed rows whose source objects are still there and not refused.
	Waiting int64 `json:"waiting,omitempty"`
	// Verified rows a dry run checked and would delete.
	Verified int64 `json:"verified,omitempty"`
	// Refused rows whose source is kept because a check failed (des_source_refused says why).
	Refused int64 `json:"refused,omitempty"`
}

// DesSourceStatus is the observed state of a DesSource.
type DesSourceStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready says whether the database, table, columns and bucket are reachable.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Rows counts catalog rows per state, as of LastChecked.
	// +optional
	Rows *RowCounts `json:"rows,omitempty"`
	// Sources counts what verified deletion did, as of LastChecked (when spec.deleteSource is not
	// Never).
	// +optional
	Sources *SourceCounts `json:"sources,omitempty"`
	// CommittedContainers is the number of containers committed from this source.
	// +optional
	CommittedContainers int64 `json:"committedContainers,omitempty"`
	// LastChecked is when the catalog was last inspected.
	// +optional
	LastChecked *metav1.Time `json:"lastChecked,omitempty"`
}

// DesSource is a catalog database of small objects and the bucket(s) holding them.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dsrc,categories=des
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Table",type=string,JSONPath=`.spec.catalog.table`
// +kubebuilder:printcolumn:name="Driver",type=string,priority=1,JSONPath=`.spec.catalog.driver`
// +kubebuilder:printcolumn:name="Shard-Bits",type=integer,JSONPath=`.spec.naming.shardBits`
// +kubebuilder:printcolumn:name="Ready-Rows",type=integer,JSONPath=`.status.rows.ready`
// +kubebuilder:printcolumn:name="Packed",type=integer,JSONPath=`.status.rows.packed`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.rows.failed`
// +kubebuilder:printcolumn:name="Deleted",type=integer,JSONPath=`.status.sources.deleted`
// +kubebuilder:printcolumn:name="Counted",type=date,JSONPath=`.status.rows.countedAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || !has(oldSelf.status.committedContainers) || oldSelf.status.committedContainers == 0 || self.spec.naming.shardBits == oldSelf.spec.naming.shardBits",message="spec.naming.shardBits cannot change once containers exist: existing names would map to other shards"
// +kubebuilder:validation:XValidation:rule="has(self.spec.catalog.columns.bucket) || has(self.spec.store.bucket)",message="set spec.store.bucket, or spec.catalog.columns.bucket when objects live in several buckets"
type DesSource struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DesSourceSpec   `json:"spec,omitempty"`
	Status DesSourceStatus `json:"status,omitempty"`
}

// DesSourceList is a list of DesSources.
// +kubebuilder:object:root=true
type DesSourceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DesSource `json:"items"`
}
