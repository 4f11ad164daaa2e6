package catalog

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// A query is one statement being written for a dialect. Values go in through arg (and in, rows), which
// put a marker into the text; finish turns the markers into the dialect's placeholders in the order
// they appear, so a statement may be assembled from fragments in any order (MySQL's ? placeholders are
// positional, and its UPDATE … JOIN puts the row set before SET where PostgreSQL's UPDATE … FROM puts
// it after).
type query struct {
	d    dialect
	text strings.Builder
	args []any
}

func newQuery(d dialect) *query { return &query{d: d} }

// The marker of argument i is markOpen i markClose. Neither byte can occur in a statement's text:
// identifiers are checked (Mapping.Validate) and every value travels as an argument.
const (
	markOpen  = '\x00'
	markClose = '\x01'
)

// add appends fmt.Sprintf(format, a...) to the text.
func (q *query) add(format string, a ...any) *query {
	if len(a) == 0 {
		q.text.WriteString(format)
	} else {
		fmt.Fprintf(&q.text, format, a...)
	}
	return q
}

// arg returns the placeholder of v.
func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return string(markOpen) + strconv.Itoa(len(q.args)-1) + string(markClose)
}

// in is the condition "expr is one of list", list a slice ([]int64, []int32 or []string).
func (q *query) in(expr string, list any) string { return q.d.in(q, expr, list) }

// finish returns the statement's text with the dialect's placeholders and the arguments in their
// order. An argument used twice is passed once to PostgreSQL ($n twice) and twice to MySQL.
func (q *query) finish() (string, []any) {
	src := q.text.String()
	var out strings.Builder
	out.Grow(len(src))
	var args []any
	numbered := map[int]int{} // argument index → its $n (PostgreSQL)
	for {
		open := strings.IndexByte(src, markOpen)
		if open < 0 {
			out.WriteString(src)
			return out.String(), args
		}
		end := strings.IndexByte(src[open:], markClose) + open
		i, _ := strconv.Atoi(src[open+1 : end])
		out.WriteString(src[:open])
		src = src[end+1:]
		if !q.d.numbered() {
			out.WriteByte('?')
			args = append(args, q.args[i])
			continue
		}
		n, ok := numbered[i]
		if !ok {
			args = append(args, q.args[i])
			n = len(args)
			numbered[i] = n
		}
		out.WriteString("$" + strconv.Itoa(n))
	}
}

// rowCol is one column of a row set: its name, its PostgreSQL element type, and its values, a slice
// ([]int64, []*int64, []int32, []string or []*string; a nil pointer is NULL). Every column of a row set
// has the same number of values.
type rowCol struct {
	name, pgType string
	values       any
}

// rows is a row set of cols named alias, to join a table with in updateJoin.
func (q *query) rows(alias string, cols ...rowCol) string { return q.d.rows(q, alias, cols) }

// elements returns the elements of a slice, dereferencing pointers (a nil pointer is nil, NULL).
func elements(slice any) []any {
	v := reflect.ValueOf(slice)
	out := make([]any, v.Len())
	for i := range out {
		e := v.Index(i)
		if e.Kind() == reflect.Pointer {
			if e.IsNil() {
				continue
			}
			e = e.Elem()
		}
		out[i] = e.Interface()
	}
	return out
}

// set is one assignment of an UPDATE: column (unqualified) = expr.
type set struct{ column, expr string }

// updateJoin is "UPDATE table AS alias, joined with rowSet on on, SET sets WHERE where", in the
// dialect's form.
func (q *query) updateJoin(table, alias, rowSet, on string, sets []set, where string) *query {
	return q.d.updateJoin(q, table, alias, rowSet, on, sets, where)
}
