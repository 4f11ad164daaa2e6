package reader_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/reader"
	"github.com/datavision/des/test/testworld"
)

// catalogWorld is a catalog (a real PostgreSQL or MariaDB database) whose rows are packed into
// containers in the real S3 server, committed with their placements exactly as the packer commits them.
type catalogWorld struct {
	t      testing.TB
	bucket string
	db     *testworld.CatalogDB
	cat    *catalog.Catalog
	// readOnly is the same catalog through a role that may only SELECT, as the reader gets it.
	readOnly *catalog.Catalog
	// revoke takes the read-only role's SELECT away again.
	revoke []string
	files  map[string][]byte // name → payload
	keyOf  map[string]string // name → container key
}

func newCatalogWorld(t testing.TB, d catalog.Driver) *catalogWorld {
	t.Helper()
	db := testworld.NewCatalogDB(t, d)
	db.CreateObjects(t, testworld.ObjectsTable{})
	cat := db.NewCatalog(t, catalog.DefaultMapping("objects", "source"))
	if err := cat.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ro, revoke := readOnlyCatalog(t, db)
	return &catalogWorld{t: t, bucket: testworld.S3Store(t).NewBucket(t), db: db, cat: cat,
		readOnly: ro, revoke: revoke, files: map[string][]byte{}, keyOf: map[string]string{}}
}

