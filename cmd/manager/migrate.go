package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/datavision/des/internal/catalog"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("manager migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsnFile := fs.String("dsn-file", "", "file holding the catalog's PostgreSQL DSN (default: env DES_CATALOG_DSN)")
	def := catalog.DefaultMapping("objects", "-")
	m := &def
	fs.StringVar(&m.Table, "table", m.Table, "catalog table, optionally schema.table")
	fs.StringVar(&m.ID, "id-column", m.ID, "id column")
	fs.StringVar(&m.Shard, "shard-column", m.Shard, "shard column")
	fs.StringVar(&m.Status, "status-column", m.Status, "status column")
	fs.StringVar(&m.Ready, "ready-value", m.Ready, "status value of rows ready to pack")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	dsn, err := readDSN(*dsnFile)
	if err != nil {
		fmt.Fprintln(stderr, "manager migrate:", err)
		return 2
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		fmt.Fprintln(stderr, "manager migrate: connect:", err)
		return 1
	}
	defer pool.Close()
	// The migration indexes the id, shard and status columns; the others do not matter to it.
	c, err := catalog.New(pool, *m)
	if err == nil {
		err = c.Migrate(ctx)
	}
	if err != nil {
		fmt.Fprintln(stderr, "manager migrate:", err)
		return 1
	}
	fmt.Fprintf(stdout, "catalog %s migrated\n", m.Table)
	return 0
}

func readDSN(file string) (string, error) {
	if file == "" {
		if dsn := os.Getenv("DES_CATALOG_DSN"); dsn != "" {
			return dsn, nil
		}
		return "", fmt.Errorf("no DSN: pass --dsn-file or set DES_CATALOG_DSN")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read DSN: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
