package testworld

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

// Scheme returns a new scheme with the Kubernetes built-in types and DES's: what the API server of
// the test world serves by default, and what the tests' clients need.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s) // only fails on a conflicting registration, impossible here
	_ = desv1.AddToScheme(s)
	return s
}
