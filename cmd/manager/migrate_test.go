package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/connect"
	"github.com/datavision/des/test/testworld"
)

const objectsTable = `CREATE TABLE objects (id bigserial PRIMARY KEY, source_key text NOT NULL, size bigint NOT NULL,
	status text, des_name text, shard integer, created_at timestamptz NOT NULL DEFAULT now())`

// TestMigrateReadsTheDSNLikeEverySubcommand runs `manager migrate` on a real catalog with the DSN
// from each source, and checks that a failure keeps the password out of the log.
func TestMigrateReadsTheDSNLikeEverySubcommand(t *testing.T) {
	pg := testworld.PG(t)
	dir := t.TempDir()
	writeFile := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Trust authentication ignores passwords, so the password doubles as the role: the server's
	// "role does not exist" would quote it.
	echoed := fmt.Sprintf("postgres://Ech0Pw:Ech0Pw@127.0.0.1:%d/postgres?sslmode=disable", pg.Port)
	cases := []struct {
		name     string
		fileDSN  string // written to a file passed with --catalog-dsn-file; none when ""
		env      string
		wantCode int
		inStderr string
		migrated bool
	}{
		{"flag", "db", "", 0, "", true},
		{"environment", "", "db", 0, "", true},
		{"flag beats environment", "db", "postgres://nobody@127.0.0.1:1/none", 0, "", true},
		{"neither", "", "", 2, connect.ErrNoDSN.Error(), false},
		{"a failure keeps the password out", "", echoed, 1, "migration failed", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pool, dsn := pg.NewDatabase(t)
			if _, err := pool.Exec(context.Background(), objectsTable); err != nil {
				t.Fatal(err)
			}
			args := []string{"migrate", "--table=objects"}
			if tc.fileDSN != "" {
				args = append(args, "--catalog-dsn-file="+writeFile(tc.name, dsn))
			}
			env := tc.env
			if env == "db" {
				env = dsn
			}
			t.Setenv(connect.EnvCatalogDSN, env)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), args, &stdout, &stderr)
			if code != tc.wantCode || !strings.Contains(stderr.String(), tc.inStderr) {
				t.Fatalf("exit %d, want %d with %q; stderr:\n%s", code, tc.wantCode, tc.inStderr, stderr.String())
			}
			if strings.Contains(stderr.String(), "Ech0Pw") {
				t.Fatalf("the log reveals the password:\n%s", stderr.String())
			}
			var n int
			err := pool.QueryRow(context.Background(),
				`SELECT count(*) FROM information_schema.columns WHERE table_name = 'objects' AND column_name = 'des_container'`).Scan(&n)
			if err != nil || (n == 1) != tc.migrated {
				t.Fatalf("des_container columns: %d (%v), want migrated=%v", n, err, tc.migrated)
			}
		})
	}
}

// TestMigrateMySQL: `manager migrate --driver=mysql` adds DES's columns and tables to a MariaDB
// catalog, twice without harm; a wrong driver name is a usage error.
func TestMigrateMySQL(t *testing.T) {
	db := testworld.NewCatalogDB(t, catalog.MySQL)
	db.CreateObjects(t, testworld.ObjectsTable{})
	t.Setenv(connect.EnvCatalogDSN, db.DSN)
	for i := range 2 {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"migrate", "--driver=mysql", "--table=objects"}, &stdout, &stderr); code != 0 {
			t.Fatalf("run %d: exit %d; stderr:\n%s", i+1, code, stderr.String())
		}
	}
	var n int
	db.QueryRow(t, `SELECT count(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'objects' AND column_name = 'des_container'`, nil, &n)
	if n != 1 {
		t.Fatalf("des_container columns: %d, want 1", n)
	}
	db.QueryRow(t, `SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN ('des_containers', 'des_container_fences')`, nil, &n)
	if n != 2 {
		t.Fatalf("%d of DES's tables, want 2", n)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "--driver=oracle", "--table=objects"}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), `unknown catalog driver "oracle"`) {
		t.Fatalf("--driver=oracle: exit %d; stderr:\n%s", code, stderr.String())
	}
}
