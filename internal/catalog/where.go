package catalog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A source filter (DesSource spec.catalog.where) limits the rows DES takes on: the marker names, the
// packer claims, the fill policy and the counts see only rows that match it. It is a restricted
// predicate, parsed here and written back into each statement with its values as arguments, so no
// text of it reaches the database as SQL:
//
//	expr  = and { OR and }
//	and   = unary { AND unary }
//	unary = NOT unary | "(" expr ")" | cond
//	cond  = column ( op value | IS [NOT] NULL | [NOT] IN "(" value { "," value } ")"
//	               | [NOT] LIKE string | [NOT] BETWEEN value AND value )
//	op    = "=" | "<>" | "!=" | "<" | "<=" | ">" | ">="
//	value = integer | 'string' (a quote inside doubled: 'it''s')
//
// Columns are the mapped id, bucket, key, size and createdAt columns, by their names in the table:
// status, DES name and shard are DES's own state and cannot be filtered on. Keywords are
// case-insensitive.

// ErrInvalidWhere means a source filter that is not a predicate of the grammar above.
var ErrInvalidWhere = errors.New("invalid catalog filter (spec.catalog.where)")

// maxWhereLen and maxWhereDepth bound a filter: it is configuration, not a query language.
const (
	maxWhereLen   = 2000
	maxWhereDepth = 32
	maxInValues   = 1000
)

// whereNode is one node of a parsed filter.
type whereNode struct {
	op       string // "and", "or", "not", or a condition: "=", "<>", "<", "<=", ">", ">=", "is null", "is not null", "in", "not in", "like", "not like", "between", "not between"
	kids     []*whereNode
	column   string
	values   []any // int64 or string
	position int
}

// Where is a parsed source filter; the zero value matches every row.
type Where struct{ root *whereNode }

// IsZero says whether w matches every row.
func (w Where) IsZero() bool { return w.root == nil }

// ParseWhere parses a source filter over the given columns (the table's names of the columns that
// may be filtered on). The empty filter matches every row.
func ParseWhere(text string, columns []string) (Where, error) {
	if strings.TrimSpace(text) == "" {
		return Where{}, nil
	}
	if len(text) > maxWhereLen {
		return Where{}, fmt.Errorf("%w: longer than %d characters", ErrInvalidWhere, maxWhereLen)
	}
	toks, err := tokenize(text)
	if err != nil {
		return Where{}, err
	}
	p := &whereParser{toks: toks, columns: setOf(columns), allowed: columns}
	root, err := p.expr(0)
	if err != nil {
		return Where{}, err
	}
	if t := p.peek(); t.kind != tokEnd {
		return Where{}, p.errorf(t, "expected AND, OR or the end, found %s", t)
	}
	return Where{root: root}, nil
}

type tokKind int

const (
	tokEnd tokKind = iota
	tokWord
	tokNumber
	tokString
	tokSymbol
)

type token struct {
	kind tokKind
	text string // words in lower case
	pos  int    // byte offset, from 1
}

