package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/datavision/des/test/testworld"
)

// The migrate tests run against a real PostgreSQL, the read-service test against S3 and the API server;
// the layout tests need no server (servers start when a test first asks for them).
func TestMain(m *testing.M) {
	testworld.Main(m, testworld.Postgres|testworld.MariaDB|testworld.S3|testworld.Kube)
}

// TestSubcommandLayout: every subcommand answers --help and bad usage the same way and has the same
// logging flags; those that read the catalog take its DSN through the same flag.
func TestSubcommandLayout(t *testing.T) {
	readsCatalog := map[string]bool{"pack": true, "mark": true, "migrate": true}
	for name := range subcommands {
		cases := []struct {
			what     string
			args     []string
			wantCode int
			inStderr []string
		}{
			{"help", []string{name, "--help"}, 0, []string{"Usage of manager " + name, "-zap-log-level", "-zap-devel"}},
			{"unknown flag", []string{name, "--no-such-flag"}, 2, []string{"flag provided but not defined"}},
			{"positional argument", []string{name, "stray"}, 2, []string{"manager " + name + `: unexpected arguments ["stray"]`}},
		}
		if readsCatalog[name] {
			cases[0].inStderr = append(cases[0].inStderr, "-catalog-dsn-file", "DES_CATALOG_DSN")
		}
		for _, tc := range cases {
			t.Run(name+"/"+tc.what, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				if code := run(context.Background(), tc.args, &stdout, &stderr); code != tc.wantCode {
					t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.wantCode, stderr.String())
				}
				for _, want := range tc.inStderr {
					if !strings.Contains(stderr.String(), want) {
						t.Fatalf("stderr lacks %q:\n%s", want, stderr.String())
					}
				}
				if strings.Contains(stderr.String(), "-dsn-file") && !strings.Contains(stderr.String(), "-catalog-dsn-file") {
					t.Fatal("the old --dsn-file flag is back")
				}
			})
		}
	}
}
