package version

import (
	"runtime/debug"
	"testing"
)

func TestResolve(t *testing.T) {
	info := func(v string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) { return &debug.BuildInfo{Main: debug.Module{Version: v}}, true }
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	for _, tc := range []struct {
		name, set string
		info      func() (*debug.BuildInfo, bool)
		want      string
	}{
		{"set at build time wins", "v1.2.3", info("v0.9.0"), "v1.2.3"},
		{"set to a describe string", "v1.2.3-4-gabcdef0-dirty", none, "v1.2.3-4-gabcdef0-dirty"},
		{"unset: module version", "dev", info("v0.9.0"), "v0.9.0"},
		{"empty: module version", "", info("v0.9.0"), "v0.9.0"},
		{"work tree build", "dev", info("(devel)"), "dev"},
		{"no build info", "dev", none, "dev"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolve(tc.set, tc.info); got != tc.want {
				t.Fatalf("resolve(%q) = %q, want %q", tc.set, got, tc.want)
			}
		})
	}
}

// cmd/des's TestVersionStampedByLdflags builds a binary the way make build does and checks the
// linker flag reaches Version.
