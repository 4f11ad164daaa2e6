package main

import (
	"context"
	"fmt"
	"io"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/cli"
	"github.com/datavision/des/internal/connect"
)

// runMigrate is `manager migrate`: it adds the DES-owned columns, indexes and table to a catalog.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := cli.New("migrate", stderr)
	dsnSource := connect.BindDSN(c.Flags)
	def := catalog.DefaultMapping("objects", "-")
	m := &def
	driver := c.Flags.String("driver", string(catalog.Postgres), "catalog database: postgres or mysql (MySQL, MariaDB)")
	c.Flags.StringVar(&m.Table, "table", m.Table, "catalog table, optionally schema.table")
	c.Flags.StringVar(&m.ID, "id-column", m.ID, "id column")
	c.Flags.StringVar(&m.Shard, "shard-column", m.Shard, "shard column")
	c.Flags.StringVar(&m.Status, "status-column", m.Status, "status column")
	c.Flags.StringVar(&m.Ready, "ready-value", m.Ready, "status value of rows ready to pack")
	log, code, ok := c.Parse(args)
	if !ok {
		return code
	}
	dsn, err := dsnSource.Read()
	if err != nil {
		return c.Usagef("%v", err)
	}
	d, err := catalog.ParseDriver(*driver)
	if err != nil {
		return c.Usagef("--driver: %v", err)
	}
	if err := migrate(ctx, d, dsn, *m); err != nil {
		log.Error(err, "migration failed", "table", m.Table)
		return cli.ExitFailure
	}
	fmt.Fprintf(stdout, "catalog %s migrated\n", m.Table)
	return cli.ExitOK
}

// migrate indexes the id, shard and status columns; the mapping's other columns do not matter to it.
func migrate(ctx context.Context, driver catalog.Driver, dsn string, m catalog.Mapping) error {
	pool, err := connect.Open(ctx, driver, dsn, connect.PoolOptions{})
	if err != nil {
		return err
	}
	defer pool.Close()
	cat, err := catalog.New(pool.DB, m)
	if err != nil {
		return err
	}
	return connect.RedactError(cat.Migrate(ctx), dsn)
}
