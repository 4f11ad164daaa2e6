package connect_test

import (
	"testing"

	"github.com/datavision/des/test/testworld"
)

// The pool tests need a real PostgreSQL, the client cache a real S3 store, the Secret reads a real
// API server.
func TestMain(m *testing.M) {
	testworld.Main(m, testworld.Postgres|testworld.MariaDB|testworld.S3|testworld.Kube)
}