func (t token) String() string {
	switch t.kind {
	case tokEnd:
		return "the end"
	case tokString:
		return fmt.Sprintf("the string '%s'", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

func tokenize(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := rune(s[i])
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, fmt.Errorf("%w: at %d: the string is not closed", ErrInvalidWhere, i+1)
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			out = append(out, token{tokString, b.String(), i + 1})
			i = j + 1
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if c == '-' && j == i+1 {
				return nil, fmt.Errorf("%w: at %d: '-' is not followed by a number", ErrInvalidWhere, i+1)
			}
			out = append(out, token{tokNumber, s[i:j], i + 1})
			i = j
		case isIdentByte(s[i]) && (c < '0' || c > '9'):
			j := i + 1
			for j < len(s) && isIdentByte(s[j]) {
				j++
			}
			out = append(out, token{tokWord, strings.ToLower(s[i:j]), i + 1})
			i = j
		default:
			for _, sym := range []string{"<=", ">=", "<>", "!=", "=", "<", ">", "(", ")", ","} {
				if strings.HasPrefix(s[i:], sym) {
					out = append(out, token{tokSymbol, sym, i + 1})
					i += len(sym)
					goto next
				}
			}
			return nil, fmt.Errorf("%w: at %d: %q is not allowed (only columns, comparisons, IN, LIKE, BETWEEN, IS NULL, AND, OR, NOT, integers and 'strings')",
				ErrInvalidWhere, i+1, string(rune(s[i])))
		next:
		}
	}
	return append(out, token{kind: tokEnd, pos: len(s) + 1}), nil
}

type whereParser struct {
	toks    []token
	at      int
	columns map[string]bool
	allowed []string
}

func (p *whereParser) peek() token { return p.toks[p.at] }
func (p *whereParser) next() token {
	t := p.toks[p.at]
	if t.kind != tokEnd {
		p.at++
	}
	return t
}

func (p *whereParser) errorf(t token, format string, a ...any) error {
	return fmt.Errorf("%w: at %d: %s", ErrInvalidWhere, t.pos, fmt.Sprintf(format, a...))
}

func (p *whereParser) isWord(w string) bool { t := p.peek(); return t.kind == tokWord && t.text == w }

func (p *whereParser) acceptWord(w string) bool {
	if p.isWord(w) {
		p.at++
		return true
	}
	return false
}

func (p *whereParser) expectSymbol(sym string) error {
	if t := p.next(); t.kind != tokSymbol || t.text != sym {
		return p.errorf(t, "expected %q, found %s", sym, t)
	}
	return nil
}

func (p *whereParser) expr(depth int) (*whereNode, error) {
	if depth > maxWhereDepth {
		return nil, p.errorf(p.peek(), "nested deeper than %d", maxWhereDepth)
	}
	return p.binary("or", func() (*whereNode, error) {
		return p.binary("and", func() (*whereNode, error) { return p.unary(depth) })
	})
}

func (p *whereParser) binary(op string, operand func() (*whereNode, error)) (*whereNode, error) {
	first, err := operand()
	if err != nil {
		return nil, err
	}
	n := &whereNode{op: op, kids: []*whereNode{first}}
	for p.acceptWord(op) {
		k, err := operand()
		if err != nil {
			return nil, err
		}
		n.kids = append(n.kids, k)
	}
	if len(n.kids) == 1 {
		return first, nil
	}
	return n, nil
}

func (p *whereParser) unary(depth int) (*whereNode, error) {
	t := p.peek()
	switch {
	case p.acceptWord("not"):
		k, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &whereNode{op: "not", kids: []*whereNode{k}, position: t.pos}, nil
	case t.kind == tokSymbol && t.text == "(":
		p.at++
		k, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		return k, p.expectSymbol(")")
	}
	return p.cond()
}

func (p *whereParser) cond() (*whereNode, error) {
	t := p.next()
	if t.kind != tokWord || isKeyword(t.text) {
		return nil, p.errorf(t, "expected a column (%s), found %s", strings.Join(p.allowed, ", "), t)
	}
	if !p.columns[t.text] {
		return nil, p.errorf(t, "%q is not a column the filter may use (%s)", t.text, strings.Join(p.allowed, ", "))
	}
	n := &whereNode{column: t.text, position: t.pos}
	op := p.next()
	switch {
	case op.kind == tokSymbol && comparisons[op.text]:
		n.op = op.text
		if n.op == "!=" {
			n.op = "<>"
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		n.values = []any{v}
		return n, nil
	case op.kind == tokWord && op.text == "is":
		n.op = "is null"
		if p.acceptWord("not") {
			n.op = "is not null"
		}
		if !p.acceptWord("null") {
			return nil, p.errorf(p.peek(), "expected NULL, found %s", p.peek())
		}
		return n, nil
	case op.kind == tokWord && op.text == "not":
		kw := p.next()
		if kw.kind != tokWord || (kw.text != "in" && kw.text != "like" && kw.text != "between") {
			return nil, p.errorf(kw, "expected IN, LIKE or BETWEEN after NOT, found %s", kw)
		}
		return p.rest(n, "not "+kw.text)
	case op.kind == tokWord && (op.text == "in" || op.text == "like" || op.text == "between"):
		return p.rest(n, op.text)
	}
	return nil, p.errorf(op, "expected a comparison (=, <>, <, <=, >, >=), IS, IN, LIKE or BETWEEN after %q, found %s", t.text, op)
}

// rest parses what follows IN, LIKE or BETWEEN (op, possibly with "not ").
func (p *whereParser) rest(n *whereNode, op string) (*whereNode, error) {
	n.op = op
	switch strings.TrimPrefix(op, "not ") {
	case "like":
		t := p.next()
		if t.kind != tokString {
			return nil, p.errorf(t, "expected a 'pattern' after LIKE, found %s", t)
		}
		n.values = []any{t.text}
	case "between":
		lo, err := p.value()
		if err != nil {
			return nil, err
		}
		if !p.acceptWord("and") {
			return nil, p.errorf(p.peek(), "expected AND in BETWEEN, found %s", p.peek())
		}
		hi, err := p.value()
		if err != nil {
			return nil, err
		}
		n.values = []any{lo, hi}
	case "in":
		if err := p.expectSymbol("("); err != nil {
			return nil, err
		}
		for {
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			n.values = append(n.values, v)
			if len(n.values) > maxInValues {
				return nil, p.errorf(p.peek(), "more than %d values in IN", maxInValues)
			}
			t := p.next()
			if t.kind == tokSymbol && t.text == ")" {
				break
			}
			if t.kind != tokSymbol || t.text != "," {
				return nil, p.errorf(t, "expected ',' or ')' in IN, found %s", t)
			}
		}
	}
	return n, nil
}

func (p *whereParser) value() (any, error) {
	t := p.next()
	switch t.kind {
	case tokString:
		return t.text, nil
	case tokNumber:
		v, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return nil, p.errorf(t, "%s is not a 64-bit integer", t.text)
		}
		return v, nil
	}
	return nil, p.errorf(t, "expected an integer or a 'string', found %s", t)
}

var comparisons = map[string]bool{"=": true, "<>": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true}

func isIdentByte(b byte) bool {
	return b == '_' || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9')
}

func isKeyword(w string) bool {
	switch w {
	case "and", "or", "not", "is", "null", "in", "like", "between":
		return true
	}
	return false
}

// sql writes w as a condition of q (values as arguments, columns quoted and qualified by alias), or
// "" when w matches every row.
func (w Where) sql(q *query, col func(string) string) string {
	if w.root == nil {
		return ""
	}
	return "(" + w.root.sql(q, col) + ")"
}

func (n *whereNode) sql(q *query, col func(string) string) string {
	switch n.op {
	case "and", "or":
		parts := make([]string, len(n.kids))
		for i, k := range n.kids {
			parts[i] = "(" + k.sql(q, col) + ")"
		}
		return strings.Join(parts, " "+strings.ToUpper(n.op)+" ")
	case "not":
		return "NOT (" + n.kids[0].sql(q, col) + ")"
	case "is null", "is not null":
		return col(n.column) + " " + strings.ToUpper(n.op)
	case "in", "not in":
		ph := make([]string, len(n.values))
		for i, v := range n.values {
			ph[i] = q.arg(v)
		}
		return col(n.column) + " " + strings.ToUpper(n.op) + " (" + strings.Join(ph, ", ") + ")"
	case "between", "not between":
		return col(n.column) + " " + strings.ToUpper(n.op) + " " + q.arg(n.values[0]) + " AND " + q.arg(n.values[1])
	case "like", "not like":
		return col(n.column) + " " + strings.ToUpper(n.op) + " " + q.arg(n.values[0])
	}
	return col(n.column) + " " + n.op + " " + q.arg(n.values[0])
}

// String writes w back in the grammar's canonical form (for logs and tests).
func (w Where) String() string {
	if w.root == nil {
		return ""
	}
	q := newQuery(postgresDialect{})
	out := w.root.sql(q, func(c string) string { return c })
	for i, a := range q.args {
		lit := fmt.Sprint(a)
		if s, ok := a.(string); ok {
			lit = "'" + strings.ReplaceAll(s, "'", "''") + "'"
		}
		out = strings.Replace(out, string(markOpen)+strconv.Itoa(i)+string(markClose), lit, 1)
	}
	return out
}
