package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DesShardSpec says which shards of a source to pack, where the archives go and when.
// +kubebuilder:validation:XValidation:rule="has(self.shards) != has(self.shardRanges)",message="set exactly one of spec.shards and spec.shardRanges"
type DesShardSpec struct {
	// SourceRef names the DesSource in the same namespace. It cannot change.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.sourceRef is immutable: create a new DesShard for another source"
	SourceRef string `json:"sourceRef"`
	// Shards lists shard ids (each below 2^shardBits of the source).
	// +optional
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=65536
	// +listType=set
	// +kubebuilder:validation:items:Minimum=0
	// +kubebuilder:validation:items:Maximum=65535
	Shards []int32 `json:"shards,omitempty"`
	// ShardRanges lists inclusive ranges of shard ids.
	// +optional
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1024
	ShardRanges []ShardRange `json:"shardRanges,omitempty"`
	// Archive is where containers are written.
	Archive ArchiveStore `json:"archive"`
	// Limits bound one container; the packer rolls over to a new one at the first limit reached.
	// +kubebuilder:default={}
	Limits ContainerLimits `json:"limits,omitempty"`
	// BigFileThreshold: payloads of at least this many bytes are stored beside the container under
	// _bigFiles/ instead of inside it. At most 5 GiB: S3 takes at most 5 GiB in
	// one PUT or part, so a payload that size already needs an upload of its own, and keeping bigger
	// ones inside a container only makes a failed container costlier to redo.
	// +kubebuilder:default=67108864
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=5368709120
	BigFileThreshold int64 `json:"bigFileThreshold,omitempty"`
	// Interval between packing runs of a shard. At least 10s: every run lists the
	// DesShard's Jobs, Leases and containers and asks the catalog, so a shorter interval keeps the
	// controller in a hot loop for no gain (a run takes longer than that anyway). 0s, which a Go
	// client sends for an unset field, means the default.
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:XValidation:rule="duration(self) == duration('0s') || duration(self) >= duration('10s')",message="spec.interval must be at least 10s: shorter intervals make the controller loop"
	Interval metav1.Duration `json:"interval,omitempty"`
	// ShardsPerJob is how many shards one packer Job serves.
	// +kubebuilder:default=16
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4096
	ShardsPerJob int32 `json:"shardsPerJob,omitempty"`
	// Retention keeps a Committed DesContainer resource this long; the catalog's des_containers
	// table keeps the permanent record. At least 1h: the DesShard's status (last success and last
	// error per shard) and the reason a container failed live in these resources, and a shorter
	// retention deletes them before a person can look. 0s means the default.
	// +kubebuilder:default="168h"
	// +kubebuilder:validation:XValidation:rule="duration(self) == duration('0s') || duration(self) >= duration('1h')",message="spec.retention must be at least 1h: DesContainers (and the failure reasons they carry) would be deleted before anyone could read them"
	Retention metav1.Duration `json:"retention,omitempty"`
	// MaxContainers bounds the finished DesContainer resources kept for this DesShard: past it, the
	// oldest are deleted before their retention ends, except the newest finished one of each shard
	// (the DesShard's status reads its last outcome there). The catalog's des_containers table keeps
	// the permanent record either way; the bound keeps etcd (about 1.5 KB per DesContainer) and every
	// list of them small when containers are small and frequent.
	// +kubebuilder:default=10000
	// +kubebuilder:validation:Minimum=1
	MaxContainers int32 `json:"maxContainers,omitempty"`
	// Job overrides the packer Jobs' pod settings.
	// +optional
	Job JobTemplate `json:"job,omitempty"`
	// Suspend stops new packer Jobs; running ones finish.
	// +kubebuilder:default=false
	Suspend bool `json:"suspend,omitempty"`
}

