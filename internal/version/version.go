// Package version is the version DES's binaries report (PLACEHOLDER: the des CLI work replaces this).
package version

// Version is set at build time with -ldflags -X.
var Version = "dev"

// String is the version.
func String() string { return Version }
