package catalog

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

var filterColumns = []string{"id", "source_key", "size", "created_at", "bucket"}

func TestParseWhere(t *testing.T) {
	cases := []struct {
		in, canonical string // canonical "" with err set: refused
		err           string
	}{
		{"", "", ""},
		{"size < 100", "size < 100", ""},
		{"SIZE<100 and Source_Key like 'a/%'", "(size < 100) AND (source_key LIKE 'a/%')", ""},
		{"size != -5", "size <> -5", ""},
		{"not (id > 3 or id <= 1)", "NOT ((id > 3) OR (id <= 1))", ""},
		{"bucket in ('a', 'b''s') and created_at >= '2026-01-01'", "(bucket IN ('a', 'b''s')) AND (created_at >= '2026-01-01')", ""},
		{"size between 1 and 10 or size not between 20 and 30", "(size BETWEEN 1 AND 10) OR (size NOT BETWEEN 20 AND 30)", ""},
		{"bucket is not null and source_key not like '%.tmp' and id not in (1,2)", "(bucket IS NOT NULL) AND (source_key NOT LIKE '%.tmp') AND (id NOT IN (1, 2))", ""},
		{"status = 'ready'", "", `at 1: "status" is not a column the filter may use`},
		{"des_name is null", "", `"des_name" is not a column`},
		{"size < 1; DROP TABLE objects", "", `at 9: ";" is not allowed`},
		{"size < 1 -- comment", "", `at 10: '-' is not followed by a number`},
		{"size < 1 /* x */", "", `at 10: "/" is not allowed`},
		{`"size" < 1`, "", `at 1: "\"" is not allowed`},
		{"size < 1.5", "", `at 9: "." is not allowed`},
		{"size < 99999999999999999999", "", "is not a 64-bit integer"},
		{"source_key = 'open", "", "the string is not closed"},
		{"size <", "", "expected an integer or a 'string', found the end"},
		{"size < 1 and", "", "expected a column"},
		{"size < 1 size > 2", "", "expected AND, OR or the end"},
		{"(size < 1", "", `expected ")"`},
		{"size = size", "", "expected an integer or a 'string'"},
		{"size like 5", "", "expected a 'pattern' after LIKE"},
		{"size in ()", "", "expected an integer or a 'string', found \")\""},
		{"size not = 1", "", "expected IN, LIKE or BETWEEN after NOT"},
		{"size is 1", "", "expected NULL"},
		{"lower(source_key) = 'a'", "", `"lower" is not a column`},
		{strings.Repeat("(", 40) + "size < 1" + strings.Repeat(")", 40), "", "nested deeper than 32"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			w, err := ParseWhere(tc.in, filterColumns)
			if tc.err != "" {
				if !errors.Is(err, ErrInvalidWhere) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseWhere(%q) = %v, want ErrInvalidWhere with %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil || w.String() != tc.canonical {
				t.Fatalf("ParseWhere(%q) = %q, %v; want %q", tc.in, w.String(), err, tc.canonical)
			}
		})
	}
}

// TestWhereValuesAreArguments: a filter's values reach the database as arguments only, in both
// dialects, and its columns are quoted as the dialect quotes identifiers.
func TestWhereValuesAreArguments(t *testing.T) {
	w, err := ParseWhere("source_key like 'x'' OR 1=1 --' and size in (1, 2)", filterColumns)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []dialect{postgresDialect{}, mysqlDialect{}} {
		q := newQuery(d)
		q.add("SELECT 1 FROM t WHERE %s", w.sql(q, func(c string) string { return "t." + d.ident(c) }))
		text, args := q.finish()
		want := map[Driver]string{
			Postgres: `SELECT 1 FROM t WHERE ((t."source_key" LIKE $1) AND (t."size" IN ($2, $3)))`,
			MySQL:    "SELECT 1 FROM t WHERE ((t.`source_key` LIKE ?) AND (t.`size` IN (?, ?)))",
		}[d.driver()]
		if text != want || fmt.Sprint(args) != "[x' OR 1=1 -- 1 2]" {
			t.Errorf("%s: %s %v, want %s", d.driver(), text, args, want)
		}
	}
}

// FuzzParseWhere: no input makes the parser panic; whatever it accepts is written back in a form
// it parses to the same filter, and the SQL it writes holds no quote, semicolon or comment: every
// value is an argument.
func FuzzParseWhere(f *testing.F) {
	for _, s := range []string{"size < 100", "source_key like 'a/%' or not (id in (1, 2))",
		"bucket is not null and size between 1 and 2", "x = 'it''s'", "(((", "size < 1; drop", "'", "id = -"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		w, err := ParseWhere(in, filterColumns)
		if err != nil {
			if !errors.Is(err, ErrInvalidWhere) {
				t.Fatalf("ParseWhere(%q) = %v, not ErrInvalidWhere", in, err)
			}
			return
		}
		again, err := ParseWhere(w.String(), filterColumns)
		if err != nil || again.String() != w.String() {
			t.Fatalf("%q → %q → %q (%v)", in, w.String(), again.String(), err)
		}
		for _, d := range []dialect{postgresDialect{}, mysqlDialect{}} {
			q := newQuery(d)
			q.add("%s", w.sql(q, func(c string) string { return d.ident(c) }))
			text, _ := q.finish()
			if strings.ContainsAny(text, "';\\") || strings.Contains(text, "--") || strings.Contains(text, "/*") {
				t.Fatalf("%s SQL of %q holds raw text: %s", d.driver(), in, text)
			}
		}
	})
}
