package devstack

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/connect"
	"github.com/datavision/des/internal/naming"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/test/testworld"
)

// Seed describes the source data the demo created: a bucket of small files and the catalog table
// listing them, already named and ready to pack.
type Seed struct {
	Namespace     string
	SourceBucket  string
	ArchiveBucket string
	// Driver is the catalog database's; DSN connects to it as its owner.
	Driver catalog.Driver
	DSN    string
	// ReaderDSN connects as a role that may only read the catalog (the reader sidecar's).
	ReaderDSN string
	// Files maps each DES name to the SHA-256 of its content.
	Files map[string][32]byte
	// Unnamed maps the source keys of rows seeded without a DES name (the marker names them) to the
	// SHA-256 of their content; ResolveNames moves them into Files once they are named.
	Unnamed map[string][32]byte
	Bytes   int64

	opts  SeedOptions
	db    *connect.Pool
	gen   *naming.Generator
	rng   *rand.Rand
	store *objstore.Store
	next  int
}

// Total is the number of catalog rows seeded.
func (s *Seed) Total() int { return len(s.Files) + len(s.Unnamed) }

// ResolveNames reads the DES names the marker gave the unnamed rows and moves them into Files.
func (s *Seed) ResolveNames(ctx context.Context) error {
	q := testworld.Placeholders(s.Driver, `SELECT des_name FROM objects WHERE source_key = $1`)
	for key, sum := range s.Unnamed {
		var name *string
		if err := s.db.DB.SQL().QueryRowContext(ctx, q, key).Scan(&name); err != nil {
			return fmt.Errorf("name of %s: %w", key, err)
		}
		if name == nil {
			return fmt.Errorf("row %s is still unnamed", key)
		}
		s.Files[*name] = sum
		delete(s.Unnamed, key)
	}
	return nil
}

// DB is a pool on the catalog database (as its owner), open until the stack closes.
func (s *Seed) DB() *connect.Pool { return s.db }

// SeedOptions size the source data.
type SeedOptions struct {
	Namespace string
	Files     int
	ShardBits int
	Prefix    string
	// BigEvery makes every n-th file larger than BigSize (0: none).
	BigEvery int
	BigSize  int
	// Unnamed rows (the last ones) have no DES name, shard or status: the marker must name them.
	Unnamed int
	Seed    uint64
}

// SeedSource creates the source bucket with opts.Files objects (mostly 1–16 KiB, some empty, some
// big), the archive bucket, a catalog database whose table lists the objects as ready rows, and the
// Secrets the samples name: catalog-dsn, catalog-readonly, scans-s3, archive-s3 and archive-s3-readonly.
func (s *Stack) SeedSource(ctx context.Context, opts SeedOptions) (*Seed, error) {
	seed := &Seed{Namespace: opts.Namespace, SourceBucket: "scans", ArchiveBucket: "archive",
		Files: map[string][32]byte{}, Unnamed: map[string][32]byte{}}
	s3 := s.S3.Client()
	for _, b := range []string{seed.SourceBucket, seed.ArchiveBucket} {
		if _, err := s3.CreateBucket(ctx, createBucket(b)); err != nil && !alreadyOwned(err) {
			return nil, fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	seed.Driver = s.Opts.Catalog
	dsn, err := s.Catalog.CreateDatabase(ctx)
	if err != nil {
		return nil, err
	}
	seed.DSN = dsn
	if seed.db, err = connect.Open(ctx, seed.Driver, dsn, connect.PoolOptions{}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, seed.db.Close)
	// A user's table: DES's columns come from the migration the sample DesSource allows.
	ddl := testworld.ObjectsDDL(seed.Driver, testworld.ObjectsTable{Extra: []string{"UNIQUE (des_name)"}})
	if _, err := seed.db.DB.SQL().ExecContext(ctx, ddl); err != nil {
		return nil, fmt.Errorf("create catalog table: %w", err)
	}
	if seed.ReaderDSN, err = createReadOnlyRole(ctx, seed.db.DB.SQL(), seed.Driver, dsn); err != nil {
		return nil, err
	}
	gen, err := naming.NewGenerator(naming.Config{Prefix: opts.Prefix, Node: 1})
	if err != nil {
		return nil, err
	}
	seed.gen, seed.opts, seed.store = gen, opts, objstore.NewFromAPI(s3)
	seed.rng = rand.New(rand.NewPCG(opts.Seed, 7))
	if err := seed.add(ctx, opts.Files-opts.Unnamed, true); err != nil {
		return nil, err
	}
	if err := seed.add(ctx, opts.Unnamed, false); err != nil {
		return nil, err
	}
	return seed, s.createSecrets(ctx, seed)
}

// AddFiles puts n more source objects and lists them as named, ready rows, as an application that
// keeps ingesting would. It must not run concurrently with other uses of the Seed.
func (s *Seed) AddFiles(ctx context.Context, n int) error { return s.add(ctx, n, true) }

// add puts n source objects and inserts their catalog rows, named and ready, or without name, shard
// and status for the marker. The seed counts the files only once their rows are in: a failed insert
// (a database restart) leaves it as it was, and the caller may simply try again.
func (s *Seed) add(ctx context.Context, n int, named bool) (err error) {
	// The objects are put before their rows go in: if the insert fails, the next try puts the same
	// keys again (overwriting them), so a catalog outage leaves no source object without its row.
	first := s.next
	defer func() {
		if err != nil {
			s.next = first
		}
	}()
	rows := make([]testworld.ObjectRow, 0, n)
	files, unnamed, bytes := map[string][32]byte{}, map[string][32]byte{}, int64(0)
	for range n {
		i := s.next
		s.next++
		data := fileContent(s.rng, i, s.opts)
		key := fmt.Sprintf("incoming/%s/%06d.bin", time.Now().UTC().Format("2006/01/02"), i)
		if _, err := s.store.Put(ctx, s.SourceBucket, key, data, objstore.PutOptions{}); err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
		bytes += int64(len(data))
		if !named {
			unnamed[key] = sha256.Sum256(data)
			rows = append(rows, testworld.ObjectRow{Key: key, Size: int64(len(data)), NullStatus: true})
			continue
		}
		name, err := s.gen.New()
		if err != nil {
			return err
		}
		shard, err := naming.Shard(name, s.opts.ShardBits)
		if err != nil {
			return err
		}
		files[name] = sha256.Sum256(data)
		rows = append(rows, testworld.ObjectRow{Key: key, Size: int64(len(data)), Status: "ready", Name: name, Shard: testworld.Shard(int32(shard))})
	}
	if err := testworld.InsertObjects(ctx, s.db.DB.SQL(), s.Driver, "", rows); err != nil {
		// No row, no object: the ingest may stop before its next try would overwrite these keys.
		for _, r := range rows {
			_ = s.store.Delete(ctx, s.SourceBucket, r.Key)
		}
		return fmt.Errorf("fill catalog: %w", err)
	}
	maps.Copy(s.Files, files)
	maps.Copy(s.Unnamed, unnamed)
	s.Bytes += bytes
	return nil
}

func fileContent(rng *rand.Rand, i int, opts SeedOptions) []byte {
	var n int
	switch {
	case i%97 == 13:
		n = 0
	case opts.BigEvery > 0 && i%opts.BigEvery == opts.BigEvery-1:
		n = opts.BigSize + rng.IntN(4096)
	default:
		n = 1024 + rng.IntN(15*1024)
	}
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(rng.Uint32())
	}
	return b
}

func (s *Stack) createSecrets(ctx context.Context, seed *Seed) error {
	creds := map[string]string{"AWS_ACCESS_KEY_ID": s.S3.AccessKey, "AWS_SECRET_ACCESS_KEY": s.S3.SecretKey}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: seed.Namespace}}
	if err := s.Client.Create(ctx, ns); err != nil && !isAlreadyExists(err) {
		return err
	}
	// The packer ServiceAccount and its RoleBinding are the controller's to create; the reader
	// sidecar sample reads with its own (here: the same) credentials.
	for name, data := range map[string]map[string]string{
		"catalog-dsn":         {"dsn": seed.DSN},
		"catalog-readonly":    {"dsn": seed.ReaderDSN},
		"scans-s3":            creds,
		"archive-s3":          creds,
		"archive-s3-readonly": creds,
	} {
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: seed.Namespace}, StringData: data}
		if err := s.Client.Create(ctx, secret); err != nil && !isAlreadyExists(err) {
			return fmt.Errorf("create Secret %s: %w", name, err)
		}
	}
	return nil
}

