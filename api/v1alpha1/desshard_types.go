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
	// _bigFiles/ instead of inside it.
	// +kubebuilder:default=67108864
	// +kubebuilder:validation:Minimum=1
	BigFileThreshold int64 `json:"bigFileThreshold,omitempty"`
	// Interval between packing runs of a shard.
	// +kubebuilder:default="1h"
	Interval metav1.Duration `json:"interval,omitempty"`
	// ShardsPerJob is how many shards one packer Job serves.
	// +kubebuilder:default=16
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4096
	ShardsPerJob int32 `json:"shardsPerJob,omitempty"`
	// Retention keeps a Committed DesContainer resource this long; the catalog's des_containers
	// table keeps the permanent record.
	// +kubebuilder:default="168h"
	Retention metav1.Duration `json:"retention,omitempty"`
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
	// Bucket receiving the containers.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	Bucket string `json:"bucket"`
	// Prefix of container keys: <prefix>/<YYYY-MM-DD>/<shard-hex>/<container-id>.des
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$`
	// +kubebuilder:validation:MaxLength=512
	Prefix string `json:"prefix"`
}

// ContainerLimits bound a single container.
type ContainerLimits struct {
	// MaxBytes of payload in one container.
	// +kubebuilder:default=4294967296
	// +kubebuilder:validation:Minimum=1
	MaxBytes int64 `json:"maxBytes,omitempty"`
	// MaxFiles in one container.
	// +kubebuilder:default=1000000
	// +kubebuilder:validation:Minimum=1
	MaxFiles int64 `json:"maxFiles,omitempty"`
	// MaxAge of an open container before it is closed.
	// +kubebuilder:default="30m"
	MaxAge metav1.Duration `json:"maxAge,omitempty"`
}

// JobTemplate overrides settings of the packer Jobs.
type JobTemplate struct {
	// Image of the packer (the manager image); defaults to the controller's own image.
	// +optional
	Image string `json:"image,omitempty"`
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
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
	// ShardCount is the number of shards this DesShard serves.
	// +optional
	ShardCount int32 `json:"shardCount,omitempty"`
	// ActiveJobs running now.
	// +optional
	ActiveJobs int32 `json:"activeJobs,omitempty"`
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
