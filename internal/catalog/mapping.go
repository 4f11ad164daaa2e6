// Package catalog is DES's access to the source catalog: a table in PostgreSQL or MySQL/MariaDB with
// one row per source object. It implements the row side of docs/protocol.md: the idempotent migration of DES-owned columns,
// claims with FOR UPDATE SKIP LOCKED, and the guarded commit and roll-back statements that make the
// database the arbiter between packer and controller.
package catalog

import (
	"fmt"
	"regexp"
	"strings"
)

// Mapping says where DES finds its data in the user's table.
type Mapping struct {
	// Table, optionally schema-qualified.
	Table string
	// Column names. Bucket may be empty when every object is in DefaultBucket.
	ID, Bucket, Key, Size, Status, DesName, Shard, CreatedAt string
	// DefaultBucket is used when Bucket is empty.
	DefaultBucket string
	// Status values.
	Ready, Claimed, Packed, Failed string
	// Where is the source filter (see where.go): only matching rows are named, claimed, counted and
	// judged by the fill policy. Empty matches every row.
	Where string
}

// DefaultMapping is the mapping of a DesSource that sets nothing but the table.
func DefaultMapping(table, bucket string) Mapping {
	return Mapping{
		Table: table, ID: "id", Key: "source_key", Size: "size", Status: "status", DesName: "des_name",
		Shard: "shard", CreatedAt: "created_at", DefaultBucket: bucket,
		Ready: "ready", Claimed: "claimed", Packed: "packed", Failed: "failed",
	}
}

var identRe = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Validate rejects names that are not plain lower-case SQL identifiers, so that no mapping can inject SQL.
func (m Mapping) Validate() error {
	parts := strings.Split(m.Table, ".")
	if len(parts) > 2 {
		return fmt.Errorf("table %q: at most schema.table", m.Table)
	}
	for _, p := range parts {
		if !identRe.MatchString(p) {
			return fmt.Errorf("table %q: %q is not a lower-case SQL identifier", m.Table, p)
		}
	}
	for name, col := range m.requiredColumns() {
		if !identRe.MatchString(col) {
			return fmt.Errorf("column %s = %q is not a lower-case SQL identifier", name, col)
		}
	}
	if m.Bucket == "" && m.DefaultBucket == "" {
		return fmt.Errorf("neither a bucket column nor a default bucket is set")
	}
	for name, v := range map[string]string{"ready": m.Ready, "claimed": m.Claimed, "packed": m.Packed, "failed": m.Failed} {
		if v == "" {
			return fmt.Errorf("status value %s is empty", name)
		}
	}
	if len(map[string]bool{m.Ready: true, m.Claimed: true, m.Packed: true, m.Failed: true}) != 4 {
		return fmt.Errorf("status values ready, claimed, packed and failed must all differ")
	}
	_, err := m.ParseWhere()
	return err
}

// FilterColumns are the columns a source filter may use: the mapped id, bucket (when mapped), key,
// size and creation time. Status, DES name and shard are DES's state, not the user's selection.
func (m Mapping) FilterColumns() []string {
	cols := []string{m.ID}
	if m.Bucket != "" {
		cols = append(cols, m.Bucket)
	}
	return append(cols, m.Key, m.Size, m.CreatedAt)
}

// ParseWhere parses the mapping's source filter.
func (m Mapping) ParseWhere() (Where, error) { return ParseWhere(m.Where, m.FilterColumns()) }

// requiredColumns maps a role to the user's column name; the bucket column only when mapped.
func (m Mapping) requiredColumns() map[string]string {
	cols := map[string]string{
		"id": m.ID, "key": m.Key, "size": m.Size, "status": m.Status,
		"desName": m.DesName, "shard": m.Shard, "createdAt": m.CreatedAt,
	}
	if m.Bucket != "" {
		cols["bucket"] = m.Bucket
	}
	return cols
}

// schemaAndTable splits the table into its schema ("" when unqualified) and name.
func (m Mapping) schemaAndTable() (string, string) {
	if i := strings.IndexByte(m.Table, '.'); i >= 0 {
		return m.Table[:i], m.Table[i+1:]
	}
	return "", m.Table
}

// table is the catalog table, quoted for the catalog's dialect.
func (c *Catalog) table() string { return c.db.d.ident(strings.Split(c.m.Table, ".")...) }

// containers is the des_containers table, in the catalog table's schema.
func (c *Catalog) containers() string { return c.desTable("des_containers") }

// fences is the des_container_fences table, in the catalog table's schema (see fence.go).
func (c *Catalog) fences() string { return c.desTable("des_container_fences") }

// desTable names a DES-owned table in the catalog table's schema.
func (c *Catalog) desTable(name string) string {
	if schema, _ := c.m.schemaAndTable(); schema != "" {
		return c.db.d.ident(schema, name)
	}
	return c.db.d.ident(name)
}

// col quotes a column name.
func (c *Catalog) col(name string) string { return c.db.d.ident(name) }

// cols quotes column names into a list.
func (c *Catalog) cols(names ...string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = c.col(n)
	}
	return strings.Join(quoted, ", ")
}
