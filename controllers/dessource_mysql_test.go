package controllers

import (
	"fmt"
	"testing"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/test/testworld"
)

// mysqlSource is realSource for a MySQL catalog.
func (e *testEnv) mysqlSource(name, dsn, bucket string) *desv1.DesSource {
	src := e.realSource(name, dsn, bucket)
	src.Spec.Catalog.Driver = string(catalog.MySQL)
	return src
}

// TestMySQLSourceReadyExplainsWhatIsWrong: a MySQL catalog is checked as precisely as a PostgreSQL
// one (TestSourceReadyExplainsWhatIsWrong), against the test world's MariaDB, plus what only MySQL can
// get wrong: a DSN in another driver's format and a table whose engine has no row locks.
func TestMySQLSourceReadyExplainsWhatIsWrong(t *testing.T) {
	maria := testworld.Maria(t)
	cases := []struct {
		name          string
		setup         func(e *testEnv) *desv1.DesSource
		reason, inMsg string
	}{
		{"a PostgreSQL DSN for a mysql source", func(e *testEnv) *desv1.DesSource {
			return e.mysqlSource("src", "postgres://des:s3cret@127.0.0.1:5432/db", "bucket")
		}, "InvalidDSN", "user:password@tcp(host:3306)/database"},
		{"nothing listens", func(e *testEnv) *desv1.DesSource {
			return e.mysqlSource("src", "des:s3cret@tcp(127.0.0.1:1)/db?timeout=2s", "bucket")
		}, "DatabaseUnreachable", "cannot reach the catalog database"},
		{"a password the server echoes back", func(e *testEnv) *desv1.DesSource {
			// The password is the user too: "Access denied for user 's3cret'" quotes it, the status must not.
			return e.mysqlSource("src", fmt.Sprintf("s3cret:s3cret@tcp(127.0.0.1:%d)/mysql", maria.Port), "bucket")
		}, "DatabaseUnreachable", "Access denied"},
		{"unknown database", func(e *testEnv) *desv1.DesSource {
			return e.mysqlSource("src", fmt.Sprintf("root@tcp(127.0.0.1:%d)/no_such_db", maria.Port), "bucket")
		}, "DatabaseUnreachable", "no_such_db"},
		{"missing table", func(e *testEnv) *desv1.DesSource {
			db := testworld.NewCatalogDB(e.t, catalog.MySQL)
			return e.mysqlSource("src", db.DSN, testworld.S3Store(e.t).NewBucket(e.t))
		}, "TableNotFound", "catalog table does not exist: objects"},
		{"missing column", func(e *testEnv) *desv1.DesSource {
			db := testworld.NewCatalogDB(e.t, catalog.MySQL)
			db.Exec(e.t, `CREATE TABLE objects (id BIGINT AUTO_INCREMENT PRIMARY KEY, source_key VARCHAR(512) NOT NULL,
				status VARCHAR(32), des_name VARCHAR(255), shard INT, created_at DATETIME(6) NOT NULL)`)
			src := e.mysqlSource("src", db.DSN, testworld.S3Store(e.t).NewBucket(e.t))
			src.Spec.Catalog.AllowMigration = true
			return src
		}, "ColumnNotFound", "size (columns.size)"},
		{"DES columns missing and migration not allowed", func(e *testEnv) *desv1.DesSource {
			db := testworld.NewCatalogDB(e.t, catalog.MySQL)
			db.CreateObjects(e.t, testworld.ObjectsTable{})
			return e.mysqlSource("src", db.DSN, testworld.S3Store(e.t).NewBucket(e.t))
		}, "ColumnNotFound", "des_container (DES-owned: run `manager migrate` or set catalog.allowMigration)"},
		{"a table without row locks", func(e *testEnv) *desv1.DesSource {
			db := testworld.NewCatalogDB(e.t, catalog.MySQL)
			db.Exec(e.t, `CREATE TABLE objects (id BIGINT AUTO_INCREMENT PRIMARY KEY, source_key VARCHAR(512) NOT NULL,
				size BIGINT NOT NULL, status VARCHAR(32), des_name VARCHAR(255), shard INT, created_at DATETIME(6) NOT NULL) ENGINE=MyISAM`)
			src := e.mysqlSource("src", db.DSN, testworld.S3Store(e.t).NewBucket(e.t))
			src.Spec.Catalog.AllowMigration = true // refused before any migration: nothing is changed
			return src
		}, "CatalogUnsupported", "uses the MyISAM engine"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkNotReady(t, tc.setup, tc.reason, tc.inMsg) })
	}
}
