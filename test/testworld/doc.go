// Package testworld starts the real systems DES talks to, on 127.0.0.1 and free ports, for
// integration tests: a private PostgreSQL cluster, a versitygw S3 server over a temp folder, and a
// kube-apiserver + etcd through envtest, and a private redis-server (no persistence). Nothing is
// mocked.
//
// Every server is a child process that dies with the test binary (parent-death signal) and is stopped
// by the test's cleanup, so no process outlives a test run. A part the machine lacks fails the test
// with the make target that installs it; it never skips silently.
//
// Typical use shares one server per package (see [Main]) and isolates tests by database, bucket,
// namespace or Redis key prefix:
//
//	func TestMain(m *testing.M) { testworld.Main(m, testworld.Postgres|testworld.S3) }
//
//	func TestClaim(t *testing.T) {
//		pool := testworld.PG(t).NewDatabase(t)
//		...
//	}
package testworld