// ShardRange is an inclusive range of shard ids.
// +kubebuilder:validation:XValidation:rule="self.from <= self.to",message="shard range 'from' must not exceed 'to'"
type ShardRange struct {
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	From int32 `json:"from"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	To int32 `json:"to"`
}

// ArchiveStore is the bucket and key prefix containers are written to.
type ArchiveStore struct {
	ObjectStore `json:",inline"`
	// Bucket receiving the containers (S3 bucket-name rules).
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$') && !self.contains('..') && !self.matches('^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$')",message="spec.archive.bucket must be an S3 bucket name: 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit, without '..', not an IP address"
	Bucket string `json:"bucket"`
	// Prefix of container keys: <prefix>/<YYYY-MM-DD>/<shard-hex>/<container-id>.des. Segments of
	// letters, digits, '.', '_' and '-' separated by single '/', none empty, "." or "..":
	// keys are built with path.Join, which would resolve those.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*)*$')",message="spec.archive.prefix must be segments of letters, digits, '.', '_' and '-' separated by single '/', none of them empty, '.' or '..' (e.g. des or archive/v1)"
	Prefix string `json:"prefix"`
}

// ContainerLimits bound a single container, and say when a shard has enough to fill one (the fill
// policy): a run packs a shard once its ready rows reach MinFiles or MinBytes, or its oldest ready row
// has waited MaxWait; until then the shard is left alone, so containers hold thousands of files
// instead of whatever a run happened to find. A shard whose ready rows fill a whole container (MaxFiles
// or MaxBytes) is due even when MinFiles or MinBytes is set higher.
type ContainerLimits struct {
	// MaxBytes of payload in one container. At most 1 TiB: a container is one
	// multipart upload of at most 10,000 parts of at most 5 GiB (5 TiB objects), and the packer sizes
	// parts so the container fits in 9,000 of them and holds about five parts in memory; at 1 TiB a
	// part is about 120 MiB, at 5 TiB it would be 600 MiB (3 GiB of buffers), and a failed container
	// would be that much to upload again.
	// +kubebuilder:default=4294967296
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1099511627776
	MaxBytes int64 `json:"maxBytes,omitempty"`
	// MaxFiles in one container. At most 10,000,000: the packer keeps every
	// file's index entry, meta and placement in temporary files until the container closes, about
	// 200 bytes each on disk (the Job's /tmp emptyDir is sized for 512) and 5 to 11 bytes of memory
	// for the duplicate-name check, and a commit places all of them in one transaction.
	// +kubebuilder:default=1000000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000000
	MaxFiles int64 `json:"maxFiles,omitempty"`
	// MaxAge of an open container before it is closed. At least 1m: each container costs an upload,
	// a DesContainer and a catalog record, and closing them every few seconds makes many small
	// containers of what should be one. 0s means the default.
	// +kubebuilder:default="30m"
	// +kubebuilder:validation:XValidation:rule="duration(self) == duration('0s') || duration(self) >= duration('1m')",message="spec.limits.maxAge must be at least 1m: shorter ages close containers after a few files"
	MaxAge metav1.Duration `json:"maxAge,omitempty"`
	// MinFiles ready rows make a shard due for packing. 1 packs whatever is ready at every run (the
	// behaviour before the fill policy). The default, 10,000, makes containers of thousands of files,
	// each one object, one DesContainer and one catalog record instead of thousands.
	// +kubebuilder:default=10000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000000
	MinFiles int64 `json:"minFiles,omitempty"`
	// MinBytes of ready payload make a shard due for packing, however few files they are (big files
	// fill a container sooner). Default 1 GiB.
	// +kubebuilder:default=1073741824
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1099511627776
	MinBytes int64 `json:"minBytes,omitempty"`
	// MaxWait is the longest a ready row waits for its shard to fill: once the oldest ready row of a
	// shard (by its createdAt column) is this old, the shard is packed at its next run however little it
	// holds, so a trickle is never delayed for ever. At least 1m; 0s means the default, 24h.
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:XValidation:rule="duration(self) == duration('0s') || duration(self) >= duration('1m')",message="spec.limits.maxWait must be at least 1m (0s means the default, 24h)"
	MaxWait metav1.Duration `json:"maxWait,omitempty"`
}

// JobTemplate overrides settings of the packer Jobs.
type JobTemplate struct {
	// Image of the packer (the manager image); defaults to the controller's --packer-image. Any other
	// image must be listed, as the same string, in the controller's --allowed-packer-images, or the
	// DesShard gets no Job (Ready=False, JobSettingsNotAllowed).
	// +optional
	Image string `json:"image,omitempty"`
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// ServiceAccountName the packer pods run as; defaults to the controller's
	// --packer-service-account, which DES creates and binds. Any other account must be listed in the
	// controller's --allowed-packer-service-accounts (or the DesShard gets no Job), and binding it to
	// the packer role is up to you.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// ActiveDeadlineSeconds bounds one Job's run.
	// +kubebuilder:default=3600
	// +kubebuilder:validation:Minimum=60
	ActiveDeadlineSeconds int64 `json:"activeDeadlineSeconds,omitempty"`
	// BackoffLimit of the Job.
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=20
	BackoffLimit int32 `json:"backoffLimit,omitempty"`
}

// ShardStatus summarises one shard.
type ShardStatus struct {
	ID int32 `json:"id"`
	// ActiveJob is the Job packing the shard now.
	// +optional
	ActiveJob string `json:"activeJob,omitempty"`
	// LeaseHolder is the pod holding the shard's Lease.
	// +optional
	LeaseHolder string `json:"leaseHolder,omitempty"`
	// +optional
	LastSuccess *metav1.Time `json:"lastSuccess,omitempty"`
	// +optional
	LastError string `json:"lastError,omitempty"`
	// PendingRows are ready rows not yet packed.
	// +optional
	PendingRows int64 `json:"pendingRows,omitempty"`
	// PendingBytes is the payload of the pending rows.
	// +optional
	PendingBytes int64 `json:"pendingBytes,omitempty"`
	// Fill says whether the pending rows fill a container (spec.limits): Due (with what made it due:
	// MinFiles, MinBytes or MaxWait) or Waiting.
	// +optional
	Fill FillReason `json:"fill,omitempty"`
	// PackBy is when the shard's oldest pending row has waited spec.limits.maxWait: a waiting shard
	// becomes due then at the latest (it is packed at the first run after it), unless it fills sooner;
	// a due shard still pending well past it is late (metric des_desshard_pack_overdue_seconds).
	// +optional
	PackBy *metav1.Time `json:"packBy,omitempty"`
	// SourcesDue counts the shard's committed containers whose source objects are due for verified
	// deletion (DesSource spec.deleteSource): the shard gets a Job for them even when it has no
	// rows to pack.
	// +optional
	SourcesDue int64 `json:"sourcesDue,omitempty"`
}

// FillReason says why a shard is or is not due for packing under the fill policy.
// +kubebuilder:validation:Enum=MinFiles;MinBytes;MaxWait;Waiting
type FillReason string

// Fill reasons: the first three make a shard due.
const (
	FillMinFiles FillReason = "MinFiles"
	FillMinBytes FillReason = "MinBytes"
	FillMaxWait  FillReason = "MaxWait"
	FillWaiting  FillReason = "Waiting"
)

// FillStatus sums up the fill policy over a DesShard's shards.
type FillStatus struct {
	// DueShards had enough pending rows at the last check.
	DueShards int32 `json:"dueShards"`
	// WaitingShards have pending rows that do not fill a container yet.
	WaitingShards int32 `json:"waitingShards"`
	// NextPackBy is the earliest packBy of the waiting shards.
	// +optional
	NextPackBy *metav1.Time `json:"nextPackBy,omitempty"`
	// CheckedAt is when the last run checked the shards' fill, whether or not it started Jobs.
	// +optional
	CheckedAt *metav1.Time `json:"checkedAt,omitempty"`
	// PendingRows are the ready rows of all the shards, as of CountedAt (written when 0 too, so the
	// printer column shows 0).
	// +optional
	PendingRows int64 `json:"pendingRows"`
	// PendingBytes is their payload.
	// +optional
	PendingBytes int64 `json:"pendingBytes"`
	// CountedAt is when the pending rows were counted: at every reconcile that reached the catalog,
	// which includes the end of each packer Job.
	// +optional
	CountedAt *metav1.Time `json:"countedAt,omitempty"`
}

// DesShardStatus is the observed state of a DesShard.
type DesShardStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions Ready, Progressing and Degraded.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Runs counts the packing runs scheduled so far; it numbers the runs' Jobs.
	// +optional
	Runs int64 `json:"runs,omitempty"`
	// LastScheduleTime is when the last run was scheduled.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// Fill is what the last check found under the fill policy (spec.limits.minFiles, minBytes,
	// maxWait). A check that finds no shard due starts no Job.
	// +optional
	Fill *FillStatus `json:"fill,omitempty"`
	// ShardCount is the number of shards this DesShard serves.
	// +optional
	ShardCount int32 `json:"shardCount,omitempty"`
	// ActiveJobs running now (written when 0 too, for the printer column).
	// +optional
	ActiveJobs int32 `json:"activeJobs"`
	// Containers counts DesContainers by phase.
	// +optional
	Containers map[string]int64 `json:"containers,omitempty"`
	// Shards with something to report (active, failing or pending); idle shards are left out so the
	// status stays small.
	// +optional
	// +listType=map
	// +listMapKey=id
	Shards []ShardStatus `json:"shards,omitempty"`
}

// DesShard packs a set of shards of a DesSource into containers on a schedule.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dshard,categories=des
// +kubebuilder:printcolumn:name="Source",type=string,JSONPath=`.spec.sourceRef`
// +kubebuilder:printcolumn:name="Shards",type=integer,JSONPath=`.status.shardCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Jobs",type=integer,JSONPath=`.status.activeJobs`
// +kubebuilder:printcolumn:name="Suspend",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Last-Run",type=date,JSONPath=`.status.lastScheduleTime`
// +kubebuilder:printcolumn:name="Due",type=integer,JSONPath=`.status.fill.dueShards`
// +kubebuilder:printcolumn:name="Waiting",type=integer,JSONPath=`.status.fill.waitingShards`
// +kubebuilder:printcolumn:name="Pending",type=integer,JSONPath=`.status.fill.pendingRows`
// +kubebuilder:printcolumn:name="Counted",type=date,JSONPath=`.status.fill.countedAt`
// +kubebuilder:printcolumn:name="Pack-By",type=date,priority=1,JSONPath=`.status.fill.nextPackBy`
// +kubebuilder:printcolumn:name="Bucket",type=string,priority=1,JSONPath=`.spec.archive.bucket`
// +kubebuilder:printcolumn:name="Prefix",type=string,priority=1,JSONPath=`.spec.archive.prefix`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 40",message="a DesShard name has at most 40 characters: it prefixes the names of its Jobs and Leases"
type DesShard struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DesShardSpec   `json:"spec,omitempty"`
	Status DesShardStatus `json:"status,omitempty"`
}

// DesShardList is a list of DesShards.
// +kubebuilder:object:root=true
type DesShardList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DesShard `json:"items"`
}