// createReadOnlyRole makes the reader sidecar's catalog role, as config/samples/reader-sidecar-pod.yaml
// tells users to: SELECT on the catalog table and on the tables DES's migration creates later, nothing
// else (PostgreSQL: default privileges of the catalog's owner; MySQL: SELECT on the database, since it
// grants on a table only once the table exists). It returns the role's DSN for the same database.
func createReadOnlyRole(ctx context.Context, db *sql.DB, driver catalog.Driver, dsn string) (string, error) {
	var stmts []string
	var roleDSN string
	switch driver {
	case catalog.MySQL:
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return "", fmt.Errorf("catalog DSN: %w", err)
		}
		user := "des_reader_" + cfg.DBName
		stmts = []string{
			fmt.Sprintf("CREATE USER '%s'@'%%'", user),
			fmt.Sprintf("GRANT SELECT ON %s.* TO '%s'@'%%'", testworld.Ident(catalog.MySQL, cfg.DBName), user),
		}
		cfg.User, cfg.Passwd = user, ""
		roleDSN = cfg.FormatDSN()
	default:
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("catalog DSN: %w", err)
		}
		owner := u.User.Username()
		role := "des_reader_" + strings.TrimPrefix(u.Path, "/")
		stmts = []string{
			fmt.Sprintf(`CREATE ROLE %s LOGIN`, pgx.Identifier{role}.Sanitize()),
			fmt.Sprintf(`GRANT SELECT ON objects TO %s`, pgx.Identifier{role}.Sanitize()),
			fmt.Sprintf(`ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA public GRANT SELECT ON TABLES TO %s`,
				pgx.Identifier{owner}.Sanitize(), pgx.Identifier{role}.Sanitize()),
		}
		u.User = url.User(role)
		roleDSN = u.String()
	}
	for _, stmt := range stmts {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return "", fmt.Errorf("read-only catalog role: %s: %w", stmt, err)
		}
	}
	return roleDSN, nil
}

// SourceObjects counts the objects left in the source bucket.
func (s *Seed) SourceObjects(ctx context.Context) (int, error) {
	n := 0
	for _, err := range s.store.List(ctx, s.SourceBucket, objstore.ListOptions{}) {
		if err != nil {
			return n, fmt.Errorf("list source bucket %s: %w", s.SourceBucket, err)
		}
		n++
	}
	return n, nil
}
