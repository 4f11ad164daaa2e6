package catalog

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestQueryPlaceholdersFollowTheText: whatever order fragments are written in, MySQL's positional
// placeholders get their arguments in the order they appear, and PostgreSQL numbers each argument
// once, reusing the number where an argument appears twice.
func TestQueryPlaceholdersFollowTheText(t *testing.T) {
	for _, d := range []dialect{postgresDialect{}, mysqlDialect{}} {
		t.Run(string(d.driver()), func(t *testing.T) {
			q := newQuery(d)
			later := q.arg("b") // made first, written second
			first := q.arg("a")
			q.add("SELECT %s, %s, %s", first, later, first)
			text, args := q.finish()
			want, wantArgs := "SELECT $1, $2, $1", []any{"a", "b"}
			if d.driver() == MySQL {
				want, wantArgs = "SELECT ?, ?, ?", []any{"a", "b", "a"}
			}
			if text != want || fmt.Sprint(args) != fmt.Sprint(wantArgs) {
				t.Fatalf("finish = %q %v, want %q %v", text, args, want, wantArgs)
			}
		})
	}
}

func TestQueryListsAndRowSets(t *testing.T) {
	cases := []struct {
		d                  dialect
		build              func(q *query)
		wantText, wantArgs string
	}{
		{postgresDialect{}, func(q *query) { q.add("%s", q.in("id", []int64{1, 2})) }, "id = ANY($1)", "[[1 2]]"},
		{mysqlDialect{}, func(q *query) { q.add("%s", q.in("id", []int64{1, 2})) }, "id IN (?, ?)", "[1 2]"},
		{mysqlDialect{}, func(q *query) { q.add("%s", q.in("id", []int64{})) }, "id IN (NULL)", "[]"},
		{postgresDialect{}, func(q *query) {
			q.add("%s", q.rows("a", rowCol{"id", "bigint", []int64{1, 2}}, rowCol{"ext", "text", []*string{nil, ptr("x")}}))
		}, "unnest($1::bigint[], $2::text[]) AS a(id, ext)", "[[1 2] [<nil> 0x"},
		{mysqlDialect{}, func(q *query) {
			q.add("%s", q.rows("a", rowCol{"id", "bigint", []int64{1, 2}}, rowCol{"ext", "text", []*string{nil, ptr("x")}}))
		}, "(SELECT ? AS id, ? AS ext UNION ALL SELECT ?, ?) AS a", "[1 <nil> 2 x]"},
		{mysqlDialect{}, func(q *query) {
			q.updateJoin("t", "r", "(SELECT 1 AS id) AS a", "r.id = a.id", []set{{"v", q.arg("new")}}, "r.v = "+q.arg("old"))
		}, "UPDATE t AS r JOIN (SELECT 1 AS id) AS a ON r.id = a.id SET r.v = ? WHERE r.v = ?", "[new old]"},
		{postgresDialect{}, func(q *query) {
			q.updateJoin("t", "r", "x AS a", "r.id = a.id", []set{{"v", q.arg("new")}}, "r.v = "+q.arg("old"))
		}, "UPDATE t AS r SET v = $1 FROM x AS a WHERE r.id = a.id AND r.v = $2", "[new old]"},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%d-%s", i, tc.d.driver()), func(t *testing.T) {
			q := newQuery(tc.d)
			tc.build(q)
			text, args := q.finish()
			if text != tc.wantText || !strings.HasPrefix(fmt.Sprint(args), tc.wantArgs) {
				t.Fatalf("finish = %q %v, want %q %s", text, args, tc.wantText, tc.wantArgs)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// TestSkipLockedVersions: the servers without FOR UPDATE SKIP LOCKED are refused with a message that
// names the product, its version and the one needed. Only MariaDB 10.11 runs here, so the version
// rule is checked on the strings servers report.
func TestSkipLockedVersions(t *testing.T) {
	cases := []struct {
		version string
		ok      bool
		inMsg   string
	}{
		{"10.11.19-MariaDB-0+deb12u1", true, ""},
		{"10.6.0-MariaDB", true, ""},
		{"10.5.27-MariaDB-log", false, "MariaDB 10.5.27 has no FOR UPDATE SKIP LOCKED; DES needs MariaDB 10.6.0 or later"},
		{"11.4.2-MariaDB", true, ""},
		{"8.0.36", true, ""},
		{"8.0.1", true, ""},
		{"8.0.0-dmr", false, "MySQL 8.0.0 has no FOR UPDATE SKIP LOCKED; DES needs MySQL 8.0.1 or later"},
		{"5.7.44-log", false, "MySQL 5.7.44"},
		{"9.1.0", true, ""},
		{"garbage", false, `cannot read the server version "garbage"`},
	}
	for _, tc := range cases {
		err := skipLockedSupported(tc.version)
		if tc.ok != (err == nil) || (err != nil && (!errors.Is(err, ErrServerUnsupported) || !strings.Contains(err.Error(), tc.inMsg))) {
			t.Errorf("skipLockedSupported(%q) = %v, want ok=%v with %q", tc.version, err, tc.ok, tc.inMsg)
		}
	}
}
