// Package version tells which build of DES is running. It imports nothing of Kubernetes, so the
// des CLI and the kubectl plugin can use it without the dependencies of the operator.
package version

import "runtime/debug"

// Version is set at build time:
//
//	go build -ldflags "-X github.com/datavision/des/internal/version.Version=v1.2.3" ./cmd/des
//
// (make build passes git describe). Left at "dev", String falls back to the module version the
// go command recorded, which go install module@version sets.
var Version = "dev"

// String returns Version, or when it was not set at build time the main module's version from
// the build info, or "dev".
func String() string {
	return resolve(Version, debug.ReadBuildInfo)
}

// resolve is String with the build info reader as a parameter, so the fallback is testable.
func resolve(v string, buildInfo func() (*debug.BuildInfo, bool)) string {
	if v != "" && v != "dev" {
		return v
	}
	// "(devel)" is what a build from a work tree records: no better than "dev".
	if bi, ok := buildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
