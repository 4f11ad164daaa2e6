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
)

// Condition reasons shared by the DES resources. Most reasons are specific to one check and named
// where it is made; these are set by more than one controller.
const (
	// ReasonPackerAccessFailed: the controller could not create or update the ServiceAccount and
	// RoleBinding that packer and marker pods run with, so their pods could not be created.
	ReasonPackerAccessFailed = "PackerAccessFailed"
)