// readOnlyCatalog makes the role docs/reader.md tells users to make (SELECT on the catalog table and
// des_containers, nothing else) and returns the catalog seen through it, with the statements that
// revoke its SELECT.
func readOnlyCatalog(t testing.TB, db *testworld.CatalogDB) (*catalog.Catalog, []string) {
	t.Helper()
	var grant, revoke []string
	var dsn string
	switch db.Driver {
	case catalog.MySQL:
		cfg, err := mysql.ParseDSN(db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		// Users are the server's, not the database's: the database's name keeps them apart. The
		// server skips name resolution, so the reader's host is its address.
		user := "'reader_" + cfg.DBName + "'@'127.0.0.1'"
		grant = []string{"CREATE USER " + user}
		for _, table := range []string{"objects", "des_containers"} {
			grant = append(grant, "GRANT SELECT ON "+cfg.DBName+"."+table+" TO "+user)
			revoke = append(revoke, "REVOKE SELECT ON "+cfg.DBName+"."+table+" FROM "+user)
		}
		cfg.User, cfg.Passwd = "reader_"+cfg.DBName, ""
		dsn = cfg.FormatDSN()
	default:
		u, err := url.Parse(db.DSN)
		if err != nil {
			t.Fatal(err)
		}
		role := "reader_" + strings.TrimPrefix(u.Path, "/")
		grant = []string{"CREATE ROLE " + role + " LOGIN", "GRANT SELECT ON objects, des_containers TO " + role}
		revoke = []string{"REVOKE SELECT ON objects, des_containers FROM " + role}
		u.User = url.User(role)
		dsn = u.String()
	}
	for _, stmt := range grant {
		db.Exec(t, stmt)
	}
	cat, err := catalog.New(testworld.OpenCatalogDB(t, db.Driver, dsn), catalog.DefaultMapping("objects", "source"))
	if err != nil {
		t.Fatal(err)
	}
	// The role really is read-only: DES's own statements are refused.
	if err := cat.Migrate(context.Background()); err == nil {
		t.Fatal("the read-only role could migrate the catalog")
	}
	return cat, revoke
}

// pack writes files into a container written on day (big ones external) and commits their rows.
func (cw *catalogWorld) pack(s *objstore.Store, day time.Time, id string, files []file) string {
	t, ctx := cw.t, context.Background()
	t.Helper()
	key := shardKey(day, testShard, id)
	archive := putContainer(t, s, cw.bucket, key, files, extThreshold)
	for _, f := range files {
		cw.db.Exec(t, `INSERT INTO objects (source_key, size, status, des_name, shard) VALUES ($1, $2, 'ready', $3, $4)`,
			"src/"+f.name, len(f.data), f.name, testShard)
		cw.files[f.name], cw.keyOf[f.name] = f.data, key
	}
	rows, err := cw.cat.Claim(ctx, testShard, id, len(files))
	if err != nil || len(rows) != len(files) {
		t.Fatalf("claim %d rows: %d, %v", len(files), len(rows), err)
	}
	r, err := desformat.NewReader(bytes.NewReader(archive), int64(len(archive)), desformat.ReaderOptions{External: s.Blobs(cw.bucket, objstore.UploadOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	locs, err := r.Locations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := cw.cat.ClaimedIDs(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	placements, err := catalog.PlaceClaimed(locs, ids)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := r.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = cw.cat.Commit(ctx, catalog.Record{Key: key, Container: id, Bucket: cw.bucket, Source: "src", Shard: testShard,
		Day: day, Files: sum.Files, Bytes: sum.PayloadBytes, ObjectSize: sum.Size, PayloadChecksum: sum.PayloadChecksum(),
		IndexChecksum: sum.IndexChecksum(), Writer: "test", Placements: placements})
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func (cw *catalogWorld) exec(sql string, args ...any) {
	cw.t.Helper()
	cw.db.Exec(cw.t, sql, args...)
}

// catalogFixture packs a container on the names' day and one five days later (a backlog: beyond any
// look-ahead window), with small, empty, mid-sized and external files.
func catalogFixture(t testing.TB, d catalog.Driver, s *objstore.Store) (*catalogWorld, []string, []string) {
	t.Helper()
	cw := newCatalogWorld(t, d)
	names := desNames(t, 26, testShard, 9)
	early, late := names[:20], names[20:]
	var files []file
	for i, n := range early {
		size := 1000 + i*37
		switch i {
		case 3:
			size = 0
		case 4:
			size = extThreshold - 1
		case 5:
			size = extThreshold + 4096 // external
		}
		files = append(files, file{name: n, data: randomBytes(size, uint64(500+i))})
	}
	cw.pack(s, testDay.Time(), "c00000000000000e1", files)
	cw.pack(s, testDay.Time().AddDate(0, 0, 5), "c00000000000000e2", desFiles(late, 700))
	for i, n := range late {
		cw.files[n] = randomBytes(1000+i, 700+uint64(i))
	}
	return cw, early, late
}

// TestReadByNameFromCatalogIsOneRequest is issue 13's measure: a cold read by name costs exactly one
// S3 request (no LIST, no index) and returns the exact bytes with headers saying where they are; a
// warm read costs one too; HEAD costs none; a name packed days after its own day is found the same
// way; a name the catalog does not have packed is a 404 without any request.
func TestReadByNameFromCatalogIsOneRequest(t *testing.T) {
	testworld.ForEachDialect(t, testReadByNameFromCatalogIsOneRequest)
}

func testReadByNameFromCatalogIsOneRequest(t *testing.T, d catalog.Driver) {
	s := newStore(t)
	cw, early, late := catalogFixture(t, d, s)
	w := newWorld(t, cw.bucket, reader.Config{Catalog: cw.readOnly})
	for _, name := range []string{early[0], early[3], early[4], early[5], late[2]} {
		for _, temp := range []string{"cold", "warm"} {
			before := w.requests()
			resp, body := do(t, http.MethodGet, w.http.URL+"/v1/files/"+name, nil, nil)
			mustStatus(t, resp, body, http.StatusOK)
			want := cw.files[name]
			if !bytes.Equal(body, want) {
				t.Fatalf("%s (%s): %d bytes differ from the %d packed", name, temp, len(body), len(want))
			}
			wantRequests := int64(1)
			if len(want) == 0 {
				wantRequests = 0 // an empty payload needs no bytes
			}
			if got := w.requests() - before; got != wantRequests {
				t.Errorf("%s (%s read): %d S3 requests, want %d", name, temp, got, wantRequests)
			}
			h := resp.Header
			crc := fmt.Sprintf("%08x", crc32c(want))
			if h.Get("X-Des-Found-By") != "catalog" || h.Get("X-Des-Container") != cw.keyOf[name] ||
				h.Get("X-Des-Length") != strconv.Itoa(len(want)) || h.Get("X-Des-Crc32c") != crc || h.Get("ETag") != `"`+crc+`"` {
				t.Errorf("%s: headers %v", name, h)
			}
			if name == early[5] {
				if h.Get("X-Des-External-Key") == "" || h.Get("X-Des-Offset") != "" {
					t.Errorf("external %s: headers %v", name, h)
				}
			} else if h.Get("X-Des-Offset") == "" {
				t.Errorf("%s: no X-Des-Offset", name)
			}
		}
	}

	before := w.requests()
	resp, body := do(t, http.MethodHead, w.http.URL+"/v1/files/"+early[1], nil, nil)
	mustStatus(t, resp, body, http.StatusOK)
	if got := w.requests() - before; got != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(len(cw.files[early[1]])) {
		t.Errorf("HEAD: %d S3 requests, Content-Length %q", got, resp.Header.Get("Content-Length"))
	}

	resp, body = do(t, http.MethodGet, w.http.URL+"/v1/files/"+early[1], map[string]string{"Range": "bytes=10-19"}, nil)
	mustStatus(t, resp, body, http.StatusPartialContent)
	if !bytes.Equal(body, cw.files[early[1]][10:20]) {
		t.Errorf("range: got %q", body)
	}

	absent := desNames(t, 40, testShard, 9)[39]
	before = w.requests()
	resp, body = do(t, http.MethodGet, w.http.URL+"/v1/files/"+absent, nil, nil)
	mustStatus(t, resp, body, http.StatusNotFound)
	if got := w.requests() - before; got != 0 {
		t.Errorf("a name the catalog does not have cost %d S3 requests", got)
	}
}

// TestCatalogReadNeverServesBadBytes: bytes that do not match the CRC-32C the catalog recorded are
// never delivered whole: a small payload is refused before the headers (502), a streamed one is cut.
func TestCatalogReadNeverServesBadBytes(t *testing.T) {
	testworld.ForEachDialect(t, testCatalogReadNeverServesBadBytes)
}

func testCatalogReadNeverServesBadBytes(t *testing.T, d catalog.Driver) {
	s := newStore(t)
	cw, early, _ := catalogFixture(t, d, s)
	w := newWorld(t, cw.bucket, reader.Config{Catalog: cw.cat, VerifyBuffer: 2048})
	// IN rather than = ANY($1): MySQL has no arrays.
	cw.exec(`UPDATE objects SET des_crc32c = (des_crc32c + 1) % 4294967296 WHERE des_name IN ($1, $2, $3)`, early[0], early[4], early[5])

	resp, body := do(t, http.MethodGet, w.http.URL+"/v1/files/"+early[0], nil, nil)
	mustStatus(t, resp, body, http.StatusBadGateway)
	if bytes.Contains(body, cw.files[early[0]][:64]) {
		t.Fatal("the error body carries payload bytes")
	}
	for _, name := range []string{early[4], early[5]} { // streamed: internal above VerifyBuffer, external
		resp, err := http.Get(w.http.URL + "/v1/files/" + name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil || len(got) >= len(cw.files[name]) {
			t.Fatalf("%s: a payload failing its CRC was delivered: %d of %d bytes, error %v", name, len(got), len(cw.files[name]), err)
		}
	}
}

// TestCatalogUnreachableFallsBackToSearch: with the catalog down, the reader finds names by
// searching the archive, also in a container written five days after the name's day, counts the
// fallback in a metric, and still serves exact bytes.
func TestCatalogUnreachableFallsBackToSearch(t *testing.T) {
	testworld.ForEachDialect(t, testCatalogUnreachableFallsBackToSearch)
}

func testCatalogUnreachableFallsBackToSearch(t *testing.T, d catalog.Driver) {
	s := newStore(t)
	cw, early, late := catalogFixture(t, d, s)
	// A real pool on a port where nothing listens: every lookup fails to connect.
	down := testworld.OpenCatalogDB(t, d, unreachableDSN[d])
	deadCat, err := catalog.New(down, catalog.DefaultMapping("objects", "source"))
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, cw.bucket, reader.Config{Catalog: deadCat})
	for _, name := range []string{early[2], late[1]} {
		resp, body := do(t, http.MethodGet, w.http.URL+"/v1/files/"+name, nil, nil)
		mustStatus(t, resp, body, http.StatusOK)
		if !bytes.Equal(body, cw.files[name]) || resp.Header.Get("X-Des-Found-By") != "search" {
			t.Fatalf("%s: %d bytes, found by %q", name, len(body), resp.Header.Get("X-Des-Found-By"))
		}
	}
	resp, body := do(t, http.MethodPost, w.http.URL+"/v1/batch", nil, batchBody("", []string{early[0], late[0]}))
	mustStatus(t, resp, body, http.StatusOK)
	if resp.Header.Get(reader.HeaderFiles) != "2" {
		t.Fatalf("fallback batch: %s files", resp.Header.Get(reader.HeaderFiles))
	}
	resp, body = do(t, http.MethodGet, w.http.URL+"/metrics", nil, nil)
	mustStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(string(body), "des_reader_catalog_fallbacks_total 3") {
		t.Fatalf("metrics do not count 3 fallbacks:\n%s", grepLines(body, "fallback"))
	}
}

// TestReadOfRowPackedBeforePlacements: a row packed before placements were recorded names only its
// container: the reader opens that container (no search) and serves the file.
func TestReadOfRowPackedBeforePlacements(t *testing.T) {
	testworld.ForEachDialect(t, testReadOfRowPackedBeforePlacements)
}

func testReadOfRowPackedBeforePlacements(t *testing.T, d catalog.Driver) {
	s := newStore(t)
	cw, early, _ := catalogFixture(t, d, s)
	cw.exec(`UPDATE objects SET des_offset = NULL, des_length = NULL, des_crc32c = NULL WHERE des_name = $1`, early[7])
	w := newWorld(t, cw.bucket, reader.Config{Catalog: cw.cat})
	before := w.requests()
	resp, body := do(t, http.MethodGet, w.http.URL+"/v1/files/"+early[7], nil, nil)
	mustStatus(t, resp, body, http.StatusOK)
	if !bytes.Equal(body, cw.files[early[7]]) || resp.Header.Get("X-Des-Found-By") != "index" {
		t.Fatalf("%d bytes, found by %q", len(body), resp.Header.Get("X-Des-Found-By"))
	}
	if got := w.requests() - before; got != 2 { // the container's tail (index and meta), then the payload
		t.Errorf("%d S3 requests, want 2", got)
	}
}

// TestBatchFromCatalog: a batch over two containers costs one coalesced range per container plus one
// GET per external payload, with no listing and no index, and reports names the catalog lacks.
func TestBatchFromCatalog(t *testing.T) {
	testworld.ForEachDialect(t, testBatchFromCatalog)
}

func testBatchFromCatalog(t *testing.T, d catalog.Driver) {
	s := newStore(t)
	cw, early, late := catalogFixture(t, d, s)
	w := newWorld(t, cw.bucket, reader.Config{Catalog: cw.cat})
	absent := desNames(t, 40, testShard, 9)[39]
	names := append(append([]string{absent}, early...), late...)
	before := w.requests()
	resp := postBatch(t, w, "", names)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("batch: status %d", resp.StatusCode)
	}
	parts := readParts(t, resp)
	if len(parts) != len(names) {
		t.Fatalf("%d parts for %d names", len(parts), len(names))
	}
	for _, p := range parts {
		if p.name == absent {
			if p.status != "404" {
				t.Errorf("absent name: status %s", p.status)
			}
			continue
		}
		if p.status != "200" || !bytes.Equal(p.data, cw.files[p.name]) {
			t.Errorf("%s: status %s, %d bytes (want %d)", p.name, p.status, len(p.data), len(cw.files[p.name]))
		}
	}
	// Container 1: one range for its small files (the mid-sized one included) and one GET for the
	// external payload; container 2: one range.
	if got := w.requests() - before; got != 3 {
		t.Errorf("batch cost %d S3 requests, want 3", got)
	}
}

// TestCatalogOtherBucketIsNotServed: a placement in a bucket the reader does not serve is a 404, and
// nothing is fetched from anywhere.
func TestCatalogOtherBucketIsNotServed(t *testing.T) {
	testworld.ForEachDialect(t, testCatalogOtherBucketIsNotServed)
}

func testCatalogOtherBucketIsNotServed(t *testing.T, d catalog.Driver) {
	s := newStore(t)
	cw, early, _ := catalogFixture(t, d, s)
	cw.exec(`UPDATE des_containers SET bucket = 'elsewhere'`)
	w := newWorld(t, cw.bucket, reader.Config{Catalog: cw.cat})
	before := w.requests()
	resp, body := do(t, http.MethodGet, w.http.URL+"/v1/files/"+early[0], nil, nil)
	mustStatus(t, resp, body, http.StatusNotFound)
	if got := w.requests() - before; got != 0 || !strings.Contains(string(body), "elsewhere") {
		t.Fatalf("%d S3 requests; body %s", got, body)
	}
}

// TestWarmReadNeedsNoCatalogQuery: a committed file's placement never changes, so the reader keeps it;
// a second read of a name needs no catalog query. Shown by taking the reader's SELECT privilege away
// after the first read: the warm read still goes through the catalog's placement, while a name not read
// before falls back to searching the archive.
func TestWarmReadNeedsNoCatalogQuery(t *testing.T) {
	testworld.ForEachDialect(t, testWarmReadNeedsNoCatalogQuery)
}

func testWarmReadNeedsNoCatalogQuery(t *testing.T, d catalog.Driver) {
	s := newStore(t)
	cw, early, _ := catalogFixture(t, d, s)
	w := newWorld(t, cw.bucket, reader.Config{Catalog: cw.readOnly})
	get := func(name, wantBy string) {
		t.Helper()
		resp, body := do(t, http.MethodGet, w.http.URL+"/v1/files/"+name, nil, nil)
		mustStatus(t, resp, body, http.StatusOK)
		if !bytes.Equal(body, cw.files[name]) || resp.Header.Get("X-Des-Found-By") != wantBy {
			t.Fatalf("%s: %d bytes, found by %q; want %s", name, len(body), resp.Header.Get("X-Des-Found-By"), wantBy)
		}
	}
	get(early[0], "catalog")
	resp, body := do(t, http.MethodPost, w.http.URL+"/v1/batch", nil, batchBody("", early[1:3]))
	mustStatus(t, resp, body, http.StatusOK)
	for _, stmt := range cw.revoke {
		cw.exec(stmt)
	}
	before := w.requests()
	get(early[0], "catalog")
	get(early[1], "catalog") // placed by the batch's answer
	if got := w.requests() - before; got != 2 {
		t.Errorf("two warm reads cost %d S3 requests", got)
	}
	get(early[8], "search")
	resp, body = do(t, http.MethodGet, w.http.URL+"/metrics", nil, nil)
	mustStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{"des_reader_catalog_fallbacks_total 1", "des_reader_placement_cache_hits_total 2"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, grepLines(body, "des_reader_"))
		}
	}
}

// unreachableDSN names a catalog on a port where nothing listens, in each driver's format.
var unreachableDSN = map[catalog.Driver]string{
	catalog.Postgres: "postgres://des@127.0.0.1:1/des?connect_timeout=2",
	catalog.MySQL:    "des@tcp(127.0.0.1:1)/des?timeout=2s",
}

func grepLines(b []byte, sub string) string {
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
