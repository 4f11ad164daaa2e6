package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datavision/des/internal/version"
)

func TestVersionCommand(t *testing.T) {
	want := "des " + version.String() + "\n"
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		if got := mustCLI(t, 0, args...); got != want {
			t.Errorf("des %s = %q, want %q", strings.Join(args, " "), got, want)
		}
	}
	mustCLI(t, 2, "version", "extra")
}

// buildDes builds this command into dir with extra go build arguments.
func buildDes(t testing.TB, dir string, args ...string) string {
	t.Helper()
	bin := filepath.Join(dir, "des")
	cmd := exec.Command("go", append(append([]string{"build", "-o", bin}, args...), ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// The way make build stamps a binary reaches des --version.
func TestVersionStampedByLdflags(t *testing.T) {
	bin := buildDes(t, t.TempDir(), "-ldflags", "-X github.com/datavision/des/internal/version.Version=v9.8.7-4-gabcdef0-dirty")
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || string(out) != "des v9.8.7-4-gabcdef0-dirty\n" {
		t.Fatalf("stamped binary printed %q, %v", out, err)
	}
}
