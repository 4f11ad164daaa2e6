// Package v1alpha1 contains the DES API: DesSource, DesShard and DesContainer.
// +kubebuilder:object:generate=true
// +groupName=des.datavision.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of the DES API.
	GroupVersion = schema.GroupVersion{Group: "des.datavision.io", Version: "v1alpha1"}

	// SchemeBuilder registers the DES types with a scheme. It is apimachinery's, not
	// controller-runtime's (deprecated for API packages), so that importing the API pulls in
	// apimachinery only.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the DES types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&DesSource{}, &DesSourceList{},
		&DesShard{}, &DesShardList{},
		&DesContainer{}, &DesContainerList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
