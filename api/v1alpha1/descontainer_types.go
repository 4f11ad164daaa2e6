package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ContainerPhase is where a container is in its life: Pending → Writing → Uploaded → Committed,
// or RolledBack / Failed.
// +kubebuilder:validation:Enum=Pending;Writing;Uploaded;Committed;RolledBack;Failed
type ContainerPhase string

// The phases, in the order a container passes them; the last three are final (IsFinal).
const (
	PhasePending    ContainerPhase = "Pending"
	PhaseWriting    ContainerPhase = "Writing"
	PhaseUploaded   ContainerPhase = "Uploaded"
	PhaseCommitted  ContainerPhase = "Committed"
	PhaseRolledBack ContainerPhase = "RolledBack"
	PhaseFailed     ContainerPhase = "Failed"
)

// DesContainerSpec identifies one archive object. It never changes once created. Recovery reads,
// aborts and deletes what the key names, so the key must be a container key of the spec's day and
// shard (protocol.ContainerKey, or protocol.LegacyContainerKey for containers written before the
// object moved inside its own prefix), nothing else in the bucket.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a DesContainer's spec is immutable"
// +kubebuilder:validation:XValidation:rule="self.key.size() < (self.key.matches('/c[0-9a-f]{16}/c[0-9a-f]{16}[.]des$') ? 56 : 38) || self.key.substring(self.key.size() - (self.key.matches('/c[0-9a-f]{16}/c[0-9a-f]{16}[.]des$') ? 55 : 37), self.key.size() - (self.key.matches('/c[0-9a-f]{16}/c[0-9a-f]{16}[.]des$') ? 45 : 27)) == self.day",message="spec.key must be a key of spec.day: <prefix>/<spec.day>/<shard hex>/c<16 hex digits>/c<16 hex digits>.des (or the legacy <prefix>/<spec.day>/<shard hex>/c<16 hex digits>.des)"
// +kubebuilder:validation:XValidation:rule="self.key.size() < (self.key.matches('/c[0-9a-f]{16}/c[0-9a-f]{16}[.]des$') ? 56 : 38) || self.key.substring(self.key.size() - (self.key.matches('/c[0-9a-f]{16}/c[0-9a-f]{16}[.]des$') ? 44 : 26), self.key.size() - (self.key.matches('/c[0-9a-f]{16}/c[0-9a-f]{16}[.]des$') ? 40 : 22)) == ['0','1','2','3','4','5','6','7','8','9','a','b','c','d','e','f'][self.shard / 4096] + ['0','1','2','3','4','5','6','7','8','9','a','b','c','d','e','f'][self.shard / 256 % 16] + ['0','1','2','3','4','5','6','7','8','9','a','b','c','d','e','f'][self.shard / 16 % 16] + ['0','1','2','3','4','5','6','7','8','9','a','b','c','d','e','f'][self.shard % 16]",message="spec.key must be a key of spec.shard: <prefix>/<day>/<spec.shard as 4 hex digits>/c<16 hex digits>/c<16 hex digits>.des (or the legacy <prefix>/<day>/<spec.shard as 4 hex digits>/c<16 hex digits>.des)"
type DesContainerSpec struct {
	// ShardRef names the DesShard that wrote the container.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ShardRef string `json:"shardRef"`
	// Shard id of the objects inside.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	Shard int32 `json:"shard"`
	// Day the container belongs to (YYYY-MM-DD, UTC).
	// +kubebuilder:validation:MaxLength=10
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$')",message="spec.day must be a date YYYY-MM-DD"
	Day string `json:"day"`
	// Bucket holding the object (S3 bucket-name rules).
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$') && !self.contains('..') && !self.matches('^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$')",message="spec.bucket must be an S3 bucket name: 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit, without '..', not an IP address"
	Bucket string `json:"bucket"`
	// Key of the object: <prefix>/<YYYY-MM-DD>/<shard-hex>/<container-id>/<container-id>.des (or,
	// for containers written before the object moved inside its own prefix,
	// <prefix>/<YYYY-MM-DD>/<shard-hex>/<container-id>.des), its prefix following the rule of a
	// DesShard's spec.archive.prefix.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*)*/[0-9]{4}-[0-9]{2}-[0-9]{2}/[0-9a-f]{4}/(c[0-9a-f]{16}/)?c[0-9a-f]{16}[.]des$')",message="spec.key must be a container key <prefix>/<YYYY-MM-DD>/<4 hex digits>/c<16 hex digits>/c<16 hex digits>.des (or the legacy <prefix>/<YYYY-MM-DD>/<4 hex digits>/c<16 hex digits>.des), its prefix made of segments of letters, digits, '.', '_' and '-', none empty, '.' or '..'"
	// +kubebuilder:validation:XValidation:rule="!self.matches('/c[0-9a-f]{16}/c[0-9a-f]{16}[.]des$') || self.substring(self.size() - 39, self.size() - 22) == self.substring(self.size() - 21, self.size() - 4)",message="spec.key must name its container's id twice, as its folder and its object: <prefix>/<day>/<shard hex>/c<16 hex digits>/c<the same 16 hex digits>.des"
	Key string `json:"key"`
}

