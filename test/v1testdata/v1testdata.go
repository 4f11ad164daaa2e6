// Package v1testdata finds the DES v1 reference archives and naming vectors (shared/testdata/des-v1,
// written by the original implementation) for tests, and describes their manifests. It uses only the
// standard library, so the format's tests stay free of other dependencies.
package v1testdata

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Manifest is CASE.json: what a reader must return for CASE.des.
type Manifest struct {
	Archive  string    `json:"archive"`
	Files    []File    `json:"files"`
	External *External `json:"external"`
}

// File is one file of a reference archive.
type File struct {
	Name     string          `json:"name"`
	Size     int64           `json:"size"`
	SHA256   string          `json:"sha256"`
	Meta     json.RawMessage `json:"meta"`
	External bool            `json:"external"`
}

// External says where an archive's external (_bigFiles) payloads are.
type External struct {
	Bucket    string `json:"bucket"`
	Prefix    string `json:"prefix"`
	Threshold int64  `json:"threshold"`
	Dir       string `json:"dir"`
}

// Dir locates the reference data: $DES_V1_TESTDATA, else <module root>/../shared/testdata/des-v1.
// Missing data fails the test: compatibility is the point of these tests and must never skip.
func Dir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("DES_V1_TESTDATA")
	if d == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatalf("v1 testdata: %v; set DES_V1_TESTDATA to the des-v1 testdata directory", err)
		}
		d = filepath.Join(root, "..", "shared", "testdata", "des-v1")
	}
	if _, err := os.Stat(filepath.Join(d, "README.md")); err != nil {
		t.Fatalf("v1 testdata not found at %s: %v; set DES_V1_TESTDATA to the des-v1 testdata directory", d, err)
	}
	return d
}

// moduleRoot walks up from the working directory (go test runs in the package's) to go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
