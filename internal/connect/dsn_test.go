package connect_test

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datavision/des/internal/connect"
)

func TestReadDSN(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := write("dsn", "  postgres://u:pw@db/cat\n")
	empty := write("empty", "")
	blank := write("blank", " \n\t\n")
	missing := filepath.Join(dir, "missing")
	cases := []struct {
		name     string
		file     string
		explicit bool
		env      string
		want     string
		wantErr  error
	}{
		{"explicit file", file, true, "", "postgres://u:pw@db/cat", nil},
		{"env only", missing, false, "host=env dbname=cat", "host=env dbname=cat", nil},
		{"env is trimmed", missing, false, "  host=env\n", "host=env", nil},
		{"explicit file beats env", file, true, "host=env", "postgres://u:pw@db/cat", nil},
		{"env beats the default file", file, false, "host=env", "host=env", nil},
		{"default file when env unset", file, false, "", "postgres://u:pw@db/cat", nil},
		{"neither", missing, false, "", "", connect.ErrNoDSN},
		{"blank env counts as unset", missing, false, " \t", "", connect.ErrNoDSN},
		{"blank env falls back to the file", file, false, " ", "postgres://u:pw@db/cat", nil},
		{"empty file", empty, true, "", "", connect.ErrEmptyDSN},
		{"whitespace file", blank, false, "", "", connect.ErrEmptyDSN},
		{"explicit missing file", missing, true, "host=env", "", os.ErrNotExist},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := connect.ReadDSN(tc.file, tc.explicit, tc.env)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr != nil) != (err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Fatalf("DSN = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestBindDSN checks the flag end to end: the name every subcommand shares, the default path, and
// that an explicit flag beats $DES_CATALOG_DSN.
func TestBindDSN(t *testing.T) {
	file := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(file, []byte("host=file"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, env string
		args      []string
		want      string
	}{
		{"flag", "", []string{"--catalog-dsn-file=" + file}, "host=file"},
		{"flag beats env", "host=env", []string{"--catalog-dsn-file", file}, "host=file"},
		{"env without flag", "host=env", nil, "host=env"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(connect.EnvCatalogDSN, tc.env)
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			src := connect.BindDSN(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			got, err := src.Read()
			if err != nil || got != tc.want {
				t.Fatalf("Read() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	connect.BindDSN(fs)
	if f := fs.Lookup("catalog-dsn-file"); f == nil || f.DefValue != "/var/run/des/catalog/dsn" {
		t.Fatalf("flag catalog-dsn-file = %+v, want default /var/run/des/catalog/dsn", f)
	}
	if t.Failed() || strings.Contains(fs.Lookup("catalog-dsn-file").Usage, "host=") {
		t.Fatal("usage must not show a DSN")
	}
}