// DesContainerStatus is the observed state of one container.
type DesContainerStatus struct {
	// +optional
	Phase ContainerPhase `json:"phase,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Files in the container.
	// +optional
	Files int64 `json:"files,omitempty"`
	// Bytes of payload in the container (external payloads included).
	// +optional
	Bytes int64 `json:"bytes,omitempty"`
	// ObjectSize is the size of the container object.
	// +optional
	ObjectSize int64 `json:"objectSize,omitempty"`
	// PayloadChecksum combines the payloads' CRC-32C values.
	// +optional
	PayloadChecksum string `json:"payloadChecksum,omitempty"`
	// IndexChecksum is the CRC-32C of the index region.
	// +optional
	IndexChecksum string `json:"indexChecksum,omitempty"`
	// UploadID of the multipart upload while Writing, so recovery can abort it.
	// +optional
	UploadID string `json:"uploadID,omitempty"`
	// Job and Pod that wrote the container.
	// +optional
	Job string `json:"job,omitempty"`
	// +optional
	Pod string `json:"pod,omitempty"`
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// +optional
	UploadedAt *metav1.Time `json:"uploadedAt,omitempty"`
	// +optional
	CommittedAt *metav1.Time `json:"committedAt,omitempty"`
	// Reason a container was rolled back or failed.
	// +optional
	Reason string `json:"reason,omitempty"`
}

// DesContainer is one archive object: its phase, contents and how it was written.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dcon,categories=des
// The reader finds a day's and shard's containers, and the container of a key, with field selectors
// on these instead of listing a namespace of a year of containers.
// +kubebuilder:selectablefield:JSONPath=`.spec.day`
// +kubebuilder:selectablefield:JSONPath=`.spec.shard`
// +kubebuilder:selectablefield:JSONPath=`.spec.key`
// +kubebuilder:printcolumn:name="Shard",type=integer,JSONPath=`.spec.shard`
// +kubebuilder:printcolumn:name="Day",type=string,JSONPath=`.spec.day`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Files",type=integer,JSONPath=`.status.files`
// +kubebuilder:printcolumn:name="Bytes",type=integer,JSONPath=`.status.bytes`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Key",type=string,JSONPath=`.spec.key`
// +kubebuilder:printcolumn:name="Job",type=string,priority=1,JSONPath=`.status.job`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.reason`
type DesContainer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DesContainerSpec   `json:"spec,omitempty"`
	Status DesContainerStatus `json:"status,omitempty"`
}

// DesContainerList is a list of DesContainers.
// +kubebuilder:object:root=true
type DesContainerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DesContainer `json:"items"`
}
