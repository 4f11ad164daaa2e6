// Package v1alpha1 contains the DES API: DesSource, DesShard and DesContainer.
// +kubebuilder:object:generate=true
// +groupName=des.datavision.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the DES API.
	GroupVersion = schema.GroupVersion{Group: "des.datavision.io", Version: "v1alpha1"}

	// SchemeBuilder registers the DES types with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the DES types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
